"""dreamlab's CarRacing renders exactly what gymnasium's CarRacing-v3 renders, and World Models' frames from it."""

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("Box2D", reason="CarRacing needs pip install 'dreamlab[box2d]'")

from gymnasium.envs.box2d.car_racing import PLAYFIELD

from dreamlab.envs import carracing
from dreamlab.envs.carracing import make_car_racing, preprocess_frame


def test_array_road_renderer_draws_gymnasiums_frames_pixel_for_pixel():
    reference = gym.make("CarRacing-v3")
    ours = make_car_racing(max_episode_steps=1000, frame_size=64)
    fast = ours.env.unwrapped
    rng = np.random.default_rng(0)
    expected, _ = reference.reset(seed=3)
    assert np.array_equal(fast.reset(seed=3)[0], expected)
    visited_before = fast.tile_visited_count
    for _ in range(150):  # driving forward visits tiles, which changes their colour on screen
        action = np.array([rng.uniform(-0.5, 0.5), rng.uniform(0.3, 1.0), 0.0], dtype=np.float32)
        expected, expected_reward, *_ = reference.step(action)
        frame, reward, *_ = fast.step(action)
        assert np.array_equal(frame, expected) and reward == expected_reward
    assert fast.tile_visited_count > visited_before
    # The wrapper's observation is that frame, cropped and resized.
    ours.reset(seed=4)
    reference.reset(seed=4)
    observation, *_ = ours.step(np.zeros(3, dtype=np.float32))
    expected, *_ = reference.step(np.zeros(3, dtype=np.float32))
    assert np.array_equal(observation, preprocess_frame(expected)) and observation.shape == (64, 64, 3)


def test_lean_render_gives_gymnasiums_observations(monkeypatch):
    # Lean rendering leaves out the dashboard's reward text and fills the field instead of drawing it: the 96x96
    # frame's view (rows 0-83) and World Models' 64x64 observation stay equal to gymnasium's, through the zoom-in
    # of the first second, a long drive and leaving the playfield (where the field no longer covers the window).
    coverage = []

    def covers_window(*args):
        coverage.append(original(*args))
        return coverage[-1]

    original = carracing._covers_window
    monkeypatch.setattr(carracing, "_covers_window", covers_window)
    reference = gym.make("CarRacing-v3")
    ours = make_car_racing(max_episode_steps=1000, lean_render=True)
    game = ours.env.unwrapped
    rng = np.random.default_rng(3)
    expected, _ = reference.reset(seed=3)
    observation, _ = ours.reset(seed=3)
    assert np.array_equal(observation, preprocess_frame(expected))
    for _ in range(1000):
        action = np.array([rng.uniform(-1, 1), rng.uniform(0, 1), rng.uniform(0, 0.2)], dtype=np.float32)
        expected, expected_reward, expected_end, *_ = reference.step(action)
        observation, reward, end, *_ = ours.step(action)
        assert np.array_equal(game.state[:84], expected[:84]) and np.array_equal(
            observation, preprocess_frame(expected)
        )
        assert (reward, end) == (expected_reward, expected_end)
        if end:
            break
    assert end and max(map(abs, game.car.hull.position)) > PLAYFIELD  # it left the playfield
    assert True in coverage and False in coverage  # both ways of drawing the field were used
    assert not np.array_equal(game.state[84:], expected[84:])  # the reward text is missing from the dashboard


def test_episode_is_truncated_at_the_cap():
    env = make_car_racing(max_episode_steps=5)
    env.reset(seed=0)
    for _ in range(4):
        assert not env.step(np.zeros(3, dtype=np.float32))[3]
    assert env.step(np.zeros(3, dtype=np.float32))[3]


def test_bad_frames_and_caps_are_named():
    with pytest.raises(ValueError, match="max_episode_steps"):
        make_car_racing(max_episode_steps=0)
    with pytest.raises(ValueError, match="RGB frame"):
        preprocess_frame(np.zeros((96, 96), dtype=np.uint8))

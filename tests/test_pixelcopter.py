"""PixelCopter against PLE's rules: hand-computed dynamics, rect semantics, rewards, PLE's measured sanity facts,
gymnasium's checker, and the vector env against the single env step for step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import dreamlab.envs
from dreamlab.envs.checks import SeedError
from dreamlab.envs.pixelcopter import STATE_KEYS, PixelCopterEnv, PixelCopterVectorEnv
from dreamlab.envs.pixelcopter import rules as R
from dreamlab.envs.pixelcopter.reference import reference_screens

UP, NOOP = 0, 1
GREEN = np.array(R.GREEN, dtype=np.uint8)
WHITE = np.array(R.WHITE, dtype=np.uint8)


def _episode(env: PixelCopterEnv, seed: int, action: int) -> list[float]:
    env.reset(seed=seed)
    rewards, done = [], False
    while not done:
        _, reward, done, _, _ = env.step(action)
        rewards.append(reward)
    return rewards


# ------------------------------------------------------------------------------------------ constants and rects
def test_constants_are_ples_defaults():
    assert R.SCROLL == (0.0004 * 48) * (1000.0 / 30) == pytest.approx(0.64)
    np.testing.assert_allclose([R.CLIMB_ACCEL, R.FALL_ACCEL], [-0.56, 0.0576])
    assert (R.PLAYER_X, R.PLAYER_START_Y, R.PLAYER_RECT_SIZE) == (16, 24.0, 2)
    assert (R.COLUMN_WIDTH, R.COLUMN_HEIGHT, R.BLOCK_WIDTH, R.BLOCK_HEIGHT) == (4, 72, 4, 9)
    assert list(R.FIRST_BATCH_X0) == list(range(2, 191, 4)) and list(R.REFILL_BATCH_X0) == list(range(50, 239, 4))
    assert R.BLOCK_X_RANGE == (48, 72) and R.BLOCK_Y_RANGE == (12, 36)
    assert (R.MIN_Y, R.MAX_Y, R.GAP_HALF) == (6.0, 42.0, 12.0)


def test_pygame_rounds_half_away_from_zero():
    np.testing.assert_array_equal(
        R.round_half_away([2.5, -2.5, 22.5, 0.5, 2.4999, -0.49, 3.51]), [3, -3, 23, 1, 2, 0, 4]
    )
    values = [2.5, -2.5, 0.49999999999999994, -0.5, 1e15 + 0.5, 16.0, 15.86, -3.98]
    assert [R.round_half_away_scalar(v) for v in values] == R.round_half_away(values).tolist()
    # rect_start = round(centre) - size // 2: banker's rounding would put this 2-px rect at 21
    assert R.rect_start(22.5, 2) == 22 and R.rect_start(-2.5, 4) == -5 and R.rect_start(15.86, 4) == 14


def test_rects_collide_on_open_intervals():
    assert not R.intervals_overlap(0, 2, 2, 2)  # touching edges do not collide
    assert R.intervals_overlap(0, 3, 2, 2)
    assert not R.intervals_overlap(4, 4, 0, 4) and R.intervals_overlap(3, 4, 0, 4)


def test_uniforms_map_to_ples_ranges():
    x, y = R.block_from_uniforms(np.array([0.0, 1 - 2**-53]), np.array([0.0, 1 - 2**-53]))
    np.testing.assert_array_equal(x, [48, 71])
    np.testing.assert_array_equal(y, [12, 35])
    # frequency 4.5/48 + U(-0.01, 0.01), phase U(0, 0.5): y_t = int(24 + 6 sin(f x0 + phase))
    heights = R.terrain_from_uniforms(0.5, np.full(48, 0.0), R.FIRST_BATCH_X0)
    np.testing.assert_array_equal(heights, np.trunc(24 + 6 * np.sin(4.5 / 48 * R.FIRST_BATCH_X0)))
    assert heights.min() >= 18 and heights.max() <= 30


# ------------------------------------------------------------------------------------------ single-env rules
def test_player_dynamics_hand_computed():
    env = PixelCopterEnv(obs_type="state")
    env.reset(seed=0)
    env.step(NOOP)  # v = 0.0576 * 0.99
    assert env.player_vel == pytest.approx(0.057024, abs=1e-12)
    assert env.player_y == pytest.approx(24.057024, abs=1e-12)
    env.step(NOOP)  # v = (0.057024 + 0.0576) * 0.99
    assert env.player_vel == pytest.approx(0.11347776, abs=1e-12)
    assert env.player_y == pytest.approx(24.17050176, abs=1e-12)
    env.step(UP)  # v = (0.11347776 - 0.56) * 0.99
    assert env.player_vel == pytest.approx(-0.4420570176, abs=1e-12)
    assert env.player_y == pytest.approx(23.7284447424, abs=1e-12)


def test_everything_scrolls_by_speed_times_dt():
    env = PixelCopterEnv(obs_type="state")
    env.reset(seed=3)
    block_x0 = env.blocks[0][0]
    assert block_x0 == int(block_x0) and 48 <= block_x0 <= 71
    for _ in range(5):
        env.step(NOOP)
    assert env.blocks[0][0] == pytest.approx(block_x0 - 5 * 0.64)
    np.testing.assert_allclose(env.terrain_x, R.FIRST_BATCH_X0 - 5 * 0.64)


def test_columns_pay_when_they_leave_and_death_costs_five():
    # x0 = 2, 6, 10 reach x <= -4 at steps 10 (2 - 6.4), 16 (6 - 10.24) and 22 (10 - 14.08)
    env = PixelCopterEnv(obs_type="state")
    for seed in range(6):
        rewards = _episode(env, seed, NOOP)
        paid = {step + 1 for step, r in enumerate(rewards[:-1]) if r != 0}
        assert paid == {s for s in (10, 16, 22) if s < len(rewards)}
        assert rewards[-1] == -5 + (1 if len(rewards) in (10, 16, 22) else 0)


def test_block_pass_pays_once_and_the_passed_block_stays_until_off_screen():
    env = PixelCopterEnv(obs_type="state")
    env.reset(seed=1)
    env.blocks = [[16.5, 42.0]]  # below the player's path
    _, reward, *_ = env.step(NOOP)  # x = 15.86 <= 16: pass, a second block appears
    assert reward == 1 and len(env.blocks) == 2 and env.blocks[0][0] == pytest.approx(15.86)
    for step in range(2, 32):
        env.player_y, env.player_vel = 24.0, 0.0  # hold the player still to isolate the block rules
        _, reward, terminated, *_ = env.step(NOOP)
        assert not terminated
        assert reward == (1 if step in (10, 16, 22, 29) else 0)  # only columns pay (x0 = 2, 6, 10, 14)
        # the passed block is removed once x <= -4, i.e. at 16.5 - 0.64 * 32 = -3.98 -> step 33
        assert len(env.blocks) == 2
    env.player_y, env.player_vel = 24.0, 0.0
    env.step(NOOP)
    env.player_y, env.player_vel = 24.0, 0.0
    env.step(NOOP)
    assert len(env.blocks) == 1


def test_block_collision_uses_rounded_rects():
    env = PixelCopterEnv(obs_type="state")
    env.reset(seed=2)
    # after the step: player y = 24.057, rect rows [23, 25); block centre y 30 spans rows [26, 35): no contact
    env.blocks = [[19.0, 30.0]]
    *_, terminated, _, _ = env.step(NOOP)
    assert not terminated
    env.reset(seed=2)
    env.blocks = [[19.0, 29.0]]  # rows [25, 34) still miss [23, 25): open intervals
    *_, terminated, _, _ = env.step(NOOP)
    assert not terminated
    env.reset(seed=2)
    env.blocks = [[19.0, 28.0]]  # rows [24, 33) overlap; x: 18.36 -> rect [16, 20) overlaps [15, 17)
    _, reward, terminated, _, _ = env.step(NOOP)
    assert terminated and reward == -5


def test_deaths_are_ceiling_and_floor_hits():
    env = PixelCopterEnv(obs_type="state")
    for seed in range(8):
        for action, limit in ((UP, "ceiling"), (NOOP, "floor")):
            env.reset(seed=seed)
            done = False
            while not done:
                _, _, done, _, _ = env.step(action)
                heights = env.terrain_y[env._touching_columns()]
                ceiling = env.player_y - R.PLAYER_HEIGHT <= heights - 12
                floor = env.player_y >= heights + 12
                hit = (ceiling if limit == "ceiling" else floor).any() or not (6 <= env.player_y <= 42)
                assert hit == done


def test_ple_sanity_facts():
    """Measured on PLE: always no-op dies on the floor after 18-24 steps (mean ~21, return ~-2.65), always up
    dies on the ceiling after 4 or 5 steps, random play returns ~-4.8."""
    games = 600
    for action, lengths_allowed in ((NOOP, range(18, 25)), (UP, (4, 5))):
        env = PixelCopterVectorEnv(games, obs_type="state", autoreset_mode=AutoresetMode.DISABLED)
        env.reset(seed=0)
        returns, lengths = np.zeros(games), np.zeros(games, dtype=int)
        alive = np.ones(games, dtype=bool)
        while alive.any():
            _, reward, terminated, _, _ = env.step(np.full(games, action))
            returns += reward * alive
            lengths += alive
            alive &= ~terminated
            if alive.any() and terminated.any():
                env.reset(options={"reset_mask": terminated})  # keep stepping the rest; restarted games ignored
        assert set(lengths) <= set(lengths_allowed)
        if action == NOOP:
            assert lengths.mean() == pytest.approx(21, abs=0.3) and returns.mean() == pytest.approx(-2.65, abs=0.1)
        else:
            assert np.all(returns == -5)
    env = PixelCopterVectorEnv(200, obs_type="state", autoreset_mode=AutoresetMode.SAME_STEP)
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    episode_return, finished = np.zeros(200), []
    while len(finished) < 2000:
        _, reward, terminated, _, _ = env.step(rng.integers(0, 2, 200))
        episode_return += reward
        finished.extend(episode_return[terminated])
        episode_return[terminated] = 0
    assert np.mean(finished) == pytest.approx(-4.8, abs=0.12)


# ------------------------------------------------------------------------------------ state, pixels, gymnasium
def test_game_state_has_ples_keys_and_meanings():
    env = PixelCopterEnv(obs_type="state")
    obs, _ = env.reset(seed=5)
    state = env.game_state()
    assert STATE_KEYS == (
        "player_y",
        "player_vel",
        "player_dist_to_ceil",
        "player_dist_to_floor",
        "next_gate_dist_to_player",
        "next_gate_block_top",
        "next_gate_block_bottom",
    )
    assert tuple(state) == STATE_KEYS
    # at reset the player's rect [15, 17) touches columns x0 = 14 and 18 (indices 3, 4); the first is used
    first = env.terrain_y[3]
    (block_x, block_y) = env.blocks[0]
    assert state["player_y"] == 24.0 and state["player_vel"] == 0.0
    assert state["player_dist_to_ceil"] == 24 - (first - 12) and state["player_dist_to_floor"] == first + 12 - 24
    assert state["next_gate_dist_to_player"] == block_x - 16
    assert (state["next_gate_block_top"], state["next_gate_block_bottom"]) == (block_y, block_y + 9)
    np.testing.assert_array_equal(obs, np.array(list(state.values()), dtype=np.float32))


def test_pixels_colours_and_layout():
    env = PixelCopterEnv(render_mode="rgb_array")
    frame, _ = env.reset(seed=7)
    assert frame.shape == (48, 48, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, env.render())
    colours = {tuple(c) for c in frame.reshape(-1, 3)}
    assert colours == {R.BLACK, R.WHITE, R.GREEN}
    # the player: 2 x 2 white at rows [23, 25), columns [15, 17)
    white = np.all(frame == WHITE, axis=2)
    assert np.array_equal(np.argwhere(white), [[23, 15], [23, 16], [24, 15], [24, 16]])
    # columns x0 = 2, 6, ..., 42 cover pixel columns [x0 - 2, x0 + 2): ceiling rows < y_t - 12, floor >= y_t + 14
    green = np.all(frame == GREEN, axis=2)
    for x0, y_t in zip(R.FIRST_BATCH_X0[:11], env.terrain_y[:11], strict=True):
        rows = np.arange(48)
        expected = (rows < y_t - 12) | (rows >= y_t + 14)
        for column in range(x0 - 2, x0 + 2):
            np.testing.assert_array_equal(green[:, column], expected)
    # a block drawn over it all: 4 x 9 green at its rounded rect
    env.blocks = [[30.3, 20.0]]
    env.step(NOOP)  # x = 29.66 -> columns [28, 32), rows [16, 25)
    frame = env.render()
    assert np.all(frame[16:25, 28:32] == GREEN)


@pytest.mark.parametrize("obs_type", ["pixels", "state"])
@pytest.mark.filterwarnings("ignore:.*infinity")  # the state's Box is unbounded: PLE's values have no limits
@pytest.mark.filterwarnings("ignore:.*alternative render modes")  # it has only rgb_array
def test_gymnasium_check_env(obs_type):
    check_env(PixelCopterEnv(obs_type=obs_type, render_mode="rgb_array"), skip_render_check=False)


def test_registration_and_make_vec():
    assert dreamlab.envs.PIXELCOPTER_ID == "dreamlab/PixelCopter-v0"
    env = gym.make("dreamlab/PixelCopter-v0")
    assert isinstance(env.unwrapped, PixelCopterEnv) and env.observation_space.shape == (48, 48, 3)
    assert env.spec.max_episode_steps is None
    vec = gym.make_vec("dreamlab/PixelCopter-v0", num_envs=4, vectorization_mode="vector_entry_point", obs_type="state")
    assert isinstance(vec, PixelCopterVectorEnv) and vec.observation_space.shape == (4, 7)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (4, 7) and obs.dtype == np.float32
    limited = gym.make_vec(
        "dreamlab/PixelCopter-v0", num_envs=3, vectorization_mode="vector_entry_point", max_episode_steps=5
    )
    obs, _ = limited.reset(seed=0)
    assert obs.shape == (3, 48, 48, 3)
    for _ in range(4):
        *_, truncated, _ = limited.step(np.full(3, NOOP))
        assert not truncated.any()
    *_, truncated, _ = limited.step(np.full(3, NOOP))
    assert truncated.all()


# ------------------------------------------------------------------------------------ vector == single
def _lockstep(vec, singles, actions, autoreset_mode, needs_reset):
    """One step of the vector env and of single envs run as gymnasium's SyncVectorEnv would run them."""
    obs, reward, terminated, truncated, info = vec.step(actions)
    for i, env in enumerate(singles):
        if autoreset_mode == AutoresetMode.NEXT_STEP and needs_reset[i]:
            single_obs, single_reward, single_terminated = env.reset()[0], 0.0, False
        else:
            single_obs, single_reward, single_terminated, _, _ = env.step(int(actions[i]))
            if autoreset_mode == AutoresetMode.SAME_STEP and single_terminated:
                np.testing.assert_array_equal(info["final_obs"][i], single_obs)
                single_obs = env.reset()[0]
        needs_reset[i] = single_terminated
        np.testing.assert_array_equal(obs[i], single_obs)
        assert reward[i] == single_reward and terminated[i] == single_terminated and not truncated[i]
    return obs


@pytest.mark.parametrize("obs_type", ["state", "pixels"])
@pytest.mark.parametrize("autoreset_mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_vector_env_matches_single_envs(obs_type, autoreset_mode):
    games, seed = 5, 40
    # a small uniform buffer makes games refill it mid-episode, in the middle of their draws
    vec = PixelCopterVectorEnv(games, obs_type=obs_type, autoreset_mode=autoreset_mode, uniform_buffer=55)
    singles = [PixelCopterEnv(obs_type=obs_type) for _ in range(games)]
    obs, _ = vec.reset(seed=seed)
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(obs[i], env.reset(seed=seed + i)[0])
    rng = np.random.default_rng(1)
    needs_reset = [False] * games
    for _ in range(150):
        actions = (rng.random(games) < 0.15).astype(int) ^ 1  # mostly no-op: episodes of ~20 steps
        _lockstep(vec, singles, actions, autoreset_mode, needs_reset)


_PREFIXES = (np.arange(32)[:, None] >> np.arange(5)) & 1  # every 5-step action prefix (0 = up)


def _pilot(env: PixelCopterEnv, horizon: int = 20) -> int:
    """First action of the best of 32 five-step prefixes followed by hovering, predicted exactly from the game's
    state for ``horizon`` steps (nothing spawned later can reach the player that soon)."""
    ahead = np.arange(1, horizon + 1)[:, None]
    column_left = R.rect_start(env.terrain_x[None, :] - ahead * R.SCROLL, R.COLUMN_WIDTH)
    touch = R.intervals_overlap(column_left, R.COLUMN_WIDTH, R.PLAYER_LEFT, R.PLAYER_RECT_SIZE)
    ceiling = np.where(touch, env.terrain_y - R.GAP_HALF + R.PLAYER_HEIGHT, -np.inf).max(axis=1)
    floor = np.where(touch, env.terrain_y + R.GAP_HALF, np.inf).min(axis=1)
    blocks = np.array(env.blocks)
    block_left = R.rect_start(blocks[None, :, 0] - ahead * R.SCROLL, R.BLOCK_WIDTH)
    block_near = R.intervals_overlap(block_left, R.BLOCK_WIDTH, R.PLAYER_LEFT, R.PLAYER_RECT_SIZE)
    y, v = np.full(len(_PREFIXES), env.player_y), np.full(len(_PREFIXES), env.player_vel)
    alive, score = np.ones(len(_PREFIXES), dtype=bool), np.zeros(len(_PREFIXES))
    for k in range(horizon):
        middle = (ceiling[k] + floor[k]) / 2
        up = _PREFIXES[:, k] == UP if k < _PREFIXES.shape[1] else (y > middle) & (v > 0)
        v = (v + np.where(up, R.CLIMB_ACCEL, R.FALL_ACCEL)) * R.MOMENTUM_DECAY
        y = y + v
        top = R.rect_start(y, R.PLAYER_RECT_SIZE)[:, None]
        block_hit = block_near[k] & R.intervals_overlap(blocks[:, 1] - 4, R.BLOCK_HEIGHT, top, R.PLAYER_RECT_SIZE)
        alive &= (y > ceiling[k]) & (y < floor[k]) & (y >= R.MIN_Y) & (y <= R.MAX_Y) & ~block_hit.any(axis=1)
        score += alive * np.minimum(y - ceiling[k], floor[k] - y).clip(max=4)
    return int(_PREFIXES[np.argmax(score), 0])


def test_vector_env_matches_single_env_over_long_episodes():
    """A piloted game crosses the first terrain refill (step 222) and the schedule's wrap (step 519) and passes
    blocks; its pixels and game state must match the single env's at every step."""
    games, seed, steps = 2, 4, 700
    vec = PixelCopterVectorEnv(games, obs_type="pixels")
    singles = [PixelCopterEnv() for _ in range(games)]
    vec.reset(seed=seed)
    for i, env in enumerate(singles):
        env.reset(seed=seed + i)
    rng = np.random.default_rng(2)
    needs_reset = [False] * games
    passes = 0
    for step in range(steps):
        actions = np.array([_pilot(singles[0]), rng.integers(0, 2)])
        blocks_before = len(singles[0].blocks)
        _lockstep(vec, singles, actions, AutoresetMode.NEXT_STEP, needs_reset)
        passes += len(singles[0].blocks) > blocks_before
        assert not needs_reset[0], f"the pilot crashed at step {step + 1}; the test needs a longer episode"
        vector_state = vec.game_state()
        for key, value in singles[0].game_state().items():
            assert vector_state[key][0] == value, key
    assert singles[0].steps == steps and passes >= 8


def test_terrain_schedule_matches_explicit_columns():
    schedule = R.terrain_schedule()
    assert (schedule.cycle_start, schedule.period, schedule.index_shift) == (222, 297, 48)
    x, index, spawned = R.FIRST_BATCH_X0.astype(float), np.arange(48), 48
    for t in range(1, 1500):
        x = x - R.SCROLL
        left = R.rect_start(x, R.COLUMN_WIDTH)
        touching = index[R.intervals_overlap(left, R.COLUMN_WIDTH, R.PLAYER_LEFT, R.PLAYER_RECT_SIZE)]
        keep = x > -R.COLUMN_WIDTH
        removed = int((~keep).sum())
        x, index = x[keep], index[keep]
        refill = len(x) <= 13
        if refill:
            x = np.concatenate([x, R.REFILL_BATCH_X0.astype(float)])
            index = np.concatenate([index, np.arange(spawned, spawned + 48)])
        row, shift = schedule.lookup(np.array([t]))
        expected = schedule.touch[row[0]]
        np.testing.assert_array_equal(touching, expected[expected >= 0] + shift[0])
        assert schedule.removed[row[0]] == removed
        assert (schedule.refill_base[row[0]] + shift[0] == spawned) if refill else schedule.refill_base[row[0]] == -1
        spawned += 48 * refill


def test_vector_render_draws_every_game():
    vec = PixelCopterVectorEnv(3, obs_type="state", render_mode="rgb_array")
    singles = [PixelCopterEnv(obs_type="state", render_mode="rgb_array") for _ in range(3)]
    vec.reset(seed=11)
    for i, env in enumerate(singles):
        env.reset(seed=11 + i)
    for _ in range(12):
        vec.step(np.full(3, NOOP))
        for env in singles:
            env.step(NOOP)
    frames = vec.render()
    assert len(frames) == 3
    for frame, env in zip(frames, singles, strict=True):
        np.testing.assert_array_equal(frame, env.render())


# ------------------------------------------------------------------------------------ seeding and bad input
def test_vector_seeding_and_partial_reset():
    vec = PixelCopterVectorEnv(4, obs_type="state")
    first, _ = vec.reset(seed=9)
    again, _ = vec.reset(seed=9)
    np.testing.assert_array_equal(first, again)
    listed, _ = vec.reset(seed=[9, 10, 11, 12])
    np.testing.assert_array_equal(first, listed)
    for _ in range(3):
        before, *_ = vec.step(np.full(4, NOOP))
    mask = np.array([False, True, False, False])
    after, _ = vec.reset(seed=[None, 9, None, None], options={"reset_mask": mask})
    np.testing.assert_array_equal(after[[0, 2, 3]], before[[0, 2, 3]])
    np.testing.assert_array_equal(after[1], first[0])  # game 1 now plays seed 9's game


def _play(vec: PixelCopterVectorEnv, actions: np.ndarray) -> list[tuple]:
    trace = []
    for step_actions in actions:
        obs, reward, terminated, truncated, info = vec.step(step_actions)
        final = [info["final_obs"][i] for i in np.flatnonzero(terminated | truncated)] if info else []
        trace.append((obs, reward, terminated, truncated, final))
    return trace


def test_vector_state_dict_resumes_mid_episode_exactly(tmp_path):
    from dreamlab.checkpoint import load_checkpoint, save_checkpoint

    # A short uniform buffer makes the games refill it from their generators during the replay.
    make = lambda: PixelCopterVectorEnv(5, autoreset_mode=AutoresetMode.SAME_STEP, uniform_buffer=64)  # noqa: E731
    actions = np.random.default_rng(0).integers(0, 2, size=(260, 5))
    straight = make()
    straight.reset(seed=3)
    _play(straight, actions[:60])
    save_checkpoint(tmp_path / "env.pt", {"env": straight.state_dict()})
    expected = _play(straight, actions[60:])
    assert sum(int(step[2].sum()) for step in expected) >= 5  # episodes end and restart after the snapshot

    resumed = make()
    resumed.reset(seed=99)  # a different game everywhere; loading must overwrite all of it
    resumed.load_state_dict(load_checkpoint(tmp_path / "env.pt")["env"])
    for got, want in zip(_play(resumed, actions[60:]), expected, strict=True):
        for a, b in zip(got[:4], want[:4], strict=True):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(got[4], want[4], strict=True):
            np.testing.assert_array_equal(a, b)

    with pytest.raises(ValueError, match="games"):
        PixelCopterVectorEnv(4, autoreset_mode=AutoresetMode.SAME_STEP, uniform_buffer=64).load_state_dict(
            straight.state_dict()
        )
    with pytest.raises(ValueError, match="autoreset_mode"):
        PixelCopterVectorEnv(5, uniform_buffer=64).load_state_dict(straight.state_dict())
    with pytest.raises(RuntimeError, match="reset"):
        make().state_dict()


def test_disabled_autoreset_requires_explicit_reset():
    vec = PixelCopterVectorEnv(2, obs_type="state", autoreset_mode="Disabled")
    vec.reset(seed=0)
    terminated = np.zeros(2, dtype=bool)
    while not terminated.any():
        *_, terminated, _, _ = vec.step(np.full(2, UP))
    with pytest.raises(RuntimeError, match="autoreset is disabled"):
        vec.step(np.full(2, UP))
    vec.reset(options={"reset_mask": terminated | ~terminated})
    vec.step(np.full(2, UP))


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="obs_type"):
        PixelCopterEnv(obs_type="ram")
    with pytest.raises(ValueError, match="render_mode"):
        PixelCopterEnv(render_mode="human")
    env = PixelCopterEnv()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(NOOP)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(2)
    with pytest.raises(ValueError, match="autoreset_mode"):
        PixelCopterVectorEnv(2, autoreset_mode="sometimes")
    with pytest.raises(ValueError, match="num_envs"):
        PixelCopterVectorEnv(0)
    vec = PixelCopterVectorEnv(3, obs_type="state")
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.zeros(3, dtype=int))
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match="actions"):
        vec.step(np.array([0, 1, 3]))
    with pytest.raises(ValueError, match="seeds"):
        vec.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="reset_mask"):
        vec.reset(options={"reset_mask": [True, False, True]})


# ---------------------------------------------- arguments checked as gymnasium checks them (issue 21)
BAD_SEEDS = [1.5, -1, True, "3", np.float64(2.0)]


@pytest.mark.parametrize("seed", BAD_SEEDS)
def test_bad_seeds_raise_gymnasiums_error_in_every_entry_point(seed):
    single, vec = PixelCopterEnv(), PixelCopterVectorEnv(3, obs_type="state")
    made_vec = gym.make_vec("dreamlab/PixelCopter-v0", num_envs=3)
    for reset in (single.reset, vec.reset, made_vec.reset, gym.make("dreamlab/PixelCopter-v0").reset):
        with pytest.raises(SeedError, match="seed must be None.* non-negative integer"):
            reset(seed=seed)
    with pytest.raises(SeedError, match="non-negative integer"):
        vec.reset(seed=[0, seed, 2])  # per-game seeds were converted with int(): 1.5 played seed 1
    assert issubclass(SeedError, gym.error.Error) and issubclass(SeedError, ValueError)


def test_numpy_integer_seeds_seed_like_python_ints():
    env = PixelCopterEnv(obs_type="state")
    np.testing.assert_array_equal(env.reset(seed=np.int64(4))[0], env.reset(seed=4)[0])
    vec = PixelCopterVectorEnv(3, obs_type="state")
    np.testing.assert_array_equal(vec.reset(seed=np.arange(3))[0], vec.reset(seed=[0, 1, 2])[0])
    with pytest.raises(SeedError, match="a list of 3 of them"):
        vec.reset(seed="abc")  # a string is not a list of seeds


@pytest.mark.parametrize("action", [True, False, 1.0, np.float64(0.0), np.array(1.0), np.bool_(True), "1"])
def test_single_env_refuses_float_and_bool_actions(action):
    env = PixelCopterEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be the integer 0"):
        env.step(action)
    env.step(np.int64(1))  # numpy integers (and 0-d integer arrays) are actions
    env.step(np.array(0))


@pytest.mark.parametrize("actions", [[0.0, 1.0, 0.0], [True, False, True], np.array([1, 0, 1], dtype=object)])
def test_vector_env_refuses_float_and_bool_actions(actions):
    vec = gym.make_vec("dreamlab/PixelCopter-v0", num_envs=3, obs_type="state")
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="actions must be integers"):
        vec.step(actions)
    vec.step(np.array([0, 1, 0], dtype=np.uint8))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_envs": True}, "num_envs must be an integer >= 1"),
        ({"num_envs": 2.0}, "num_envs must be an integer >= 1"),
        ({"num_envs": 2, "max_episode_steps": 2.5}, r"max_episode_steps \(or None\) must be an integer >= 1"),
        ({"num_envs": 2, "max_episode_steps": 0}, "max_episode_steps"),
        ({"num_envs": 2, "uniform_buffer": 100.5}, "uniform_buffer must be an integer >= 51"),
    ],
)
def test_vector_constructor_refuses_non_integer_counts(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PixelCopterVectorEnv(**kwargs)
    with pytest.raises(ValueError, match=message):
        gym.make_vec("dreamlab/PixelCopter-v0", **kwargs)


def test_vector_reset_refuses_options_that_are_not_a_dict():
    vec = PixelCopterVectorEnv(2, obs_type="state")
    with pytest.raises(ValueError, match="options must be a dict"):
        vec.reset(seed=0, options="reset_mask")


# ------------------------------------------------ incremental screens against the full drawing (issue 24)
@pytest.mark.parametrize("autoreset_mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_incremental_screens_equal_the_full_drawing_byte_for_byte(autoreset_mode, tmp_path):
    games = 64
    vec = PixelCopterVectorEnv(games, autoreset_mode=autoreset_mode, max_episode_steps=90, copy=False)
    obs, _ = vec.reset(seed=5)
    np.testing.assert_array_equal(obs, reference_screens(vec))
    rng = np.random.default_rng(2)
    resets = 0
    for step in range(400):
        climb = rng.random(games) < rng.choice([0.1, 0.4, 0.6])  # random play, and long (mostly falling) games
        obs, _, terminated, truncated, info = vec.step(np.where(climb, UP, NOOP))
        assert obs.tobytes() == reference_screens(vec).tobytes()
        resets += int((terminated | truncated).sum())
        if autoreset_mode == AutoresetMode.SAME_STEP and (terminated | truncated).any():
            assert all(frame.shape == (48, 48, 3) for frame in info["final_obs"][terminated | truncated])
        if step % 97 == 50:  # partial reset with new seeds, and a checkpoint round trip (screens redrawn)
            mask = rng.random(games) < 0.5
            obs, _ = vec.reset(seed=[int(s) for s in rng.integers(0, 1000, games)], options={"reset_mask": mask})
            assert obs.tobytes() == reference_screens(vec).tobytes()
            restored = PixelCopterVectorEnv(games, autoreset_mode=autoreset_mode, max_episode_steps=90)
            restored.load_state_dict(vec.state_dict())
            vec = restored
    assert resets > 5 * games  # many episodes ended and restarted on screens drawn over the last game's


def test_compiled_screens_equal_the_full_drawing_at_the_edges():
    """Hand-set states the random games rarely reach: the copter half off the top or bottom of the screen (or far
    beyond), blocks entering and leaving at either side (with rounding ties), terrain columns entering and leaving
    at every step of the schedule, and screens redrawn over such states."""
    schedule = R.terrain_schedule()
    games = len(schedule.touch)  # one game per schedule row: every way columns enter and leave the screen
    vec = PixelCopterVectorEnv(games, copy=False)
    vec.reset(seed=1)
    rng = np.random.default_rng(0)
    player_y = np.array(
        [-100.0, -2.5, -1.5, -1.0, -0.5, 0.0, 0.5, 1.5, 2.4, 24.0, 45.5, 46.5, 47.0, 47.5, 48.5, 49.5, 1e3]
    )
    block_x = np.arange(-7.0, 55.0, 0.5)  # lefts from off-screen left to off-screen right, every tie x.5
    block_y = np.array([0.0, 1.0, 3.0, 4.0, 12.0, 35.0, 43.0, 44.0, 47.0, 52.0])
    for redraw in range(4):
        vec._t[:] = np.arange(games) + redraw * schedule.period  # the rows again, with column indices shifted
        vec._y[:] = rng.choice(player_y, games)
        vec._block_x[:] = rng.choice(block_x, (games, 2))
        vec._block_y[:] = rng.choice(block_y, (games, 2))
        vec._block_on[:] = rng.random((games, 2)) < 0.8
        vec._ring[:] = rng.integers(R.HEIGHT // 2 - 6, R.HEIGHT // 2 + 7, vec._ring.shape)  # the terrain's range
        assert vec._observe().tobytes() == reference_screens(vec).tobytes()


def test_state_observation_envs_draw_only_for_render():
    vec = PixelCopterVectorEnv(6, obs_type="state", render_mode="rgb_array")
    vec.reset(seed=3)
    assert vec._screens is None
    for _ in range(30):
        vec.step(np.full(6, NOOP))
    np.testing.assert_array_equal(np.stack(vec.render()), reference_screens(vec))


def test_copy_true_returns_arrays_the_caller_keeps():
    vec = gym.make_vec("dreamlab/PixelCopter-v0", num_envs=4)
    first, _ = vec.reset(seed=0)
    kept = first.copy()
    second, *_ = vec.step(np.full(4, UP))
    assert not np.shares_memory(first, second) and first.flags.writeable
    np.testing.assert_array_equal(first, kept)  # stepping did not touch the earlier observation
    first[:] = 0  # writing into a returned observation does not disturb the screens drawn next
    third, *_ = vec.step(np.full(4, UP))
    np.testing.assert_array_equal(third, reference_screens(vec))


def test_copy_false_returns_a_read_only_view_the_next_step_overwrites():
    vec = gym.make_vec("dreamlab/PixelCopter-v0", num_envs=4, copy=False)
    first, _ = vec.reset(seed=0)
    before = first.copy()
    second, *_ = vec.step(np.full(4, UP))
    assert np.shares_memory(first, second) and not np.array_equal(first, before)
    np.testing.assert_array_equal(first, reference_screens(vec))
    with pytest.raises(ValueError, match="read-only"):
        second[0, 0, 0] = 1
    with pytest.raises(ValueError, match="copy must be True or False"):
        PixelCopterVectorEnv(2, copy="no")


def test_benchmark_refuses_a_bad_config_in_one_line():
    script = Path(__file__).resolve().parents[1] / "experiments" / "pixelcopter_benchmark.py"
    arguments = [sys.executable, str(script), "--preset", "smoke", "--num_envs", "0"]
    run = subprocess.run(arguments, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.strip().splitlines()[-1] == "error: --num_envs must be positive, got 0"

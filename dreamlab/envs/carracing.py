"""CarRacing-v3 as World Models sees it: the 96x96 view without its dashboard, resized to 64x64 RGB.

Actions are continuous (steer in [-1, 1], gas in [0, 1], brake in [0, 1]); reward is -0.1 per frame plus
1000/N per new track tile, so "solved" is an average of 900 over 100 episodes (Ha & Schmidhuber reach 906 +- 21).
The environment needs Box2D (``pip install 'dreamlab[box2d]'``); it is imported only when an env is made.
"""

from __future__ import annotations

import cv2
import gymnasium as gym
import numpy as np

ENV_ID = "CarRacing-v3"
MAX_EPISODE_STEPS = 1000
SOLVED_RETURN = 900.0
# The bottom 12 rows of the 96x96 frame are the dashboard (speed, ABS, steering bars); World Models crops them.
_VIEW_ROWS = 84


def preprocess_frame(frame: np.ndarray, size: int = 64) -> np.ndarray:
    """(96, 96, 3) uint8 -> (size, size, 3) uint8: dashboard cropped, area-averaged."""
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {frame.shape}")
    return cv2.resize(frame[:_VIEW_ROWS], (size, size), interpolation=cv2.INTER_AREA)


class CarRacingFrames(gym.ObservationWrapper):
    """CarRacing observations cropped and resized to (size, size, 3) uint8."""

    def __init__(self, env: gym.Env, size: int = 64):
        super().__init__(env)
        self.size = size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return preprocess_frame(observation, self.size)


def make_car_racing(max_episode_steps: int = MAX_EPISODE_STEPS, frame_size: int = 64) -> gym.Env:
    """CarRacing-v3 with (frame_size, frame_size, 3) uint8 observations, truncated at ``max_episode_steps``."""
    if max_episode_steps < 1:
        raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
    try:
        import Box2D  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "CarRacing-v3 needs Box2D, which is not installed: pip install 'dreamlab[box2d]' "
            "(or pip install 'gymnasium[box2d]')"
        ) from err
    env = gym.make(ENV_ID, max_episode_steps=max_episode_steps)
    return CarRacingFrames(env, frame_size)

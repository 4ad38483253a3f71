"""ViZDoom Take Cover as World Models sees it: 64x64 RGB frames, three discrete actions, +1 per tic alive.

The scenario comes from the ``vizdoom`` package's gymnasium registration ``VizdoomTakeCover-v1``: a 320x240 screen,
``Discrete(3)`` actions (0 no-op, 1 move right, 2 move left), a living reward of +1 per tic and no frame skip.
The scenario itself never times out; as in Ha & Schmidhuber (2018) an episode is cut at 2100 tics (60 seconds of
game time), so returns lie in [1, 2100] and "solved" means a mean of at least 750 over 100 episodes.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import gymnasium as gym
import numpy as np

ENV_ID = "VizdoomTakeCover-v1"
ACTION_MEANINGS = ("no-op", "right", "left")
MAX_EPISODE_STEPS = 2100
SOLVED_RETURN = 750.0
# ViZDoom writes its run files under ./_vizdoom/ and aborts the process ("Failed to create ./_vizdoom/ directory:
# File exists") when two games started at once both find it missing and race to create it.
VIZDOOM_WORK_DIR = "_vizdoom"


def resize_frame(frame: np.ndarray, size: int = 64) -> np.ndarray:
    """(H, W, 3) uint8 screen -> (size, size, 3) uint8, area-averaged (no aliasing of the small fireballs)."""
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {frame.shape}")
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)


class TakeCoverFrames(gym.ObservationWrapper):
    """Replaces ViZDoom's ``{"screen", "gamevariables"}`` observation by the screen resized to (size, size, 3)."""

    def __init__(self, env: gym.Env, size: int = 64):
        super().__init__(env)
        self.size = size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        return resize_frame(observation["screen"], self.size)


def make_take_cover(max_episode_steps: int = MAX_EPISODE_STEPS, frame_size: int = 64) -> gym.Env:
    """ViZDoom Take Cover with (frame_size, frame_size, 3) uint8 observations, truncated at ``max_episode_steps``."""
    if max_episode_steps < 1:
        raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
    try:
        import vizdoom.gymnasium_wrapper  # noqa: F401  (registers the Vizdoom* environments)
    except ImportError as err:
        raise ImportError("ViZDoom Take Cover needs the vizdoom package: pip install vizdoom") from err
    os.makedirs(VIZDOOM_WORK_DIR, exist_ok=True)  # so concurrent workers never race ViZDoom's own mkdir
    env = gym.make(ENV_ID, max_episode_steps=max_episode_steps)
    return TakeCoverFrames(env, frame_size)

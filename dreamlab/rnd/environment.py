"""Vectorised environments and observation preprocessing for PPO + RND.

Any gymnasium environment with a discrete action space works: a native vector environment is used when the
registration has a vector entry point that accepts ``autoreset_mode``, else a ``SyncVectorEnv``. Rollouts need
``SAME_STEP`` autoreset, so that every step's observation is a real state (the final observation of an
episode comes in ``info["final_obs"]``) and no step of the rollout is a dummy reset step.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

# ITU-R BT.601 luma weights, as the Atari preprocessing of the paper (cv2's RGB2GRAY).
_LUMA = np.array([0.299, 0.587, 0.114])


def make_vector_env(
    env_id: str,
    num_envs: int,
    max_episode_steps: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> VectorEnv:
    """``num_envs`` copies of ``env_id`` with SAME_STEP autoreset; raises unless actions are Discrete."""
    if num_envs < 1:
        raise ValueError(f"num_envs must be positive, got {num_envs}")
    kwargs = dict(env_kwargs or {})
    if max_episode_steps:
        kwargs["max_episode_steps"] = max_episode_steps
    spec = gym.spec(env_id)
    envs: VectorEnv | None = None
    if spec.vector_entry_point is not None:
        try:
            envs = gym.make_vec(
                env_id,
                num_envs,
                vectorization_mode="vector_entry_point",
                autoreset_mode=AutoresetMode.SAME_STEP,
                **kwargs,
            )
        except TypeError:  # a vector entry point without autoreset_mode: use the sync wrapper below
            envs = None
    if envs is None:
        envs = gym.make_vec(
            env_id,
            num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
            **kwargs,
        )
    if envs.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
        envs.close()
        raise ValueError(f"{env_id}: could not build a vector environment with SAME_STEP autoreset")
    if not isinstance(envs.single_action_space, gym.spaces.Discrete):
        space = envs.single_action_space
        envs.close()
        raise ValueError(f"{env_id}: PPO + RND here needs a Discrete action space, got {space}")
    return envs


def frame_shape(observation_space: gym.spaces.Box, grayscale: bool) -> tuple[int, ...]:
    """Shape of one preprocessed frame: (C, H, W) for images (C = 1 with ``grayscale``), (D,) for vectors."""
    shape = observation_space.shape
    if len(shape) == 3:
        height, width, channels = shape
        return (1 if grayscale and channels == 3 else channels, height, width)
    if len(shape) == 1:
        return tuple(shape)
    raise ValueError(f"observations must be (H, W, C) images or (D,) vectors, got shape {shape}")


def preprocess(obs: np.ndarray, grayscale: bool) -> np.ndarray:
    """A batch of raw observations as network frames: HWC images -> CHW (grey when asked, uint8); vectors float32."""
    obs = np.asarray(obs)
    if obs.ndim == 4:
        if grayscale and obs.shape[-1] == 3:
            grey = np.rint(obs @ _LUMA).astype(np.uint8)
            return grey[:, None]
        return np.ascontiguousarray(obs.transpose(0, 3, 1, 2))
    if obs.ndim == 2:
        return obs.astype(np.float32)
    raise ValueError(f"expected a batch of (H, W, C) images or (D,) vectors, got shape {obs.shape}")


class FrameStack:
    """The last ``k`` frames of each environment concatenated along the first (channel/feature) axis.

    The policy sees stacked frames so that velocities are observable; a new episode's stack starts as k copies
    of its first frame.
    """

    def __init__(self, num_envs: int, frame: tuple[int, ...], k: int, dtype: np.dtype):
        if k < 1:
            raise ValueError(f"frame_stack must be >= 1, got {k}")
        self.k = k
        self.channels = frame[0]
        self.frames = np.zeros((num_envs, k * frame[0], *frame[1:]), dtype=dtype)

    def reset(self, frames: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Fill the stacks of the masked environments (all by default) with copies of ``frames``."""
        mask = np.ones(len(self.frames), dtype=bool) if mask is None else mask
        repeats = (self.k,) + (1,) * (frames.ndim - 2)
        self.frames[mask] = np.tile(frames[mask], repeats)
        return self.frames

    def with_frame(self, frames: np.ndarray) -> np.ndarray:
        """The stacks after pushing ``frames``, without changing the stored stacks."""
        return np.concatenate([self.frames[:, self.channels :], frames], axis=1)

    def push(self, frames: np.ndarray, new_episode: np.ndarray) -> np.ndarray:
        """Append one frame per environment; environments starting an episode get a fresh stack."""
        self.frames = self.with_frame(frames)
        if new_episode.any():
            self.reset(frames, new_episode)
        return self.frames


def sticky_actions(actions: np.ndarray, previous: np.ndarray, prob: float, rng: np.random.Generator) -> np.ndarray:
    """Machado et al. (2018) sticky actions: each environment repeats its previous action with probability ``prob``.

    ``previous`` is -1 where there is no previous action (a new episode); those environments take ``actions``.
    """
    if prob <= 0:
        return actions
    repeat = (rng.random(len(actions)) < prob) & (previous >= 0)
    return np.where(repeat, previous, actions)


def final_observations(next_obs: np.ndarray, info: dict[str, Any], done: np.ndarray) -> np.ndarray:
    """Each environment's observation at the end of this step: ``info["final_obs"]`` where an episode ended."""
    if not done.any():
        return next_obs
    if "final_obs" not in info:
        raise RuntimeError("the vector environment did not report final_obs for finished episodes (SAME_STEP)")
    final = next_obs.copy()
    for env in np.flatnonzero(done):
        final[env] = info["final_obs"][env]
    return final

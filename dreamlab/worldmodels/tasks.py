"""The environments World Models is run on, described by what the rest of the pipeline needs to know."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch


@dataclass(frozen=True)
class Task:
    """An environment and its action interface.

    Discrete tasks store actions as int64 indices and feed M a one-hot vector; continuous tasks store and feed the
    action vector itself. ``action_low``/``action_high`` bound continuous actions.
    """

    name: str
    make_env: Callable[..., gym.Env]  # make_env(max_episode_steps, **options)
    discrete: bool
    action_size: int  # number of actions (discrete) or action dimensions (continuous)
    max_episode_steps: int
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()
    # Maps a controller's tanh outputs in [-1, 1] to the env's continuous action (identity if None).
    squash: Callable[[torch.Tensor], torch.Tensor] | None = None
    # A counter of the episode's progress (CarRacing: road tiles visited), for ending training episodes that stall.
    progress: Callable[[gym.Env], int] | None = None

    def random_action(self, rng: np.random.Generator) -> np.ndarray:
        """A uniformly random action: an int64 scalar array or a float32 vector within the bounds."""
        if self.discrete:
            return np.asarray(rng.integers(self.action_size), dtype=np.int64)
        return rng.uniform(self.action_low, self.action_high).astype(np.float32)

    def action_features(self, actions: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """What M sees of an action: one-hot (..., n_actions) for discrete, the vector (..., dims) otherwise."""
        if self.discrete:
            return torch.nn.functional.one_hot(actions.long(), self.action_size).to(dtype)
        return actions.to(dtype)

    @property
    def action_feature_size(self) -> int:
        return self.action_size


def _make_doom(max_episode_steps: int) -> gym.Env:
    from dreamlab.envs.doom import make_take_cover

    return make_take_cover(max_episode_steps)


def _make_car_racing(max_episode_steps: int, lean_render: bool = True) -> gym.Env:
    # lean_render's observations are pixel-equal to gymnasium's (tests/test_carracing_env.py) at 1.4x the speed.
    from dreamlab.envs.carracing import make_car_racing

    return make_car_racing(max_episode_steps, lean_render=lean_render)


def _road_tiles_visited(env: gym.Env) -> int:
    return env.unwrapped.tile_visited_count


def _car_racing_action(raw: torch.Tensor) -> torch.Tensor:
    """World Models' CarRacing mapping: steer = a0, gas = (a1 + 1) / 2, brake = clip(a2, 0, 1)."""
    steer, gas, brake = raw.unbind(-1)
    return torch.stack([steer, (gas + 1) / 2, brake.clamp(0, 1)], dim=-1)


TASKS: dict[str, Task] = {
    "doom": Task("doom", _make_doom, discrete=True, action_size=3, max_episode_steps=2100),
    "carracing": Task(
        "carracing",
        _make_car_racing,
        discrete=False,
        action_size=3,
        max_episode_steps=1000,
        action_low=(-1.0, 0.0, 0.0),
        action_high=(1.0, 1.0, 1.0),
        squash=_car_racing_action,
        progress=_road_tiles_visited,
    ),
}


def get_task(name: str) -> Task:
    """The task called ``name`` (``doom`` or ``carracing``)."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown World Models task {name!r}; choose from {sorted(TASKS)}") from None

"""Argument checks shared by dreamlab's environments, in gymnasium's conventions.

Seeds follow :func:`gymnasium.utils.seeding.np_random`: ``None`` or a non-negative integer; anything else raises
:class:`SeedError`, which is both gymnasium's ``error.Error`` (what ``np_random`` raises) and a ``ValueError``.
Numpy integers are accepted as seeds (gymnasium rejects them only because it tests ``isinstance(seed, int)``);
bools are refused everywhere an integer is expected: ``True`` as a seed, an action or a count is a mistake, not 1.
Actions follow ``action_space.contains``: integers only, never floats, whatever their value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np


class SeedError(gym.error.Error, ValueError):
    """A seed that is not ``None`` or a non-negative integer."""


def is_integer(value: Any) -> bool:
    """A Python or numpy integer scalar (0-d integer arrays included), and not a bool."""
    if isinstance(value, np.ndarray):
        return value.shape == () and np.issubdtype(value.dtype, np.integer)
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_int(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int if it is an integer >= ``minimum``; a ValueError naming ``name`` otherwise."""
    if not is_integer(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_seed(seed: Any) -> int | None:
    """``None`` or ``seed`` as a non-negative int; :class:`SeedError` otherwise."""
    if seed is None:
        return None
    if not is_integer(seed) or seed < 0:
        raise SeedError(f"seed must be None or a non-negative integer, got {seed!r}")
    return int(seed)


def check_vector_seeds(seed: Any, num_envs: int) -> list[int | None]:
    """Per-game seeds from a vector env's ``reset(seed=...)``, as gymnasium's vector envs read it.

    ``None`` leaves every game unseeded, an integer ``s`` seeds game ``i`` with ``s + i``, and a sequence of
    ``num_envs`` entries (each ``None`` or an integer) seeds game ``i`` with entry ``i``.
    """
    if seed is None:
        return [None] * num_envs
    if is_integer(seed):
        first = check_seed(seed)
        return [first + i for i in range(num_envs)]
    if isinstance(seed, str | bytes) or not isinstance(seed, Sequence | np.ndarray):
        raise SeedError(f"seed must be None, a non-negative integer or a list of {num_envs} of them, got {seed!r}")
    if len(seed) != num_envs:
        raise SeedError(f"got {len(seed)} seeds for {num_envs} environments")
    return [check_seed(s) for s in seed]

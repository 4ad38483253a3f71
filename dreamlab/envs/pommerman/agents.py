"""Agents that act on one observation dict: the base protocol, a random agent and team builders."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np

from dreamlab.envs.pommerman.constants import NUM_ACTIONS, NUM_AGENTS


class Agent(ABC):
    """A Pommerman player: ``act(observation) -> action`` (an int in 0..5); ``reset()`` before each game."""

    def reset(self) -> None:  # noqa: B027 - stateless agents need no reset
        """Forget per-game memory."""

    @abstractmethod
    def act(self, observation: Mapping[str, Any]) -> int:
        """The action for this step."""


class RandomAgent(Agent):
    """Uniform over the six actions, like the playground's RandomAgent (``action_space.sample()``)."""

    def __init__(self, seed: int | np.random.Generator | None = None) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, observation: Mapping[str, Any]) -> int:
        return int(self._rng.integers(NUM_ACTIONS))


POLICIES = ("random", "simple", "mixed")


def make_agents(policy: str, seed: int | None = None) -> list[Agent]:
    """Four agents: ``random``, ``simple`` or ``mixed`` (Simple, Random, Simple, Random as in the recordings).

    Each agent gets its own random stream spawned from ``seed``.
    """
    from dreamlab.envs.pommerman.simple_agent import SimpleAgent

    if policy not in POLICIES:
        raise ValueError(f"unknown Pommerman policy {policy!r}; choose one of {list(POLICIES)}")
    streams = np.random.SeedSequence(seed).spawn(NUM_AGENTS)
    agents: list[Agent] = []
    for agent_id, stream in enumerate(streams):
        rng = np.random.default_rng(stream)
        simple = policy == "simple" or (policy == "mixed" and agent_id % 2 == 0)
        agents.append(SimpleAgent(rng) if simple else RandomAgent(rng))
    return agents

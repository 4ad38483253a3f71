"""Agents that act on one observation dict: the base protocol, a random agent and team builders."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dreamlab.envs.checks import check_seed
from dreamlab.envs.pommerman.constants import NUM_ACTIONS, NUM_AGENTS


class Agent(ABC):
    """A Pommerman player: ``act(observation) -> action`` (an int in 0..5); ``reset()`` before each game."""

    def reset(self) -> None:  # noqa: B027 - stateless agents need no reset
        """Forget per-game memory."""

    @abstractmethod
    def act(self, observation: Mapping[str, Any]) -> int:
        """The action for this step."""


def agent_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """An agent's random stream: ``seed`` itself if a Generator, else a new one from a checked seed."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(check_seed(seed))


def check_agents(agents: Sequence[Agent]) -> None:
    """A ValueError unless ``agents`` is one :class:`Agent` per player."""
    if isinstance(agents, str | bytes) or not isinstance(agents, Sequence) or len(agents) != NUM_AGENTS:
        raise ValueError(f"need a sequence of {NUM_AGENTS} agents, got {agents!r}")
    for agent_id, agent in enumerate(agents):
        if not isinstance(agent, Agent):
            raise ValueError(f"agent {agent_id} must be a dreamlab Pommerman Agent, got {agent!r}")


class RandomAgent(Agent):
    """Uniform over the six actions, like the playground's RandomAgent (``action_space.sample()``)."""

    def __init__(self, seed: int | np.random.Generator | None = None) -> None:
        self._rng = agent_rng(seed)

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
    streams = np.random.SeedSequence(check_seed(seed)).spawn(NUM_AGENTS)
    agents: list[Agent] = []
    for agent_id, stream in enumerate(streams):
        rng = np.random.default_rng(stream)
        simple = policy == "simple" or (policy == "mixed" and agent_id % 2 == 0)
        agents.append(SimpleAgent(rng) if simple else RandomAgent(rng))
    return agents

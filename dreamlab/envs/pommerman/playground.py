"""Adapter to the real Pommerman playground (``pip install`` from MultiAgentLearning/playground), when present.

``PlaygroundPommerman`` gives the playground's PommeFFACompetition-v0 the same API as ``Pommerman`` (observations
with plain-int codes, ``Result`` infos, JSON snapshots), so experiments can run on either backend unchanged:
``make_env("playground")``.
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dreamlab.envs.checks import check_seed
from dreamlab.envs.pommerman.agents import Agent, check_agents
from dreamlab.envs.pommerman.constants import Action, Result
from dreamlab.envs.pommerman.env import Pommerman
from dreamlab.envs.pommerman.forward_model import check_actions
from dreamlab.envs.pommerman.json_state import from_json_info

BACKENDS = ("dreamlab", "playground")
PLAYGROUND_ENV_ID = "PommeFFACompetition-v0"


def playground_available() -> bool:
    """Whether the real ``pommerman`` package can be imported."""
    return importlib.util.find_spec("pommerman") is not None


class PlaygroundPommerman:
    """The playground's PommeFFACompetition-v0 behind ``Pommerman``'s API."""

    def __init__(self) -> None:
        if not playground_available():
            raise ImportError(
                "the Pommerman playground is not installed (package 'pommerman' from "
                "github.com/MultiAgentLearning/playground); use the built-in backend, make_env('dreamlab')"
            )
        import pommerman

        # The playground insists on agent objects; actions are passed to step() directly, so they never act.
        self._env = pommerman.make(PLAYGROUND_ENV_ID, [pommerman.agents.BaseAgent() for _ in range(4)])
        self._done = False

    def reset(self, seed: int | None = None) -> list[dict[str, Any]]:
        """New game; a seed seeds Python's and numpy's global RNGs first, which the playground draws from."""
        seed = check_seed(seed)
        if seed is not None:
            random.seed(seed)
            np.random.seed(seed)
        self._done = False
        return self._convert(self._env.reset())

    def step(self, actions: Sequence[int]) -> tuple[list[dict[str, Any]], list[int], bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("the game ended; call reset() to start a new one")
        obs, rewards, done, info = self._env.step(check_actions(actions))
        self._done = bool(done)
        converted = {"result": Result[info["result"].name]}
        if "winners" in info:
            converted["winners"] = [int(w) for w in info["winners"]]
        return self._convert(obs), [int(r) for r in rewards], self._done, converted

    @property
    def done(self) -> bool:
        return self._done

    def get_observations(self) -> list[dict[str, Any]]:
        return self._convert(self._env.get_observations())

    def act(self, agents: Sequence[Agent], obs: Sequence[Mapping[str, Any]]) -> list[int]:
        """Each living agent's action for its observation; dead agents stop (and are not asked)."""
        check_agents(agents)
        bodies = self._env._agents
        return [
            agent.act(o) if body.is_alive else int(Action.Stop)
            for agent, o, body in zip(agents, obs, bodies, strict=True)
        ]

    def get_json_info(self) -> dict[str, str]:
        return self._env.get_json_info()

    def set_json_info(self, info: Mapping[str, Any]) -> list[dict[str, Any]]:
        from_json_info(info)  # validates the snapshot with a clear error before the playground sees it
        self._env._init_game_state = dict(info)
        self._env.set_json_info()
        self._env._init_game_state = None
        self._done = bool(self._env._get_done())
        return self.get_observations()

    def _convert(self, observations: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Playground observations with enum members replaced by their codes, keyed like ``Pommerman``'s."""
        converted = []
        for obs in observations:
            converted.append(
                {
                    "alive": [int(a) for a in obs["alive"]],
                    "board": np.asarray(obs["board"], dtype=np.uint8).copy(),
                    "bomb_blast_strength": np.asarray(obs["bomb_blast_strength"], dtype=np.float64),
                    "bomb_life": np.asarray(obs["bomb_life"], dtype=np.float64),
                    "bomb_moving_direction": np.asarray(obs["bomb_moving_direction"], dtype=np.float64),
                    "flame_life": np.asarray(obs["flame_life"], dtype=np.float64),
                    "game_type": int(getattr(obs["game_type"], "value", obs["game_type"])),
                    "position": (int(obs["position"][0]), int(obs["position"][1])),
                    "blast_strength": int(obs["blast_strength"]),
                    "can_kick": bool(obs["can_kick"]),
                    "teammate": int(getattr(obs["teammate"], "value", obs["teammate"])),
                    "ammo": int(obs["ammo"]),
                    "enemies": [int(getattr(e, "value", e)) for e in obs["enemies"]],
                    # Steps taken so far, as in the JSON snapshot and in ``Pommerman``'s observations.
                    "step_count": int(self._env._step_count),
                }
            )
        return converted


def make_env(backend: str = "dreamlab") -> Pommerman | PlaygroundPommerman:
    """``Pommerman()`` (built in) or ``PlaygroundPommerman()`` (the real playground, if installed)."""
    if backend == "dreamlab":
        return Pommerman()
    if backend == "playground":
        return PlaygroundPommerman()
    raise ValueError(f"unknown Pommerman backend {backend!r}; choose one of {list(BACKENDS)}")

"""``Pommerman``: the PommeFFACompetition-v0 game with the playground's API."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from dreamlab.envs.checks import check_int, check_seed
from dreamlab.envs.pommerman import forward_model
from dreamlab.envs.pommerman.agents import Agent, check_agents
from dreamlab.envs.pommerman.board import make_board, make_items
from dreamlab.envs.pommerman.constants import AGENT_START_POSITIONS, MAX_STEPS, Action
from dreamlab.envs.pommerman.json_state import from_json_info, to_json_info
from dreamlab.envs.pommerman.observations import observations
from dreamlab.envs.pommerman.state import Bomber, GameState


class Pommerman:
    """Four-player free-for-all Pommerman on an 11x11 board (PommeFFACompetition-v0).

    ``reset(seed)`` draws a board with Python's ``random.Random(seed)`` exactly as the playground does after
    ``random.seed(seed)``, so seeds give the playground's boards; without a seed the next board comes from the
    environment's running random stream. ``step(actions)`` takes four ints (0 Stop, 1 Up, 2 Down, 3 Left,
    4 Right, 5 Bomb) and returns ``(observations, rewards, done, info)``. ``get_json_info()`` and
    ``set_json_info(info)`` move states in and out in the playground's JSON snapshot format. Arguments are
    checked as gymnasium checks them (:mod:`dreamlab.envs.checks`): ``max_steps`` an integer >= 1, a seed ``None``
    or a non-negative integer (:class:`~dreamlab.envs.checks.SeedError`), actions integers 0..5 (no floats or
    bools), agents four :class:`Agent` objects.
    """

    def __init__(self, max_steps: int = MAX_STEPS) -> None:
        self.max_steps = check_int(max_steps, "max_steps", 1)
        self._rng = random.Random()
        self._state: GameState | None = None

    @property
    def state(self) -> GameState:
        """The live game state (mutated by ``step``; use ``state.copy()`` to branch)."""
        if self._state is None:
            raise RuntimeError("the game has no state yet: call reset() or set_json_info() first")
        return self._state

    def reset(self, seed: int | None = None) -> list[dict[str, Any]]:
        """Start a new game on a fresh board and return the four observations."""
        seed = check_seed(seed)  # random.seed(-s) would silently replay seed s's board
        if seed is not None:
            self._rng.seed(seed)
        board = make_board(self._rng)
        items = make_items(self._rng, board)
        agents = [Bomber(agent_id, position) for agent_id, position in enumerate(AGENT_START_POSITIONS)]
        self._state = GameState(board=board, agents=agents, items=items)
        return self.get_observations()

    def step(self, actions: Sequence[int]) -> tuple[list[dict[str, Any]], list[int], bool, dict[str, Any]]:
        """Apply one action per agent; dead agents' actions are ignored."""
        state = self.state
        if forward_model.is_done(state, self.max_steps):
            raise RuntimeError(f"the game ended at step {state.step_count}; call reset() to start a new one")
        forward_model.step(state, actions)
        done = forward_model.is_done(state, self.max_steps)
        return (
            self.get_observations(),
            forward_model.rewards(state, self.max_steps),
            done,
            forward_model.result(state, self.max_steps),
        )

    @property
    def done(self) -> bool:
        return forward_model.is_done(self.state, self.max_steps)

    def get_observations(self) -> list[dict[str, Any]]:
        return observations(self.state)

    def act(self, agents: Sequence[Agent], obs: Sequence[Mapping[str, Any]]) -> list[int]:
        """Each living agent's action for its observation; dead agents stop (and are not asked)."""
        check_agents(agents)
        if len(obs) != len(agents):
            raise ValueError(f"need one observation per agent ({len(agents)}), got {len(obs)}")
        return [
            agent.act(o) if body.is_alive else int(Action.Stop)
            for agent, o, body in zip(agents, obs, self.state.agents, strict=True)
        ]

    def get_json_info(self) -> dict[str, str]:
        """The playground's snapshot of the current state (a dict of JSON strings)."""
        return to_json_info(self.state)

    def set_json_info(self, info: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Put the game in the state of a playground snapshot and return the observations there."""
        self._state = from_json_info(info)
        return self.get_observations()

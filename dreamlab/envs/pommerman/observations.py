"""Per-agent observations with the playground's keys (fully observable FFA)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dreamlab.envs.pommerman.constants import GAME_TYPE_FFA, NUM_AGENTS, Item, agent_item
from dreamlab.envs.pommerman.state import GameState

_ENEMIES = tuple([agent_item(j) for j in range(NUM_AGENTS) if j != i] for i in range(NUM_AGENTS))
_AGENT_CODES = tuple(agent_item(i) for i in range(NUM_AGENTS))


def observations(state: GameState) -> list[dict[str, Any]]:
    """One dict per agent.

    board (uint8 codes, 0 passage ... 13 agent 3), bomb_blast_strength, bomb_life, bomb_moving_direction
    (Action value of a sliding bomb, 0 otherwise) and flame_life (flame life + 1, so 3, 2, 1 on the three steps a
    flame shows) are float64 maps as in the playground; position (row, col), ammo, blast_strength, can_kick,
    teammate (9, the dummy agent, in FFA), enemies (board codes of the other three), alive (board codes of the
    living agents), game_type (1, FFA) and step_count (steps taken so far, as in the JSON snapshot).

    The arrays are shared by the four dicts and read-only (writing to one raises); copy one to modify it.
    """
    size = state.board_size
    board = np.array(state.board, dtype=np.uint8)
    blast = np.zeros((size, size))
    life = np.zeros((size, size))
    moving = np.zeros((size, size))
    flame_life = np.zeros((size, size))
    for bomb in state.bombs:
        blast[bomb.position] = bomb.blast_strength
        life[bomb.position] = bomb.life
        if bomb.moving_direction is not None:
            moving[bomb.position] = bomb.moving_direction
    for flame in state.flames:
        flame_life[flame.position] = flame.life + 1
    for array in (board, blast, life, moving, flame_life):
        array.flags.writeable = False
    alive = [_AGENT_CODES[a.agent_id] for a in state.agents if a.is_alive]
    return [
        {
            "alive": list(alive),
            "board": board,
            "bomb_blast_strength": blast,
            "bomb_life": life,
            "bomb_moving_direction": moving,
            "flame_life": flame_life,
            "game_type": GAME_TYPE_FFA,
            "position": agent.position,
            "blast_strength": agent.blast_strength,
            "can_kick": agent.can_kick,
            "teammate": int(Item.AgentDummy),
            "ammo": agent.ammo,
            "enemies": list(_ENEMIES[agent.agent_id]),
            "step_count": state.step_count,
        }
        for agent in state.agents
    ]

"""The numbers and codes of the PommeFFACompetition-v0 game, as the Pommerman playground defines them.

Enum member names follow the playground (``Item.ExtraBomb``, ``Action.Bomb``, ``Result.Win``) so that code and
recorded games move between the two without renaming.
"""

from __future__ import annotations

from enum import IntEnum

BOARD_SIZE = 11
NUM_RIGID = 36
NUM_WOOD = 36
NUM_ITEMS = 20
MAX_STEPS = 800
NUM_AGENTS = 4

DEFAULT_AMMO = 1
DEFAULT_BLAST_STRENGTH = 2
# A bomb is laid with life 10 and ticked in the same step, so it shows 9 and explodes 9 steps later.
BOMB_LIFE = 10
# A flame is created with life 2 and ticked 2 -> 1 -> 0 before it is removed at the start of a later step.
FLAME_LIFE = 2
MAX_AMMO = 10
MAX_BLAST_STRENGTH = 10  # the playground caps blast strength at agent_view_size or 10; FFA has no view size

# Corners, agent 0..3: top left, bottom left, bottom right, top right (positions are (row, col)).
AGENT_START_POSITIONS = ((1, 1), (BOARD_SIZE - 2, 1), (BOARD_SIZE - 2, BOARD_SIZE - 2), (1, BOARD_SIZE - 2))

GAME_TYPE_FFA = 1  # the playground's GameType.FFA, reported in every observation as ``game_type``


class Item(IntEnum):
    """Board codes."""

    Passage = 0
    Rigid = 1
    Wood = 2
    Bomb = 3
    Flames = 4
    Fog = 5
    ExtraBomb = 6
    IncrRange = 7
    Kick = 8
    AgentDummy = 9
    Agent0 = 10
    Agent1 = 11
    Agent2 = 12
    Agent3 = 13


class Action(IntEnum):
    """The six actions of every agent."""

    Stop = 0
    Up = 1
    Down = 2
    Left = 3
    Right = 4
    Bomb = 5


class Result(IntEnum):
    """Outcome reported in ``info['result']``."""

    Win = 0
    Loss = 1
    Tie = 2
    Incomplete = 3


NUM_ACTIONS = len(Action)


def agent_item(agent_id: int) -> int:
    """Board code of agent ``agent_id`` (10..13)."""
    return int(Item.Agent0) + agent_id

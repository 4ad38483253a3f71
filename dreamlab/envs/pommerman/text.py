"""Boards as text: one character per cell, for printing games and writing hand-made positions.

``.`` passage, ``#`` rigid wall, ``w`` wood, ``b`` bomb, ``*`` flames, ``?`` fog, ``e`` extra bomb, ``r`` range,
``k`` kick, ``d`` dummy agent, ``0``-``3`` agents.
"""

from __future__ import annotations

from collections.abc import Sequence

from dreamlab.envs.pommerman.constants import NUM_AGENTS, Item, agent_item
from dreamlab.envs.pommerman.state import Bomber, GameState

CELL_CHARS = {
    int(Item.Passage): ".",
    int(Item.Rigid): "#",
    int(Item.Wood): "w",
    int(Item.Bomb): "b",
    int(Item.Flames): "*",
    int(Item.Fog): "?",
    int(Item.ExtraBomb): "e",
    int(Item.IncrRange): "r",
    int(Item.Kick): "k",
    int(Item.AgentDummy): "d",
    **{agent_item(i): str(i) for i in range(NUM_AGENTS)},
}
_CHAR_CODES = {char: code for code, char in CELL_CHARS.items()}


def board_to_text(board: Sequence[Sequence[int]]) -> str:
    """The board as lines of cell characters."""
    return "\n".join("".join(CELL_CHARS[int(v)] for v in row) for row in board)


def state_from_text(rows: Sequence[str]) -> GameState:
    """A game state from a square text board; agents not on it are dead (at (0, 0)).

    Bombs and flames carry a life and an owner the text cannot give: append them to ``state.bombs`` /
    ``state.flames`` (their cells are drawn on the next step).
    """
    size = len(rows)
    if size == 0 or any(len(row) != size for row in rows):
        raise ValueError(f"a text board must be square, got row lengths {[len(row) for row in rows]}")
    board = []
    positions: dict[int, tuple[int, int]] = {}
    for r, row in enumerate(rows):
        codes = []
        for c, char in enumerate(row):
            if char not in _CHAR_CODES:
                raise ValueError(f"unknown board character {char!r} at ({r}, {c}); legend: {sorted(_CHAR_CODES)}")
            if char in "b*":
                raise ValueError(f"{char!r} at ({r}, {c}): add bombs and flames as objects, not as text")
            code = _CHAR_CODES[char]
            if char.isdigit():
                if int(char) in positions:
                    raise ValueError(f"agent {char} appears twice on the text board")
                positions[int(char)] = (r, c)
            codes.append(code)
        board.append(codes)
    agents = [
        Bomber(i, positions[i]) if i in positions else Bomber(i, (0, 0), is_alive=False) for i in range(NUM_AGENTS)
    ]
    return GameState(board=board, agents=agents)

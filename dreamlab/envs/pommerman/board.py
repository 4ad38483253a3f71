"""Board generation with the playground's rules and the playground's random draws.

The playground draws boards with Python's ``random`` module: symmetric pairs of rigid then wooden walls sampled
from a set of free off-diagonal cells, redrawn until at most 4 passages are cut off, then 20 power-ups hidden
under random wooden walls. Drawing from a ``random.Random`` in the same order (and sampling from the set in the
iteration order Python gives it, which is what the playground's ``random.sample(set)`` did) makes
``make_board(random.Random(s))`` the board the playground builds after ``random.seed(s)``.
"""

from __future__ import annotations

import itertools
import random

from dreamlab.envs.pommerman.constants import (
    AGENT_START_POSITIONS,
    BOARD_SIZE,
    NUM_ITEMS,
    NUM_RIGID,
    NUM_WOOD,
    Item,
    agent_item,
)

Board = list[list[int]]
Position = tuple[int, int]

# The playground redraws a board while more than this many passages are unreachable from the last agent.
MAX_INACCESSIBLE_PASSAGES = 4
_PASSAGE = int(Item.Passage)
_RIGID = int(Item.Rigid)
_WOOD = int(Item.Wood)
_POWERUP_CHOICES = (int(Item.ExtraBomb), int(Item.IncrRange), int(Item.Kick))


def _draw_board(rng: random.Random, num_rigid: int, num_wood: int) -> Board:
    size = BOARD_SIZE
    board = [[_PASSAGE] * size for _ in range(size)]
    # Walls come in pairs mirrored about the main diagonal, so diagonal cells never hold one.
    free = {(r, c) for r, c in itertools.product(range(size), range(size)) if r != c}
    for agent_id, (r, c) in enumerate(AGENT_START_POSITIONS):
        board[r][c] = agent_item(agent_id)
        free.discard((r, c))
    # The two cells beside each agent along the edges stay clear so nobody starts boxed in.
    for i in (2, 3):
        for cell in (
            (1, i),
            (i, 1),
            (size - 2, size - i - 1),
            (size - i - 1, size - 2),
            (1, size - i - 1),
            (size - i - 1, 1),
            (i, size - 2),
            (size - 2, i),
        ):
            free.remove(cell)
    # Wood lines the edges between the corners (cells 4..size-5 of rows/columns 1 and size-2).
    for i in range(4, size - 4):
        for r, c in ((1, i), (size - i - 1, 1), (size - 2, size - i - 1), (size - i - 1, size - 2)):
            board[r][c] = _WOOD
            free.remove((r, c))
        num_wood -= 4
    for value, count in ((_RIGID, num_rigid), (_WOOD, num_wood)):
        while count > 0:
            r, c = rng.sample(tuple(free), 1)[0]
            free.remove((r, c))
            free.remove((c, r))
            board[r][c] = value
            board[c][r] = value
            count -= 2
    return board


def inaccessible_passages(board: Board, start: Position) -> list[Position]:
    """Passages that cannot be reached from ``start`` through non-rigid cells (wood counts as open)."""
    size = len(board)
    seen = {start}
    stack = [start]
    while stack:
        r, c = stack.pop()
        for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if 0 <= nr < size and 0 <= nc < size and (nr, nc) not in seen and board[nr][nc] != _RIGID:
                seen.add((nr, nc))
                stack.append((nr, nc))
    return [(r, c) for r in range(size) for c in range(size) if board[r][c] == _PASSAGE and (r, c) not in seen]


def make_board(rng: random.Random, num_rigid: int = NUM_RIGID, num_wood: int = NUM_WOOD) -> Board:
    """A symmetric 11x11 board with agents in the corners, redrawn until at most 4 passages are unreachable."""
    if num_rigid % 2 or num_wood % 2:
        raise ValueError(f"wall counts must be even (walls come in mirrored pairs), got {num_rigid}, {num_wood}")
    # The playground checks reachability from the last agent in its list, the one at the bottom right.
    start = (BOARD_SIZE - 2, BOARD_SIZE - 2)
    while True:
        board = _draw_board(rng, num_rigid, num_wood)
        if len(inaccessible_passages(board, start)) <= MAX_INACCESSIBLE_PASSAGES:
            return board


def make_items(rng: random.Random, board: Board, num_items: int = NUM_ITEMS) -> dict[Position, int]:
    """Hide ``num_items`` power-ups (extra bomb, range, kick) under distinct wooden walls."""
    size = len(board)
    num_wood = sum(row.count(_WOOD) for row in board)
    if num_items > num_wood:
        raise ValueError(f"cannot hide {num_items} power-ups under {num_wood} wooden walls")
    items: dict[Position, int] = {}
    while len(items) < num_items:
        r = rng.randint(0, size - 1)
        c = rng.randint(0, size - 1)
        if board[r][c] != _WOOD or (r, c) in items:
            continue
        items[(r, c)] = rng.choice(_POWERUP_CHOICES)
    return items

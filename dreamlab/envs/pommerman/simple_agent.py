"""The playground's rule-based SimpleAgent: flee bombs, bomb adjacent enemies, chase enemies and power-ups,
bomb wood, otherwise wander without going back to recently visited cells.

The decision rules are the playground's. Distances come from a breadth-first search over the cells within 10
steps (fog, rigid walls and flames left out; only passages, power-ups and the agent itself are walked through).
Among equally short paths the playground keeps, for every cell, the first predecessor found or, with probability
1/2 for each later one, that one instead; we draw the same choice lazily along the path we follow, which gives
the same distribution. A test checks our agent makes the playground's choices in the recorded games.

Cells are flat indices ``row * size + col`` internally, for speed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from dreamlab.envs.pommerman.agents import Agent, agent_rng
from dreamlab.envs.pommerman.constants import Action, Item

INF = float("inf")
SEARCH_DEPTH = 10
RECENTLY_VISITED_LENGTH = 6

_STOP, _UP, _DOWN, _LEFT, _RIGHT, _BOMB_ACTION = (int(a) for a in Action)
_PASSAGE = int(Item.Passage)
_WOOD = int(Item.Wood)
_FOG = int(Item.Fog)
_POWERUPS = (int(Item.ExtraBomb), int(Item.IncrRange), int(Item.Kick))
_NUM_CODES = len(Item)
_WALKABLE = frozenset((_PASSAGE, *_POWERUPS, *range(int(Item.Agent0), int(Item.Agent3) + 1)))
_EXCLUDED = frozenset((_FOG, int(Item.Rigid), int(Item.Flames)))
# The playground's neighbour order (up, down, left, right) and (row, col) step of each move.
_MOVE_ORDER = (_UP, _DOWN, _LEFT, _RIGHT)
_MOVE_STEP = {_STOP: (0, 0), _UP: (-1, 0), _DOWN: (1, 0), _LEFT: (0, -1), _RIGHT: (0, 1)}


class _Board:
    """Flat-index geometry of a ``size`` x ``size`` board."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.row = [i // size for i in range(size * size)]
        self.col = [i % size for i in range(size * size)]
        # Per cell: its on-board neighbours, in the playground's order (up, down, left, right).
        self.neighbours = [
            tuple(
                (r + dr) * size + c + dc
                for dr, dc in (_MOVE_STEP[move] for move in _MOVE_ORDER)
                if 0 <= r + dr < size and 0 <= c + dc < size
            )
            for r, c in zip(self.row, self.col, strict=True)
        ]
        self._windows: dict[tuple[int, int], tuple[int, ...]] = {}

    def target(self, cell: int, move: int) -> int | None:
        """The cell a move leads to, None off the board (Stop leads to ``cell``)."""
        dr, dc = _MOVE_STEP[move]
        r, c = self.row[cell] + dr, self.col[cell] + dc
        return r * self.size + c if 0 <= r < self.size and 0 <= c < self.size else None

    def window(self, me: int, depth: int) -> tuple[int, ...]:
        """Cells the search considers: within ``depth`` steps, and (a playground quirk) stopping one short of
        ``depth`` rows below and columns to the right."""
        key = (me, depth)
        if key not in self._windows:
            mr, mc = self.row[me], self.col[me]
            size = self.size
            self._windows[key] = tuple(
                r * size + c
                for r in range(max(0, mr - depth), min(size, mr + depth))
                for c in range(max(0, mc - depth), min(size, mc + depth))
                if abs(r - mr) + abs(c - mc) <= depth
            )
        return self._windows[key]


@functools.lru_cache(maxsize=8)
def _geometry(size: int) -> _Board:
    return _Board(size)


class Search:
    """The playground SimpleAgent's search from the agent's cell.

    ``items`` maps a board code to the window cells holding it (row-major); ``dist`` holds steps from the agent
    (INF when unreachable, None outside the window or on fog, rigid walls and flames). ``predecessors(cell)``
    lists a reached cell's neighbours one step closer, in the order the search met them.
    """

    def __init__(self, board: list[int], me: int, walkable: tuple[bool, ...], depth: int, geometry: _Board) -> None:
        dist: list[float | None] = [None] * len(board)
        items: dict[int, list[int]] = {}
        searched = 0
        for cell in geometry.window(me, depth):
            value = board[cell]
            if value in _EXCLUDED:
                continue
            searched += 1
            dist[cell] = INF
            if value in items:
                items[value].append(cell)
            else:
                items[value] = [cell]
        neighbours = geometry.neighbours
        dist[me] = 0
        queue = [me]
        for cell in queue:  # grows while we walk it: a FIFO breadth-first search
            if walkable[board[cell]]:
                reach = dist[cell] + 1
                for neighbour in neighbours[cell]:
                    if dist[neighbour] == INF:
                        dist[neighbour] = reach
                        queue.append(neighbour)
        self.geometry = geometry
        self.board = board
        self.walkable = walkable
        self.items = items
        self.dist = dist
        self._queue = queue
        self._rank: dict[int, int] | None = None
        # The largest distance in the window: infinite if some cell was not reached, else the last one queued.
        self.max_dist = dist[queue[-1]] if len(queue) == searched else INF

    def predecessors(self, cell: int) -> list[int]:
        """Walkable neighbours one step closer to the agent, in the order the search dequeued them."""
        closer = self.dist[cell] - 1
        found = [n for n in self.geometry.neighbours[cell] if self.dist[n] == closer and self.walkable[self.board[n]]]
        if len(found) > 1:
            if self._rank is None:
                self._rank = {c: i for i, c in enumerate(self._queue)}
            found.sort(key=self._rank.__getitem__)
        return found

    def nearest(self, kinds: tuple[int, ...] | list[int], radius: int) -> int | None:
        """The closest cell holding one of ``kinds`` within ``radius`` (the last one met wins ties)."""
        nearest = None
        best = self.max_dist
        dist = self.dist
        for kind in kinds:
            for cell in self.items.get(kind, ()):
                d = dist[cell]
                if d <= radius and d <= best:
                    nearest = cell
                    best = d
        return nearest


class SimpleAgent(Agent):
    """The playground's baseline SimpleAgent re-implemented (same rules, its own random stream)."""

    def __init__(self, seed: int | np.random.Generator | None = None) -> None:
        self._rng = agent_rng(seed)
        self._recently_visited: list[tuple[int, int]] = []
        self._prev_direction: int | None = None

    def reset(self) -> None:
        self._recently_visited = []
        self._prev_direction = None

    # The agent's random decisions, kept apart so that a replay can steer them.
    def _pick(self, options: list[int]) -> int:
        """Uniform choice among ``options``."""
        return options[int(self._rng.integers(len(options)))]

    def _keep_chasing(self, direction: int) -> bool:
        """Whether to step towards an enemy again in the same direction as last time (a fair coin)."""
        return bool(self._rng.random() < 0.5)

    def _predecessor(self, cell: int, search: Search) -> int:
        """Which of the equally close predecessors of ``cell`` its path comes through.

        The playground's search takes the first one found, then switches to each later one with probability 1/2:
        the last is kept with probability 1/2, the one before with 1/4, and so on.
        """
        candidates = search.predecessors(cell)
        for candidate in reversed(candidates[1:]):
            if self._rng.random() < 0.5:
                return candidate
        return candidates[0]

    def _direction_towards(self, me: int, target: int | None, search: Search, path: dict[int, int]) -> int | None:
        """First move along a shortest path to ``target``; ``path`` memoises the predecessor drawn per cell, as
        the playground's search fixes one per cell."""
        if target is None:
            return None
        cell = target
        while True:
            if cell not in path:
                path[cell] = self._predecessor(cell, search)
            if path[cell] == me:
                return _direction(me, cell, search.geometry.size)
            cell = path[cell]

    def act(self, observation: Mapping[str, Any]) -> int:
        board_array = np.asarray(observation["board"])
        size = board_array.shape[0]
        geometry = _geometry(size)
        board = board_array.ravel().tolist()
        r, c = observation["position"]
        me = int(r) * size + int(c)
        strength_map = np.asarray(observation["bomb_blast_strength"]).ravel()
        bombs = [(int(cell), int(strength_map[cell])) for cell in np.flatnonzero(strength_map > 0)]
        enemies = [int(e) for e in observation["enemies"]]
        walkable = _walkable_codes(tuple(enemies))
        ammo = int(observation["ammo"])
        blast_strength = int(observation["blast_strength"])
        search = Search(board, me, walkable, SEARCH_DEPTH, geometry)
        path: dict[int, int] = {}

        unsafe = _directions_in_range_of_bomb(me, bombs, search, geometry)
        if unsafe:
            return self._pick(_find_safe_directions(board, me, unsafe, walkable, geometry))

        if _is_adjacent_enemy(search, enemies) and _can_bomb_safely(ammo, blast_strength, search, me, geometry):
            return _BOMB_ACTION

        direction = self._direction_towards(me, search.nearest(enemies, 3), search, path)
        if direction is not None and (self._prev_direction != direction or self._keep_chasing(direction)):
            self._prev_direction = direction
            return direction

        direction = self._direction_towards(me, search.nearest(_POWERUPS, 2), search, path)
        if direction is not None:
            return direction

        if search.nearest((_WOOD,), 1) is not None:
            return _BOMB_ACTION if _can_bomb_safely(ammo, blast_strength, search, me, geometry) else _STOP

        direction = self._direction_towards(me, search.nearest((_WOOD,), 2), search, path)
        if direction is not None and _safe_from_bombs(geometry.target(me, direction), bombs, geometry):
            return direction

        # Wander: a valid, bomb-safe move, preferably to a cell not visited lately, preferably not standing still.
        candidates = []
        for move in (_STOP, _LEFT, _RIGHT, _UP, _DOWN):
            cell = geometry.target(me, move)
            if cell is not None and walkable[board[cell]] and _safe_from_bombs(cell, bombs, geometry):
                candidates.append((move, (geometry.row[cell], geometry.col[cell])))
        fresh = [(move, cell) for move, cell in candidates if cell not in self._recently_visited]
        moves = [move for move, _ in fresh or candidates]
        if len(moves) > 1:
            moves = [move for move in moves if move != _STOP]
        moves = moves or [_STOP]
        self._recently_visited = [*self._recently_visited, (geometry.row[me], geometry.col[me])]
        self._recently_visited = self._recently_visited[-RECENTLY_VISITED_LENGTH:]
        return self._pick(moves)


@functools.lru_cache(maxsize=64)
def _walkable_codes(enemies: tuple[int, ...]) -> tuple[bool, ...]:
    """Per board code: can the search walk through it (passages, power-ups and agents other than enemies)."""
    return tuple(code in _WALKABLE and code not in enemies for code in range(_NUM_CODES))


def _direction(me: int, neighbour: int, size: int) -> int:
    """The move from ``me`` to an adjacent cell."""
    delta = neighbour - me
    if delta == -size:
        return _UP
    if delta == size:
        return _DOWN
    return _LEFT if delta == -1 else _RIGHT


def _directions_in_range_of_bomb(
    me: int, bombs: list[tuple[int, int]], search: Search, geometry: _Board
) -> dict[int, int]:
    """Directions in which a bomb within reach threatens us, with the largest threatening strength (in the
    order the playground's dict fills, which decides the escape tried first when standing on a bomb)."""
    threats: dict[int, int] = {}
    row, col = geometry.row, geometry.col
    for cell, strength in bombs:
        distance = search.dist[cell]
        if distance is None or distance > strength:
            continue
        if cell == me:
            directions: tuple[int, ...] = (_RIGHT, _LEFT, _UP, _DOWN)
        elif row[cell] == row[me]:
            directions = (_RIGHT if col[me] < col[cell] else _LEFT,)
        elif col[cell] == col[me]:
            directions = (_DOWN if row[me] < row[cell] else _UP,)
        else:
            continue
        for direction in directions:
            threats[direction] = max(threats.get(direction, 0), strength)
    return threats


def _find_safe_directions(
    board: list[int], me: int, unsafe: dict[int, int], walkable: tuple[bool, ...], geometry: _Board
) -> list[int]:
    if len(unsafe) == 4:
        # Standing on a bomb: leave by the first direction that does not lead into a dead end within reach.
        after = board[:]
        after[me] = int(Item.Bomb)
        for direction, reach in unsafe.items():
            start = geometry.target(me, direction)
            if start is not None and walkable[after[start]] and not _is_stuck(after, start, reach, walkable, geometry):
                return [direction]
        return [_STOP]
    safe: list[int] = []
    off_board: list[int] = []
    for direction in _MOVE_ORDER:
        cell = geometry.target(me, direction)
        if cell is None:
            off_board.append(direction)
        elif direction not in unsafe and (walkable[board[cell]] or board[cell] == _FOG):
            safe.append(direction)
    if not safe:
        safe = [direction for direction in unsafe if direction not in off_board]
    return safe or [_STOP]


def _is_stuck(board: list[int], start: int, reach: int, walkable: tuple[bool, ...], geometry: _Board) -> bool:
    """True unless the walkable region around ``start`` holds a cell off its row and column or beyond ``reach``."""
    row, col = geometry.row, geometry.col
    sr, sc = row[start], col[start]
    seen = {start}
    frontier = [start]
    while frontier:
        cell = frontier.pop()
        r, c = row[cell], col[cell]
        if (r != sr and c != sc) or abs(r - sr) + abs(c - sc) > reach:
            return False
        for neighbour in geometry.neighbours[cell]:
            if neighbour not in seen and walkable[board[neighbour]]:
                seen.add(neighbour)
                frontier.append(neighbour)
    return True


def _is_adjacent_enemy(search: Search, enemies: list[int]) -> bool:
    return any(search.dist[cell] == 1 for enemy in enemies for cell in search.items.get(enemy, ()))


def _can_bomb_safely(ammo: int, blast_strength: int, search: Search, me: int, geometry: _Board) -> bool:
    """Ammo left and a reachable passage out of the new bomb's line or beyond its strength."""
    if ammo < 1:
        return False
    row, col = geometry.row, geometry.col
    for cell in search.items.get(_PASSAGE, ()):
        d = search.dist[cell]
        if d == INF:
            continue
        if d > blast_strength or (row[cell] != row[me] and col[cell] != col[me]):
            return True
    return False


def _safe_from_bombs(cell: int, bombs: list[tuple[int, int]], geometry: _Board) -> bool:
    """The cell is not in line with a bomb within its strength (walls are ignored, as in the playground)."""
    row, col = geometry.row, geometry.col
    r, c = row[cell], col[cell]
    return not any(
        (r == row[b] and abs(col[b] - c) <= strength) or (c == col[b] and abs(row[b] - r) <= strength)
        for b, strength in bombs
    )

"""The playground's JSON snapshot of a game: a dict whose values are JSON strings.

Keys: board_size, step_count, board, agents (agent_id, is_alive, position, ammo, blast_strength, can_kick),
bombs (position, bomber_id, life, blast_strength, moving_direction), flames (position, life), items
([[position, item], ...]) and intended_actions. ``to_json_info`` writes exactly the strings the playground's
``get_json_info`` writes, so snapshots can be compared as text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dreamlab.envs.pommerman.constants import NUM_ACTIONS, NUM_AGENTS, Item
from dreamlab.envs.pommerman.state import Bomb, Bomber, Flame, GameState, Position

JSON_KEYS = ("board_size", "step_count", "board", "agents", "bombs", "flames", "items", "intended_actions")
_MOVING_DIRECTIONS = (1, 2, 3, 4)


def to_json_info(state: GameState) -> dict[str, str]:
    """The playground's ``get_json_info()`` snapshot of ``state``."""
    snapshot: dict[str, Any] = {
        "board_size": state.board_size,
        "step_count": state.step_count,
        "board": state.board,
        "agents": [
            {
                "agent_id": a.agent_id,
                "is_alive": a.is_alive,
                "position": a.position,
                "ammo": a.ammo,
                "blast_strength": a.blast_strength,
                "can_kick": a.can_kick,
            }
            for a in state.agents
        ],
        "bombs": [
            {
                "position": b.position,
                "bomber_id": b.bomber_id,
                "life": b.life,
                "blast_strength": b.blast_strength,
                "moving_direction": b.moving_direction,
            }
            for b in state.bombs
        ],
        "flames": [{"position": f.position, "life": f.life} for f in state.flames],
        "items": [[position, item] for position, item in state.items.items()],
        "intended_actions": state.intended_actions,
    }
    return {key: json.dumps(value) for key, value in snapshot.items()}


def from_json_info(info: Mapping[str, Any]) -> GameState:
    """Rebuild a ``GameState`` from a playground snapshot (values may be JSON strings or already decoded)."""
    if not isinstance(info, Mapping):
        raise ValueError(f"a Pommerman JSON snapshot is a dict of JSON strings, got {type(info).__name__}")
    missing = [key for key in JSON_KEYS if key not in info and key != "intended_actions"]
    if missing:
        raise ValueError(f"Pommerman JSON snapshot lacks key(s) {missing}; it needs {list(JSON_KEYS)}")
    field = {key: _decode(info, key) for key in JSON_KEYS if key in info}

    size = _int(field["board_size"], "board_size")
    board = field["board"]
    if (
        not isinstance(board, list)
        or len(board) != size
        or any(not isinstance(row, list) or len(row) != size for row in board)
    ):
        raise ValueError(f"snapshot 'board' must be a {size}x{size} list of rows")
    codes = {int(item) for item in Item}
    board = [[_int(v, "board cell") for v in row] for row in board]
    bad = sorted({v for row in board for v in row} - codes)
    if bad:
        raise ValueError(f"snapshot 'board' holds unknown codes {bad}; valid codes are 0..13")

    agents_by_id: dict[int, Bomber] = {}
    for record in _list(field["agents"], "agents"):
        try:
            agent = Bomber(
                agent_id=_int(record["agent_id"], "agent_id"),
                position=_position(record["position"], size, "agent position"),
                ammo=_int(record["ammo"], "ammo"),
                blast_strength=_int(record["blast_strength"], "blast_strength"),
                can_kick=bool(record["can_kick"]),
                is_alive=bool(record["is_alive"]),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed agent record in snapshot: {record!r}") from error
        agents_by_id[agent.agent_id] = agent
    if sorted(agents_by_id) != list(range(NUM_AGENTS)):
        raise ValueError(f"snapshot must describe agents 0..{NUM_AGENTS - 1}, got ids {sorted(agents_by_id)}")

    bombs = []
    for record in _list(field["bombs"], "bombs"):
        try:
            direction = record["moving_direction"]
            bomb = Bomb(
                position=_position(record["position"], size, "bomb position"),
                bomber_id=_int(record["bomber_id"], "bomber_id"),
                life=_int(record["life"], "bomb life"),
                blast_strength=_int(record["blast_strength"], "bomb blast_strength"),
                moving_direction=None if direction is None else _int(direction, "moving_direction"),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed bomb record in snapshot: {record!r}") from error
        if bomb.bomber_id not in agents_by_id:
            raise ValueError(f"bomb at {bomb.position} names unknown bomber {bomb.bomber_id}")
        if bomb.moving_direction is not None and bomb.moving_direction not in _MOVING_DIRECTIONS:
            raise ValueError(f"bomb at {bomb.position} has moving_direction {bomb.moving_direction}; need 1..4 or null")
        bombs.append(bomb)

    flames = []
    for record in _list(field["flames"], "flames"):
        try:
            flames.append(Flame(_position(record["position"], size, "flame position"), _int(record["life"], "life")))
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed flame record in snapshot: {record!r}") from error

    items: dict[Position, int] = {}
    for record in _list(field["items"], "items"):
        if not isinstance(record, list) or len(record) != 2:
            raise ValueError(f"malformed item record in snapshot: {record!r}; need [[row, col], item]")
        items[_position(record[0], size, "item position")] = _int(record[1], "item")

    intended = field.get("intended_actions", [])
    intended = [_int(a, "intended action") for a in _list(intended, "intended_actions")]
    if any(not 0 <= a < NUM_ACTIONS for a in intended):
        raise ValueError(f"snapshot 'intended_actions' must be ints in 0..{NUM_ACTIONS - 1}, got {intended}")

    return GameState(
        board=board,
        agents=[agents_by_id[i] for i in range(NUM_AGENTS)],
        bombs=bombs,
        flames=flames,
        items=items,
        step_count=_int(field["step_count"], "step_count"),
        intended_actions=intended,
    )


def _decode(info: Mapping[str, Any], key: str) -> Any:
    value = info[key]
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"snapshot value {key!r} is not valid JSON: {error}") from error
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ValueError(f"snapshot {what} must be an integer, got {value!r}")
    return int(value)


def _list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise ValueError(f"snapshot {what!r} must be a list, got {type(value).__name__}")
    return value


def _position(value: Any, size: int, what: str) -> Position:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"snapshot {what} must be [row, col], got {value!r}")
    r, c = _int(value[0], what), _int(value[1], what)
    if not (0 <= r < size and 0 <= c < size):
        raise ValueError(f"snapshot {what} {[r, c]} lies off the {size}x{size} board")
    return (r, c)

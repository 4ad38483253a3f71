"""The PommeFFACompetition forward model: one simultaneous step of all four agents, rewards and termination.

The order of operations and the collision bookkeeping follow the playground's ``ForwardModel.step`` so that
recorded playground games replay transition for transition, including its corner cases:

1. flames age; a flame that reached life 0 is removed and reveals the power-up hidden in its cell (if any);
2. living agents lay bombs or pick a desired cell; kicked bombs pick the next cell along their direction;
3. agents (or bombs) swapping cells through each other stay put (an agent crossing a bomb stops only the bomb);
4. two or more agents, or two or more bombs, wanting the same cell all stay put, repeated until stable;
5. an agent walking into a bomb kicks it one cell on if it can kick and that cell is free, else both stay;
   the result is resolved again until stable (an agent and a bomb may only share the cell the bomb was laid on);
6. agents move and collect power-ups; bombs tick and explode at life 0 or when standing in flames, the
   explosions chaining through other bombs in range; flames kill the agents they cover.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from dreamlab.envs.checks import is_integer
from dreamlab.envs.pommerman.constants import (
    BOMB_LIFE,
    MAX_AMMO,
    MAX_BLAST_STRENGTH,
    MAX_STEPS,
    NUM_ACTIONS,
    NUM_AGENTS,
    Action,
    Item,
    Result,
)
from dreamlab.envs.pommerman.state import Bomb, Flame, GameState, Position

_PASSAGE = int(Item.Passage)
_RIGID = int(Item.Rigid)
_WOOD = int(Item.Wood)
_BOMB = int(Item.Bomb)
_FLAMES = int(Item.Flames)
_EXTRA_BOMB = int(Item.ExtraBomb)
_INCR_RANGE = int(Item.IncrRange)
_KICK = int(Item.Kick)
_AGENT0 = int(Item.Agent0)
_STOP = int(Action.Stop)
_LAY_BOMB = int(Action.Bomb)
# Cells a moving or kicked bomb cannot enter: walls and power-ups.
_BOMB_BLOCKERS = frozenset((_RIGID, _WOOD, _EXTRA_BOMB, _INCR_RANGE, _KICK))
_AGENT_BLOCKERS = frozenset((_RIGID, _WOOD))
_OFFSETS = {int(Action.Up): (-1, 0), int(Action.Down): (1, 0), int(Action.Left): (0, -1), int(Action.Right): (0, 1)}
_FOUR_DIRECTIONS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def check_actions(actions: Sequence[int]) -> list[int]:
    """Four ints in 0..5 as a list, or a ValueError naming what is wrong.

    Python and numpy integers only, as gymnasium's ``Discrete.contains`` reads an action: a float (even 2.0) or
    a bool is refused, not rounded or read as 0 and 1.
    """
    if isinstance(actions, str | bytes):
        raise ValueError(f"actions must be {NUM_AGENTS} ints in 0..{NUM_ACTIONS - 1}, got {actions!r}")
    try:
        raw = list(actions)
    except TypeError as error:
        raise ValueError(f"actions must be {NUM_AGENTS} ints in 0..{NUM_ACTIONS - 1}, got {actions!r}") from error
    if len(raw) != NUM_AGENTS:
        raise ValueError(f"need one action per agent ({NUM_AGENTS}), got {len(raw)}: {raw}")
    for agent_id, action in enumerate(raw):
        if not is_integer(action) or not 0 <= action < NUM_ACTIONS:
            raise ValueError(f"action of agent {agent_id} must be an int in 0..{NUM_ACTIONS - 1}, got {action!r}")
    return [int(action) for action in raw]


def _next(position: Position, action: int) -> Position:
    dr, dc = _OFFSETS[action]
    return (position[0] + dr, position[1] + dc)


def step(state: GameState, actions: Sequence[int], max_blast_strength: int = MAX_BLAST_STRENGTH) -> None:
    """Advance ``state`` in place by one step of the four ``actions`` (dead agents' actions are ignored)."""
    actions = check_actions(actions)
    board = state.board
    size = len(board)
    agents = state.agents
    items = state.items

    # 1. Age the flames; a finished flame uncovers the power-up that was under the wood it burnt.
    flames = []
    for flame in state.flames:
        if flame.life == 0:
            r, c = flame.position
            board[r][c] = items.pop(flame.position, _PASSAGE)
        else:
            flame.life -= 1
            flames.append(flame)
    # A cell keeps burning while any of its (possibly several) flames lives.
    for flame in flames:
        r, c = flame.position
        board[r][c] = _FLAMES

    # 2. Agents lay bombs or choose where to go; their cells are cleared and redrawn at the end.
    alive = [agent for agent in agents if agent.is_alive]
    bombs = state.bombs
    agent_want = [agent.position for agent in alive]
    for i, agent in enumerate(alive):
        r, c = agent.position
        board[r][c] = _PASSAGE
        action = actions[agent.agent_id]
        if action == _LAY_BOMB:
            if agent.ammo > 0 and all(bomb.position != agent.position for bomb in bombs):
                agent.ammo -= 1
                bombs.append(Bomb(agent.position, agent.agent_id, BOMB_LIFE, agent.blast_strength))
        elif action != _STOP:
            nr, nc = _next(agent.position, action)
            if 0 <= nr < size and 0 <= nc < size and board[nr][nc] not in _AGENT_BLOCKERS:
                agent_want[i] = (nr, nc)

    bomb_want = [bomb.position for bomb in bombs]
    for j, bomb in enumerate(bombs):
        r, c = bomb.position
        board[r][c] = _PASSAGE
        if bomb.moving_direction is not None:
            nr, nc = _next(bomb.position, bomb.moving_direction)
            if 0 <= nr < size and 0 <= nc < size and board[nr][nc] not in _BOMB_BLOCKERS:
                bomb_want[j] = (nr, nc)

    # 3. Swaps through a shared edge: two agents both stay, two bombs both stay, a bomb meeting an agent stays.
    crossings: dict[tuple[Position, Position], tuple[int, bool]] = {}
    for i, agent in enumerate(alive):
        if agent_want[i] != agent.position:
            edge = _edge(agent.position, agent_want[i])
            if edge in crossings:
                agent_want[i] = agent.position
                other, _ = crossings[edge]
                agent_want[other] = alive[other].position
            else:
                crossings[edge] = (i, True)
    for j, bomb in enumerate(bombs):
        if bomb_want[j] != bomb.position:
            edge = _edge(bomb.position, bomb_want[j])
            if edge in crossings:
                bomb_want[j] = bomb.position
                other, is_agent = crossings[edge]
                if not is_agent:
                    bomb_want[other] = bombs[other].position
            else:
                crossings[edge] = (j, False)

    # 4. Contested cells. Counts only ever grow (a reverted mover still counts at the cell it wanted), as in the
    # playground, so a cell once contested stays contested for this step.
    agent_count: defaultdict[Position, int] = defaultdict(int)
    bomb_count: defaultdict[Position, int] = defaultdict(int)
    for cell in agent_want:
        agent_count[cell] += 1
    for cell in bomb_want:
        bomb_count[cell] += 1
    changed = True
    while changed:
        changed = False
        for i, agent in enumerate(alive):
            want = agent_want[i]
            if want != agent.position and (agent_count[want] > 1 or bomb_count[want] > 1):
                agent_want[i] = agent.position
                agent_count[agent.position] += 1
                changed = True
        for j, bomb in enumerate(bombs):
            want = bomb_want[j]
            if want != bomb.position and (bomb_count[want] > 1 or agent_count[want] > 1):
                bomb_want[j] = bomb.position
                bomb_count[bomb.position] += 1
                changed = True

    # 5. Agents meeting bombs: kick, or both stay.
    kicker_of: dict[int, int] = {}  # bomb index -> index (in ``alive``) of the agent that kicked it
    kicked_by: dict[int, int] = {}  # agent index -> bomb index
    bomb_reverts: list[tuple[int, Position]] = []
    agent_reverts: list[tuple[int, Position]] = []
    for j, bomb in enumerate(bombs):
        want = bomb_want[j]
        if agent_count[want] == 0:
            continue
        meeting = [i for i in range(len(alive)) if agent_want[i] == want]
        if not meeting:
            continue
        if len(meeting) != 1:
            raise RuntimeError(f"collision resolution left agents {meeting} on cell {want}")
        i = meeting[0]
        agent = alive[i]
        if want == agent.position:
            # The agent stays; a bomb sliding into it stops.
            if want != bomb.position:
                bomb_reverts.append((j, bomb.position))
            continue
        if not agent.can_kick:
            bomb_reverts.append((j, bomb.position))
            agent_reverts.append((i, agent.position))
            continue
        direction = actions[agent.agent_id]
        target = _next(want, direction)
        tr, tc = target
        if (
            0 <= tr < size
            and 0 <= tc < size
            and agent_count[target] == 0
            and bomb_count[target] == 0
            and board[tr][tc] not in _BOMB_BLOCKERS
        ):
            # The kicker will stand where the bomb was; the target is checked again below.
            bomb_count[want] = 0
            bomb_reverts.append((j, target))
            kicker_of[j] = i
            kicked_by[i] = j
            bomb.moving_direction = direction
        else:
            bomb_reverts.append((j, bomb.position))
            agent_reverts.append((i, agent.position))
    for j, cell in bomb_reverts:
        bomb_want[j] = cell
        bomb_count[cell] += 1
    for i, cell in agent_reverts:
        agent_want[i] = cell
        agent_count[cell] += 1

    changed = bool(bomb_reverts or agent_reverts)
    while changed:
        changed = False
        for i, agent in enumerate(alive):
            want = agent_want[i]
            if want != agent.position and (agent_count[want] > 1 or bomb_count[want] != 0):
                # Blocked after all: a kick this agent made is undone too.
                if i in kicked_by:
                    j = kicked_by.pop(i)
                    del kicker_of[j]
                    bomb_want[j] = bombs[j].position
                    bomb_count[bombs[j].position] += 1
                agent_want[i] = agent.position
                agent_count[agent.position] += 1
                changed = True
        for j, bomb in enumerate(bombs):
            want = bomb_want[j]
            if want == bomb.position and j not in kicker_of:
                continue
            if bomb_count[want] > 1 or agent_count[want] != 0:
                bomb_want[j] = bomb.position
                bomb_count[bomb.position] += 1
                if j in kicker_of:
                    i = kicker_of.pop(j)
                    del kicked_by[i]
                    agent_want[i] = alive[i].position
                    agent_count[alive[i].position] += 1
                changed = True

    # 6. Move. A bomb that did not move (and was not kicked) stops sliding.
    for j, bomb in enumerate(bombs):
        if bomb_want[j] == bomb.position and j not in kicker_of:
            bomb.moving_direction = None
        else:
            bomb.position = bomb_want[j]
    for i, agent in enumerate(alive):
        if agent_want[i] != agent.position:
            agent.position = agent_want[i]
            r, c = agent.position
            found = board[r][c]
            if found == _EXTRA_BOMB:
                agent.ammo = min(agent.ammo + 1, MAX_AMMO)
            elif found == _INCR_RANGE:
                agent.blast_strength = min(agent.blast_strength + 1, max_blast_strength)
            elif found == _KICK:
                agent.can_kick = True

    # Bombs tick; those at life 0 or standing in flames explode, and explosions set off the bombs they reach.
    exploded: set[Position] = set()
    any_exploding = False
    for bomb in bombs:
        bomb.life -= 1
        r, c = bomb.position
        if bomb.life == 0:
            any_exploding = True
        elif board[r][c] == _FLAMES:
            bomb.life = 0
            any_exploding = True
    while any_exploding:
        remaining = []
        for bomb in bombs:
            if bomb.life != 0:
                remaining.append(bomb)
                continue
            bomber = agents[bomb.bomber_id]
            bomber.ammo = min(bomber.ammo + 1, MAX_AMMO)
            _mark_blast(board, exploded, bomb)
        bombs = remaining
        any_exploding = False
        for bomb in bombs:
            if bomb.position in exploded:
                bomb.life = 0
                any_exploding = True
    state.bombs = bombs

    for bomb in bombs:
        r, c = bomb.position
        board[r][c] = _BOMB
    # New flames join in row-major order, as the playground lists them.
    flames.extend(Flame(position) for position in sorted(exploded))
    for flame in flames:
        r, c = flame.position
        board[r][c] = _FLAMES
    state.flames = flames

    for agent in alive:
        r, c = agent.position
        if board[r][c] == _FLAMES:
            agent.is_alive = False
        else:
            board[r][c] = _AGENT0 + agent.agent_id

    state.step_count += 1
    state.intended_actions = actions


def _edge(a: Position, b: Position) -> tuple[Position, Position]:
    """The edge between two adjacent cells, the same whichever side it is crossed from."""
    return (a, b) if a < b else (b, a)


def _mark_blast(board: list[list[int]], exploded: set[Position], bomb: Bomb) -> None:
    """The bomb's cell and up to ``blast_strength - 1`` cells each way, stopped by rigid walls and by the
    first wooden wall (which burns)."""
    size = len(board)
    r0, c0 = bomb.position
    exploded.add(bomb.position)
    for dr, dc in _FOUR_DIRECTIONS:
        for i in range(1, bomb.blast_strength):
            r, c = r0 + dr * i, c0 + dc * i
            if not (0 <= r < size and 0 <= c < size) or board[r][c] == _RIGID:
                break
            exploded.add((r, c))
            if board[r][c] == _WOOD:
                break


def alive_ids(state: GameState) -> list[int]:
    return [agent.agent_id for agent in state.agents if agent.is_alive]


def is_done(state: GameState, max_steps: int = MAX_STEPS) -> bool:
    """FFA ends when at most one agent lives or the step count reaches ``max_steps``."""
    return state.step_count >= max_steps or len(alive_ids(state)) <= 1


def rewards(state: GameState, max_steps: int = MAX_STEPS) -> list[int]:
    """+1 to a sole survivor and -1 to the rest; -1 to all at the step limit; otherwise 0 alive, -1 dead."""
    alive = [agent.is_alive for agent in state.agents]
    if sum(alive) == 1:
        return [1 if is_alive else -1 for is_alive in alive]
    if state.step_count >= max_steps:
        return [-1] * len(alive)
    return [0 if is_alive else -1 for is_alive in alive]


def result(state: GameState, max_steps: int = MAX_STEPS) -> dict:
    """``{'result': Result.Win, 'winners': [id]}``, ``{'result': Result.Tie}`` or ``{'result': Result.Incomplete}``."""
    if not is_done(state, max_steps):
        return {"result": Result.Incomplete}
    survivors = alive_ids(state)
    if len(survivors) == 1:
        return {"result": Result.Win, "winners": survivors}
    return {"result": Result.Tie}

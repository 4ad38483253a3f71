"""A Pommerman game state as one vector of small integers, split into named components, with an exact decode.

The MDN-DNC thesis compares next-state predictions with the true next state "component by component" (position,
ammo available, ...) and as a whole. Its components are the playground's integer-coded state; here they are the
complete forward-model state, so that the next state is a function of the current one and the four actions (a
model could in principle be exact). Every component is a block of integers in ``0..high``:

==========================  =====  ====  ==========================================================================
component                   size   high  meaning
==========================  =====  ====  ==========================================================================
board                       121    13    board codes row-major (0 passage, 1 rigid, 2 wood, 3 bomb, 4 flames,
                                         6-8 power-ups, 10-13 agents)
hidden_items                121    8     power-up still hidden in the cell (6 extra bomb, 7 range, 8 kick), else 0;
                                         not in the playground's observation, but it decides what a burnt wall
                                         reveals
bomb_blast_strength         121    10    blast strength of the bomb in the cell, 0 without a bomb
bomb_life                   121    10    steps until it explodes (9 just after it is laid), 0 without a bomb
bomb_moving_direction       121    4     1-4 (Up, Down, Left, Right) while a kicked bomb slides, else 0
bomb_owner                  121    4     bomber id + 1, 0 without a bomb (the bomber gets the ammo back)
flames                      121    7     bit l set when a flame of life l burns in the cell (4 = fresh, 2, 1 =
                                         last step showing); overlapping explosions set several bits
agent{i}_position           2      10    (row, col); a dead agent keeps the cell it died on
agent{i}_ammo               1      10    bombs it can lay now
agent{i}_blast_strength     1      10
agent{i}_can_kick           1      1
agent{i}_alive              1      1
step_count                  1      32767 steps taken (the clock; 800 ends a game)
intended_actions            4      6     last step's actions + 1, all 0 before the first step
==========================  =====  ====  ==========================================================================

``STATE_SIZE`` = 7 * 121 + 4 * 6 + 1 + 4 = 876 integers (int16). ``decode_state(encode_state(s))`` is ``s``: the
same board, agents, bombs and flames in the playground's order (bombs by life then bomber, flames by life then
cell, which is the order the game appends them in), the same hidden power-ups, step count and intended actions.
Only the listing order of the hidden power-ups, which never affects the game, is canonical (row-major) rather than
the order the board generator drew them in. ``MODEL_COMPONENTS`` are the components the next-state study predicts:
all but the clock and the previous actions (which are the model's previous input).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dreamlab.envs.checks import check_int
from dreamlab.envs.pommerman.constants import (
    BOARD_SIZE,
    BOMB_LIFE,
    FLAME_LIFE,
    MAX_AMMO,
    MAX_BLAST_STRENGTH,
    MAX_STEPS,
    NUM_ACTIONS,
    NUM_AGENTS,
    Item,
)
from dreamlab.envs.pommerman.state import Bomb, Bomber, Flame, GameState

CELLS = BOARD_SIZE * BOARD_SIZE


@dataclass(frozen=True)
class Component:
    """A named block of ``size`` integers, each in ``0..high``."""

    name: str
    size: int
    high: int
    description: str


_MAPS = (
    Component("board", CELLS, int(Item.Agent3), "board codes, row-major"),
    Component("hidden_items", CELLS, int(Item.Kick), "power-up hidden in the cell (6, 7, 8), else 0"),
    Component("bomb_blast_strength", CELLS, MAX_BLAST_STRENGTH, "blast strength of the bomb in the cell"),
    Component("bomb_life", CELLS, BOMB_LIFE, "steps until the bomb in the cell explodes"),
    Component("bomb_moving_direction", CELLS, 4, "1-4 while a kicked bomb slides, else 0"),
    Component("bomb_owner", CELLS, NUM_AGENTS, "bomber id + 1, 0 without a bomb"),
    Component("flames", CELLS, 2 ** (FLAME_LIFE + 1) - 1, "bit l set when a flame of life l burns in the cell"),
)
_AGENT_FIELDS = (
    ("position", 2, BOARD_SIZE - 1, "(row, col)"),
    ("ammo", 1, MAX_AMMO, "bombs it can lay now"),
    ("blast_strength", 1, MAX_BLAST_STRENGTH, "blast strength of its next bomb"),
    ("can_kick", 1, 1, "1 once it picked up a kick power-up"),
    ("alive", 1, 1, "1 while alive"),
)
_AGENTS = tuple(
    Component(f"agent{i}_{field}", size, high, description)
    for i in range(NUM_AGENTS)
    for field, size, high, description in _AGENT_FIELDS
)
_CLOCK = (
    Component("step_count", 1, np.iinfo(np.int16).max, "steps taken"),
    Component("intended_actions", NUM_AGENTS, NUM_ACTIONS, "last step's actions + 1, 0 before the first step"),
)

COMPONENTS: tuple[Component, ...] = (*_MAPS, *_AGENTS, *_CLOCK)
STATE_SIZE = sum(c.size for c in COMPONENTS)
MODEL_COMPONENTS: tuple[str, ...] = tuple(c.name for c in (*_MAPS, *_AGENTS))


def _offsets() -> dict[str, slice]:
    slices, start = {}, 0
    for component in COMPONENTS:
        slices[component.name] = slice(start, start + component.size)
        start += component.size
    return slices


COMPONENT_SLICES: dict[str, slice] = _offsets()
# The largest value of every integer of the vector, (STATE_SIZE,).
HIGHS = np.concatenate([np.full(c.size, c.high, dtype=np.int64) for c in COMPONENTS])


def encode_state(state: GameState) -> np.ndarray:
    """The state as an int16 vector of ``STATE_SIZE`` integers (layout in the module docstring)."""
    if state.board_size != BOARD_SIZE or len(state.agents) != NUM_AGENTS:
        raise ValueError(
            f"can only encode {BOARD_SIZE}x{BOARD_SIZE} games of {NUM_AGENTS} agents, got a "
            f"{state.board_size}x{state.board_size} board with {len(state.agents)} agents"
        )
    vector = np.zeros(STATE_SIZE, dtype=np.int64)
    s = COMPONENT_SLICES
    vector[s["board"]] = np.asarray(state.board, dtype=np.int64).reshape(-1)
    for (r, c), item in state.items.items():
        vector[s["hidden_items"].start + r * BOARD_SIZE + c] = item
    for bomb in state.bombs:
        cell = bomb.position[0] * BOARD_SIZE + bomb.position[1]
        if vector[s["bomb_owner"].start + cell]:
            raise ValueError(f"two bombs on cell {bomb.position}: a state holds at most one bomb per cell")
        vector[s["bomb_blast_strength"].start + cell] = bomb.blast_strength
        vector[s["bomb_life"].start + cell] = bomb.life
        vector[s["bomb_moving_direction"].start + cell] = bomb.moving_direction or 0
        vector[s["bomb_owner"].start + cell] = bomb.bomber_id + 1
    for flame in state.flames:
        if not 0 <= flame.life <= FLAME_LIFE:
            raise ValueError(f"flame at {flame.position} has life {flame.life}; flames live 0..{FLAME_LIFE}")
        index = s["flames"].start + flame.position[0] * BOARD_SIZE + flame.position[1]
        bit = 1 << flame.life
        if vector[index] & bit:
            raise ValueError(f"two flames of life {flame.life} on cell {flame.position}; an explosion lays one")
        vector[index] |= bit
    for agent in state.agents:
        prefix = f"agent{agent.agent_id}_"
        vector[s[prefix + "position"]] = agent.position
        vector[s[prefix + "ammo"]] = agent.ammo
        vector[s[prefix + "blast_strength"]] = agent.blast_strength
        vector[s[prefix + "can_kick"]] = int(agent.can_kick)
        vector[s[prefix + "alive"]] = int(agent.is_alive)
    vector[s["step_count"]] = state.step_count
    if state.intended_actions:
        if len(state.intended_actions) != NUM_AGENTS:
            raise ValueError(f"intended_actions must hold {NUM_AGENTS} actions or none, got {state.intended_actions}")
        vector[s["intended_actions"]] = np.asarray(state.intended_actions) + 1
    check_range(vector)
    return vector.astype(np.int16)


def check_range(vector: np.ndarray) -> None:
    """Raise a ValueError naming the first component with a value outside ``0..high``."""
    bad = (vector < 0) | (vector > HIGHS)
    if bad.any():
        index = int(np.argmax(bad))
        name = next(n for n, sl in COMPONENT_SLICES.items() if sl.start <= index < sl.stop)
        offset = index - COMPONENT_SLICES[name].start
        high = int(HIGHS[index])
        raise ValueError(f"{name}[{offset}] = {int(vector[index])} lies outside the encodable range 0..{high}")


def decode_state(vector: np.ndarray | Sequence[int]) -> GameState:
    """The ``GameState`` an ``encode_state`` vector describes (an error if it describes no valid state)."""
    vector = np.asarray(vector)
    if vector.shape != (STATE_SIZE,):
        raise ValueError(f"a Pommerman state vector has shape ({STATE_SIZE},), got {vector.shape}")
    if not np.issubdtype(vector.dtype, np.integer):
        raise ValueError(f"a Pommerman state vector holds integers, got dtype {vector.dtype}")
    vector = vector.astype(np.int64)
    check_range(vector)
    s = COMPONENT_SLICES

    def grid(name: str) -> np.ndarray:
        return vector[s[name]].reshape(BOARD_SIZE, BOARD_SIZE)

    board = grid("board")
    hidden = grid("hidden_items")
    bad_items = sorted(set(hidden[hidden != 0].tolist()) - {int(Item.ExtraBomb), int(Item.IncrRange), int(Item.Kick)})
    if bad_items:
        raise ValueError(f"hidden_items holds codes {bad_items}; only 6, 7 and 8 are power-ups")
    items = {(int(r), int(c)): int(hidden[r, c]) for r, c in zip(*np.nonzero(hidden), strict=True)}

    owner, life = grid("bomb_owner"), grid("bomb_life")
    strength, moving = grid("bomb_blast_strength"), grid("bomb_moving_direction")
    orphans = np.nonzero((owner == 0) & ((life != 0) | (strength != 0) | (moving != 0)))
    if len(orphans[0]):
        cell = (int(orphans[0][0]), int(orphans[1][0]))
        raise ValueError(f"bomb maps describe a bomb at {cell} without an owner (bomb_owner 0)")
    bombs = [
        Bomb((int(r), int(c)), int(owner[r, c]) - 1, int(life[r, c]), int(strength[r, c]), int(moving[r, c]) or None)
        for r, c in zip(*np.nonzero(owner), strict=True)
    ]
    # The game appends bombs as they are laid, so older bombs (lower life) come first, same-step ones by bomber.
    bombs.sort(key=lambda b: (b.life, b.bomber_id))

    flame_bits = grid("flames")
    flames = [
        Flame((int(r), int(c)), life)
        for life in range(FLAME_LIFE + 1)
        for r, c in zip(*np.nonzero(flame_bits & (1 << life)), strict=True)
    ]

    agents = []
    for agent_id in range(NUM_AGENTS):
        prefix = f"agent{agent_id}_"
        row, col = vector[s[prefix + "position"]]
        agents.append(
            Bomber(
                agent_id,
                (int(row), int(col)),
                ammo=int(vector[s[prefix + "ammo"]][0]),
                blast_strength=int(vector[s[prefix + "blast_strength"]][0]),
                can_kick=bool(vector[s[prefix + "can_kick"]][0]),
                is_alive=bool(vector[s[prefix + "alive"]][0]),
            )
        )

    intended = vector[s["intended_actions"]]
    if intended.any() and not intended.all():
        raise ValueError(f"intended_actions must be all 0 (no step yet) or all 1..{NUM_ACTIONS}, got {intended}")
    return GameState(
        board=board.tolist(),
        agents=agents,
        bombs=bombs,
        flames=flames,
        items=items,
        step_count=int(vector[s["step_count"]][0]),
        intended_actions=(intended - 1).tolist() if intended.all() else [],
    )


# Board codes the forward model draws from other components each step (bombs, flames, agents); the rest (passage,
# walls, power-ups) persist on the board between steps.
_DRAWN_CODES = np.array([int(Item.Bomb), int(Item.Flames), *range(int(Item.Agent0), int(Item.Agent3) + 1)])


def render_board(vectors: np.ndarray, slices: Mapping[str, slice] = COMPONENT_SLICES) -> np.ndarray:
    """State vectors (..., D) with the board's bomb, flame and agent codes redrawn from the bomb, flame and agent
    components, as the forward model draws them at the end of every step: bombs (3) where ``bomb_owner`` holds a
    bomber, flames (4) over them, then every living agent's code (10 + id) on its position unless it stands in flames.
    A bomb, flame or agent code on a cell none of those components claims becomes passage; every other code is kept.

    For a consistent state this returns the state unchanged. For a model's prediction it makes the board agree with
    the predicted positions, bombs and flames, which a per-cell prediction of the board cannot (an agent's code moves
    across cells with it). ``slices`` locate the components in the vector (default: the full ``encode_state``
    layout; a model's layout without the clock works too).
    """
    vectors = np.asarray(vectors)
    rendered = vectors.copy()
    board = rendered[..., slices["board"]]
    board[np.isin(board, _DRAWN_CODES)] = int(Item.Passage)
    board[vectors[..., slices["bomb_owner"]] > 0] = int(Item.Bomb)
    burning = vectors[..., slices["flames"]] > 0
    board[burning] = int(Item.Flames)
    cells = np.arange(CELLS)
    for agent_id in range(NUM_AGENTS):
        row_col = vectors[..., slices[f"agent{agent_id}_position"]].astype(np.int64)
        here = cells == (row_col[..., :1] * BOARD_SIZE + row_col[..., 1:])  # (..., CELLS)
        alive = vectors[..., slices[f"agent{agent_id}_alive"]] > 0  # (..., 1)
        board[here & alive & ~burning] = int(Item.Agent0) + agent_id
    rendered[..., slices["board"]] = board
    return rendered


def component_values(vectors: np.ndarray, name: str) -> np.ndarray:
    """The integers of component ``name`` from state vectors (..., STATE_SIZE) -> (..., size)."""
    if name not in COMPONENT_SLICES:
        raise ValueError(f"unknown Pommerman state component {name!r}; components are {list(COMPONENT_SLICES)}")
    return np.asarray(vectors)[..., COMPONENT_SLICES[name]]


def encode_games(policy: str, seed: int, min_steps: int, max_steps: int = MAX_STEPS) -> dict[str, Any]:
    """Play whole games of ``policy`` agents on seeds ``seed, seed + 1, ...`` until at least ``min_steps`` steps
    and return them encoded: ``states`` (sum(T_g + 1), STATE_SIZE) int16 (every game's initial state and the state
    after each step), ``actions`` (sum(T_g), 4) uint8, ``lengths`` (games,) T_g and ``seeds`` (games,).

    A top-level function, so a :class:`dreamlab.parallel.WorkerPool` can collect games in parallel.
    """
    from dreamlab.envs.pommerman.agents import make_agents
    from dreamlab.envs.pommerman.env import Pommerman

    seed = check_int(seed, "seed", 0)
    min_steps = check_int(min_steps, "min_steps", 1)
    env = Pommerman(max_steps=max_steps)
    agents = make_agents(policy, seed=seed)
    states, actions, lengths, seeds = [], [], [], []
    steps, game_seed = 0, seed
    while steps < min_steps:
        obs = env.reset(seed=game_seed)
        for agent in agents:
            agent.reset()
        states.append(encode_state(env.state))
        length = 0
        while not env.done:
            joint = env.act(agents, obs)
            obs, _, _, _ = env.step(joint)
            actions.append(joint)
            states.append(encode_state(env.state))
            length += 1
        lengths.append(length)
        seeds.append(game_seed)
        steps += length
        game_seed += 1
    return {
        "states": np.stack(states),
        "actions": np.asarray(actions, dtype=np.uint8),
        "lengths": np.asarray(lengths, dtype=np.int64),
        "seeds": np.asarray(seeds, dtype=np.int64),
    }

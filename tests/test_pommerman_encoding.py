"""The integer encoding of Pommerman states: the layout, hand-made states, round trips on every recorded playground
state, and that the decoded state plays on exactly like the original."""

import json
from pathlib import Path

import numpy as np
import pytest

from dreamlab.envs.pommerman import Bomb, Flame, Pommerman, load_games, state_from_text, to_json_info
from dreamlab.envs.pommerman import forward_model as fm
from dreamlab.envs.pommerman.encoding import (
    COMPONENT_SLICES,
    COMPONENTS,
    HIGHS,
    MODEL_COMPONENTS,
    STATE_SIZE,
    component_values,
    decode_state,
    encode_games,
    encode_state,
    render_board,
)
from dreamlab.worldmodels.next_state import StateLayout

RECORDINGS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "pommerman_playground_games.jsonl.gz"

TEXT = [
    "...........",
    ".0.w.......",
    "...........",
    "...#.......",
    "...........",
    ".....e.....",
    "...........",
    "...........",
    "...........",
    ".1.......2.",
    "...........",
]


def assert_same_state(decoded, original):
    """Equal as game states: every JSON field identical, the hidden power-ups equal as a set (their listing order
    is the board generator's draw order, which no rule reads)."""
    ours, theirs = to_json_info(decoded), to_json_info(original)
    ours_items, their_items = json.loads(ours.pop("items")), json.loads(theirs.pop("items"))
    assert ours == theirs
    assert sorted(map(str, ours_items)) == sorted(map(str, their_items))


def hand_made_state():
    state = state_from_text(TEXT)
    state.bombs = [Bomb((2, 3), bomber_id=1, life=5, blast_strength=3, moving_direction=2), Bomb((7, 7), 0, 8, 2)]
    # Listed as the game lists them: by life, then cell.
    state.flames = [Flame((4, 4), life=0), Flame((4, 5), life=1), Flame((4, 4), life=2)]
    state.items = {(1, 3): 8}
    state.agents[0].ammo, state.agents[0].can_kick = 0, True
    state.agents[2].blast_strength = 4
    state.step_count, state.intended_actions = 17, [0, 5, 1, 4]
    return state


def test_the_layout_lists_every_component_once_in_order():
    names = [c.name for c in COMPONENTS]
    assert len(names) == len(set(names)) == 7 + 4 * 5 + 2
    assert STATE_SIZE == 7 * 121 + 4 * 6 + 1 + 4 == 876 == len(HIGHS)
    starts = [COMPONENT_SLICES[n].start for n in names]
    stops = [COMPONENT_SLICES[n].stop for n in names]
    assert starts == [0, *stops[:-1]] and stops[-1] == STATE_SIZE
    assert HIGHS[COMPONENT_SLICES["board"]].tolist() == [13] * 121
    assert HIGHS[COMPONENT_SLICES["flames"]].tolist() == [7] * 121  # bits for lives 0, 1, 2
    assert set(MODEL_COMPONENTS) == set(names) - {"step_count", "intended_actions"}


def test_a_hand_made_state_lands_in_the_documented_cells():
    vector = encode_state(hand_made_state())
    assert vector.dtype == np.int16 and vector.shape == (STATE_SIZE,)

    def cell(name, r, c):
        return int(component_values(vector, name)[r * 11 + c])

    assert cell("board", 1, 1) == 10 and cell("board", 9, 1) == 11 and cell("board", 5, 5) == 6
    assert cell("board", 1, 3) == 2 and cell("hidden_items", 1, 3) == 8 and cell("hidden_items", 5, 5) == 0
    assert (cell("bomb_owner", 2, 3), cell("bomb_life", 2, 3), cell("bomb_blast_strength", 2, 3)) == (2, 5, 3)
    assert cell("bomb_moving_direction", 2, 3) == 2 and cell("bomb_moving_direction", 7, 7) == 0
    assert cell("bomb_owner", 7, 7) == 1 and cell("bomb_owner", 0, 0) == 0
    assert cell("flames", 4, 4) == 0b101 and cell("flames", 4, 5) == 0b010
    assert component_values(vector, "agent0_position").tolist() == [1, 1]
    assert component_values(vector, "agent0_ammo").tolist() == [0]
    assert component_values(vector, "agent0_can_kick").tolist() == [1]
    assert component_values(vector, "agent2_blast_strength").tolist() == [4]
    assert component_values(vector, "agent3_alive").tolist() == [0]
    assert component_values(vector, "step_count").tolist() == [17]
    assert component_values(vector, "intended_actions").tolist() == [1, 6, 2, 5]
    assert_same_state(decode_state(vector), hand_made_state())


def test_every_recorded_playground_state_round_trips_and_plays_on_identically():
    if not RECORDINGS.is_file():
        pytest.skip(f"playground recordings not found at {RECORDINGS}")
    games = load_games(RECORDINGS)
    env = Pommerman()
    checked = 0
    for game in games:
        env.set_json_info(game["initial_state"])
        decoded = decode_state(encode_state(env.state))
        for step in game["steps"]:
            # The decoded state, stepped by the forward model, must give the recorded next state.
            fm.step(decoded, step["actions"])
            env.step(step["actions"])
            assert decoded == env.state  # dataclass equality; the hidden power-ups compare as a dict
            decoded = decode_state(encode_state(env.state))
            assert decoded == env.state
            checked += 1
        assert_same_state(decoded, env.state)
    assert checked == 4074


def test_encoded_games_are_consistent_transitions():
    data = encode_games("mixed", seed=3, min_steps=150)
    lengths, states, actions = data["lengths"], data["states"], data["actions"]
    assert lengths.sum() >= 150 and len(states) == lengths.sum() + len(lengths) and len(actions) == lengths.sum()
    assert data["seeds"].tolist() == list(range(3, 3 + len(lengths)))
    assert (states >= 0).all() and (states <= HIGHS).all()
    env = Pommerman()
    env.reset(seed=3)
    assert_same_state(decode_state(states[0]), env.state)
    # Every transition of the first game is the forward model's.
    for t in range(lengths[0]):
        state = decode_state(states[t])
        fm.step(state, actions[t].tolist())
        assert np.array_equal(encode_state(state), states[t + 1])
    if len(lengths) > 1:  # the next game starts on the next seed's board
        env.reset(seed=4)
        assert_same_state(decode_state(states[lengths[0] + 1]), env.state)


def test_render_board_keeps_every_recorded_and_played_state():
    # The board the game draws is already the one rendered from the bombs, flames and agents.
    states = [encode_games(policy, seed=5, min_steps=400)["states"] for policy in ("simple", "random")]
    if RECORDINGS.is_file():
        env = Pommerman()
        for game in load_games(RECORDINGS):
            env.set_json_info(game["initial_state"])
            states.append(encode_state(env.state)[None])
            for step in game["steps"]:
                env.step(step["actions"])
                states.append(encode_state(env.state)[None])
    states = np.concatenate(states)
    assert np.array_equal(render_board(states), states)


def test_render_board_moves_codes_with_positions_bombs_and_flames():
    vector = encode_state(hand_made_state())
    board = COMPONENT_SLICES["board"]
    start = board.start
    moved = vector.copy()
    moved[COMPONENT_SLICES["agent0_position"]] = (2, 1)  # agent 0 steps down from (1, 1)
    moved[COMPONENT_SLICES["bomb_owner"].start + 7 * 11 + 7] = 0  # the bomb at (7, 7) is gone
    moved[COMPONENT_SLICES["flames"].start + 9 * 11 + 1] = 1  # a flame on agent 1's cell (9, 1)
    rendered = render_board(moved)
    assert rendered[start + 1 * 11 + 1] == 0 and rendered[start + 2 * 11 + 1] == 10
    assert rendered[start + 7 * 11 + 7] == 0 and rendered[start + 9 * 11 + 1] == 4
    assert rendered[start + 1 * 11 + 3] == vector[start + 1 * 11 + 3] == 2  # wood stays
    unchanged = np.ones(STATE_SIZE, dtype=bool)
    unchanged[board] = False
    assert np.array_equal(rendered[unchanged], moved[unchanged])  # only the board is redrawn
    # A model's layout (no clock) and a batch of vectors work alike.
    model_slices = StateLayout([c for c in COMPONENTS if c.name in MODEL_COMPONENTS]).slices
    model_vectors = np.stack(
        [np.concatenate([v[COMPONENT_SLICES[n]] for n in MODEL_COMPONENTS]) for v in (vector, moved)]
    )
    batch = render_board(model_vectors, model_slices)
    assert np.array_equal(batch[1, model_slices["board"]], rendered[board])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: setattr(s.agents[0], "ammo", 11), r"agent0_ammo\[0\] = 11 lies outside the encodable range 0..10"),
        (lambda s: s.bombs.append(Bomb((2, 3), 0, 3, 2)), "two bombs on cell"),
        (lambda s: s.flames.append(Flame((4, 4), 2)), "two flames of life 2"),
        (lambda s: setattr(s, "intended_actions", [1, 2]), "intended_actions must hold 4"),
    ],
)
def test_states_that_cannot_be_encoded_are_refused_by_name(mutate, message):
    state = hand_made_state()
    mutate(state)
    with pytest.raises(ValueError, match=message):
        encode_state(state)


def test_vectors_that_describe_no_state_are_refused_by_name():
    vector = encode_state(hand_made_state())
    with pytest.raises(ValueError, match=r"shape \(876,\)"):
        decode_state(vector[:-1])
    with pytest.raises(ValueError, match="integers"):
        decode_state(vector.astype(np.float32))
    bad = vector.copy()
    bad[COMPONENT_SLICES["board"].start] = 14
    with pytest.raises(ValueError, match=r"board\[0\] = 14"):
        decode_state(bad)
    orphan = vector.copy()
    orphan[COMPONENT_SLICES["bomb_owner"].start + 2 * 11 + 3] = 0
    with pytest.raises(ValueError, match=r"bomb at \(2, 3\) without an owner"):
        decode_state(orphan)
    half = vector.copy()
    half[COMPONENT_SLICES["intended_actions"].start] = 0
    with pytest.raises(ValueError, match="intended_actions must be all 0"):
        decode_state(half)
    with pytest.raises(ValueError, match="unknown Pommerman state component"):
        component_values(vector, "bombs")

"""Pommerman rules on hand-made positions: movement and collisions, bombs, flames, chains, kicks, power-ups,
rewards and termination, board generation, observations, JSON snapshots and input errors."""

import json

import numpy as np
import pytest

from dreamlab.envs.pommerman import (
    Action,
    Bomb,
    Flame,
    Item,
    Pommerman,
    Result,
    board_to_text,
    from_json_info,
    state_from_text,
    to_json_info,
)
from dreamlab.envs.pommerman import forward_model as fm
from dreamlab.envs.pommerman.board import inaccessible_passages

S, U, D, L, R, B = (int(a) for a in Action)


def run(state, *action_rows):
    for actions in action_rows:
        fm.step(state, actions)
    return state


def positions(state):
    return [a.position for a in state.agents]


# ---------------------------------------------------------------- movement and collisions


def test_agents_move_and_walls_and_edges_block():
    state = state_from_text(["0.#..", ".....", "..w..", ".....", "1...."])
    run(state, [R, U, S, S])
    assert positions(state)[:2] == [(0, 1), (3, 0)]
    run(state, [R, L, S, S])  # into rigid wall / off the board
    assert positions(state)[:2] == [(0, 1), (3, 0)]
    state = state_from_text([".....", ".....", ".0w..", ".....", "....."])
    run(state, [R, S, S, S])  # into wood
    assert state.agents[0].position == (2, 1)
    assert state.board[2][1] == Item.Agent0


def test_two_agents_wanting_one_cell_both_stay():
    state = state_from_text(["0.1..", ".....", ".....", ".....", "....."])
    run(state, [R, L, S, S])
    assert positions(state)[:2] == [(0, 0), (0, 2)]


def test_agents_passing_through_each_other_both_stay():
    state = state_from_text(["01...", ".....", ".....", ".....", "....."])
    run(state, [R, L, S, S])
    assert positions(state)[:2] == [(0, 0), (0, 1)]


def test_agent_may_follow_into_a_vacated_cell():
    state = state_from_text(["01...", ".....", ".....", ".....", "....."])
    run(state, [R, R, S, S])
    assert positions(state)[:2] == [(0, 1), (0, 2)]


def test_blocked_agent_blocks_the_one_behind_it():
    # 1 cannot enter 2's cell (2 stays), so 1 stays, so 0 cannot enter 1's cell either.
    state = state_from_text(["012..", ".....", ".....", ".....", "....."])
    run(state, [R, R, S, S])
    assert positions(state)[:3] == [(0, 0), (0, 1), (0, 2)]


# ---------------------------------------------------------------- bombs and flames


def test_bomb_counts_down_explodes_after_ten_steps_and_flames_last():
    state = state_from_text([".....", ".....", "..0..", ".....", "....."])
    run(state, [B, S, S, S])
    assert state.agents[0].ammo == 0
    assert [(b.position, b.life, b.blast_strength, b.bomber_id) for b in state.bombs] == [((2, 2), 9, 2, 0)]
    assert state.board[2][2] == Item.Agent0  # the agent hides its bomb
    run(state, [U, S, S, S], [L, S, S, S])  # step out of the cross
    assert state.board[2][2] == Item.Bomb
    run(state, *[[S, S, S, S]] * 6)
    assert state.bombs[0].life == 1 and state.step_count == 9
    run(state, [S, S, S, S])  # step 10: explosion, a cross of strength 2 (the centre and one cell each way)
    assert state.bombs == [] and state.agents[0].ammo == 1
    burning = {(r, c) for r in range(5) for c in range(5) if state.board[r][c] == Item.Flames}
    assert burning == {(2, 2), (1, 2), (3, 2), (2, 1), (2, 3)}
    assert all(f.life == 2 for f in state.flames)
    run(state, [S, S, S, S], [S, S, S, S])  # flames tick 2 -> 1 -> 0 and still burn
    assert state.board[2][2] == Item.Flames and all(f.life == 0 for f in state.flames)
    run(state, [S, S, S, S])
    assert state.flames == [] and state.board[2][2] == Item.Passage
    assert state.agents[0].is_alive


def test_blast_stops_at_rigid_walls_burns_the_first_wood_and_reveals_its_powerup():
    state = state_from_text([".......", ".......", "...#...", ".w.....", "...ww..", ".......", "......0"])
    state.bombs.append(Bomb((3, 3), bomber_id=0, life=1, blast_strength=4))
    state.items[(4, 3)] = int(Item.Kick)
    state.agents[0].ammo = 0
    run(state, [S, S, S, S])
    burning = {(r, c) for r in range(7) for c in range(7) if state.board[r][c] == Item.Flames}
    # Up: the rigid wall at (2,3) stops it. Left: (3,2) and the wood at (3,1), then stops. Down: the wood at
    # (4,3) burns and stops the flame before (5,3). Right: 3 cells.
    assert burning == {(3, 3), (3, 2), (3, 1), (4, 3), (3, 4), (3, 5), (3, 6)}
    assert state.board[4][4] == Item.Wood
    run(state, *[[S, S, S, S]] * 3)
    assert state.board[4][3] == Item.Kick and state.board[3][1] == Item.Passage
    assert state.items == {}
    assert state.agents[0].ammo == 1


def test_explosions_chain_through_bombs_in_range():
    state = state_from_text(["0...1", ".....", ".....", ".....", "2...3"])
    state.bombs += [
        Bomb((2, 0), bomber_id=0, life=1, blast_strength=3),
        Bomb((2, 2), bomber_id=1, life=7, blast_strength=2),
        Bomb((2, 3), bomber_id=2, life=9, blast_strength=2),
    ]
    run(state, [S, S, S, S])
    assert state.bombs == []
    first = {(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (2, 1), (2, 2)}  # strength 3 at (2, 0)
    second = {(1, 2), (3, 2), (2, 3)}  # strength 2 at (2, 2)
    third = {(1, 3), (3, 3), (2, 4)}  # strength 2 at (2, 3)
    assert {f.position for f in state.flames} == first | second | third
    assert [a.ammo for a in state.agents[:3]] == [2, 2, 2]


def test_flames_kill_and_rewards_follow_the_ffa_rules():
    env = Pommerman()
    state = state_from_text(["0....", ".....", "..1..", ".....", "2...3"])
    state.bombs.append(Bomb((2, 3), bomber_id=0, life=1, blast_strength=2))
    env.set_json_info(to_json_info(state))
    _, rewards, done, info = env.step([S, S, S, S])
    assert [a.is_alive for a in env.state.agents] == [True, False, True, True]
    assert rewards == [0, -1, 0, 0] and not done and info == {"result": Result.Incomplete}

    state = state_from_text(["0....", ".....", "..1..", ".....", "....3"])
    state.bombs.append(Bomb((2, 3), bomber_id=0, life=1, blast_strength=2))
    state.bombs.append(Bomb((3, 4), bomber_id=3, life=1, blast_strength=2))
    env.set_json_info(to_json_info(state))
    _, rewards, done, info = env.step([S, S, S, S])
    assert rewards == [1, -1, -1, -1] and done and info == {"result": Result.Win, "winners": [0]}
    with pytest.raises(RuntimeError, match="ended"):
        env.step([S, S, S, S])


def test_everyone_dying_together_is_a_tie():
    env = Pommerman()
    state = state_from_text([".....", ".0...", "..1..", ".....", "....."])
    state.bombs.append(Bomb((2, 1), bomber_id=0, life=1, blast_strength=2))
    env.set_json_info(to_json_info(state))
    _, rewards, done, info = env.step([S, S, S, S])
    assert rewards == [-1, -1, -1, -1] and done and info == {"result": Result.Tie}


def test_walking_into_flames_kills():
    state = state_from_text(["0....", ".....", ".....", ".....", "....1"])
    state.flames.append(Flame((0, 1), life=1))
    run(state, [R, S, S, S])
    assert not state.agents[0].is_alive


def test_game_ends_at_step_800_with_everyone_losing():
    env = Pommerman()
    env.reset(seed=0)
    info = env.get_json_info()
    info["step_count"] = "798"
    env.set_json_info(info)
    _, rewards, done, _ = env.step([S, S, S, S])
    assert not done and rewards == [0, 0, 0, 0]
    _, rewards, done, info = env.step([S, S, S, S])
    assert done and rewards == [-1, -1, -1, -1] and info == {"result": Result.Tie}
    assert env.state.step_count == 800


# ---------------------------------------------------------------- kicks and power-ups


def test_kicked_bomb_slides_until_blocked_and_non_kickers_are_stopped():
    state = state_from_text(["0.....#", ".......", ".......", ".......", ".......", ".......", "1......"])
    state.bombs += [Bomb((0, 1), 2, life=9, blast_strength=2), Bomb((6, 1), 2, life=9, blast_strength=2)]
    state.agents[0].can_kick = True
    run(state, [R, R, S, S])
    assert state.agents[0].position == (0, 1) and state.agents[1].position == (6, 0)  # agent 1 cannot kick
    assert state.bombs[0].position == (0, 2) and state.bombs[0].moving_direction == R
    assert state.bombs[1].position == (6, 1) and state.bombs[1].moving_direction is None
    run(state, [S, S, S, S], [S, S, S, S], [S, S, S, S])
    assert state.bombs[0].position == (0, 5) and state.bombs[0].moving_direction == R
    run(state, [S, S, S, S])  # the rigid wall at (0, 6) stops it
    assert state.bombs[0].position == (0, 5) and state.bombs[0].moving_direction is None
    assert state.board[0][5] == Item.Bomb


def test_powerups_add_ammo_range_and_kick():
    state = state_from_text(["0erk.", ".....", ".....", ".....", "....1"])
    run(state, [R, S, S, S])
    assert state.agents[0].ammo == 2
    run(state, [R, S, S, S])
    assert state.agents[0].blast_strength == 3
    run(state, [R, S, S, S])
    assert state.agents[0].can_kick
    assert board_to_text(state.board).splitlines()[0] == "...0."


# ---------------------------------------------------------------- board generation


@pytest.mark.parametrize("seed", range(25))
def test_generated_boards_follow_the_playground_rules(seed):
    env = Pommerman()
    env.reset(seed=seed)
    board = np.array(env.state.board)
    assert board.shape == (11, 11)
    walls = np.isin(board, [Item.Rigid, Item.Wood])
    rigid = board == Item.Rigid
    assert (walls == walls.T).all() and (rigid == rigid.T).all()
    assert (board == Item.Rigid).sum() == 36 and (board == Item.Wood).sum() == 36
    assert np.diag(board)[[0, 2, 3, 4, 5, 6, 7, 8, 10]].tolist() == [0] * 9
    for agent_id, corner in enumerate([(1, 1), (9, 1), (9, 9), (1, 9)]):
        assert board[corner] == 10 + agent_id and env.state.agents[agent_id].position == corner
    for i in (2, 3):  # the two cells beside each agent along the edges
        for r, c in [(1, i), (i, 1), (9, 10 - i), (10 - i, 9), (1, 10 - i), (10 - i, 1), (i, 9), (9, i)]:
            assert board[r, c] == Item.Passage
    for i in range(4, 7):
        assert board[1, i] == board[9, i] == board[i, 1] == board[i, 9] == Item.Wood
    assert len(inaccessible_passages(env.state.board, (9, 9))) <= 4
    items = env.state.items
    assert len(items) == 20 and set(items.values()) <= {6, 7, 8}
    assert all(board[p] == Item.Wood for p in items)


def test_seeded_resets_repeat_and_unseeded_resets_continue_the_stream():
    env = Pommerman()
    first = env.reset(seed=3)[0]["board"]
    second = env.reset()[0]["board"]
    assert not np.array_equal(first, second)
    assert np.array_equal(env.reset(seed=3)[0]["board"], first)
    assert np.array_equal(env.reset()[0]["board"], second)
    with pytest.raises(ValueError, match="seed"):
        env.reset(seed="3")


# ---------------------------------------------------------------- observations and snapshots


def test_observations_have_the_playground_keys_and_values():
    state = state_from_text(["0....", ".....", ".....", ".....", "...31"])
    state.bombs.append(Bomb((2, 2), bomber_id=3, life=4, blast_strength=3, moving_direction=int(Action.Left)))
    state.flames.append(Flame((0, 4), life=1))
    state.agents[1].can_kick = True
    env = Pommerman()
    obs = env.set_json_info(to_json_info(state))
    assert set(obs[0]) == {
        "alive",
        "board",
        "bomb_blast_strength",
        "bomb_life",
        "bomb_moving_direction",
        "flame_life",
        "game_type",
        "position",
        "blast_strength",
        "can_kick",
        "teammate",
        "ammo",
        "enemies",
        "step_count",
    }
    assert obs[0]["board"].dtype == np.uint8 and obs[0]["board"][4, 3] == 13
    assert obs[0]["bomb_blast_strength"][2, 2] == 3 and obs[0]["bomb_life"][2, 2] == 4
    assert obs[0]["bomb_moving_direction"][2, 2] == Action.Left
    assert obs[0]["flame_life"][0, 4] == 2 and obs[0]["flame_life"].sum() == 2
    assert obs[0]["alive"] == [10, 11, 13] and obs[0]["enemies"] == [11, 12, 13] and obs[2]["enemies"] == [10, 11, 13]
    assert obs[0]["teammate"] == Item.AgentDummy and obs[0]["game_type"] == 1
    assert obs[1]["position"] == (4, 4) and obs[1]["can_kick"] is True and obs[1]["ammo"] == 1
    assert obs[1]["blast_strength"] == 2 and obs[1]["step_count"] == 0
    with pytest.raises(ValueError, match="read-only"):
        obs[0]["board"][0, 0] = 1


def test_json_snapshot_round_trips_and_uses_the_playground_format():
    env = Pommerman()
    env.reset(seed=11)
    for _ in range(30):
        env.step([B, R, D, L])
        if env.done:
            break
    info = env.get_json_info()
    assert set(info) == {"board_size", "step_count", "board", "agents", "bombs", "flames", "items", "intended_actions"}
    assert all(isinstance(v, str) for v in info.values())
    agents = json.loads(info["agents"])
    assert list(agents[0]) == ["agent_id", "is_alive", "position", "ammo", "blast_strength", "can_kick"]
    assert to_json_info(from_json_info(info)) == info
    decoded = {key: json.loads(value) for key, value in info.items()}
    assert to_json_info(from_json_info(decoded)) == info


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda i: i.pop("board"), "lacks key"),
        (lambda i: i.update(board="[[0, 1"), "not valid JSON"),
        (lambda i: i.update(board=json.dumps([[0] * 11] * 10)), "11x11"),
        (lambda i: i.update(board=json.dumps([[0] * 10 + [20]] * 11)), "unknown codes"),
        (lambda i: i.update(agents="[]"), "agents 0..3"),
        (lambda i: i.update(bombs='[{"position": [1, 1]}]'), "malformed bomb"),
        (lambda i: i.update(items="[[[40, 1], 6]]"), "off the 11x11 board"),
        (lambda i: i.update(step_count='"x"'), "step_count must be an integer"),
    ],
)
def test_bad_snapshots_are_rejected_with_a_clear_error(change, message):
    env = Pommerman()
    env.reset(seed=0)
    info = env.get_json_info()
    change(info)
    with pytest.raises(ValueError, match=message):
        env.set_json_info(info)


@pytest.mark.parametrize(
    ("actions", "message"),
    [([0, 0, 0], "one action per agent"), ([0, 0, 6, 0], "agent 2"), ([0, 1.5, 0, 0], "agent 1"), ("abcd", "ints")],
)
def test_bad_actions_are_rejected(actions, message):
    env = Pommerman()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(actions)


def test_stepping_without_a_game_is_an_error():
    with pytest.raises(RuntimeError, match="reset"):
        Pommerman().step([0, 0, 0, 0])

"""Agents: the SimpleAgent against the playground's SimpleAgent decisions in the recorded games, its rules on
hand-made positions, how it fares against random play, and the random agent."""

from pathlib import Path

import numpy as np
import pytest

from dreamlab.envs.pommerman import (
    Action,
    Bomb,
    Flame,
    Item,
    Pommerman,
    RandomAgent,
    SimpleAgent,
    load_games,
    make_agents,
    play_game,
    state_from_text,
    to_json_info,
)
from dreamlab.envs.pommerman.simple_agent import Search

RECORDINGS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "pommerman_playground_games.jsonl.gz"
S, U, D, L, R, B = (int(a) for a in Action)
_STEP = {S: (0, 0), U: (-1, 0), D: (1, 0), L: (0, -1), R: (0, 1), B: (0, 0)}


class SteeredSimpleAgent(SimpleAgent):
    """Our SimpleAgent with its random choices steered towards a recorded action: it returns that action
    whenever one of its rules allows it. ``coin`` settles the enemy-chase coin flip and ``goal`` the cell its
    paths should start with."""

    def steer(self, action: int, goal: int, coin: bool) -> None:
        self.action, self.goal, self.coin = action, goal, coin

    def _pick(self, options):
        return self.action if self.action in options else options[0]

    def _keep_chasing(self, direction):
        return self.coin

    def _predecessor(self, cell, search: Search):
        def leads_to_goal(c):
            return c == self.goal or (search.dist[c] > 0 and any(leads_to_goal(p) for p in search.predecessors(c)))

        candidates = search.predecessors(cell)
        return next((p for p in candidates if leads_to_goal(p)), candidates[0])


def explanations(observation, action, memory, size):
    """The agent memories (recently visited cells, last chase direction) after ``action`` over every way our
    rules can produce ``action`` from ``memory``: chasing or not, with paths through the recorded move or
    through the last chase direction."""
    r, c = observation["position"]
    goal_moves = {action} | ({memory[1]} if memory[1] is not None else set())
    found = set()
    for goal_move in goal_moves:
        dr, dc = _STEP[goal_move]
        for coin in (True, False):
            agent = SteeredSimpleAgent()
            agent._recently_visited, agent._prev_direction = list(memory[0]), memory[1]
            agent.steer(action, (r + dr) * size + c + dc, coin)
            if agent.act(observation) == action:
                found.add((tuple(agent._recently_visited), agent._prev_direction))
    return found


def unexplained_actions(games):
    """Replay recorded games and return (decisions, the actions of playground SimpleAgents that our SimpleAgent
    could not have taken), tracking every agent memory consistent with the actions so far."""
    env = Pommerman()
    decisions, unexplained = 0, []
    for game in games:
        simple_ids = range(4) if game["policy"] == "simple" else (0, 2)
        memories = {i: {((), None)} for i in simple_ids}
        obs = env.set_json_info(game["initial_state"])
        for number, step in enumerate(game["steps"]):
            for i in simple_ids:
                if not env.state.agents[i].is_alive:
                    continue
                decisions += 1
                after = set().union(*(explanations(obs[i], step["actions"][i], m, 11) for m in memories[i]))
                if not after:
                    unexplained.append((game["policy"], game["seed"], number, i, step["actions"][i]))
                    after = memories[i]
                memories[i] = after
            obs, *_ = env.step(step["actions"])
    return decisions, unexplained


@pytest.fixture(scope="module")
def recorded_games():
    if not RECORDINGS.is_file():
        pytest.skip(f"playground recordings not found at {RECORDINGS} (they ship in shared/reference, not the repo)")
    return [game for game in load_games(RECORDINGS) if game["policy"] != "random"]


# Games whose agent memories stay few enough to track in a second or two; the slow test takes all 12.
QUICK_GAMES = {("simple", 56000), ("simple", 56003), ("simple", 56005), ("mixed", 55000), ("mixed", 55001),
               ("mixed", 55003)}  # fmt: skip


def test_simple_agent_explains_the_playground_simple_agents_actions(recorded_games):
    games = [g for g in recorded_games if (g["policy"], g["seed"]) in QUICK_GAMES]
    decisions, unexplained = unexplained_actions(games)
    assert decisions == 2694
    assert unexplained == []


@pytest.mark.slow
def test_simple_agent_explains_every_recorded_simple_agent_action(recorded_games):
    decisions, unexplained = unexplained_actions(recorded_games)
    assert decisions == 8782
    assert unexplained == []


def _act(rows, agent_id=0, bombs=(), flames=(), seed=0, **agent_fields):
    state = state_from_text(rows)
    state.bombs += list(bombs)
    state.flames += list(flames)
    for thing, code in [(b, Item.Bomb) for b in bombs] + [(f, Item.Flames) for f in flames]:
        r, c = thing.position
        if state.board[r][c] == Item.Passage:  # agents stay drawn on top of their bombs
            state.board[r][c] = int(code)
    for field, value in agent_fields.items():
        setattr(state.agents[agent_id], field, value)
    env = Pommerman()
    obs = env.set_json_info(to_json_info(state))
    return SimpleAgent(seed).act(obs[agent_id])


OPEN = [".....", ".....", "..0..", ".....", "....1"]


@pytest.mark.parametrize("seed", range(10))
def test_simple_agent_steps_out_of_a_bombs_line(seed):
    action = _act(OPEN, bombs=[Bomb((2, 3), bomber_id=1, life=5, blast_strength=2)], seed=seed)
    assert action in (U, D, L)


@pytest.mark.parametrize("seed", range(10))
def test_simple_agent_leaves_its_own_bomb_by_a_way_out(seed):
    # On its bomb: the corridor to the right is a dead end within the blast; the one up turns a corner.
    rows = ["#..##", "#.###", "#0...", "#####", "####1"]
    action = _act(rows, bombs=[Bomb((2, 1), bomber_id=0, life=8, blast_strength=3)], seed=seed)
    assert action == U


def test_simple_agent_bombs_wood_next_to_it_and_enemies_next_to_it():
    assert _act([".....", ".....", "..0w.", ".....", "....1"]) == B
    assert _act([".....", ".....", "..01.", ".....", "....."]) == B
    assert _act([".....", ".....", "..0w.", ".....", "....1"], ammo=0) == S


def test_simple_agent_goes_for_nearby_powerups_and_enemies():
    assert _act([".....", ".....", "..0.k", ".....", "....1"]) == R
    assert _act([".....", "..1..", ".....", "..0..", "....."]) == U


@pytest.mark.parametrize("seed", range(10))
def test_simple_agent_never_walks_into_flames(seed):
    rows = [".....", "..#..", ".#0..", ".....", "....1"]
    action = _act(rows, flames=[Flame((2, 3)), Flame((3, 2))], seed=seed)
    assert action == S


def test_simple_agents_beat_random_agents():
    env = Pommerman()
    winners = [play_game(env, make_agents("mixed", seed), seed=500 + seed)["winners"] for seed in range(12)]
    simple_wins = sum(w == [0] or w == [2] for w in winners)
    random_wins = sum(w == [1] or w == [3] for w in winners)
    assert random_wins == 0 and simple_wins >= 8


def test_random_agent_is_uniform_over_the_six_actions():
    agent = RandomAgent(0)
    counts = np.bincount([agent.act({}) for _ in range(6000)], minlength=6)
    assert counts.sum() == 6000 and np.all(np.abs(counts - 1000) < 5 * np.sqrt(6000 * (1 / 6) * (5 / 6)))


def test_make_agents_builds_the_recorded_line_ups_and_is_seeded():
    assert [type(a).__name__ for a in make_agents("mixed")] == ["SimpleAgent", "RandomAgent"] * 2
    assert all(isinstance(a, SimpleAgent) for a in make_agents("simple"))
    env = Pommerman()
    first = play_game(env, make_agents("simple", 4), seed=9, record=True)
    again = play_game(env, make_agents("simple", 4), seed=9, record=True)
    assert first["steps"] == again["steps"]
    with pytest.raises(ValueError, match="unknown Pommerman policy"):
        make_agents("smart")

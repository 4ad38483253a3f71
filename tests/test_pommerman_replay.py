"""The ground truth: 32 PommeFFACompetition games (4,074 steps) recorded with the real Pommerman playground.

Every transition must come out identical (the JSON snapshot strings, rewards and done), and seeded resets must
draw the recorded boards. The recordings live outside the repo, in ../shared/reference (see its README).
"""

from pathlib import Path

import pytest

from dreamlab.envs.pommerman import Pommerman, Result, load_games

RECORDINGS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "pommerman_playground_games.jsonl.gz"


@pytest.fixture(scope="module")
def games():
    if not RECORDINGS.is_file():
        pytest.skip(f"playground recordings not found at {RECORDINGS} (they ship in shared/reference, not the repo)")
    return load_games(RECORDINGS)


def test_recordings_are_the_expected_set(games):
    assert len(games) == 32
    assert sum(len(game["steps"]) for game in games) == 4074
    assert {game["policy"] for game in games} == {"random", "simple", "mixed"}


def test_every_recorded_transition_is_reproduced(games):
    env = Pommerman()
    mismatches = []
    for game in games:
        env.set_json_info(game["initial_state"])
        assert env.get_json_info() == game["initial_state"]
        for number, step in enumerate(game["steps"]):
            _, rewards, done, info = env.step(step["actions"])
            ours = env.get_json_info()
            differing = [key for key in ours if ours[key] != step["state"][key]]
            if differing or rewards != step["rewards"] or done != step["done"]:
                mismatches.append((game["policy"], game["seed"], number, differing, rewards, step["rewards"]))
                break
        else:
            assert f"Result.{info['result'].name}" == game["result"]
            assert info.get("winners") == game["winners"]
    assert mismatches == []


def test_seeded_reset_draws_the_recorded_boards_and_hidden_items(games):
    env = Pommerman()
    for game in games:
        env.reset(seed=game["seed"])
        assert env.get_json_info() == game["initial_state"], f"{game['policy']} seed {game['seed']}"


def test_outcomes_cover_wins_ties_and_the_step_limit(games):
    results = {game["result"] for game in games}
    assert results == {f"Result.{Result.Win.name}", f"Result.{Result.Tie.name}"}
    assert max(len(game["steps"]) for game in games) == 800

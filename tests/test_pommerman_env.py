"""The Pommerman API: games, recording and loading them, and the adapter to the real playground."""

import gzip
import json

import numpy as np
import pytest

from dreamlab.envs.pommerman import (
    PlaygroundPommerman,
    Pommerman,
    from_json_info,
    load_games,
    make_agents,
    make_env,
    play_game,
    playground_available,
    save_games,
    to_json_info,
)
from dreamlab.envs.pommerman import forward_model as fm


def test_a_game_runs_to_the_end_through_the_api():
    env = Pommerman()
    agents = make_agents("mixed", seed=1)
    obs = env.reset(seed=21)
    assert len(obs) == 4 and obs[0]["step_count"] == 0
    done, steps = False, 0
    while not done:
        obs, rewards, done, info = env.step(env.act(agents, obs))
        steps += 1
        assert obs[0]["step_count"] == steps
    alive = [a.is_alive for a in env.state.agents]
    assert steps <= 800 and (sum(alive) <= 1 or steps == 800)
    if info.get("winners"):
        assert rewards[info["winners"][0]] == 1 and sorted(rewards) == [-1, -1, -1, 1]


def test_recorded_games_replay_and_survive_a_save_and_load(tmp_path):
    env = Pommerman()
    games = [
        play_game(env, make_agents(p, seed=2), seed=40 + i, record=True, policy=p)
        for i, p in enumerate(["random", "mixed"])
    ]
    path = save_games(tmp_path / "games.jsonl.gz", games)
    loaded = load_games(path)
    assert [g["seed"] for g in loaded] == [40, 41] and loaded[1]["policy"] == "mixed"
    for game in loaded:
        state = from_json_info(game["initial_state"])
        for step in game["steps"]:
            fm.step(state, step["actions"])
            env.set_json_info(step["state"])
            assert env.get_json_info() == step["state"] == to_json_info(state)
            assert fm.rewards(state) == step["rewards"] and fm.is_done(state) == step["done"]
        assert game["steps"][-1]["done"]


def test_loading_missing_or_corrupt_recordings_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Pommerman game recordings"):
        load_games(tmp_path / "absent.jsonl.gz")
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"policy": "random"\n'))
    with pytest.raises(ValueError, match="line 1 is not valid JSON"):
        load_games(broken)
    partial = tmp_path / "partial.jsonl.gz"
    partial.write_bytes(gzip.compress((json.dumps({"policy": "random", "seed": 0}) + "\n").encode()))
    with pytest.raises(ValueError, match="lacks"):
        load_games(partial)
    not_gzip = tmp_path / "not_gzip.jsonl.gz"
    not_gzip.write_bytes(b"plain text, no gzip header")
    with pytest.raises(ValueError, match="not a readable"):
        load_games(not_gzip)


def test_backends():
    assert isinstance(make_env("dreamlab"), Pommerman)
    with pytest.raises(ValueError, match="unknown Pommerman backend"):
        make_env("gym")
    if not playground_available():
        with pytest.raises(ImportError, match="playground is not installed"):
            make_env("playground")


@pytest.mark.skipif(not playground_available(), reason="the Pommerman playground package is not installed")
def test_playground_adapter_plays_the_same_game():
    ours, theirs = Pommerman(), PlaygroundPommerman()
    rng = np.random.default_rng(0)
    for seed in range(3):
        ours.reset(seed=seed)
        theirs.reset(seed=seed)
        assert ours.get_json_info()["board"] == theirs.get_json_info()["board"]
        theirs.set_json_info(ours.get_json_info())
        done = False
        while not done:
            actions = rng.integers(0, 6, size=4).tolist()
            _, rewards, done, _ = ours.step(actions)
            _, their_rewards, _, _ = theirs.step(actions)
            assert ours.get_json_info()["board"] == theirs.get_json_info()["board"]
            assert rewards == their_rewards

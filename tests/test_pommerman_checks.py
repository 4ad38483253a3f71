"""Pommerman checks its arguments as gymnasium does (issue 21): integer actions, seeds and counts only."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dreamlab.envs.checks import SeedError
from dreamlab.envs.pommerman import Pommerman, RandomAgent, SimpleAgent, make_agents, play_game, play_games
from dreamlab.envs.pommerman.encoding import encode_games


@pytest.mark.parametrize("bad", [2.0, np.float64(1.0), True, np.bool_(False), None])
def test_float_and_bool_actions_are_refused_even_when_they_equal_an_action(bad):
    env = Pommerman()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action of agent 2 must be an int in 0..5"):
        env.step([0, 0, bad, 0])
    env.step(np.array([0, 1, 2, 3], dtype=np.int8))  # numpy integers are actions


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_bad_seeds_raise_gymnasiums_seed_error(seed):
    with pytest.raises(SeedError, match="seed must be None or a non-negative integer"):
        Pommerman().reset(seed=seed)
    for make in (lambda: make_agents("random", seed=seed), lambda: RandomAgent(seed), lambda: SimpleAgent(seed)):
        with pytest.raises(SeedError, match="non-negative integer"):
            make()


def test_numpy_integer_seeds_give_the_same_board():
    env = Pommerman()
    np.testing.assert_array_equal(env.reset(seed=np.int64(7))[0]["board"], env.reset(seed=7)[0]["board"])


@pytest.mark.parametrize("max_steps", [2.5, True, 0, "800"])
def test_max_steps_must_be_a_positive_integer(max_steps):
    with pytest.raises(ValueError, match="max_steps must be an integer >= 1"):
        Pommerman(max_steps=max_steps)


def test_agent_lists_are_checked():
    env = Pommerman()
    obs = env.reset(seed=0)
    agents = make_agents("random", seed=0)
    with pytest.raises(ValueError, match="need a sequence of 4 agents"):
        env.act(agents[:3], obs)
    with pytest.raises(ValueError, match="agent 1 must be a dreamlab Pommerman Agent"):
        env.act([agents[0], "simple", agents[2], agents[3]], obs)
    with pytest.raises(ValueError, match="one observation per agent"):
        env.act(agents, obs[:2])
    with pytest.raises(ValueError, match="need a sequence of 4 agents"):
        play_game(env, agents[:2], seed=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_steps": 0}, "min_steps must be an integer >= 1"),  # played no game, then divided by zero
        ({"min_steps": 5.5}, "min_steps"),
        ({"seed": -2}, "seed must be an integer >= 0"),
    ],
)
def test_game_collection_counts_and_seeds_are_checked(kwargs, message):
    arguments = {"policy": "random", "seed": 0, "min_steps": 10} | kwargs
    with pytest.raises(ValueError, match=message):
        play_games(**arguments)
    with pytest.raises(ValueError, match=message):
        encode_games(**arguments)


def test_benchmark_refuses_unknown_policies_in_one_line():
    script = Path(__file__).resolve().parents[1] / "experiments" / "pommerman_benchmark.py"
    arguments = [sys.executable, str(script), "--preset", "smoke", "--policies", "random,bogus"]
    run = subprocess.run(arguments, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    message = "error: --policies 'random,bogus' must name some of random, simple, mixed"
    assert run.stderr.strip().splitlines()[-1] == message

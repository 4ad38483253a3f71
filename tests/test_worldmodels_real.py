"""Playing controllers in the real CarRacing game: batched games, early ends of training episodes, whole final ones."""

import numpy as np
import pytest
import torch

pytest.importorskip("Box2D", reason="CarRacing needs pip install 'dreamlab[box2d]'")

from experiment_scripts import load_experiment

from dreamlab.config import make_config
from dreamlab.parallel import WorkerPool
from dreamlab.runs import UserError
from dreamlab.worldmodels import MDNRNN, ConvVAE, LinearController, agent_spec, get_task, pipeline, real
from dreamlab.worldmodels.real import Agent, EpisodeJob, evaluate_real, play_episodes, play_population

benchmark = load_experiment("worldmodels_real_benchmark")

Z, HIDDEN = 8, 16


@pytest.fixture(scope="module")
def spec():
    torch.manual_seed(0)
    return agent_spec("carracing", ConvVAE(Z), MDNRNN(Z, 3, HIDDEN, predict_done=False), HIDDEN, "lstm", {}, False)


def controllers(n: int, seed: int = 0) -> np.ndarray:
    """Candidates that drive differently: random weights, biases from full gas to full brake."""
    controller = LinearController(Z + HIDDEN, get_task("carracing"))
    params = np.random.default_rng(seed).normal(0.0, 0.3, (n, controller.n_params))
    params[:, -3:] = np.linspace([0.0, 1.0, -1.0], [0.0, -1.0, 1.0], n)  # bias: steer 0, gas high -> braking
    return params


def braking() -> np.ndarray:
    """A controller that never moves: no gas (raw -1 -> 0), full brake, whatever it sees."""
    controller = LinearController(Z + HIDDEN, get_task("carracing"))
    params = np.zeros((1, controller.n_params))
    params[0, -3:] = [0.0, -100.0, 100.0]
    return params


def test_batched_games_give_one_game_at_a_times_returns(spec):
    population, seeds = controllers(3), [5, 6]
    with WorkerPool(0) as pool:
        one = play_population(spec, population, seeds, pool, max_steps=80, games=1)
    with WorkerPool(2) as pool:  # worker processes, the weights shipped once per map
        batched = play_population(spec, population, seeds, pool, max_steps=80, games=4)
    # Batching only changes V's and M's float rounding (~1e-8), far below what changes a game's course.
    for row_one, row_batched, candidate in zip(one, batched, range(3), strict=True):
        for a, b, seed in zip(row_one, row_batched, seeds, strict=True):
            assert (a.candidate, a.seed, b.candidate, b.seed) == (candidate, seed, candidate, seed)
            assert a.steps == b.steps == 80
            assert a.episode_return == pytest.approx(b.episode_return, abs=1e-6)
    returns = [r.episode_return for row in one for r in row]
    assert len(set(np.round(returns, 6))) == len(returns)  # every episode differs, so a mix-up would show


def test_a_slot_whose_game_ends_plays_the_jobs_next_episode(spec):
    # Two games for five episodes of different lengths: finished slots take the next episode, the batch shrinks
    # at the end, and results come back in the job's order.
    population = np.concatenate([controllers(2), braking()])
    episodes = ((0, 1), (2, 2), (1, 3), (2, 4), (0, 5))
    job = EpisodeJob(population, episodes, max_steps=60, games=2, no_progress_steps=15)
    results = play_episodes(spec, job)
    assert [(r.candidate, r.seed) for r in results] == list(episodes)
    singles = [play_episodes(spec, EpisodeJob(population, (e,), 60, 1, 15))[0] for e in episodes]
    for a, b in zip(results, singles, strict=True):
        assert a.steps == b.steps and a.stopped_early == b.stopped_early
        assert a.episode_return == pytest.approx(b.episode_return, abs=1e-6)
    assert results[1].stopped_early and results[1].steps < 60  # the braking car ends early


def test_no_progress_ends_training_episodes_but_never_real_checks(spec):
    with WorkerPool(0) as pool:
        (training,) = play_population(spec, braking(), [7], pool, max_steps=100, no_progress_steps=20)
        (whole,) = evaluate_real(spec, braking()[0], [7], pool, max_steps=100)
    # The parked car touches the first tile at the start, then gains none.
    assert training[0].stopped_early and 20 <= training[0].steps <= 25
    assert not whole.stopped_early and whole.steps == 100
    # Its return so far: the time penalty up to the cut (the tile's reward was already paid).
    assert training[0].episode_return == pytest.approx(whole.episode_return + 0.1 * (100 - training[0].steps))


def test_no_progress_needs_a_task_with_a_progress_counter():
    torch.manual_seed(0)
    doom = agent_spec("doom", ConvVAE(Z), MDNRNN(Z, 3, HIDDEN), HIDDEN, "lstm", {}, False)
    with pytest.raises(ValueError, match="progress counter"):
        play_episodes(doom, EpisodeJob(np.zeros((1, 3 * (Z + HIDDEN + 1))), ((0, 1),), 10, 1, 5))


def test_agent_rows_act_independently_of_their_batch(spec):
    frames = np.random.default_rng(1).integers(0, 256, size=(5, 3, 64, 64, 3), dtype=np.uint8)
    population = controllers(3)
    single = []
    for row in range(3):
        agent = Agent(spec, population, games=1)
        agent.start(0, seed=10 + row, candidate=row)
        single.append([agent.act(f[row]) for f in frames])
    batch = Agent(spec, population, games=3)
    for row in range(3):
        batch.start(row, seed=10 + row, candidate=row)
    together = [batch.act(f) for f in frames]
    for row in range(3):
        np.testing.assert_allclose(np.stack([t[row] for t in together]), np.stack(single[row]), atol=1e-5)
    with pytest.raises(ValueError, match="games"):
        Agent(spec, population, games=0)


def test_the_pipeline_ends_only_training_episodes_early(tmp_path, monkeypatch):
    played = {"training": [], "checks": []}

    def training(*args, **kwargs):
        results = play_population(*args, **kwargs)
        played["training"].extend(r for row in results for r in row)
        return results

    def checks(*args, **kwargs):
        results = evaluate_real(*args, **kwargs)
        played["checks"].extend(results)
        return results

    monkeypatch.setattr(real, "play_population", training)
    monkeypatch.setattr(pipeline, "evaluate_real", checks)
    argv = ["--preset", "smoke", "--task", "carracing", "--train_in", "real", "--z_dim", "8", "--max_steps", "60"]
    argv += ["--rollouts", "2", "--vae_rollouts", "2", "--generations", "1", "--trials", "1", "--workers", "0"]
    argv += ["--real_eval_episodes", "1", "--final_episodes", "2", "--no_progress_steps", "5", "--threads", "1"]
    load_experiment("worldmodels").main(
        [*argv, "--run_dir", str(tmp_path / "run"), "--results_dir", str(tmp_path / "results")]
    )
    # The smoke candidates barely move in 5 steps: every training episode is cut; checks and the test are whole.
    assert len(played["training"]) == 4 and all(r.stopped_early and r.steps < 60 for r in played["training"])
    assert len(played["checks"]) == 1 + 2 and all(r.steps == 60 and not r.stopped_early for r in played["checks"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"games_per_worker": 0}, "games_per_worker"),
        ({"task": "carracing", "train_in": "real", "no_progress_steps": -1}, "no_progress_steps"),
        ({"no_progress_steps": 100}, "carracing"),  # doom has no road tiles
    ],
)
def test_speed_settings_are_validated(overrides, message):
    with pytest.raises(UserError, match=message):
        make_config(pipeline.WorldModelsConfig, pipeline.PRESETS, "fast", **overrides)


@pytest.mark.parametrize("preset", ["carracing_paper", "carracing_laptop"])
def test_carracing_presets_are_valid(preset):
    config = make_config(pipeline.WorldModelsConfig, pipeline.PRESETS, preset)
    assert (config.task, config.train_in, config.z_dim, config.hidden_size) == ("carracing", "real", 32, 256)
    assert not config.include_cell and config.final_controller == "best_check"
    assert config.no_progress_steps > 0 and config.vae_rollouts <= config.rollouts


def test_benchmark_smoke_measures_every_variant(tmp_path):
    metrics = benchmark.main(
        ["--preset", "smoke", "--max_steps", "20", "--results_dir", str(tmp_path), "--rounds", "1"]
    )
    assert set(metrics["variants"]) >= {"one_game", "lean_render", "no_progress", "games_2", "games_4_lean"}
    assert metrics["batched_and_lean_returns_equal_one_game"]
    assert (tmp_path / "worldmodels" / "real_benchmark.json").is_file()
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(["--preset", "smoke", "--games", "64", "--results_dir", str(tmp_path)])
    assert exit_info.value.code == 2

"""The dream-temperature calibration (`dreamlab.worldmodels.temperature`, experiments/worldmodels_temperature.py):
the lowest tau at which the tested controller's dream score is no higher than its real check score."""

import json

import numpy as np
import pytest
import torch
from experiment_scripts import load_experiment

from dreamlab.config import parse_config
from dreamlab.runs import cli
from dreamlab.worldmodels import WorldModel, pipeline
from dreamlab.worldmodels.pipeline import PRESETS, WorldModelsConfig
from dreamlab.worldmodels.temperature import calibrated_temperature, dream_returns_by_temperature

calibrate = load_experiment("worldmodels_temperature")

TINY = [
    "--preset", "smoke", "--max_steps", "30", "--rollouts", "2", "--vae_rollouts", "2", "--vae_steps", "2",
    "--vae_batch", "8", "--z_dim", "8", "--hidden_size", "8", "--n_components", "2", "--m_steps", "2",
    "--m_seq_len", "8", "--population", "4", "--trials", "1", "--generations", "2", "--real_eval_every", "1",
    "--real_eval_episodes", "2", "--final_controller", "best_check", "--final_episodes", "1", "--workers", "0",
    "--threads", "1",
]  # fmt: skip


@cli
def run_pipeline(argv: list[str]) -> dict:
    return pipeline.run(parse_config(WorldModelsConfig, PRESETS, argv))


def test_the_lowest_temperature_at_which_the_dream_is_no_easier_than_the_game_is_chosen():
    dream_means = {1.0: 1400.0, 1.15: 1300.0, 1.5: 780.0, 2.0: 350.0}
    assert calibrated_temperature(dream_means, 800.0) == 1.5
    assert calibrated_temperature(dream_means, 1300.0) == 1.15  # as hard as the game counts
    assert calibrated_temperature(dream_means, 100.0) is None  # easier everywhere: measure higher temperatures


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny finished Doom run with real checks, its result in results/worldmodels under the folder returned."""
    folder = tmp_path_factory.mktemp("temperature")
    torch.set_num_threads(1)
    run_pipeline([*TINY, "--name", "tiny", "--run_dir", str(folder / "run"), "--results_dir", str(folder / "results")])
    return folder


def test_dream_returns_are_those_of_the_tested_controller_at_each_temperature(finished_run):
    world = WorldModel.load(finished_run / "run")
    returns = dream_returns_by_temperature(world, [1.0, 2.0], episodes=5, seed=3)
    assert sorted(returns) == [1.0, 2.0]
    for tau, values in returns.items():
        assert values.shape == (5,) and np.all((values >= 1) & (values <= 30))
        np.testing.assert_array_equal(values, world.dream_returns(5, tau, seed=3))  # seeded: reproducible
    with pytest.raises(ValueError, match="positive"):
        dream_returns_by_temperature(world, [1.0, 0.0], episodes=5)


def test_the_script_writes_each_runs_curve_check_and_calibration(finished_run, capsys):
    results = finished_run / "results"
    rows = calibrate.main(
        ["tiny", "--temperatures", "2", "1", "--episodes", "4", "--threads", "1", "--results_dir", str(results)]
    )
    row = rows["tiny"]
    result = json.loads((results / "worldmodels" / "tiny.json").read_text())
    assert row["tested_generation"] == result["metrics"]["final_controller_generation"]
    assert row["temperatures"] == [1.0, 2.0] and len(row["dream_means"]) == len(row["dream_stderrs"]) == 2
    means = dict(zip(row["temperatures"], row["dream_means"], strict=True))
    assert row["calibrated"] == calibrated_temperature(means, row["real_check"])
    saved = json.loads((results / "worldmodels" / "doom_dream_temperature.json").read_text())
    assert saved["metrics"]["runs"]["tiny"]["dream_means"] == row["dream_means"]
    assert (results / "worldmodels" / "doom_dream_temperature.png").stat().st_size > 0
    assert "calibrated tau" in capsys.readouterr().out


def test_an_unknown_run_is_named_in_one_line(finished_run, capsys):
    with pytest.raises(SystemExit) as stop:
        calibrate.main(["nosuchrun", "--results_dir", str(finished_run / "results")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "nosuchrun.json" in err and "experiments/worldmodels.py" in err

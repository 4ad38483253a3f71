"""experiments/worldmodels_compare.py pools repeated runs of a core (C seeds) into one comparison."""

from pathlib import Path

import numpy as np
import pytest
from experiment_scripts import load_experiment

from dreamlab.results import CurveLog, write_result

compare = load_experiment("worldmodels_compare")


def _fake_run(
    results_dir: Path,
    name: str,
    core: str,
    c_seed: int,
    returns: list[float],
    tested: int,
    rounds: int = 1,
    round_offset: float = 0.0,
) -> None:
    curve = CurveLog()
    for generation in (1, 2, 3, 4):
        row = {"generation": generation, "mean_score": 100.0, "best_score": 200.0}
        if generation % 2 == 0:
            row |= {"real_mean": 500.0 + generation, "real_std": 50.0}
        curve.append(**row)
    curve.to_csv(results_dir / "worldmodels" / f"{name}_curve.csv")
    write_result(
        "worldmodels",
        name,
        experiment="worldmodels",
        config={"name": name, "core": core, "seed": 5, "c_seed": c_seed, "real_eval_episodes": 4, "m_steps": 10},
        metrics={
            "generations": 4,
            "final_controller_generation": tested,
            "real_episode_returns": returns,
            "m_final_z_nll": 0.8,
            "solved_threshold": 750.0,
        }
        | (
            {"rounds": [{"real_mean": 600.0 + round_offset + 100 * k, "real_std": 40.0} for k in range(rounds)]}
            if rounds > 1
            else {}
        ),
        wall_seconds=1.0,
        results_dir=results_dir,
    )


def test_runs_of_one_core_are_pooled_with_their_spread(tmp_path):
    (tmp_path / "worldmodels").mkdir()
    _fake_run(tmp_path, "lstm_s0", "lstm", 0, [700.0, 900.0], tested=2)
    _fake_run(tmp_path, "dnc_s0", "dnc", 0, [600.0, 800.0], tested=4)
    _fake_run(tmp_path, "dnc_s1", "dnc", 1, [800.0, 1000.0], tested=2)
    summary = compare.main(["lstm_s0", "dnc_s0", "dnc_s1", "--results_dir", str(tmp_path), "--name", "cmp"])

    dnc = summary["dnc"]
    assert dnc["runs"] == 2 and dnc["episodes"] == 4
    assert dnc["run_means"] == [700.0, 900.0]
    assert dnc["real_mean"] == pytest.approx(800.0)
    assert dnc["real_std"] == pytest.approx(np.std([600.0, 800.0, 800.0, 1000.0]))
    assert dnc["run_mean_std"] == pytest.approx(np.sqrt(2) * 100.0)  # sample std of (700, 900)
    assert dnc["run_mean_stderr"] == pytest.approx(100.0)
    assert dnc["runs_solved"] == 1
    assert [r["c_seed"] for r in dnc["per_run"]] == [0, 1]
    assert [r["tested_generation"] for r in dnc["per_run"]] == [4, 2]
    # One run: no spread over runs can be estimated.
    assert summary["lstm"]["run_mean_std"] is None and summary["lstm"]["real_mean"] == pytest.approx(800.0)
    assert (tmp_path / "worldmodels" / "cmp.png").stat().st_size > 0
    assert (tmp_path / "worldmodels" / "cmp.json").is_file()


def test_missing_result_is_named(tmp_path, capsys):
    (tmp_path / "worldmodels").mkdir()
    with pytest.raises(SystemExit) as exit_:
        compare.main(["nope", "--results_dir", str(tmp_path)])
    assert exit_.value.code == 2 and "nope.json" in capsys.readouterr().err


def test_iterated_runs_report_their_rounds(tmp_path, capsys):
    (tmp_path / "worldmodels").mkdir()
    _fake_run(tmp_path, "lstm_iter2", "lstm", -1, [700.0, 900.0], tested=2, rounds=3)  # C seed -1: --seed
    _fake_run(tmp_path, "dnc_s0", "dnc", 0, [600.0, 800.0], tested=4)
    summary = compare.main(["lstm_iter2", "dnc_s0", "--results_dir", str(tmp_path), "--name", "cmp"])

    assert summary["lstm"]["per_run"][0]["round_means"] == [600.0, 700.0, 800.0]
    assert summary["lstm"]["per_run"][0]["c_seed"] == 5
    assert summary["dnc"]["per_run"][0]["round_means"] == []
    assert summary["lstm"]["round_means_over_runs"] == [600.0, 700.0, 800.0]
    assert summary["dnc"]["round_means_over_runs"] == []
    assert "rounds 600 -> 700 -> 800" in capsys.readouterr().out


def test_rounds_are_averaged_over_a_cores_runs_as_deep_as_all_go(tmp_path, capsys):
    (tmp_path / "worldmodels").mkdir()
    _fake_run(tmp_path, "lstm_s0", "lstm", 0, [700.0, 900.0], tested=2, rounds=3, round_offset=0.0)
    _fake_run(tmp_path, "lstm_s1", "lstm", 1, [800.0, 1000.0], tested=2, rounds=2, round_offset=50.0)
    summary = compare.main(["lstm_s0", "lstm_s1", "--results_dir", str(tmp_path), "--name", "cmp"])

    # Round 2 exists in one run only, so the average stops at round 1: (600 + 650) / 2, (700 + 750) / 2.
    assert summary["lstm"]["round_means_over_runs"] == [625.0, 725.0]
    assert "rounds averaged over runs 625 -> 725" in capsys.readouterr().out
    assert (tmp_path / "worldmodels" / "cmp_rounds.png").stat().st_size > 0


def test_runs_of_one_round_draw_no_rounds_figure(tmp_path):
    (tmp_path / "worldmodels").mkdir()
    _fake_run(tmp_path, "lstm_s0", "lstm", 0, [700.0, 900.0], tested=2)
    compare.main(["lstm_s0", "--results_dir", str(tmp_path), "--name", "cmp"])
    assert not (tmp_path / "worldmodels" / "cmp_rounds.png").exists()

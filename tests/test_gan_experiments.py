"""The GAN scripts end to end on their smoke presets, and a run stopped part-way resumes to the same result."""

import importlib
import sys
from pathlib import Path

import pytest
import torch

from dreamlab.checkpoint import load_checkpoint, save_checkpoint
from dreamlab.runs import NonFiniteError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))


@pytest.mark.parametrize(
    ("script", "curve", "steps", "stop_at"),
    [
        ("colorize.py", "colorize_sprites_smoke_curve.csv", 10, 5),
        ("sncgan.py", "sncgan_sprites_smoke_losses.csv", 30, 10),
    ],
)
def test_smoke_run_resumed_part_way_equals_a_straight_run(tmp_path, script, curve, steps, stop_at):
    def run(folder: str, *extra: str) -> str:
        main = importlib.import_module(script.removesuffix(".py")).main
        main(
            [
                "--preset",
                "smoke",
                "--threads",
                "1",
                "--run_dir",
                str(tmp_path / folder / "run"),
                "--results_dir",
                str(tmp_path / folder / "results"),
                *extra,
            ]
        )
        return (tmp_path / folder / "results" / "gan" / curve).read_text()

    straight = run("straight")
    run("resumed", "--steps", str(stop_at))  # a run that stopped at a checkpoint ...
    assert run("resumed", "--steps", str(steps)) == straight  # ... continues to exactly the same curve


def test_finished_sncgan_run_can_be_judged_again_but_not_retrained_differently(tmp_path, capsys):
    main = importlib.import_module("sncgan").main
    common = ["--preset", "smoke", "--threads", "1", "--steps", "10", "--sprite_rotation", "0"]
    common += ["--run_dir", str(tmp_path / "run"), "--results_dir", str(tmp_path / "results")]
    first = main(common)
    losses = (tmp_path / "results" / "gan" / "sncgan_sprites_rot0_smoke_losses.csv").read_text()
    # The judge only evaluates: another judge re-evaluates the same generator without training it further.
    again = main([*common, "--classifier_epochs", "2"])
    assert again["steps"] == first["steps"] == 10
    assert (tmp_path / "results" / "gan" / "sncgan_sprites_rot0_smoke_losses.csv").read_text() == losses
    with pytest.raises(SystemExit) as refused:
        main([*common, "--lr", "1e-3"])
    assert refused.value.code == 2
    assert "lr: 0.0002 -> 0.001" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a decay must start before the last step
        main([*common, "--lr_decay_start", "10"])
    assert "--lr_decay_start" in capsys.readouterr().err


def sncgan_args(tmp_path, *extra: str) -> list[str]:
    return [
        "--preset",
        "smoke",
        "--threads",
        "1",
        "--run_dir",
        str(tmp_path / "run"),
        "--results_dir",
        str(tmp_path / "results"),
        *extra,
    ]


def test_a_fresh_sncgan_run_never_judges_an_earlier_runs_snapshots(tmp_path, monkeypatch):
    """Issue 21: after deleting the checkpoint, a shorter run's evaluation CSV held the old run's later snapshots,
    and the judge was cached relative to the working directory whatever --run_dir said."""
    monkeypatch.chdir(tmp_path)
    main = importlib.import_module("sncgan").main
    main(sncgan_args(tmp_path, "--steps", "20", "--eval_every", "5"))
    (tmp_path / "run" / "checkpoint.pt").unlink()
    main(sncgan_args(tmp_path, "--steps", "10", "--eval_every", "5"))
    evals = (tmp_path / "results" / "gan" / "sncgan_sprites_smoke_eval.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in evals[1:]] == ["5", "10"]
    assert not (tmp_path / "runs").exists()  # nothing cached outside the run's own folder
    assert len(list((tmp_path / "run" / "judge").glob("judge_*.pt"))) == 1


def test_a_snapshot_of_another_config_or_with_nan_weights_is_refused(tmp_path, capsys):
    sncgan = importlib.import_module("sncgan")
    sncgan.main(sncgan_args(tmp_path, "--steps", "10", "--eval_every", "5"))
    snapshot = tmp_path / "run" / "snapshots" / "generator_0000005.pt"
    saved = load_checkpoint(snapshot)
    saved["config"]["z_dim"] = 32
    save_checkpoint(snapshot, saved)
    with pytest.raises(SystemExit) as refused:
        sncgan.main(sncgan_args(tmp_path, "--steps", "10", "--eval_every", "5"))
    assert refused.value.code == 2
    assert "z_dim: 32 -> 64" in capsys.readouterr().err
    saved["config"]["z_dim"] = 64
    next(v for v in saved["generator"].values() if v.is_floating_point()).fill_(float("nan"))
    save_checkpoint(snapshot, saved)
    with pytest.raises(NonFiniteError, match=str(snapshot)):
        sncgan.main(sncgan_args(tmp_path, "--steps", "10", "--eval_every", "5"))


def test_a_checkpoint_with_nan_weights_is_refused_naming_the_file(tmp_path):
    sncgan = importlib.import_module("sncgan")
    sncgan.main(sncgan_args(tmp_path, "--steps", "5"))
    path = tmp_path / "run" / "checkpoint.pt"
    saved = load_checkpoint(path)
    weights = saved["state"]["trainer"]["generator"]
    next(v for v in weights.values() if v.is_floating_point()).fill_(float("nan"))
    save_checkpoint(path, saved)
    with pytest.raises(NonFiniteError, match=str(path)):
        sncgan.main(sncgan_args(tmp_path, "--steps", "10"))


def test_the_judge_is_keyed_by_held_out_and_a_tampered_cache_is_retrained(tmp_path):
    """Issue 21: --held_out 0.5 reused a judge trained for another split and reported its stale accuracy."""
    sncgan = importlib.import_module("sncgan")
    from dreamlab.config import make_config

    def judge(held_out: float) -> tuple[Path, dict]:
        config = make_config(sncgan.SNcGANConfig, sncgan.PRESETS, "smoke", n_images=100, held_out=held_out)
        data = sncgan.load_data(config)
        train, held = data.split(config.held_out, torch.Generator().manual_seed(config.seed))
        _, accuracy = sncgan.get_classifier(config, train, held, torch.device("cpu"), torch.float32, tmp_path / "judge")
        key = sncgan.fingerprint(sncgan.judge_provenance(config, train, held))
        return tmp_path / "judge" / f"judge_{key}.pt", accuracy

    path_10, _ = judge(0.1)
    path_50, accuracy_50 = judge(0.5)
    assert path_10 != path_50 and path_10.is_file() and path_50.is_file()
    saved = load_checkpoint(path_50)
    saved["provenance"]["held_out"] = 0.1  # a file whose record disagrees with its name is not trusted
    saved["held_out_accuracy"] = {k: -1.0 for k in accuracy_50}
    save_checkpoint(path_50, saved)
    assert judge(0.5) == (path_50, accuracy_50)  # retrained, deterministically: the same judge again

"""The GAN scripts end to end on their smoke presets, and a run stopped part-way resumes to the same result."""

import importlib
import sys
from pathlib import Path

import pytest

from dreamlab.checkpoint import CheckpointError

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


def test_finished_sncgan_run_can_be_judged_again_but_not_retrained_differently(tmp_path):
    main = importlib.import_module("sncgan").main
    common = ["--preset", "smoke", "--threads", "1", "--steps", "10", "--sprite_rotation", "0"]
    common += ["--run_dir", str(tmp_path / "run"), "--results_dir", str(tmp_path / "results")]
    first = main(common)
    losses = (tmp_path / "results" / "gan" / "sncgan_sprites_rot0_smoke_losses.csv").read_text()
    # The judge only evaluates: another judge re-evaluates the same generator without training it further.
    again = main([*common, "--classifier_epochs", "2"])
    assert again["steps"] == first["steps"] == 10
    assert (tmp_path / "results" / "gan" / "sncgan_sprites_rot0_smoke_losses.csv").read_text() == losses
    with pytest.raises(CheckpointError, match=r"lr: 0.0002 -> 0.001"):
        main([*common, "--lr", "1e-3"])
    with pytest.raises(ValueError, match="lr_decay_start"):  # a decay must start before the last step
        main([*common, "--lr_decay_start", "10"])

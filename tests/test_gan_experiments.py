"""The GAN studies end to end on their smoke presets, and a run stopped part-way resumes to the same result."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from dreamlab.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from dreamlab.config import make_config
from dreamlab.gan import colorize_study as colorize
from dreamlab.gan import study
from dreamlab.gan.study import PRESETS, SNcGANConfig, load_run, run
from dreamlab.runs import NonFiniteError, UserError


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # a run applies config.threads to the whole process


def sncgan(tmp_path, folder: str = "", **overrides) -> SNcGANConfig:
    """The smoke config of a run in tmp_path/folder/run writing to tmp_path/folder/results."""
    where = tmp_path / folder
    values = dict(threads=1, run_dir=str(where / "run"), results_dir=str(where / "results"))
    return make_config(SNcGANConfig, PRESETS, "smoke", **{**values, **overrides})


def test_sncgan_smoke_run_resumed_part_way_equals_a_straight_run(tmp_path):
    def curve(folder: str, steps: int) -> str:
        run(sncgan(tmp_path, folder, steps=steps))
        return (tmp_path / folder / "results" / "gan" / "sncgan_sprites_smoke_losses.csv").read_text()

    straight = curve("straight", 30)
    curve("resumed", 10)  # a run that stopped at a checkpoint ...
    assert curve("resumed", 30) == straight  # ... continues to exactly the same curve
    g_straight, _ = load_run(tmp_path / "straight" / "run")
    g_resumed, _ = load_run(tmp_path / "resumed" / "run")
    for a, b in zip(g_straight.generator.parameters(), g_resumed.generator.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_colorize_smoke_run_resumed_part_way_equals_a_straight_run(tmp_path):
    def curve(folder: str, steps: int) -> str:
        where = tmp_path / folder
        paths = dict(threads=1, run_dir=str(where / "run"), results_dir=str(where / "results"), steps=steps)
        colorize.run(make_config(colorize.ColorizeConfig, colorize.PRESETS, "smoke", **paths))
        return (where / "results" / "gan" / "colorize_sprites_smoke_curve.csv").read_text()

    straight = curve("straight", 10)
    curve("resumed", 5)
    assert curve("resumed", 10) == straight
    trainer, config = colorize.load_run(tmp_path / "straight" / "run")
    lines = torch.zeros(2, 1, config.image_size, config.image_size)
    assert trainer.colorize(lines, torch.ones(2, 3, config.image_size, config.image_size)).shape == (2, 3, 32, 32)


def test_load_run_gives_the_trained_generator_its_condition_and_config(tmp_path):
    run(sncgan(tmp_path, steps=5))
    trainer, config = load_run(tmp_path / "run")
    assert (config.steps, config.variant) == (5, "sncgan")
    assert trainer.codec.names == ["shape", "colour", "size", "x_position", "y_position"]
    labels = torch.zeros(3, len(trainer.codec.names), dtype=torch.long)
    images = trainer.generate(trainer.sample_z(3, torch.Generator().manual_seed(0)), trainer.codec.encode(labels))
    assert images.shape == (3, 3, config.image_size, config.image_size) and images.abs().max() <= 1


def test_the_headline_recipe_is_a_preset_reproducing_its_recorded_config():
    recorded = json.loads(
        (Path(__file__).resolve().parents[1] / "results/gan/sncgan_sprites_rot0_zn_g32_decay54to66k.json").read_text()
    )["config"]
    config = make_config(SNcGANConfig, PRESETS, "upright_g32", results_dir="results", name=recorded["name"])
    values = dataclasses.asdict(config)
    run_only = {"preset", "threads"}  # the preset's name, and the thread count the command passed
    assert {k: v for k, v in values.items() if k in recorded and k not in run_only} == {
        k: v for k, v in recorded.items() if k in values and k not in run_only
    }


def test_bf16_autocast_trains_the_gan_with_finite_losses_close_to_float32s():
    torch.manual_seed(0)
    real = torch.rand(16, 3, 16, 16) * 2 - 1
    y = torch.nn.functional.one_hot(torch.arange(16) % 3, 3).float()
    losses = {}
    for mode in ("none", "bf16"):
        torch.manual_seed(0)
        trainer = study.GANTrainer("sncgan", 3, 16, z_dim=4, g_width=4, d_width=4, autocast=mode)
        generator = torch.Generator().manual_seed(1)
        losses[mode] = [trainer.step(real, y, generator) for _ in range(3)]
    for a, b in zip(losses["none"], losses["bf16"], strict=True):
        for key in ("d_loss", "g_loss"):
            assert torch.isfinite(torch.tensor(b[key]))
            assert b[key] == pytest.approx(a[key], rel=0.05)
    assert losses["bf16"] != losses["none"]  # bfloat16 really ran
    with pytest.raises(UserError, match="--autocast"):
        study.GANTrainer("sncgan", 3, 16, autocast="fp16")


def test_finished_sncgan_run_can_be_judged_again_but_not_retrained_differently(tmp_path):
    common = {"steps": 10, "sprite_rotation": 0.0}
    first = run(sncgan(tmp_path, **common))
    losses = (tmp_path / "results" / "gan" / "sncgan_sprites_rot0_smoke_losses.csv").read_text()
    # The judge only evaluates: another judge re-evaluates the same generator without training it further.
    again = run(sncgan(tmp_path, **common, classifier_epochs=2))
    assert again["steps"] == first["steps"] == 10
    assert (tmp_path / "results" / "gan" / "sncgan_sprites_rot0_smoke_losses.csv").read_text() == losses
    with pytest.raises(CheckpointError, match="lr: 0.0002 -> 0.001"):
        run(sncgan(tmp_path, **common, lr=1e-3))
    with pytest.raises(UserError, match="--lr_decay_start"):  # a decay must start before the last step
        sncgan(tmp_path, **common, lr_decay_start=10)


def test_a_fresh_sncgan_run_never_judges_an_earlier_runs_snapshots(tmp_path, monkeypatch):
    """Issue 21: after deleting the checkpoint, a shorter run's evaluation CSV held the old run's later snapshots,
    and the judge was cached relative to the working directory whatever --run_dir said."""
    monkeypatch.chdir(tmp_path)
    run(sncgan(tmp_path, steps=20, eval_every=5))
    (tmp_path / "run" / "checkpoint.pt").unlink()
    run(sncgan(tmp_path, steps=10, eval_every=5))
    evals = (tmp_path / "results" / "gan" / "sncgan_sprites_smoke_eval.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in evals[1:]] == ["5", "10"]
    assert not (tmp_path / "runs").exists()  # nothing cached outside the run's own folder
    assert len(list((tmp_path / "run" / "judge").glob("judge_*.pt"))) == 1


def test_a_snapshot_of_another_config_or_with_nan_weights_is_refused(tmp_path):
    config = sncgan(tmp_path, steps=10, eval_every=5)
    run(config)
    snapshot = tmp_path / "run" / "snapshots" / "generator_0000005.pt"
    saved = load_checkpoint(snapshot)
    saved["config"]["z_dim"] = 32
    save_checkpoint(snapshot, saved)
    with pytest.raises(UserError, match="z_dim: 32 -> 64"):
        run(config)
    saved["config"]["z_dim"] = 64
    next(v for v in saved["generator"].values() if v.is_floating_point()).fill_(float("nan"))
    save_checkpoint(snapshot, saved)
    with pytest.raises(NonFiniteError, match=str(snapshot)):
        run(config)


def test_a_checkpoint_with_nan_weights_is_refused_naming_the_file(tmp_path):
    run(sncgan(tmp_path, steps=5))
    path = tmp_path / "run" / "checkpoint.pt"
    saved = load_checkpoint(path)
    weights = saved["state"]["trainer"]["generator"]
    next(v for v in weights.values() if v.is_floating_point()).fill_(float("nan"))
    save_checkpoint(path, saved)
    with pytest.raises(NonFiniteError, match=str(path)):
        run(sncgan(tmp_path, steps=10))


def test_the_judge_is_keyed_by_held_out_and_a_tampered_cache_is_retrained(tmp_path):
    """Issue 21: --held_out 0.5 reused a judge trained for another split and reported its stale accuracy."""

    def judge(held_out: float) -> tuple[Path, dict]:
        config = make_config(SNcGANConfig, PRESETS, "smoke", n_images=100, held_out=held_out)
        data = study.load_data(config)
        train, held = data.split(config.held_out, torch.Generator().manual_seed(config.seed))
        _, accuracy = study.get_classifier(config, train, held, torch.device("cpu"), torch.float32, tmp_path / "judge")
        key = study.fingerprint(study.judge_provenance(config, train, held))
        return tmp_path / "judge" / f"judge_{key}.pt", accuracy

    path_10, _ = judge(0.1)
    path_50, accuracy_50 = judge(0.5)
    assert path_10 != path_50 and path_10.is_file() and path_50.is_file()
    saved = load_checkpoint(path_50)
    saved["provenance"]["held_out"] = 0.1  # a file whose record disagrees with its name is not trusted
    saved["held_out_accuracy"] = {k: -1.0 for k in accuracy_50}
    save_checkpoint(path_50, saved)
    assert judge(0.5) == (path_50, accuracy_50)  # retrained, deterministically: the same judge again

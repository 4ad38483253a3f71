"""The DRAW study (dreamlab.draw.study) end to end at smoke size: result fields, figures, exact resumption, loading
a finished run, bf16 autocast, and clear errors."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dreamlab.checkpoint import CheckpointError
from dreamlab.config import make_config
from dreamlab.data.images import write_idx
from dreamlab.draw.study import PRESETS, DrawConfig, build_model, load_run, run
from dreamlab.draw.training import train_step
from dreamlab.runs import UserError


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # run() applies config.threads to the whole process


def tiny(tmp_path: Path, **overrides) -> DrawConfig:
    values = dict(
        results_dir=str(tmp_path / "results"),
        run_dir=str(tmp_path / "run"),
        name="tiny",
        n_train=64,
        n_test=16,
        figure_images=2,
        threads=1,
    )
    return make_config(DrawConfig, PRESETS, "smoke", **{**values, **overrides})


def result(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "results" / "draw" / "tiny.json").read_text())


def test_binary_run_writes_result_figures_and_resumes(tmp_path, capsys):
    metrics = run(tiny(tmp_path, steps=2, eval_every=1))
    record = result(tmp_path)
    assert record["config"]["attention"] is True and record["config"]["channels"] == 1
    assert record["config"]["likelihood"] == "bernoulli"
    nll = record["metrics"]["test_nll_nats"]
    assert nll == pytest.approx(record["metrics"]["test_reconstruction"] + record["metrics"]["test_kl_nats"])
    assert metrics["steps"] == 2
    for figure in record["metrics"]["figures"]:
        assert (tmp_path / "results" / "draw" / figure).stat().st_size > 0
    assert any(f.endswith("_attention.gif") for f in record["metrics"]["figures"])

    run(tiny(tmp_path, steps=3, eval_every=1))  # a grown budget resumes
    assert "resumed" in capsys.readouterr().out
    assert result(tmp_path)["metrics"]["steps"] == 3
    with pytest.raises(CheckpointError, match="z_size: 4 -> 5"):
        run(tiny(tmp_path, steps=3, z_size=5))


def test_a_run_stopped_part_way_resumes_to_the_same_curve_and_weights(tmp_path):
    straight = run(tiny(tmp_path / "a", steps=6, eval_every=2))
    run(tiny(tmp_path / "b", steps=4, eval_every=2))  # stopped at a curve row
    resumed = run(tiny(tmp_path / "b", steps=6, eval_every=2))
    curve = [(tmp_path / p / "results" / "draw" / "tiny_curve.csv").read_text().splitlines() for p in ("a", "b")]
    without_seconds = [[line.rsplit(",", 1)[0] for line in lines] for lines in curve]
    assert without_seconds[0] == without_seconds[1] and len(curve[0]) == 4  # header + rows at steps 2, 4, 6
    assert resumed["test_loss"] == straight["test_loss"]
    model_a, _ = load_run(tmp_path / "a" / "run")
    model_b, _ = load_run(tmp_path / "b" / "run")
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_load_run_rebuilds_the_trained_model_and_its_resolved_config(tmp_path):
    run(tiny(tmp_path, steps=2))
    model, config = load_run(tmp_path / "run")
    assert (config.channels, config.likelihood, config.steps) == (1, "bernoulli", 2)
    assert not model.training
    samples = model.generate(3, generator=torch.Generator().manual_seed(0))
    assert samples.canvases.shape == (config.glimpses, 3, 1, config.image_size, config.image_size)


def test_bf16_autocast_trains_with_a_finite_loss_close_to_float32s():
    config = make_config(DrawConfig, PRESETS, "smoke", channels=1, likelihood="bernoulli")
    images = (torch.rand(16, 1, 16, 16, generator=torch.Generator().manual_seed(1)) > 0.7).float()
    losses = {}
    for mode in ("none", "bf16"):
        torch.manual_seed(0)
        model = build_model(config)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        losses[mode] = [
            train_step(model, optimizer, images, "bernoulli", 10.0, torch.Generator().manual_seed(s), autocast=mode)[
                "loss"
            ]
            for s in range(4)
        ]
    assert all(np.isfinite(losses["bf16"]))
    np.testing.assert_allclose(losses["bf16"], losses["none"], rtol=0.05)
    assert losses["bf16"] != losses["none"]  # bfloat16 really ran


def test_colour_vae_records_channels_and_no_nll(tmp_path):
    pytest.importorskip("dreamlab.data.sprites")
    run(tiny(tmp_path, data="coloured_sprites", model="vae", steps=1))
    record = result(tmp_path)
    assert record["config"]["channels"] == 3 and record["config"]["attention"] is False
    assert record["config"]["likelihood"] == "l2" and record["metrics"]["test_nll_nats"] is None


def test_clear_errors(tmp_path):
    with pytest.raises(UserError, match="--data_path"):
        run(tiny(tmp_path, data="mnist"))
    with pytest.raises(UserError, match="missing"):
        run(tiny(tmp_path, data="folder", data_path=str(tmp_path / "missing")))
    with pytest.raises(UserError, match="--data"):
        tiny(tmp_path, data="cifar")
    with pytest.raises(UserError, match="--model"):
        tiny(tmp_path, model="gan")
    with pytest.raises(UserError, match="--autocast"):
        tiny(tmp_path, autocast="fp16")
    with pytest.raises(UserError, match="--channels"):
        tiny(tmp_path, channels=3)
    assert not (tmp_path / "run").exists()


def test_user_data_mnist_idx_and_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    mnist = tmp_path / "mnist"
    write_idx(mnist / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (80, 28, 28), dtype=np.uint8))
    write_idx(mnist / "t10k-images-idx3-ubyte", rng.integers(0, 256, (20, 28, 28), dtype=np.uint8))
    run(tiny(tmp_path, data="mnist", data_path=str(mnist), steps=1))
    record = result(tmp_path)
    assert record["config"]["channels"] == 1 and record["metrics"]["test_nll_nats"] > 0
    with pytest.raises(UserError, match="asked for 50 MNIST test images"):
        run(tiny(tmp_path / "b", data="mnist", data_path=str(mnist), n_test=50))

    folder = tmp_path / "faces"
    folder.mkdir()
    for k in range(24):
        cv2.imwrite(str(folder / f"{k:03d}.png"), rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    run(tiny(tmp_path / "c", data="folder", data_path=str(folder), n_train=16, n_test=8, steps=1))
    record = result(tmp_path / "c")
    assert record["config"]["channels"] == 3 and record["config"]["likelihood"] == "l2"


def test_paper_preset_is_the_papers_mnist_model():
    config = make_config(DrawConfig, PRESETS, "paper", channels=1, likelihood="bernoulli")
    assert (config.data, config.image_size, config.glimpses) == ("mnist", 28, 64)
    assert (config.read_patch, config.write_patch, config.enc_size, config.dec_size, config.z_size) == (
        2,
        5,
        256,
        256,
        100,
    )
    model = build_model(config)
    out = model(torch.rand(2, 1, 28, 28).round())
    assert out.canvases.shape == (64, 2, 1, 28, 28) and model.read.output_size == 2 * 2 * 2

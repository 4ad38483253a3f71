"""experiments/draw.py end to end at smoke size: result fields, figures, resuming, and clear errors."""

import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dreamlab.config import make_config
from dreamlab.data.images import write_idx

_SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "draw.py"


@pytest.fixture(scope="module")
def draw_script():
    spec = importlib.util.spec_from_file_location("draw_experiment", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve field annotations through sys.modules
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    yield module
    sys.modules.pop(spec.name, None)
    torch.set_num_threads(threads)  # main() applies --threads to the whole process


def tiny_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--preset",
        "smoke",
        "--results_dir",
        str(tmp_path / "results"),
        "--run_dir",
        str(tmp_path / "run"),
        "--name",
        "tiny",
        "--n_train",
        "64",
        "--n_test",
        "16",
        "--figure_images",
        "2",
        "--threads",
        "1",
        *extra,
    ]


def test_binary_run_writes_result_figures_and_resumes(draw_script, tmp_path, capsys):
    metrics = draw_script.main(tiny_args(tmp_path, "--steps", "2", "--eval_every", "1"))
    record = json.loads((tmp_path / "results" / "draw" / "tiny.json").read_text())
    assert record["config"]["attention"] is True and record["config"]["channels"] == 1
    assert record["config"]["likelihood"] == "bernoulli"
    nll = record["metrics"]["test_nll_nats"]
    assert nll == pytest.approx(record["metrics"]["test_reconstruction"] + record["metrics"]["test_kl_nats"])
    assert metrics["steps"] == 2
    for figure in record["metrics"]["figures"]:
        assert (tmp_path / "results" / "draw" / figure).stat().st_size > 0
    assert any(f.endswith("_attention.gif") for f in record["metrics"]["figures"])

    draw_script.main(tiny_args(tmp_path, "--steps", "3", "--eval_every", "1"))  # a grown budget resumes
    assert "resumed" in capsys.readouterr().out
    record = json.loads((tmp_path / "results" / "draw" / "tiny.json").read_text())
    assert record["metrics"]["steps"] == 3
    assert "z_size" in refused(draw_script.main, tiny_args(tmp_path, "--steps", "3", "--z_size", "5"), capsys)


def test_colour_vae_records_channels_and_no_nll(draw_script, tmp_path):
    pytest.importorskip("dreamlab.data.sprites")
    draw_script.main(tiny_args(tmp_path, "--data", "coloured_sprites", "--model", "vae", "--steps", "1"))
    record = json.loads((tmp_path / "results" / "draw" / "tiny.json").read_text())
    assert record["config"]["channels"] == 3 and record["config"]["attention"] is False
    assert record["config"]["likelihood"] == "l2" and record["metrics"]["test_nll_nats"] is None


def refused(main, args, capsys) -> str:
    """The one-line error of a run refused before any work (exit code 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ")
    return err


def test_clear_errors(draw_script, tmp_path, capsys):
    assert "--data_path" in refused(draw_script.main, tiny_args(tmp_path, "--data", "mnist"), capsys)
    missing = tiny_args(tmp_path, "--data", "folder", "--data_path", str(tmp_path / "missing"))
    assert "missing" in refused(draw_script.main, missing, capsys)
    assert "--data" in refused(draw_script.main, tiny_args(tmp_path, "--data", "cifar"), capsys)
    assert "--model" in refused(draw_script.main, tiny_args(tmp_path, "--model", "gan"), capsys)
    assert "--channels" in refused(draw_script.main, tiny_args(tmp_path, "--channels", "3"), capsys)


def test_user_data_mnist_idx_and_image_folder(draw_script, tmp_path, capsys):
    rng = np.random.default_rng(0)
    mnist = tmp_path / "mnist"
    write_idx(mnist / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (80, 28, 28), dtype=np.uint8))
    write_idx(mnist / "t10k-images-idx3-ubyte", rng.integers(0, 256, (20, 28, 28), dtype=np.uint8))
    draw_script.main(tiny_args(tmp_path, "--data", "mnist", "--data_path", str(mnist), "--steps", "1"))
    record = json.loads((tmp_path / "results" / "draw" / "tiny.json").read_text())
    assert record["config"]["channels"] == 1 and record["metrics"]["test_nll_nats"] > 0
    too_many = tiny_args(tmp_path / "b", "--data", "mnist", "--data_path", str(mnist), "--n_test", "50")
    assert "asked for 50 MNIST test images" in refused(draw_script.main, too_many, capsys)

    folder = tmp_path / "faces"
    folder.mkdir()
    for k in range(24):
        cv2.imwrite(str(folder / f"{k:03d}.png"), rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    args = tiny_args(tmp_path / "c", "--data", "folder", "--data_path", str(folder), "--n_train", "16", "--n_test", "8")
    draw_script.main([*args, "--steps", "1"])
    record = json.loads((tmp_path / "c" / "results" / "draw" / "tiny.json").read_text())
    assert record["config"]["channels"] == 3 and record["config"]["likelihood"] == "l2"


def test_paper_preset_is_the_papers_mnist_model(draw_script):
    config = make_config(draw_script.DrawConfig, draw_script.PRESETS, "paper", channels=1, likelihood="bernoulli")
    assert (config.data, config.image_size, config.glimpses) == ("mnist", 28, 64)
    assert (config.read_patch, config.write_patch, config.enc_size, config.dec_size, config.z_size) == (
        2,
        5,
        256,
        256,
        100,
    )
    model = draw_script.build_model(config)
    out = model(torch.rand(2, 1, 28, 28).round())
    assert out.canvases.shape == (64, 2, 1, 28, 28) and model.read.output_size == 2 * 2 * 2

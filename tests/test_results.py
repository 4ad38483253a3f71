"""Committed results: runs write under runs/ unless told otherwise, smoke runs never publish, the index is current."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from experiment_scripts import load_experiment

from dreamlab import results_index
from dreamlab.config import RESULTS_DIR, RunConfig, committed_results_dir, make_config, parse_config
from dreamlab.results import StageTimer, write_result
from dreamlab.runs import UserError

ROOT = Path(__file__).resolve().parents[1]
compare = load_experiment("worldmodels_compare")
dream_benchmark = load_experiment("worldmodels_dream_benchmark")

REQUIRED_FIELDS = {"experiment", "command", "git_commit", "wall_seconds", "machine", "config", "metrics"}


@dataclasses.dataclass
class ToyConfig(RunConfig):
    width: int = 8


PRESETS = {"smoke": {"width": 2}, "fast": {}, "paper": {"width": 64}}


def test_runs_write_under_the_ignored_runs_folder_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert make_config(ToyConfig, PRESETS, "fast").results_dir == RESULTS_DIR == "runs/results"
    path = write_result("toy", "run", experiment="toy", config={}, metrics={}, wall_seconds=0.0)
    assert path == Path("runs/results/toy/run.json") and path.is_file()


@pytest.mark.parametrize("results_dir", ["results", "results/", "./results/../results", str(ROOT / "results")])
def test_a_smoke_run_may_not_write_into_the_committed_results(results_dir, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(UserError, match="smoke scores test the plumbing only") as err:
        make_config(ToyConfig, PRESETS, "smoke", results_dir=results_dir)
    assert "\n" not in str(err.value) and RESULTS_DIR in str(err.value)
    # write_result refuses too (scripts that build their config without make_config), before writing anything.
    with pytest.raises(UserError, match="smoke"):
        write_result("toy", "x", experiment="toy", config={"preset": "smoke"}, metrics={}, wall_seconds=0.0,
                     results_dir=results_dir)  # fmt: skip
    assert not (ROOT / "results" / "toy").exists()
    # Publishing a real run is explicit and allowed.
    assert make_config(ToyConfig, PRESETS, "fast", results_dir=results_dir).results_dir == results_dir


def test_smoke_runs_say_their_scores_test_the_plumbing_only(capsys):
    parse_config(ToyConfig, PRESETS, ["--preset", "smoke"])
    assert "test the plumbing only" in capsys.readouterr().err
    parse_config(ToyConfig, PRESETS, ["--preset", "fast"])
    assert capsys.readouterr().err == ""


def test_dream_benchmark_smoke_cannot_replace_the_committed_result(capsys):
    committed = committed_results_dir() / "worldmodels" / "dream_benchmark.json"
    before = committed.read_bytes()
    with pytest.raises(SystemExit) as exit_:
        dream_benchmark.main(["--preset", "smoke", "--results_dir", str(committed_results_dir())])
    assert exit_.value.code == 2 and "smoke scores test the plumbing only" in capsys.readouterr().err
    assert committed.read_bytes() == before


def _fake_run(folder: Path, name: str, core: str) -> None:
    from dreamlab.results import CurveLog

    curve = CurveLog()
    curve.append(generation=1, mean_score=100.0, best_score=200.0, real_mean=500.0, real_std=50.0)
    curve.to_csv(folder / "worldmodels" / f"{name}_curve.csv")
    metrics = {"generations": 1, "real_episode_returns": [500.0, 700.0], "m_final_z_nll": 0.8}
    config = {"name": name, "core": core, "real_eval_episodes": 2, "m_steps": 10}
    write_result("worldmodels", name, experiment="worldmodels", config=config, metrics=metrics, wall_seconds=1.0,
                 results_dir=folder)  # fmt: skip


def test_compare_reads_committed_runs_and_writes_its_own_folder(tmp_path, monkeypatch):
    committed, out = tmp_path / "committed", tmp_path / "out"
    _fake_run(committed, "lstm_run", "lstm")
    _fake_run(out, "dnc_run", "dnc")  # a fresh run in the output folder, next to a committed one
    monkeypatch.setattr(compare, "committed_results_dir", lambda: committed)
    before = sorted(p.name for p in (committed / "worldmodels").iterdir())
    summary = compare.main(["lstm_run", "dnc_run", "--results_dir", str(out), "--name", "cmp"])
    assert set(summary) == {"lstm", "dnc"}
    assert (out / "worldmodels" / "cmp.png").is_file() and (out / "worldmodels" / "cmp.json").is_file()
    assert sorted(p.name for p in (committed / "worldmodels").iterdir()) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_machine_is_one_line(tmp_path):
    script = ROOT / "experiments" / "worldmodels_dream_benchmark.py"
    argv = [sys.executable, str(script), "--preset", "smoke", "--device", "cuda", "--results_dir", str(tmp_path)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert errors == ["error: --device cuda requested but CUDA is not available on this machine; use --device cpu"]


def test_every_committed_result_loads_with_the_required_fields():
    paths = sorted(committed_results_dir().rglob("*.json"))
    assert paths, "no committed results found"
    for path in paths:
        record = json.loads(path.read_text())
        missing = REQUIRED_FIELDS - set(record)
        assert not missing, f"{path.relative_to(ROOT)} lacks {sorted(missing)}"
        assert isinstance(record["metrics"], dict) and isinstance(record["config"], dict), path


def test_the_committed_index_lists_every_committed_result():
    index = committed_results_dir() / results_index.INDEX_NAME
    assert index.is_file(), "results/README.md is missing: run python -m dreamlab.results_index"
    assert index.read_text() == results_index.render(committed_results_dir()), (
        "results/README.md is out of date with the files in results/: run python -m dreamlab.results_index"
    )


def test_index_names_each_result_its_numbers_and_its_own_figures(tmp_path):
    def result(name: str, experiment: str, metrics: dict) -> None:
        config = {"preset": "fast"}
        write_result("gan", name, experiment=experiment, config=config, metrics=metrics, wall_seconds=7200.0,
                     results_dir=tmp_path, command=f"python experiments/{experiment}.py --name {name}")  # fmt: skip

    result("sprites", "sncgan", {"feature_fid": 25.06, "steps": 66000, "mean_attribute_accuracy": 0.99})
    result("sprites_bg0", "unlisted_experiment", {"a": 1.5, "b": [1, 2], "c": "x", "d": 2, "e": 3, "f": 4})
    for name in ("sprites_fid.png", "sprites_bg0_fid.png", "sprites_losses.csv", "sprites.gif", "table.md"):
        (tmp_path / "gan" / name).write_text("x")
    text = results_index.render(tmp_path)
    assert "| [`gan`](#gan) | 2 | 3 |" in text
    sprites, bg0 = text.split("- **[sprites.json]")[1].split("- **[sprites_bg0.json]")
    assert "`sncgan`, preset `fast`, 2.0 h" in sprites and "python experiments/sncgan.py --name sprites" in sprites
    assert "mean_attribute_accuracy **0.99**, feature_fid **25.06**, steps **66,000**" in sprites
    # A figure belongs to the result with the longest name its own starts with.
    assert "sprites_fid.png" in sprites and "sprites.gif" in sprites and "sprites_bg0_fid.png" not in sprites
    assert "figures: [sprites_bg0_fid.png](gan/sprites_bg0_fid.png)" in bg0
    assert "data: [sprites_losses.csv](gan/sprites_losses.csv)" in sprites
    # Without chosen headlines: the first four scalar metrics.
    assert "a **1.5**, c **x**, d **2**, e **3**" in bg0 and "f **4**" not in bg0
    assert "other files: [table.md](gan/table.md)" in bg0
    assert results_index.write_index(tmp_path).read_text() == text


def test_nested_stages_count_each_second_once(monkeypatch):
    clock = iter([0.0, 1.0, 4.0, 5.0, 7.0, 10.0])  # train opens at 0; collect 1-4; update 5-7; train closes at 10
    monkeypatch.setattr("dreamlab.results.time.perf_counter", lambda: next(clock))
    timer = StageTimer()
    with timer.stage("train"):
        with timer.stage("collect"):
            pass
        with timer.stage("update"):
            pass
    assert timer.seconds == {"collect": 3.0, "update": 2.0, "train": 5.0} and timer.total == 10.0

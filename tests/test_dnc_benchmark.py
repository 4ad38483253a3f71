"""experiments/dnc_benchmark.py: the smoke preset runs end to end, and bad settings fail fast with one line."""

import json
import subprocess
import sys

import pytest
from experiment_scripts import EXPERIMENTS, load_experiment


def test_smoke_preset_times_every_variant_per_thread_count(tmp_path):
    main = load_experiment("dnc_benchmark").main
    main(["--preset", "smoke", "--results_dir", str(tmp_path), "--no-compare_pytorch_dnc", "--thread_counts", "1,2"])
    result = json.loads((tmp_path / "dnc" / "benchmark_smoke.json").read_text())
    metrics = result["metrics"]
    assert set(metrics["by_threads"]) == {"1", "2"}
    for block in metrics["by_threads"].values():
        assert set(block["implementations"]) == {"dreamlab", "dreamlab_modules", "dreamlab_sparse_k8"}
        assert block["load_average_1min_before"] is not None and block["load_average_1min_after"] is not None
        assert all(row["cpu_ms_per_step_median"] > 0 for row in block["implementations"].values())
    top = metrics["profile_one_thread"]["dreamlab"]
    assert top and {"operator", "self_ms_per_step", "share", "calls_per_step"} <= set(top[0])
    assert "GPU" in metrics["gpu_expectations"]


def test_several_processes_are_merged_by_their_median(tmp_path):
    main = load_experiment("dnc_benchmark").main
    argv = ["--preset", "smoke", "--results_dir", str(tmp_path), "--no-compare_pytorch_dnc", "--thread_counts", "1"]
    main([*argv, "--processes", "3", "--no-profile"])
    block = json.loads((tmp_path / "dnc" / "benchmark_smoke.json").read_text())["metrics"]["by_threads"]["1"]
    assert len(block["processes"]) == 3
    for name, row in block["implementations"].items():
        values = sorted(run["implementations"][name]["cpu_ms_per_step_median"] for run in block["processes"])
        assert row["cpu_ms_per_step_median"] == values[1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--thread_counts", "0"], "thread_counts must be positive"),
        (["--warmup", "0"], "warmup must be >= 1"),
        (["--processes", "0"], "processes must be"),
        (["--sparse_links", "64"], "sparse_links must be in"),
    ],
)
def test_bad_settings_fail_fast_with_one_line(tmp_path, argv, message):
    command = [
        sys.executable,
        str(EXPERIMENTS / "dnc_benchmark.py"),
        "--preset",
        "smoke",
        "--results_dir",
        str(tmp_path),
        *argv,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr

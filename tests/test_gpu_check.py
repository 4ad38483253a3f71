"""The prepared GPU check runs end to end on the CPU (``--device cpu``), so it is ready when a GPU machine is."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_script_runs_on_cpu(tmp_path: Path):
    command = [sys.executable, "experiments/gpu_check.py", "--preset", "smoke", "--device", "cpu"]
    completed = subprocess.run(
        [*command, "--results_dir", str(tmp_path), "--threads", "1"], cwd=ROOT, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads((tmp_path / "gpu" / "gpu_check_cpu.json").read_text())
    metrics = result["metrics"]
    assert metrics["tests"]["exit_code"] == 0 and metrics["tests"]["passed"] >= 9, metrics["tests"]
    assert not metrics["tests"].get("failed")
    for key in ("dream_env_steps_per_second", "dnc_ms_per_time_step", "vae_steps_per_second_bf16_autocast"):
        assert metrics[key] > 0


def test_gpu_check_refuses_a_missing_device_in_one_line():
    completed = subprocess.run(
        [sys.executable, "experiments/gpu_check.py", "--device", "cuda:7"], cwd=ROOT, capture_output=True, text=True
    )
    if completed.returncode == 0:  # a machine with eight GPUs
        return
    assert completed.returncode == 2
    assert completed.stderr.strip().count("\n") == 0 and "cuda:7" in completed.stderr

"""experiments/cmaes_benchmark.py: a subset of problems runs alone, and an unknown one fails fast in one line."""

import json
import subprocess
import sys

from experiment_scripts import EXPERIMENTS, load_experiment


def test_a_subset_of_problems_is_benchmarked_alone(tmp_path):
    main = load_experiment("cmaes_benchmark").main
    main(["--preset", "smoke", "--problems", "rosenbrock", "--timing_dim", "0", "--results_dir", str(tmp_path)])
    metrics = json.loads((tmp_path / "cmaes" / "benchmark_smoke.json").read_text())["metrics"]
    assert set(metrics["evaluations"]) == {"rosenbrock", "seeds"}
    assert metrics["evaluations"]["rosenbrock"]["dreamlab"]["runs"] == 2


def test_an_unknown_problem_is_one_line_and_exit_code_2(tmp_path):
    argv = ["--preset", "smoke", "--problems", "rosenbrok", "--results_dir", str(tmp_path)]
    script = str(EXPERIMENTS / "cmaes_benchmark.py")
    out = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: --problems must name some of sphere, ellipsoid, rosenbrock, rastrigin_ipop; got rosenbrok"
    ]
    assert not (tmp_path / "cmaes").exists()

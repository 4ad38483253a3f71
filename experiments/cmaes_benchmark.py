"""Sample efficiency of dreamlab.cmaes against pycma: evaluations to reach f <= 1e-8, median over seeds.

10-D sphere from x0 = 3 with sigma0 = 2 and 10-D Rosenbrock from x0 = 0 with sigma0 = 0.5, default popsize,
each library with its default termination settings plus ftarget and maxfevals. Both count every evaluation of the
generation in which the best loss first reaches f <= ftarget. A run that stops before reaching ftarget (e.g. in
Rosenbrock's local minimum) counts as infinitely many evaluations in the median.

By default the comparison uses common random numbers: for seed s, pycma draws its standard normals (its ``randn``
option) from the same ``numpy.random.default_rng(s)`` stream that dreamlab's ``CMAES(seed=s)`` samples from, one
(popsize, n) block per generation, so per-seed differences come from the algorithms rather than from the draws.
(pycma starts from C = diag(exp(1e-5 i)) rather than I, so paired runs still drift apart after a few dozen
generations.) ``--no-shared_noise`` gives pycma its own generator (its ``seed`` option).

python experiments/cmaes_benchmark.py            # writes results/cmaes/benchmark.{json,csv}
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import time
from collections.abc import Callable

import numpy as np

from dreamlab.cmaes import CMAES, rosenbrock, sphere
from dreamlab.config import RunConfig, parse_config
from dreamlab.results import CurveLog, write_result


@dataclasses.dataclass
class CMAESBenchmarkConfig(RunConfig):
    """Evaluations to reach ftarget on sphere and Rosenbrock, ours against the cma package (pycma)."""

    name: str = "benchmark"
    dim: int = 10
    seeds: int = 10  # runs per problem and optimiser, seeds seed+1 ... seed+seeds
    ftarget: float = 1e-8
    maxfevals: int = 100_000
    sphere_x0: float = 3.0
    sphere_sigma0: float = 2.0
    rosenbrock_x0: float = 0.0
    rosenbrock_sigma0: float = 0.5
    compare_pycma: bool = True  # skipped with a note when the cma package is not installed
    shared_noise: bool = True  # pycma samples from dreamlab's normal stream for the same seed (see module docstring)


PRESETS = {
    "smoke": {"name": "benchmark_smoke", "dim": 4, "seeds": 2},
    "fast": {},
    "paper": {},
}


def run_ours(f: Callable, x0: np.ndarray, sigma0: float, seed: int, config: CMAESBenchmarkConfig) -> dict:
    es = CMAES(x0, sigma0, seed=seed, ftarget=config.ftarget, maxfevals=config.maxfevals)
    while not es.stop():
        X = es.ask()
        es.tell(X, f(X))
    return {"evaluations": es.evaluations, "best_loss": es.best_loss, "stop": sorted(es.stop())}


def run_pycma(f: Callable, x0: np.ndarray, sigma0: float, seed: int, config: CMAESBenchmarkConfig) -> dict:
    import cma

    options = {"ftarget": config.ftarget, "maxfevals": config.maxfevals, "verbose": -9}
    if config.shared_noise:
        # pycma calls randn(popsize, n) once per ask, as CMAES.ask draws rng.standard_normal((popsize, n)).
        rng = np.random.default_rng(seed)
        options["randn"] = lambda rows, columns: rng.standard_normal((rows, columns))
    else:
        options["seed"] = seed
    es = cma.CMAEvolutionStrategy(x0, sigma0, options)
    while not es.stop():
        X = es.ask()
        es.tell(X, f(np.asarray(X)).tolist())
    return {"evaluations": int(es.countevals), "best_loss": float(es.result.fbest), "stop": sorted(es.stop())}


def main(argv: list[str] | None = None) -> dict:
    config = parse_config(CMAESBenchmarkConfig, PRESETS, argv)
    start = time.perf_counter()
    optimisers = {"dreamlab": run_ours}
    if config.compare_pycma:
        if importlib.util.find_spec("cma") is None:
            print("the cma package is not installed (pip install cma): benchmarking dreamlab.cmaes alone")
        else:
            optimisers["pycma"] = run_pycma
    problems = {
        "sphere": (sphere, np.full(config.dim, config.sphere_x0), config.sphere_sigma0),
        "rosenbrock": (rosenbrock, np.full(config.dim, config.rosenbrock_x0), config.rosenbrock_sigma0),
    }
    seeds = [config.seed + i + 1 for i in range(config.seeds)]

    runs = CurveLog()
    metrics: dict = {"dim": config.dim, "ftarget": config.ftarget, "seeds": seeds}
    if "pycma" in optimisers:
        import cma

        metrics["pycma_version"] = cma.__version__
    for problem, (f, x0, sigma0) in problems.items():
        metrics[problem] = {}
        evaluations_by_optimiser = {}
        for optimiser, run in optimisers.items():
            evaluations, seconds = [], []
            for seed in seeds:
                run_start = time.perf_counter()
                outcome = run(f, x0, sigma0, seed, config)
                seconds.append(time.perf_counter() - run_start)
                reached = outcome["best_loss"] <= config.ftarget
                evaluations.append(outcome["evaluations"] if reached else math.inf)
                runs.append(
                    problem=problem,
                    optimiser=optimiser,
                    seed=seed,
                    evaluations=outcome["evaluations"],
                    reached_ftarget=reached,
                    best_loss=outcome["best_loss"],
                    stop=" ".join(outcome["stop"]),
                    seconds=round(seconds[-1], 4),
                )
            evaluations_by_optimiser[optimiser] = evaluations
            median = float(np.median(evaluations))
            metrics[problem][optimiser] = {
                "median_evaluations": median if math.isfinite(median) else None,
                "successes": int(np.isfinite(evaluations).sum()),
                "runs": len(seeds),
                "evaluations": [e if math.isfinite(e) else None for e in evaluations],
                "median_seconds_per_run": float(np.median(seconds)),
            }
        if "pycma" in optimisers:
            ours, theirs = (metrics[problem][o]["median_evaluations"] for o in ("dreamlab", "pycma"))
            metrics[problem]["dreamlab_over_pycma"] = ours / theirs if ours and theirs else None
            # Per-seed comparison (paired when shared_noise): a failed run is infinitely many evaluations.
            pairs = list(zip(evaluations_by_optimiser["dreamlab"], evaluations_by_optimiser["pycma"], strict=True))
            metrics[problem]["seeds_dreamlab_not_worse"] = sum(a <= b for a, b in pairs)
            both = [a - b for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
            metrics[problem]["median_paired_difference"] = float(np.median(both)) if both else None

    out = f"{config.results_dir}/cmaes"
    runs.to_csv(f"{out}/{config.name}.csv")
    path = write_result(
        "cmaes",
        config.name,
        experiment="cmaes_benchmark",
        config=config,
        metrics=metrics,
        wall_seconds=time.perf_counter() - start,
        results_dir=config.results_dir,
    )

    header = f"{config.dim}-D, evaluations to f <= {config.ftarget:g}, median of {len(seeds)} seeds (successes)"
    if "pycma" in optimisers:
        header += ", pycma on " + ("dreamlab's normal draws" if config.shared_noise else "its own generator")
    print(header)
    print(f"{'problem':<12}" + "".join(f"{name:>20}" for name in optimisers))
    for problem in problems:
        cells = []
        for optimiser in optimisers:
            entry = metrics[problem][optimiser]
            median = entry["median_evaluations"]
            cells.append(f"{median if median is None else round(median)} ({entry['successes']}/{entry['runs']})")
        print(f"{problem:<12}" + "".join(f"{cell:>20}" for cell in cells))
    print(f"result: {path}\nruns: {out}/{config.name}.csv")
    return metrics


if __name__ == "__main__":
    main()

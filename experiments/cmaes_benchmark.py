"""dreamlab.cmaes against pycma: evaluations to reach f <= 1e-8 in 10-D, and the wall time of one generation at
n = 10,000 with a full and with a diagonal covariance matrix.

**Evaluations.** Median over seeds of the evaluations to reach f <= ftarget, each library with its default
termination settings plus ftarget and maxfevals, counting every evaluation of the generation in which the best
loss first reaches ftarget; a run that stops short counts as infinitely many. The problems (10-D by default):

- sphere from x0 = 3 with sigma0 = 2;
- ellipsoid (condition 1e6, separable) from x0 = 3 with sigma0 = 2;
- Rosenbrock from x0 = 0 with sigma0 = 0.5;
- Rastrigin with IPOP restarts (Auger & Hansen 2005): every run starts from x0 ~ U[-5, 5]^n with sigma0 = 5
  (half the initial region, as in the paper) and each restart doubles the population, at most 9 restarts.
  pycma runs the same restart loop as :func:`dreamlab.cmaes.ipop` (which is also what ``cma.fmin`` with
  ``restarts=9, incpopsize=2`` does), on the same x0 draws, with its own stopping criteria ending each run.

The paired comparison (``dreamlab_over_pycma``) uses common random numbers: for seed s, pycma draws its standard
normals (its ``randn`` option) from the ``numpy.random.default_rng(s)`` stream that dreamlab's ``CMAES(seed=s)``
samples from, one (popsize, n) block per generation, and starts from C = I as dreamlab does (pycma's default is
diag(exp(1e-5 i)), which separates the eigenvalues for numpy and makes paired runs drift apart). Then per-seed
differences come only from the algorithms and from rounding. ``pycma_independent`` is pycma out of the box (its
own seed and initial C) for the same seeds: an unpaired comparison, noisier by the spread between seeds.

**Time per generation.** At ``timing_dim`` (10,000) each library runs ``timing_generations`` generations of the
sphere, full and diagonal (pycma's ``CMA_diagonal=True``), each configuration in a fresh process, the
configurations interleaved over ``timing_rounds`` rounds; then one forced eigendecomposition per library, whose
cost is amortised over the generations between decompositions (Appendix B.2 of Hansen's tutorial; both libraries
use the same rule: 60 and 61 generations at n = 10,000). Each process reports its peak resident memory. BLAS runs
on ``--threads`` threads (1); the benchmark of record ran under the heavy flock with OMP/MKL/OpenBLAS threads at 1.

Paired runs agree to ~1e-13 until rounding makes LAPACK return an eigenvector with the opposite sign (or flips a
ranking); from then on the two draw different samples from the same distribution, so on Rosenbrock and Rastrigin
the paired medians differ by the spread between seeds (the ``ratio_90pct_interval``), not by the algorithm.

python experiments/cmaes_benchmark.py --preset paper --name benchmark --results_dir results
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from dreamlab.cmaes import CMAES, ellipsoid, ipop, rastrigin, rosenbrock, sphere
from dreamlab.cmaes.timing import time_generations
from dreamlab.config import RunConfig, non_negative, parse_config, positive
from dreamlab.results import CurveLog, write_result
from dreamlab.runs import UserError, cli


@dataclasses.dataclass
class CMAESBenchmarkConfig(RunConfig):
    """Evaluations to reach ftarget (10-D) and time per generation (n = 10,000), ours against pycma."""

    name: str = "benchmark"
    threads: int = 1  # BLAS threads of every measurement
    dim: int = 10
    seeds: int = 20  # runs per problem and optimiser, seeds seed+1 ... seed+seeds
    problems: tuple[str, ...] = ("sphere", "ellipsoid", "rosenbrock", "rastrigin_ipop")  # a subset, e.g. for more seeds
    ftarget: float = 1e-8
    maxfevals: int = 100_000  # per run; IPOP's budget over all its restarts is rastrigin_maxfevals
    rastrigin_maxfevals: int = 1_000_000
    restarts: int = 9
    compare_pycma: bool = True  # skipped with a note when the cma package is not installed
    timing_dim: int = 10_000  # 0 skips the timing
    timing_generations: int = 3
    timing_rounds: int = 2
    time_eigendecomposition: bool = True

    def validate(self) -> None:
        super().validate()
        positive(self, "threads", "dim", "seeds", "maxfevals", "rastrigin_maxfevals")
        positive(self, "timing_generations", "timing_rounds")
        non_negative(self, "restarts", "timing_dim")
        if self.dim < 2:
            raise UserError(f"--dim must be >= 2 (Rosenbrock needs two coordinates), got {self.dim}")
        unknown = [name for name in self.problems if name not in PROBLEMS]
        if unknown or not self.problems:
            raise UserError(f"--problems must name some of {', '.join(PROBLEMS)}; got {', '.join(self.problems)}")


PRESETS = {
    "smoke": {"name": "benchmark_smoke", "dim": 4, "seeds": 2, "timing_dim": 300, "timing_generations": 2},
    "fast": {"timing_dim": 2000},
    "paper": {},
}

IPOP_REGION = 5.0  # Rastrigin's initial region [-5, 5]^n; sigma0 is half its width


@dataclasses.dataclass(frozen=True)
class Problem:
    f: Callable[[np.ndarray], np.ndarray]
    x0: float | None  # None: x0 ~ U[-IPOP_REGION, IPOP_REGION]^n per run, with IPOP restarts
    sigma0: float


PROBLEMS = {
    "sphere": Problem(sphere, 3.0, 2.0),
    "ellipsoid": Problem(lambda X: ellipsoid(X, 1e6), 3.0, 2.0),
    "rosenbrock": Problem(rosenbrock, 0.0, 0.5),
    "rastrigin_ipop": Problem(rastrigin, None, IPOP_REGION),
}


def uniform_starts(seed: int, dim: int) -> Callable[[], np.ndarray]:
    """IPOP's initial means: both libraries draw the same sequence for a seed (its own stream, not the samples')."""
    rng = np.random.default_rng([seed, 1])
    return lambda: rng.uniform(-IPOP_REGION, IPOP_REGION, dim)


def run_ours(problem: Problem, seed: int, config: CMAESBenchmarkConfig) -> dict:
    if problem.x0 is None:
        result = ipop(
            lambda x: float(problem.f(x)),
            uniform_starts(seed, config.dim),
            problem.sigma0,
            seed=seed,
            restarts=config.restarts,
            ftarget=config.ftarget,
            maxfevals=config.rastrigin_maxfevals,
        )
        return {"evaluations": result.evaluations, "best_loss": result.best_loss, "restarts": result.restarts}
    x0 = np.full(config.dim, problem.x0)
    es = CMAES(x0, problem.sigma0, seed=seed, ftarget=config.ftarget, maxfevals=config.maxfevals)
    while not es.stop():
        X = es.ask()
        es.tell(X, problem.f(X))
    return {"evaluations": es.evaluations, "best_loss": es.best_loss, "restarts": 0}


def pycma_strategy(x0: np.ndarray, sigma0: float, options: dict, rng: np.random.Generator | None) -> Any:
    """A pycma strategy; with ``rng`` it samples dreamlab's normal stream and starts from C = I (paired)."""
    import cma

    options = {"verbose": -9, **options}
    if rng is not None:
        # pycma calls randn(popsize, n) once per ask, as CMAES.ask draws rng.standard_normal((popsize, n)).
        options["randn"] = lambda rows, columns: rng.standard_normal((rows, columns))
    es = cma.CMAEvolutionStrategy(x0, sigma0, options)
    if rng is not None:
        n = len(x0)
        es.sm.C, es.sm.B, es.sm.D = np.eye(n), np.eye(n), np.ones(n)
    return es


def run_pycma(problem: Problem, seed: int, config: CMAESBenchmarkConfig, paired: bool) -> dict:
    rng = np.random.default_rng(seed) if paired else None
    options: dict[str, Any] = {"ftarget": config.ftarget, "maxfevals": config.maxfevals}
    if not paired:
        options["seed"] = seed
    if problem.x0 is not None:
        es = pycma_strategy(np.full(config.dim, problem.x0), problem.sigma0, options, rng)
        while not es.stop():
            X = es.ask()
            es.tell(X, problem.f(np.asarray(X)).tolist())
        return {"evaluations": int(es.countevals), "best_loss": float(es.result.fbest), "restarts": 0}
    # The IPOP loop of dreamlab.cmaes.ipop (and of cma.fmin with restarts=9, incpopsize=2) around pycma.
    starts, evaluations, best, popsize = uniform_starts(seed, config.dim), 0, math.inf, None
    for restart in range(config.restarts + 1):
        run_options = {**options, "maxfevals": config.rastrigin_maxfevals - evaluations}
        if popsize is not None:
            run_options["popsize"] = popsize
        if not paired:
            run_options["seed"] = seed * 1000 + restart
        es = pycma_strategy(starts(), problem.sigma0, run_options, rng)
        while not es.stop():
            X = es.ask()
            es.tell(X, problem.f(np.asarray(X)).tolist())
        evaluations += int(es.countevals)
        best = min(best, float(es.result.fbest))
        if {"ftarget", "maxfevals"} & set(es.stop()):
            break
        popsize = 2 * es.popsize
    return {"evaluations": evaluations, "best_loss": best, "restarts": restart}


def paired_bootstrap_interval(ours: list[float], theirs: list[float], resamples: int = 2000) -> list[float] | None:
    """5th and 95th percentiles of the ratio of medians over seeds resampled in pairs: how far the ratio could
    move with other seeds (None when a median is infinite in some resample)."""
    rng = np.random.default_rng(0)
    a, b = np.asarray(ours), np.asarray(theirs)
    picks = rng.integers(0, len(a), size=(resamples, len(a)))
    ratios = np.median(a[picks], axis=1) / np.median(b[picks], axis=1)
    if not np.all(np.isfinite(ratios)):
        return None
    return [float(np.percentile(ratios, 5)), float(np.percentile(ratios, 95))]


def compare_evaluations(config: CMAESBenchmarkConfig, pycma: bool, runs: CurveLog) -> dict:
    """Per problem: every optimiser's evaluations on each seed, the medians and their ratios."""
    optimisers: dict[str, Callable[[Problem, int], dict]] = {"dreamlab": lambda p, s: run_ours(p, s, config)}
    if pycma:
        optimisers["pycma"] = lambda p, s: run_pycma(p, s, config, paired=True)
        optimisers["pycma_independent"] = lambda p, s: run_pycma(p, s, config, paired=False)
    seeds = [config.seed + i + 1 for i in range(config.seeds)]
    metrics: dict[str, Any] = {}
    for name in config.problems:
        problem = PROBLEMS[name]
        evaluations: dict[str, list[float]] = {optimiser: [] for optimiser in optimisers}
        seconds: dict[str, list[float]] = {optimiser: [] for optimiser in optimisers}
        for seed in seeds:
            for optimiser, run in optimisers.items():  # interleaved, so a load change hits all alike
                start = time.perf_counter()
                outcome = run(problem, seed)
                seconds[optimiser].append(time.perf_counter() - start)
                reached = outcome["best_loss"] <= config.ftarget
                evaluations[optimiser].append(outcome["evaluations"] if reached else math.inf)
                runs.append(
                    problem=name,
                    optimiser=optimiser,
                    seed=seed,
                    evaluations=outcome["evaluations"],
                    reached_ftarget=reached,
                    best_loss=outcome["best_loss"],
                    restarts=outcome["restarts"],
                    seconds=round(seconds[optimiser][-1], 4),
                )
        entry: dict[str, Any] = {}
        for optimiser, values in evaluations.items():
            median = float(np.median(values))
            entry[optimiser] = {
                "median_evaluations": median if math.isfinite(median) else None,
                "successes": int(np.isfinite(values).sum()),
                "runs": len(seeds),
                "median_seconds_per_run": float(np.median(seconds[optimiser])),
            }
        if pycma:
            ours = entry["dreamlab"]["median_evaluations"]
            for other in ("pycma", "pycma_independent"):
                theirs = entry[other]["median_evaluations"]
                entry[f"dreamlab_over_{other}"] = ours / theirs if ours and theirs else None
            pairs = list(zip(evaluations["dreamlab"], evaluations["pycma"], strict=True))
            entry["seeds_dreamlab_not_worse"] = sum(a <= b for a, b in pairs)
            entry["seeds_equal"] = sum(a == b for a, b in pairs)
            entry["ratio_90pct_interval"] = paired_bootstrap_interval(evaluations["dreamlab"], evaluations["pycma"])
        metrics[name] = entry
    metrics["seeds"] = seeds
    return metrics


def compare_generation_time(config: CMAESBenchmarkConfig, libraries: list[str]) -> dict:
    """Interleaved rounds of fresh processes, one per (library, covariance); eigendecompositions in round 1."""
    timings: dict[str, list[dict]] = {}
    context = multiprocessing.get_context("spawn")
    for round_ in range(config.timing_rounds):
        for covariance in ("full", "diagonal"):
            for library in libraries:
                eigen = config.time_eigendecomposition and round_ == 0
                args = (library, covariance, config.timing_dim, config.timing_generations, eigen, config.threads)
                with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                    outcome = pool.submit(time_generations, *args).result()
                timings.setdefault(f"{library}_{covariance}", []).append(outcome)
                print(f"timing round {round_ + 1} {library} {covariance}: {summary_line(outcome)}", flush=True)
    metrics: dict[str, Any] = {"dim": config.timing_dim}
    for key, outcomes in timings.items():
        seconds = [s for outcome in outcomes for s in outcome["generation_seconds"]]
        entry = {
            "median_generation_seconds": float(np.median(seconds)),
            "generation_seconds": [round(s, 4) for s in seconds],
            "setup_seconds": [round(o["setup_seconds"], 3) for o in outcomes],
            "peak_rss_mib": max(o["peak_rss_mib"] for o in outcomes),
        }
        eigen = [o for o in outcomes if "eigendecomposition_seconds" in o]
        if eigen:
            entry["eigendecomposition_seconds"] = eigen[0]["eigendecomposition_seconds"]
            entry["eigen_interval"] = eigen[0]["eigen_interval"]
            entry["amortised_generation_seconds"] = (
                entry["median_generation_seconds"] + entry["eigendecomposition_seconds"] / entry["eigen_interval"]
            )
        metrics[key] = entry
    for covariance in ("full", "diagonal"):
        ours, theirs = metrics.get(f"dreamlab_{covariance}"), metrics.get(f"pycma_{covariance}")
        if ours and theirs:
            metrics[f"{covariance}_dreamlab_over_pycma"] = (
                ours["median_generation_seconds"] / theirs["median_generation_seconds"]
            )
            if "amortised_generation_seconds" in ours and "amortised_generation_seconds" in theirs:
                metrics[f"{covariance}_amortised_dreamlab_over_pycma"] = (
                    ours["amortised_generation_seconds"] / theirs["amortised_generation_seconds"]
                )
    return metrics


def summary_line(outcome: dict) -> str:
    line = f"{np.median(outcome['generation_seconds']):.4f} s per generation"
    if "eigendecomposition_seconds" in outcome:
        line += f", eigendecomposition {outcome['eigendecomposition_seconds']:.1f} s"
    return line + f", peak {outcome['peak_rss_mib']:.0f} MiB"


@cli
def main(argv: list[str] | None = None) -> dict:
    config = parse_config(CMAESBenchmarkConfig, PRESETS, argv)
    start = time.perf_counter()
    pycma = config.compare_pycma and importlib.util.find_spec("cma") is not None
    if config.compare_pycma and not pycma:
        print("the cma package is not installed (pip install cma): benchmarking dreamlab.cmaes alone")
    metrics: dict[str, Any] = {
        "dim": config.dim,
        "ftarget": config.ftarget,
        "load_average_before": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
    }
    if pycma:
        import cma

        metrics["pycma_version"] = cma.__version__
    runs = CurveLog()
    with threadpool_limits(limits=config.threads):
        metrics["blas"] = [
            {k: info.get(k) for k in ("internal_api", "version", "num_threads")} for info in threadpool_info()
        ]
        metrics["evaluations"] = compare_evaluations(config, pycma, runs)
    if config.timing_dim > 0:
        libraries = ["dreamlab", "pycma"] if pycma else ["dreamlab"]
        metrics["generation_time"] = compare_generation_time(config, libraries)
    metrics["load_average_after"] = list(os.getloadavg())

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
    print_summary(config, metrics)
    print(f"result: {path}\nruns: {out}/{config.name}.csv")
    return metrics


def print_summary(config: CMAESBenchmarkConfig, metrics: dict) -> None:
    evaluations = metrics["evaluations"]
    print(f"{config.dim}-D, evaluations to f <= {config.ftarget:g}, median of {config.seeds} seeds (successes)")
    optimisers = [k for k in ("dreamlab", "pycma", "pycma_independent") if k in evaluations[config.problems[0]]]
    print(f"{'problem':<16}" + "".join(f"{name:>20}" for name in optimisers) + "   ours/pycma paired [90% interval]")
    for problem in config.problems:
        cells = []
        for optimiser in optimisers:
            entry = evaluations[problem][optimiser]
            median = entry["median_evaluations"]
            cells.append(f"{median if median is None else round(median)} ({entry['successes']}/{entry['runs']})")
        ratio, interval = (
            evaluations[problem].get("dreamlab_over_pycma"),
            evaluations[problem].get("ratio_90pct_interval"),
        )
        ratio_text = "" if ratio is None else f"   {ratio:.3f}"
        if interval:
            ratio_text += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
        print(f"{problem:<16}" + "".join(f"{c:>20}" for c in cells) + ratio_text)
    timing = metrics.get("generation_time")
    if timing:
        print(f"seconds per generation at n = {timing['dim']} ({config.threads} BLAS thread(s))")
        for key, entry in timing.items():
            if isinstance(entry, dict):
                amortised = entry.get("amortised_generation_seconds")
                extra = "" if amortised is None else f", with the amortised eigendecomposition {amortised:.3f}"
                print(
                    f"  {key:<18} {entry['median_generation_seconds']:.4f}{extra}; peak {entry['peak_rss_mib']:.0f} MiB"
                )


if __name__ == "__main__":
    main()

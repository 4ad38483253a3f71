"""The shifted Schaffer toy of the CMA-ES post as ``run(config)``: a population of 64 finds the optimum at (10, 10).

The loss is (f(s) - f(10, 10))^2 for the Schaffer function f shifted to (10, 10) (the post's fitness
-(f(s) - f(10, 10))^2, minimised); popsize 64, mu = 0.25 * 64 = 16, the post's sigma0 = 0.3 and x0 ~ N(0, I).

The post stops as soon as one candidate reaches loss <= 1e-10. Near the optimum the loss grows like 1e-6 r^4, so
that only says a candidate came within ~0.1 of (10, 10); by default the run therefore goes on until the whole
distribution has converged (tolfun/tolx) and reports the post's criterion as ``generations_to_ftarget``. The
``paper`` preset is the post's loop exactly: stop at the target or after 1e3 n^2 = 4000 evaluations.

The run checkpoints into its run directory after every generation of the animated run (keeping each drawn
generation's population for the animation) and after every seed of the success-rate runs; run again, it resumes
where it stopped with the same result as an uninterrupted run.

    from dreamlab.config import make_config
    from dreamlab.cmaes.schaffer_study import PRESETS, SchafferConfig, run
    metrics = run(make_config(SchafferConfig, PRESETS, "fast"))
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dreamlab.checkpoint import Checkpointer
from dreamlab.cmaes.objectives import SCHAFFER_OPTIMUM, schaffer_loss
from dreamlab.cmaes.strategy import CMAES
from dreamlab.config import RunConfig, in_range, non_negative, positive
from dreamlab.parallel import WorkerPool
from dreamlab.results import CurveLog, write_result
from dreamlab.runs import UserError, run_directory
from dreamlab.runtime import seed_everything


@dataclasses.dataclass
class SchafferConfig(RunConfig):
    """CMA-ES on the post's shifted Schaffer function, with an animation of the population."""

    name: str = "schaffer"
    popsize: int = 64
    mu: float = 0.25  # fraction of popsize
    sigma0: float = 0.3
    x0_std: float = 1.0  # x0 ~ N(0, x0_std^2 I)
    ftarget: float = 1e-10  # the post's "solution found" loss
    stop_at_ftarget: bool = False  # stop when a candidate reaches ftarget (the post) rather than at convergence
    maxfevals: int = 20_000
    workers: int = 0  # fitness evaluation: 0 in this process, N local processes
    ray_address: str = ""  # or a Ray cluster ("auto", "ray://host:port")
    frame_every: int = 1  # generations per animation frame
    success_seeds: int = 40  # also run seeds 0..N-1 (no animation) and report how often the target is reached
    fps: float = 6.0

    def validate(self) -> None:
        super().validate()
        positive(self, "sigma0", "maxfevals", "frame_every", "fps")
        non_negative(self, "x0_std", "ftarget", "workers", "success_seeds")
        in_range(self, "mu", 1e-9, 1.0)
        if self.popsize < 2:
            raise UserError(f"--popsize must be >= 2, got {self.popsize}")
        if self.popsize * self.mu < 1:
            raise UserError(f"--mu {self.mu} of --popsize {self.popsize} leaves no parent; raise --mu")


PRESETS = {
    "smoke": {"name": "schaffer_smoke", "maxfevals": 640, "success_seeds": 2},
    "fast": {},
    # The post's loop: stop at the target or after 1e3 * n^2 = 4000 evaluations.
    "paper": {"name": "schaffer_paper", "stop_at_ftarget": True, "maxfevals": 4000},
}


def make_strategy(config: SchafferConfig, seed: int) -> tuple[np.ndarray, CMAES]:
    x0 = config.x0_std * seed_everything(seed).standard_normal(2)
    ftarget = config.ftarget if config.stop_at_ftarget else -np.inf
    es = CMAES(
        x0, config.sigma0, popsize=config.popsize, mu=config.mu, seed=seed, ftarget=ftarget, maxfevals=config.maxfevals
    )
    return x0, es


class SchafferRun:
    """The animated run and the success-rate runs, with everything a resumed run needs (one checkpoint)."""

    def __init__(self, config: SchafferConfig):
        self.config = config
        self.x0, self.es = make_strategy(config, config.seed)
        self.curve = CurveLog()
        # Per drawn generation: its population and the distribution it was sampled from (frames are drawn at the end).
        self.frames: list[dict[str, Any]] = []
        self.sampled_from = self.distribution()
        self.reached: dict[str, int | None] = {"generation": None, "evaluations": None}
        self.success_done = 0  # seeds 0..success_done-1 of the success-rate runs are done
        self.success_reached = 0
        self.seconds = 0.0  # wall time of earlier sessions of this run
        self.session_start = time.perf_counter()

    def elapsed(self) -> float:
        """Wall seconds of this run over all its sessions."""
        return self.seconds + time.perf_counter() - self.session_start

    def distribution(self) -> dict[str, Any]:
        return {"mean": self.es.mean.copy(), "sigma": self.es.sigma, "C": self.es.C}

    def state_dict(self) -> dict[str, Any]:
        return {
            "es": self.es.state_dict(),
            "curve": self.curve.state_dict(),
            "frames": self.frames,
            "sampled_from": self.sampled_from,
            "reached": self.reached,
            "success_done": self.success_done,
            "success_reached": self.success_reached,
            "seconds": self.elapsed(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.es.load_state_dict(state["es"])
        self.curve.load_state_dict(state["curve"])
        self.frames, self.sampled_from, self.reached = state["frames"], state["sampled_from"], state["reached"]
        self.success_done, self.success_reached = state["success_done"], state["success_reached"]
        self.seconds, self.session_start = state["seconds"], time.perf_counter()

    def record(self, es: CMAES, X: np.ndarray, losses: np.ndarray) -> None:
        """After each generation of the animated run: its curve row and, every frame_every generations, its frame."""
        self.curve.append(
            generation=es.generation,
            evaluations=es.evaluations,
            generation_best_loss=float(losses.min()),
            best_loss=es.best_loss,
            sigma=es.sigma,
            # sigma alone is not the search width: C scales too. sigma * sqrt(largest eigenvalue of C) is.
            spread=float(es.sigma * np.sqrt(np.linalg.eigvalsh(es.C).max())),
            mean_1=float(es.mean[0]),
            mean_2=float(es.mean[1]),
            mean_distance_to_optimum=float(np.linalg.norm(es.mean - SCHAFFER_OPTIMUM)),
        )
        if self.reached["generation"] is None and es.best_loss <= self.config.ftarget:
            self.reached = {"generation": es.generation, "evaluations": es.evaluations}
        if (es.generation - 1) % self.config.frame_every == 0 or es.stop():
            self.frames.append({"X": X.copy(), **self.sampled_from, "generation": es.generation, "best": es.best_loss})
        self.sampled_from = self.distribution()


Figures = Callable[[Path, SchafferConfig, SchafferRun], None]  # (results folder, config, the finished run)


def run(config: SchafferConfig, figures: Figures | None = None) -> dict[str, Any]:
    """Run (or resume from ``config.run_dir``, default runs/cmaes/<name>) the animated run and the success-rate
    runs, call ``figures(out_dir, config, state)`` and write the result to <results_dir>/cmaes/<name>.json; returns
    its metrics."""
    run_dir = Path(config.run_dir or f"runs/cmaes/{config.name}")
    out_dir = Path(config.results_dir) / "cmaes"
    with run_directory(run_dir, out_dir):
        return _run(config, run_dir, out_dir, figures)


def _run(config: SchafferConfig, run_dir: Path, out_dir: Path, figures: Figures | None) -> dict[str, Any]:
    state = SchafferRun(config)
    checkpointer = Checkpointer(run_dir, config)
    saved = checkpointer.load()
    if saved is not None:
        state.load_state_dict(saved)
        print(f"resuming from {checkpointer.path}: generation {state.es.generation}, {state.success_done} seeds done")

    def record(es: CMAES, X: np.ndarray, losses: np.ndarray) -> None:
        state.record(es, X, losses)
        checkpointer.save(state.state_dict())

    es = state.es
    with WorkerPool(workers=config.workers, ray_address=config.ray_address or None) as pool:
        es.optimize(schaffer_loss, pool=pool, callback=record)
        # The success rate over seeds 0..success_seeds-1: one run says little on a multimodal function, where the
        # start and the first steps decide which ring of local optima the search meets.
        while state.success_done < config.success_seeds:
            _, other = make_strategy(config, state.success_done)
            other.optimize(schaffer_loss, pool=pool)
            state.success_reached += other.best_loss <= config.ftarget
            state.success_done += 1
            checkpointer.save(state.state_dict())
    rate = state.success_reached / config.success_seeds if config.success_seeds > 0 else None
    reasons = es.stop()
    curve, x0, reached = state.curve, state.x0, state.reached

    curve.to_csv(out_dir / f"{config.name}.csv")
    if figures is not None:
        figures(out_dir, config, state)

    metrics = {
        "x0": x0.tolist(),
        "popsize": es.popsize,
        "mu": es.mu,
        "generations": es.generation,
        "evaluations": es.evaluations,
        "generations_to_ftarget": reached["generation"],
        "evaluations_to_ftarget": reached["evaluations"],
        "stop": reasons,
        "best_loss": es.best_loss,
        "best_x": es.best_x.tolist(),
        "best_x_distance_to_optimum": float(np.linalg.norm(es.best_x - SCHAFFER_OPTIMUM)),
        "final_mean": es.mean.tolist(),
        "final_mean_distance_to_optimum": float(np.linalg.norm(es.mean - SCHAFFER_OPTIMUM)),
        "final_sigma": es.sigma,
        "success_seeds": config.success_seeds,
        "success_rate": rate,
    }
    path = write_result(
        "cmaes",
        config.name,
        experiment="cmaes_schaffer",
        config=config,
        metrics=metrics,
        wall_seconds=state.elapsed(),
        results_dir=config.results_dir,
    )
    print(
        f"stopped after {es.generation} generations ({es.evaluations} evaluations) on {sorted(reasons)}: "
        f"best loss {es.best_loss:.2e} at ({es.best_x[0]:.4f}, {es.best_x[1]:.4f}); "
        f"mean {np.linalg.norm(es.mean - SCHAFFER_OPTIMUM):.2e} from the optimum"
    )
    print(f"the post's criterion, a loss <= {config.ftarget:g}, was met after {reached['generation']} generations")
    if rate is not None:
        print(f"over seeds 0..{config.success_seeds - 1} the target was reached in {rate:.0%} of the runs")
    print(f"result: {path}")
    return metrics

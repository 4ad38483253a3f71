"""Throughput of dreamlab's Pommerman (PommeFFACompetition-v0): whole games with four random agents and with
four simple agents, timed in one process and across worker processes.

Timing covers everything a data-collection run does per step: the agents choosing actions from the four
observations, the forward model, and the new observations; resets (board generation) are included, which
matters for random play (~24 steps a game) more than for simple agents (~400). Each single-process figure is the
best of ``repeats`` runs, per wall second and per CPU second of the process (the two agree on an idle machine;
on a shared one the CPU figure is the idle-core rate), with the load average recorded. The parallel run
generates ``parallel_steps`` steps per policy with ``workers`` processes, the issue's "a few hundred thousand
steps in minutes on 2 cores".

python experiments/pommerman_benchmark.py --preset paper --results_dir results   # results/pommerman/env_benchmark.json
(``fast`` times shorter runs into the same file; ``smoke`` writes env_benchmark_smoke.json)
"""

from __future__ import annotations

import dataclasses
import os
import time

from dreamlab.config import RunConfig, non_negative, parse_config, positive
from dreamlab.envs.pommerman import POLICIES, play_games
from dreamlab.parallel import WorkerPool
from dreamlab.results import write_result
from dreamlab.runs import UserError, cli


@dataclasses.dataclass
class PommermanBenchmarkConfig(RunConfig):
    """Steps/s of whole Pommerman games for each agent line-up, in one process and in parallel."""

    name: str = "env_benchmark"
    policies: tuple[str, ...] = ("random", "simple")
    single_steps: int = 50_000  # steps per timed single-process run
    repeats: int = 3
    parallel_steps: int = 300_000  # steps per policy in the parallel run (0 skips it)
    workers: int = 2
    chunk_steps: int = 10_000  # steps per work item handed to a worker

    def validate(self) -> None:
        super().validate()
        positive(self, "single_steps", "repeats", "workers", "chunk_steps")
        non_negative(self, "parallel_steps")
        unknown = [policy for policy in self.policies if policy not in POLICIES]
        if unknown or not self.policies:
            raise UserError(f"--policies {','.join(self.policies)!r} must name some of {', '.join(POLICIES)}")


PRESETS = {
    "smoke": {
        "name": "env_benchmark_smoke",
        "single_steps": 1_000,
        "repeats": 1,
        "parallel_steps": 2_000,
        "chunk_steps": 1_000,
    },
    "fast": {"single_steps": 10_000, "parallel_steps": 60_000},
    "paper": {},
}


def time_single(policy: str, config: PommermanBenchmarkConfig) -> dict:
    play_games(policy, seed=config.seed, min_steps=200)  # warm-up
    runs = [
        play_games(policy, seed=config.seed + 1_000_000 * r, min_steps=config.single_steps)
        for r in range(config.repeats)
    ]
    wall = [run["steps"] / run["wall_seconds"] for run in runs]
    cpu = [run["steps"] / run["cpu_seconds"] for run in runs]
    steps = sum(run["steps"] for run in runs)
    return {
        "steps_per_second": max(wall),
        "steps_per_cpu_second": max(cpu),
        "steps_per_second_runs": wall,
        "steps_per_cpu_second_runs": cpu,
        "mean_game_length": steps / sum(run["games"] for run in runs),
        "win_fraction": sum(run["wins"] for run in runs) / sum(run["games"] for run in runs),
    }


def _chunk(item: tuple[str, int, int]) -> dict:
    policy, seed, steps = item
    return play_games(policy, seed=seed, min_steps=steps)


def time_parallel(policy: str, config: PommermanBenchmarkConfig) -> dict:
    chunks = max(1, config.parallel_steps // config.chunk_steps)
    # Seeds a million apart: chunks never share a board.
    items = [(policy, config.seed + 1_000_000 * (i + 1), config.chunk_steps) for i in range(chunks)]
    start = time.perf_counter()
    with WorkerPool(workers=config.workers) as pool:
        runs = pool.map(_chunk, items)
    wall = time.perf_counter() - start
    steps = sum(run["steps"] for run in runs)
    return {
        "workers": config.workers,
        "steps": steps,
        "games": sum(run["games"] for run in runs),
        "wall_seconds": wall,
        "steps_per_second": steps / wall,
        "worker_cpu_seconds": sum(run["cpu_seconds"] for run in runs),
    }


@cli
def main(argv: list[str] | None = None) -> dict:
    config = parse_config(PommermanBenchmarkConfig, PRESETS, argv)
    start = time.perf_counter()
    metrics: dict = {"load_average_before": list(os.getloadavg()), "cpu_count": os.cpu_count()}
    metrics["single_process"] = {policy: time_single(policy, config) for policy in config.policies}
    if config.parallel_steps > 0:
        metrics["parallel"] = {policy: time_parallel(policy, config) for policy in config.policies}
    metrics["load_average_after"] = list(os.getloadavg())
    path = write_result(
        "pommerman",
        config.name,
        experiment="pommerman_benchmark",
        config=config,
        metrics=metrics,
        wall_seconds=time.perf_counter() - start,
        results_dir=config.results_dir,
    )

    print(f"load average before {metrics['load_average_before']}, after {metrics['load_average_after']}")
    print(f"{'one process':<14}{'steps/s (wall)':>16}{'steps/CPU-s':>14}{'steps/game':>12}")
    for policy, record in metrics["single_process"].items():
        print(
            f"{policy:<14}{record['steps_per_second']:>16,.0f}{record['steps_per_cpu_second']:>14,.0f}"
            f"{record['mean_game_length']:>12.1f}"
        )
    for policy, record in metrics.get("parallel", {}).items():
        print(
            f"{policy} x{record['workers']} workers: {record['steps']:,} steps in {record['wall_seconds']:.1f} s "
            f"({record['steps_per_second']:,.0f} steps/s)"
        )
    print(f"result: {path}")
    return metrics


if __name__ == "__main__":
    main()

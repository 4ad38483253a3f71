"""Throughput of dreamlab's PixelCopter under uniformly random actions: env-steps per second of the vector env at
``num_envs`` games made with ``gym.make_vec("dreamlab/PixelCopter-v0", ...)``, for state observations, pixel
observations drawn incrementally by the numba kernels (copied, ``copy=True``, the default; or a read-only view,
``copy=False``) and pixel observations drawn in full every step (the numpy reference drawing), and of the single
env. The kernels' first-call time is measured in fresh processes: compiling (an empty numba cache) and loading the
cache. The numbers of the previous, numpy-only incremental drawing (commit 4828ba8) are recorded beside them.

Random play ends an episode every ~8 steps, so about one game in eight resets (51 uniform draws, 48 sines, and
~150 changed pixels) on every step: the slow end of what training sees. The vector variants are timed in
interleaved rounds (state, pixels, pixels-view, full drawing, then again), so a change in the machine's load hits
all of them alike; each timed run lasts at least ``min_run_seconds``. Figures are env-steps per wall second and per
CPU second of the process (the two agree on an idle machine; on a shared one the CPU figure is the idle-core
rate), best of the rounds and their median, with the load average recorded before, between and after rounds.

python experiments/pixelcopter_benchmark.py --preset paper --threads 1 --results_dir results
(writes results/envs/pixelcopter_benchmark.json; ``fast`` times shorter runs, ``smoke`` tiny ones)
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time

import gymnasium as gym
import numpy as np

import dreamlab.envs  # noqa: F401  (registers dreamlab/PixelCopter-v0)
from dreamlab.config import RunConfig, non_negative, parse_config, positive
from dreamlab.envs.pixelcopter import PixelCopterEnv, PixelCopterVectorEnv
from dreamlab.envs.pixelcopter.reference import reference_screens
from dreamlab.results import write_result
from dreamlab.runs import cli
from dreamlab.runtime import set_threads

TARGET_STEPS_PER_SECOND = 1_000_000
VARIANTS = ("state", "pixels", "pixels_view", "pixels_full_drawing")
# results/envs/pixelcopter_benchmark.json at commit 4828ba8: the numpy incremental drawing (bit masks per pixel
# column) and the numpy game step, 1024 envs, one thread, load ~1.7; best (median) env-steps per CPU second
PREVIOUS_NUMPY_INCREMENTAL = {
    "commit": "4828ba8",
    "state": {"steps_per_cpu_second": 2372486, "median_steps_per_cpu_second": 2265199},
    "pixels": {"steps_per_cpu_second": 439286, "median_steps_per_cpu_second": 408678},
    "pixels_view": {"steps_per_cpu_second": 557651, "median_steps_per_cpu_second": 484588},
    "pixels_full_drawing": {"steps_per_cpu_second": 115662, "median_steps_per_cpu_second": 110908},
}
# the first reset and step of a fresh process: numba compiles the kernels, or loads them from its cache
FIRST_CALL = """
import time
import numpy as np
from dreamlab.envs.pixelcopter import PixelCopterVectorEnv
env = PixelCopterVectorEnv(4)
start = time.perf_counter()
env.reset(seed=0)
env.step(np.zeros(4, dtype=np.int64))
print(time.perf_counter() - start)
"""


@dataclasses.dataclass
class PixelCopterBenchmarkConfig(RunConfig):
    """Env-steps/s of the PixelCopter vector env (state, pixels, pixels as a view, full drawing) and single env."""

    name: str = "pixelcopter_benchmark"
    num_envs: int = 1024
    rounds: int = 5  # interleaved timing rounds of every vector variant
    min_run_seconds: float = 2.0  # each timed run repeats 64-step blocks until this much wall time has passed
    single_steps: int = 20_000  # steps per timed run of the single env
    warmup_steps: int = 20  # vector steps before timing (single env: 10 x this)

    def validate(self) -> None:
        super().validate()
        positive(self, "num_envs", "rounds", "min_run_seconds", "single_steps")
        non_negative(self, "warmup_steps")


PRESETS = {
    "smoke": {"name": "pixelcopter_benchmark_smoke", "num_envs": 64, "rounds": 1, "min_run_seconds": 0.05},
    "fast": {"rounds": 3, "min_run_seconds": 0.5, "single_steps": 5_000},
    "paper": {},
}


class FullDrawingVectorEnv(PixelCopterVectorEnv):
    """The vector env drawing every pixel of every screen on every step: the path the incremental drawing
    replaced, for comparison."""

    def _observe(self, envs: np.ndarray | None = None) -> np.ndarray:
        screens = reference_screens(self)
        return screens if envs is None else screens[envs]


def make_variant(variant: str, num_envs: int) -> gym.vector.VectorEnv:
    if variant == "pixels_full_drawing":
        return FullDrawingVectorEnv(num_envs)
    obs_type = "state" if variant == "state" else "pixels"
    return gym.make_vec("dreamlab/PixelCopter-v0", num_envs=num_envs, obs_type=obs_type, copy=variant != "pixels_view")


def time_run(env: gym.vector.VectorEnv, actions: np.ndarray, min_seconds: float) -> dict:
    """Step ``env`` in blocks of len(actions) steps until ``min_seconds`` of wall time; rates and episode ends."""
    steps, episodes = 0, 0
    start, start_cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < min_seconds:
        for step_actions in actions:
            _, _, terminated, truncated, _ = env.step(step_actions)
            episodes += int((terminated | truncated).sum())
        steps += len(actions) * env.num_envs
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return {
        "env_steps": steps,
        "steps_per_second": steps / wall,
        "steps_per_cpu_second": steps / cpu,
        "episodes": episodes,
    }


def summarise(runs: list[dict]) -> dict:
    wall = [run["steps_per_second"] for run in runs]
    cpu = [run["steps_per_cpu_second"] for run in runs]
    steps, episodes = sum(run["env_steps"] for run in runs), sum(run["episodes"] for run in runs)
    return {
        "steps_per_second": max(wall),
        "steps_per_cpu_second": max(cpu),
        "median_steps_per_second": statistics.median(wall),
        "median_steps_per_cpu_second": statistics.median(cpu),
        "steps_per_second_runs": wall,
        "steps_per_cpu_second_runs": cpu,
        "mean_episode_length": steps / max(episodes, 1),
    }


def time_vector_variants(config: PixelCopterBenchmarkConfig) -> tuple[dict, list]:
    """Every vector variant, timed in interleaved rounds; returns the summaries and the load between rounds."""
    actions = np.random.default_rng(config.seed).integers(0, 2, size=(64, config.num_envs))
    envs = {variant: make_variant(variant, config.num_envs) for variant in VARIANTS}
    for env in envs.values():
        env.reset(seed=config.seed)
        for i in range(config.warmup_steps):
            env.step(actions[i % len(actions)])
    runs: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    loads = []
    for _ in range(config.rounds):
        for variant, env in envs.items():
            runs[variant].append(time_run(env, actions, config.min_run_seconds))
        loads.append(list(os.getloadavg()))
    for env in envs.values():
        env.close()
    return {variant: {"num_envs": config.num_envs, **summarise(runs[variant])} for variant in VARIANTS}, loads


def time_first_call() -> dict:
    """Seconds of a fresh process's first reset and step: compiling the kernels into an empty numba cache, then
    loading them from it."""
    with tempfile.TemporaryDirectory() as cache:
        environment = {**os.environ, "NUMBA_CACHE_DIR": cache}

        def first_call() -> float:
            command = [sys.executable, "-c", FIRST_CALL]
            return float(subprocess.run(command, env=environment, capture_output=True, text=True, check=True).stdout)

        return {"compile_seconds": first_call(), "cached_seconds": first_call()}


def time_single_env(obs_type: str, config: PixelCopterBenchmarkConfig) -> dict:
    env = PixelCopterEnv(obs_type=obs_type)
    env.reset(seed=config.seed)
    actions = np.random.default_rng(config.seed).integers(0, 2, size=4096).tolist()
    runs = []
    for repeat in range(config.rounds + 1):  # the first run is the warm-up
        steps = config.warmup_steps * 10 if repeat == 0 else config.single_steps
        start, start_cpu, episodes = time.perf_counter(), time.process_time(), 0
        for i in range(steps):
            _, _, terminated, _, _ = env.step(actions[i % 4096])
            if terminated:
                env.reset()
                episodes += 1
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        if repeat:
            runs.append(
                {
                    "env_steps": steps,
                    "steps_per_second": steps / wall,
                    "steps_per_cpu_second": steps / cpu,
                    "episodes": episodes,
                }
            )
    return summarise(runs)


@cli
def main(argv: list[str] | None = None) -> dict:
    config = parse_config(PixelCopterBenchmarkConfig, PRESETS, argv)
    set_threads(config.threads)
    start = time.perf_counter()
    metrics: dict = {"load_average_before": list(os.getloadavg()), "policy": "uniform random actions"}
    metrics["vector"], metrics["load_average_between_rounds"] = time_vector_variants(config)
    metrics["single_state"] = time_single_env("state", config)
    metrics["single_pixels"] = time_single_env("pixels", config)
    metrics["first_call"] = time_first_call()
    metrics["load_average_after"] = list(os.getloadavg())
    vector = metrics["vector"]
    metrics["pixels_speedup_over_full_drawing"] = {
        variant: vector[variant]["median_steps_per_cpu_second"]
        / vector["pixels_full_drawing"]["median_steps_per_cpu_second"]
        for variant in ("pixels", "pixels_view")
    }
    # across runs (other loads): indicative only
    metrics["previous_numpy_incremental"] = PREVIOUS_NUMPY_INCREMENTAL
    metrics["median_speedup_over_previous"] = {
        variant: vector[variant]["median_steps_per_cpu_second"]
        / PREVIOUS_NUMPY_INCREMENTAL[variant]["median_steps_per_cpu_second"]
        for variant in VARIANTS
    }
    metrics["target"] = {
        "num_envs": config.num_envs,
        "steps_per_second": TARGET_STEPS_PER_SECOND,
        **{
            f"met_{variant}_{clock}": vector[variant][key] >= TARGET_STEPS_PER_SECOND
            for variant in ("state", "pixels", "pixels_view")
            for clock, key in (("wall", "steps_per_second"), ("cpu", "steps_per_cpu_second"))
        },
    }
    path = write_result(
        "envs",
        config.name,
        experiment="pixelcopter_benchmark",
        config=config,
        metrics=metrics,
        wall_seconds=time.perf_counter() - start,
        results_dir=config.results_dir,
    )

    print(f"load average before {metrics['load_average_before']}, after {metrics['load_average_after']}")
    print(f"{'':<32}{'steps/s (wall)':>16}{'steps/CPU-s':>16}{'median CPU':>14}")
    rows = [(f"vector {variant} x{config.num_envs}", vector[variant]) for variant in VARIANTS]
    rows += [(f"single {obs_type}", metrics[f"single_{obs_type}"]) for obs_type in ("state", "pixels")]
    for label, record in rows:
        print(
            f"{label:<32}{record['steps_per_second']:>16,.0f}{record['steps_per_cpu_second']:>16,.0f}"
            f"{record['median_steps_per_cpu_second']:>14,.0f}"
        )
    first = metrics["first_call"]
    print(f"first reset + step: {first['compile_seconds']:.2f} s compiling, {first['cached_seconds']:.2f} s cached")
    print(f"result: {path}")
    return metrics


if __name__ == "__main__":
    main()

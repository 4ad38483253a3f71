"""Throughput of dreamlab's PixelCopter: env-steps per second of the vector env (state and pixel observations)
and of the single env, under uniformly random actions.

Random play ends an episode every ~7 steps, so about one game in seven resets (51 uniform draws, 48 sines) on
every step: the slow end of what training sees. Actions are drawn before timing; each figure is the best of
``repeats`` timed runs after a warm-up, per wall second and per CPU second of the process (the two agree on an
idle machine; on a shared one the CPU figure is the idle-core rate), with the load average recorded. The
issue's reference point: PLE itself runs about 15k steps/s.

python experiments/pixelcopter_benchmark.py --preset paper   # writes results/envs/pixelcopter_benchmark.json
(``fast`` times shorter runs into the same file; ``smoke`` writes pixelcopter_benchmark_smoke.json)
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

from dreamlab.config import RunConfig, parse_config
from dreamlab.envs.pixelcopter import PixelCopterEnv, PixelCopterVectorEnv
from dreamlab.results import write_result

TARGET_STATE_ENVS = 1024
TARGET_STEPS_PER_SECOND = 1_000_000


@dataclasses.dataclass
class PixelCopterBenchmarkConfig(RunConfig):
    """Env-steps/s of PixelCopterVectorEnv (state, pixels) and PixelCopterEnv under random actions."""

    name: str = "pixelcopter_benchmark"
    state_envs: tuple[int, ...] = (256, 1024, 4096)  # vector sizes timed with state observations
    pixel_envs: tuple[int, ...] = (64, 256)  # vector sizes timed with pixel observations
    env_steps: int = 2_000_000  # env-steps per timed run of a state vector env (vector steps = this / num_envs)
    pixel_env_steps: int = 200_000  # env-steps per timed run of a pixel vector env
    single_steps: int = 20_000  # steps per timed run of the single env
    repeats: int = 3
    warmup_steps: int = 20  # vector steps (or single steps x 10) before timing


PRESETS = {
    "smoke": {
        "name": "pixelcopter_benchmark_smoke",
        "state_envs": (64,),
        "pixel_envs": (16,),
        "env_steps": 5_000,
        "pixel_env_steps": 1_000,
        "single_steps": 500,
        "repeats": 1,
    },
    "fast": {"env_steps": 500_000, "pixel_env_steps": 50_000, "single_steps": 5_000},
    "paper": {},
}


def time_vector_env(num_envs: int, obs_type: str, config: PixelCopterBenchmarkConfig) -> dict:
    env = PixelCopterVectorEnv(num_envs, obs_type=obs_type)
    env.reset(seed=config.seed)
    actions = np.random.default_rng(config.seed).integers(0, 2, size=(64, num_envs))
    for i in range(config.warmup_steps):
        env.step(actions[i % 64])
    vector_steps = max(1, (config.env_steps if obs_type == "state" else config.pixel_env_steps) // num_envs)
    wall, cpu, episodes = [], [], 0
    for _ in range(config.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for i in range(vector_steps):
            _, _, terminated, _, _ = env.step(actions[i % 64])
            episodes += int(terminated.sum())
        wall.append(vector_steps * num_envs / (time.perf_counter() - start))
        cpu.append(vector_steps * num_envs / (time.process_time() - start_cpu))
    env.close()
    return {
        "num_envs": num_envs,
        **_rates(wall, cpu),
        "mean_episode_length": config.repeats * vector_steps * num_envs / max(episodes, 1),
    }


def _rates(wall: list[float], cpu: list[float]) -> dict:
    """Best-of-runs env-steps per wall second and per CPU second of this process (numpy runs these ops on one
    thread, so the latter is what an idle core would give when other jobs share the machine)."""
    return {
        "steps_per_second": max(wall),
        "steps_per_cpu_second": max(cpu),
        "steps_per_second_runs": wall,
        "steps_per_cpu_second_runs": cpu,
    }


def time_single_env(obs_type: str, config: PixelCopterBenchmarkConfig) -> dict:
    env = PixelCopterEnv(obs_type=obs_type)
    env.reset(seed=config.seed)
    actions = np.random.default_rng(config.seed).integers(0, 2, size=4096).tolist()
    wall, cpu = [], []
    for repeat in range(config.repeats + 1):  # the first run is the warm-up
        steps = config.warmup_steps * 10 if repeat == 0 else config.single_steps
        start, start_cpu = time.perf_counter(), time.process_time()
        for i in range(steps):
            _, _, terminated, _, _ = env.step(actions[i % 4096])
            if terminated:
                env.reset()
        if repeat:
            wall.append(steps / (time.perf_counter() - start))
            cpu.append(steps / (time.process_time() - start_cpu))
    return _rates(wall, cpu)


def main(argv: list[str] | None = None) -> dict:
    config = parse_config(PixelCopterBenchmarkConfig, PRESETS, argv)
    start = time.perf_counter()
    metrics: dict = {"load_average_before": list(os.getloadavg()), "policy": "uniform random actions"}
    metrics["vector_state"] = [time_vector_env(n, "state", config) for n in config.state_envs]
    metrics["vector_pixels"] = [time_vector_env(n, "pixels", config) for n in config.pixel_envs]
    metrics["single_state"] = time_single_env("state", config)
    metrics["single_pixels"] = time_single_env("pixels", config)
    metrics["load_average_after"] = list(os.getloadavg())
    at_target = [r for r in metrics["vector_state"] if r["num_envs"] == TARGET_STATE_ENVS]
    if at_target:
        metrics["target"] = {
            "num_envs": TARGET_STATE_ENVS,
            "steps_per_second": TARGET_STEPS_PER_SECOND,
            "met_wall": at_target[0]["steps_per_second"] >= TARGET_STEPS_PER_SECOND,
            "met_cpu": at_target[0]["steps_per_cpu_second"] >= TARGET_STEPS_PER_SECOND,
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
    print(f"{'':<25}{'steps/s (wall)':>16}{'steps/CPU-s':>16}")
    rows = [(f"vector {o} x{r['num_envs']}", r) for o in ("state", "pixels") for r in metrics[f"vector_{o}"]]
    rows += [(f"single {o}", metrics[f"single_{o}"]) for o in ("state", "pixels")]
    for label, record in rows:
        print(f"{label:<25}{record['steps_per_second']:>16,.0f}{record['steps_per_cpu_second']:>16,.0f}")
    print(f"result: {path}")
    return metrics


if __name__ == "__main__":
    main()

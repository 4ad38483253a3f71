"""Real-game C-stage speed on CarRacing: env-steps per second per core of V + M + C + the game, for the path used
before (one game per job) against each speed lever of :mod:`dreamlab.worldmodels.real` and their combinations.

    flock /tmp/dreamlab-heavy.lock python experiments/worldmodels_real_benchmark.py --preset fast \\
        --results_dir results

Levers (each a WorldModelsConfig field):
  games_per_worker   every job steps several games at once; V, M and C run as one batch over them;
  lean_render        the game skips drawing what the 64x64 observation never shows (identical observations);
  no_progress_steps  a training episode ends after that many steps without a new road tile (a common CarRacing
                     practice; real checks and the final test always play whole episodes).

Everything runs in this process on one thread, so the rates are per core. V and M have random weights of the real
sizes (z 32, hidden 256): their speed does not depend on training. The candidates are drawn as CMA-ES's first
generation draws them (N(0, sigma0^2) per parameter); such controllers drive off the road, so ``no_progress_steps``
cuts their episodes far more than an evolved driver's, and off-road frames draw fewer road polygons -- compare
the variants with each other, not with a late generation's absolute rate. Variants run interleaved, ``rounds``
times, with the load average recorded for each. Writes <results_dir>/worldmodels/real_benchmark.json.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from typing import Any

import numpy as np
import torch

from dreamlab.config import RunConfig, parse_config, positive
from dreamlab.parallel import WorkerPool
from dreamlab.results import write_result
from dreamlab.runs import UserError, cli
from dreamlab.runtime import seed_everything, set_threads
from dreamlab.worldmodels import MDNRNN, ConvVAE, LinearController, agent_spec, get_task, play_population


@dataclasses.dataclass
class RealBenchmarkConfig(RunConfig):
    """CarRacing C-stage env-steps/s per core: one game per job against batched games, lean rendering, early ends."""

    z_dim: int = 32
    hidden_size: int = 256
    candidates: int = 16  # controllers per measurement, each playing `trials` episodes
    trials: int = 1
    max_steps: int = 1000
    sigma0: float = 0.1  # the candidates' spread (CMA-ES's first generation)
    games: tuple[int, ...] = (4, 8, 16)  # games-per-worker settings measured
    no_progress_steps: int = 100
    rounds: int = 2
    threads: int = 1

    def validate(self) -> None:
        super().validate()
        positive(self, "z_dim", "hidden_size", "candidates", "trials", "max_steps", "sigma0", "no_progress_steps")
        positive(self, "rounds")
        if not self.games or min(self.games) < 1:
            raise UserError(f"--games must list game counts >= 1, got {self.games!r}")
        if max(self.games) > self.candidates * self.trials:
            raise UserError(
                f"--games {max(self.games)} exceeds the {self.candidates * self.trials} episodes of a measurement: "
                "raise --candidates or --trials"
            )


PRESETS = {
    "smoke": {"candidates": 4, "hidden_size": 16, "max_steps": 40, "games": (2, 4), "no_progress_steps": 10},
    "fast": {},
    "paper": {"candidates": 32, "rounds": 3},
}


def variants(config: RealBenchmarkConfig) -> dict[str, dict[str, Any]]:
    """Name -> (games, lean_render, no_progress_steps): the old path, each lever alone, and the combinations."""
    off = {"games": 1, "lean_render": False, "no_progress_steps": 0}
    table = {"one_game": off, "lean_render": {**off, "lean_render": True}}
    table["no_progress"] = {**off, "no_progress_steps": config.no_progress_steps}
    for games in config.games:
        table[f"games_{games}"] = {**off, "games": games}
    for games in config.games:
        table[f"games_{games}_lean"] = {"games": games, "lean_render": True, "no_progress_steps": 0}
        table[f"games_{games}_lean_no_progress"] = {
            "games": games,
            "lean_render": True,
            "no_progress_steps": config.no_progress_steps,
        }
    return table


def measure(spec, population: np.ndarray, seeds: list[int], max_steps: int, setting: dict[str, Any]) -> dict:
    """One timed C-stage evaluation of ``population`` in this process (one core)."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with WorkerPool(0) as pool:
        results = play_population(
            spec,
            population,
            seeds,
            pool,
            max_steps,
            games=setting["games"],
            no_progress_steps=setting["no_progress_steps"],
            env_options={"lean_render": setting["lean_render"]},
        )
    seconds = time.perf_counter() - start
    episodes = [r for row in results for r in row]
    steps = sum(r.steps for r in episodes)
    return {
        "seconds": seconds,
        "steps": steps,
        "episodes": len(episodes),
        "steps_per_second": steps / seconds,
        "episodes_per_second": len(episodes) / seconds,
        "stopped_early": sum(r.stopped_early for r in episodes),
        "returns": [round(r.episode_return, 4) for r in episodes],
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def summarise(rounds: list[dict[str, dict]], name: str) -> dict:
    """Median rates of a variant and its speed-ups over one_game, each from the same round's pair."""
    rows = [r[name] for r in rounds]
    base = [r["one_game"] for r in rounds]
    return {
        "steps_per_second": statistics.median(r["steps_per_second"] for r in rows),
        "episodes_per_second": statistics.median(r["episodes_per_second"] for r in rows),
        "mean_steps_per_episode": statistics.median(r["steps"] / r["episodes"] for r in rows),
        "stopped_early_fraction": statistics.median(r["stopped_early"] / r["episodes"] for r in rows),
        "steps_per_second_speedup": statistics.median(
            r["steps_per_second"] / b["steps_per_second"] for r, b in zip(rows, base, strict=True)
        ),
        "episodes_per_second_speedup": statistics.median(
            r["episodes_per_second"] / b["episodes_per_second"] for r, b in zip(rows, base, strict=True)
        ),
        "load_average": statistics.mean(r["load_before"] for r in rows),
    }


@cli
def main(argv: list[str] | None = None) -> dict:
    config = parse_config(RealBenchmarkConfig, PRESETS, argv, description=__doc__)
    set_threads(config.threads)
    seed_everything(config.seed)
    task = get_task("carracing")
    vae, model = ConvVAE(config.z_dim), MDNRNN(config.z_dim, task.action_feature_size, config.hidden_size)
    spec = agent_spec("carracing", vae, model, config.hidden_size, "lstm", {}, False)
    controller = LinearController(config.z_dim + config.hidden_size, task)
    rng = np.random.default_rng(config.seed)
    population = rng.normal(0.0, config.sigma0, (config.candidates, controller.n_params))
    table = variants(config)
    start, rounds = time.perf_counter(), []
    for index in range(config.rounds):
        # Each round plays new tracks, the same ones for every variant; the order rotates between rounds.
        seeds = [1_000 * index + t for t in range(config.trials)]
        names = list(table)
        names = names[index % len(names) :] + names[: index % len(names)]
        rounds.append({name: measure(spec, population, seeds, config.max_steps, table[name]) for name in names})
        for name in table:
            row = rounds[-1][name]
            print(f"round {index}: {name:34s} {row['steps_per_second']:7.1f} steps/s {row['seconds']:7.1f} s")
    wall = time.perf_counter() - start
    summary = {name: {**table[name], **summarise(rounds, name)} for name in table}
    # Batching changes V's and M's float rounding (~1e-8), never a game's inputs otherwise: the same returns.
    same = all(
        np.allclose(r[f"games_{g}"]["returns"], r["one_game"]["returns"], atol=1e-3)
        and np.allclose(r["lean_render"]["returns"], r["one_game"]["returns"], atol=1e-3)
        for r in rounds
        for g in config.games
    )
    best = max(config.games, key=lambda g: summary[f"games_{g}_lean"]["steps_per_second"])
    metrics = {
        "variants": summary,
        "rounds": rounds,
        "fastest_games_per_worker": best,
        "fastest_full_episode_speedup": summary[f"games_{best}_lean"]["steps_per_second_speedup"],
        "fastest_with_no_progress_episode_speedup": summary[f"games_{best}_lean_no_progress"][
            "episodes_per_second_speedup"
        ],
        "batched_and_lean_returns_equal_one_game": same,
        "torch_threads": torch.get_num_threads(),
    }
    path = write_result(
        "worldmodels",
        config.name or "real_benchmark",
        experiment="worldmodels_real_benchmark",
        config=config,
        metrics=metrics,
        wall_seconds=wall,
        results_dir=config.results_dir,
    )
    for name, row in summary.items():
        print(
            f"{name:34s} {row['steps_per_second']:7.1f} steps/s (x{row['steps_per_second_speedup']:.2f}), "
            f"{row['episodes_per_second']:.3f} episodes/s (x{row['episodes_per_second_speedup']:.2f}), "
            f"{row['mean_steps_per_episode']:.0f} steps/episode, load {row['load_average']:.1f}"
        )
    print(f"result: {path}")
    return metrics


if __name__ == "__main__":
    main()

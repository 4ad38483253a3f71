"""Throughput of WorkerPool: the same real Doom episodes on local worker processes and on a local Ray cluster.

The work is one CMA-ES generation of real-game fitness as World Models runs it (``play_population``: ``candidates``
controllers x ``episodes`` episodes, capped at ``max_steps``), with V and M at the paper's Doom sizes, so each
generation ships the weights a real run ships. Both back ends get the same CPUs: ``workers`` local processes, and
a Ray cluster of ``ray_nodes`` nodes (a head and ``ray_nodes - 1`` more, started on this machine as ``ray start``
would start them on others) with ``workers`` CPUs in all. After an untimed warm-up, rounds alternate which back end
goes first, the load average is recorded around each, and each round checks the two gave the same returns.
Start-up (spawning the workers; starting and joining the cluster) is timed apart from the rounds.

A transport check times what the shared input saves: a map over ``transport_items`` items whose task only touches
the agent's weights, the weights either carried by every item or passed once as ``shared``.

python experiments/parallel_benchmark.py --preset fast --results_dir results   # results/parallel/ray_vs_local.json
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import numpy as np
import torch

from dreamlab.config import RunConfig, parse_config, positive
from dreamlab.parallel import WorkerPool
from dreamlab.results import write_result
from dreamlab.runs import UserError, cli
from dreamlab.worldmodels import MDNRNN, ConvVAE, agent_spec
from dreamlab.worldmodels.controller import LinearController
from dreamlab.worldmodels.real import AgentSpec, play_population
from dreamlab.worldmodels.tasks import get_task


@dataclasses.dataclass
class ParallelBenchmarkConfig(RunConfig):
    """Real Doom episodes of fixed controllers: local processes vs a local Ray cluster, interleaved rounds."""

    name: str = "ray_vs_local"
    workers: int = 2  # local worker processes; the Ray cluster gets as many CPUs
    ray_nodes: int = 2  # Ray nodes (head included), workers // ray_nodes CPUs each
    candidates: int = 8  # controllers per round (one CMA-ES generation)
    episodes: int = 2  # episodes per controller
    max_steps: int = 300  # episode cap (a whole Doom episode is at most 2100 steps)
    rounds: int = 4  # timed rounds per back end, alternating which goes first
    z_dim: int = 64
    hidden_size: int = 512  # the paper's Doom M
    transport_items: int = 64  # items in the shared-input transport check

    def validate(self) -> None:
        super().validate()
        positive(self, "workers", "ray_nodes", "candidates", "episodes", "max_steps", "rounds", "z_dim")
        positive(self, "hidden_size", "transport_items")
        if self.workers % self.ray_nodes:
            raise UserError(f"--workers {self.workers} must split evenly over --ray_nodes {self.ray_nodes}")


PRESETS = {
    "smoke": {
        "name": "ray_vs_local_smoke",
        "candidates": 2,
        "episodes": 1,
        "max_steps": 30,
        "rounds": 1,
        "z_dim": 8,
        "hidden_size": 16,
        "transport_items": 8,
    },
    "fast": {},
    "paper": {"candidates": 32, "episodes": 4, "max_steps": 2100},
}


def make_agent(config: ParallelBenchmarkConfig) -> tuple[AgentSpec, np.ndarray]:
    """A randomly initialised V and M at the configured sizes, and a population of small random controllers."""
    torch.manual_seed(config.seed)
    task = get_task("doom")
    vae = ConvVAE(config.z_dim)
    model = MDNRNN(config.z_dim, task.action_feature_size, config.hidden_size, 5, "lstm")
    spec = agent_spec("doom", vae, model, config.hidden_size, "lstm", {}, False)
    n_params = LinearController(config.z_dim + config.hidden_size, task).n_params
    population = np.random.default_rng(config.seed).normal(0.0, 0.1, size=(config.candidates, n_params))
    return spec, population


def spec_bytes(spec: AgentSpec) -> int:
    tensors = [*spec.vae_state.values(), *spec.model_state.values()]
    return sum(t.numel() * t.element_size() for t in tensors)


def generation(pool: WorkerPool, spec: AgentSpec, population: np.ndarray, seeds: list[int], max_steps: int) -> dict:
    load = os.getloadavg()[0]
    start = time.perf_counter()
    results = play_population(spec, population, seeds, pool, max_steps)
    seconds = time.perf_counter() - start
    steps = sum(r.steps for row in results for r in row)
    returns = [[r.episode_return for r in row] for row in results]
    episodes = len(population) * len(seeds)
    return {
        "seconds": seconds,
        "steps": steps,
        "episodes_per_second": episodes / seconds,
        "steps_per_second": steps / seconds,
        "load_average": load,
        "returns": returns,
    }


def touch_carried(item: tuple[AgentSpec, int]) -> int:
    spec, index = item
    return index + len(spec.model_state)


def touch_shared(spec: AgentSpec, index: int) -> int:
    return index + len(spec.model_state)


def transport(pool: WorkerPool, spec: AgentSpec, items: int) -> dict:
    """Seconds for one map whose items carry the weights vs one that passes them as ``shared``."""
    start = time.perf_counter()
    carried = pool.map(touch_carried, [(spec, i) for i in range(items)])
    middle = time.perf_counter()
    shared = pool.map(touch_shared, range(items), shared=spec)
    end = time.perf_counter()
    assert carried == shared
    return {"carried_seconds": middle - start, "shared_seconds": end - middle}


def start_cluster(config: ParallelBenchmarkConfig) -> Any:
    from ray.cluster_utils import Cluster

    node = {"num_cpus": config.workers // config.ray_nodes, "object_store_memory": 200 * 2**20}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    for _ in range(config.ray_nodes - 1):
        cluster.add_node(**node)
    cluster.wait_for_nodes()
    return cluster


def summarise(rounds: list[dict]) -> dict:
    rates = [r["steps_per_second"] for r in rounds]
    return {
        "steps_per_second_median": float(np.median(rates)),
        "episodes_per_second_median": float(np.median([r["episodes_per_second"] for r in rounds])),
        "rounds": [{k: v for k, v in r.items() if k != "returns"} for r in rounds],
    }


@cli
def main(argv: list[str] | None = None) -> dict:
    config = parse_config(ParallelBenchmarkConfig, PRESETS, argv)
    try:
        import ray
    except ImportError as err:
        raise UserError("this benchmark needs Ray: pip install 'dreamlab[ray]'") from err
    wall = time.perf_counter()
    spec, population = make_agent(config)
    metrics: dict[str, Any] = {"load_average_before": list(os.getloadavg()), "cpu_count": os.cpu_count()}
    metrics["weights_mb"] = spec_bytes(spec) / 2**20
    started = time.perf_counter()
    cluster = start_cluster(config)
    try:
        with WorkerPool(config.workers, cluster.address) as on_ray:
            on_ray.map(touch_shared, range(config.workers), shared=spec)  # workers started, weights fetched once
            ray_startup = time.perf_counter() - started
            started = time.perf_counter()
            with WorkerPool(config.workers) as local:
                local.map(touch_shared, range(config.workers), shared=spec)
                local_startup = time.perf_counter() - started
                metrics["startup_seconds"] = {"local": local_startup, "ray": ray_startup}
                pools = {"local": local, "ray": on_ray}
                for pool in pools.values():  # untimed: every worker imports ViZDoom and starts a first game
                    generation(pool, spec, population, [config.seed], max_steps=10)
                rounds: dict[str, list[dict]] = {"local": [], "ray": []}
                transports: dict[str, list[dict]] = {"local": [], "ray": []}
                identical = True
                for index in range(config.rounds):
                    seeds = [config.seed * 1_000 + index * config.episodes + e for e in range(config.episodes)]
                    order = ["local", "ray"] if index % 2 == 0 else ["ray", "local"]
                    for backend in order:
                        rounds[backend].append(generation(pools[backend], spec, population, seeds, config.max_steps))
                        transports[backend].append(transport(pools[backend], spec, config.transport_items))
                    identical &= rounds["local"][-1]["returns"] == rounds["ray"][-1]["returns"]
        metrics["ray_nodes"] = len(ray.nodes())
    finally:
        ray.shutdown()
        cluster.shutdown()
    metrics["local"], metrics["ray"] = summarise(rounds["local"]), summarise(rounds["ray"])
    metrics["ray_over_local_steps_per_second"] = (
        metrics["ray"]["steps_per_second_median"] / metrics["local"]["steps_per_second_median"]
    )
    metrics["identical_returns"] = identical
    metrics["transport"] = {
        backend: {key: float(np.median([t[key] for t in runs])) for key in ("carried_seconds", "shared_seconds")}
        for backend, runs in transports.items()
    }
    metrics["load_average_after"] = list(os.getloadavg())
    path = write_result(
        "parallel",
        config.name,
        experiment="parallel_benchmark",
        config=config,
        metrics=metrics,
        wall_seconds=time.perf_counter() - wall,
        results_dir=config.results_dir,
    )
    print(f"load average before {metrics['load_average_before']}, after {metrics['load_average_after']}")
    print(f"weights per agent {metrics['weights_mb']:.1f} MB; start-up {metrics['startup_seconds']}")
    for backend in ("local", "ray"):
        record, moved = metrics[backend], metrics["transport"][backend]
        print(
            f"{backend:<6} {record['steps_per_second_median']:8.0f} steps/s {record['episodes_per_second_median']:6.2f}"
            f" episodes/s; {config.transport_items} items: weights per item {moved['carried_seconds']:.2f} s, "
            f"shared {moved['shared_seconds']:.2f} s"
        )
    print(f"ray / local: {metrics['ray_over_local_steps_per_second']:.2f}; identical returns: {identical}")
    print(f"result: {path}")
    return metrics


if __name__ == "__main__":
    main()

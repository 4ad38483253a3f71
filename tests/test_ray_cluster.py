"""WorkerPool on a real Ray cluster: a head and a second node on loopback, as ``ray start`` would run them (issue 26).

The nodes import the task functions from tests/ (they inherit this process's PYTHONPATH), as real nodes import an
installed dreamlab. Results must equal the local-process pool's for the same seed; a worker killed mid-generation
is retried; a killed driver resumes from its checkpoint; the shared input is ``ray.put`` once per map.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import parallel_tasks as tasks
import pytest
import torch

from dreamlab.cmaes import CMAES
from dreamlab.parallel import TaskError, WorkerPool
from dreamlab.worldmodels import MDNRNN, ConvVAE, agent_spec
from dreamlab.worldmodels.real import real_population_returns
from dreamlab.worldmodels.rollouts import collect_rollouts, load_rollout

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

TESTS = str(Path(__file__).resolve().parent)


@pytest.fixture(scope="module")
def address():
    from ray.cluster_utils import Cluster

    old_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([TESTS, *([old_path] if old_path else [])])
    node = {"num_cpus": 1, "object_store_memory": 150 * 2**20}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        cluster.add_node(**{**node, "num_cpus": 2})
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        ray.shutdown()
        cluster.shutdown()
        if old_path is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old_path


@pytest.fixture(scope="module")
def pools(address):
    with WorkerPool(2) as local, WorkerPool(2, address) as on_ray:
        assert len(ray.nodes()) == 2
        assert on_ray.workers == 3  # the cluster's CPUs, which callers split their jobs by
        yield local, on_ray


def test_rollouts_and_a_real_fitness_generation_match_local_processes(pools, tmp_path):
    local, on_ray = pools
    for name, pool in (("local", local), ("ray", on_ray)):
        collect_rollouts("doom", tmp_path / name, 3, seed=7, pool=pool, max_episode_steps=30, log=lambda _: None)
    for index in range(3):
        ours, theirs = (load_rollout(tmp_path / name / f"rollout_{index:06d}.npz") for name in ("local", "ray"))
        assert all(np.array_equal(ours[key], theirs[key]) for key in ours)

    torch.manual_seed(0)
    agent = agent_spec("doom", ConvVAE(4), MDNRNN(4, 3, 8), 8, "lstm", {}, False)
    means = []
    for pool in (local, on_ray):
        es = CMAES(np.zeros(3 * (4 + 8) + 3), 0.5, popsize=4, seed=3)
        candidates = es.ask()
        returns = real_population_returns(agent, candidates, [11, 12], pool, max_steps=30)
        es.tell(candidates, -returns.mean(axis=1))
        means.append((returns, es.mean))
    assert means[0][0].shape == (4, 2)
    assert np.array_equal(means[0][0], means[1][0]) and np.array_equal(means[0][1], means[1][1])


def test_a_worker_killed_mid_generation_is_retried_and_each_candidate_counted_once(pools, tmp_path):
    _, on_ray = pools
    population = np.random.default_rng(0).normal(size=(6, 5))
    results = on_ray.map(tasks.die_once, list(enumerate(population)), shared=str(tmp_path))
    assert (tmp_path / "killed").exists()
    assert results == [(index, tasks.score(x)) for index, x in enumerate(population)]
    attempts = sorted(int(line) for line in (tmp_path / "evaluations").read_text().split())
    assert attempts == [0, 1, 2, 2, 3, 4, 5]  # candidate 2 ran again after its worker died


def test_an_exception_is_named_and_not_retried(pools, tmp_path):
    _, on_ray = pools
    with pytest.raises(TaskError, match=r"parallel_tasks.raise_and_count on item 0 \(7\) failed: ValueError: bad"):
        on_ray.map(tasks.raise_and_count, [7], shared=str(tmp_path))
    assert (tmp_path / "attempts").read_text().split().count("7") == 1


def test_the_shared_input_is_put_once_per_map(pools, monkeypatch):
    _, on_ray = pools
    puts = []
    real_put = ray.put

    def counting_put(value, **kwargs):
        puts.append(value)
        return real_put(value, **kwargs)

    monkeypatch.setattr(ray, "put", counting_put)
    weights = np.ones(250_000)  # 2 MB, like an agent's V and M
    assert on_ray.map(tasks.shared_sum, range(8), shared=weights) == [250_000.0 + i for i in range(8)]
    assert len(puts) == 1 and puts[0] is weights
    on_ray.map(tasks.square, range(4))
    assert len(puts) == 1  # nothing shared, nothing put


_DRIVER = "import sys; sys.path.insert(0, sys.argv[1]); import parallel_tasks as t; t.evolve_sphere_main(sys.argv[2:])"


def test_a_killed_driver_resumes_from_its_checkpoint(pools, address, tmp_path):
    _, on_ray = pools
    uninterrupted = tasks.evolve_sphere(on_ray, str(tmp_path / "whole"))

    def driver(die_after: int) -> subprocess.CompletedProcess:
        command = [sys.executable, "-c", _DRIVER, TESTS, address, str(tmp_path / "killed"), str(die_after)]
        return subprocess.run(command, capture_output=True, text=True, timeout=180)

    killed = driver(die_after=2)
    assert killed.returncode == -9 and "killed after generation 2/5" in killed.stdout, killed.stderr[-2000:]
    resumed = driver(die_after=-1)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "C: resumed at generation 2/5" in resumed.stdout
    assert json.loads(resumed.stdout.splitlines()[-1]) == uninterrupted

"""Wall time and memory of CMA-ES generations in high dimension, ours or pycma's, measured in a fresh process
(experiments/cmaes_benchmark.py runs :func:`time_generations` in a spawned worker, so that each measurement's
peak memory is its own and no earlier allocation is reused)."""

from __future__ import annotations

import math
import resource
import time
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from dreamlab.cmaes.objectives import sphere
from dreamlab.cmaes.strategy import CMAES, Covariance


def time_generations(
    library: str, covariance: Covariance, n: int, generations: int, eigen: bool, threads: int
) -> dict[str, Any]:
    """In a fresh process: seconds of each of ``generations`` sphere generations at dimension ``n`` (ask, loss,
    tell) and of one forced eigendecomposition (``eigen``, full covariance only), with the peak resident memory
    of the process. ``library`` is ``"dreamlab"`` or ``"pycma"`` (the ``cma`` package; its ``CMA_diagonal`` for
    the diagonal mode); BLAS runs on ``threads`` threads."""
    with threadpool_limits(limits=threads):
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        if library == "dreamlab":
            es = CMAES(np.ones(n), 1.0, seed=0, covariance=covariance)
        else:
            import cma

            es = cma.CMAEvolutionStrategy(
                np.ones(n), 1.0, {"verbose": -9, "seed": 1, "CMA_diagonal": covariance == "diagonal"}
            )
        setup = time.perf_counter() - start
        seconds = []
        for _ in range(generations):
            start = time.perf_counter()
            X = es.ask()
            es.tell(X, sphere(np.asarray(X)) if library == "dreamlab" else sphere(np.asarray(X)).tolist())
            seconds.append(time.perf_counter() - start)
        result = {"setup_seconds": setup, "generation_seconds": seconds}
        if covariance == "full" and eigen:
            start = time.perf_counter()
            if library == "dreamlab":
                es._decompose()
                result["eigen_interval"] = es.params.eigen_interval
            else:
                es.sm.update_now(-1)  # pycma's forced _updateC + _decompose_C
                result["eigen_interval"] = math.ceil(es.sm.lazy_update_gap)
            result["eigendecomposition_seconds"] = time.perf_counter() - start
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["rss_before_mib"] = base_rss / 1024
    return result

"""Mapping a function over many items: in-process, on local worker processes, or on a Ray cluster.

The same ``pool.map(fn, items)`` call serves a laptop (local processes, the default) and a cluster
(``ray_address="auto"`` or ``"ray://host:port"``), so rollouts and fitness evaluations scale without code changes.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _exit_with_parent(parent_pid: int) -> None:
    # A worker whose parent was killed (SIGKILL, or SIGTERM without cleanup) would otherwise wait forever on its
    # task queue; a re-parented worker sees a new parent id and leaves.
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)


def _init_worker(parent_pid: int) -> None:
    # One intra-op thread per worker process: the processes already use every core.
    import torch

    torch.set_num_threads(1)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


class WorkerPool:
    """A pool of workers with an ordered ``map``.

    ``workers=0`` runs everything in this process (debugging, tests); ``workers=None`` uses one process per core.
    ``ray_address`` sends the work to a Ray cluster instead (``pip install dreamlab[ray]``). Functions must be
    importable top-level functions, since local workers are spawned fresh (spawn is safe with torch and OpenMP).
    """

    def __init__(self, workers: int | None = None, ray_address: str | None = None):
        if workers is not None and workers < 0:
            raise ValueError(f"workers must be >= 0 or None, got {workers}")
        self.workers = os.cpu_count() or 1 if workers is None else workers
        self.ray_address = ray_address or None
        self._executor: ProcessPoolExecutor | None = None
        self._ray: Any = None
        self._remote_cache: dict[Callable, Any] = {}

    def __enter__(self) -> WorkerPool:
        if self.ray_address:
            try:
                import ray
            except ImportError as err:
                raise ImportError("ray_address given but Ray is not installed: pip install 'dreamlab[ray]'") from err
            ray.init(address=self.ray_address, ignore_reinit_error=True, log_to_driver=False)
            self._ray = ray
        elif self.workers > 0:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(os.getpid(),),
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``[fn(item) for item in items]``, computed by the pool, in order."""
        items = list(items)
        if self._ray is not None:
            remote = self._remote_cache.setdefault(fn, self._ray.remote(fn))
            return self._ray.get([remote.remote(item) for item in items])
        if self._executor is None:
            if self.workers > 0:
                raise RuntimeError("WorkerPool.map called outside 'with WorkerPool(...) as pool:'")
            return [fn(item) for item in items]
        chunksize = max(1, math.ceil(len(items) / (4 * self.workers)))
        return list(self._executor.map(fn, items, chunksize=chunksize))

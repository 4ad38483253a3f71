"""Mapping a function over many items: in-process, on local worker processes, or on a Ray cluster.

The same ``pool.map(fn, items)`` call serves a laptop (local processes, the default) and a cluster
(``ray_address="auto"`` or ``"ray://host:port"``), so rollouts and fitness evaluations scale without code changes.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _exit_with_parent(parent_pid: int) -> None:
    # A worker whose parent was killed (SIGKILL, or SIGTERM without cleanup) would otherwise wait forever on its
    # task queue; a re-parented worker sees a new parent id and leaves, taking its process group along.
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _init_worker(parent_pid: int, worker_pids: Any) -> None:
    # Each worker leads its own process group, which holds the processes it starts (a ViZDoom engine is one). A
    # worker that dies or is stopped then takes them along, instead of leaving orphans that hold the parent's
    # pipes open. The pool learns the group ids through ``worker_pids``.
    os.setpgrp()
    worker_pids.put(os.getpid())
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
        self._worker_pids: Any = None  # a queue the workers put their pids (= process group ids) on
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
            context = multiprocessing.get_context("spawn")
            self._worker_pids = context.SimpleQueue()
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(os.getpid(), self._worker_pids),
            )
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None:
            # Workers lead their own process groups, so a Ctrl-C in the terminal does not reach them: stop them here
            # rather than wait for their running tasks.
            self._stop_workers()
        self.close()

    def _stop_workers(self) -> None:
        """SIGKILL every worker's process group: the workers and any process they started."""
        if self._worker_pids is None:
            return
        while not self._worker_pids.empty():
            # ProcessLookupError: that worker and everything it started have already gone.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._worker_pids.get(), signal.SIGKILL)

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
        try:
            return list(self._executor.map(fn, items, chunksize=chunksize))
        except BrokenProcessPool as err:
            self._stop_workers()
            raise RuntimeError(
                f"a worker process died while running {fn.__module__}.{fn.__qualname__} on {len(items)} items "
                "(a crash, a kill signal or running out of memory); the pool stopped its other workers and every "
                "process they had started"
            ) from err

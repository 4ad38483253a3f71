"""Mapping a function over many items: in-process, on local worker processes, or on a Ray cluster.

The same ``pool.map(fn, items)`` call serves a laptop (local processes, the default) and a cluster
(``ray_address="auto"`` or ``"ray://host:port"``), so rollouts and fitness evaluations scale without code changes.
``pool.map(fn, items, shared=obj)`` calls ``fn(obj, item)`` and ships ``obj`` (an agent's weights, say) once per
call instead of once per item: pickled once and sent once to each local worker, or ``ray.put`` once on Ray.

Failures end a map, never hang it:

- an exception in a task is raised in the driver as a :class:`TaskError` naming the function and the item
  (its index and repr), chained to the worker's exception and its traceback (a :class:`UserError` stays one);
- a local worker that dies (a crash, a kill signal, the out-of-memory killer) fails the map at once with a
  :class:`WorkerDiedError`; it is not retried, since a task that ran out of memory would only die again. On Ray,
  a task whose worker or node died is retried ``RAY_MAX_RETRIES`` times (a node going away is routine on a
  cluster), while an exception raised by the task itself is not retried (it is a bug or a bad input);
- after a failed map, and when the pool closes, every local worker is gone with every process it started (each
  worker leads its own process group, which the pool kills); a stuck worker gets a bounded wait, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Ray re-runs a task whose worker process or node died this many times; exceptions the task raises are not retried.
RAY_MAX_RETRIES = 3
# How often a map checks that its busy local workers are still alive.
DEATH_POLL_S = 1.0
# How long close() waits for idle local workers to exit before it kills them.
CLOSE_TIMEOUT_S = 5.0

_NOT_SHARED = object()  # map(..., shared=<not given>): fn takes the item alone


class TaskError(RuntimeError):
    """A task of :meth:`WorkerPool.map` raised: the message names the function and item, ``__cause__`` is the
    worker's exception (its ``__cause__`` in turn holds the worker's traceback as text)."""


class WorkerDiedError(RuntimeError):
    """A worker process died while running a task (a crash, a kill signal or running out of memory)."""


class _RemoteTraceback(Exception):
    # Shown under the worker's exception so the driver's traceback includes where the worker failed.
    def __str__(self) -> str:
        return str(self.args[0])


def describe_task(fn: Callable, index: int | None, item: Any = None) -> str:
    """``module.function on item 3 (repr)``, the repr cut to 200 characters (items can carry weights)."""
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    if index is None:
        return name
    text = repr(item)
    return f"{name} on item {index} ({text[:200] + '...' if len(text) > 200 else text})"


def _task_error(fn: Callable, index: int, item: Any, cause: BaseException) -> Exception:
    # Imported here: dreamlab.runs imports torch, which a worker running torch-free tasks need not load.
    from dreamlab.runs import UserError

    message = f"{describe_task(fn, index, item)} failed: {type(cause).__name__}: {cause}"
    # A user mistake found inside a worker is still one: @cli prints it as a single line.
    return UserError(message) if isinstance(cause, UserError) else TaskError(message)


# ---------------------------------------------------------------------------------------------------------------
# Local worker processes


def _exit_with_parent(parent_pid: int) -> None:
    # A worker whose parent was killed (SIGKILL, or SIGTERM without cleanup) would otherwise run its task to the
    # end; a re-parented worker sees a new parent id and leaves, taking its process group along.
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _portable(err: BaseException) -> BaseException:
    """``err`` if it survives pickling, else a RuntimeError with its type and message."""
    try:
        return pickle.loads(pickle.dumps(err))
    except Exception:
        return RuntimeError(f"{type(err).__module__}.{type(err).__qualname__}: {err}")


def _keep_fds_from_children() -> None:
    # A spawned worker holds its pipes to the pool (and the pipe whose closing tells the pool it exited) as
    # inheritable descriptors. A game engine it starts would inherit them and keep them open after the worker died,
    # so the pool would neither read EOF nor see the exit: mark them close-on-exec.
    for name in os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"):
        with contextlib.suppress(OSError):
            if int(name) > 2:
                os.set_inheritable(int(name), False)


def _exited(pid: int) -> bool:
    """Whether child ``pid`` has exited, without reaping it (its pid, and so its group id, stays reserved)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _worker_main(conn: Connection, parent_pid: int) -> None:
    """A worker's loop: receive ``("shared", token, bytes)`` or ``("task", fn, token, [(index, item), ...])``,
    answer ``("done", results)`` or ``("error", index, exception, traceback)``; ``None`` or EOF ends it."""
    # The worker leads its own process group, which holds the processes it starts (a ViZDoom engine is one): the
    # pool kills the group, so nothing a worker started outlives it. Ctrl-C in the terminal therefore does not
    # reach workers; the pool stops them.
    os.setpgrp()
    _keep_fds_from_children()
    # One intra-op thread per worker: the processes already use every core. Torch reads the variable when it is
    # imported; a torch the main module already imported is set directly.
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    shared: Any = None
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        except Exception as err:  # a task whose function or items do not unpickle here
            conn.send(("error", None, _portable(err), traceback.format_exc()))
            continue
        if message is None:
            return
        if message[0] == "shared":
            shared = pickle.loads(message[2])
            continue
        _, fn, token, chunk = message
        results = []
        for index, item in chunk:
            try:
                results.append(fn(item) if token is None else fn(shared, item))
            except BaseException as err:
                conn.send(("error", index, _portable(err), traceback.format_exc()))
                break
        else:
            try:
                answer = pickle.dumps(("done", results), pickle.HIGHEST_PROTOCOL)
            except Exception as err:
                conn.send(("error", chunk[0][0], _portable(err), traceback.format_exc()))
            else:
                conn.send_bytes(answer)


@dataclass(eq=False)
class _Worker:
    process: Any  # multiprocessing.Process
    conn: Connection
    shared_token: int | None = None  # which map's shared object this worker holds
    chunk: list = field(default_factory=list)  # the (index, item) pairs it is running


def _kill_group(pid: int) -> None:
    # Safe against pid reuse: the worker is our child and not yet reaped (joined), so its pid and group id are
    # still its own. Killing the process as well covers a worker stopped before it could call setpgrp.
    for kill, target in ((os.killpg, pid), (os.kill, pid)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(target, signal.SIGKILL)


class WorkerPool:
    """A pool of workers with an ordered ``map``.

    ``workers=0`` runs everything in this process (debugging, tests: exceptions propagate unchanged);
    ``workers=None`` uses one process per core. ``ray_address`` sends the work to a Ray cluster instead
    (``pip install dreamlab[ray]``); ``workers`` then becomes the cluster's CPU count, which callers use to size
    their jobs. Functions must be importable top-level functions, since local workers are
    spawned fresh (spawn is safe with torch and OpenMP). Use it as a context manager: leaving the block closes the
    workers (at once if the block raised).
    """

    def __init__(self, workers: int | None = None, ray_address: str | None = None):
        if workers is not None and workers < 0:
            raise ValueError(f"workers must be >= 0 or None, got {workers}")
        self.workers = os.cpu_count() or 1 if workers is None else workers
        self.ray_address = ray_address or None
        self._local: list[_Worker] = []
        self._entered = False
        self._tokens = itertools.count()
        self._ray: Any = None
        self._remote_cache: dict[Callable, Any] = {}

    def __enter__(self) -> WorkerPool:
        self._entered = True
        if self.ray_address:
            try:
                import ray
            except ImportError as err:
                raise ImportError("ray_address given but Ray is not installed: pip install 'dreamlab[ray]'") from err
            ray.init(address=self.ray_address, ignore_reinit_error=True, log_to_driver=False)
            self._ray = ray
            # Callers split work into a few jobs per worker: on a cluster that means per CPU of the cluster.
            self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        elif self.workers > 0:
            try:
                self._start_workers()
            except BaseException:  # __exit__ will not run: stop the workers already started
                self._kill_workers()
                raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        # After an error (Ctrl-C included) running tasks are abandoned: stop the workers instead of waiting.
        self.close(timeout=0.0 if exc_type is not None else CLOSE_TIMEOUT_S)

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Ask idle workers to exit, wait up to ``timeout`` seconds, then kill every worker's process group."""
        for worker in self._local:
            if not worker.chunk:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
        deadline = time.monotonic() + timeout
        pending = [w.process.sentinel for w in self._local]
        while pending and (left := deadline - time.monotonic()) > 0:
            done = wait(pending, timeout=left)
            pending = [s for s in pending if s not in done]
        self._kill_workers()
        self._entered = False

    def _start_workers(self) -> None:
        context = multiprocessing.get_context("spawn")
        for _ in range(self.workers):
            parent_end, child_end = context.Pipe()
            process = context.Process(target=_worker_main, args=(child_end, os.getpid()), daemon=True)
            process.start()
            child_end.close()  # so that the worker's death reads as EOF here
            self._local.append(_Worker(process, parent_end))

    def _kill_workers(self) -> None:
        """SIGKILL every worker's process group (the worker and what it started), then reap the workers."""
        for worker in self._local:
            _kill_group(worker.process.pid)
        for worker in self._local:
            worker.process.join()
            worker.conn.close()
        self._local = []

    def map(self, fn: Callable[..., R], items: Iterable[T], shared: Any = _NOT_SHARED) -> list[R]:
        """``[fn(item) for item in items]``, or ``[fn(shared, item) ...]`` when ``shared`` is given, computed by
        the pool, in order. ``shared`` is sent once per call, however many items there are."""
        items = list(items)
        if self._ray is not None:
            return self._map_ray(fn, items, shared)
        if self.workers == 0:
            return [fn(item) if shared is _NOT_SHARED else fn(shared, item) for item in items]
        if not self._entered:
            raise RuntimeError("WorkerPool.map called outside 'with WorkerPool(...) as pool:'")
        if not items:
            return []
        if not self._local:  # a failed map stopped the workers: start fresh ones
            self._start_workers()
        try:
            return self._map_local(fn, items, shared)
        except BaseException:
            # The map is abandoned (a task failed, a worker died, or Ctrl-C): the other workers' running tasks
            # would only be waited for, so stop them and everything they started.
            self._kill_workers()
            raise

    def _map_local(self, fn: Callable, items: Sequence, shared: Any) -> list:
        chunksize = max(1, math.ceil(len(items) / (4 * self.workers)))
        indexed = list(enumerate(items))
        todo = deque(indexed[start : start + chunksize] for start in range(0, len(items), chunksize))
        token, shared_bytes = None, b""
        if shared is not _NOT_SHARED:
            # Pickled once here and sent once to each worker that takes a chunk, rather than once per item.
            token, shared_bytes = next(self._tokens), pickle.dumps(shared, pickle.HIGHEST_PROTOCOL)
        results: list = [None] * len(items)
        while todo or any(w.chunk for w in self._local):
            for worker in self._local:
                if todo and not worker.chunk:
                    worker.chunk = todo.popleft()
                    self._send_chunk(fn, worker, token, shared_bytes)
            busy = [w for w in self._local if w.chunk]
            # The timeout is a safety net for a death the pipes do not show (a process that inherited a worker's
            # descriptors outliving it): each wake-up also checks whether a busy worker exited.
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=DEATH_POLL_S)
            for worker in busy:
                # An answer is read before a death is believed: a worker may answer and then be killed.
                if worker.conn in ready or worker.conn.poll():
                    self._receive(fn, worker, results)
                elif worker.process.sentinel in ready or _exited(worker.process.pid):
                    raise self._died(fn, worker)
        return results

    def _send_chunk(self, fn: Callable, worker: _Worker, token: int | None, shared_bytes: bytes) -> None:
        try:
            if token is not None and worker.shared_token != token:
                worker.conn.send(("shared", token, shared_bytes))
                worker.shared_token = token
            worker.conn.send(("task", fn, token, worker.chunk))
        except (BrokenPipeError, ConnectionResetError):
            raise self._died(fn, worker) from None

    def _receive(self, fn: Callable, worker: _Worker, results: list) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, ConnectionResetError):
            raise self._died(fn, worker) from None
        if message[0] == "done":
            for (index, _), result in zip(worker.chunk, message[1], strict=True):
                results[index] = result
            worker.chunk = []
            return
        _, index, err, text = message
        err.__cause__ = _RemoteTraceback(f'\n"""\n{text}"""')
        if index is None:
            first, last = worker.chunk[0][0], worker.chunk[-1][0]
            raise TaskError(f"{describe_task(fn, None)} on items {first}..{last} could not start: {err}") from err
        raise _task_error(fn, index, dict(worker.chunk)[index], err) from err

    @staticmethod
    def _died(fn: Callable, worker: _Worker) -> WorkerDiedError:
        indices = [index for index, _ in worker.chunk]
        return WorkerDiedError(
            f"a worker process died while running {describe_task(fn, None)} on items {indices} "
            "(a crash, a kill signal or running out of memory); the pool stopped its other workers and every "
            "process they had started"
        )

    # -----------------------------------------------------------------------------------------------------------
    # Ray

    def _map_ray(self, fn: Callable, items: Sequence, shared: Any) -> list:
        ray = self._ray
        if fn not in self._remote_cache:
            # A dead worker or node is retried; an exception from fn is not (retrying a bug only repeats it).
            self._remote_cache[fn] = ray.remote(max_retries=RAY_MAX_RETRIES, retry_exceptions=False)(fn)
        remote = self._remote_cache[fn]
        # One ray.put per call: each node fetches the object once and every task on it reads the same copy.
        head = () if shared is _NOT_SHARED else (ray.put(shared),)
        refs = [remote.remote(*head, item) for item in items]
        index_of = {ref: index for index, ref in enumerate(refs)}
        results: list = [None] * len(items)
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    results[index_of[ref]] = self._ray_result(fn, ref, index_of[ref], items)
        except BaseException:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)  # interrupts the task (KeyboardInterrupt there), so its finally blocks run
            raise
        return results

    def _ray_result(self, fn: Callable, ref: Any, index: int, items: Sequence) -> Any:
        from ray.exceptions import RayError, RayTaskError

        try:
            return self._ray.get(ref)
        except RayTaskError as err:
            cause = err.cause if isinstance(err.cause, BaseException) else err
            raise _task_error(fn, index, items[index], cause) from err
        except RayError as err:
            raise WorkerDiedError(
                f"{describe_task(fn, index, items[index])} failed on Ray after {RAY_MAX_RETRIES} retries: "
                f"{type(err).__name__}: {err}"
            ) from err

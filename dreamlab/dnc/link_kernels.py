"""The dense link step of the DNC (Graves et al. 2016, Methods "Temporal memory linkage") as numba CPU kernels.

Each kernel makes one pass over the (B, N, N) link matrix, a row at a time, in one vectorised loop per row: the
row of L_t (forward) or of its total gradient (backward) is formed once, in registers, and every product that
needs it (the read weightings f_t, b_t; the gradients of w^w, p_{t-1}, w^r_{t-1} and L_{t-1}) is accumulated
from it. The loop handles `HEADS` read heads written out, which is what lets it vectorise. In
torch the same step is ~13 element-wise passes over 4 MB tensors plus skinny (B, R, N) x (B, N, N) products
that BLAS runs far below peak. The kernels release the GIL; :func:`run_split` runs them on slices of the batch
in as many threads as torch uses (the batch elements are independent, so the results do not depend on it).

The (B, N, N) outputs come from :class:`BufferPool`: on a CPU a fresh 4 MB tensor costs more than the whole
kernel (the pages are unmapped and the kernel faults and zeroes each one: ~2 ms per 4 MB on the machine of
record, against ~0.2 ms to fill a warm buffer).

Arrays are float32 or float64, C-contiguous, all of one dtype; ``keep`` is 1 - w^w, passed in so that no Python
float literal promotes float32 arithmetic to float64. Outputs that accumulate (f_t, b_t and the gradients of
the vectors) must arrive zeroed. Compiled on first use per dtype and cached next to this file (``__pycache__``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch
from torch import Tensor

HEADS = 4  # read heads per kernel call: fewer are padded with all-zero weightings; more take the torch path


@numba.njit(cache=True, nogil=True, fastmath=True)
def link_step_forward(
    prev_link: np.ndarray,
    keep: np.ndarray,
    write: np.ndarray,
    precedence: np.ndarray,
    read: np.ndarray,
    link: np.ndarray,
    forward: np.ndarray,
    backward: np.ndarray,
) -> None:
    """link = L_t, forward[:, r] = L_t w^r, backward[:, r] = L_t^T w^r (forward, backward zeroed on entry).

    L_t[i, j] = (1 - w[i] - w[j]) L_{t-1}[i, j] + w[i] p_{t-1}[j] for i != j, L_t[i, i] = 0; every element of
    link is written, so it may arrive uninitialised. The loop over a row runs over the diagonal too (a branch
    there would stop it vectorising) and takes the diagonal's contributions back afterwards.
    prev_link, link (B, N, N); keep = 1 - w, write, precedence (B, N); read, forward, backward (B, HEADS, N).
    """
    batch, slots, _ = prev_link.shape
    for b in range(batch):
        w, p = write[b], precedence[b]
        r0, r1, r2, r3 = read[b, 0], read[b, 1], read[b, 2], read[b, 3]
        b0, b1, b2, b3 = backward[b, 0], backward[b, 1], backward[b, 2], backward[b, 3]
        for i in range(slots):
            w_i, keep_i = w[i], keep[b, i]
            x0, x1, x2, x3 = r0[i], r1[i], r2[i], r3[i]
            prev_row, row = prev_link[b, i], link[b, i]
            f0 = f1 = f2 = f3 = keep_i - keep_i  # zero in the arrays' dtype (a literal 0.0 would be float64)
            for j in range(slots):
                value = (keep_i - w[j]) * prev_row[j] + w_i * p[j]
                row[j] = value
                f0 += value * r0[j]  # f[r, i] = sum_j L[i, j] w[r, j]
                f1 += value * r1[j]
                f2 += value * r2[j]
                f3 += value * r3[j]
                b0[j] += value * x0  # b[r, j] = sum_i L[i, j] w[r, i]
                b1[j] += value * x1
                b2[j] += value * x2
                b3[j] += value * x3
            value = row[i]
            row[i] = 0
            b0[i] -= value * x0
            b1[i] -= value * x1
            b2[i] -= value * x2
            b3[i] -= value * x3
            forward[b, 0, i] = f0 - value * x0
            forward[b, 1, i] = f1 - value * x1
            forward[b, 2, i] = f2 - value * x2
            forward[b, 3, i] = f3 - value * x3


@numba.njit(cache=True, nogil=True, fastmath=True)
def link_step_backward(
    grad_link: np.ndarray,
    grad_forward: np.ndarray,
    grad_backward: np.ndarray,
    prev_link: np.ndarray,
    keep: np.ndarray,
    write: np.ndarray,
    precedence: np.ndarray,
    read: np.ndarray,
    need_prev_link: bool,
    grad_prev_link: np.ndarray,
    grad_write: np.ndarray,
    grad_precedence: np.ndarray,
    grad_read: np.ndarray,
) -> None:
    """Gradients of `link_step_forward`'s inputs from those of its outputs (the vectors' zeroed on entry).

    With G = dLoss/dL_t in total, G[i, j] = grad_link[i, j] + sum_r (grad_f[r, i] w^r[j] + w^r[i] grad_b[r, j])
    for i != j and G[i, i] = 0 (L_t[i, i] is a constant):
    dL_{t-1}[i, j] = G[i, j] (1 - w[i] - w[j]); dw[i] = sum_j G[i, j] (p[j] - L_{t-1}[i, j]) - sum_k G[k, i]
    L_{t-1}[k, i]; dp[j] = sum_i G[i, j] w[i]; dw^r[r, j] = sum_i grad_f[r, i] L_t[i, j] + sum_k grad_b[r, k]
    L_t[j, k]. Rows of L_t are recomputed from L_{t-1}, which is read anyway: one (B, N, N) stream less from
    memory than reading L_t. As in the forward, the diagonal's contributions are taken back after each row.
    grad_prev_link is written (every element) only if need_prev_link. Head arrays are (B, HEADS, N).
    """
    batch, slots, _ = prev_link.shape
    for b in range(batch):
        w, p, grad_w, grad_p = write[b], precedence[b], grad_write[b], grad_precedence[b]
        r0, r1, r2, r3 = read[b, 0], read[b, 1], read[b, 2], read[b, 3]
        gb0, gb1, gb2, gb3 = grad_backward[b, 0], grad_backward[b, 1], grad_backward[b, 2], grad_backward[b, 3]
        gr0, gr1, gr2, gr3 = grad_read[b, 0], grad_read[b, 1], grad_read[b, 2], grad_read[b, 3]
        for i in range(slots):
            f0, f1, f2, f3 = grad_forward[b, 0, i], grad_forward[b, 1, i], grad_forward[b, 2, i], grad_forward[b, 3, i]
            x0, x1, x2, x3 = r0[i], r1[i], r2[i], r3[i]
            w_i, keep_i = w[i], keep[b, i]
            grad_row, prev_row, out_row = grad_link[b, i], prev_link[b, i], grad_prev_link[b, i]
            row_total = t0 = t1 = t2 = t3 = keep_i - keep_i  # zero in the arrays' dtype
            for j in range(slots):
                grad = grad_row[j] + f0 * r0[j] + x0 * gb0[j] + f1 * r1[j] + x1 * gb1[j]
                grad += f2 * r2[j] + x2 * gb2[j] + f3 * r3[j] + x3 * gb3[j]
                prev, decay = prev_row[j], keep_i - w[j]
                row_total += grad * (p[j] - prev)
                grad_w[j] -= grad * prev
                grad_p[j] += grad * w_i
                if need_prev_link:
                    out_row[j] = grad * decay
                value = decay * prev + w_i * p[j]  # L_t[i, j]
                gr0[j] += f0 * value
                gr1[j] += f1 * value
                gr2[j] += f2 * value
                gr3[j] += f3 * value
                t0 += gb0[j] * value
                t1 += gb1[j] * value
                t2 += gb2[j] * value
                t3 += gb3[j] * value
            grad = grad_row[i] + f0 * r0[i] + x0 * gb0[i] + f1 * r1[i] + x1 * gb1[i]
            grad += f2 * r2[i] + x2 * gb2[i] + f3 * r3[i] + x3 * gb3[i]
            prev = prev_row[i]
            value = (keep_i - w_i) * prev + w_i * p[i]
            if need_prev_link:
                out_row[i] = 0
            grad_w[i] += row_total - grad * (p[i] - prev) + grad * prev
            grad_p[i] -= grad * w_i
            gr0[i] += t0 - gb0[i] * value - f0 * value
            gr1[i] += t1 - gb1[i] * value - f1 * value
            gr2[i] += t2 - gb2[i] * value - f2 * value
            gr3[i] += t3 - gb3[i] * value - f3 * value


def _references(arrays: list[np.ndarray], index: int) -> int:
    return sys.getrefcount(arrays[index])


# What `_references` counts for an array only the list holds (interpreter-dependent, so measured).
_UNREFERENCED = _references([np.empty(0)], 0)


def _free(arrays: list[np.ndarray], index: int) -> bool:
    """Whether nothing but the list refers to arrays[index] (a local name bound to it would count too)."""
    return _references(arrays, index) == _UNREFERENCED


class BufferPool:
    """Warm, uninitialised CPU tensors of one shape and dtype, reused once nothing refers to them any more.

    Each tensor shares the memory of a numpy array that the pool keeps (``torch.from_numpy``), and the tensor's
    storage holds a reference to that array until the last tensor or view using it is freed, wherever it lives
    (a saved tensor of autograd, a state the caller kept, a gradient a hook kept). An array whose only reference
    is the pool's is free. The pool grows to the most buffers alive at once (about T over a training sequence
    of T steps) and keeps them; asking for another shape or dtype drops the free buffers of the old one.
    """

    def __init__(self) -> None:
        self._arrays: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._kind: tuple[tuple[int, ...], np.dtype] | None = None  # of the last request
        self._mixed = False  # whether buffers of an older kind, in use at the change, are still kept
        self.allocations = 0  # arrays allocated so far: constant once a workload's buffers are all warm

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """An uninitialised C-contiguous CPU tensor of this shape and dtype (float32 or float64)."""
        numpy_dtype = np.dtype(np.float32 if dtype == torch.float32 else np.float64)
        arrays = self._arrays
        with self._lock:  # the free check and the new reference (from_numpy) happen together
            if self._mixed or self._kind != (shape, numpy_dtype):  # a sweep only while other kinds remain
                for k in reversed(range(len(arrays))):
                    if (arrays[k].shape != shape or arrays[k].dtype != numpy_dtype) and _free(arrays, k):
                        del arrays[k]
                self._kind = (shape, numpy_dtype)
                self._mixed = any(a.shape != shape or a.dtype != numpy_dtype for a in arrays)
            # The most recently handed out free buffer first: likely still in the cache (in backward, the
            # gradient buffer of two steps later, so two buffers take turns).
            for k in reversed(range(len(arrays))):
                if arrays[k].shape == shape and arrays[k].dtype == numpy_dtype and _free(arrays, k):
                    arrays.append(arrays.pop(k))
                    break
            else:
                arrays.append(np.empty(shape, dtype=numpy_dtype))
                self.allocations += 1
            return torch.from_numpy(arrays[-1])

    def __len__(self) -> int:
        return len(self._arrays)


LINK_BUFFERS = BufferPool()


class _Workers(threading.local):
    """A thread pool for `run_split`, made again in a forked child (whose copy has no live threads)."""

    executor: ThreadPoolExecutor | None = None
    pid: int | None = None
    size: int = 0

    def get(self, size: int) -> ThreadPoolExecutor:
        if self.executor is None or self.pid != os.getpid() or self.size < size:
            self.executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="dnc-links")
            self.pid, self.size = os.getpid(), size
        return self.executor


_WORKERS = _Workers()


def run_split(kernel: Callable[..., None], *args: np.ndarray | bool, threads: int | None = None) -> None:
    """kernel(*args) over the batch (the first dim of every array) split into ``threads`` slices (default
    torch.get_num_threads()).

    One slice runs on the calling thread, the others on pool threads; the kernels release the GIL.
    """
    batch = next(a.shape[0] for a in args if isinstance(a, np.ndarray))
    threads = min(threads or torch.get_num_threads(), batch)
    if threads == 1:
        kernel(*args)
        return
    bounds = [batch * k // threads for k in range(threads + 1)]

    def part(k: int) -> list[np.ndarray | bool]:
        return [a[bounds[k] : bounds[k + 1]] if isinstance(a, np.ndarray) else a for a in args]

    pending = [_WORKERS.get(threads - 1).submit(kernel, *part(k)) for k in range(1, threads)]
    kernel(*part(0))
    for future in pending:
        future.result()


@contextlib.contextmanager
def torch_on_one_thread() -> Iterator[int]:
    """Inside the block torch runs on one thread; yields the thread count it had, for `run_split`.

    After each parallel region torch's OpenMP threads spin for a while on the cores that `run_split`'s pool
    threads need, so a step whose small products run on all threads right before (or after) its split kernels
    loses most of the split. Process-global like torch.set_num_threads, restored on leaving.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield 1
        return
    torch.set_num_threads(1)
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)

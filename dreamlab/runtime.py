"""Where and in what precision a run computes, and how it is seeded."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from dreamlab.runs import UserError

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into a device that exists on this machine.

    ``auto`` picks the first CUDA device when there is one, else the CPU. A device this machine lacks is a
    :class:`UserError` (one line from an experiment's command line).
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = spec.strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        index_text = spec.partition(":")[2]
        if index_text and not index_text.isdigit():
            raise UserError(f"unknown device {spec!r}: expected auto, cpu, cuda or cuda:N")
        if not torch.cuda.is_available():
            raise UserError(f"--device {spec} requested but CUDA is not available on this machine; use --device cpu")
        index = int(index_text) if index_text else 0
        if index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise UserError(f"--device {spec} requested but this machine has {count} CUDA device(s)")
        return torch.device("cuda", index)
    raise UserError(f"unknown device {spec!r}: expected auto, cpu, cuda or cuda:N")


def resolve_dtype(name: str | torch.dtype) -> torch.dtype:
    """``float32`` (default) or ``float64`` (for chasing NaNs and Infs at twice the cost)."""
    if isinstance(name, torch.dtype):
        if name in _DTYPES.values():
            return name
        raise UserError(f"unsupported dtype {name}: expected float32 or float64")
    try:
        return _DTYPES[name]
    except KeyError:
        raise UserError(f"unknown dtype {name!r}: expected one of {sorted(_DTYPES)}") from None


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch (all devices) and return a NumPy generator for the run's own draws."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def set_threads(threads: int) -> None:
    """Set torch's intra-op threads; 0 keeps torch's default (one per core)."""
    if not isinstance(threads, int) or threads < 0:
        raise ValueError(f"threads must be a non-negative int (0 = torch's default), got {threads!r}")
    if threads:
        torch.set_num_threads(threads)


def autocast(device: torch.device, mode: str = "none") -> contextlib.AbstractContextManager:
    """Mixed precision for a training step's forward pass: ``bf16`` runs matrix products and convolutions in
    bfloat16 under ``torch.autocast`` (losses, reductions and the optimiser stay float32); ``none`` changes nothing.

    bf16 keeps float32's exponent range, so no loss scaling is needed. It pays on GPUs with bf16 tensor cores and on
    CPUs with AVX512-BF16/AMX; elsewhere it may be slower, which is why float32 stays the default.
    """
    if mode == "none":
        return contextlib.nullcontext()
    if mode != "bf16":
        raise UserError(f"--autocast {mode!r} is not one of none, bf16")
    return torch.autocast(device.type, dtype=torch.bfloat16)

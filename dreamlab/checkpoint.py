"""Checkpoints that are written atomically and loaded without unpickling arbitrary objects.

A checkpoint is a nested structure of dicts, lists and tuples holding tensors, NumPy arrays and plain Python
values. It is saved with ``torch.save`` and read back with ``torch.load(weights_only=True)``, whose restricted
unpickler accepts only tensors and primitive containers; NumPy arrays are stored as tensors and restored on load.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dreamlab.files import atomic_write_bytes

FORMAT_VERSION = 1
_NDARRAY_TAG = "__ndarray__"
_WHAT_TO_DO = "delete it to start afresh, or pass another --run_dir"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged, or belongs to a different run configuration."""


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError("object arrays cannot be checkpointed")
        # np.array(order="C"), not np.ascontiguousarray: the latter turns a 0-d array into shape (1,).
        return {_NDARRAY_TAG: torch.from_numpy(np.array(value, order="C", copy=True))}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple):
        # Named tuples are stored as plain tuples (loading builds no custom classes); the owner of the structure
        # restores the names, e.g. with dreamlab.worldmodels.cores.map_state over a fresh initial state.
        return tuple(_encode(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot checkpoint a value of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_NDARRAY_TAG}:
            return value[_NDARRAY_TAG].numpy()
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_decode(v) for v in value)
    return value


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically: an interrupted save leaves the previous checkpoint intact."""
    buffer = io.BytesIO()
    torch.save({"dreamlab_checkpoint": FORMAT_VERSION, "state": _encode(state)}, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; tensors land on ``map_location``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message advises re-running with weights_only=False, i.e. executing whatever the file says: a
        # dreamlab checkpoint never needs that, so the advice is dropped and the refused object named instead.
        refused = re.search(r"GLOBAL (\S+)", str(err))
        what = f"asks to build {refused.group(1)}" if refused else "holds more than tensors and plain values"
        raise CheckpointError(
            f"{path}: not a dreamlab checkpoint: it {what}, so it will not be unpickled; {_WHAT_TO_DO}"
        ) from None
    except Exception as err:  # torch raises many types for a truncated or damaged file; all mean the same here
        reason = str(err).split(". ")[0].strip() or "the file ends early"
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({reason}); {_WHAT_TO_DO}") from err
    if not isinstance(payload, dict) or payload.get("dreamlab_checkpoint") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a dreamlab checkpoint of format {FORMAT_VERSION}; {_WHAT_TO_DO}")
    return _decode(payload["state"])


# Fields that describe where or how a run executes or what its outputs are called, not what it computes: they may
# change between a run and its resumption.
_RUN_ONLY_FIELDS = {
    "name",
    "device",
    "run_dir",
    "results_dir",
    "log_grads",
    "tensorboard",
    "workers",
    "ray_address",
    "torch_threads",  # the RND and DRAW configs' name for threads before it moved into RunConfig
    "threads",
}


class Checkpointer:
    """Save and resume one run's state in ``run_dir/checkpoint.pt``, guarding against resuming another config.

    Fields listed in the config class's ``RESUMABLE_FIELDS`` (typically budgets such as epochs or generations)
    and the run-only fields (device, paths, workers) may differ on resume; any other difference is an error
    naming the fields, because the saved state would not mean what the new config says. A stage of a pipeline
    whose state depends on only some fields passes them as ``depends_on``: then only those are compared. A field
    the saved config lacks (added to the config class later) counts as its default, which is what the old code did.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        config: Any,
        filename: str = "checkpoint.pt",
        depends_on: Iterable[str] | None = None,
    ):
        self.path = Path(run_dir) / filename
        self.config = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
        self._defaults = (
            {f.name: f.default for f in dataclasses.fields(config) if f.default is not dataclasses.MISSING}
            if dataclasses.is_dataclass(config)
            else {}
        )
        self._depends_on = None if depends_on is None else set(depends_on)
        self._may_change = _RUN_ONLY_FIELDS | set(getattr(config, "RESUMABLE_FIELDS", ()))

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
        """The saved state, or ``None`` when this run has no checkpoint yet."""
        if not self.exists():
            return None
        saved = load_checkpoint(self.path, map_location)
        saved_config = saved.get("config", {})
        compared = (
            self._depends_on
            if self._depends_on is not None
            else (set(saved_config) | set(self.config)) - self._may_change
        )
        saved_values = {key: saved_config.get(key, self._defaults.get(key)) for key in compared}
        differing = sorted(key for key in compared if saved_values[key] != self.config.get(key))
        if differing:
            details = ", ".join(f"{k}: {saved_values[k]!r} -> {self.config.get(k)!r}" for k in differing)
            raise CheckpointError(
                f"{self.path} was written by a run with a different config ({details}); "
                "pass another --run_dir, or delete the checkpoint to start afresh"
            )
        return saved["state"]

    def save(self, state: dict[str, Any]) -> Path:
        return save_checkpoint(self.path, {"config": self.config, "state": state})


def state_of(obj: Any) -> Any:
    """What to checkpoint of ``obj``: its ``state_dict()``, or a NumPy/torch generator's state."""
    if isinstance(obj, np.random.Generator):
        return obj.bit_generator.state
    if isinstance(obj, torch.Generator):
        return obj.get_state()
    return obj.state_dict()


def restore_state(obj: Any, state: Any) -> None:
    """Put ``obj`` back in a state returned by :func:`state_of`."""
    if isinstance(obj, np.random.Generator):
        obj.bit_generator.state = state
    elif isinstance(obj, torch.Generator):
        obj.set_state(state.cpu())
    else:
        obj.load_state_dict(state)

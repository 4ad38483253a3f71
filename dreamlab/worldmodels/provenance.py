"""What the data on disk was made from, so that no run ever reads another run's data.

World Models caches every expensive artefact -- rollouts, V, the encoded latents, M, the CMA-ES state -- and a
re-run reuses what it finds. Each artefact is therefore tied to what it was computed from:

- the rollout folder holds ``manifest.json`` with the fields that decide what rollout ``i`` is (task, seed,
  repeat_probability, max_steps); a run with other values is refused, naming the fields
  (:func:`dreamlab.worldmodels.rollouts.collect_rollouts`);
- latents live in ``latents_<key>/``, the key a fingerprint of V's weights and of the rollout manifest, so a new V
  (retrained after its checkpoint was deleted, say) encodes into a fresh folder and never reads an old V's latents;
- M's and C's checkpoints record the fingerprint of their inputs (the latents M trained on, the M that C evolved
  in), and a checkpoint computed from other inputs is refused (:class:`StageCheckpointer`): deleting an upstream
  checkpoint can never make a downstream one resume on data it was not computed from.

Folders written before provenance was recorded (no manifest, no input record) are migrated when they verify and
refused otherwise, never reused on trust:

- a rollout folder without a manifest is adopted when its first and last rollouts replay byte for byte from their
  seeds with this run's settings and every episode's length fits ``max_steps`` (a truncated episode is exactly
  ``max_steps`` long, none is longer); the manifest is then written. Otherwise the run stops and says to delete
  the folder or use another ``--data_dir``;
- old ``latents_vae<steps>/`` folders are no longer read (the latents are encoded again, which is cheap);
- an M checkpoint without an input record is adopted when the old ``latents_vae<vae_steps>/`` latents of the first
  and last rollouts equal what this run's V encodes; a C checkpoint without a record is adopted only together with
  such an M. Otherwise the checkpoint is refused with the files to delete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dreamlab.checkpoint import Checkpointer, CheckpointError
from dreamlab.files import atomic_write_json
from dreamlab.runs import RunLock, UserError, check_writable

MANIFEST = "manifest.json"
_INPUTS_KEY = "provenance_inputs"


def fingerprint(*parts: Any) -> str:
    """A short hex digest of ``parts``: JSON-able values, tensors, arrays and modules (by their weights)."""
    digest = hashlib.sha256()
    for part in parts:
        _update(digest, part)
    return digest.hexdigest()[:16]


def _update(digest: Any, part: Any) -> None:
    if isinstance(part, torch.nn.Module):
        for name, tensor in part.state_dict().items():
            digest.update(name.encode())
            _update(digest, tensor)
    elif isinstance(part, torch.Tensor):
        tensor = part.detach().cpu().contiguous()
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(part, np.ndarray):
        array = np.ascontiguousarray(part)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    else:
        digest.update(json.dumps(part, sort_keys=True).encode())


def read_manifest(folder: str | os.PathLike) -> dict[str, Any] | None:
    """``folder/manifest.json``, or ``None`` when the folder has none."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{path} is damaged ({err}); delete {Path(folder)} to build it afresh") from None


def write_manifest(folder: str | os.PathLike, fields: dict[str, Any]) -> None:
    atomic_write_json(Path(folder) / MANIFEST, fields)


def differences(saved: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """``"field saved -> expected"`` for every field whose values differ."""
    keys = sorted(set(saved) | set(expected))
    return [f"{k} {saved.get(k)!r} -> {expected.get(k)!r}" for k in keys if saved.get(k) != expected.get(k)]


class StageCheckpointer(Checkpointer):
    """A pipeline stage's checkpoint tied to the fingerprint of its inputs as well as to config fields.

    ``inputs`` is saved with the state; a checkpoint recording other inputs is refused, naming ``what`` the inputs
    are. A checkpoint written before inputs were recorded is adopted only if ``adopt_legacy()`` verifies it (then
    ``adopted_legacy`` is set and the checkpoint is saved again with its inputs), and refused otherwise.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        config: Any,
        filename: str,
        depends_on: Iterable[str],
        inputs: str,
        what: str,
        adopt_legacy: Callable[[], bool] = lambda: False,
    ):
        super().__init__(folder, config, filename=filename, depends_on=depends_on)
        self.inputs, self.what, self.adopt_legacy = inputs, what, adopt_legacy
        self.adopted_legacy = False

    def load(self, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
        state = super().load(map_location)
        if state is None:
            return None
        recorded = state.pop(_INPUTS_KEY, None)
        if recorded is None:
            if self.adopt_legacy():
                self.adopted_legacy = True
                self.save(state)  # adopted once: from now on the checkpoint records its inputs
                return state
            raise CheckpointError(
                f"{self.path} was written before checkpoints recorded their inputs and its {self.what} cannot be "
                "verified; delete it and the later stages' checkpoints to recompute them, or use another --run_dir"
            )
        if recorded != self.inputs:
            raise CheckpointError(
                f"{self.path} was computed from other {self.what} ({recorded}, this run's are {self.inputs}); "
                "delete it and the later stages' checkpoints to recompute them, or use another --run_dir"
            )
        return state

    def save(self, state: dict[str, Any]) -> Path:
        return super().save({**state, _INPUTS_KEY: self.inputs})


class DataDirLock(RunLock):
    """An exclusive lock on ``data_dir/.data.lock`` while a run collects or trains what the data dir holds.

    It is separate from the run lock, so a run whose data dir is another run's run dir may prepare its data while
    that run is past its data stages (both then only read it).
    """

    FILENAME = ".data.lock"


@contextlib.contextmanager
def data_dir_lock(data_dir: str | os.PathLike) -> Iterator[None]:
    """Hold :class:`DataDirLock` on ``data_dir``; a second run preparing the same data stops at once, naming the pid."""
    check_writable(data_dir, "data directory")  # so that the only refusal left below is the lock's
    lock = DataDirLock(data_dir)
    try:
        lock.acquire()
    except UserError:
        raise UserError(
            f"data directory {data_dir} is being prepared by pid {lock.holder() or 'another process'}; wait for its "
            "rollouts, V and latents to be ready, or pass another --data_dir"
        ) from None
    try:
        yield
    finally:
        lock.release()

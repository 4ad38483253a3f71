"""What every run does before and around its work: fail fast on a user's mistake, hold a lock on its run directory,
check that it can write where it will write, and stop on non-finite numbers.

- :class:`UserError` is a mistake the user can fix (a bad flag, a missing GPU, an unwritable folder, a checkpoint
  of another run). :func:`cli` turns it into one line on stderr and exit code 2; a bug keeps its traceback.
- :class:`RunLock` is an advisory ``flock`` on ``run_dir/.lock`` held for the run's life: the kernel releases it
  when the process dies, however it dies, so a crashed run never leaves a stale lock behind, and a second run on
  the same directory stops at once naming the holder's pid.
- :func:`check_writable` proves a folder writable (creating it) before any work starts.
- :func:`check_finite_module` and :class:`NonFiniteError` are the numeric-health checks: a model is checked when
  it is loaded and after its last update, so a broken model never produces a result.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])

# A full disk, an exhausted quota or a read-only file system: the user's to fix, not a bug.
_FULL_OR_READ_ONLY = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


class UserError(ValueError):
    """A mistake the user can fix; its message is one line naming the problem and what to do."""


class NonFiniteError(RuntimeError):
    """A parameter, loss or state became NaN or infinite: the run stops rather than produce a meaningless result."""


def cli(main: F) -> F:
    """Wrap an experiment's ``main``: a :class:`UserError`, a refused checkpoint or a full (or read-only) disk
    prints ``error: <message>`` on stderr and exits with code 2 before any traceback; a run stopped by NaN or
    infinite numbers (:class:`NonFiniteError`) prints its one line and exits with code 1, writing no result; every
    other exception propagates as a bug would."""
    from dreamlab.checkpoint import CheckpointError

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except (UserError, CheckpointError) as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        except NonFiniteError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        except OSError as err:
            if err.errno not in _FULL_OR_READ_ONLY:
                raise
            print(f"error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    return wrapper  # type: ignore[return-value]


def check_writable(folder: str | os.PathLike, what: str = "directory") -> Path:
    """Create ``folder`` if needed and prove a file can be written in it; :class:`UserError` otherwise."""
    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise UserError(f"{what} {folder} is a file, not a folder; choose another path")
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except UserError:
        raise
    except OSError as err:
        reason = err.strerror or type(err).__name__
        message = f"{what} {folder} is not writable ({reason}); choose another path or fix its permissions"
        raise UserError(message) from err
    return folder


class RunLock:
    """An exclusive advisory lock on ``run_dir/.lock`` for the life of a run (``with RunLock(run_dir): ...``).

    A second process asking for the same directory gets a :class:`UserError` naming the holder's pid at once,
    instead of silently doing the same work twice or resuming from a checkpoint still being written.
    """

    FILENAME = ".lock"

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / self.FILENAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        check_writable(self.path.parent, "run directory")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = self.holder() or "another process"
            raise UserError(
                f"run directory {self.path.parent} is in use by pid {holder}; wait for it to finish, stop it, "
                "or pass another --run_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def holder(self) -> str | None:
        """The pid written by the process that holds (or last held) the lock."""
        with contextlib.suppress(OSError):
            text = self.path.read_text().strip()
            return text or None
        return None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def run_directory(run_dir: str | os.PathLike, *outputs: str | os.PathLike) -> Iterator[Path]:
    """Lock ``run_dir`` and check each output folder writable, all before the run does any work."""
    for folder in outputs:
        check_writable(folder, "output directory")
    with RunLock(run_dir) as lock:
        yield lock.path.parent


def check_finite_module(module: torch.nn.Module, what: str) -> None:
    """Raise :class:`NonFiniteError` naming the first parameter or buffer of ``module`` that is NaN or infinite."""
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise NonFiniteError(
                f"{what}: {name} holds NaN or infinite values; the model is broken (a learning rate too high, or a "
                "damaged checkpoint): retrain it with a smaller learning rate or delete the file"
            )

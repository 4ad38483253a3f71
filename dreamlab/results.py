"""Result files, training curves and stage timings: the evidence a run leaves behind.

A result is ``<results_dir>/<module>/<name>.json`` holding experiment, command, git_commit, wall_seconds, machine,
config and metrics, written next to the run's figures (PNG/GIF) and curves (CSV). ``results_dir`` is the
git-ignored ``runs/results`` unless a run publishes into the repository's ``results/`` with ``--results_dir results``
(``python -m dreamlab.results_index`` then updates ``results/README.md``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from dreamlab.config import RESULTS_DIR, RunConfig, check_results_dir, config_dict
from dreamlab.files import atomic_write_json, atomic_write_text
from dreamlab.runs import UserError


def git_commit(repo: str | os.PathLike | None = None) -> str:
    """HEAD's hash, suffixed ``-dirty`` when the work tree differs from it (untracked files included).

    Left out: the top-level ``results/`` folder (a run writes its curves and figures there before its result file),
    and prose (``docs/`` and Markdown files, often edited while a long run goes on). Neither says whether the code
    that produced a result was committed.
    """
    cwd = Path(repo) if repo else Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--",
                ":/",
                ":(top,exclude)results",
                ":(top,exclude)docs",
                ":(top,exclude)*.md",
            ],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def command_line() -> str:
    """The command that started this process, as a user would retype it."""
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])


def write_result(
    module: str,
    name: str,
    *,
    experiment: str,
    config: RunConfig | Mapping[str, Any],
    metrics: Mapping[str, Any],
    wall_seconds: float,
    stages: Mapping[str, float] | None = None,
    results_dir: str | os.PathLike = RESULTS_DIR,
    command: str | None = None,
) -> Path:
    """Write ``results_dir/module/name.json`` atomically and return its path.

    A ``smoke`` config is refused when ``results_dir`` is the committed ``results/`` (:class:`UserError`).
    """
    if not name or "/" in name:
        raise ValueError(f"result name must be a plain file name, got {name!r}")
    preset = config.preset if isinstance(config, RunConfig) else config.get("preset")
    check_results_dir(results_dir, preset)
    record = {
        "experiment": experiment,
        "command": command or command_line(),
        "git_commit": git_commit(),
        "wall_seconds": round(float(wall_seconds), 3),
        "machine": machine_info(),
        "config": config_dict(config) if isinstance(config, RunConfig) else dict(config),
        "metrics": dict(metrics),
    }
    if stages is not None:
        record["stage_seconds"] = {k: round(float(v), 3) for k, v in stages.items()}
    return atomic_write_json(Path(results_dir) / module / f"{name}.json", record)


class CurveLog:
    """Rows of a training curve kept in memory (and in checkpoints) and rewritten whole as CSV.

    Keeping the rows in the checkpoint rather than appending to a file means a resumed run never duplicates or
    loses a row: the CSV always matches the state the run resumed from.
    """

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        # Called with each new row (dreamlab.progress.track: the live bar and TensorBoard); not saved.
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    def append(self, **row: Any) -> None:
        self.rows.append(row)
        for listener in self.listeners:
            listener(row)

    def column(self, key: str) -> list[Any]:
        return [row[key] for row in self.rows if key in row]

    def to_csv(self, path: str | os.PathLike) -> Path:
        fieldnames: list[str] = []
        for row in self.rows:
            fieldnames.extend(k for k in row if k not in fieldnames)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return atomic_write_text(path, buffer.getvalue())

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> CurveLog:
        """Read a curve written by :meth:`to_csv`; numbers come back as floats, empty cells as missing keys."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no curve file {path}")
        curve = cls()
        for row in csv.DictReader(io.StringIO(path.read_text())):
            curve.append(**{k: _parse_cell(v) for k, v in row.items() if v not in ("", None)})
        return curve

    def state_dict(self) -> dict[str, Any]:
        return {"rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.rows = [dict(r) for r in state["rows"]]


def _parse_cell(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


class StageTimer:
    """Wall seconds per named stage, accumulated across resumed runs.

    Stages may nest: a stage's seconds are its own, without those of the stages opened inside it (the training
    loop's ``train`` holds what a step does outside its trainer's ``collect`` and ``update``), so the stages add up
    to the wall time and :attr:`total` counts no second twice.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._inner: list[float] = []  # per open stage, the seconds of the stages closed inside it

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        self._inner.append(0.0)
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            inner = self._inner.pop()
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed - inner
            if self._inner:
                self._inner[-1] += elapsed

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def state_dict(self) -> dict[str, float]:
        return dict(self.seconds)

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        self.seconds = {k: float(v) for k, v in state.items()}


def find_result(folders: list[Path], name: str, script: str) -> Path:
    """The first of ``folders`` holding the result file ``name``.json; a :class:`UserError` naming the ``script``
    that makes it when none does."""
    for folder in folders:
        if (folder / f"{name}.json").is_file():
            return folder / f"{name}.json"
    searched = " or ".join(str(folder / f"{name}.json") for folder in folders)
    raise UserError(f"no result file {searched}: run {script} --name {name} first")

"""How far a training loop has got, while it runs: a live bar, periodic log lines, and TensorBoard curves.

- :class:`Progress` shows steps done out of a total, their rate, the time left and the latest loss or score. On a
  terminal it is a tqdm bar; when stderr is a file (``nohup``, a batch job, CI) a bar's carriage returns would fill
  the log, so it writes one plain line every ``every_seconds`` instead.
- :class:`MetricsWriter` writes scalars for TensorBoard (``--tensorboard``; ``tensorboard --logdir
  <run_dir>/tensorboard``). TensorBoard is an optional extra (``pip install 'dreamlab[tensorboard]'``), imported
  only when asked for.
- :func:`track` drives both from a :class:`~dreamlab.results.CurveLog`: every row a loop appends to its curve moves
  the bar and reaches TensorBoard, so the live curves are exactly the rows the run saves as CSV.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from dreamlab.results import CurveLog
from dreamlab.runs import UserError

_POSTFIX_VALUES = 4  # the first few numbers of a row: more would push the bar past a terminal's width


class Progress:
    """Progress of one loop towards ``total`` (``None`` when open-ended), counted from ``initial`` (a resumed run's
    step), so the rate and time left describe this process rather than the run's whole history."""

    def __init__(
        self,
        total: int | None,
        desc: str,
        *,
        initial: int = 0,
        unit: str = "step",
        every_seconds: float = 30.0,
        stream: TextIO | None = None,
        bar: bool | None = None,
    ):
        self.total, self.desc, self.unit, self.every_seconds = total, desc, unit, every_seconds
        self.position = self._start = initial
        self.values: dict[str, float] = {}
        self._stream = stream if stream is not None else sys.stderr
        self._started = self._last_line = time.monotonic()
        self._line_position: int | None = None  # position of the last plain line written
        if bar is None:
            bar = self._stream.isatty()
        self._bar = (
            tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self._stream, dynamic_ncols=True)
            if bar
            else None
        )

    def update(self, position: int, **values: float) -> None:
        """The loop reached ``position`` (absolute, not an increment); ``values`` are its latest numbers."""
        self.values = {k: float(v) for k, v in list(values.items())[:_POSTFIX_VALUES]}
        if self._bar is not None:
            self._bar.set_postfix({k: _number(v) for k, v in self.values.items()}, refresh=False)
            self._bar.update(position - self.position)
        self.position = position
        now = time.monotonic()
        if self._bar is None and (self._line_position is None or now - self._last_line >= self.every_seconds):
            self._write_line(now)

    def line(self, now: float | None = None) -> str:
        """The plain progress line: ``desc: 300/1000 steps (30%), 12.5 steps/s, 56s left; loss 0.25``."""
        elapsed = (time.monotonic() if now is None else now) - self._started
        done = self.position - self._start
        rate = done / elapsed if elapsed > 0 else 0.0
        text = f"{self.desc}: {self.position}"
        if self.total:
            text += f"/{self.total} {self._units} ({100 * self.position / self.total:.0f}%)"
        else:
            text += f" {self._units}"
        text += f", {rate:.3g} {self._units}/s"
        if self.total and rate > 0:
            text += f", {_duration((self.total - self.position) / rate)} left"
        if self.values:
            text += "; " + ", ".join(f"{k} {_number(v)}" for k, v in self.values.items())
        return text

    @property
    def _units(self) -> str:
        return self.unit if self.unit.endswith("s") else f"{self.unit}s"  # "env_steps" stays as it is

    def _write_line(self, now: float) -> None:
        print(self.line(now), file=self._stream, flush=True)
        self._last_line, self._line_position = now, self.position

    def close(self) -> None:
        """End the bar, or write the final line if the last one written is out of date."""
        if self._bar is not None:
            self._bar.close()
        elif self._line_position != self.position:
            self._write_line(time.monotonic())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def require_tensorboard() -> None:
    """Raise :class:`UserError` unless the tensorboard package is installed (checked before a run starts)."""
    if importlib.util.find_spec("tensorboard") is None:
        raise UserError("--tensorboard needs the tensorboard package: pip install 'dreamlab[tensorboard]'")


class MetricsWriter:
    """Scalars written as TensorBoard events under ``log_dir`` as a run produces them."""

    def __init__(self, log_dir: str | os.PathLike):
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter  # imported here: tensorboard is an optional extra

        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(log_dir=str(self.log_dir))

    def write(self, values: Mapping[str, Any], step: int, prefix: str = "") -> None:
        """Each finite number of ``values`` as the scalar ``prefix/name`` at ``step``; other values are skipped."""
        for name, value in values.items():
            if _is_number(value) and math.isfinite(value):
                self._writer.add_scalar(f"{prefix}/{name}" if prefix else name, float(value), step)
        self._writer.flush()  # a live curve: TensorBoard reads the file while the run goes on

    def close(self) -> None:
        self._writer.close()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def tensorboard_dir(config: Any, run_dir: str | os.PathLike) -> Path | None:
    """``run_dir/tensorboard`` when the run asked for ``--tensorboard``, else ``None``."""
    return Path(run_dir) / "tensorboard" if getattr(config, "tensorboard", False) else None


def _number(value: float) -> str:
    """A counter as an integer (``env_steps 10496``), any other number to four significant digits."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e12 else f"{value:.4g}"


@contextlib.contextmanager
def track(
    curve: CurveLog,
    desc: str,
    total: int | None,
    *,
    step_key: str = "step",
    initial: int = 0,
    tensorboard: str | os.PathLike | None = None,
    every_seconds: float = 30.0,
) -> Iterator[Progress]:
    """Show a loop's progress from the rows it appends to ``curve`` while the block runs.

    A row's ``step_key`` value is the loop's position (the number of rows when it has none) and its other numbers
    are the latest values; with ``tensorboard`` (a folder, e.g. from :func:`tensorboard_dir`) each row is also
    written there as scalars ``desc/<column>``.
    """
    writer = MetricsWriter(tensorboard) if tensorboard is not None else None
    progress = Progress(total, desc, initial=initial, unit=step_key, every_seconds=every_seconds)

    def on_row(row: Mapping[str, Any]) -> None:
        position = int(row.get(step_key, len(curve.rows)))
        values = {k: v for k, v in row.items() if k != step_key and _is_number(v)}
        progress.update(position, **values)
        if writer is not None:
            writer.write(values, position, prefix=desc)

    curve.listeners.append(on_row)
    try:
        yield progress
    finally:
        curve.listeners.remove(on_row)
        progress.close()
        if writer is not None:
            writer.close()

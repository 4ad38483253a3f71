"""The one resumable training loop: a trainer supplies a step function, the loop owns everything around it.

    loop = TrainingLoop(Checkpointer(run_dir, config), {"model": model, "optimizer": optimizer, "rng": rng},
                        steps=config.steps, eval_every=500, desc="DRAW")
    curve = loop.run(lambda step: train_step(model, optimizer, next_batch()), evaluate=lambda step: {...})

What the loop owns, so that no trainer writes it again:

- **steps and resumption**: the step reached, every object in ``objects`` (anything with ``state_dict`` /
  ``load_state_dict``, NumPy and torch generators), torch's global CPU and CUDA generators, the curve and the stage
  timer are checkpointed together, atomically, every ``checkpoint_seconds`` (and every ``checkpoint_every`` steps
  when given) and at the end; a killed run started again continues exactly where the last checkpoint left it (same
  draws, same curve rows). Without a checkpointer (``None``) the run lives in memory only. ``max_train_seconds``
  stops a run, checkpointed, once its steps have used that much time (over all its resumptions): started again
  with a larger limit it continues.
- **the curve**: each ``eval_every`` steps one row holds the step (named ``step_key``, e.g. ``generation``), the
  mean of the step function's numbers since the last row, the evaluation hook's numbers and the wall seconds since
  the run began; ``on_row`` sees each row (to rewrite a CSV, say). A number that not every step of a row returned
  (one not defined yet, as a mean return before the first episode ends) is left out of that row.
- **progress**: a live bar or periodic log lines, and TensorBoard scalars with ``tensorboard=<folder>``
  (:mod:`dreamlab.progress`).
- **numeric health**: a non-finite number from the step function stops the run naming it and the step, and the
  modules in ``check_modules`` are checked finite after loading a checkpoint and after the last step.

A checkpoint written before its trainer ran on this loop lacks the loop's own bookkeeping; the loop refuses it,
unless the trainer passes ``from_legacy``, a function that returns such a checkpoint with every object, the step
and the curve, because the trainer saved all its state and its draws never came from torch's global generator:
then the global generator is left as it is and the timer starts from zero (unless ``from_legacy`` gives one).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from os import PathLike
from typing import Any

import numpy as np
import torch

from dreamlab.checkpoint import Checkpointer, CheckpointError, restore_state, state_of
from dreamlab.progress import track
from dreamlab.results import CurveLog, StageTimer
from dreamlab.runs import NonFiniteError, check_finite_module

StepFunction = Callable[[int], Mapping[str, float]]
Hook = Callable[[int], Mapping[str, Any]]


class TrainingLoop:
    """Runs ``step_fn(step)`` until ``steps``, checkpointing, logging and checking as the module docstring says."""

    def __init__(
        self,
        checkpointer: Checkpointer | None,
        objects: Mapping[str, Any],
        *,
        steps: int,
        eval_every: int,
        desc: str,
        checkpoint_seconds: float = 60.0,
        checkpoint_every: int = 0,
        max_train_seconds: float = 0.0,
        check_modules: Mapping[str, torch.nn.Module] | None = None,
        tensorboard: str | PathLike | None = None,
        map_location: str | torch.device = "cpu",
        step_key: str = "step",
        from_legacy: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ):
        if steps < 1 or eval_every < 1 or checkpoint_every < 0 or max_train_seconds < 0:
            raise ValueError(
                f"steps and eval_every must be >= 1 and checkpoint_every, max_train_seconds >= 0, got {steps}, "
                f"{eval_every}, {checkpoint_every} and {max_train_seconds}"
            )
        reserved = {"step", "curve", "timer", "window", "torch_rng", "cuda_rng", step_key} & set(objects)
        if reserved:
            raise ValueError(f"object names {sorted(reserved)} are the loop's own; rename them")
        self.checkpointer, self.objects = checkpointer, dict(objects)
        self.steps, self.eval_every, self.desc, self.step_key = steps, eval_every, desc, step_key
        self.checkpoint_seconds, self.tensorboard = checkpoint_seconds, tensorboard
        self.checkpoint_every, self.max_train_seconds = checkpoint_every, max_train_seconds
        self.check_modules = dict(check_modules or {})
        self.curve, self.timer = CurveLog(), StageTimer()
        self.window: list[dict[str, float]] = []  # the step function's numbers since the last curve row
        # Seconds spent in step functions over all resumptions, stages they open included (the timer's "train"
        # holds only the rest of a step): what max_train_seconds limits.
        self.train_seconds = 0.0
        self.step = self._restore(map_location, from_legacy)
        if checkpointer is not None and 0 < self.step < self.steps:
            print(f"{desc}: resumed at {step_key} {self.step}/{self.steps} from {checkpointer.path}", flush=True)

    def _restore(self, map_location: str | torch.device, from_legacy: Callable[[dict], dict] | None) -> int:
        saved = None if self.checkpointer is None else self.checkpointer.load(map_location)
        if saved is None:
            return 0
        if from_legacy is not None and "window" not in saved:  # only the loop writes a window
            saved = {"torch_rng": torch.get_rng_state(), "timer": {}, "window": [], **from_legacy(saved)}
        missing = sorted({"step", "curve", "timer", "window", "torch_rng", *self.objects} - set(saved))
        if missing:
            raise CheckpointError(
                f"{self.checkpointer.path} lacks {', '.join(missing)}: it was written before this training loop "
                "(an older dreamlab); pass another --run_dir, or delete the checkpoint to start afresh"
            )
        for name, obj in self.objects.items():
            restore_state(obj, saved[name])
        torch.set_rng_state(saved["torch_rng"].cpu())
        if "cuda_rng" in saved and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in saved["cuda_rng"]])
        self.curve.load_state_dict(saved["curve"])
        self.timer.load_state_dict(saved["timer"])
        self.window = [dict(numbers) for numbers in saved["window"]]
        self.train_seconds = float(saved.get("train_seconds", self.timer.seconds.get("train", 0.0)))
        self._check_modules(f"checkpoint {self.checkpointer.path}")
        return int(saved["step"])

    def save(self) -> None:
        """Checkpoint every object, the generators, the curve, the timer and the step, atomically (without a
        checkpointer: nothing)."""
        if self.checkpointer is None:
            return
        state = {name: state_of(obj) for name, obj in self.objects.items()}
        state["torch_rng"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        state.update(curve=self.curve.state_dict(), timer=self.timer.state_dict(), window=self.window, step=self.step)
        state["train_seconds"] = self.train_seconds
        self.checkpointer.save(state)

    @property
    def finished(self) -> bool:
        return self.step >= self.steps

    def run(
        self,
        step_fn: StepFunction,
        evaluate: Hook | None = None,
        on_row: Callable[[dict[str, Any]], None] | None = None,
    ) -> CurveLog:
        """Train from the step reached to ``steps`` (or the time limit); returns the curve (restored rows included)."""
        window = self.window
        last_save = time.monotonic()
        progress = track(
            self.curve, self.desc, self.steps, step_key=self.step_key, initial=self.step, tensorboard=self.tensorboard
        )
        with progress:
            while self.step < self.steps:
                if self.max_train_seconds and self.train_seconds > self.max_train_seconds:
                    print(
                        f"{self.desc}: stopping at step {self.step}, {self.max_train_seconds:g} s of training used "
                        "(checkpointed; resumable with a larger limit)"
                    )
                    self.save()
                    break
                started = time.perf_counter()
                with self.timer.stage("train"):
                    numbers = step_fn(self.step)
                self.train_seconds += time.perf_counter() - started
                self.step += 1
                _check_finite_numbers(numbers, f"{self.desc} step {self.step}")
                window.append({k: float(v) for k, v in numbers.items()})
                if self.step % self.eval_every == 0 or self.step == self.steps:
                    row: dict[str, Any] = {self.step_key: self.step, **_means(window)}
                    window.clear()
                    if evaluate is not None:
                        with self.timer.stage("evaluate"):
                            row.update(evaluate(self.step))
                    row["seconds"] = round(self.timer.total, 1)
                    self.curve.append(**row)
                    if on_row is not None:
                        on_row(row)
                every = self.checkpoint_every and self.step % self.checkpoint_every == 0
                if every or self.step == self.steps or time.monotonic() - last_save > self.checkpoint_seconds:
                    self.save()
                    last_save = time.monotonic()
        self._check_modules(f"after step {self.step}")
        return self.curve

    def _check_modules(self, when: str) -> None:
        for name, module in self.check_modules.items():
            check_finite_module(module, f"{self.desc} {name} {when}")


def _means(window: list[dict[str, float]]) -> dict[str, float]:
    keys = [k for k in window[0] if all(k in numbers for numbers in window)] if window else []
    return {k: float(np.mean([numbers[k] for numbers in window])) for k in keys}


def _check_finite_numbers(numbers: Mapping[str, float], where: str) -> None:
    for key, value in numbers.items():
        if isinstance(value, (int, float)) and not math.isfinite(value):
            raise NonFiniteError(
                f"{where}: {key} is {value}; stopping (try a smaller learning rate, --log_grads to find the "
                "parameter, or --dtype float64)"
            )

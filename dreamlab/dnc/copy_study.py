"""Length generalisation on copy / repeat copy: a DNC against an LSTM of similar size, callable as ``run(config)``.

Both models train on lengths 1..L with the same batches, one update each per step, and are tested at L and 2L.

    from dreamlab.config import make_config
    from dreamlab.dnc.copy_study import PRESETS, DNCCopyConfig, run
    metrics = run(make_config(DNCCopyConfig, PRESETS, "fast"))

The run checkpoints into run_dir (default runs/dnc_copy/<name>) and resumes from it exactly; it writes
<results_dir>/dnc/<name>.json (metrics.bit_error_at_2x_length for both models) and <name>_curves.csv.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from dreamlab.checkpoint import Checkpointer
from dreamlab.config import RunConfig, in_range, non_negative, positive
from dreamlab.dnc import DNC
from dreamlab.dnc.tasks import (
    LSTMSequenceModel,
    SequenceBatch,
    bit_errors,
    lstm_hidden_size_matching,
    make_task_batch,
    sequence_loss,
    task_io_sizes,
)
from dreamlab.grad_monitor import GradientMonitor, check_finite
from dreamlab.loop import TrainingLoop
from dreamlab.progress import tensorboard_dir
from dreamlab.results import CurveLog, StageTimer, write_result
from dreamlab.runs import UserError, run_directory
from dreamlab.runtime import resolve_device, resolve_dtype, seed_everything, set_threads

MODELS = ("dnc", "lstm")


@dataclasses.dataclass
class DNCCopyConfig(RunConfig):
    """Length generalisation on copy / repeat copy: DNC against a parameter-matched LSTM."""

    task: Literal["copy", "repeat_copy"] = "copy"
    bits: int = 6
    max_length: int = 8  # L: training lengths are uniform in 1..L; tested at exactly L and 2L
    min_repeats: int = 1  # repeat_copy only: repeats uniform in min..max, in training and test
    max_repeats: int = 2
    # The DNC learns to write at every step, output phase included: a 2L test fills 4L + 1 slots.
    memory_slots: int = 64
    word_size: int = 16
    read_heads: int = 1
    hidden_size: int = 64
    sparse_links: int = 0  # K > 0 keeps K links per row (Rae et al. 2016); 0 = dense link matrix
    lstm_hidden_size: int = 0  # 0 = the hidden size giving the LSTM the DNC's parameter count
    batch_size: int = 32
    steps: int = 5000
    lr: float = 3e-3
    final_lr_fraction: float = 0.02  # cosine decay from lr to lr * final_lr_fraction over the steps; 1 = constant
    clip_grad_norm: float = 10.0
    eval_every: int = 100
    eval_sequences: int = 200
    checkpoint_seconds: float = 60.0
    threads: int = 1  # torch threads; 1 is fastest for these small recurrent steps on a shared CPU

    RESUMABLE_FIELDS: ClassVar[tuple[str, ...]] = ("steps", "eval_every", "checkpoint_seconds")

    def validate(self) -> None:
        super().validate()
        positive(self, "bits", "max_length", "min_repeats", "memory_slots", "word_size", "read_heads", "hidden_size")
        positive(self, "batch_size", "steps", "lr", "clip_grad_norm", "eval_every", "eval_sequences")
        non_negative(self, "sparse_links", "lstm_hidden_size", "checkpoint_seconds")
        in_range(self, "final_lr_fraction", 0.0, 1.0)
        if self.max_repeats < self.min_repeats:
            raise UserError(f"--max_repeats {self.max_repeats} must be >= --min_repeats {self.min_repeats}")
        if self.task == "copy" and self.memory_slots < 2 * self.max_length + 1:
            raise UserError(
                f"--memory_slots {self.memory_slots} cannot hold a 2L = {2 * self.max_length} test pattern: "
                f"use at least {2 * self.max_length + 1}"
            )
        if self.sparse_links > self.memory_slots:
            raise UserError(f"--sparse_links {self.sparse_links} exceeds --memory_slots {self.memory_slots}")


PRESETS = {
    "smoke": {
        "max_length": 3,
        "memory_slots": 16,
        "word_size": 8,
        "hidden_size": 16,
        "batch_size": 8,
        "steps": 20,
        "eval_every": 10,
        "eval_sequences": 16,
    },
    "fast": {},
    # Graves et al. 2014's copy setting: 8 bits, lengths 1..20, tested at 40.
    "paper": {
        "bits": 8,
        "max_length": 20,
        "memory_slots": 128,
        "word_size": 32,
        "read_heads": 2,
        "hidden_size": 128,
        "batch_size": 16,
        "steps": 20000,
        "lr": 1e-3,
        "eval_every": 500,
    },
}


def cosine_learning_rate(config: DNCCopyConfig, step: int) -> float:
    """lr at a step: a cosine from config.lr down to config.lr * final_lr_fraction at the last step."""
    final = config.lr * config.final_lr_fraction
    return final + 0.5 * (config.lr - final) * (1.0 + math.cos(math.pi * step / max(config.steps - 1, 1)))


def build_models(config: DNCCopyConfig, device: torch.device, dtype: torch.dtype) -> dict[str, nn.Module]:
    input_size, output_size = task_io_sizes(config.task, config.bits)
    dnc = DNC(
        input_size,
        output_size,
        config.hidden_size,
        config.memory_slots,
        config.word_size,
        config.read_heads,
        sparse_links=config.sparse_links or None,
    )
    dnc_parameters = sum(p.numel() for p in dnc.parameters())
    lstm_hidden = config.lstm_hidden_size or lstm_hidden_size_matching(dnc_parameters, input_size, output_size)
    lstm = LSTMSequenceModel(input_size, output_size, lstm_hidden)
    return {"dnc": dnc.to(device, dtype), "lstm": lstm.to(device, dtype)}


def task_batch(config: DNCCopyConfig, size: int, lengths: tuple[int, int], generator: torch.Generator) -> SequenceBatch:
    return make_task_batch(config.task, size, config.bits, *lengths, generator, config.min_repeats, config.max_repeats)


@torch.no_grad()
def evaluate(models: dict[str, nn.Module], tests: dict[str, SequenceBatch]) -> dict[str, float]:
    """Mean wrong bits per sequence of each model on each test set: {'dnc_at_1x': ..., ...}."""
    scores = {}
    for model_name, model in models.items():
        model.eval()
        for test_name, batch in tests.items():
            scores[f"{model_name}_{test_name}"] = bit_errors(model(batch.inputs)[0], batch).mean().item()
        model.train()
    return scores


def copy_step(
    config: DNCCopyConfig,
    models: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    data_generator: torch.Generator,
    model_timer: StageTimer,
    device: torch.device,
    dtype: torch.dtype,
) -> Callable[[int], dict[str, float]]:
    """One training step: a batch of lengths 1..L, and one clipped Adam update of each model on it at the cosine
    schedule's learning rate; returns the learning rate and each model's loss (and gradient norm with log_grads)."""
    monitors = {k: GradientMonitor(m) for k, m in models.items()}

    def step(index: int) -> dict[str, float]:
        batch = task_batch(config, config.batch_size, (1, config.max_length), data_generator).to(device, dtype)
        learning_rate = cosine_learning_rate(config, index)
        row = {"lr": learning_rate}
        for key, model in models.items():
            with model_timer.stage(f"train_{key}"):
                loss = check_finite(sequence_loss(model(batch.inputs)[0], batch), f"{key} training loss")
                optimizers[key].zero_grad(set_to_none=True)
                loss.backward()
                if config.log_grads:
                    row[f"{key}_grad_norm"] = sum(v * v for v in monitors[key].check().values()) ** 0.5
                nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
                for group in optimizers[key].param_groups:
                    group["lr"] = learning_rate
                optimizers[key].step()
            row[f"{key}_train_loss"] = loss.item()
        return row

    return step


@dataclasses.dataclass
class CopyStudy:
    """What a finished study hands to figure makers: the trained models, the test sets and the curve."""

    config: DNCCopyConfig
    name: str
    models: dict[str, nn.Module]
    tests: dict[str, SequenceBatch]
    curve: CurveLog
    out: Path  # <results_dir>/dnc


def default_name(config: DNCCopyConfig) -> str:
    """<task>_generalisation[_<preset>] (no suffix for the fast preset), unless ``config.name`` says otherwise."""
    return config.name or f"{config.task}_generalisation" + ("" if config.preset == "fast" else f"_{config.preset}")


def run(config: DNCCopyConfig, figures: Callable[[CopyStudy], None] | None = None) -> dict[str, Any]:
    """Train (or resume) both models in ``config.run_dir`` (default runs/dnc_copy/<name>), test them at L and 2L,
    draw ``figures`` and write the result; returns its metrics."""
    name = default_name(config)
    run_dir = Path(config.run_dir or f"runs/dnc_copy/{name}")
    out_dir = Path(config.results_dir) / "dnc"
    with run_directory(run_dir, out_dir):
        return _run(config, name, run_dir, out_dir, figures)


def _run(
    config: DNCCopyConfig, name: str, run_dir: Path, out_dir: Path, figures: Callable[[CopyStudy], None] | None
) -> dict[str, Any]:
    set_threads(config.threads)
    seed_everything(config.seed)
    device, dtype = resolve_device(config.device), resolve_dtype(config.dtype)

    models = build_models(config, device, dtype)
    optimizers = {k: torch.optim.Adam(m.parameters(), lr=config.lr) for k, m in models.items()}
    data_generator = torch.Generator().manual_seed(config.seed)
    test_generator = torch.Generator().manual_seed(config.seed + 1_000_003)
    length = config.max_length
    tests = {
        "at_1x": task_batch(config, config.eval_sequences, (length, length), test_generator).to(device, dtype),
        "at_2x": task_batch(config, config.eval_sequences, (2 * length, 2 * length), test_generator).to(device, dtype),
    }
    model_timer = StageTimer()  # each model's own training seconds, inside the loop's "train" stage
    loop = TrainingLoop(
        Checkpointer(run_dir, config),
        {
            **models,
            **{f"{k}_optimizer": o for k, o in optimizers.items()},
            "data_generator": data_generator,
            "model_timer": model_timer,
        },
        steps=config.steps,
        eval_every=1,
        desc=f"DNC/LSTM {config.task}",
        checkpoint_seconds=config.checkpoint_seconds,
        check_modules=models,
        tensorboard=tensorboard_dir(config, run_dir),
        map_location=device,
    )

    def test_scores(step: int) -> dict[str, float]:
        return evaluate(models, tests) if step % config.eval_every == 0 or step == config.steps else {}

    curve = loop.run(copy_step(config, models, optimizers, data_generator, model_timer, device, dtype), test_scores)
    after_training = time.perf_counter()

    final = evaluate(models, tests)
    bits_scored = {k: tests[k].mask[0].sum().item() * task_io_sizes(config.task, config.bits)[1] for k in tests}
    metrics = {
        "bit_error_at_1x_length": {m: final[f"{m}_at_1x"] for m in MODELS},
        "bit_error_at_2x_length": {m: final[f"{m}_at_2x"] for m in MODELS},
        "bits_scored_per_sequence": {"at_1x": bits_scored["at_1x"], "at_2x": bits_scored["at_2x"]},
        "train_length": length,
        "test_lengths": [length, 2 * length],
        "test_sequences": config.eval_sequences,
        "parameters": {m: sum(p.numel() for p in models[m].parameters()) for m in MODELS},
        "lstm_hidden_size": models["lstm"].lstm.hidden_size,
        "steps": loop.step,
        "final_train_loss": {m: curve.rows[-1][f"{m}_train_loss"] for m in MODELS},
        "train_seconds_per_step": {m: model_timer.seconds.get(f"train_{m}", 0.0) / max(loop.step, 1) for m in MODELS},
    }
    curve.to_csv(out_dir / f"{name}_curves.csv")
    if figures is not None:
        figures(CopyStudy(config, name, models, tests, curve, out_dir))
    path = write_result(
        "dnc",
        name,
        experiment="dnc_copy",
        config=config,
        metrics=metrics,
        wall_seconds=loop.timer.total + time.perf_counter() - after_training,
        stages={**loop.timer.seconds, **model_timer.seconds},
        results_dir=config.results_dir,
    )
    for model in MODELS:
        print(
            f"{model.upper()}: {metrics['parameters'][model]} parameters, wrong bits per sequence "
            f"{metrics['bit_error_at_1x_length'][model]:.3f} at L={length}, "
            f"{metrics['bit_error_at_2x_length'][model]:.3f} at 2L={2 * length}"
        )
    print(f"result: {path}")
    return metrics

"""Copy (or repeat copy) with a DNC and an LSTM of similar size: train on lengths 1..L, test at L and 2L.

    python experiments/dnc_copy.py --preset smoke                # seconds: checks the wiring
    python experiments/dnc_copy.py --preset fast                 # the committed result (copy, L = 8)
    python experiments/dnc_copy.py --preset fast --task repeat_copy --name repeat_copy_generalisation

Both models see the same batches, one update each per step. The run checkpoints into --run_dir (default
runs/dnc_copy/<name>); re-running the same command after a kill resumes. Results: results/dnc/<name>.json
(metrics.bit_error_at_2x_length for both models), <name>_curves.csv, <name>_curves.png and <name>_example.png.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import ClassVar, Literal

import matplotlib.pyplot as plt
import torch
from torch import nn

from dreamlab.checkpoint import Checkpointer
from dreamlab.config import RunConfig, in_range, non_negative, parse_config, positive
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
from dreamlab.figures import save_figure
from dreamlab.grad_monitor import GradientMonitor, check_finite
from dreamlab.results import CurveLog, StageTimer, write_result
from dreamlab.runs import UserError, check_finite_module, cli, run_directory
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
    checkpoint_every: int = 50
    threads: int = 1  # torch threads; 1 is fastest for these small recurrent steps on a shared CPU

    RESUMABLE_FIELDS: ClassVar[tuple[str, ...]] = ("steps", "eval_every", "checkpoint_every")

    def validate(self) -> None:
        super().validate()
        positive(self, "bits", "max_length", "min_repeats", "memory_slots", "word_size", "read_heads", "hidden_size")
        positive(
            self, "batch_size", "steps", "lr", "clip_grad_norm", "eval_every", "eval_sequences", "checkpoint_every"
        )
        non_negative(self, "sparse_links", "lstm_hidden_size")
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
        "checkpoint_every": 10,
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
        "checkpoint_every": 250,
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


def save_curves_figure(curve: CurveLog, path: Path, length: int) -> None:
    fig, (ax_loss, ax_error) = plt.subplots(1, 2, figsize=(11, 4))
    steps = curve.column("step")
    for model, colour in zip(MODELS, ("tab:blue", "tab:orange"), strict=True):
        ax_loss.plot(steps, curve.column(f"{model}_train_loss"), color=colour, label=model.upper())
        evaluated = [row for row in curve.rows if f"{model}_at_1x" in row]
        eval_steps = [row["step"] for row in evaluated]
        ax_error.plot(
            eval_steps, [r[f"{model}_at_1x"] for r in evaluated], color=colour, label=f"{model.upper()}, L={length}"
        )
        ax_error.plot(
            eval_steps,
            [r[f"{model}_at_2x"] for r in evaluated],
            color=colour,
            linestyle="--",
            label=f"{model.upper()}, 2L={2 * length}",
        )
    ax_loss.set(xlabel="step", ylabel="cross-entropy (nats / sequence)", yscale="log", title="Training loss")
    ax_error.set(xlabel="step", ylabel="wrong bits per sequence", yscale="symlog", title="Test bit error")
    ax_loss.legend()
    ax_error.legend()
    save_figure(fig, path)


@torch.no_grad()
def save_example_figure(models: dict[str, nn.Module], batch: SequenceBatch, path: Path) -> None:
    """One 2L test sequence: input, target, each model's output, and the DNC's write and read weightings."""
    one = SequenceBatch(*(t[:1] for t in batch))
    dnc_output, _, trace = models["dnc"].forward_traced(one.inputs, fields=("write_weights", "read_weights"))
    outputs = {"DNC": torch.sigmoid(dnc_output), "LSTM": torch.sigmoid(models["lstm"](one.inputs)[0])}
    mask = one.mask[0].bool()
    panels = [("input", one.inputs[0]), ("target", one.targets[0][mask])]
    panels += [(f"{name} output", output[0][mask]) for name, output in outputs.items()]
    fig, axes = plt.subplots(1, len(panels) + 2, figsize=(3 * (len(panels) + 2), 3.6))
    for ax, (title, image) in zip(axes, panels, strict=False):
        ax.imshow(image.T.cpu().float(), cmap="gray_r", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set(title=title, xlabel="time", ylabel="bit")
    for ax, (title, weights) in zip(
        axes[len(panels) :],
        (
            ("DNC write weights", trace["write_weights"][0]),
            ("DNC read weights (head 1)", trace["read_weights"][0, :, 0]),
        ),
        strict=True,
    ):
        ax.imshow(weights.T.cpu().float(), cmap="viridis", aspect="auto", interpolation="nearest")
        ax.set(title=title, xlabel="time", ylabel="memory slot")
    save_figure(fig, path)


@cli
def main(argv: list[str] | None = None) -> dict:
    config = parse_config(DNCCopyConfig, PRESETS, argv, description=__doc__)
    default_name = f"{config.task}_generalisation" + ("" if config.preset == "fast" else f"_{config.preset}")
    name = config.name or default_name
    run_dir = Path(config.run_dir or f"runs/dnc_copy/{name}")
    out_dir = Path(config.results_dir) / "dnc"
    with run_directory(run_dir, out_dir):
        return run(config, name, run_dir, out_dir)


def run(config: DNCCopyConfig, name: str, run_dir: Path, out_dir: Path) -> dict:
    """Train (or resume) both models in ``run_dir``, test them at L and 2L, and write the result to ``out_dir``."""
    set_threads(config.threads)
    start = time.perf_counter()
    seed_everything(config.seed)
    device, dtype = resolve_device(config.device), resolve_dtype(config.dtype)

    models = build_models(config, device, dtype)
    optimizers = {k: torch.optim.Adam(m.parameters(), lr=config.lr) for k, m in models.items()}
    monitors = {k: GradientMonitor(m) for k, m in models.items()}
    data_generator = torch.Generator().manual_seed(config.seed)
    test_generator = torch.Generator().manual_seed(config.seed + 1_000_003)
    length = config.max_length
    tests = {
        "at_1x": task_batch(config, config.eval_sequences, (length, length), test_generator).to(device, dtype),
        "at_2x": task_batch(config, config.eval_sequences, (2 * length, 2 * length), test_generator).to(device, dtype),
    }
    curve, timer = CurveLog(), StageTimer()
    step, earlier_seconds = 0, 0.0
    checkpointer = Checkpointer(run_dir, config)
    saved = checkpointer.load()
    if saved is not None:
        for key, model in models.items():
            model.load_state_dict(saved["models"][key])
            check_finite_module(model, f"{key} in checkpoint {checkpointer.path}")
            optimizers[key].load_state_dict(saved["optimizers"][key])
        data_generator.set_state(saved["data_generator"])
        curve.load_state_dict(saved["curve"])
        timer.load_state_dict(saved["timer"])
        step, earlier_seconds = saved["step"], saved["wall_seconds"]
        print(f"resumed {run_dir} at step {step}")

    def save() -> None:
        checkpointer.save(
            {
                "step": step,
                "models": {k: m.state_dict() for k, m in models.items()},
                "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                "data_generator": data_generator.get_state(),
                "curve": curve.state_dict(),
                "timer": timer.state_dict(),
                "wall_seconds": earlier_seconds + time.perf_counter() - start,
            }
        )

    while step < config.steps:
        batch = task_batch(config, config.batch_size, (1, length), data_generator).to(device, dtype)
        learning_rate = cosine_learning_rate(config, step)
        row = {"step": step + 1, "lr": learning_rate}
        for key, model in models.items():
            with timer.stage(f"train_{key}"):
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
        step += 1
        if step % config.eval_every == 0 or step == config.steps:
            with timer.stage("evaluate"):
                row.update(evaluate(models, tests))
            print(
                f"step {step}: "
                + "  ".join(
                    f"{m} loss {row[f'{m}_train_loss']:.3f} bits@L {row[f'{m}_at_1x']:.2f} "
                    f"bits@2L {row[f'{m}_at_2x']:.2f}"
                    for m in MODELS
                ),
                flush=True,
            )
        curve.append(**row)
        if step % config.checkpoint_every == 0 or step == config.steps:
            save()
    for key, model in models.items():
        check_finite_module(model, f"{key} at step {step}")

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
        "steps": step,
        "final_train_loss": {m: curve.rows[-1][f"{m}_train_loss"] for m in MODELS},
        "train_seconds_per_step": {m: timer.seconds.get(f"train_{m}", 0.0) / max(step, 1) for m in MODELS},
    }
    curve.to_csv(out_dir / f"{name}_curves.csv")
    save_curves_figure(curve, out_dir / f"{name}_curves.png", length)
    save_example_figure(models, tests["at_2x"], out_dir / f"{name}_example.png")
    path = write_result(
        "dnc",
        name,
        experiment="dnc_copy",
        config=config,
        metrics=metrics,
        wall_seconds=earlier_seconds + time.perf_counter() - start,
        stages=timer.seconds,
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


if __name__ == "__main__":
    main()

"""The dSprites DNC memory study (Mufti, "DNC Memory Testing Using dSprites"), callable as ``run(config)``.

Trains a deterministic DNC with teacher forcing on random dSprites rollouts (input [x_t, a_{t+1}], output x_{t+1}) by
truncated backpropagation through time, then Test 1 (linear probes of the sprite latents at t-0, t-5, t-10 from M_t,
r_t and, as a reference, the controller's h_t, against random inputs) and Test 2 (mutual information of every memory
location with fed X-position sequences, against control sequences). ``aux_weight`` > 0 adds the post's future-work
idea: a linear decoder of the current latents from r_t (or M_t) in the loss, biasing the memory to expose the state.

    from dreamlab.config import make_config
    from dreamlab.dnc.memory_study import PRESETS, DNCSpritesConfig, run
    metrics = run(make_config(DNCSpritesConfig, PRESETS, "fast", model="B"))

A run writes <results_dir>/dnc/dsprites_memory_<model>[_aux]_<preset>.json and its curve, and refreshes the summary
<results_dir>/dnc/dsprites_memory.json (with a Markdown and CSV table over every run of that preset). Training, Test 1
and Test 2 each resume from run_dir/checkpoint.pt.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from dreamlab.checkpoint import Checkpointer
from dreamlab.config import RunConfig, non_negative, positive
from dreamlab.data.dsprites import DSPRITES_LATENT_SIZES, DSprites
from dreamlab.dnc import DNC
from dreamlab.dnc.dsprites_rollouts import (
    POS_X_COLUMN,
    input_size,
    next_sprite_loss,
    prepare_images,
    random_rollouts,
    teacher_forcing,
    x_position_rollouts,
)
from dreamlab.dnc.probes import (
    REGRESSION_COLUMNS,
    REGRESSION_LATENTS,
    SHAPE_COLUMN,
    LatentDecoder,
    lagged_samples,
    mutual_information_test,
    probe_test,
)
from dreamlab.files import atomic_write_text
from dreamlab.grad_monitor import GradientMonitor, check_finite
from dreamlab.loop import TrainingLoop
from dreamlab.progress import tensorboard_dir
from dreamlab.results import CurveLog, write_result
from dreamlab.runs import UserError, run_directory
from dreamlab.runtime import resolve_device, resolve_dtype, seed_everything, set_threads

# The post's two DNCs: (memory slots N, word size W, read heads R).
MODEL_SIZES = {"A": (256, 64, 4), "B": (16, 16, 4)}
# Distinct seed streams so training, probing and Test 2 never share sprites.
TRAIN_STREAM, PROBE_STREAM, MI_STREAM, EXAMPLE_STREAM = 1, 2, 3, 4


@dataclasses.dataclass
class DNCSpritesConfig(RunConfig):
    """DNC next-sprite model on dSprites rollouts, then linear-probe and mutual-information tests of its memory."""

    model: Literal["A", "B"] = "B"  # A: N=256, W=64, R=4; B: N=16, W=16, R=4
    hidden_size: int = 128  # LSTM controller (the post does not give it)
    image_size: int = 32  # 64 = the published size; 32 averages 2x2 blocks (fast preset)
    train_rollouts: int = 2000  # per epoch
    min_length: int = 64  # rollout length drawn per batch in [min_length, max_length]
    max_length: int = 128
    epochs: int = 2
    batch_size: int = 16
    bptt_steps: int = 64  # truncated backpropagation: the state carries over, gradients stop every bptt_steps
    lr: float = 1e-3
    grad_clip: float = 10.0
    aux_weight: float = 0.0  # > 0: add aux_weight * latent-decoder loss (the post's future work)
    aux_source: Literal["read_vectors", "memory"] = "read_vectors"  # what the auxiliary decoder reads
    probe_rollouts: int = 512  # Test 1 rollouts (the post: 10,000 of length 500)
    probe_length: int = 100
    probe_stride: int = 2  # probe every probe_stride-th step from max(lags)
    probe_lags: tuple[int, ...] = (0, 5, 10)
    probe_epochs: int = 20
    probe_batch_size: int = 256
    probe_lr: float = 1e-3
    probe_test_fraction: float = 0.25  # held-out rollouts (the post scored on the training samples only)
    probe_max_values: int = 50_000_000  # cap on samples x width per source (Model A's memory is 16,384 wide)
    mi_sequences: int = 50  # Test 2 X-position sequences (the post: 50)
    mi_min_length: int = 100
    mi_max_length: int = 200
    mi_bins: int = 8
    mi_alpha: float = 0.01  # family-wise level, Bonferroni over locations
    checkpoint_seconds: float = 120.0
    threads: int = (
        1  # CPU intra-op threads: the DNC's per-step ops are too small to gain from more, and lose on a busy machine
    )

    RESUMABLE_FIELDS: ClassVar[tuple[str, ...]] = ("epochs", "checkpoint_seconds")

    def validate(self) -> None:
        super().validate()
        positive(self, "hidden_size", "image_size", "train_rollouts", "epochs", "batch_size", "bptt_steps", "lr")
        positive(self, "grad_clip", "probe_rollouts", "probe_stride", "probe_epochs", "probe_batch_size", "probe_lr")
        positive(self, "probe_max_values", "mi_sequences", "mi_bins")
        non_negative(self, "aux_weight", "checkpoint_seconds")
        if 64 % self.image_size:
            raise UserError(f"--image_size must divide the 64-pixel sprites (1, 2, 4, ..., 64), got {self.image_size}")
        if not 1 <= self.min_length <= self.max_length:
            raise UserError(f"need 1 <= --min_length <= --max_length, got {self.min_length}, {self.max_length}")
        if not 2 <= self.mi_min_length <= self.mi_max_length:
            raise UserError(
                f"need 2 <= --mi_min_length <= --mi_max_length, got {self.mi_min_length}, {self.mi_max_length}"
            )
        if not self.probe_lags or min(self.probe_lags) < 0:
            raise UserError(f"--probe_lags must be steps back >= 0, got {self.probe_lags}")
        if self.probe_length <= max(self.probe_lags):
            raise UserError(f"--probe_length {self.probe_length} must exceed the largest lag {max(self.probe_lags)}")
        if not 0 < self.probe_test_fraction < 1:
            raise UserError(f"--probe_test_fraction must be in (0, 1), got {self.probe_test_fraction}")
        if not 0 < self.mi_alpha < 1:
            raise UserError(f"--mi_alpha must be in (0, 1), got {self.mi_alpha}")


PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {
        "hidden_size": 16,
        "image_size": 16,
        "train_rollouts": 8,
        "min_length": 12,
        "max_length": 16,
        "epochs": 1,
        "batch_size": 4,
        "bptt_steps": 8,
        "probe_rollouts": 16,
        "probe_length": 24,
        "probe_epochs": 2,
        "mi_sequences": 4,
        "mi_min_length": 20,
        "mi_max_length": 30,
        "mi_bins": 4,
    },
    "fast": {},
    "paper": {
        "hidden_size": 256,
        "image_size": 64,
        "train_rollouts": 10_000,
        "min_length": 500,
        "max_length": 1000,
        "epochs": 5,
        "bptt_steps": 100,
        "probe_rollouts": 10_000,
        "probe_length": 500,
        "probe_stride": 10,
        "probe_epochs": 1,
        "probe_max_values": 400_000_000,
        "mi_max_length": 500,
    },
}


def build_models(
    config: DNCSpritesConfig, device: torch.device, dtype: torch.dtype
) -> tuple[DNC, LatentDecoder | None]:
    slots, word, heads = MODEL_SIZES[config.model]
    pixels = config.image_size**2
    dnc = DNC(input_size(config.image_size), pixels, config.hidden_size, slots, word, heads).to(device, dtype)
    if config.aux_weight == 0:
        return dnc, None
    width = heads * word if config.aux_source == "read_vectors" else slots * word
    return dnc, LatentDecoder(width).to(device, dtype)


def aux_targets(rollouts, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape classes and regressed values of the sprites input at t = 0..L-1."""
    shape = torch.as_tensor(rollouts.classes[:, :-1, SHAPE_COLUMN], device=device)
    values = torch.as_tensor(rollouts.values[:, :-1][..., list(REGRESSION_COLUMNS)], device=device, dtype=dtype)
    return shape, values


def tbptt_step(
    config: DNCSpritesConfig,
    dnc: DNC,
    decoder: LatentDecoder | None,
    dataset: DSprites,
    optimiser: torch.optim.Optimizer,
    device: torch.device,
    dtype: torch.dtype,
) -> Callable[[int], dict[str, float]]:
    """The training step: one batch of fresh rollouts, trained by truncated backpropagation through time. The state
    starts afresh for each batch and carries over, detached, between its ``bptt_steps`` chunks, with an update per
    chunk. The batch is a function of (seed, epoch, batch index) alone, so a resumed run draws what it would have."""
    parameters = list(dnc.parameters()) + ([] if decoder is None else list(decoder.parameters()))
    monitor = GradientMonitor(dnc) if config.log_grads else None
    batches_per_epoch = -(-config.train_rollouts // config.batch_size)

    def step(index: int) -> dict[str, float]:
        epoch, batch_index = divmod(index, batches_per_epoch)
        rng = np.random.default_rng([config.seed, TRAIN_STREAM, epoch, batch_index])
        size = min(config.batch_size, config.train_rollouts - batch_index * config.batch_size)
        length = int(rng.integers(config.min_length, config.max_length + 1))
        rollouts = random_rollouts(dataset, size, length, rng)
        inputs, targets = teacher_forcing(rollouts, config.image_size, device, dtype)
        shape, values = aux_targets(rollouts, device, dtype)
        state, bce_sum, aux_sum = None, 0.0, 0.0
        for start in range(0, length, config.bptt_steps):
            chunk = slice(start, start + config.bptt_steps)
            bce, aux, state = next_sprite_loss(
                dnc, inputs[:, chunk], targets[:, chunk], state, decoder, config.aux_source,
                shape[:, chunk], values[:, chunk],
            )  # fmt: skip
            loss = check_finite(bce + config.aux_weight * aux, "next-sprite loss")
            optimiser.zero_grad()
            loss.backward()
            if monitor is not None:
                monitor.check()
            torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip)
            optimiser.step()
            state = state.detach()
            steps = inputs[:, chunk].shape[1]
            bce_sum += bce.item() * steps
            aux_sum += aux.item() * steps
        return {"bce_per_image": bce_sum / length, "aux_loss": aux_sum / length}

    return step


def train(
    config: DNCSpritesConfig,
    dnc: DNC,
    decoder: LatentDecoder | None,
    dataset: DSprites,
    device: torch.device,
    dtype: torch.dtype,
    run_dir: str,
) -> TrainingLoop:
    """Train (or resume, or find finished) ``config.epochs`` epochs; the loop holds the curve and the stage timer.
    One curve row per batch: its mean BCE per image, auxiliary loss, epoch and batch number (1-based)."""
    parameters = list(dnc.parameters()) + ([] if decoder is None else list(decoder.parameters()))
    optimiser = torch.optim.Adam(parameters, lr=config.lr)
    models = {"dnc": dnc} if decoder is None else {"dnc": dnc, "decoder": decoder}
    batches_per_epoch = -(-config.train_rollouts // config.batch_size)
    loop = TrainingLoop(
        Checkpointer(run_dir, config),
        {**models, "optimiser": optimiser},
        steps=config.epochs * batches_per_epoch,
        eval_every=1,
        desc=f"DNC {config.model} on dSprites",
        checkpoint_seconds=config.checkpoint_seconds,
        check_modules=models,
        tensorboard=tensorboard_dir(config, run_dir),
        map_location=device,
    )

    def position(step: int) -> dict[str, int]:
        epoch, batch = divmod(step - 1, batches_per_epoch)
        return {"epoch": epoch, "batch": batch + 1}

    loop.run(tbptt_step(config, dnc, decoder, dataset, optimiser, device, dtype), evaluate=position)
    return loop


def image_bce(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Pixel BCE summed per image, averaged over images."""
    return float(F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1).mean())


@torch.no_grad()
def pixel_marginal_logits(config, dataset, device, dtype, samples: int = 4096) -> torch.Tensor:
    """Logits of each pixel's probability of being on under uniform sprites: the best input-blind predictor."""
    rng = np.random.default_rng([config.seed, EXAMPLE_STREAM, 1])
    images = prepare_images(dataset.images(dataset.indices_of(dataset.sample_classes(samples, rng))), config.image_size)
    return torch.logit(images.flatten(1).mean(0).clamp(1e-4, 1 - 1e-4)).to(device, dtype)


@torch.no_grad()
def trace_rollouts(
    dnc: DNC, rollouts, config, device, dtype, fields, steps, baseline_logits: torch.Tensor | None = None
) -> tuple[dict[str, np.ndarray], float, float]:
    """Run the DNC over rollouts: the traced fields at ``steps`` (flattened per step), its BCE per image and
    the BCE per image of ``baseline_logits`` (nan without)."""
    inputs, targets = teacher_forcing(rollouts, config.image_size, device, dtype)
    traced = {"controller_h": "controller"}
    logits, _, traces = dnc.forward_traced(inputs, fields=tuple(traced.get(f, f) for f in fields))
    baseline = float("nan") if baseline_logits is None else image_bce(baseline_logits.expand_as(targets), targets)
    out = {}
    for field in fields:
        value = traces[traced.get(field, field)]
        value = value.h if field == "controller_h" else value
        out[field] = value[:, steps].flatten(2).float().cpu().numpy()
    return out, image_bce(logits, targets), baseline


def run_test1(config, dnc, dataset, device, dtype, slots, word, heads) -> dict[str, Any]:
    fields = ("memory", "read_vectors", "controller_h")
    start = max(config.probe_lags)
    steps = np.arange(start, config.probe_length, config.probe_stride)
    rng = np.random.default_rng([config.seed, PROBE_STREAM])
    collected: dict[str, list[np.ndarray]] = {f: [] for f in fields}
    widths = {"memory": slots * word, "read_vectors": heads * word, "controller_h": config.hidden_size}
    # Whole rollouts up to the cap per source (Model A's memory is 16,384 wide), so train and test never share one.
    keep = {f: min(config.probe_rollouts, max(2, config.probe_max_values // (widths[f] * len(steps)))) for f in fields}
    classes, values, bces, baseline_bces = [], [], [], []
    marginal = pixel_marginal_logits(config, dataset, device, dtype)
    for first in range(0, config.probe_rollouts, config.batch_size):
        size = min(config.batch_size, config.probe_rollouts - first)
        rollouts = random_rollouts(dataset, size, config.probe_length, rng)
        traces, bce, baseline = trace_rollouts(dnc, rollouts, config, device, dtype, fields, steps, marginal)
        for field in fields:
            collected[field].append(traces[field][: max(0, keep[field] - first)])
        classes.append(rollouts.classes[:, :-1])
        values.append(rollouts.values[:, :-1])
        bces.append(bce * size)
        baseline_bces.append(baseline * size)
    classes, values = np.concatenate(classes), np.concatenate(values)
    probe_args = dict(
        epochs=config.probe_epochs, batch_size=config.probe_batch_size, lr=config.probe_lr, seed=config.seed
    )
    results: dict[str, Any] = {"sources": {}, "control": {}, "samples": {}, "lags": list(config.probe_lags)}
    control_rng = np.random.default_rng([config.seed, PROBE_STREAM, 1])
    for source in fields:
        features = np.concatenate(collected.pop(source))  # (keep[source], len(steps), width)
        test_count = min(len(features) - 1, max(1, round(config.probe_test_fraction * len(features))))
        split = len(features) - test_count
        train_rows, test_rows = slice(0, split), slice(split, len(features))
        results["samples"][source] = {"train": split * len(steps), "test": test_count * len(steps)}
        results["sources"][source] = {}
        for lag in config.probe_lags:
            train = lagged_samples(features[train_rows], classes[train_rows], values[train_rows], steps, lag)
            test = lagged_samples(features[test_rows], classes[test_rows], values[test_rows], steps, lag)
            results["sources"][source][f"t-{lag}"] = probe_test(*train, *test, **probe_args)
            print(f"test1 {source} t-{lag}: {results['sources'][source][f't-{lag}']['test']}", flush=True)
        if source != "controller_h":
            # Random inputs of the same width, same targets and samples: what fitting alone achieves.
            noise = control_rng.standard_normal(features.shape, dtype=np.float32)
            train = lagged_samples(noise[train_rows], classes[train_rows], values[train_rows], steps, 0)
            test = lagged_samples(noise[test_rows], classes[test_rows], values[test_rows], steps, 0)
            results["control"][source] = probe_test(*train, *test, **probe_args)
            print(f"test1 control ({source} width): {results['control'][source]['test']}", flush=True)
            del noise
        del features
    results["next_image_bce"] = float(sum(bces) / config.probe_rollouts)
    results["pixel_marginal_bce"] = float(sum(baseline_bces) / config.probe_rollouts)
    return results


def run_test2(config, dnc, dataset, device, dtype) -> dict[str, Any]:
    rng = np.random.default_rng([config.seed, MI_STREAM])
    lengths = rng.integers(config.mi_min_length, config.mi_max_length + 1, config.mi_sequences)
    x_classes = DSPRITES_LATENT_SIZES[POS_X_COLUMN]
    contents: dict[str, list[np.ndarray]] = {"memory": [], "read_vectors": []}
    sequences, controls = [], []
    for first in range(0, config.mi_sequences, config.batch_size):
        batch_lengths = lengths[first : first + config.batch_size]
        # The DNC is causal, so one batch at the longest length, cut to each sequence's own length, is exact.
        rollouts = x_position_rollouts(dataset, len(batch_lengths), int(batch_lengths.max()), rng)
        traces, _, _ = trace_rollouts(
            dnc, rollouts, config, device, dtype, tuple(contents), np.arange(int(batch_lengths.max()))
        )
        for i, length in enumerate(batch_lengths.tolist()):
            for field in contents:
                contents[field].append(traces[field][i, :length])
            sequences.append(rollouts.classes[i, :length, POS_X_COLUMN])
            controls.append(rng.integers(0, x_classes, length))
    results: dict[str, Any] = {"lengths": lengths.tolist(), "bins": config.mi_bins}
    for field, values in contents.items():
        test = mutual_information_test(values, sequences, controls, config.mi_bins, x_classes, config.mi_alpha)
        results[field] = {
            "true_mi_per_location": test["true_mi"].round(6).tolist(),
            "control_mi_per_location": test["control_mi"].round(6).tolist(),
            "t_statistic_per_location": np.asarray(test["t_statistic"]).round(4).tolist(),
            "mean_true_mi": float(test["true_mi"].mean()),
            "mean_control_mi": float(test["control_mi"].mean()),
            "max_true_minus_control": float((test["true_mi"] - test["control_mi"]).max()),
            "locations": len(test["true_mi"]),
            "detected_locations": [int(i) for i in test["detected"]],
            "bonferroni_threshold": float(test["bonferroni_threshold"]),
        }
        print(
            f"test2 {field}: mean MI true {results[field]['mean_true_mi']:.4f} vs control "
            f"{results[field]['mean_control_mi']:.4f}, detected {len(test['detected'])}/{len(test['true_mi'])}",
            flush=True,
        )
    return results


def summary_rows(name: str, test1: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    score_keys = ["shape_error"] + [f"{n}_mse" for n in REGRESSION_LATENTS] + [f"{n}_r2" for n in REGRESSION_LATENTS]
    for source, by_lag in test1["sources"].items():
        for lag, scores in by_lag.items():
            rows.append({"run": name, "source": source, "lag": lag} | {k: scores["test"][k] for k in score_keys})
    for source, scores in test1["control"].items():
        rows.append({"run": name, "source": f"random ({source} width)", "lag": "any"} | {
            k: scores["test"][k] for k in score_keys
        })  # fmt: skip
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    columns = ["run", "source", "lag", "shape_error"] + [f"{n}_r2" for n in REGRESSION_LATENTS]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_summary(results_dir: str, preset: str) -> Path | None:
    """Gather every run of this preset into results/dnc/dsprites_memory.json with one table (Markdown and CSV)."""
    folder = Path(results_dir) / "dnc"
    runs = {}
    for path in sorted(folder.glob(f"dsprites_memory_*_{preset}.json")):
        record = json.loads(path.read_text())
        if "test1" in record.get("metrics", {}):
            runs[path.stem] = record
    if not runs:
        return None
    rows = [row for name, record in runs.items() for row in summary_rows(name, record["metrics"]["test1"])]
    test2 = {
        name: {
            field: {k: v for k, v in record["metrics"]["test2"][field].items() if not k.endswith("_per_location")}
            for field in ("memory", "read_vectors")
        }
        for name, record in runs.items()
    }
    table = markdown_table(rows)
    curve = CurveLog()
    for row in rows:
        curve.append(**row)
    curve.to_csv(folder / "dsprites_memory_table.csv")
    atomic_write_text(folder / "dsprites_memory_table.md", table + "\n")
    return write_result(
        "dnc",
        "dsprites_memory",
        experiment="dnc_dsprites_summary",
        config={"preset": preset, "runs": list(runs)},
        metrics={
            "test1": {name: record["metrics"]["test1"] for name, record in runs.items()},
            "test2": test2,
            "next_image_bce": {name: record["metrics"]["next_image_bce"] for name, record in runs.items()},
            "table_markdown": table,
        },
        wall_seconds=sum(record["wall_seconds"] for record in runs.values()),
        results_dir=results_dir,
    )


@dataclasses.dataclass
class MemoryStudy:
    """What a finished study hands to figure makers: the trained DNC, its data and both tests' results."""

    config: DNCSpritesConfig
    name: str
    title: str
    dnc: DNC
    dataset: DSprites
    device: torch.device
    dtype: torch.dtype
    curve: CurveLog
    test1: dict[str, Any]
    test2: dict[str, Any]
    out: Path  # <results_dir>/dnc


def default_name(config: DNCSpritesConfig) -> str:
    """dsprites_memory_<model>[_aux]_<preset>, unless ``config.name`` says otherwise."""
    suffix = "_aux" if config.aux_weight > 0 else ""
    return config.name or f"dsprites_memory_{config.model}{suffix}_{config.preset}"


def run(config: DNCSpritesConfig, figures: Callable[[MemoryStudy], None] | None = None) -> dict[str, Any]:
    """Train (or resume) in ``config.run_dir`` (default runs/dnc_dsprites/<name>), run both memory tests, draw
    ``figures`` and write the result and the preset's summary; returns the result's metrics."""
    name = default_name(config)
    run_dir = config.run_dir or f"runs/dnc_dsprites/{name}"
    with run_directory(run_dir, Path(config.results_dir) / "dnc"):
        return _run(config, name, run_dir, figures)


def _run(
    config: DNCSpritesConfig, name: str, run_dir: str, figures: Callable[[MemoryStudy], None] | None
) -> dict[str, Any]:
    start_time = time.perf_counter()
    seed_everything(config.seed)
    device, dtype = resolve_device(config.device), resolve_dtype(config.dtype)
    set_threads(config.threads)
    dataset = DSprites.generated()
    dnc, decoder = build_models(config, device, dtype)
    loop = train(config, dnc, decoder, dataset, device, dtype, run_dir)
    dnc.eval()
    checkpointer, timer = loop.checkpointer, loop.timer
    state = checkpointer.load(device)
    slots, word, heads = MODEL_SIZES[config.model]
    # Each test's result joins the checkpoint as soon as it is done, so an interrupted run does not redo it.
    if "test1" not in state:
        with timer.stage("test1"):
            state["test1"] = run_test1(config, dnc, dataset, device, dtype, slots, word, heads)
        state["timer"] = timer.state_dict()
        checkpointer.save(state)
    if "test2" not in state:
        with timer.stage("test2"):
            state["test2"] = run_test2(config, dnc, dataset, device, dtype)
        state["timer"] = timer.state_dict()
        checkpointer.save(state)
    test1, test2 = state["test1"], state["test2"]

    out = Path(config.results_dir) / "dnc"
    loop.curve.to_csv(out / f"{name}_curve.csv")
    if figures is not None:
        title = f"Model {config.model}{' + aux loss' if config.aux_weight > 0 else ''} ({config.preset})"
        figures(MemoryStudy(config, name, title, dnc, dataset, device, dtype, loop.curve, test1, test2, out))
    metrics = {
        "model": {"memory_slots": slots, "word_size": word, "read_heads": heads, "hidden_size": config.hidden_size},
        "next_image_bce": test1["next_image_bce"],
        "pixel_marginal_bce": test1["pixel_marginal_bce"],
        "final_train_bce_per_image": loop.curve.rows[-1]["bce_per_image"],
        "test1": test1,
        "test2": test2,
        "table_markdown": markdown_table(summary_rows(name, test1)),
    }
    path = write_result(
        "dnc",
        name,
        experiment="dnc_dsprites",
        config=config,
        metrics=metrics,
        wall_seconds=time.perf_counter() - start_time,
        stages=timer.seconds,
        results_dir=config.results_dir,
    )
    summary = write_summary(config.results_dir, config.preset)
    print(metrics["table_markdown"])
    print(f"result: {path}; summary: {summary}")
    return metrics

"""Copy (or repeat copy) with a DNC and an LSTM of similar size: train on lengths 1..L, test at L and 2L.

    python experiments/dnc_copy.py --preset smoke                # seconds: checks the wiring
    python experiments/dnc_copy.py --preset fast --results_dir results   # the committed result (copy, L = 8)
    python experiments/dnc_copy.py --preset fast --task repeat_copy --name repeat_copy_generalisation

The study is :mod:`dreamlab.dnc.copy_study`; this script is its command line and figures. The run checkpoints into
--run_dir (default runs/dnc_copy/<name>); re-running the same command after a kill resumes. Results (under
--results_dir, default runs/results): dnc/<name>.json (metrics.bit_error_at_2x_length for both models),
<name>_curves.csv, <name>_curves.png and <name>_example.png.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn

from dreamlab.config import parse_config
from dreamlab.dnc.copy_study import MODELS, PRESETS, CopyStudy, DNCCopyConfig, run
from dreamlab.dnc.tasks import SequenceBatch
from dreamlab.figures import save_figure
from dreamlab.results import CurveLog
from dreamlab.runs import cli


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


def figures(study: CopyStudy) -> None:
    """Training and test curves, and one 2L example with the DNC's memory weightings."""
    save_curves_figure(study.curve, study.out / f"{study.name}_curves.png", study.config.max_length)
    save_example_figure(study.models, study.tests["at_2x"], study.out / f"{study.name}_example.png")


@cli
def main(argv: list[str] | None = None) -> dict:
    return run(parse_config(DNCCopyConfig, PRESETS, argv, description=__doc__), figures)


if __name__ == "__main__":
    main()

"""What does a DNC trained as a next-sprite model keep in its memory? (Mufti, "DNC Memory Testing Using dSprites")

The study (training, Test 1's linear probes, Test 2's mutual information, the summary table) is
:mod:`dreamlab.dnc.memory_study`; this script is its command line and figures. ``--aux_weight`` > 0 adds the post's
future-work idea: a linear decoder of the current latents from r_t (or M_t) in the loss.

python experiments/dnc_dsprites.py --preset fast --model B --results_dir results
python experiments/dnc_dsprites.py --preset fast --model B --aux_weight 10 --results_dir results
python experiments/dnc_dsprites.py --preset fast --model A --results_dir results

Each run writes <results_dir>/dnc/dsprites_memory_<model>[_aux]_<preset>.json with figures, and refreshes the summary
<results_dir>/dnc/dsprites_memory.json (table over every run of that preset); results_dir defaults to runs/results,
and a smoke run may not write into the committed results/. Interrupted runs resume from
runs/dnc_dsprites/<name>/checkpoint.pt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from dreamlab.config import parse_config
from dreamlab.dnc.dsprites_rollouts import prepare_images, random_rollouts, teacher_forcing
from dreamlab.dnc.memory_study import EXAMPLE_STREAM, PRESETS, DNCSpritesConfig, MemoryStudy, run
from dreamlab.dnc.probes import REGRESSION_LATENTS
from dreamlab.figures import save_figure
from dreamlab.results import CurveLog
from dreamlab.runs import cli


def plot_probes(test1: dict[str, Any], title: str, path: Path) -> None:
    panels = [("shape_error", "shape error (lower is better)")] + [(f"{n}_r2", f"{n} R^2") for n in REGRESSION_LATENTS]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    lags = test1["lags"]
    for ax, (key, label) in zip(axes, panels, strict=True):
        for i, (source, by_lag) in enumerate(test1["sources"].items()):
            color = f"C{i}"
            ax.plot(lags, [by_lag[f"t-{lag}"]["test"][key] for lag in lags], "o-", color=color, label=source)
            if source in test1["control"]:
                ax.axhline(
                    test1["control"][source]["test"][key], color=color, ls="--", lw=1, label=f"random ({source})"
                )
        ax.set(xlabel="lag (steps back)", title=label, xticks=lags)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{title}: held-out linear probe scores", y=1.04)
    save_figure(fig, path)


def plot_mutual_information(test2: dict[str, Any], title: str, path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    memory = test2["memory"]
    true_mi, control_mi = np.array(memory["true_mi_per_location"]), np.array(memory["control_mi_per_location"])
    axes[0].plot(true_mi, ".", ms=2, label="fed X sequence")
    axes[0].plot(control_mi, ".", ms=2, alpha=0.6, label="control sequence")
    axes[0].set(xlabel="memory location (slot * W + element)", ylabel="mean MI (nats)", title="MI per location")
    axes[0].legend(fontsize=7)
    axes[1].scatter(control_mi, true_mi, s=3)
    limit = max(true_mi.max(), control_mi.max())
    axes[1].plot([0, limit], [0, limit], "k--", lw=1)
    axes[1].set(xlabel="MI with control", ylabel="MI with fed sequence", title="true vs control per location")
    for field, style in (("memory", "C0"), ("read_vectors", "C1")):
        axes[2].hist(
            test2[field]["t_statistic_per_location"], bins=40, alpha=0.6, color=style, density=True, label=field
        )
    axes[2].set(xlabel="paired t (true - control)", title="t statistics per location")
    axes[2].legend(fontsize=7)
    fig.suptitle(f"{title}: Test 2, {len(test2['lengths'])} X-position sequences", y=1.03)
    save_figure(fig, path)


@torch.no_grad()
def plot_examples(study: MemoryStudy, path: Path, steps: int = 10) -> None:
    config, dnc, title = study.config, study.dnc, study.title
    rng = np.random.default_rng([config.seed, EXAMPLE_STREAM])
    rollouts = random_rollouts(study.dataset, 2, max(steps, 20), rng)
    inputs, _ = teacher_forcing(rollouts, config.image_size, study.device, study.dtype)
    predicted = torch.sigmoid(dnc(inputs)[0]).reshape(2, -1, config.image_size, config.image_size).float().cpu().numpy()
    real = prepare_images(rollouts.images[:, 1:], config.image_size).numpy()
    offset = inputs.shape[1] - steps  # show late steps, after the memory has filled
    fig, axes = plt.subplots(4, steps, figsize=(1.3 * steps, 5.6))
    for r in range(2):
        for t in range(steps):
            axes[2 * r, t].imshow(real[r, offset + t], cmap="gray", vmin=0, vmax=1)
            axes[2 * r + 1, t].imshow(predicted[r, offset + t], cmap="gray", vmin=0, vmax=1)
            axes[2 * r, t].set_title(f"t+1={offset + t + 1}", fontsize=7)
        axes[2 * r, 0].set_ylabel("real", fontsize=8)
        axes[2 * r + 1, 0].set_ylabel("predicted", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title}: next sprite, real (odd rows) vs predicted (even rows)")
    save_figure(fig, path)


def plot_curve(curve: CurveLog, title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(curve.column("bce_per_image"), lw=1)
    ax.set(xlabel="batch", ylabel="BCE per image (nats)", title=f"{title}: training")
    if any(curve.column("aux_loss")):
        twin = ax.twinx()
        twin.plot(curve.column("aux_loss"), color="C1", lw=1)
        twin.set_ylabel("auxiliary decoder loss", color="C1")
    save_figure(fig, path)


def figures(study: MemoryStudy) -> None:
    """The training curve, both tests' scores and example predictions, beside the result."""
    out, name, title = study.out, study.name, study.title
    plot_curve(study.curve, title, out / f"{name}_curve.png")
    plot_probes(study.test1, title, out / f"{name}_probes.png")
    plot_mutual_information(study.test2, title, out / f"{name}_mutual_information.png")
    plot_examples(study, out / f"{name}_examples.png")


@cli
def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run(parse_config(DNCSpritesConfig, PRESETS, argv, description=__doc__), figures)


if __name__ == "__main__":
    main()

"""PPO + Random Network Distillation on PixelCopter from pixels, with or without the extrinsic reward.

    python experiments/rnd_pixelcopter.py --preset fast                        # extrinsic + intrinsic
    python experiments/rnd_pixelcopter.py --preset fast --extrinsic_coef 0     # intrinsic only

The study is :mod:`dreamlab.rnd.pixelcopter_study`; this script is its command line and figures. Checkpoints go to
runs/rnd_pixelcopter/<name>/; rerunning the same command resumes (a larger --total_env_steps extends a finished
run). Writes <results_dir>/rnd/<name>_pixelcopter.json (results_dir defaults to runs/results) with 100 evaluation
episodes of the sampled and of the greedy policy (``--eval_policy`` picks the headline one), the training curves
(CSV + PNG) and a GIF of one evaluation episode.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from dreamlab.config import parse_config
from dreamlab.figures import save_figure, save_gif
from dreamlab.results import CurveLog
from dreamlab.rnd import PRESETS, RNDConfig
from dreamlab.rnd.pixelcopter_study import run
from dreamlab.runs import cli

GIF_FRAMES = 450  # 15 s of play at 30 fps
CURVE_PANELS = (
    ("extrinsic_return", "extrinsic return (last 100 episodes)"),
    ("episode_length", "episode length (last 100 episodes)"),
    ("intrinsic_reward", "intrinsic reward (normalised, per step)"),
    ("value_loss_ext", "extrinsic value loss"),
    ("value_loss_int", "intrinsic value loss"),
    ("predictor_loss", "RND predictor loss"),
)


def plot_curves(rows: list[dict], title: str):
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    steps = [row["env_steps"] / 1e6 for row in rows]
    for ax, (key, label) in zip(axes.flat, CURVE_PANELS, strict=True):
        ax.plot(steps, [row.get(key, np.nan) for row in rows])  # a return is undefined before the first episode
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("env steps (millions)")
        if key.startswith(("value_loss", "predictor")):
            ax.set_yscale("log")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def figures(out: Path, name: str, config: RNDConfig, curves: CurveLog, frames: list[np.ndarray]) -> None:
    """The training curves, and a GIF of the recorded evaluation episode."""
    title = f"PPO + RND on PixelCopter, extrinsic_coef={config.extrinsic_coef}"
    save_figure(plot_curves(curves.rows, title), out / f"{name}_pixelcopter_curves.png")
    # 48 x 48 frames scaled 3x so the copter is visible; at most GIF_FRAMES frames keep the file small.
    gif = np.stack(frames[:GIF_FRAMES]).repeat(3, axis=1).repeat(3, axis=2)
    save_gif(gif, out / f"{name}_pixelcopter_episode.gif", fps=30)


@cli
def main(argv: list[str] | None = None) -> dict:
    return run(parse_config(RNDConfig, PRESETS, argv, description=__doc__), figures)


if __name__ == "__main__":
    main()

"""The shifted Schaffer toy of the CMA-ES post: a population of 64 finds the optimum at (10, 10).

The loss is (f(s) - f(10, 10))^2 for the Schaffer function f shifted to (10, 10) (the post's fitness
-(f(s) - f(10, 10))^2, minimised); popsize 64, mu = 0.25 * 64 = 16, the post's sigma0 = 0.3 and x0 ~ N(0, I).
The animation shows each generation's population (red), the mean it was sampled around (green), the 2-sigma
ellipse of sigma^2 C, and the solution (blue).

By default the run goes on until the whole distribution has converged and reports the post's criterion (a loss
<= 1e-10) as ``generations_to_ftarget``; the ``paper`` preset stops at it, as the post does. The protocol, its
checkpoints and resumption live in :mod:`dreamlab.cmaes.schaffer_study`; this script adds the figures.

python experiments/cmaes_schaffer.py --preset fast --results_dir results    # results/cmaes/schaffer.{json,csv,gif,png}
python experiments/cmaes_schaffer.py --preset paper --results_dir results   # results/cmaes/schaffer_paper.*
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from dreamlab.cmaes import SCHAFFER_OPTIMUM
from dreamlab.cmaes.schaffer_study import PRESETS, SchafferConfig, SchafferRun, run
from dreamlab.config import parse_config
from dreamlab.figures import figure_to_array, save_figure, save_gif
from dreamlab.runs import cli

PLOT_LIMITS = (-1.0, 20.0)  # the post's axes


def draw_generation(ax: plt.Axes, X: np.ndarray, mean: np.ndarray, sigma: float, C: np.ndarray) -> None:
    """Population (red), the mean it was drawn around (green), 2-sigma ellipse of sigma^2 C, solution (blue)."""
    eigenvalues, vectors = np.linalg.eigh(C)
    angle = np.linspace(0, 2 * np.pi, 100)
    circle = np.stack([np.cos(angle), np.sin(angle)])
    ellipse = mean[:, None] + 2 * sigma * vectors @ (np.sqrt(eigenvalues)[:, None] * circle)
    ax.plot(*ellipse, color="green", lw=0.8, alpha=0.6)
    ax.plot(X[:, 0], X[:, 1], "r.", ms=4, label="population")
    ax.plot(*mean, "o", color="green", ms=6, label="mean")
    ax.plot(*SCHAFFER_OPTIMUM, "o", color="blue", ms=6, label="solution")
    ax.set(xlim=PLOT_LIMITS, ylim=PLOT_LIMITS, aspect="equal", xlabel="$s_1$", ylabel="$s_2$")


def draw_frames(frames: list[dict[str, Any]]) -> list[np.ndarray]:
    images = []
    for frame in frames:
        fig, ax = plt.subplots(figsize=(4.2, 4.2))
        draw_generation(ax, frame["X"], frame["mean"], frame["sigma"], frame["C"])
        ax.set_title(f"generation {frame['generation']}, best loss {frame['best']:.1e}", fontsize=9)
        images.append(figure_to_array(fig, dpi=72))
    return images


def figures(out_dir: Path, config: SchafferConfig, state: SchafferRun) -> None:
    """<name>.gif: every drawn generation; <name>.png: the path of the mean over the final distribution, and the
    best loss and search width by generation."""
    es, curve, x0 = state.es, state.curve, state.x0
    save_gif(draw_frames(state.frames), out_dir / f"{config.name}.gif", fps=config.fps)
    fig, (ax_pop, ax_loss) = plt.subplots(1, 2, figsize=(10, 4.4))
    means = np.array([x0, *zip(curve.column("mean_1"), curve.column("mean_2"), strict=True)])
    ax_pop.plot(means[:, 0], means[:, 1], "-", color="green", lw=0.8, alpha=0.7, label="path of the mean")
    last_X = es.ask()  # a sample of the final distribution, for display only (never told)
    draw_generation(ax_pop, last_X, es.mean, es.sigma, es.C)
    ax_pop.legend(loc="upper left", fontsize=8)
    distance = np.linalg.norm(es.mean - SCHAFFER_OPTIMUM)
    ax_pop.set_title(f"after {es.generation} generations the mean is {distance:.1e} from (10, 10)", fontsize=10)
    ax_loss.semilogy(curve.column("generation"), curve.column("best_loss"), label="best loss so far")
    ax_loss.semilogy(
        curve.column("generation"), curve.column("spread"), label="spread $\\sigma \\sqrt{\\lambda_{max}(C)}$"
    )
    ax_loss.axhline(config.ftarget, color="grey", ls=":", label="target")
    ax_loss.set(xlabel="generation", title="loss $(f(s) - f(10, 10))^2$ and search width")
    ax_loss.legend(fontsize=8)
    save_figure(fig, out_dir / f"{config.name}.png")


@cli
def main(argv: list[str] | None = None) -> dict:
    return run(parse_config(SchafferConfig, PRESETS, argv, description=__doc__), figures)


if __name__ == "__main__":
    main()

"""Bishop's inverse problem: a squared-error network collapses to the conditional mean, an MDN covers every branch.

python experiments/mdn_toy.py --preset fast --results_dir results

The study is :func:`dreamlab.mdn.toy.run`; this script is its command line and figures
(<results_dir>/mdn/<name>_{data,mse_fit,mdn_samples}.png).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from dreamlab.config import parse_config
from dreamlab.figures import save_figure
from dreamlab.mdn.toy import PRESETS, MDNToyConfig, run
from dreamlab.runs import cli


def figures(out: Path, name: str, points: dict[str, np.ndarray]) -> None:
    """The held-out data, the squared-error fit over it, and the MDN's samples over it."""
    for suffix, title, overlay in (
        ("data", "Inverse problem: t given x is multi-valued", None),
        ("mse_fit", "Squared error learns the conditional mean", points["mse"]),
        ("mdn_samples", "MDN samples cover every branch", points["mdn"]),
    ):
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.scatter(points["x"], points["t"], s=4, alpha=0.4, color="tab:blue", label="data")
        if overlay is not None:
            ax.scatter(points["x"], overlay, s=4, alpha=0.6, color="tab:red", label="prediction")
        ax.set(xlabel="x", ylabel="t", title=title)
        ax.legend(loc="upper left")
        save_figure(fig, out / f"{name}_{suffix}.png")


@cli
def main(argv: list[str] | None = None) -> dict:
    return run(parse_config(MDNToyConfig, PRESETS, argv, description=__doc__), figures)


if __name__ == "__main__":
    main()

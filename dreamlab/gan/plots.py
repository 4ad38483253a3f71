"""Figures for GAN runs: image grids with row labels, and training curves."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

if not os.environ.get("MPLBACKEND"):  # a notebook's kernel names its inline backend there: keep it
    matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np


def tile_images(images: np.ndarray, rows: int, pad: int = 1) -> np.ndarray:
    """uint8 (rows * cols, H, W, 3) -> one (rows * (H + pad), cols * (W + pad), 3) mosaic, row-major."""
    n, h, w, c = images.shape
    if n % rows:
        raise ValueError(f"{n} images do not fill {rows} rows")
    cols = n // rows
    canvas = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, cols)
        canvas[r * (h + pad) : r * (h + pad) + h, col * (w + pad) : col * (w + pad) + w] = image
    return canvas


def labelled_grid(images: np.ndarray, row_labels: Sequence[str], title: str) -> plt.Figure:
    """A mosaic of uint8 images with one label per row."""
    rows = len(row_labels)
    mosaic = tile_images(images, rows)
    cols = len(images) // rows
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * cols, 0.3 + 0.7 * rows))
    ax.imshow(mosaic, interpolation="nearest")
    h = (mosaic.shape[0] + 1) / rows
    ax.set_yticks([(i + 0.5) * h for i in range(rows)], list(row_labels))
    ax.set_xticks([])
    ax.set_title(title, fontsize=9)
    return fig


def curves_figure(series: dict[str, tuple[Sequence[float], Sequence[float]]], title: str, ylabel: str) -> plt.Figure:
    """Line plot of named (x, y) series."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, (x, y) in series.items():
        ax.plot(x, y, label=label, linewidth=1.2)
    ax.set(xlabel="step", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig

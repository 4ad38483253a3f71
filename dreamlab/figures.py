"""Saving figures and animations atomically, with a non-interactive matplotlib backend."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

if not os.environ.get("MPLBACKEND"):  # a notebook's kernel names its inline backend there: keep it
    matplotlib.use("Agg")

import imageio.v3 as iio
import matplotlib.pyplot as plt
import numpy as np

from dreamlab.files import atomic_write_bytes


def save_figure(fig: plt.Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG (or the format the suffix names) and close it."""
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def save_gif(frames: Sequence[np.ndarray] | np.ndarray, path: str | os.PathLike, fps: float = 15.0) -> Path:
    """Write uint8 frames (T, H, W, 3) or (T, H, W) as a looping GIF."""
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4) or len(frames) == 0:
        raise ValueError(f"expected frames of shape (T, H, W[, 3]), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames, got {frames.dtype}")
    data = iio.imwrite("<bytes>", frames, extension=".gif", duration=1000.0 / fps, loop=0)
    return atomic_write_bytes(path, data)


def figure_to_array(fig: plt.Figure, dpi: int = 80) -> np.ndarray:
    """Render a figure to an (H, W, 3) uint8 array (for building animations) and close it."""
    fig.set_dpi(dpi)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image

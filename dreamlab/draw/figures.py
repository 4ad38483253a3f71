"""The DRAW study's figures: reconstructions, prior samples and, for DRAW, per-glimpse canvases and attention GIFs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch

from dreamlab.draw.data import ImageSet
from dreamlab.draw.model import DRAW
from dreamlab.draw.vae import VAE
from dreamlab.draw.visualize import attention_frames, glimpse_strip, tile, to_rgb
from dreamlab.figures import save_figure, save_gif

if TYPE_CHECKING:
    from dreamlab.draw.study import DrawConfig


def save_image(grid: np.ndarray, path: Path, title: str) -> None:
    """An image grid as a titled PNG, sized to its pixels."""
    height, width = grid.shape[:2]
    fig, ax = plt.subplots(figsize=(max(3.0, width / 80), max(2.0, height / 80 + 0.4)))
    ax.imshow(grid, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    save_figure(fig, path)


def _probabilities(logits: torch.Tensor) -> np.ndarray:
    return torch.sigmoid(logits).float().cpu().numpy()


def _gif(frames: np.ndarray, path: Path, glimpses: int) -> Path:
    fps = max(2.0, glimpses / 4)
    save_gif(np.concatenate([frames, frames[-1:].repeat(int(fps), axis=0)]), path, fps=fps)  # hold the last frame
    return path


@torch.no_grad()
def write_figures(
    model: DRAW | VAE, config: DrawConfig, images: ImageSet, prefix: Path, device: torch.device, dtype: torch.dtype
) -> list[Path]:
    """Write ``prefix``_reconstructions/_samples.png and, for DRAW, the glimpse strips and attention GIFs."""
    model.eval()
    count = min(config.figure_images, len(images.test))
    targets = images.batch("test", slice(0, count), device, dtype)
    generator = torch.Generator(device=device).manual_seed(config.seed + 2)
    recon = model(targets, generator=generator)
    samples = model.generate(max(count, 16), generator=generator)
    target_np = targets.float().cpu().numpy()

    def path(suffix: str) -> Path:
        return prefix.with_name(prefix.name + suffix)

    pairs = np.concatenate([to_rgb(target_np, 2), to_rgb(_probabilities(recon.final_logits), 2)])
    save_image(tile(pairs, count), path("_reconstructions.png"), "test images / reconstructions")
    save_image(tile(to_rgb(_probabilities(samples.final_logits), 2), 8), path("_samples.png"), "samples from the prior")
    written = [path("_reconstructions.png"), path("_samples.png")]
    if isinstance(model, VAE):
        return written

    recon_canvases = _probabilities(recon.canvases)
    sample_canvases = _probabilities(samples.canvases[:, :count])
    title = "sigmoid(c_t) for t = 1..T while "
    strip = glimpse_strip(recon_canvases, target_np)
    save_image(strip, path("_glimpses_reconstruction.png"), title + "reconstructing; target last")
    save_image(glimpse_strip(sample_canvases), path("_glimpses_samples.png"), title + "generating")
    written += [path("_glimpses_reconstruction.png"), path("_glimpses_samples.png")]

    read_windows = recon.read_windows.detach() if recon.read_windows is not None else None
    write_windows = recon.write_windows.detach() if recon.write_windows is not None else None
    frames = attention_frames(
        recon_canvases, write_windows, config.write_patch, target_np, read_windows, config.read_patch
    )
    written.append(_gif(frames, path("_attention.gif"), config.glimpses))
    sample_windows = samples.write_windows.detach() if samples.write_windows is not None else None
    if sample_windows is not None:
        sample_windows = type(sample_windows)(*(t[:, :count] for t in sample_windows.as_tuple()))
    frames = attention_frames(sample_canvases, sample_windows, config.write_patch, columns=count)
    written.append(_gif(frames, path("_generation.gif"), config.glimpses))
    return written

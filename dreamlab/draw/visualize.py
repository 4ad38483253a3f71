"""Pictures of DRAW at work: image grids, per-glimpse canvases and attention animations with the windows drawn.

All functions take images as float arrays in [0, 1] shaped (n, C, H, W) (C = 1 or 3) and return uint8 RGB arrays,
ready for :func:`dreamlab.figures.save_gif` or ``imageio``.
"""

from __future__ import annotations

import numpy as np

from dreamlab.draw.attention import AttentionWindow

READ_COLOUR = (40, 220, 60)  # green, the colour-DRAW post's attention marks
WRITE_COLOUR = (230, 40, 40)  # red, the paper's Figure 1 rectangle


def to_rgb(images: np.ndarray, scale: int = 1) -> np.ndarray:
    """(n, C, H, W) floats in [0, 1] -> (n, H*scale, W*scale, 3) uint8, nearest-neighbour upscaled."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images (n, 1 or 3, H, W), got {images.shape}")
    rgb = np.repeat(images, 3, axis=1) if images.shape[1] == 1 else images
    rgb = (np.clip(rgb, 0.0, 1.0) * 255).round().astype(np.uint8).transpose(0, 2, 3, 1)
    return rgb.repeat(scale, axis=1).repeat(scale, axis=2)


def tile(frames: np.ndarray, columns: int, gap: int = 2, background: int = 128) -> np.ndarray:
    """Arrange (n, H, W, 3) uint8 frames row-major in a grid with ``columns`` columns."""
    count, height, width, _ = frames.shape
    rows = -(-count // columns)
    grid = np.full((rows * (height + gap) + gap, columns * (width + gap) + gap, 3), background, dtype=np.uint8)
    for k, frame in enumerate(frames):
        r, c = divmod(k, columns)
        top, left = gap + r * (height + gap), gap + c * (width + gap)
        grid[top : top + height, left : left + width] = frame
    return grid


def window_box(window: AttentionWindow, patch: int, index: int, step: int | None = None) -> tuple[float, ...]:
    """(left, top, right, bottom) in 0-based pixel-edge coordinates of one window's N x N grid.

    The grid's filter centres run from g - (N - 1) delta / 2 to g + (N - 1) delta / 2 (eqs. 19-20); the box
    extends half a stride beyond them so that it covers the region the filters sample. Paper coordinates put
    pixel a's centre at a (1-based), so a paper coordinate u is the edge coordinate u - 1/2 (pixel a spans
    [a - 1, a]).
    """
    pick = (lambda t: t[step, index]) if step is not None else (lambda t: t[index])
    gx, gy, stride = (float(pick(t)) for t in (window.centre_x, window.centre_y, window.stride))
    half = patch * stride / 2
    return gx - half - 0.5, gy - half - 0.5, gx + half - 0.5, gy + half - 0.5


def draw_box(
    frame: np.ndarray, box: tuple[float, ...], colour: tuple[int, int, int], scale: int, thickness: int = 1
) -> None:
    """Draw a rectangle outline in place on an (H, W, 3) uint8 frame; ``box`` is in unscaled pixel coordinates.

    Parts of the box outside the frame are clipped, so a window larger than the image still shows its visible edges.
    """
    height, width = frame.shape[:2]
    left, top, right, bottom = (round(v * scale) for v in box)
    colour_array = np.asarray(colour, dtype=np.uint8)

    def clip_x(v: int) -> int:
        return min(max(v, 0), width)

    def clip_y(v: int) -> int:
        return min(max(v, 0), height)

    x0, x1, y0, y1 = clip_x(left), clip_x(right), clip_y(top), clip_y(bottom)
    for edge in range(thickness):
        for y in (top + edge, bottom - 1 - edge):
            if 0 <= y < height and x1 > x0:
                frame[y, x0:x1] = colour_array
        for x in (left + edge, right - 1 - edge):
            if 0 <= x < width and y1 > y0:
                frame[y0:y1, x] = colour_array


def glimpse_strip(canvases: np.ndarray, targets: np.ndarray | None = None, scale: int = 2) -> np.ndarray:
    """One row per image showing sigmoid(c_t) after every glimpse, the target last when given.

    ``canvases`` is (T, n, C, H, W) in [0, 1]; returns a uint8 grid of n rows and T (+1) columns.
    """
    steps, count = canvases.shape[:2]
    frames = [to_rgb(canvases[:, k], scale) for k in range(count)]
    if targets is not None:
        frames = [np.concatenate([f, to_rgb(targets[k : k + 1], scale)]) for k, f in enumerate(frames)]
    columns = steps + (targets is not None)
    return tile(np.concatenate(frames), columns)


def attention_frames(
    canvases: np.ndarray,
    write_windows: AttentionWindow | None,
    write_patch: int,
    targets: np.ndarray | None = None,
    read_windows: AttentionWindow | None = None,
    read_patch: int = 0,
    scale: int = 4,
    columns: int = 4,
) -> np.ndarray:
    """Animation frames (T, H, W, 3): per glimpse, each image's canvas with the write window (red).

    With ``targets`` and ``read_windows`` every tile pairs the target with the read window (green) on its left with
    the canvas on its right, so the frame shows where the encoder looked and where the decoder drew at step t.
    """
    steps, count = canvases.shape[:2]
    targets_rgb = to_rgb(targets, scale) if targets is not None else None
    frames = []
    for t in range(steps):
        tiles = []
        for k in range(count):
            canvas = to_rgb(canvases[t, k : k + 1], scale)[0]
            if write_windows is not None:
                draw_box(canvas, window_box(write_windows, write_patch, k, t), WRITE_COLOUR, scale)
            if targets_rgb is not None:
                target = targets_rgb[k].copy()
                if read_windows is not None:
                    draw_box(target, window_box(read_windows, read_patch, k, t), READ_COLOUR, scale)
                spacer = np.full((canvas.shape[0], 2, 3), 128, dtype=np.uint8)
                canvas = np.concatenate([target, spacer, canvas], axis=1)
            tiles.append(canvas)
        frames.append(tile(np.stack(tiles), columns))
    return np.stack(frames)

"""The vector env's screens drawn in full from the game state: the reference the incremental drawing is tested and
benchmarked against (:meth:`PixelCopterVectorEnv._update_screens` must agree with it byte for byte).

This was the vector env's drawing until its screens became incremental; it draws every pixel of every screen on
every call (~15 ms for 1024 games), which is why it is kept only as the reference.
"""

from __future__ import annotations

import numpy as np

from dreamlab.envs.pixelcopter import rules as R
from dreamlab.envs.pixelcopter.vector import PixelCopterVectorEnv


def reference_screens(vec: PixelCopterVectorEnv) -> np.ndarray:
    """Every game's screen, (num_envs, 48, 48, 3) uint8, drawn in full as PixelCopterEnv draws one.

    Terrain: a column sprite paints rows [y_t - 36, y_t - 12) and [y_t + 14, y_t + 36); with y_t in [18, 30] the
    first starts above the screen and the second ends below it, so per pixel column the green is rows
    < max(y_t) - 12 and rows >= min(y_t) + 14 over the (at most two) columns covering it. Blocks add green; the
    player is white where nothing green covers it (PLE draws the player first, then blocks and terrain).
    """
    n = vec.num_envs
    row, shift = vec.schedule.lookup(vec._t)
    columns = vec.schedule.cover[row]  # (n, W, 2)
    sprite_top = vec._column_heights(slice(None), columns, shift) - R.COLUMN_HEIGHT // 2
    covered = columns >= 0
    ceiling_end = np.where(covered, sprite_top + R.CEILING_SPRITE_ROWS[1], 0).max(axis=2).astype(np.int8)
    floor_start = np.where(covered, sprite_top + R.FLOOR_SPRITE_ROWS[0], R.HEIGHT).min(axis=2).astype(np.int8)
    rows = np.arange(R.HEIGHT, dtype=np.int8)[None, :, None]
    green = (ceiling_end[:, None, :] > rows) | (floor_start[:, None, :] <= rows)
    green_flat = green.reshape(-1)
    base = np.arange(n, dtype=np.int64) * (R.HEIGHT * R.WIDTH)
    on = vec._block_on
    block_left = R.rect_start(vec._block_x[on], R.BLOCK_WIDTH)
    block_top = vec._block_y[on] - R.BLOCK_HEIGHT // 2
    green_flat[_rect_pixels(base[on.nonzero()[0]], block_left, block_top, R.BLOCK_WIDTH, R.BLOCK_HEIGHT)] = True
    # colour planes stacked: much faster than indexing a palette with (n, H, W) labels
    frame = np.stack([green.view(np.uint8) * np.uint8(channel) for channel in R.GREEN], axis=-1)
    size = R.PLAYER_RECT_SIZE
    player = _rect_pixels(base, np.full(n, R.PLAYER_LEFT), R.rect_start(vec._y, size), size, size)
    frame.reshape(-1, 3)[player[~green_flat[player]]] = R.WHITE
    return frame


def _rect_pixels(base: np.ndarray, left: np.ndarray, top: np.ndarray, width: int, height: int) -> np.ndarray:
    """Flat indices of the on-screen pixels of one width x height rect per image at offset ``base``."""
    rows = top.astype(np.int64)[:, None, None] + np.arange(height)[None, :, None]
    cols = left.astype(np.int64)[:, None, None] + np.arange(width)[None, None, :]
    visible = (rows >= 0) & (rows < R.HEIGHT) & (cols >= 0) & (cols < R.WIDTH)
    return (base[:, None, None] + rows * R.WIDTH + cols)[visible]

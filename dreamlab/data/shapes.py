"""Vectorised rasterisation of the sprite shapes shared by the dSprites generator and the coloured sprites.

Geometry: continuous image coordinates with pixel (row i, column j) covering [j, j+1) x [i, i+1), sampled at its
centre (j + 0.5, i + 0.5), so a pixel is "on" when its centre lies inside the shape (no anti-aliasing: the images are
binary masks). Each shape is defined in a local frame (u to the right, v *up* on screen) where it is 2 wide at
orientation 0 (the square is [-1, 1]^2) with its centroid at the origin; it is then scaled by a half-size in pixels,
rotated counter-clockwise on screen by the orientation and moved to its centre. Rotation is therefore about the
sprite's centroid.
"""

from __future__ import annotations

import numpy as np

SHAPE_NAMES = ("square", "ellipse", "heart", "triangle")
SQUARE, ELLIPSE, HEART, TRIANGLE = range(4)

# Ellipse semi-axes in the local frame: major axis horizontal at orientation 0, aspect ratio 2:1.
ELLIPSE_MINOR = 0.5

# The heart is the sextic (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 (lobes up, point down). Measured numerically on a
# 4000^2 grid: half-width 1.1384, y in [-0.9974, 1.2359], centroid y = 0.2935. Scaling the local frame by the
# half-width makes the heart 2 wide (like the square) and 1.96 tall; shifting by the centroid centres it.
_HEART_HALF_WIDTH = 1.1384
_HEART_CENTROID_Y = 0.2935

# Equilateral triangle pointing up with its centroid at the origin and width 2: circumradius 2/sqrt(3); its edges lie
# at inradius R/2 along the outward normals at 270, 30 and 150 degrees.
_TRIANGLE_INRADIUS = 1.0 / np.sqrt(3.0)
_TRIANGLE_NORMALS = np.array([[0.0, -1.0], [np.cos(np.pi / 6), np.sin(np.pi / 6)], [-np.cos(np.pi / 6), 0.5]])

# Rendering is done in chunks so the (chunk, size, size) float temporaries stay small (~16 MB at 64x64).
_CHUNK = 1024


def _inside_local(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of local-frame points (u, v) inside the given shape."""
    if shape == SQUARE:
        return np.maximum(np.abs(u), np.abs(v)) <= 1.0
    if shape == ELLIPSE:
        return u * u + (v * (1.0 / ELLIPSE_MINOR)) ** 2 <= 1.0
    if shape == HEART:
        x = u * _HEART_HALF_WIDTH
        y = v * _HEART_HALF_WIDTH + _HEART_CENTROID_Y
        x2 = x * x
        r = x2 + y * y - 1.0
        return r * r * r - x2 * y * y * y <= 0.0
    if shape == TRIANGLE:
        inside = np.ones(u.shape, dtype=bool)
        for nx, ny in _TRIANGLE_NORMALS:
            inside &= u * nx + v * ny <= _TRIANGLE_INRADIUS
        return inside
    raise ValueError(f"unknown shape id {shape}: expected 0..{len(SHAPE_NAMES) - 1} ({', '.join(SHAPE_NAMES)})")


def shape_masks(
    shapes: np.ndarray,
    half_sizes: np.ndarray,
    orientations: np.ndarray,
    centres_x: np.ndarray,
    centres_y: np.ndarray,
    size: int,
) -> np.ndarray:
    """Rasterise n shapes at once into an (n, size, size) bool array.

    ``shapes`` are ids into SHAPE_NAMES; ``half_sizes`` in pixels (half the width of the shape's bounding square
    before rotation); ``orientations`` in radians, counter-clockwise on screen; ``centres_x`` (column) and
    ``centres_y`` (row, growing downwards) in continuous pixel coordinates.
    """
    arrays = [np.asarray(a) for a in (shapes, half_sizes, orientations, centres_x, centres_y)]
    n = arrays[0].size
    if any(a.ndim > 1 or a.size != n for a in arrays):
        raise ValueError(f"shape_masks needs five 1-D arrays of one length, got shapes {[a.shape for a in arrays]}")
    if size < 1:
        raise ValueError(f"image size must be positive, got {size}")
    shapes_i, half, theta, cx, cy = (a.reshape(-1) for a in arrays)
    shapes_i = shapes_i.astype(np.int64)
    if n and (shapes_i.min() < 0 or shapes_i.max() >= len(SHAPE_NAMES)):
        low, high = shapes_i.min(), shapes_i.max()
        raise ValueError(f"shape ids must be in 0..{len(SHAPE_NAMES) - 1}, got range {low}..{high}")
    if n and not (np.all(np.isfinite(half)) and half.min() > 0):
        raise ValueError("half sizes must be finite and positive")
    if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(cx)) and np.all(np.isfinite(cy))):
        raise ValueError("orientations and centres must be finite")
    # Reducing modulo 2*pi first makes an orientation of exactly 2*pi render bit-identically to 0.
    theta = np.mod(theta, 2.0 * np.pi)
    # Every shape lies within 1.5 half-sizes of its centre (the heart's point is the farthest, at 1.134), so each
    # sprite is rasterised only inside a square window around its centre and pasted into a zero-padded canvas.
    reach = 1.5 * half
    out = np.zeros((n, size, size), dtype=bool)
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        window = int(np.ceil(2.0 * reach[sl].max())) + 2 if n else 0
        origin_x = np.floor(cx[sl] - window / 2.0).astype(np.int64)
        origin_y = np.floor(cy[sl] - window / 2.0).astype(np.int64)
        offsets = np.arange(window, dtype=np.int64)
        cols = origin_x[:, None] + offsets[None, :]
        rows = origin_y[:, None] + offsets[None, :]
        inv = (1.0 / half[sl]).astype(np.float32)[:, None, None]
        # Offsets of pixel centres from the sprite centre in half-sizes, with the vertical axis pointing up on screen.
        dx = (cols.astype(np.float32) + np.float32(0.5) - cx[sl].astype(np.float32)[:, None])[:, None, :] * inv
        dy = (cy[sl].astype(np.float32)[:, None] - rows.astype(np.float32) - np.float32(0.5))[:, :, None] * inv
        cos = np.cos(theta[sl]).astype(np.float32)[:, None, None]
        sin = np.sin(theta[sl]).astype(np.float32)[:, None, None]
        # Inverse rotation (by -theta) takes screen offsets into the shape's local frame.
        u = cos * dx + sin * dy
        v = cos * dy - sin * dx
        chunk_shapes = shapes_i[sl]
        inside = np.empty(u.shape, dtype=bool)
        for shape in np.unique(chunk_shapes):
            members = np.flatnonzero(chunk_shapes == shape)
            if members.size == len(chunk_shapes):
                inside[:] = _inside_local(int(shape), u, v)
            else:
                inside[members] = _inside_local(int(shape), u[members], v[members])
        # Paste the windows into a canvas padded by one window on each side, so windows reaching past the image
        # edge (clamped to at most one window outside) need no per-pixel bounds checks; the padding is cropped off.
        canvas = np.zeros((len(chunk_shapes), size + 2 * window, size + 2 * window), dtype=bool)
        paste_rows = np.clip(origin_y, -window, size)[:, None, None] + window + offsets[None, :, None]
        paste_cols = np.clip(origin_x, -window, size)[:, None, None] + window + offsets[None, None, :]
        canvas[np.arange(len(chunk_shapes))[:, None, None], paste_rows, paste_cols] = inside
        out[sl] = canvas[:, window : window + size, window : window + size]
    return out

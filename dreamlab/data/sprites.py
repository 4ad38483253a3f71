"""Coloured sprites with attribute labels: the embedded, download-free data for conditional GANs and colour DRAW.

Each image shows one flat-coloured shape on a plain background. Five categorical attributes are drawn
independently and uniformly per image, and each is visible in the pixels, so a classifier can check that a
conditional generator honours its condition:

- ``shape``: square, ellipse, heart, triangle
- ``colour``: seven well-separated pure colours (corners of the RGB cube except black)
- ``size``: small, medium, large (disjoint half-size bands)
- ``x_position`` / ``y_position``: left, centre, right / top, middle, bottom (centres jittered within disjoint bands)

Orientation is a nuisance factor drawn uniformly in [0, ``rotation`` degrees) (all of [0, 2*pi) by default; 0 keeps
every sprite upright) and recorded in ``factors`` with the continuous size and position. Shapes are
binary-rasterised (see ``dreamlab.data.shapes``), so every foreground pixel has exactly the labelled colour. All
draws come from ``numpy.random.default_rng(seed)``: same seed, same images.
"""

from __future__ import annotations

import numpy as np

from dreamlab.data.attributes import LabelledImages
from dreamlab.data.shapes import SHAPE_NAMES, shape_masks

COLOUR_RGB = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "magenta": (255, 0, 255),
    "cyan": (0, 255, 255),
    "white": (255, 255, 255),
}
SIZE_NAMES = ("small", "medium", "large")
X_POSITION_NAMES = ("left", "centre", "right")
Y_POSITION_NAMES = ("top", "middle", "bottom")

# Geometry in pixels of a 64x64 image (scaled with ``size``). Half-size bands are disjoint so size is a clean label;
# position bands put centres at 20, 32 and 44 px +- 2 px, so the largest sprite (its farthest point, a square's
# corner, at sqrt(2) * 12 = 17 px from the centre) stays inside the image and neighbouring position classes never
# share a centre.
_HALF_SIZE_BANDS = ((6.0, 7.0), (8.5, 9.5), (11.0, 12.0))
_POSITION_CENTRES = (20.0, 32.0, 44.0)
_POSITION_JITTER = 2.0


class ColouredSprites(LabelledImages):
    """``n`` RGB sprite images (n, size, size, 3) uint8 with attribute labels; deterministic from ``seed``.

    ``attributes`` maps each attribute to its (n,) int64 classes, ``attribute_classes`` to its class names;
    ``multi_hot()`` gives the (n, 20) condition vectors and ``condition_vector(shape=..., colour=..., size=...,
    x_position=..., y_position=...)`` the vector of one chosen condition.
    """

    binary_attributes = frozenset()

    def __init__(
        self,
        n: int,
        seed: int = 0,
        size: int = 64,
        background: tuple[int, int, int] = (0, 0, 0),
        rotation: float = 360.0,
    ) -> None:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if size < 16:
            raise ValueError(f"image size must be at least 16 pixels, got {size}")
        if not 0.0 <= rotation <= 360.0:
            raise ValueError(f"rotation must be a range of degrees in [0, 360], got {rotation}")
        background = tuple(int(c) for c in background)
        if len(background) != 3 or not all(0 <= c <= 255 for c in background):
            raise ValueError(f"background must be an RGB triple of 0..255, got {background}")
        if background in COLOUR_RGB.values():
            raise ValueError(f"background {background} equals a sprite colour; colour labels would be invisible")
        self.size = size
        self.seed = seed
        self.background = background
        self.attribute_classes = {
            "shape": list(SHAPE_NAMES),
            "colour": list(COLOUR_RGB),
            "size": list(SIZE_NAMES),
            "x_position": list(X_POSITION_NAMES),
            "y_position": list(Y_POSITION_NAMES),
        }
        rng = np.random.default_rng(seed)
        self.attributes = {
            name: rng.integers(0, len(classes), n).astype(np.int64) for name, classes in self.attribute_classes.items()
        }
        pixel = size / 64.0
        bands = np.asarray(_HALF_SIZE_BANDS)[self.attributes["size"]]
        centres = np.asarray(_POSITION_CENTRES)
        self.factors = {
            "half_size": pixel * rng.uniform(bands[:, 0], bands[:, 1]),
            # Scaling the same uniform draws keeps every other factor (and image) identical across rotation ranges.
            "orientation": np.deg2rad(rotation) * rng.uniform(0.0, 1.0, n),
            "centre_x": pixel * (centres[self.attributes["x_position"]] + rng.uniform(-1, 1, n) * _POSITION_JITTER),
            "centre_y": pixel * (centres[self.attributes["y_position"]] + rng.uniform(-1, 1, n) * _POSITION_JITTER),
        }
        masks = shape_masks(
            self.attributes["shape"],
            self.factors["half_size"],
            self.factors["orientation"],
            self.factors["centre_x"],
            self.factors["centre_y"],
            size,
        )
        palette = np.asarray(list(COLOUR_RGB.values()), dtype=np.uint8)
        self.images = np.empty((n, size, size, 3), dtype=np.uint8)
        self.images[:] = np.asarray(background, dtype=np.uint8)
        sprite, rows, cols = np.nonzero(masks)
        self.images[sprite, rows, cols] = palette[self.attributes["colour"][sprite]]

    def __len__(self) -> int:
        return len(self.images)

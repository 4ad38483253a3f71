"""Image sets for DRAW: binarized dSprites and coloured sprites (rendered, no download), MNIST IDX files, folders.

Every source becomes an :class:`ImageSet`: uint8 arrays (n, C, H, W) for train and test, plus whether the pixels are
binary (Bernoulli likelihood, NLL in nats) or 0..255 intensities (L2 loss, as the colour-DRAW post).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from dreamlab.runs import UserError

Source = Literal["dsprites", "coloured_sprites", "mnist", "folder"]
SOURCES: tuple[str, ...] = typing.get_args(Source)
# Channels of each source's images: binary sources are grey, the others colour.
SOURCE_CHANNELS = {"dsprites": 1, "coloured_sprites": 3, "mnist": 1, "folder": 3}

# The four files of the MNIST distribution (LeCun et al.), optionally gzipped.
MNIST_FILES = {
    "train": "train-images-idx3-ubyte",
    "test": "t10k-images-idx3-ubyte",
}


@dataclass
class ImageSet:
    """Train and test images as uint8 (n, C, H, W); ``binary`` means values are 0/1, else 0..255."""

    name: str
    train: np.ndarray
    test: np.ndarray
    binary: bool

    def __post_init__(self) -> None:
        for split, array in (("train", self.train), ("test", self.test)):
            if array.ndim != 4 or array.dtype != np.uint8 or len(array) == 0:
                raise ValueError(f"{self.name} {split} images must be non-empty uint8 (n, C, H, W), got {array.shape}")
        if self.train.shape[1:] != self.test.shape[1:]:
            raise ValueError(f"{self.name}: train {self.train.shape[1:]} and test {self.test.shape[1:]} shapes differ")

    @property
    def shape(self) -> tuple[int, int, int]:
        channels, height, width = self.train.shape[1:]
        return channels, height, width

    def batch(self, split: str, indices: np.ndarray | slice, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Images ``indices`` of ``split`` as a float tensor in [0, 1] on ``device``."""
        array = {"train": self.train, "test": self.test}[split][indices]
        images = torch.from_numpy(np.ascontiguousarray(array)).to(device=device, dtype=dtype)
        return images if self.binary else images / 255.0


def _split_indices(total: int, n_train: int, n_test: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if n_train < 1 or n_test < 1:
        raise ValueError(f"need at least one train and one test image, got n_train={n_train} n_test={n_test}")
    if n_train + n_test > total:
        raise UserError(f"n_train + n_test = {n_train + n_test} exceeds the {total} images available; lower them")
    chosen = rng.choice(total, n_train + n_test, replace=False)
    return chosen[:n_train], chosen[n_train:]


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Area-resize (n, H, W[, 3]) uint8 images to size x size."""
    import cv2

    if images.shape[1] == size and images.shape[2] == size:
        return images
    return np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA) for image in images])


def dsprites_images(size: int, n_train: int, n_test: int, seed: int) -> ImageSet:
    """Binary dSprites (all 737,280 latent combinations) rendered directly at ``size`` x ``size``.

    Disjoint train and test images are drawn uniformly from the grid; rendering at the target size keeps the
    shapes' edges exact instead of thresholding a downscaled 64x64 image.
    """
    from dreamlab.data.dsprites import DSPRITES_NUM_IMAGES, index_to_classes, render_classes

    train_idx, test_idx = _split_indices(DSPRITES_NUM_IMAGES, n_train, n_test, np.random.default_rng(seed))
    render = lambda idx: render_classes(index_to_classes(idx), size=size)[:, None]  # noqa: E731
    return ImageSet("dsprites", render(train_idx), render(test_idx), binary=True)


def coloured_sprites_images(size: int, n_train: int, n_test: int, seed: int) -> ImageSet:
    """Coloured sprites rendered by :mod:`dreamlab.data.sprites`, 0..255 RGB."""
    from dreamlab.data.sprites import ColouredSprites

    train = ColouredSprites(n_train, seed=seed, size=size).images
    test = ColouredSprites(n_test, seed=seed + 1_000_003, size=size).images
    return ImageSet("coloured_sprites", _channels_first(train), _channels_first(test), binary=False)


def _channels_first(images: np.ndarray) -> np.ndarray:
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected (n, H, W, 3) colour images, got {images.shape}")
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


def _find_mnist_file(root: Path, stem: str) -> Path:
    for candidate in (root / stem, root / f"{stem}.gz", root / stem.replace("-idx3", ".idx3")):
        if candidate.is_file():
            return candidate
    raise UserError(
        f"MNIST file {stem}[.gz] not found in {root}; put the IDX files from the MNIST distribution there "
        f"({', '.join(MNIST_FILES.values())}) and pass --data_path {root}"
    )


def mnist_images(root: str, size: int, n_train: int, n_test: int, seed: int) -> ImageSet:
    """Binarized MNIST from the user's IDX files in ``root`` (train and t10k images; labels are not needed).

    Pixels are set to 1 with probability equal to their intensity, sampled once per dataset from ``seed``.
    """
    from dreamlab.data.images import binarize, load_mnist_idx

    if not root:
        raise FileNotFoundError("MNIST needs --data_path: a folder holding train-images-idx3-ubyte[.gz] and t10k-...")
    folder = Path(root)
    if not folder.is_dir():
        raise FileNotFoundError(f"MNIST folder {folder} does not exist")
    rng = np.random.default_rng(seed)
    splits = {}
    for split, count in (("train", n_train), ("test", n_test)):
        images = load_mnist_idx(_find_mnist_file(folder, MNIST_FILES[split]))
        if count > len(images):
            raise UserError(f"asked for {count} MNIST {split} images but {folder} has {len(images)}; lower --n_{split}")
        chosen = _resize(images[np.sort(rng.choice(len(images), count, replace=False))], size)
        # Sampled once with a fixed seed, like the binarized MNIST of the paper (Salakhutdinov & Murray 2008).
        splits[split] = binarize(chosen, rng=rng, stochastic=True).astype(np.uint8)[:, None]
    return ImageSet("mnist", splits["train"], splits["test"], binary=True)


def folder_images(root: str, size: int, n_train: int, n_test: int, seed: int) -> ImageSet:
    """Colour images from a folder (e.g. CelebA's ``img_align_celeba``), centre-cropped and resized to ``size``."""
    from dreamlab.data.images import ImageFolder

    if not root:
        raise FileNotFoundError("--data folder needs --data_path: a folder of images (e.g. CelebA img_align_celeba)")
    if not Path(root).is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    folder = ImageFolder(root, size)
    train_idx, test_idx = _split_indices(len(folder), n_train, n_test, np.random.default_rng(seed))
    return ImageSet(
        "folder", _channels_first(folder.images(train_idx)), _channels_first(folder.images(test_idx)), binary=False
    )


def load_image_set(source: str, *, size: int, n_train: int, n_test: int, seed: int, path: str = "") -> ImageSet:
    """Build the named image set (one of :data:`SOURCES`) at ``size`` x ``size`` pixels."""
    if size < 4:
        raise ValueError(f"image size must be at least 4 pixels, got {size}")
    if source == "dsprites":
        return dsprites_images(size, n_train, n_test, seed)
    if source == "coloured_sprites":
        return coloured_sprites_images(size, n_train, n_test, seed)
    if source == "mnist":
        return mnist_images(path, size, n_train, n_test, seed)
    if source == "folder":
        return folder_images(path, size, n_train, n_test, seed)
    raise ValueError(f"unknown image source {source!r}; choose from {list(SOURCES)}")

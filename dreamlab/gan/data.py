"""Labelled image sets as GAN training tensors: images in [-1, 1], channels first, with per-attribute class indices.

Works with any ``dreamlab.data.attributes.LabelledImages``: ``attributes`` (name -> (n,) int class indices),
``attribute_classes`` (name -> class names), ``binary_attributes``, and ``images`` either an (n, H, W, 3) uint8 array
(``dreamlab.data.sprites.ColouredSprites``) or a method loading images by index (``dreamlab.data.images.ImageFolder``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dreamlab.gan.conditioning import AttributeCodec


def images_to_tensor(images: np.ndarray, size: int | None = None) -> torch.Tensor:
    """uint8 (n, H, W, 3) -> float32 (n, 3, size, size) in [-1, 1], area-resampled when ``size`` differs from H."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images of shape (n, H, W, 3), got {images.dtype} {images.shape}")
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    if size is not None and (x.shape[2], x.shape[3]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="area")
    return x.contiguous()


def tensor_to_images(x: torch.Tensor) -> np.ndarray:
    """Float (n, 3, H, W) in [-1, 1] -> uint8 (n, H, W, 3)."""
    x = x.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round()
    return x.permute(0, 2, 3, 1).to(torch.uint8).numpy()


@dataclass
class LabelledImages:
    """Images (n, 3, S, S) in [-1, 1], class indices (n, A) and the codec that turns them into y."""

    images: torch.Tensor
    labels: torch.Tensor
    codec: AttributeCodec

    @classmethod
    def from_dataset(cls, dataset: Any, size: int | None = None) -> LabelledImages:
        classes = dict(dataset.attribute_classes)
        missing = [k for k in classes if k not in dataset.attributes]
        if missing:
            raise ValueError(f"dataset names attribute classes {missing} but has no labels for them")
        codec = AttributeCodec(classes, getattr(dataset, "binary_attributes", ()))
        pixels = dataset.images(np.arange(len(dataset))) if callable(dataset.images) else dataset.images
        images = images_to_tensor(pixels, size)
        labels = torch.stack(
            [torch.as_tensor(np.asarray(dataset.attributes[k]), dtype=torch.long) for k in codec.names], 1
        )
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"dataset has {images.shape[0]} images but {labels.shape[0]} label rows")
        codec.encode(labels)  # validates the label ranges
        return cls(images, labels, codec)

    def __len__(self) -> int:
        return self.images.shape[0]

    def split(self, held_out: float, generator: torch.Generator) -> tuple[LabelledImages, LabelledImages]:
        """A random (train, held-out) split with a ``held_out`` fraction in the second part."""
        if not 0.0 < held_out < 1.0:
            raise ValueError(f"held_out fraction must be in (0, 1), got {held_out}")
        order = torch.randperm(len(self), generator=generator)
        n_held = max(2, round(held_out * len(self)))
        if n_held >= len(self) - 1:
            raise ValueError(f"{len(self)} images are too few to hold out {held_out:.0%}")
        train, held = order[n_held:], order[:n_held]
        return (
            LabelledImages(self.images[train], self.labels[train], self.codec),
            LabelledImages(self.images[held], self.labels[held], self.codec),
        )

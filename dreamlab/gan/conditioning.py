"""Attribute labels as the conditioning vector y of a conditional GAN.

Each attribute (shape, colour, ...) has a fixed number of classes; y is the concatenation of one one-hot block per
attribute (a multi-hot vector with exactly one 1 per attribute), as in the conditional GAN of Mirza & Osindero (2014)
and the SNcGAN paper (Mufti et al., 2019, arXiv 1903.06259), where y holds supervised labels such as gender.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import torch
import torch.nn.functional as F


class AttributeCodec:
    """Maps per-attribute class indices (n, A) to the multi-hot conditioning vector y (n, C) and back.

    ``attribute_classes`` maps each attribute name to its class names, in the order of the index values. A
    categorical attribute gets a one-hot block; an attribute named in ``binary`` (two classes, e.g. CelebA's -1/1
    columns) gets a single 0/1 column, matching ``dreamlab.data.attributes.LabelledImages.encode``.
    """

    def __init__(self, attribute_classes: Mapping[str, Sequence[str]], binary: Collection[str] = ()):
        if not attribute_classes:
            raise ValueError("a conditional GAN needs at least one attribute")
        for name, classes in attribute_classes.items():
            if len(classes) < 2:
                raise ValueError(f"attribute {name!r} has {len(classes)} class(es); it needs at least 2")
        self.names: list[str] = list(attribute_classes)
        self.class_names: dict[str, list[str]] = {k: list(v) for k, v in attribute_classes.items()}
        unknown = sorted(set(binary) - set(self.names))
        if unknown:
            raise ValueError(f"binary attribute(s) {unknown} are not among {self.names}")
        not_two = [k for k in binary if len(self.class_names[k]) != 2]
        if not_two:
            raise ValueError(f"binary attribute(s) {not_two} need exactly 2 classes")
        self.binary = frozenset(binary)
        self.sizes: list[int] = [len(self.class_names[k]) for k in self.names]  # classes per attribute
        self.widths: list[int] = [1 if k in self.binary else s for k, s in zip(self.names, self.sizes, strict=True)]
        self.offsets: list[int] = [sum(self.widths[:i]) for i in range(len(self.widths))]

    @property
    def dim(self) -> int:
        """Length C of the conditioning vector."""
        return sum(self.widths)

    def encode(self, labels: torch.Tensor) -> torch.Tensor:
        """Class indices (n, A) -> multi-hot y (n, C) in the default float dtype."""
        if labels.ndim != 2 or labels.shape[1] != len(self.names):
            raise ValueError(
                f"expected labels of shape (n, {len(self.names)}) for {self.names}, got {tuple(labels.shape)}"
            )
        labels = labels.long()
        sizes = torch.tensor(self.sizes, device=labels.device)
        if (labels < 0).any() or (labels >= sizes).any():
            raise ValueError(f"label out of range; attributes {self.names} have {self.sizes} classes")
        blocks = [
            labels[:, [a]].float() if name in self.binary else F.one_hot(labels[:, a], size).float()
            for a, (name, size) in enumerate(zip(self.names, self.sizes, strict=True))
        ]
        return torch.cat(blocks, dim=1)

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        """Multi-hot y (n, C) -> the class index of every attribute (n, A): arg-max per block, binary columns > 0.5."""
        if y.ndim != 2 or y.shape[1] != self.dim:
            raise ValueError(f"expected y of shape (n, {self.dim}), got {tuple(y.shape)}")
        blocks = torch.split(y, self.widths, dim=1)
        columns = [
            (b[:, 0] > 0.5).long() if name in self.binary else b.argmax(dim=1)
            for name, b in zip(self.names, blocks, strict=True)
        ]
        return torch.stack(columns, dim=1)

    def sample(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """Uniformly random class indices (n, A)."""
        columns = [torch.randint(s, (n,), generator=generator) for s in self.sizes]
        return torch.stack(columns, dim=1).to(device)


def attribute_sweep(labels: torch.Tensor, attribute: int, n_classes: int) -> torch.Tensor:
    """For each of m base label rows, every class of one attribute with the other attributes kept: (n_classes * m, A).

    Row-major over classes: rows [c * m, (c + 1) * m) set the attribute to class c. With a fixed z per column this
    isolates what that attribute controls.
    """
    swept = labels.repeat(n_classes, 1)
    swept[:, attribute] = torch.arange(n_classes, device=labels.device).repeat_interleave(labels.shape[0])
    return swept


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation between codes (White, 2016, "Sampling Generative Networks"): (steps, z_dim).

    Gaussian codes concentrate near a sphere; the straight line between two of them passes through
    low-probability, small-norm codes, the great circle does not.
    """
    if z0.shape != z1.shape or z0.ndim != 1:
        raise ValueError(f"expected two codes of the same shape (z_dim,), got {tuple(z0.shape)} and {tuple(z1.shape)}")
    t = torch.linspace(0, 1, steps, dtype=z0.dtype, device=z0.device)[:, None]
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm())
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    if omega.abs() < 1e-4:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)

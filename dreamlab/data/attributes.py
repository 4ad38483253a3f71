"""Attribute labels of an image collection and their encoding as condition vectors for conditional models.

Every attribute is stored as an integer class per image plus the list of its class names. A condition vector
concatenates, in attribute order, one block per attribute: a one-hot block over the classes for a categorical
attribute, or a single 0/1 column for a binary attribute (CelebA's -1/1 attributes), which is how multi-attribute
conditional GANs (e.g. SNcGAN on CelebA) feed labels to the generator and discriminator.
"""

from __future__ import annotations

import numpy as np


class LabelledImages:
    """Base for image collections with attribute labels: ``attributes`` (name -> int class per image),
    ``attribute_classes`` (name -> class names) and ``binary_attributes`` (names encoded as one 0/1 column).
    Subclasses also define ``__len__`` (the number of images)."""

    attributes: dict[str, np.ndarray]
    attribute_classes: dict[str, list[str]]
    binary_attributes: frozenset[str]

    def condition_names(self) -> list[str]:
        """Label of each condition-vector column, e.g. ``shape=heart`` or ``Smiling`` for a binary attribute."""
        names = []
        for name, classes in self.attribute_classes.items():
            if name in self.binary_attributes:
                names.append(name)
            else:
                names.extend(f"{name}={value}" for value in classes)
        return names

    @property
    def condition_size(self) -> int:
        return sum(1 if name in self.binary_attributes else len(c) for name, c in self.attribute_classes.items())

    def _class_of(self, name: str, value: int | str | np.integer) -> int:
        classes = self.attribute_classes[name]
        if isinstance(value, str):
            if value not in classes:
                raise ValueError(f"unknown class {value!r} for attribute {name!r}: expected one of {classes}")
            return classes.index(value)
        if int(value) != value or not 0 <= int(value) < len(classes):
            raise ValueError(f"class index {value!r} out of range for attribute {name!r} with classes {classes}")
        return int(value)

    def encode(self, classes: dict[str, np.ndarray]) -> np.ndarray:
        """(n, condition_size) float32 condition vectors from integer class arrays for every attribute."""
        unknown = sorted(set(classes) - set(self.attribute_classes))
        if unknown:
            raise ValueError(f"unknown attribute(s) {unknown}: expected {list(self.attribute_classes)}")
        missing = [name for name in self.attribute_classes if name not in classes]
        if missing:
            raise ValueError(f"a condition needs every attribute; missing {missing}")
        arrays = {name: np.asarray(values, dtype=np.int64).reshape(-1) for name, values in classes.items()}
        n = len(next(iter(arrays.values()))) if arrays else 0
        if any(len(a) != n for a in arrays.values()):
            raise ValueError(f"attribute arrays differ in length: { {k: len(a) for k, a in arrays.items()} }")
        blocks = []
        for name, names in self.attribute_classes.items():
            values = arrays[name]
            if n and (values.min() < 0 or values.max() >= len(names)):
                raise ValueError(f"class index out of range for attribute {name!r} with {len(names)} classes")
            if name in self.binary_attributes:
                blocks.append(values[:, None].astype(np.float32))
            else:
                blocks.append(np.eye(len(names), dtype=np.float32)[values])
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0), dtype=np.float32)

    def multi_hot(self) -> np.ndarray:
        """(n, condition_size) float32 condition vectors of every image."""
        if not self.attribute_classes:
            return np.zeros((len(self), 0), dtype=np.float32)
        return self.encode(self.attributes)

    def condition_vector(self, **attrs: int | str) -> np.ndarray:
        """(condition_size,) float32 condition for one chosen combination, e.g. ``shape="heart", colour="red"``.

        Each attribute is given by class name or class index; all attributes must be given.
        """
        unknown = sorted(set(attrs) - set(self.attribute_classes))
        if unknown:
            raise ValueError(f"unknown attribute(s) {unknown}: expected {list(self.attribute_classes)}")
        classes = {name: np.array([self._class_of(name, value)]) for name, value in attrs.items()}
        return self.encode(classes)[0]

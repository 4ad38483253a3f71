"""Image data a user brings: MNIST's IDX files, image folders with attribute tables (CelebA, Painter by Numbers),
binarisation for Bernoulli likelihoods, and a torch ``Dataset`` over any of dreamlab's image sources."""

from __future__ import annotations

import csv
import gzip
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, overload

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from dreamlab.data.attributes import LabelledImages
from dreamlab.files import atomic_write_bytes

# IDX type codes (http://yann.lecun.com/exdb/mnist/): the third magic byte; data are big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def _read_maybe_gzip(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: truncated or corrupt gzip file ({err})") from err
    return raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed, detected from its bytes) into a native-endian array."""
    path = Path(path)
    data = _read_maybe_gzip(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    dtype = _IDX_DTYPES[data[2]]
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes for {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path}: IDX data is {len(data) - header} bytes, header shape {shape} needs {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write an array as an IDX file; gzip-compressed when the name ends in ``.gz``."""
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}: use uint8, int8, int16, int32, float32 or float64")
    if array.ndim > 255:
        raise ValueError(f"IDX stores at most 255 dimensions, got {array.ndim}")
    code = codes[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes()
    path = Path(path)
    return atomic_write_bytes(path, gzip.compress(payload) if path.name.endswith(".gz") else payload)


@overload
def load_mnist_idx(images_path: str | os.PathLike, labels_path: None = None) -> np.ndarray: ...


@overload
def load_mnist_idx(images_path: str | os.PathLike, labels_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]: ...


def load_mnist_idx(
    images_path: str | os.PathLike, labels_path: str | os.PathLike | None = None
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """MNIST-style images (n, H, W) uint8; with a labels file, the pair (images, labels (n,) int64)."""
    images = read_idx(images_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected (n, H, W) uint8 images, got {images.shape} {images.dtype}")
    if labels_path is None:
        return images
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected a 1-D label array, got shape {labels.shape}")
    if len(labels) != len(images):
        raise ValueError(f"{labels_path} has {len(labels)} labels but {images_path} has {len(images)} images")
    return images, labels.astype(np.int64)


def binarize(images: np.ndarray, rng: np.random.Generator | None = None, stochastic: bool = False) -> np.ndarray:
    """Binarise images to float32 0/1 for a Bernoulli likelihood.

    uint8 images are read as intensity / 255, float images must lie in [0, 1]. Deterministic: threshold at 0.5.
    Stochastic: each pixel is 1 with probability equal to its intensity (the dynamically binarised MNIST of the
    DRAW / VAE literature); ``rng`` (a NumPy Generator) makes it reproducible.
    """
    array = np.asarray(images)
    if array.dtype == np.uint8:
        intensity = array.astype(np.float32) / 255.0
    elif np.issubdtype(array.dtype, np.floating) or array.dtype == bool:
        intensity = array.astype(np.float32)
        if intensity.size and not (np.all(np.isfinite(intensity)) and intensity.min() >= 0 and intensity.max() <= 1):
            raise ValueError("float images must be finite and in [0, 1] to binarise")
    else:
        raise ValueError(f"binarize expects uint8 or float images in [0, 1], got dtype {array.dtype}")
    if stochastic:
        rng = np.random.default_rng() if rng is None else rng
        return (rng.random(intensity.shape, dtype=np.float32) < intensity).astype(np.float32)
    return (intensity >= 0.5).astype(np.float32)


def _parse_binary(values: list[str]) -> tuple[np.ndarray, list[str]] | None:
    """Integer classes for a -1/1 or 0/1 column (class 1 = attribute present), or None if it is not binary."""
    try:
        numbers = np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        return None
    present = set(np.unique(numbers).tolist())
    if present <= {-1, 1} and -1 in present:
        return (numbers == 1).astype(np.int64), ["-1", "1"]
    if present <= {0, 1}:
        return numbers, ["0", "1"]
    return None


def _encode_column(values: list[str]) -> tuple[np.ndarray, list[str], bool]:
    binary = _parse_binary(values)
    if binary is not None:
        return binary[0], binary[1], True
    try:
        classes = [str(v) for v in sorted({int(v) for v in values})]
        lookup = {int(c): i for i, c in enumerate(classes)}
        return np.array([lookup[int(v)] for v in values], dtype=np.int64), classes, False
    except ValueError:
        classes = sorted(set(values))
        lookup = {c: i for i, c in enumerate(classes)}
        return np.array([lookup[v] for v in values], dtype=np.int64), classes, False


def read_attribute_table(path: str | os.PathLike) -> tuple[list[str], dict[str, list[str]]]:
    """Read an attribute table into (filenames, {attribute: raw string values}).

    Two formats: a ``.csv`` with header ``filename,attr1,attr2,...`` (any column values; Painter by Numbers-style
    labels), or CelebA's ``list_attr_celeba.txt`` (first line the image count, second line the attribute names,
    then ``filename v1 v2 ...`` separated by whitespace, values -1/1).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such attribute table")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        rows = [row for row in csv.reader(text.splitlines()) if row]
        if not rows or len(rows[0]) < 2:
            raise ValueError(f"{path}: a CSV attribute table needs a header 'filename,attr1,...' and rows")
        names = [name.strip() for name in rows[0][1:]]
        body = rows[1:]
        first_data_line = 2
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) < 2 or not lines[0].strip().isdigit():
            raise ValueError(f"{path}: CelebA attribute file must start with the image count, then the names line")
        count = int(lines[0].strip())
        names = lines[1].split()
        body = [line.split() for line in lines[2:]]
        first_data_line = 3
        if len(body) != count:
            raise ValueError(f"{path}: header says {count} images but the file lists {len(body)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate attribute names in {names}")
    for line_number, row in enumerate(body, start=first_data_line):
        if len(row) != len(names) + 1:
            expected = len(names) + 1
            raise ValueError(f"{path}:{line_number}: expected {expected} fields (filename + values), got {len(row)}")
    filenames = [row[0].strip() for row in body]
    if len(set(filenames)) != len(filenames):
        raise ValueError(f"{path}: a filename is listed more than once")
    return filenames, {name: [row[i + 1].strip() for row in body] for i, name in enumerate(names)}


class ImageFolder(LabelledImages):
    """RGB images of a folder, loaded on demand and resized to ``size`` x ``size`` with OpenCV.

    Without ``attributes`` every image file in ``root`` (sorted by name) is used. With ``attributes`` (a CelebA
    ``list_attr_celeba.txt`` or a CSV, see ``read_attribute_table``) the images are the table's rows, every one must
    exist, and ``attribute_names`` optionally selects columns. -1/1 and 0/1 columns become binary attributes (one
    condition column each, class 1 = present); other columns become categorical classes (sorted values).
    ``center_crop`` crops the largest centred square before resizing (so faces keep their aspect ratio).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        size: int,
        attributes: str | os.PathLike | None = None,
        attribute_names: Sequence[str] | None = None,
        center_crop: bool = True,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: no such image folder")
        if size < 1:
            raise ValueError(f"image size must be positive, got {size}")
        self.size = int(size)
        self.center_crop = center_crop
        present = {p.name for p in self.root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()}
        self.attributes = {}
        self.attribute_classes = {}
        binary = set()
        if attributes is None:
            if attribute_names is not None:
                raise ValueError("attribute_names needs an attribute table (attributes=...)")
            self.filenames = sorted(present)
            if not self.filenames:
                raise ValueError(f"{self.root}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
        else:
            self.filenames, columns = read_attribute_table(attributes)
            missing = [name for name in self.filenames if name not in present]
            if missing:
                raise FileNotFoundError(
                    f"{len(missing)} image(s) listed in {attributes} are not in {self.root}, e.g. {missing[:3]}"
                )
            selected = list(columns) if attribute_names is None else list(attribute_names)
            unknown = [name for name in selected if name not in columns]
            if unknown:
                raise ValueError(f"unknown attribute name(s) {unknown} in {attributes}; it has {list(columns)}")
            for name in selected:
                classes, class_names, is_binary = _encode_column(columns[name])
                self.attributes[name] = classes
                self.attribute_classes[name] = class_names
                if is_binary:
                    binary.add(name)
        self.binary_attributes = frozenset(binary)

    def __len__(self) -> int:
        return len(self.filenames)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.images([index])[0]

    def load(self, filename: str) -> np.ndarray:
        """One image file as (size, size, 3) uint8 RGB."""
        path = self.root / filename
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path}: missing, unreadable or not an image OpenCV can decode")
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if self.center_crop:
            height, width = image.shape[:2]
            side = min(height, width)
            top, left = (height - side) // 2, (width - side) // 2
            image = image[top : top + side, left : left + side]
        shrinking = image.shape[0] > self.size or image.shape[1] > self.size
        # Area averaging avoids aliasing when shrinking; bilinear is the usual choice when enlarging.
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        return cv2.resize(image, (self.size, self.size), interpolation=interpolation)

    def images(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Images at ``indices`` as (n, size, size, 3) uint8 RGB."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} images: got {indices.min()}..{indices.max()}")
        out = np.empty((len(indices), self.size, self.size, 3), dtype=np.uint8)
        for slot, index in enumerate(indices.tolist()):
            out[slot] = self.load(self.filenames[index])
        return out


class ImageSource(Protocol):
    def __len__(self) -> int: ...

    def images(self, indices: np.ndarray) -> np.ndarray: ...


class ImageTensorDataset(Dataset):
    """A torch ``Dataset`` of float images in [0, 1], channels first, with optional condition vectors.

    ``images`` is an array (n, H, W) or (n, H, W, C) or a lazy source with ``__len__`` and ``images(indices)``
    (``DSprites``, ``ImageFolder``). Integer pixels are divided by their full-scale value: 1 for binary 0/1 images
    (dSprites: a source's ``max_pixel_value`` of 1, or a uint8 array whose maximum is 1), otherwise 255. Items are
    ``image`` or ``(image, condition)``.
    """

    def __init__(
        self,
        images: np.ndarray | ImageSource,
        conditions: np.ndarray | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.source = images
        self.dtype = dtype
        if isinstance(images, np.ndarray):
            if images.ndim not in (3, 4):
                raise ValueError(f"images must be (n, H, W) or (n, H, W, C), got shape {images.shape}")
            binary = np.issubdtype(images.dtype, np.integer) and images.size > 0 and images.max() <= 1
        else:
            binary = getattr(images, "max_pixel_value", 255) == 1
        self.max_pixel_value = 1.0 if binary else 255.0
        if conditions is not None:
            conditions = np.asarray(conditions)
            if conditions.ndim != 2 or len(conditions) != len(images):
                raise ValueError(f"conditions must be (n={len(images)}, dim), got shape {conditions.shape}")
        self.conditions = conditions

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if isinstance(self.source, np.ndarray):
            image = self.source[index]
        else:
            image = self.source.images(np.asarray([index]))[0]
        tensor = torch.from_numpy(np.ascontiguousarray(image))
        scale = 1.0 if tensor.is_floating_point() else 1.0 / self.max_pixel_value
        tensor = tensor.to(self.dtype) * scale
        tensor = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
        if self.conditions is None:
            return tensor
        return tensor, torch.as_tensor(self.conditions[index], dtype=self.dtype)

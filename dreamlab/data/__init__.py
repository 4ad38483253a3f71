"""Datasets: the dSprites grid (rendered or the published file), coloured attribute sprites, MNIST IDX files and
image folders with attribute tables, plus a torch ``Dataset`` wrapper."""

from dreamlab.data.attributes import LabelledImages
from dreamlab.data.dsprites import (
    DSPRITES_IMAGE_SIZE,
    DSPRITES_LATENT_NAMES,
    DSPRITES_LATENT_SIZES,
    DSPRITES_LATENT_VALUES,
    DSPRITES_NUM_IMAGES,
    DSPRITES_SHAPE_NAMES,
    DSprites,
    class_index,
    index_to_classes,
    latent_values,
    render_classes,
    render_dsprite,
    render_dsprites,
)
from dreamlab.data.images import (
    ImageFolder,
    ImageTensorDataset,
    binarize,
    load_mnist_idx,
    read_attribute_table,
    read_idx,
    write_idx,
)
from dreamlab.data.shapes import SHAPE_NAMES, shape_masks
from dreamlab.data.sprites import COLOUR_RGB, ColouredSprites

__all__ = [
    "COLOUR_RGB",
    "DSPRITES_IMAGE_SIZE",
    "DSPRITES_LATENT_NAMES",
    "DSPRITES_LATENT_SIZES",
    "DSPRITES_LATENT_VALUES",
    "DSPRITES_NUM_IMAGES",
    "DSPRITES_SHAPE_NAMES",
    "SHAPE_NAMES",
    "ColouredSprites",
    "DSprites",
    "ImageFolder",
    "ImageTensorDataset",
    "LabelledImages",
    "binarize",
    "class_index",
    "index_to_classes",
    "latent_values",
    "load_mnist_idx",
    "read_attribute_table",
    "read_idx",
    "render_classes",
    "render_dsprite",
    "render_dsprites",
    "shape_masks",
    "write_idx",
]

"""Rollouts of random dSprites for probing a DNC's memory (Mufti, "DNC Memory Testing Using dSprites").

A rollout is a sequence of independently drawn sprites c_0, ..., c_L (latent classes). Its actions are the
latent-value deltas a_t = v(c_t) - v(c_{t-1}) with a_0 = 0 (the post's definition, over the five latents that
vary: shape, scale, orientation, posX, posY; values as in the published ``latents_values``).

Teacher forcing pairs each image with the action that leads *out* of it: the model sees [x_t, a_{t+1}] and is
trained to output x_{t+1}. This is the World Models convention (z_t, a_t) -> z_{t+1} with the post's a_{t+1} being
the action taken at t. The post's worked example instead attaches a_0 = 0 to the first image, which read literally
would leave every next sprite (drawn independently) unpredictable from the inputs; the post reports next-sprite
predictions that are good, so the action must carry the delta to the next sprite.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dreamlab.data.dsprites import DSPRITES_IMAGE_SIZE, DSPRITES_LATENT_NAMES, DSPRITES_LATENT_SIZES, DSprites
from dreamlab.dnc.core import DNC
from dreamlab.dnc.probes import LatentDecoder, latent_decoder_loss
from dreamlab.dnc.state import DNCState

# The latents that vary in dSprites (color has one value); actions and probes use these columns, in this order.
ACTION_LATENTS = ("shape", "scale", "orientation", "posX", "posY")
ACTION_COLUMNS = tuple(DSPRITES_LATENT_NAMES.index(name) for name in ACTION_LATENTS)
POS_X_COLUMN = DSPRITES_LATENT_NAMES.index("posX")
# DNC state fields an auxiliary decoder may read the state from.
AUX_SOURCES = ("read_vectors", "memory")


class SpriteRollouts(NamedTuple):
    """A batch of sprite rollouts of L + 1 sprites each (B rollouts)."""

    classes: np.ndarray  # (B, L + 1, 6) int64 latent classes
    values: np.ndarray  # (B, L + 1, 6) float64 latent values
    actions: np.ndarray  # (B, L + 1, 5) float64 class deltas over ACTION_LATENTS, actions[:, 0] = 0
    images: np.ndarray  # (B, L + 1, 64, 64) uint8 0/1


def class_deltas(values: np.ndarray) -> np.ndarray:
    """Actions a_t = v_t - v_{t-1}, a_0 = 0, over ACTION_LATENTS: (..., L + 1, 6) values -> (..., L + 1, 5)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim < 2 or values.shape[-1] != len(DSPRITES_LATENT_SIZES):
        raise ValueError(f"latent values must be (..., steps, {len(DSPRITES_LATENT_SIZES)}), got {values.shape}")
    varying = values[..., list(ACTION_COLUMNS)]
    actions = np.zeros_like(varying)
    actions[..., 1:, :] = np.diff(varying, axis=-2)
    return actions


def _rollouts_from_classes(dataset: DSprites, classes: np.ndarray) -> SpriteRollouts:
    indices = dataset.indices_of(classes)
    values = dataset.latents_values(indices)
    return SpriteRollouts(classes, values, class_deltas(values), dataset.images(indices))


def random_rollouts(dataset: DSprites, batch_size: int, length: int, rng: np.random.Generator) -> SpriteRollouts:
    """``batch_size`` rollouts of ``length`` transitions (length + 1 sprites drawn uniformly, independently)."""
    if batch_size < 1 or length < 1:
        raise ValueError(f"need batch_size >= 1 and length >= 1, got {batch_size} and {length}")
    classes = dataset.sample_classes(batch_size * (length + 1), rng).reshape(batch_size, length + 1, -1)
    return _rollouts_from_classes(dataset, classes)


def x_position_rollouts(dataset: DSprites, batch_size: int, length: int, rng: np.random.Generator) -> SpriteRollouts:
    """Rollouts whose sprites share every latent but posX, which jumps uniformly among its 32 classes (Test 2)."""
    if batch_size < 1 or length < 1:
        raise ValueError(f"need batch_size >= 1 and length >= 1, got {batch_size} and {length}")
    fixed = dataset.sample_classes(batch_size, rng)
    classes = np.repeat(fixed[:, None, :], length + 1, axis=1)
    classes[..., POS_X_COLUMN] = rng.integers(0, DSPRITES_LATENT_SIZES[POS_X_COLUMN], (batch_size, length + 1))
    return _rollouts_from_classes(dataset, classes)


def prepare_images(images: np.ndarray | Tensor, image_size: int) -> Tensor:
    """uint8 0/1 images (..., 64, 64) -> float (..., image_size, image_size) in [0, 1].

    Downscaling averages non-overlapping blocks (pixel coverage), so BCE targets stay in [0, 1] and keep the
    sub-pixel position information a max or stride would drop.
    """
    pixels = torch.as_tensor(np.asarray(images)).float()
    if pixels.dim() < 2 or pixels.shape[-2:] != (DSPRITES_IMAGE_SIZE, DSPRITES_IMAGE_SIZE):
        raise ValueError(f"expected images (..., 64, 64), got {tuple(pixels.shape)}")
    if image_size == DSPRITES_IMAGE_SIZE:
        return pixels
    if image_size < 1 or DSPRITES_IMAGE_SIZE % image_size:
        raise ValueError(f"image_size must divide {DSPRITES_IMAGE_SIZE}, got {image_size}")
    leading = pixels.shape[:-2]
    pooled = F.avg_pool2d(
        pixels.reshape(-1, 1, DSPRITES_IMAGE_SIZE, DSPRITES_IMAGE_SIZE), DSPRITES_IMAGE_SIZE // image_size
    )
    return pooled.reshape(*leading, image_size, image_size)


def teacher_forcing(
    rollouts: SpriteRollouts, image_size: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor]:
    """Model inputs [x_t, a_{t+1}] (B, L, S*S + 5) and targets x_{t+1} (B, L, S*S) for t = 0..L-1."""
    images = prepare_images(rollouts.images, image_size).flatten(-2)
    actions = torch.as_tensor(rollouts.actions[:, 1:], dtype=images.dtype)
    inputs = torch.cat([images[:, :-1], actions], dim=-1)
    return inputs.to(device, dtype), images[:, 1:].to(device, dtype)


def input_size(image_size: int) -> int:
    """Width of a teacher-forcing input: the flattened image plus one delta per varying latent."""
    return image_size * image_size + len(ACTION_LATENTS)


def next_sprite_loss(
    dnc: DNC,
    inputs: Tensor,
    targets: Tensor,
    state: DNCState | None = None,
    decoder: LatentDecoder | None = None,
    aux_source: str = "read_vectors",
    shape: Tensor | None = None,
    values: Tensor | None = None,
) -> tuple[Tensor, Tensor, DNCState]:
    """Teacher-forced next-sprite loss, optionally with an auxiliary state decoder.

    The DNC's output y_t are logits of x_{t+1}: the loss is the pixel BCE summed per image and averaged over
    (batch, time). With a ``decoder``, the latents of the sprite input at t (shape (B, T), values (B, T, 4))
    are decoded linearly from the DNC's ``aux_source`` at t (read vectors r_t or memory M_t, flattened), and
    ``latent_decoder_loss`` of that decoding is returned as the auxiliary term (0 without a decoder).
    Returns (bce, aux, final state).
    """
    if decoder is None:
        logits, state = dnc(inputs, state)
        aux = inputs.new_zeros(())
    else:
        if aux_source not in AUX_SOURCES:
            raise ValueError(f"unknown aux_source {aux_source!r}; choose from {AUX_SOURCES}")
        if shape is None or values is None:
            raise ValueError("an auxiliary decoder needs the input sprites' shape classes and latent values")
        logits, state, traces = dnc.forward_traced(inputs, state, fields=(aux_source,))
        aux = latent_decoder_loss(*decoder(traces[aux_source].flatten(2)), shape, values)
    if logits.shape != targets.shape:
        raise ValueError(f"DNC outputs {tuple(logits.shape)} but targets are {tuple(targets.shape)}")
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1).mean()
    return bce, aux, state

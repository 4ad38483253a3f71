"""DRAW's loss terms (Gregor et al. 2015, section 2.2) as per-image sums in nats."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LIKELIHOODS = ("bernoulli", "l2")


def gaussian_kl(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) summed over the last axis (eq. 11 for one step).

    eq. 11 sums 1/2 (mu^2 + sigma^2 - log sigma^2) - 1/2 over every latent dimension of every step; this returns
    one step's share, shape ``mu.shape[:-1]``.
    """
    return 0.5 * (mu.square() + torch.exp(2 * log_sigma) - 2 * log_sigma - 1).sum(dim=-1)


def bernoulli_nll(canvas_logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """L^x = -log D(x | c_T) with D Bernoulli of means sigmoid(c_T) (eq. 9), summed per image (nats).

    Taking the canvas as logits uses the numerically stable form of the cross-entropy instead of log(sigmoid).
    """
    per_pixel = F.binary_cross_entropy_with_logits(canvas_logits, images, reduction="none")
    return per_pixel.flatten(1).sum(dim=1)


def l2_reconstruction(canvas_logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """The colour-DRAW post's L2 loss 1/2 sum (x - sigmoid(c_T))^2 per image (TensorFlow's ``l2_loss``).

    With a KL weight of one this is a Gaussian decoder of unit variance up to a constant, the 1:1 balance the
    post reports working.
    """
    return 0.5 * (images - torch.sigmoid(canvas_logits)).square().flatten(1).sum(dim=1)


def reconstruction_loss(canvas_logits: torch.Tensor, images: torch.Tensor, likelihood: str) -> torch.Tensor:
    """Per-image reconstruction loss for ``likelihood`` in :data:`LIKELIHOODS`."""
    if canvas_logits.shape != images.shape:
        raise ValueError(f"canvas shape {tuple(canvas_logits.shape)} does not match images {tuple(images.shape)}")
    if likelihood == "bernoulli":
        return bernoulli_nll(canvas_logits, images)
    if likelihood == "l2":
        return l2_reconstruction(canvas_logits, images)
    raise ValueError(f"unknown likelihood {likelihood!r}; choose from {list(LIKELIHOODS)}")

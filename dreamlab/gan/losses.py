"""Adversarial losses on discriminator logits.

- ``bce``: the non-saturating GAN loss of Goodfellow et al. (2014): D minimises
  -[t log sigmoid(D(x)) + log(1 - sigmoid(D(G(z))))] and G minimises -log sigmoid(D(G(z))). Real targets t are
  smoothed one-sidedly (Salimans et al., 2016, "Improved Techniques for Training GANs", sec. 3.4): drawn from
  U[0.9, 1] as in the SNcGAN setup, fake targets stay 0.
- ``hinge``: Lim & Ye (2017) / Miyato et al. (2018, eq. 16-17): D minimises E[relu(1 - D(x))] + E[relu(1 + D(G(z)))],
  G minimises -E[D(G(z))].

``r1_penalty`` is the zero-centred gradient penalty on real data of Mescheder et al. (2018), "Which Training Methods
for GANs do actually Converge?", eq. 9, which damps the oscillation of D and G around each other.

``attribute_cross_entropy`` is the class term L_C of the auxiliary-classifier GAN (Odena et al., 2017, "Conditional
Image Synthesis with Auxiliary Classifier GANs", eq. 2), summed over attributes, each attribute its own softmax.

``mode_seeking_loss`` is the regulariser of Mao et al. (2019), "Mode Seeking GANs for Diverse Image Synthesis",
eq. 3, for a conditional generator that learns to ignore z and draws one image per condition.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

LOSSES = ("bce", "hinge")


def smoothed_real_targets(
    n: int, low: float = 0.9, high: float = 1.0, *, generator: torch.Generator | None = None, like: torch.Tensor
) -> torch.Tensor:
    """One-sided label smoothing: real-image targets drawn uniformly from [low, high]."""
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"label smoothing range must satisfy 0 <= low <= high <= 1, got [{low}, {high}]")
    u = torch.rand(n, generator=generator, dtype=like.dtype).to(like.device)
    return low + (high - low) * u


def discriminator_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    kind: str = "bce",
    real_targets: torch.Tensor | None = None,
) -> torch.Tensor:
    """D's loss on a batch of real and a batch of generated logits; ``real_targets`` default to 1 (bce only)."""
    if kind == "bce":
        if real_targets is None:
            real_targets = torch.ones_like(real_logits)
        real = F.binary_cross_entropy_with_logits(real_logits, real_targets)
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return real + fake
    if kind == "hinge":
        if real_targets is not None:
            raise ValueError("label smoothing applies to the bce loss only, not hinge")
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    raise ValueError(f"unknown GAN loss {kind!r}; choose from {LOSSES}")


def generator_loss(fake_logits: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """G's loss on D's logits for generated images (non-saturating for bce)."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if kind == "hinge":
        return -fake_logits.mean()
    raise ValueError(f"unknown GAN loss {kind!r}; choose from {LOSSES}")


def mode_seeking_loss(
    fake_a: torch.Tensor, fake_b: torch.Tensor, z_a: torch.Tensor, z_b: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """Mao et al. (2019), eq. 3: 1 / (mean|G(z_a, y) - G(z_b, y)| / mean|z_a - z_b| + eps), for G to minimise.

    Pairs share their condition y, so the ratio measures how much the image changes with z alone; it is small
    when G ignores z (mode collapse within a condition) and the loss then grows.
    """
    if fake_a.shape != fake_b.shape or z_a.shape != z_b.shape or fake_a.shape[0] != z_a.shape[0]:
        raise ValueError(
            f"mode seeking needs paired images and codes, got {tuple(fake_a.shape)}, {tuple(fake_b.shape)}, "
            f"{tuple(z_a.shape)}, {tuple(z_b.shape)}"
        )
    ratio = (fake_a - fake_b).abs().mean() / (z_a - z_b).abs().mean()
    return 1.0 / (ratio + eps)


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mescheder et al. (2018), eq. 9 without the gamma / 2: E_x[||grad_x D(x)||^2] over real images.

    ``real`` must require grad and ``real_logits`` be D's logits for it; the penalty keeps the graph so that D's
    parameters get its gradient (a double backward).
    """
    if not real.requires_grad:
        raise ValueError("r1_penalty needs the real images to require grad before D sees them")
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def attribute_cross_entropy(logits: Sequence[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Sum over attributes a of the mean cross-entropy of ``logits[a]`` (n, classes_a) against ``labels[:, a]``."""
    if labels.ndim != 2 or labels.shape[1] != len(logits):
        raise ValueError(f"expected labels of shape (n, {len(logits)}), got {tuple(labels.shape)}")
    return sum(F.cross_entropy(lg, labels[:, a]) for a, lg in enumerate(logits))

"""Training and evaluating DRAW and the VAE baseline on the variational bound L = <L^x + L^z> (eq. 12)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

from dreamlab.draw.losses import reconstruction_loss
from dreamlab.grad_monitor import GradientMonitor, check_finite
from dreamlab.runtime import autocast as mixed_precision


class _BoundOutput(Protocol):
    @property
    def final_logits(self) -> torch.Tensor: ...

    @property
    def kl_per_image(self) -> torch.Tensor: ...


def bound_terms(
    model: nn.Module, images: torch.Tensor, likelihood: str, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Single-sample estimates of L^x (eq. 9) and L^z (eq. 10) per image, each shape (batch,), in nats."""
    output: _BoundOutput = model(images, generator=generator)
    return reconstruction_loss(output.final_logits, images, likelihood), output.kl_per_image


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    likelihood: str,
    grad_clip: float,
    generator: torch.Generator | None = None,
    monitor: GradientMonitor | None = None,
    autocast: str = "none",
) -> dict[str, float]:
    """One Adam step on the batch mean of L^x + L^z (eq. 13's single-sample estimate of eq. 12).

    ``grad_clip`` > 0 clips the global gradient norm; a NaN/Inf loss or gradient raises an error naming it.
    ``autocast="bf16"`` runs the forward pass and the loss in bfloat16 (:func:`dreamlab.runtime.autocast`); the loss
    is summed in float32 and the backward pass and Adam are unchanged.
    """
    model.train()
    with mixed_precision(images.device, autocast):
        reconstruction, kl = bound_terms(model, images, likelihood, generator)
        reconstruction, kl = reconstruction.to(images.dtype), kl.to(images.dtype)
    loss = check_finite((reconstruction + kl).mean(), f"DRAW {likelihood} bound")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if monitor is not None:
        monitor.check()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip if grad_clip > 0 else float("inf"))
    optimizer.step()
    return {
        "loss": loss.item(),
        "reconstruction": reconstruction.mean().item(),
        "kl": kl.mean().item(),
        "grad_norm": grad_norm.item(),
    }


@torch.no_grad()
def evaluate_bound(
    model: nn.Module,
    batches: Callable[[int, int], torch.Tensor],
    count: int,
    likelihood: str,
    batch_size: int,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Mean L^x, L^z and their sum over ``count`` images (nats per image).

    ``batches(start, stop)`` returns the images ``start:stop`` as float tensors on the model's device. For binary
    data and the Bernoulli likelihood ``bound`` is the negative log-likelihood bound -log p(x) <= L^x + L^z that
    the paper reports (one posterior sample per image, an unbiased estimate of the bound).
    """
    if count < 1:
        raise ValueError(f"evaluate_bound needs at least one image, got count={count}")
    model.eval()
    totals = {"reconstruction": 0.0, "kl": 0.0}
    for start in range(0, count, batch_size):
        images = batches(start, min(start + batch_size, count))
        reconstruction, kl = bound_terms(model, images, likelihood, generator)
        totals["reconstruction"] += reconstruction.sum().item()
        totals["kl"] += kl.sum().item()
    means = {k: v / count for k, v in totals.items()}
    means["bound"] = means["reconstruction"] + means["kl"]
    return means

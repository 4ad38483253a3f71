"""Catching NaN and Inf where they start: in a loss, or in the gradient of a named parameter."""

from __future__ import annotations

import math

import torch
from torch import nn

from dreamlab.runs import NonFiniteError


class NonFiniteLossError(NonFiniteError, FloatingPointError):
    """A loss came out NaN or Inf."""


class NonFiniteGradientError(NonFiniteError, FloatingPointError):
    """Some parameters received NaN or Inf gradients; the message names them."""


def check_finite(loss: torch.Tensor, what: str = "loss") -> torch.Tensor:
    """Return ``loss`` unchanged, or raise naming it when any element is NaN or Inf."""
    if not torch.isfinite(loss).all():
        value = loss.detach().flatten()[:4].tolist()
        raise NonFiniteLossError(
            f"{what} is not finite ({value}); rerun with --dtype float64 and --log_grads to find where it starts"
        )
    return loss


class GradientMonitor:
    """Per-parameter gradient norms after ``backward()``, raising with the names of any non-finite gradient."""

    def __init__(self, model: nn.Module):
        self.parameters = [(name, p) for name, p in model.named_parameters() if p.requires_grad]

    def norms(self) -> dict[str, float]:
        """L2 norm of each parameter's gradient (parameters without a gradient are left out)."""
        grads = [(name, p.grad) for name, p in self.parameters if p.grad is not None]
        if not grads:
            return {}
        # One device sync for all parameters instead of one per parameter.
        values = torch.stack([g.detach().float().norm() for _, g in grads]).tolist()
        return {name: value for (name, _), value in zip(grads, values, strict=True)}

    def check(self) -> dict[str, float]:
        """The norms, after checking them: raises :class:`NonFiniteGradientError` naming the bad parameters."""
        norms = self.norms()
        bad = [f"{name} ({value})" for name, value in norms.items() if not math.isfinite(value)]
        if bad:
            raise NonFiniteGradientError(f"non-finite gradient in parameter(s): {', '.join(bad)}")
        return norms

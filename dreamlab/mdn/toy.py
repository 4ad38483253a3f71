"""Bishop's inverse problem: the one-to-many regression that motivates mixture density networks.

The forward map t -> x = t + 0.3 sin(2 pi t) + U(-0.1, 0.1) is a function; its inverse x -> t is not (for
x near 0.5 there are three branches). A network trained with squared error learns the conditional mean E[t | x],
which falls between the branches; an MDN learns p(t | x) and its samples cover every branch (Bishop 1994, sec. 5).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dreamlab.grad_monitor import GradientMonitor, check_finite
from dreamlab.mdn.head import MixtureDensityHead
from dreamlab.mdn.mixture import mixture_nll


def inverse_problem_data(n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n pairs (x, t) of the inverse problem, each of shape (n, 1): input x, multi-valued target t."""
    t = torch.rand(n, 1, generator=generator)
    noise = torch.rand(n, 1, generator=generator) * 0.2 - 0.1
    x = t + 0.3 * torch.sin(2 * math.pi * t) + noise
    return x, t


class MeanRegressor(nn.Module):
    """A tanh MLP trained with squared error: it can only represent E[t | x]."""

    def __init__(self, hidden: int = 24):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def loss(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (self(x) - t).square().mean()


class MixtureDensityNetwork(nn.Module):
    """A tanh MLP with a mixture density head: it represents p(t | x)."""

    def __init__(self, hidden: int = 24, n_components: int = 5, out_dim: int = 1):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.head = MixtureDensityHead(hidden, out_dim, n_components)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.head(self.body(x))

    def loss(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return mixture_nll(*self(x), t).mean()


def fit(
    model: MeanRegressor | MixtureDensityNetwork,
    x: torch.Tensor,
    t: torch.Tensor,
    steps: int,
    lr: float,
    batch_size: int,
    generator: torch.Generator | None = None,
    log_grads: bool = False,
) -> list[float]:
    """Adam on random minibatches of (x, t); returns the loss at every step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    monitor = GradientMonitor(model) if log_grads else None
    losses = []
    for step in range(steps):
        batch = torch.randint(len(x), (min(batch_size, len(x)),), generator=generator)
        loss = check_finite(model.loss(x[batch], t[batch]), f"{type(model).__name__} loss at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if monitor is not None:
            monitor.check()
        optimizer.step()
        losses.append(loss.item())
    return losses


def nearest_neighbour_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean distance from each point of ``a`` (n, 2) to its nearest point of ``b`` (m, 2)."""
    return torch.cdist(a, b).min(dim=1).values.mean().item()

"""Gaussian mixture densities in log space (Bishop, "Mixture Density Networks", 1994).

A mixture with K components over D dimensions, diagonal covariances:

    p(y | x) = sum_k pi_k(x) N(y; mu_k(x), diag(sigma_k(x)^2))                      (Bishop eq. 22)

with pi = softmax(logits) (eq. 25) and sigma = exp(log_sigma) (eq. 26). The loss is -log p(y | x) (eq. 28),
computed as -logsumexp_k(log_softmax(logits)_k + log N_k) so that it stays finite, with finite gradients, for
targets far in the tails where every component density underflows to zero in linear space.

World Models' M uses an independent mixture per latent dimension: the same functions with D = 1 and the latent
dimension as an extra batch axis.

A :class:`~dreamlab.mdn.MixtureDensityHead` returns a :class:`Mixture`, a named tuple ``(logits, mu, log_sigma)``:
call its methods (``head(x).nll(y)``, ``head(x).sample(temperature)``) or unpack it into the functions below
(``mixture_nll(*head(x), y)``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _check_shapes(logits: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor) -> None:
    if mu.dim() < 2 or mu.shape != log_sigma.shape or mu.shape[:-1] != logits.shape:
        raise ValueError(
            "mixture parameters must have shapes logits (..., K), mu (..., K, D), log_sigma (..., K, D); got "
            f"logits {tuple(logits.shape)}, mu {tuple(mu.shape)}, log_sigma {tuple(log_sigma.shape)}"
        )


def component_log_prob(mu: torch.Tensor, log_sigma: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log N(y; mu_k, diag sigma_k^2) for every component: (..., K, D) params, (..., D) target -> (..., K)."""
    z = (y.unsqueeze(-2) - mu) * torch.exp(-log_sigma)
    return (-0.5 * z.square() - log_sigma - _LOG_SQRT_2PI).sum(-1)


def mixture_log_prob(logits: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log p(y) of the mixture: shapes (..., K), (..., K, D), (..., K, D), (..., D) -> (...)."""
    _check_shapes(logits, mu, log_sigma)
    if y.shape[-1] != mu.shape[-1] or y.shape[:-1] != logits.shape[:-1]:
        raise ValueError(
            f"target of shape {tuple(y.shape)} does not match mixture over {tuple(logits.shape[:-1])} x "
            f"D={mu.shape[-1]} (expected {(*logits.shape[:-1], mu.shape[-1])})"
        )
    return torch.logsumexp(F.log_softmax(logits, dim=-1) + component_log_prob(mu, log_sigma, y), dim=-1)


def mixture_nll(logits: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood -log p(y) per sample (Bishop eq. 28); reduce it as the caller needs."""
    return -mixture_log_prob(logits, mu, log_sigma, y)


def sample_mixture(
    logits: torch.Tensor,
    mu: torch.Tensor,
    log_sigma: torch.Tensor,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw y ~ p(y) with a temperature: (..., K), (..., K, D), (..., K, D) -> (..., D).

    As in World Models' dream, temperature tau divides the mixture logits (flattening the choice of component
    for tau > 1) and multiplies the variances, sigma -> sigma * sqrt(tau). tau = 1 samples the model as trained.
    """
    _check_shapes(logits, mu, log_sigma)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    # Gumbel-max: argmax(logits / tau + Gumbel noise) is a draw from softmax(logits / tau).
    uniform = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    gumbel = -torch.log(-torch.log(uniform.clamp_min(torch.finfo(logits.dtype).tiny)))
    component = torch.argmax(logits / temperature + gumbel, dim=-1)
    index = component[..., None, None].expand(*component.shape, 1, mu.shape[-1])
    chosen_mu = mu.gather(-2, index).squeeze(-2)
    chosen_sigma = torch.exp(log_sigma.gather(-2, index).squeeze(-2)) * math.sqrt(temperature)
    noise = torch.randn(chosen_mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return chosen_mu + chosen_sigma * noise


def most_likely_mean(logits: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """The mean of the heaviest component: a deterministic point prediction, (..., K), (..., K, D) -> (..., D)."""
    if mu.shape[:-1] != logits.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and mu {tuple(mu.shape)} do not match")
    index = logits.argmax(-1)[..., None, None].expand(*logits.shape[:-1], 1, mu.shape[-1])
    return mu.gather(-2, index).squeeze(-2)


class Mixture(NamedTuple):
    """A Gaussian mixture's parameters, as a head outputs them: logits (..., K), mu and log_sigma (..., K, D)."""

    logits: torch.Tensor
    mu: torch.Tensor
    log_sigma: torch.Tensor

    def log_prob(self, y: torch.Tensor) -> torch.Tensor:
        """log p(y), shape (...)."""
        return mixture_log_prob(self.logits, self.mu, self.log_sigma, y)

    def nll(self, y: torch.Tensor) -> torch.Tensor:
        """-log p(y) per sample (Bishop eq. 28), shape (...); reduce it as the caller needs."""
        return mixture_nll(self.logits, self.mu, self.log_sigma, y)

    def sample(self, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """A draw y ~ p(y) at ``temperature`` (see :func:`sample_mixture`), shape (..., D)."""
        return sample_mixture(self.logits, self.mu, self.log_sigma, temperature, generator)

    def most_likely_mean(self) -> torch.Tensor:
        """The mean of the heaviest component, shape (..., D)."""
        return most_likely_mean(self.logits, self.mu)

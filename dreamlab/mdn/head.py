"""A linear layer that outputs the parameters of a Gaussian mixture."""

from __future__ import annotations

import torch
from torch import nn

from dreamlab.mdn.mixture import Mixture


class MixtureDensityHead(nn.Module):
    """Maps features to mixture logits, means and log-scales.

    With ``per_dimension=False`` one K-component mixture covers all ``out_dim`` dimensions jointly (Bishop's
    MDN): outputs of shapes (..., K), (..., K, D), (..., K, D). With ``per_dimension=True`` every output dimension
    has its own K-component mixture, as World Models' M predicts each latent dimension: shapes (..., D, K),
    (..., D, K, 1), (..., D, K, 1), to be used with targets shaped (..., D, 1).

    ``log_sigma`` is clamped to [min_log_sigma, max_log_sigma]: an unbounded scale lets a component collapse onto
    one training point and drive the likelihood to infinity (the MDN's classic degeneracy).
    """

    def __init__(
        self,
        in_features: int,
        out_dim: int,
        n_components: int,
        per_dimension: bool = False,
        min_log_sigma: float = -7.0,
        max_log_sigma: float = 7.0,
    ):
        super().__init__()
        if min(in_features, out_dim, n_components) < 1:
            raise ValueError("in_features, out_dim and n_components must all be >= 1")
        self.out_dim, self.n_components, self.per_dimension = out_dim, n_components, per_dimension
        self.min_log_sigma, self.max_log_sigma = min_log_sigma, max_log_sigma
        per_output = 3 * n_components if per_dimension else n_components * (1 + 2 * out_dim)
        self.linear = nn.Linear(in_features, out_dim * per_output if per_dimension else per_output)

    def forward(self, features: torch.Tensor) -> Mixture:
        return self.split(self.linear(features))

    def split(self, out: torch.Tensor) -> Mixture:
        """The :class:`Mixture` (logits, mu, log_sigma) from the raw outputs of :attr:`linear`."""
        batch, k, d = out.shape[:-1], self.n_components, self.out_dim
        if self.per_dimension:
            logits, mu, log_sigma = out.view(*batch, d, 3, k).unbind(-2)
            mu, log_sigma = mu.unsqueeze(-1), log_sigma.unsqueeze(-1)
        else:
            logits, mu, log_sigma = out.split([k, k * d, k * d], dim=-1)
            mu, log_sigma = mu.reshape(*batch, k, d), log_sigma.reshape(*batch, k, d)
        return Mixture(logits, mu, log_sigma.clamp(self.min_log_sigma, self.max_log_sigma))

"""V: the convolutional variational autoencoder of World Models (Ha & Schmidhuber 2018, appendix A.1).

Encoder: four 4x4 stride-2 convolutions (32, 64, 128, 256 channels, ReLU) take a 64x64x3 frame to 2x2x256, and two
linear layers give the mean and log-variance of q(z | x). Decoder: a linear layer to a 1x1x1024 map, then
deconvolutions with kernels 5, 5, 6, 6 (128, 64, 32, 3 channels, stride 2, sigmoid output) back to 64x64x3.

Loss (Kingma & Welling 2014, eq. 10, with a Gaussian likelihood written as squared error):
    L = sum_pixels (x - x_hat)^2 + max(KL(q(z|x) || N(0, I)), tolerance * z_dim),
    KL = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2).
The floor on the KL ("free bits", Kingma et al. 2016) stops the optimiser from squeezing the KL below
0.5 nats per dimension, which would cost reconstruction detail without making the code any more useful to M.
"""

from __future__ import annotations

import torch
from torch import nn

FRAME_SHAPE = (64, 64, 3)


def frames_to_tensor(frames: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """uint8 (..., 64, 64, 3) frames -> float (..., 3, 64, 64) in [0, 1]."""
    if frames.dtype != torch.uint8 or tuple(frames.shape[-3:]) != FRAME_SHAPE:
        raise ValueError(f"expected uint8 frames of shape (..., 64, 64, 3), got {frames.dtype} {tuple(frames.shape)}")
    return frames.movedim(-1, -3).to(dtype) / 255.0


def tensor_to_frames(images: torch.Tensor) -> torch.Tensor:
    """float (..., 3, 64, 64) in [0, 1] -> uint8 (..., 64, 64, 3)."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).movedim(-3, -1)


class ConvVAE(nn.Module):
    """World Models' V: 64x64x3 frames <-> z of size ``z_dim`` (32 for CarRacing, 64 for Doom)."""

    def __init__(self, z_dim: int):
        super().__init__()
        if z_dim < 1:
            raise ValueError(f"z_dim must be >= 1, got {z_dim}")
        self.z_dim = z_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 32, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 128, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(128, 256, 4, stride=2),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.to_mu = nn.Linear(2 * 2 * 256, z_dim)
        self.to_logvar = nn.Linear(2 * 2 * 256, z_dim)
        self.from_z = nn.Linear(z_dim, 1024)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(1024, 128, 5, stride=2),
            nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 5, stride=2),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 6, stride=2),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 3, 6, stride=2),
            nn.Sigmoid(),
        )

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, 64, 64) in [0, 1] -> mean and log-variance of q(z | x), each (B, z_dim)."""
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, 64, 64):
            raise ValueError(f"ConvVAE.encode expects (B, 3, 64, 64) images, got {tuple(images.shape)}")
        features = self.encoder(images)
        return self.to_mu(features), self.to_logvar(features)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, z_dim) -> (B, 3, 64, 64) in [0, 1]."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"ConvVAE.decode expects z of shape (B, {self.z_dim}), got {tuple(z.shape)}")
        return self.decoder(self.from_z(z)[:, :, None, None])

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction through a reparameterised sample z = mu + sigma * eps; returns (x_hat, mu, logvar)."""
        mu, logvar = self.encode(images)
        return self.decode(sample_latent(mu, logvar, generator)), mu, logvar


def sample_latent(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) (the reparameterisation trick)."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per sample, (B, D) -> (B,)."""
    return -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(-1)


def vae_loss(
    images: torch.Tensor,
    reconstruction: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    kl_tolerance: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch means of (total, reconstruction, free-bits KL); the KL of each sample is floored at tolerance * z_dim."""
    reconstruction_loss = (images - reconstruction).square().flatten(1).sum(-1).mean()
    kl = torch.clamp(kl_to_standard_normal(mu, logvar), min=kl_tolerance * mu.shape[-1]).mean()
    return reconstruction_loss + kl, reconstruction_loss, kl

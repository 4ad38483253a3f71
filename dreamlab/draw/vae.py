"""A plain one-shot VAE (Kingma & Welling 2014) as DRAW's baseline at a matched latent budget.

DRAW sends T latent vectors of size z; the baseline gets one latent of size T * z, so both transmit the same
number of Gaussian latent dimensions and pay the same kind of KL cost for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dreamlab.draw.losses import gaussian_kl


@dataclass
class VAEOutput:
    """Decoder logits (batch, C, H, W) (sigmoid gives the image) and the KL to N(0, I) per image (batch,)."""

    logits: torch.Tensor
    kl: torch.Tensor

    @property
    def final_logits(self) -> torch.Tensor:
        return self.logits

    @property
    def kl_per_image(self) -> torch.Tensor:
        return self.kl


class VAE(nn.Module):
    """MLP encoder q(z|x) = N(mu, sigma^2) and MLP decoder of pixel logits, with ``layers`` hidden layers each."""

    def __init__(self, channels: int, height: int, width: int, latent_size: int, hidden_size: int, layers: int = 2):
        super().__init__()
        if min(channels, height, width, latent_size, hidden_size, layers) < 1:
            raise ValueError(
                f"VAE sizes must be positive, got channels={channels} height={height} width={width} "
                f"latent_size={latent_size} hidden_size={hidden_size} layers={layers}"
            )
        self.image_shape = (channels, height, width)
        self.latent_size = latent_size
        pixels = channels * height * width
        self.encoder = self._mlp(pixels, hidden_size, 2 * latent_size, layers)
        self.decoder = self._mlp(latent_size, hidden_size, pixels, layers)

    @staticmethod
    def _mlp(inputs: int, hidden: int, outputs: int, layers: int) -> nn.Sequential:
        modules: list[nn.Module] = []
        size = inputs
        for _ in range(layers):
            modules += [nn.Linear(size, hidden), nn.ReLU()]
            size = hidden
        modules.append(nn.Linear(size, outputs))
        return nn.Sequential(*modules)

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        if images.dim() != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"VAE expects images of shape (batch, {self.image_shape}), got {tuple(images.shape)}")
        mu, log_sigma = self.encoder(images.flatten(1)).chunk(2, dim=1)
        noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(log_sigma) * noise
        logits = self.decoder(z).view(-1, *self.image_shape)
        return VAEOutput(logits, gaussian_kl(mu, log_sigma))

    @torch.no_grad()
    def generate(self, count: int, generator: torch.Generator | None = None) -> VAEOutput:
        param = next(self.parameters())
        z = torch.randn(count, self.latent_size, generator=generator, device=param.device, dtype=param.dtype)
        logits = self.decoder(z).view(-1, *self.image_shape)
        return VAEOutput(logits, param.new_zeros(count))

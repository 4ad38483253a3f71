"""DCGAN-style generator and discriminators for (conditional) GANs.

Generator: Radford et al. (2016), "Unsupervised Representation Learning with Deep Convolutional GANs": a linear
projection of the code to 4x4 feature maps, then stride-2 transposed convolutions with batch norm and ReLU, tanh out.
In the conditional variants the code is [z, y] (Mirza & Osindero, 2014).

Discriminators share a stride-2 convolutional trunk with LeakyReLU(0.2) and differ in how y enters:
- ``concat`` (SNcGAN, Mufti et al., 2019, arXiv 1903.06259): y is tiled over the feature maps after the first
  convolution and concatenated along channels, and concatenated again to the flattened features before the output.
- ``projection`` (Miyato & Koyama, 2018, "cGANs with Projection Discriminator", eq. 3):
  D(x, y) = psi(phi(x)) + y^T V phi(x), an inner product between an embedding of y and the features.
- ``none``: unconditional, D(x) = psi(phi(x)).
Every layer of the discriminator can be spectrally normalised (Miyato et al., 2018, "Spectral Normalization for
GANs", eq. 8: W_SN = W / sigma(W), sigma estimated by one power iteration per forward pass).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

CONDITIONINGS = ("concat", "projection", "none")


def _check_image_size(image_size: int) -> int:
    """Number of stride-2 stages between 4x4 and ``image_size`` (which must be a power of two >= 8)."""
    stages = math.log2(image_size) - 2 if image_size > 0 else -1
    if stages < 1 or stages != int(stages):
        raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
    return int(stages)


def tile_condition(y: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Broadcast y (n, C) to feature maps (n, C, height, width) for channel-wise concatenation."""
    return y[:, :, None, None].expand(-1, -1, height, width)


class Generator(nn.Module):
    """DCGAN generator G([z, y]) -> images in [-1, 1] of shape (n, channels, image_size, image_size)."""

    def __init__(self, z_dim: int, cond_dim: int, image_size: int, channels: int = 3, width: int = 64):
        super().__init__()
        stages = _check_image_size(image_size)
        self.z_dim, self.cond_dim = z_dim, cond_dim
        top = width * 2 ** (stages - 1)
        self.project = nn.Sequential(
            nn.Linear(z_dim + cond_dim, top * 16, bias=False),
            nn.Unflatten(1, (top, 4, 4)),
            nn.BatchNorm2d(top),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        for stage in range(stages - 1):
            c_in, c_out = top // 2**stage, top // 2 ** (stage + 1)
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.upsample = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"expected z of shape (n, {self.z_dim}), got {tuple(z.shape)}")
        if self.cond_dim:
            if y is None or y.shape != (z.shape[0], self.cond_dim):
                got = None if y is None else tuple(y.shape)
                raise ValueError(f"conditional generator needs y of shape ({z.shape[0]}, {self.cond_dim}), got {got}")
            z = torch.cat([z, y.to(z.dtype)], dim=1)
        return self.upsample(self.project(z))


class Discriminator(nn.Module):
    """Convolutional discriminator D(x[, y]) -> one logit per image; see the module docstring for the variants.

    ``spectral``: spectral normalisation on every convolution and linear layer (including the projection embedding).
    ``batchnorm``: batch norm after the hidden convolutions, as in DCGAN's discriminator.
    """

    def __init__(
        self,
        cond_dim: int,
        image_size: int,
        channels: int = 3,
        width: int = 64,
        conditioning: str = "concat",
        spectral: bool = True,
        batchnorm: bool = False,
    ):
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"unknown conditioning {conditioning!r}; choose from {CONDITIONINGS}")
        if conditioning != "none" and cond_dim < 1:
            raise ValueError(f"{conditioning!r} conditioning needs cond_dim >= 1, got {cond_dim}")
        stages = _check_image_size(image_size)
        if conditioning == "concat" and stages < 2:
            # With no convolution after the tiled y, the logit is w.phi(x) + v.y: additive, so D cannot tell whether
            # an image matches its condition.
            raise ValueError(f"concat conditioning needs image_size >= 16 (a convolution after y), got {image_size}")
        self.conditioning, self.cond_dim = conditioning, cond_dim if conditioning != "none" else 0
        norm = spectral_norm if spectral else (lambda module: module)
        act = nn.LeakyReLU(0.2)
        self.first = nn.Sequential(norm(nn.Conv2d(channels, width, 4, 2, 1)), act)
        tiled = self.cond_dim if conditioning == "concat" else 0
        layers: list[nn.Module] = []
        c_in = width + tiled
        for stage in range(1, stages):
            c_out = width * 2**stage
            layers.append(norm(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not batchnorm)))
            if batchnorm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(act)
            c_in = c_out
        self.rest = nn.Sequential(*layers, nn.Flatten())
        self.feature_dim = c_in * 16
        self.out = norm(nn.Linear(self.feature_dim + tiled, 1))
        # Projection (Miyato & Koyama 2018, eq. 3): V embeds y; no bias, so y = 0 contributes nothing.
        self.embed = (
            norm(nn.Linear(self.cond_dim, self.feature_dim, bias=False)) if conditioning == "projection" else None
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond_dim and (y is None or y.shape != (x.shape[0], self.cond_dim)):
            got = None if y is None else tuple(y.shape)
            raise ValueError(f"conditional discriminator needs y of shape ({x.shape[0]}, {self.cond_dim}), got {got}")
        h = self.first(x)
        if self.conditioning == "concat":
            y = y.to(h.dtype)
            h = torch.cat([h, tile_condition(y, h.shape[2], h.shape[3])], dim=1)
        phi = self.rest(h)
        if self.conditioning == "concat":
            return self.out(torch.cat([phi, y], dim=1)).squeeze(1)
        logit = self.out(phi).squeeze(1)
        if self.conditioning == "projection":
            logit = logit + projection_term(self.embed(y.to(phi.dtype)), phi)
        return logit


def projection_term(embedded_y: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """y^T V phi(x) of Miyato & Koyama (2018), given V y (n, F) and phi(x) (n, F): a per-sample inner product."""
    return (embedded_y * phi).sum(dim=1)


def init_dcgan_weights(module: nn.Module) -> None:
    """Radford et al. (2016): all weights from N(0, 0.02); batch-norm scales from N(1, 0.02), shifts zero."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)

"""DCGAN-style generator and discriminators for (conditional) GANs.

Generator: Radford et al. (2016), "Unsupervised Representation Learning with Deep Convolutional GANs": a linear
projection of the code to 4x4 feature maps, then stride-2 transposed convolutions with batch norm and ReLU, tanh out.
In the conditional variants the code is [z, y] (Mirza & Osindero, 2014) and every batch norm is conditional
(de Vries et al., 2017; Dumoulin et al., 2017; the generator of Miyato & Koyama, 2018): its per-channel gain and
shift are functions of y, so the condition acts on every layer instead of only entering through the first one, where
batch normalisation over a mixed-condition batch leaves it a small share of the variance.

Discriminators share a stride-2 convolutional trunk with LeakyReLU(0.2) and differ in how y enters:
- ``concat`` (SNcGAN, Mufti et al., 2019, arXiv 1903.06259): y is tiled over the feature maps after the first
  convolution and concatenated along channels, and concatenated again to the flattened features before the output.
- ``projection`` (Miyato & Koyama, 2018, "cGANs with Projection Discriminator", eq. 3):
  D(x, y) = psi(phi(x)) + y^T V phi(x), an inner product between an embedding of y and the features.
- ``none``: unconditional, D(x) = psi(phi(x)); with ``outputs`` > 1 the same trunk is a classifier (the auxiliary
  classifier of ``GANTrainer``), one logit per class.
Every layer of the discriminator can be spectrally normalised (Miyato et al., 2018, "Spectral Normalization for
GANs", eq. 8: W_SN = W / sigma(W), sigma estimated by one power iteration per forward pass).
"""

from __future__ import annotations

import itertools
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


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose affine transform depends on y: BN(h) * (1 + y W_gamma) + y W_beta.

    With a multi-hot y (one block per attribute) the gain and shift are sums of per-class embeddings, the
    class-conditional batch norm of de Vries et al. (2017) extended to several attributes. With y = 0 it is a plain
    batch norm with unit gain and zero shift.
    """

    def __init__(self, num_features: int, cond_dim: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Linear(cond_dim, num_features, bias=False)
        self.shift = nn.Linear(cond_dim, num_features, bias=False)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + self.gain(y)[:, :, None, None]
        return self.norm(h) * gain + self.shift(y)[:, :, None, None]


class Generator(nn.Module):
    """DCGAN generator G([z, y]) -> images in [-1, 1] of shape (n, channels, image_size, image_size).

    Conditional (``cond_dim`` > 0): y is concatenated to z and, with ``conditional_norm`` (the default), every batch
    norm is a ``ConditionalBatchNorm2d``; without it y enters only with z (Mirza & Osindero's generator). With
    ``norm_sees_z`` the norms are conditioned on [y, z] instead of y (BigGAN, Brock et al. 2019, sec. 3: z feeds every
    layer's gain and bias), so z keeps a say at every layer where a y-only norm can drown it out. Weights are
    DCGAN-initialised at construction.
    """

    def __init__(
        self,
        z_dim: int,
        cond_dim: int,
        image_size: int,
        channels: int = 3,
        width: int = 64,
        conditional_norm: bool = True,
        norm_sees_z: bool = False,
    ):
        super().__init__()
        stages = _check_image_size(image_size)
        self.z_dim, self.cond_dim = z_dim, cond_dim
        self.conditional_norm = conditional_norm and cond_dim > 0
        if norm_sees_z and not self.conditional_norm:
            raise ValueError("norm_sees_z needs a conditional generator with conditional_norm")
        self.norm_sees_z = norm_sees_z
        norm_input = cond_dim + (z_dim if norm_sees_z else 0)
        widths = [width * 2 ** (stages - 1 - s) for s in range(stages)]  # channels at 4x4, 8x8, ..., image_size / 2
        self.project = nn.Linear(z_dim + cond_dim, widths[0] * 16, bias=False)
        self.norms = nn.ModuleList(
            ConditionalBatchNorm2d(c, norm_input) if self.conditional_norm else nn.BatchNorm2d(c) for c in widths
        )
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False) for c_in, c_out in itertools.pairwise(widths)
        )
        self.to_image = nn.ConvTranspose2d(width, channels, 4, 2, 1)
        init_dcgan_weights(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"expected z of shape (n, {self.z_dim}), got {tuple(z.shape)}")
        code = z
        if self.cond_dim:
            if y is None or y.shape != (z.shape[0], self.cond_dim):
                got = None if y is None else tuple(y.shape)
                raise ValueError(f"conditional generator needs y of shape ({z.shape[0]}, {self.cond_dim}), got {got}")
            y = y.to(z.dtype)
            code = torch.cat([z, y], dim=1)
        h = self.project(code).view(z.shape[0], -1, 4, 4)
        norm_condition = code if self.norm_sees_z else y
        for stage, norm in enumerate(self.norms):
            if stage:
                h = self.upsample[stage - 1](h)
            h = torch.relu(norm(h, norm_condition) if self.conditional_norm else norm(h))
        return torch.tanh(self.to_image(h))


class Discriminator(nn.Module):
    """Convolutional discriminator D(x[, y]) -> one logit per image; see the module docstring for the variants.

    ``spectral``: spectral normalisation on every convolution and linear layer (including the projection embedding).
    ``batchnorm``: batch norm after the hidden convolutions, as in DCGAN's discriminator.
    ``outputs``: logits per image; more than one only without conditioning, and then ``forward`` returns (n, outputs).
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
        outputs: int = 1,
    ):
        super().__init__()
        if outputs < 1 or (outputs > 1 and conditioning != "none"):
            raise ValueError(f"outputs must be 1, or > 1 with conditioning 'none'; got {outputs} with {conditioning!r}")
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

        def layer(module: nn.Module) -> nn.Module:
            # Initialise before spectral_norm: registering it runs power iterations on the weight it finds, and
            # re-initialising afterwards would leave u, v (hence sigma) estimated for weights that no longer exist.
            init_dcgan_weights(module)
            return spectral_norm(module) if spectral else module

        act = nn.LeakyReLU(0.2)
        self.first = nn.Sequential(layer(nn.Conv2d(channels, width, 4, 2, 1)), act)
        tiled = self.cond_dim if conditioning == "concat" else 0
        layers: list[nn.Module] = []
        c_in = width + tiled
        for stage in range(1, stages):
            c_out = width * 2**stage
            layers.append(layer(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not batchnorm)))
            if batchnorm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(act)
            c_in = c_out
        self.rest = nn.Sequential(*layers, nn.Flatten())
        self.feature_dim = c_in * 16
        self.outputs = outputs
        self.out = layer(nn.Linear(self.feature_dim + tiled, outputs))
        # Projection (Miyato & Koyama 2018, eq. 3): V embeds y; no bias, so y = 0 contributes nothing.
        self.embed = (
            layer(nn.Linear(self.cond_dim, self.feature_dim, bias=False)) if conditioning == "projection" else None
        )
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                init_dcgan_weights(m)

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
        if self.outputs > 1:
            return self.out(phi)
        logit = self.out(phi).squeeze(1)
        if self.conditioning == "projection":
            logit = logit + projection_term(self.embed(y.to(phi.dtype)), phi)
        return logit


def projection_term(embedded_y: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """y^T V phi(x) of Miyato & Koyama (2018), given V y (n, F) and phi(x) (n, F): a per-sample inner product."""
    return (embedded_y * phi).sum(dim=1)


def init_dcgan_weights(module: nn.Module) -> None:
    """Radford et al. (2016): all weights from N(0, 0.02); batch-norm scales from N(1, 0.02), shifts zero.

    Refuses spectrally normalised layers: their power-iteration state belongs to the weight present when
    spectral_norm was registered, so they must be initialised before (as ``Discriminator`` does).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if hasattr(m, "parametrizations"):
                raise ValueError(f"{m} is already parametrised (spectral norm); initialise it before registering that")
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)

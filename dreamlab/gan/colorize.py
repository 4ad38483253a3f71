"""Line-art colorization with colour hints (deepcolor, K. Frans 2017; after pix2pix, Isola et al. 2017).

The generator sees line art (OpenCV edge detection of the colour image) and a colour hint, and is trained with
L1 to the original plus an adversarial loss. The hint is the original with 30 random 10x10 patches whited out and
then heavily blurred: holes in the hint force the network to infer colour from the lines. At inference nothing is
whited out; instead every colour is moved towards white, keeping 0.3 of its intensity, roughly what the holes
leave in expectation. An all-white hint is the "no hint" case.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dreamlab.gan.losses import discriminator_loss, generator_loss
from dreamlab.grad_monitor import GradientMonitor, check_finite

WHITE = 255


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    return image


def line_art(image: np.ndarray, low: int = 50, high: int = 150) -> np.ndarray:
    """Black lines on white, uint8 (H, W): Canny edges (hysteresis thresholds ``low``, ``high``) of the colour image.

    OpenCV's Canny on a 3-channel image takes, per pixel, the channel with the largest gradient, so edges between
    colours of equal brightness (yellow on light grey) are found, which a grey conversion would lose.
    """
    return WHITE - cv2.Canny(_check_image(image), low, high)


def default_blur(size: int) -> int:
    """The post blurs 256-pixel images with a 100-pixel box; the same fraction of the image at other sizes."""
    return max(3, round(size * 100 / 256))


def training_hint(
    image: np.ndarray, rng: np.random.Generator, whiteouts: int = 30, patch: int = 10, blur: int | None = None
) -> np.ndarray:
    """The training colour hint: ``whiteouts`` random ``patch`` x ``patch`` squares set to white, then a box blur."""
    hint = _check_image(image).copy()
    h, w = hint.shape[:2]
    if patch > min(h, w):
        raise ValueError(f"white-out patch {patch} exceeds the {h}x{w} image")
    for top, left in zip(
        rng.integers(0, h - patch + 1, whiteouts), rng.integers(0, w - patch + 1, whiteouts), strict=True
    ):
        hint[top : top + patch, left : left + patch] = WHITE
    k = blur or default_blur(min(h, w))
    return cv2.blur(hint, (k, k))


def inference_hint(image: np.ndarray, intensity: float = 0.3, blur: int | None = None) -> np.ndarray:
    """The inference colour hint: colours moved towards white keeping ``intensity`` of their strength, then blurred."""
    image = _check_image(image).astype(np.float32)
    faded = intensity * image + (1.0 - intensity) * WHITE
    k = blur or default_blur(min(image.shape[:2]))
    return np.clip(cv2.blur(faded, (k, k)).round(), 0, 255).astype(np.uint8)


def blank_hint(height: int, width: int) -> np.ndarray:
    """No colour information at all: an all-white hint."""
    return np.full((height, width, 3), WHITE, dtype=np.uint8)


def to_unit_range(images: np.ndarray) -> torch.Tensor:
    """uint8 (n, H, W, 3) or (n, H, W) -> float (n, C, H, W) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div(127.5).sub(1.0)
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)


class UNetGenerator(nn.Module):
    """U-Net (Ronneberger et al., 2015): stride-2 encoder, transposed-conv decoder, each decoder stage concatenated
    with the encoder features of the same resolution, so the line art reaches the output without passing the
    bottleneck. Input: line art (1 channel) and hint (3 channels); output: RGB in [-1, 1]."""

    def __init__(self, in_channels: int = 4, out_channels: int = 3, width: int = 32, depth: int = 4):
        super().__init__()
        if depth < 1:
            raise ValueError(f"U-Net depth must be >= 1, got {depth}")
        self.depth = depth
        channels = [width * min(2**i, 8) for i in range(depth)]
        self.down = nn.ModuleList()
        c_in = in_channels
        for i, c in enumerate(channels):
            layers: list[nn.Module] = [nn.Conv2d(c_in, c, 4, 2, 1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.LeakyReLU(0.2, True))
            self.down.append(nn.Sequential(*layers))
            c_in = c
        self.up = nn.ModuleList()
        for i in reversed(range(1, depth)):
            c_up_in = channels[i] if i == depth - 1 else 2 * channels[i]
            self.up.append(
                nn.Sequential(
                    nn.ConvTranspose2d(c_up_in, channels[i - 1], 4, 2, 1, bias=False),
                    nn.BatchNorm2d(channels[i - 1]),
                    nn.ReLU(True),
                )
            )
        last_in = channels[0] * (2 if depth > 1 else 1)
        self.out = nn.Sequential(nn.ConvTranspose2d(last_in, out_channels, 4, 2, 1), nn.Tanh())

    def forward(self, lines: torch.Tensor, hint: torch.Tensor) -> torch.Tensor:
        if lines.shape[0] != hint.shape[0] or lines.shape[2:] != hint.shape[2:]:
            raise ValueError(f"line art {tuple(lines.shape)} and hint {tuple(hint.shape)} do not match")
        size = lines.shape[-1]
        if lines.shape[-2] % 2**self.depth or size % 2**self.depth:
            raise ValueError(
                f"image sides must be divisible by 2**depth = {2**self.depth}, got {tuple(lines.shape[2:])}"
            )
        h = torch.cat([lines, hint], dim=1)
        skips = []
        for stage in self.down:
            h = stage(h)
            skips.append(h)
        for i, stage in enumerate(self.up):
            if i > 0:
                h = torch.cat([h, skips[-1 - i]], dim=1)
            h = stage(h)
        if self.depth > 1:
            h = torch.cat([h, skips[0]], dim=1)
        return self.out(h)


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al., 2017): a logit per overlapping patch for a (line art, colour image) pair."""

    def __init__(self, in_channels: int = 4, width: int = 32, layers: int = 3):
        super().__init__()
        blocks: list[nn.Module] = []
        c_in = in_channels
        for i in range(layers):
            c = width * 2**i
            blocks += [nn.Conv2d(c_in, c, 4, 2, 1, bias=i == 0)]
            if i > 0:
                blocks.append(nn.BatchNorm2d(c))
            blocks.append(nn.LeakyReLU(0.2, True))
            c_in = c
        blocks.append(nn.Conv2d(c_in, 1, 3, 1, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, lines: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([lines, image], dim=1))


class ColorizationTrainer:
    """U-Net generator and patch discriminator, updated with L1 * l1_weight + adversarial (bce) losses."""

    def __init__(
        self,
        width: int = 32,
        depth: int = 4,
        *,
        l1_weight: float = 100.0,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        log_grads: bool = False,
    ):
        self.l1_weight, self.device, self.dtype = l1_weight, torch.device(device), dtype
        self.generator = UNetGenerator(width=width, depth=depth).to(self.device, dtype)
        self.discriminator = PatchDiscriminator(width=width).to(self.device, dtype)
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas)
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas)
        self.g_monitor = GradientMonitor(self.generator) if log_grads else None
        self.d_monitor = GradientMonitor(self.discriminator) if log_grads else None

    def step(self, lines: torch.Tensor, hint: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        lines, hint, target = (t.to(self.device, self.dtype) for t in (lines, hint, target))
        self.generator.train()
        self.discriminator.train()
        fake = self.generator(lines, hint)

        d_loss = discriminator_loss(self.discriminator(lines, target), self.discriminator(lines, fake.detach()))
        check_finite(d_loss, "colorization discriminator loss")
        self.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        if self.d_monitor is not None:
            self.d_monitor.check()
        self.d_optimizer.step()

        adversarial = generator_loss(self.discriminator(lines, fake))
        l1 = F.l1_loss(fake, target)
        g_loss = check_finite(adversarial + self.l1_weight * l1, "colorization generator loss")
        self.g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        if self.g_monitor is not None:
            self.g_monitor.check()
        self.g_optimizer.step()
        return {"d_loss": d_loss.item(), "g_adversarial": adversarial.item(), "l1": l1.item()}

    @torch.no_grad()
    def colorize(self, lines: torch.Tensor, hint: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
        """Colour images in [-1, 1] for line art (n, 1, H, W) and hints (n, 3, H, W) in [-1, 1]."""
        self.generator.eval()
        out = [
            self.generator(
                lines[i : i + batch_size].to(self.device, self.dtype),
                hint[i : i + batch_size].to(self.device, self.dtype),
            )
            for i in range(0, lines.shape[0], batch_size)
        ]
        return torch.cat(out)

    def state_dict(self) -> dict:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.g_optimizer.load_state_dict(state["g_optimizer"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])

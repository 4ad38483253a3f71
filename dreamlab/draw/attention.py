"""DRAW's Gaussian filterbank attention (Gregor et al. 2015, section 3) and its no-attention counterpart.

An N x N grid of isotropic Gaussian filters is placed on an A x B image (A columns, B rows) by five numbers
emitted by a linear map of the decoder state: grid centre (g_X, g_Y), stride delta, variance sigma^2 and
intensity gamma. Reading multiplies the image by the filterbanks, ``F_Y x F_X^T`` (an N x N patch); writing
applies the transposes, ``F_Y^T w F_X`` (an N x N patch spread over the canvas). Coordinates follow the paper:
pixel columns a = 1..A, rows b = 1..B, filter indices i, j = 1..N.

Colour images share one window across channels, as in the colour-DRAW post: the filterbanks are built once per
image and applied to every channel, so the three channels are always read from and written to the same place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

# Added to the filterbank normaliser Z (eqs. 25-26): a filter far outside the image has every weight underflow
# to 0, and 0/eps keeps it at 0 instead of NaN.
FILTER_EPS = 1e-8


@dataclass
class AttentionWindow:
    """One attention window per image: each field has shape (batch,).

    ``centre_x``/``centre_y`` are g_X, g_Y in 1-based pixel coordinates, ``stride`` is delta, ``variance`` is
    sigma^2 and ``intensity`` is gamma (eqs. 21-24).
    """

    centre_x: torch.Tensor
    centre_y: torch.Tensor
    stride: torch.Tensor
    variance: torch.Tensor
    intensity: torch.Tensor

    def detach(self) -> AttentionWindow:
        return AttentionWindow(*(t.detach() for t in self.as_tuple()))

    def as_tuple(self) -> tuple[torch.Tensor, ...]:
        return (self.centre_x, self.centre_y, self.stride, self.variance, self.intensity)


def window_from_params(params: torch.Tensor, height: int, width: int, patch: int) -> AttentionWindow:
    """Map the 5 raw outputs of W(h_dec) to a window (eqs. 21-24).

    ``params[..., :5]`` are (g~_X, g~_Y, log sigma^2, log delta~, log gamma) (eq. 21). The centre is scaled so that
    g~ = -1..1 spans the image (eqs. 22-23) and the stride so that delta~ = 1 makes the grid span the larger side
    (eq. 24).
    """
    if params.shape[-1] != 5:
        raise ValueError(f"attention parameters need 5 values per image, got shape {tuple(params.shape)}")
    g_x_tilde, g_y_tilde, log_variance, log_stride_tilde, log_intensity = params.unbind(-1)
    centre_x = (width + 1) / 2 * (g_x_tilde + 1)  # eq. 22 (A = width)
    centre_y = (height + 1) / 2 * (g_y_tilde + 1)  # eq. 23 (B = height)
    stride = (max(width, height) - 1) / max(patch - 1, 1) * torch.exp(log_stride_tilde)  # eq. 24
    return AttentionWindow(centre_x, centre_y, stride, torch.exp(log_variance), torch.exp(log_intensity))


def filter_centres(centre: torch.Tensor, stride: torch.Tensor, patch: int) -> torch.Tensor:
    """Filter means mu^i = g + (i - N/2 - 0.5) * delta for i = 1..N (eqs. 19-20); shape (batch, N)."""
    i = torch.arange(1, patch + 1, device=centre.device, dtype=centre.dtype)
    return centre[:, None] + (i - patch / 2 - 0.5) * stride[:, None]


def filterbank(centres: torch.Tensor, variance: torch.Tensor, size: int) -> torch.Tensor:
    """Row-normalised Gaussian filterbank F[i, a] ∝ exp(-(a - mu^i)^2 / (2 sigma^2)), a = 1..size (eqs. 25-26).

    ``centres`` (batch, N) and ``variance`` (batch,) give a (batch, N, size) tensor whose rows sum to 1 (the
    normaliser Z of eqs. 25-26).
    """
    a = torch.arange(1, size + 1, device=centres.device, dtype=centres.dtype)
    weights = torch.exp(-((a[None, None, :] - centres[:, :, None]) ** 2) / (2 * variance[:, None, None]))
    return weights / (weights.sum(dim=-1, keepdim=True) + FILTER_EPS)


def filterbanks(window: AttentionWindow, height: int, width: int, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(F_X, F_Y) of shapes (batch, N, width) and (batch, N, height) for a window (eqs. 19-20, 25-26)."""
    f_x = filterbank(filter_centres(window.centre_x, window.stride, patch), window.variance, width)
    f_y = filterbank(filter_centres(window.centre_y, window.stride, patch), window.variance, height)
    return f_x, f_y


def read_patch(images: torch.Tensor, f_x: torch.Tensor, f_y: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
    """gamma * F_Y x F_X^T per channel (eq. 27): images (batch, C, B, A) -> patches (batch, C, N, N)."""
    patch = f_y[:, None] @ images @ f_x[:, None].transpose(-1, -2)
    return intensity[:, None, None, None] * patch


def write_patch(patches: torch.Tensor, f_x: torch.Tensor, f_y: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
    """(1 / gamma) * F_Y^T w F_X per channel (eq. 29): patches (batch, C, N, N) -> canvas update (batch, C, B, A)."""
    canvas = f_y[:, None].transpose(-1, -2) @ patches @ f_x[:, None]
    return canvas / intensity[:, None, None, None]


def window_linear(dec_size: int, height: int, width: int, patch: int, write: bool) -> nn.Linear:
    """W(h_dec) of eq. 21, initialised so that the first window sees (or paints) the whole image.

    The paper does not give an initialisation; two choices here decide whether attention learns at all on small
    objects. With zero bias the grid spans the image (eqs. 22-24), but sigma = 1 pixel while the stride is
    (A - 1) / (N - 1) pixels, so an N x N read samples N^2 pinpoints and misses a small sprite entirely: the encoder
    sees nothing, the KL collapses to zero and the window never learns where to go. Starting sigma at half the
    stride makes the filters overlap into a low-resolution view of the whole image. Writing spreads each patch
    value over about stride^2 canvas pixels (F^T has columns summing to about 1 / stride), so a write starts
    with intensity 1 / gamma = stride^2: one unit of patch value then moves the canvas logits by about one unit,
    as the whole-canvas write of eq. 18 does, instead of a twentieth of one.
    """
    linear = nn.Linear(dec_size, 5)
    stride = (max(width, height) - 1) / max(patch - 1, 1)
    with torch.no_grad():
        linear.bias.zero_()
        linear.bias[2] = 2 * math.log(max(stride / 2, 0.5))  # log sigma^2
        if write:
            linear.bias[4] = -2 * math.log(max(stride, 1.0))  # log gamma
    return linear


class AttentionRead(nn.Module):
    """read(x, x_hat, h_dec) = gamma [F_Y x F_X^T, F_Y x_hat F_X^T] with a window from W(h_dec) (eqs. 21-27)."""

    def __init__(self, channels: int, height: int, width: int, patch: int, dec_size: int):
        super().__init__()
        self.channels, self.height, self.width, self.patch = channels, height, width, patch
        self.window_params = window_linear(dec_size, height, width, patch, write=False)  # eq. 21
        self.output_size = 2 * channels * patch * patch

    def forward(
        self, images: torch.Tensor, errors: torch.Tensor, h_dec: torch.Tensor
    ) -> tuple[torch.Tensor, AttentionWindow]:
        window = window_from_params(self.window_params(h_dec), self.height, self.width, self.patch)
        f_x, f_y = filterbanks(window, self.height, self.width, self.patch)
        # Image and error image go through the filterbanks as one stack of 2C channels: [x patch, x_hat patch].
        glimpse = read_patch(torch.cat([images, errors], dim=1), f_x, f_y, window.intensity)
        return glimpse.flatten(1), window


class AttentionWrite(nn.Module):
    """write(h_dec) = (1 / gamma^) F^_Y^T w F^_X with w = W(h_dec) (eqs. 28-29) and its own window (eq. 21)."""

    def __init__(self, channels: int, height: int, width: int, patch: int, dec_size: int):
        super().__init__()
        self.channels, self.height, self.width, self.patch = channels, height, width, patch
        self.window_params = window_linear(dec_size, height, width, patch, write=True)  # eq. 21, own parameters
        self.patch_values = nn.Linear(dec_size, channels * patch * patch)  # eq. 28

    def forward(self, h_dec: torch.Tensor) -> tuple[torch.Tensor, AttentionWindow]:
        window = window_from_params(self.window_params(h_dec), self.height, self.width, self.patch)
        f_x, f_y = filterbanks(window, self.height, self.width, self.patch)
        patches = self.patch_values(h_dec).view(-1, self.channels, self.patch, self.patch)
        return write_patch(patches, f_x, f_y, window.intensity), window


class FullRead(nn.Module):
    """Without attention the encoder reads the whole image and error image: read = [x, x_hat] (eq. 17)."""

    def __init__(self, channels: int, height: int, width: int):
        super().__init__()
        self.output_size = 2 * channels * height * width

    def forward(self, images: torch.Tensor, errors: torch.Tensor, h_dec: torch.Tensor) -> tuple[torch.Tensor, None]:
        return torch.cat([images.flatten(1), errors.flatten(1)], dim=1), None


class FullWrite(nn.Module):
    """Without attention the decoder writes the whole canvas: write(h_dec) = W(h_dec) (eq. 18)."""

    def __init__(self, channels: int, height: int, width: int, dec_size: int):
        super().__init__()
        self.shape = (channels, height, width)
        self.canvas_values = nn.Linear(dec_size, channels * height * width)

    def forward(self, h_dec: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.canvas_values(h_dec).view(-1, *self.shape), None

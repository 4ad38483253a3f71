"""The DRAW network (Gregor et al. 2015): a recurrent VAE that builds an image on a canvas over T glimpses."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dreamlab.draw.attention import AttentionRead, AttentionWindow, AttentionWrite, FullRead, FullWrite
from dreamlab.draw.losses import gaussian_kl


def _stack_windows(windows: list[AttentionWindow | None]) -> AttentionWindow | None:
    if not windows or windows[0] is None:
        return None
    return AttentionWindow(*(torch.stack(parts) for parts in zip(*(w.as_tuple() for w in windows), strict=True)))


@dataclass
class DrawOutput:
    """What one pass of DRAW produced.

    ``canvases`` holds the canvas logits c_1..c_T, shape (T, batch, C, H, W); sigmoid(c_t) is the image after
    glimpse t. ``kl`` is each step's KL term, shape (T, batch) (eq. 11). ``read_windows``/``write_windows`` hold
    every step's attention window with fields of shape (T, batch), or ``None`` without attention.
    """

    canvases: torch.Tensor
    kl: torch.Tensor
    read_windows: AttentionWindow | None
    write_windows: AttentionWindow | None

    @property
    def final_logits(self) -> torch.Tensor:
        return self.canvases[-1]

    @property
    def kl_per_image(self) -> torch.Tensor:
        """L^z = sum_t KL(Q(Z_t | h_enc_t) || P(Z_t)) (eq. 10), shape (batch,)."""
        return self.kl.sum(dim=0)


class DRAW(nn.Module):
    """Deep Recurrent Attentive Writer: encoder and decoder LSTMs exchanging one latent z_t per glimpse.

    With ``attention`` the encoder reads ``read_patch`` x ``read_patch`` Gaussian-filtered glimpses of the image and
    the error image and the decoder writes ``write_patch`` x ``write_patch`` patches (section 3.2); without it both
    see and write the whole image (section 3.1). Images are (batch, channels, height, width) in [0, 1].
    """

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        glimpses: int,
        enc_size: int,
        dec_size: int,
        z_size: int,
        attention: bool = True,
        read_patch: int = 2,
        write_patch: int = 5,
    ):
        super().__init__()
        for name, value in {
            "channels": channels,
            "height": height,
            "width": width,
            "glimpses": glimpses,
            "enc_size": enc_size,
            "dec_size": dec_size,
            "z_size": z_size,
            "read_patch": read_patch,
            "write_patch": write_patch,
        }.items():
            if value < 1:
                raise ValueError(f"DRAW {name} must be positive, got {value}")
        self.image_shape = (channels, height, width)
        self.glimpses, self.z_size, self.attention = glimpses, z_size, attention
        if attention:
            self.read = AttentionRead(channels, height, width, read_patch, dec_size)
            self.write = AttentionWrite(channels, height, width, write_patch, dec_size)
        else:
            self.read = FullRead(channels, height, width)
            self.write = FullWrite(channels, height, width, dec_size)
        self.encoder = nn.LSTMCell(self.read.output_size + dec_size, enc_size)  # eq. 5
        self.decoder = nn.LSTMCell(z_size, dec_size)  # eq. 7
        self.posterior = nn.Linear(enc_size, 2 * z_size)  # eqs. 1-2: mu_t = W(h_enc), sigma_t = exp(W(h_enc))

    def _check_images(self, images: torch.Tensor) -> None:
        if images.dim() != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"DRAW expects images of shape (batch, {self.image_shape}), got {tuple(images.shape)}")

    def _zero_state(self, cell: nn.LSTMCell, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = like.new_zeros(batch, cell.hidden_size)
        return zeros, zeros

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> DrawOutput:
        """Encode and reconstruct ``images`` over T glimpses (eqs. 3-8), one reparameterised z_t per glimpse."""
        self._check_images(images)
        batch = images.shape[0]
        canvas = images.new_zeros(images.shape)
        h_enc, c_enc = self._zero_state(self.encoder, batch, images)
        h_dec, c_dec = self._zero_state(self.decoder, batch, images)
        canvases, kls, read_windows, write_windows = [], [], [], []
        for _ in range(self.glimpses):
            errors = images - torch.sigmoid(canvas)  # eq. 3
            glimpse, read_window = self.read(images, errors, h_dec)  # eq. 4, window from h_dec_{t-1}
            h_enc, c_enc = self.encoder(torch.cat([glimpse, h_dec], dim=1), (h_enc, c_enc))  # eq. 5
            mu, log_sigma = self.posterior(h_enc).chunk(2, dim=1)  # eqs. 1-2
            noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + torch.exp(log_sigma) * noise  # eq. 6, reparameterised
            h_dec, c_dec = self.decoder(z, (h_dec, c_dec))  # eq. 7
            update, write_window = self.write(h_dec)
            canvas = canvas + update  # eq. 8
            canvases.append(canvas)
            kls.append(gaussian_kl(mu, log_sigma))  # eq. 11, this step's share
            read_windows.append(read_window)
            write_windows.append(write_window)
        return DrawOutput(
            torch.stack(canvases), torch.stack(kls), _stack_windows(read_windows), _stack_windows(write_windows)
        )

    @torch.no_grad()
    def generate(self, count: int, generator: torch.Generator | None = None) -> DrawOutput:
        """Sample images from the prior: z_t ~ N(0, I), decoder and canvas only (eqs. 13-15).

        The returned ``kl`` is zero (there is no posterior) and ``read_windows`` is ``None``.
        """
        param = next(self.parameters())
        h_dec, c_dec = self._zero_state(self.decoder, count, param)
        canvas = param.new_zeros(count, *self.image_shape)
        canvases, write_windows = [], []
        for _ in range(self.glimpses):
            z = torch.randn(count, self.z_size, generator=generator, device=param.device, dtype=param.dtype)
            h_dec, c_dec = self.decoder(z, (h_dec, c_dec))  # eq. 14
            update, write_window = self.write(h_dec)
            canvas = canvas + update  # eq. 15
            canvases.append(canvas)
            write_windows.append(write_window)
        kl = param.new_zeros(self.glimpses, count)
        return DrawOutput(torch.stack(canvases), kl, None, _stack_windows(write_windows))

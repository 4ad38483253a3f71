"""The GAN variants behind one switch, and one alternating D/G update (Goodfellow et al., 2014, Algorithm 1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dreamlab.gan.conditioning import AttributeCodec
from dreamlab.gan.evaluation import AttributeClassifier
from dreamlab.gan.losses import (
    LOSSES,
    attribute_cross_entropy,
    discriminator_loss,
    generator_loss,
    mode_seeking_loss,
    r1_penalty,
    smoothed_real_targets,
)
from dreamlab.gan.networks import Discriminator, Generator
from dreamlab.grad_monitor import GradientMonitor, check_finite
from dreamlab.runtime import autocast as mixed_precision

# Architectures of the auxiliary classifier (GANTrainer's ``auxiliary_classifier``).
AUXILIARY_CLASSIFIERS = ("discriminator", "batchnorm")


@dataclass(frozen=True)
class VariantSpec:
    """What distinguishes one GAN variant from another."""

    conditional: bool  # G and D see y
    conditioning: str  # how D sees y: concat | projection | none
    spectral: bool  # spectral norm on every D layer
    d_batchnorm: bool  # batch norm in D's hidden layers (DCGAN)


VARIANTS: dict[str, VariantSpec] = {
    # SNcGAN (Mufti et al., 2019): conditional, y concatenated in D, spectral norm everywhere in D.
    "sncgan": VariantSpec(conditional=True, conditioning="concat", spectral=True, d_batchnorm=False),
    # The same conditional GAN without spectral norm: the ablation the SNcGAN target is measured against.
    "cgan": VariantSpec(conditional=True, conditioning="concat", spectral=False, d_batchnorm=False),
    # SN-GAN (Miyato et al., 2018): unconditional, spectral norm.
    "sngan": VariantSpec(conditional=False, conditioning="none", spectral=True, d_batchnorm=False),
    # DCGAN (Radford et al., 2016): unconditional, batch norm in D.
    "dcgan": VariantSpec(conditional=False, conditioning="none", spectral=False, d_batchnorm=True),
    # Projection discriminator (Miyato & Koyama, 2018) with spectral norm.
    "projection": VariantSpec(conditional=True, conditioning="projection", spectral=True, d_batchnorm=False),
}


def linear_decay(step: int, start: int, end: int) -> float:
    """Learning-rate factor: 1 until ``start``, then falling linearly to 0 at ``end``.

    The schedule of the SN-GAN / projection-discriminator reference code (Chainer's ``LinearShift`` of Adam's alpha
    from ``iteration_decay_start`` to the last iteration, for G and D alike).
    """
    if not 0 <= start < end:
        raise ValueError(f"learning-rate decay needs 0 <= start < end, got start {start}, end {end}")
    return 1.0 if step < start else max(0.0, (end - step) / (end - start))


def variant_spec(variant: str) -> VariantSpec:
    try:
        return VARIANTS[variant]
    except KeyError:
        raise ValueError(f"unknown GAN variant {variant!r}; choose from {sorted(VARIANTS)}") from None


class GANTrainer:
    """Generator, discriminator and their Adam optimisers for one variant: ``d_steps`` D updates, then one G update.

    Options beyond the SNcGAN recipe (all off by default): ``d_lr`` (two time-scale update rule), ``d_steps``
    (n_dis), ``mode_seeking`` (weight of the mode-seeking regulariser), ``r1`` (gamma of the R1 gradient penalty on
    D), ``g_conditional_norm=False`` (y enters G with z only), ``g_norm_sees_z`` (G's norms conditioned on [y, z]) and
    ``auxiliary`` (weight of an auxiliary-classifier term in G's loss; needs the ``codec`` of the attributes).
    ``autocast="bf16"`` runs D's and G's forward passes and losses in bfloat16 (:func:`dreamlab.runtime.autocast`);
    backward passes and Adam are unchanged.

    The auxiliary classifier (after AC-GAN, Odena et al., 2017) has one softmax per attribute, is trained on real
    images only and updated with D; G is asked to make images it classifies as their condition. It is a network of
    its own rather than a head on D because the concat D's features see y after the first layer: a head on them could
    read the label instead of the image. It learns from real images only: trained on generated ones too (AC-GAN's
    L_C), it and G can agree on images that are easy to classify rather than realistic (Gong et al., 2019, "Twin
    Auxiliary Classifiers GAN"). ``auxiliary_classifier`` picks its architecture: ``discriminator`` (D's
    trunk, spectrally normalised like D) or ``batchnorm`` (the batch-normalised CNN of ``AttributeClassifier``, of
    width ``d_width``, its own weights; it judges G's images with the running statistics of real ones), which learns
    the sprites' shapes far faster (docs/gan.md).
    """

    def __init__(
        self,
        variant: str,
        cond_dim: int,
        image_size: int,
        *,
        channels: int = 3,
        z_dim: int = 64,
        g_width: int = 64,
        d_width: int = 64,
        loss: str = "bce",
        label_smoothing: tuple[float, float] = (0.9, 1.0),
        lr: float = 2e-4,
        d_lr: float | None = None,
        d_steps: int = 1,
        mode_seeking: float = 0.0,
        r1: float = 0.0,
        g_conditional_norm: bool = True,
        g_norm_sees_z: bool = False,
        auxiliary: float = 0.0,
        auxiliary_classifier: str = "discriminator",
        codec: AttributeCodec | None = None,
        betas: tuple[float, float] = (0.5, 0.999),
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        log_grads: bool = False,
        autocast: str = "none",
    ):
        if loss not in LOSSES:
            raise ValueError(f"unknown GAN loss {loss!r}; choose from {LOSSES}")
        if d_steps < 1:
            raise ValueError(f"d_steps (discriminator updates per generator update) must be >= 1, got {d_steps}")
        if mode_seeking < 0:
            raise ValueError(f"mode_seeking weight must be >= 0, got {mode_seeking}")
        if r1 < 0:
            raise ValueError(f"r1 (gamma of the R1 penalty) must be >= 0, got {r1}")
        self.d_steps, self.mode_seeking, self.r1 = d_steps, mode_seeking, r1
        self.variant, self.spec = variant, variant_spec(variant)
        if auxiliary < 0:
            raise ValueError(f"auxiliary classifier weight must be >= 0, got {auxiliary}")
        if auxiliary and not (self.spec.conditional and codec is not None and codec.dim == cond_dim):
            raise ValueError(
                "the auxiliary classifier needs a conditional variant and the AttributeCodec of its cond_dim attributes"
            )
        if auxiliary_classifier not in AUXILIARY_CLASSIFIERS:
            raise ValueError(
                f"unknown auxiliary classifier {auxiliary_classifier!r}; choose from {AUXILIARY_CLASSIFIERS}"
            )
        self.auxiliary, self.codec = auxiliary, codec
        self.loss, self.label_smoothing = loss, label_smoothing
        self.cond_dim = cond_dim if self.spec.conditional else 0
        self.z_dim, self.device, self.dtype = z_dim, torch.device(device), dtype
        mixed_precision(self.device, autocast)  # an unknown mode is refused here, not at the first step
        self.autocast = autocast
        self.generator = Generator(
            z_dim, self.cond_dim, image_size, channels, g_width, g_conditional_norm, g_norm_sees_z
        )
        self.discriminator = Discriminator(
            self.cond_dim,
            image_size,
            channels,
            d_width,
            conditioning=self.spec.conditioning,
            spectral=self.spec.spectral,
            batchnorm=self.spec.d_batchnorm,
        )
        self.classifier: nn.Module | None = None
        if auxiliary and auxiliary_classifier == "batchnorm":
            self.classifier = AttributeClassifier(codec.sizes, channels, width=d_width)
        elif auxiliary:
            self.classifier = Discriminator(
                0,
                image_size,
                channels,
                d_width,
                conditioning="none",
                spectral=self.spec.spectral,
                outputs=sum(codec.sizes),
            )
        self.generator.to(self.device, dtype)
        self.discriminator.to(self.device, dtype)
        d_parameters = list(self.discriminator.parameters())
        if self.classifier is not None:
            self.classifier.to(self.device, dtype)
            d_parameters += list(self.classifier.parameters())
        # d_lr != lr is the two time-scale update rule (Heusel et al., 2017); None keeps one learning rate.
        self.base_lrs = (lr, lr if d_lr is None else d_lr)
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=self.base_lrs[0], betas=betas)
        self.d_optimizer = torch.optim.Adam(d_parameters, lr=self.base_lrs[1], betas=betas)
        self.g_monitor = GradientMonitor(self.generator) if log_grads else None
        self.d_monitor = GradientMonitor(self.discriminator) if log_grads else None

    def scale_learning_rates(self, factor: float) -> None:
        """Set G's and D's learning rates to ``factor`` times the ones they were built with (for a schedule)."""
        if not factor >= 0:
            raise ValueError(f"learning-rate factor must be >= 0, got {factor}")
        for optimizer, base in zip((self.g_optimizer, self.d_optimizer), self.base_lrs, strict=True):
            for group in optimizer.param_groups:
                group["lr"] = base * factor

    def _condition(self, y: torch.Tensor | None) -> torch.Tensor | None:
        return y.to(self.device, self.dtype) if self.spec.conditional else None

    def _class_loss(self, images: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The auxiliary classifier's cross-entropy for ``images`` against the attributes encoded in ``cond``."""
        logits = self.classifier(images)
        if isinstance(self.classifier, Discriminator):  # one flat row of logits; AttributeClassifier splits its own
            logits = torch.split(logits, self.codec.sizes, dim=1)
        return attribute_cross_entropy(logits, self.codec.decode(cond))

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.z_dim, generator=generator, dtype=self.dtype).to(self.device)

    def step(self, real: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        """``d_steps`` D updates, then one G update; y are the real images' labels, reused for the fakes.

        ``real`` holds ``d_steps`` batches one after another (n_dis of Miyato et al., 2018, Algorithm 1: every D
        update sees a fresh real batch); the G update uses the last batch's labels. Returns the last D update's
        statistics.
        """
        if real.shape[0] != y.shape[0] or real.shape[0] % self.d_steps:
            raise ValueError(
                f"expected d_steps={self.d_steps} equal batches of images and labels, got {real.shape[0]} images "
                f"and {y.shape[0]} label rows"
            )
        self.generator.train()
        self.discriminator.train()
        if self.classifier is not None:
            self.classifier.train()
        n = real.shape[0] // self.d_steps
        for real_batch, y_batch in zip(real.split(n), y.split(n), strict=True):
            real_batch = real_batch.to(self.device, self.dtype).requires_grad_(self.r1 > 0)
            cond = self._condition(y_batch)
            z = self.sample_z(n, generator)
            with mixed_precision(self.device, self.autocast):
                with torch.no_grad():
                    fake = self.generator(z, cond)
                real_logits = self.discriminator(real_batch, cond).to(self.dtype)
                fake_logits = self.discriminator(fake, cond).to(self.dtype)
                targets = None
                if self.loss == "bce":
                    low, high = self.label_smoothing
                    targets = smoothed_real_targets(n, low, high, generator=generator, like=real_logits)
                d_loss = discriminator_loss(real_logits, fake_logits, self.loss, targets)
                if self.r1:
                    penalty = r1_penalty(real_logits, real_batch)
                    d_loss = d_loss + 0.5 * self.r1 * penalty  # gamma / 2, eq. 9
                if self.auxiliary:
                    class_loss_real = self._class_loss(real_batch, cond)
                    d_loss = d_loss + class_loss_real
            # Checked whole: a NaN in the R1 penalty or the auxiliary classifier's loss stops the run too.
            d_loss = check_finite(d_loss, "discriminator loss")
            self.d_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            if self.d_monitor is not None:
                self.d_monitor.check()
            self.d_optimizer.step()

        z = self.sample_z(n, generator)
        if self.mode_seeking and self.spec.conditional:
            # Pairs of codes under one condition: the first half of the batch's labels, each used twice.
            half = n // 2
            cond = torch.cat([cond[:half], cond[:half], cond[2 * half :]])
        with mixed_precision(self.device, self.autocast):
            fake_g = self.generator(z, cond)
            fake_logits_g = self.discriminator(fake_g, cond).to(self.dtype)
            g_loss = generator_loss(fake_logits_g, self.loss)
            stats = {"r1": penalty.item()} if self.r1 else {}
            if self.mode_seeking:
                half = n // 2
                diversity = mode_seeking_loss(fake_g[:half], fake_g[half : 2 * half], z[:half], z[half : 2 * half])
                g_loss = g_loss + self.mode_seeking * diversity
                stats["mode_seeking"] = diversity.item()
            if self.auxiliary:
                if isinstance(self.classifier, AttributeClassifier):
                    self.classifier.eval()  # batch norm: fakes are judged with real images' statistics, not their own
                class_loss_fake = self._class_loss(fake_g, cond)
                g_loss = g_loss + self.auxiliary * class_loss_fake
                stats["class_real"], stats["class_fake"] = class_loss_real.item(), class_loss_fake.item()
        g_loss = check_finite(g_loss, "generator loss")
        self.g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        if self.g_monitor is not None:
            self.g_monitor.check()
        self.g_optimizer.step()
        return {
            "d_loss": d_loss.item(),
            "g_loss": g_loss.item(),
            "d_real": torch.sigmoid(real_logits).mean().item(),
            "d_fake": torch.sigmoid(fake_logits).mean().item(),
            **stats,
        }

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 256) -> torch.Tensor:
        """Images in [-1, 1] for codes z (n, z_dim) and conditions y (n, C), with batch norm in inference mode."""
        self.generator.eval()
        cond = self._condition(y) if y is not None else None
        if self.spec.conditional and cond is None:
            raise ValueError(f"variant {self.variant!r} is conditional: generate() needs y")
        out = []
        for start in range(0, z.shape[0], batch_size):
            chunk = cond[start : start + batch_size] if cond is not None else None
            out.append(self.generator(z[start : start + batch_size].to(self.device, self.dtype), chunk))
        return torch.cat(out)

    def state_dict(self) -> dict[str, Any]:
        state = {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict(),
        }
        if self.classifier is not None:
            state["classifier"] = self.classifier.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if ("classifier" in state) != (self.classifier is not None):
            raise ValueError("checkpoint and trainer disagree on the auxiliary classifier (trained with --auxiliary?)")
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        if self.classifier is not None:
            self.classifier.load_state_dict(state["classifier"])
        self.g_optimizer.load_state_dict(state["g_optimizer"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])

"""GAN losses on known logits and the one-sided label smoothing range."""

import math

import pytest
import torch

from dreamlab.gan.losses import discriminator_loss, generator_loss, smoothed_real_targets


def test_bce_losses_at_zero_logits():
    zeros = torch.zeros(7)
    assert discriminator_loss(zeros, zeros, "bce").item() == pytest.approx(2 * math.log(2))
    assert generator_loss(zeros, "bce").item() == pytest.approx(math.log(2))


def test_bce_with_smoothed_target_matches_formula():
    logit, target = 1.5, 0.92
    s = 1 / (1 + math.exp(-logit))
    expected = -(target * math.log(s) + (1 - target) * math.log(1 - s)) + -math.log(1 - 1 / (1 + math.exp(2.0)))
    got = discriminator_loss(torch.tensor([logit]), torch.tensor([-2.0]), "bce", torch.tensor([target]))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_non_saturating_generator_loss():
    fake = torch.tensor([-3.0, 1.0])
    expected = sum(-math.log(1 / (1 + math.exp(-v))) for v in (-3.0, 1.0)) / 2
    assert generator_loss(fake, "bce").item() == pytest.approx(expected, rel=1e-6)


def test_hinge_losses():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    # relu(1 - real) = [0, 0.5], relu(1 + fake) = [0, 1]
    assert discriminator_loss(real, fake, "hinge").item() == pytest.approx(0.25 + 0.5)
    assert generator_loss(fake, "hinge").item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="bce loss only"):
        discriminator_loss(real, fake, "hinge", torch.ones(2))


def test_unknown_loss_is_rejected():
    with pytest.raises(ValueError, match="unknown GAN loss"):
        generator_loss(torch.zeros(1), "wasserstein")


def test_label_smoothing_range():
    t = smoothed_real_targets(20000, generator=torch.Generator().manual_seed(0), like=torch.zeros(1))
    assert t.min() >= 0.9 and t.max() <= 1.0
    assert t.min() < 0.901 and t.max() > 0.999
    assert t.mean().item() == pytest.approx(0.95, abs=0.002)
    with pytest.raises(ValueError, match="label smoothing range"):
        smoothed_real_targets(3, 0.95, 0.9, like=torch.zeros(1))

"""GAN losses on known logits and the one-sided label smoothing range."""

import math

import pytest
import torch

from dreamlab.gan.losses import (
    attribute_cross_entropy,
    discriminator_loss,
    generator_loss,
    mode_seeking_loss,
    r1_penalty,
    smoothed_real_targets,
)


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


def test_mode_seeking_loss_is_inverse_image_to_code_distance_ratio():
    z_a, z_b = torch.zeros(4, 8), torch.full((4, 8), 2.0)  # mean |z_a - z_b| = 2
    fake_a, fake_b = torch.zeros(4, 3, 5, 5), torch.full((4, 3, 5, 5), 0.5)  # mean |difference| = 0.5
    assert mode_seeking_loss(fake_a, fake_b, z_a, z_b).item() == pytest.approx(1.0 / (0.25 + 1e-5))
    # A generator that ignores z (identical images) gets the largest loss, 1 / eps.
    assert mode_seeking_loss(fake_a, fake_a, z_a, z_b).item() == pytest.approx(1e5)
    with pytest.raises(ValueError, match="paired"):
        mode_seeking_loss(fake_a, fake_b[:3], z_a, z_b)


def test_r1_penalty_is_the_squared_input_gradient_of_known_discriminators():
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    w = torch.randn(3, 4, 4)
    # Linear D(x) = <w, x>: the gradient is w for every image.
    assert torch.allclose(r1_penalty((x * w).flatten(1).sum(1), x), w.pow(2).sum())
    # D(x) = ||x||^2 / 2: the gradient is x itself.
    penalty = r1_penalty(0.5 * x.pow(2).flatten(1).sum(1), x)
    assert torch.allclose(penalty, x.detach().pow(2).flatten(1).sum(1).mean())
    # It is differentiable in D's parameters (R1 trains D): d/dw ||w||^2 = 2w.
    w.requires_grad_(True)
    r1_penalty((x * w).flatten(1).sum(1), x).backward()
    assert torch.allclose(w.grad, 2 * w.detach())
    with pytest.raises(ValueError, match="require grad"):
        r1_penalty(torch.zeros(5), torch.zeros(5, 3))


def test_attribute_cross_entropy_sums_one_softmax_per_attribute():
    # Uniform logits: log(classes) per attribute, summed.
    logits = [torch.zeros(6, 3), torch.zeros(6, 4)]
    labels = torch.stack([torch.arange(6) % 3, torch.arange(6) % 4], dim=1)
    assert attribute_cross_entropy(logits, labels).item() == pytest.approx(math.log(3) + math.log(4))
    # A confident, correct first attribute contributes ~0: only the second's log(4) is left.
    confident = torch.full((6, 3), -30.0)
    confident[torch.arange(6), labels[:, 0]] = 30.0
    assert attribute_cross_entropy([confident, logits[1]], labels).item() == pytest.approx(math.log(4))
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        attribute_cross_entropy(logits, labels[:, :1])

"""Feature-FID against closed forms, and the attribute classifier actually learning."""

import numpy as np
import pytest
import torch
from scipy import linalg

from dreamlab.gan.conditioning import AttributeCodec
from dreamlab.gan.evaluation import (
    AttributeClassifier,
    attribute_accuracy,
    frechet_distance,
    gaussian_statistics,
    train_attribute_classifier,
)
from dreamlab.grad_monitor import NonFiniteLossError


def test_identical_sets_have_zero_distance():
    x = np.random.default_rng(0).normal(size=(500, 16))
    stats = gaussian_statistics(x)
    assert frechet_distance(*stats, *stats) == pytest.approx(0.0, abs=1e-8)


def test_diagonal_gaussians_match_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    # Commuting covariances: d^2 = |mu1 - mu2|^2 + sum (sqrt(v1) - sqrt(v2))^2 = 5 + (4 + 1 + 0).
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(10.0, rel=1e-10)


def test_general_covariances_match_scipy_sqrtm():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    reference = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)


def test_sampled_shifted_gaussians_approach_closed_form():
    rng = np.random.default_rng(2)
    d, shift, scale = 4, 1.5, 2.0
    x = rng.normal(size=(40000, d))
    y = shift + scale * rng.normal(size=(40000, d))
    expected = d * shift**2 + d * (scale - 1.0) ** 2  # 9 + 4
    assert frechet_distance(*gaussian_statistics(x), *gaussian_statistics(y)) == pytest.approx(expected, rel=0.03)


def test_singular_covariances_stay_finite_and_non_negative():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(10, 50)), rng.normal(size=(10, 50))  # n < d: rank-deficient covariances
    value = frechet_distance(*gaussian_statistics(x), *gaussian_statistics(y))
    assert np.isfinite(value) and value >= 0.0
    with pytest.raises(ValueError, match="mismatched"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def _squares(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """8x8 images: a 3x3 square whose colour (3 classes) and side of the image (2 classes) are the labels."""
    labels = torch.stack([torch.randint(3, (n,), generator=generator), torch.randint(2, (n,), generator=generator)], 1)
    images = -torch.ones(n, 3, 16, 16)
    for i, (colour, side) in enumerate(labels.tolist()):
        top = int(torch.randint(0, 13, (1,), generator=generator))
        left = int(torch.randint(0, 5, (1,), generator=generator)) + 8 * side
        images[i, colour, top : top + 3, left : left + 3] = 1.0
    return images, labels


def test_attribute_classifier_learns_colour_and_position():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    codec = AttributeCodec({"colour": ["r", "g", "b"], "side": ["left", "right"]})
    images, labels = _squares(768, generator)
    test_images, test_labels = _squares(300, generator)
    classifier = AttributeClassifier(codec.sizes, width=8, feature_dim=32)
    before = attribute_accuracy(classifier, test_images, test_labels, codec)
    train_attribute_classifier(classifier, images, labels, epochs=3, batch_size=32, lr=3e-3, generator=generator)
    after = attribute_accuracy(classifier, test_images, test_labels, codec)
    assert min(after.values()) > 0.95, (before, after)
    assert classifier.embed(test_images).shape == (300, 32)


def test_a_non_finite_loss_stops_the_judges_training():
    classifier = AttributeClassifier([2, 3])
    images, labels = torch.full((8, 3, 16, 16), float("nan")), torch.zeros(8, 2, dtype=torch.long)
    with pytest.raises(NonFiniteLossError, match="attribute classifier loss"):
        train_attribute_classifier(classifier, images, labels, epochs=1, batch_size=4)

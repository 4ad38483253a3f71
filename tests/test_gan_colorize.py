"""deepcolor pieces: line art, training/inference hints, U-Net and patch discriminator shapes."""

import numpy as np
import pytest
import torch

from dreamlab.gan.colorize import (
    ColorizationTrainer,
    PatchDiscriminator,
    UNetGenerator,
    blank_hint,
    default_blur,
    inference_hint,
    line_art,
    to_unit_range,
    training_hint,
)
from dreamlab.grad_monitor import NonFiniteLossError


def _square_image(size: int = 32) -> np.ndarray:
    image = np.zeros((size, size, 3), np.uint8)
    image[8:24, 8:24] = (200, 30, 30)
    return image


def test_line_art_is_black_edges_on_white():
    lines = line_art(_square_image())
    assert lines.dtype == np.uint8 and lines.shape == (32, 32)
    assert set(np.unique(lines)) <= {0, 255}
    assert (lines[7:25, 7:25] == 0).any()  # the square's outline
    assert (lines[:5] == 255).all() and (lines[12:20, 12:20] == 255).all()  # flat regions carry no line


def test_training_hint_whites_out_patches_before_blurring():
    rng = np.random.default_rng(0)
    black = np.zeros((64, 64, 3), np.uint8)
    unblurred = training_hint(black, rng, whiteouts=30, patch=10, blur=1)
    white = (unblurred == 255).all(axis=2)
    assert 100 <= white.sum() <= 3000  # at least one and at most 30 disjoint 10x10 squares
    assert ((unblurred == 0) | (unblurred == 255)).all()
    rows, cols = np.nonzero(white)  # every white pixel belongs to some fully white 10x10 square
    for r, c in zip(rows[::97], cols[::97], strict=True):
        assert any(
            white[t : t + 10, lft : lft + 10].all()
            for t in range(max(0, r - 9), min(r, 54) + 1)
            for lft in range(max(0, c - 9), min(c, 54) + 1)
        )
    blurred = training_hint(black, np.random.default_rng(0), whiteouts=30, patch=10, blur=default_blur(64))
    assert np.abs(np.diff(blurred.astype(float), axis=0)).max() < 255 / 4  # heavy blur: no sharp patch edges
    assert default_blur(256) == 100


def test_inference_hint_fades_towards_white_by_intensity():
    flat = np.full((16, 16, 3), (0, 100, 200), np.uint8)
    hint = inference_hint(flat, intensity=0.3, blur=5)
    expected = np.round(0.3 * np.array([0, 100, 200]) + 0.7 * 255)
    assert np.abs(hint.astype(float) - expected).max() <= 1
    assert (inference_hint(np.full((8, 8, 3), 255, np.uint8), 0.3, 3) == 255).all()
    assert (blank_hint(4, 5) == 255).all() and blank_hint(4, 5).shape == (4, 5, 3)


def test_hint_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        training_hint(np.zeros((8, 8), np.uint8), np.random.default_rng(0))
    with pytest.raises(ValueError, match="exceeds"):
        training_hint(np.zeros((8, 8, 3), np.uint8), np.random.default_rng(0), patch=10)


def test_unet_and_patch_discriminator_shapes():
    g = UNetGenerator(width=4, depth=3)
    lines, hint = torch.randn(2, 1, 32, 32), torch.randn(2, 3, 32, 32)
    out = g(lines, hint)
    assert out.shape == (2, 3, 32, 32) and out.abs().max() <= 1
    d = PatchDiscriminator(width=4, layers=3)
    assert d(lines, out).shape == (2, 1, 4, 4)
    with pytest.raises(ValueError, match="divisible"):
        g(torch.randn(1, 1, 20, 20), torch.randn(1, 3, 20, 20))


def test_unet_skip_connection_carries_line_art_to_output():
    torch.manual_seed(0)
    g = UNetGenerator(width=4, depth=2).eval()
    hint = torch.zeros(1, 3, 16, 16)
    a, b = torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16)
    b[..., 2, 2] = 1.0
    diff = (g(a, hint) - g(b, hint)).abs().sum(1)[0]
    assert diff[:5, :5].sum() > 0  # a local line change changes nearby output pixels


def test_colorization_trainer_reduces_l1_on_a_fixed_batch():
    torch.manual_seed(0)
    images = np.stack([_square_image(16)] * 4)
    lines = to_unit_range(np.stack([line_art(im) for im in images]))
    hints = to_unit_range(np.stack([inference_hint(im, 0.3, 5) for im in images]))
    target = to_unit_range(images)
    trainer = ColorizationTrainer(width=4, depth=2, l1_weight=100.0, lr=2e-3)
    first = trainer.step(lines, hints, target)["l1"]
    for _ in range(25):
        last = trainer.step(lines, hints, target)["l1"]
    assert last < 0.5 * first


def test_a_non_finite_loss_stops_colorization_training():
    trainer = ColorizationTrainer(width=4, depth=2)
    lines, hint = torch.zeros(2, 1, 8, 8), torch.zeros(2, 3, 8, 8)
    with pytest.raises(NonFiniteLossError, match="colorization discriminator loss"):
        trainer.step(lines, hint, torch.full((2, 3, 8, 8), float("nan")))

"""DRAW's Gaussian filterbank attention against the paper's equations (Gregor et al. 2015, eqs. 19-29)."""

import math

import pytest
import torch

from dreamlab.draw.attention import (
    AttentionRead,
    AttentionWindow,
    AttentionWrite,
    filter_centres,
    filterbank,
    filterbanks,
    read_patch,
    window_from_params,
    write_patch,
)
from dreamlab.draw.visualize import window_box


def window(gx: float, gy: float, stride: float, variance: float, intensity: float = 1.0) -> AttentionWindow:
    as_tensor = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    return AttentionWindow(*(as_tensor(v) for v in (gx, gy, stride, variance, intensity)))


def test_zero_parameters_centre_the_grid_and_span_the_image():
    # eqs. 22-24 with g~ = 0 and delta~ = 1: centre (A+1)/2, and eq. 19 puts the first and last filters on
    # pixels 1 and A, so the grid spans the image exactly.
    height, width, patch = 20, 32, 5
    w = window_from_params(torch.zeros(2, 5, dtype=torch.float64), height, width, patch)
    assert torch.allclose(w.centre_x, torch.full((2,), (width + 1) / 2, dtype=torch.float64))
    assert torch.allclose(w.centre_y, torch.full((2,), (height + 1) / 2, dtype=torch.float64))
    mu_x = filter_centres(w.centre_x, w.stride, patch)
    assert mu_x[0, 0].item() == pytest.approx(1.0) and mu_x[0, -1].item() == pytest.approx(width)
    assert torch.allclose(mu_x[0, 1:] - mu_x[0, :-1], torch.full((patch - 1,), (width - 1) / (patch - 1)).double())
    assert torch.allclose(w.variance, torch.ones(2, dtype=torch.float64))
    assert torch.allclose(w.intensity, torch.ones(2, dtype=torch.float64))


def test_centre_parameters_map_minus_one_and_one_to_the_borders():
    params = torch.tensor([[-1.0, 1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    w = window_from_params(params, height=10, width=30, patch=3)
    assert w.centre_x.item() == pytest.approx(0.0)  # eq. 22: (A+1)/2 * (g~ + 1)
    assert w.centre_y.item() == pytest.approx(11.0)  # eq. 23 with B = 10


def test_filterbank_rows_are_normalised_and_centred_on_their_means():
    w = window(gx=16.5, gy=12.0, stride=2.5, variance=1.3)
    f_x, f_y = filterbanks(w, height=24, width=32, patch=4)
    assert f_x.shape == (1, 4, 32) and f_y.shape == (1, 4, 24)
    for bank, size, centre in ((f_x, 32, 16.5), (f_y, 24, 12.0)):
        assert torch.allclose(bank.sum(-1), torch.ones(1, 4, dtype=torch.float64))  # 1/Z of eqs. 25-26
        a = torch.arange(1, size + 1, dtype=torch.float64)
        means = (bank * a).sum(-1)  # well inside the image the row's centre of mass is mu^i (eqs. 19-20)
        expected = centre + (torch.arange(1, 5, dtype=torch.float64) - 4 / 2 - 0.5) * 2.5
        assert torch.allclose(means[0], expected, atol=1e-6)
        spread = (bank * (a - means[..., None]) ** 2).sum(-1)
        assert torch.allclose(spread[0], torch.full((4,), 1.3, dtype=torch.float64), rtol=0.02)  # variance sigma^2


def test_filterbank_far_outside_the_image_is_zero_not_nan():
    bank = filterbank(torch.tensor([[-500.0, 1e4]]), torch.tensor([1e-3]), size=16)
    assert torch.isfinite(bank).all() and bank.abs().max().item() == 0.0


def test_read_matches_the_matrix_products_of_eq_27():
    torch.manual_seed(0)
    images = torch.rand(3, 2, 12, 15, dtype=torch.float64)
    w = AttentionWindow(
        *(torch.rand(3, dtype=torch.float64) * s + o for s, o in ((15, 0), (12, 0), (3, 0.5), (2, 0.3), (1, 0.5)))
    )
    f_x, f_y = filterbanks(w, 12, 15, patch=4)
    patches = read_patch(images, f_x, f_y, w.intensity)
    for b in range(3):
        for c in range(2):
            expected = w.intensity[b] * f_y[b] @ images[b, c] @ f_x[b].T
            assert torch.allclose(patches[b, c], expected)


def test_write_is_the_transpose_of_read():
    # eq. 29 applies F_Y^T . F_X, the adjoint of eq. 27's F_Y . F_X^T: <read(x), p> = <x, write(p)> at gamma = 1.
    torch.manual_seed(1)
    images = torch.randn(2, 3, 10, 14, dtype=torch.float64)
    patches = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    w = AttentionWindow(
        *(torch.tensor(v, dtype=torch.float64) for v in ([6.0, 9.0], [4.0, 5.5], [1.5, 2.0], [0.8, 2.0], [1.0, 1.0]))
    )
    f_x, f_y = filterbanks(w, 10, 14, patch=5)
    lhs = (read_patch(images, f_x, f_y, w.intensity) * patches).sum()
    rhs = (images * write_patch(patches, f_x, f_y, w.intensity)).sum()
    assert lhs.item() == pytest.approx(rhs.item(), rel=1e-10)


def test_read_then_write_with_the_same_window_puts_the_patch_back_in_place():
    image = torch.zeros(1, 1, 24, 24, dtype=torch.float64)
    image[0, 0, 6:11, 13:18] = torch.arange(25, dtype=torch.float64).view(5, 5) + 1  # rows 7..11, cols 14..18 (1-based)
    w = window(gx=16.0, gy=9.0, stride=1.0, variance=0.01, intensity=2.0)  # a 5x5 grid on exactly those pixels
    f_x, f_y = filterbanks(w, 24, 24, patch=5)
    patch = read_patch(image, f_x, f_y, w.intensity)
    assert torch.allclose(patch[0, 0], 2.0 * image[0, 0, 6:11, 13:18])  # gamma scales the read (eq. 27)
    canvas = write_patch(patch, f_x, f_y, w.intensity)  # 1/gamma undoes it (eq. 29)
    assert torch.allclose(canvas, image, atol=1e-9)
    # The box drawn for this window outlines the same pixels (0-based edges 13..18 by 6..11).
    assert window_box(w, 5, 0) == pytest.approx((13.0, 6.0, 18.0, 11.0))


def test_a_window_elsewhere_reads_nothing_of_the_patch():
    image = torch.zeros(1, 1, 24, 24, dtype=torch.float64)
    image[0, 0, 6:11, 13:18] = 1.0
    w = window(gx=5.0, gy=20.0, stride=1.0, variance=0.25)
    f_x, f_y = filterbanks(w, 24, 24, patch=3)
    assert read_patch(image, f_x, f_y, w.intensity).abs().max().item() < 1e-12


def test_colour_channels_share_one_window():
    torch.manual_seed(2)
    colour_read, grey_read = AttentionRead(3, 16, 20, 4, dec_size=8), AttentionRead(1, 16, 20, 4, dec_size=8)
    grey_read.load_state_dict(colour_read.state_dict())
    images, errors, h_dec = torch.rand(5, 3, 16, 20), torch.randn(5, 3, 16, 20), torch.randn(5, 8)
    glimpse, w = colour_read(images, errors, h_dec)
    assert w.centre_x.shape == (5,)  # one window per image, not per channel
    glimpse = glimpse.view(5, 2, 3, 4, 4)
    for c in range(3):  # each channel is read exactly as a grey image would be through the same window
        grey, _ = grey_read(images[:, c : c + 1], errors[:, c : c + 1], h_dec)
        assert torch.allclose(glimpse[:, :, c], grey.view(5, 2, 4, 4), atol=1e-6)

    colour_write = AttentionWrite(3, 16, 20, 4, dec_size=8)
    canvas, w = colour_write(h_dec)
    assert canvas.shape == (5, 3, 16, 20) and w.centre_x.shape == (5,)
    patches = colour_write.patch_values(h_dec).view(5, 3, 4, 4)
    f_x, f_y = filterbanks(w, 16, 20, 4)
    for c in range(3):
        single = write_patch(patches[:, c : c + 1], f_x, f_y, w.intensity)
        assert torch.allclose(canvas[:, c : c + 1], single, atol=1e-6)


def test_window_parameters_need_five_values():
    with pytest.raises(ValueError, match="5 values"):
        window_from_params(torch.zeros(2, 4), 8, 8, 3)


def test_stride_for_a_single_filter_is_finite():
    w = window_from_params(torch.zeros(1, 5), 9, 9, patch=1)
    assert math.isfinite(w.stride.item())

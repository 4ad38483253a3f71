"""DRAW and the VAE baseline: loss terms against analytic values, shapes, and learning on a small problem."""

import math

import numpy as np
import pytest
import torch
from torch import distributions as D

from dreamlab.draw.losses import bernoulli_nll, gaussian_kl, l2_reconstruction, reconstruction_loss
from dreamlab.draw.model import DRAW
from dreamlab.draw.training import bound_terms, evaluate_bound, train_step
from dreamlab.draw.vae import VAE
from dreamlab.grad_monitor import NonFiniteLossError


@pytest.fixture(autouse=True)
def single_thread():
    """These tiny models run fastest on one thread; with several test processes on a small CPU, extra OpenMP
    threads mostly spin."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_draw(attention: bool = True, channels: int = 1, size: int = 12, glimpses: int = 4) -> DRAW:
    return DRAW(
        channels,
        size,
        size,
        glimpses,
        enc_size=16,
        dec_size=16,
        z_size=3,
        attention=attention,
        read_patch=3,
        write_patch=3,
    )


def test_gaussian_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, log_sigma = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64) * 0.7
    expected = D.kl_divergence(D.Normal(mu, log_sigma.exp()), D.Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(gaussian_kl(mu, log_sigma), expected)
    assert gaussian_kl(torch.zeros(1, 4), torch.zeros(1, 4)).item() == 0.0  # Q = P costs nothing (eq. 11)


def test_draw_kl_is_the_sum_of_each_steps_analytic_kl():
    torch.manual_seed(1)
    model = small_draw().double()
    posteriors = []
    model.posterior.register_forward_hook(lambda module, inputs, output: posteriors.append(output.detach()))
    out = model(torch.rand(5, 1, 12, 12, dtype=torch.float64).round())
    assert out.kl.shape == (4, 5) and len(posteriors) == 4
    for t, params in enumerate(posteriors):
        mu, log_sigma = params.chunk(2, dim=1)  # eqs. 1-2: sigma = exp(W h_enc)
        expected = D.kl_divergence(D.Normal(mu, log_sigma.exp()), D.Normal(0.0, 1.0)).sum(-1)
        assert torch.allclose(out.kl[t], expected)
    assert torch.allclose(out.kl_per_image, out.kl.sum(0))  # eq. 10


def test_bernoulli_nll_is_minus_the_log_likelihood_in_nats():
    torch.manual_seed(2)
    logits, images = torch.randn(3, 1, 5, 7, dtype=torch.float64), torch.rand(3, 1, 5, 7).round().double()
    expected = -D.Bernoulli(logits=logits).log_prob(images).flatten(1).sum(1)
    assert torch.allclose(bernoulli_nll(logits, images), expected)
    # A blank canvas (sigmoid(0) = 1/2) costs exactly log 2 nats per pixel.
    assert bernoulli_nll(torch.zeros(1, 1, 5, 7), images[:1].float()).item() == pytest.approx(
        35 * math.log(2), rel=1e-6
    )


def test_l2_is_half_the_summed_squared_error_of_the_sigmoid_canvas():
    logits, images = torch.randn(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    expected = 0.5 * ((images - torch.sigmoid(logits)) ** 2).sum(dim=(1, 2, 3))
    assert torch.allclose(l2_reconstruction(logits, images), expected)
    with pytest.raises(ValueError, match="unknown likelihood"):
        reconstruction_loss(logits, images, "gaussian")
    with pytest.raises(ValueError, match="does not match"):
        reconstruction_loss(logits, images[:, :1], "l2")


def test_bound_of_a_silent_model_is_log_2_per_pixel_and_no_kl():
    # Zero write weights leave the canvas at 0 and zero posterior weights make Q = N(0, I) = P: the bound is
    # exactly H*W*log 2 nats per image, averaged over images, whatever the batch split.
    model = small_draw(attention=False)
    for module in (model.write.canvas_values, model.posterior):
        torch.nn.init.zeros_(module.weight)
        torch.nn.init.zeros_(module.bias)
    images = torch.rand(10, 1, 12, 12).round()
    result = evaluate_bound(model, lambda a, b: images[a:b], 10, "bernoulli", batch_size=4)
    assert result["reconstruction"] == pytest.approx(144 * math.log(2), rel=1e-6)
    assert result["kl"] == pytest.approx(0.0, abs=1e-9)
    assert result["bound"] == pytest.approx(result["reconstruction"] + result["kl"])


def test_evaluate_bound_averages_per_image_over_uneven_batches():
    torch.manual_seed(3)
    model = small_draw()
    images = torch.rand(7, 1, 12, 12).round()
    result = evaluate_bound(model, lambda a, b: images[a:b], 7, "bernoulli", 3, torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)
    parts = [bound_terms(model, images[a : a + 3], "bernoulli", generator) for a in (0, 3, 6)]
    reconstruction = torch.cat([p[0] for p in parts]).mean().item()
    kl = torch.cat([p[1] for p in parts]).mean().item()
    assert result["reconstruction"] == pytest.approx(reconstruction, rel=1e-5)
    assert result["kl"] == pytest.approx(kl, rel=1e-5)
    assert result["bound"] == pytest.approx(reconstruction + kl, rel=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_with_and_without_attention(channels):
    images = torch.rand(2, channels, 12, 12)
    for attention in (True, False):
        model = small_draw(attention, channels)
        out = model(images)
        assert out.canvases.shape == (4, 2, channels, 12, 12) and out.kl.shape == (4, 2)
        assert out.final_logits.shape == images.shape
        expected_read = 2 * channels * (9 if attention else 144)  # N x N patches or whole images (eqs. 17, 27)
        assert model.read.output_size == expected_read
        if attention:
            assert out.read_windows.centre_x.shape == (4, 2) and out.write_windows.stride.shape == (4, 2)
        else:
            assert out.read_windows is None and out.write_windows is None
        sample = model.generate(3)
        assert sample.canvases.shape == (4, 3, channels, 12, 12) and sample.read_windows is None
        assert (sample.write_windows is not None) == attention


def test_canvas_accumulates_the_writes():
    torch.manual_seed(4)
    model = small_draw(attention=False)
    out = model(torch.rand(2, 1, 12, 12))
    updates = torch.diff(out.canvases, dim=0, prepend=torch.zeros_like(out.canvases[:1]))
    assert torch.allclose(updates.sum(0), out.final_logits, atol=1e-5)  # c_T = sum_t write(h_dec_t) (eq. 8)


def test_vae_shapes_and_bad_input():
    vae = VAE(3, 8, 8, latent_size=12, hidden_size=16)
    out = vae(torch.rand(4, 3, 8, 8))
    assert out.final_logits.shape == (4, 3, 8, 8) and out.kl_per_image.shape == (4,)
    assert vae.generate(5).logits.shape == (5, 3, 8, 8)
    with pytest.raises(ValueError, match="expects images"):
        vae(torch.rand(4, 1, 8, 8))
    with pytest.raises(ValueError, match="expects images"):
        small_draw()(torch.rand(2, 12, 12))
    with pytest.raises(ValueError, match="must be positive"):
        DRAW(1, 8, 8, 0, 4, 4, 2)


def test_draw_with_attention_learns_small_sprites():
    """Trained for 250 steps, DRAW beats the best model that ignores structure between pixels by a clear margin."""
    from dreamlab.data.dsprites import DSPRITES_NUM_IMAGES, index_to_classes, render_classes

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    classes = index_to_classes(rng.choice(DSPRITES_NUM_IMAGES, 32, replace=False))
    images = torch.from_numpy(render_classes(classes, size=12)[:, None]).float()
    # Best independent-pixel Bernoulli model of these very images: its NLL is the summed per-pixel entropy
    # (about 19 nats here). Going below it needs the latents to carry each sprite's position and shape.
    p = images.mean(0).clamp(1e-6, 1 - 1e-6)
    independent_nll = -(p * p.log() + (1 - p) * (1 - p).log()).sum().item()
    model = DRAW(1, 12, 12, glimpses=4, enc_size=32, dec_size=32, z_size=4, attention=True, read_patch=6, write_patch=6)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)

    def bound() -> float:
        return evaluate_bound(model, lambda a, b: images[a:b], 32, "bernoulli", 32, torch.Generator().manual_seed(0))[
            "bound"
        ]

    start = bound()
    for _ in range(250):
        train_step(model, optimizer, images, "bernoulli", grad_clip=10.0)
    end = bound()
    assert end < 0.2 * start
    assert end < independent_nll - 3.0, (end, independent_nll)


def test_a_non_finite_bound_stops_training_before_the_update():
    model = DRAW(1, 8, 8, glimpses=2, enc_size=8, dec_size=8, z_size=2, attention=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(NonFiniteLossError, match="DRAW bernoulli bound"):
        train_step(model, optimizer, torch.full((2, 1, 8, 8), float("nan")), "bernoulli", grad_clip=10.0)
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))

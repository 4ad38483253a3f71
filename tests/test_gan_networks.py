"""SNcGAN networks: spectral norm bounds, conditioning paths, the projection term, variants."""

import pytest
import torch
from torch import nn

from dreamlab.gan.conditioning import AttributeCodec, attribute_sweep, slerp
from dreamlab.gan.networks import (
    ConditionalBatchNorm2d,
    Discriminator,
    Generator,
    init_dcgan_weights,
    projection_term,
    tile_condition,
)
from dreamlab.gan.training import VARIANTS, GANTrainer


def _weight_matrix(module: nn.Module) -> torch.Tensor:
    return module.weight.detach().reshape(module.weight.shape[0], -1)


def test_spectral_norm_bounds_every_discriminator_layer_near_one():
    torch.manual_seed(0)
    d = Discriminator(cond_dim=5, image_size=16, width=8, conditioning="concat", spectral=True)
    for m in d.modules():  # make the raw weights far from unit norm so the bound is not a coincidence
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.parametrizations.weight.original.data.mul_(100.0)
    x, y = torch.randn(4, 3, 16, 16), torch.eye(5)[:4]
    d.train()
    for _ in range(30):  # one power iteration per training forward pass
        d(x, y)
    layers = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 3  # 16x16 -> 8x8 -> 4x4 convolutions and the output layer, every one normalised
    for m in layers:
        assert hasattr(m, "parametrizations"), f"{m} lacks spectral norm"
        raw = torch.linalg.matrix_norm(m.parametrizations.weight.original.detach().reshape(m.weight.shape[0], -1), 2)
        assert raw > 5.0
        assert torch.linalg.matrix_norm(_weight_matrix(m), 2).item() == pytest.approx(1.0, abs=0.03)


def test_spectral_norm_holds_from_construction_with_dcgan_initial_weights():
    # Regression: the layers used to be re-initialised after spectral_norm was registered, so its power-iteration
    # vectors belonged to the discarded weights and sigma was underestimated: W_SN had spectral norm 12 to 97 until
    # enough training forward passes had corrected u and v. No forward pass happens here.
    torch.manual_seed(0)
    for conditioning in ("concat", "projection", "none"):
        d = Discriminator(cond_dim=20, image_size=32, width=16, conditioning=conditioning, spectral=True).eval()
        layers = [m for m in d.modules() if hasattr(m, "parametrizations")]
        assert len(layers) == (5 if conditioning == "projection" else 4)
        for m in layers:
            raw = m.parametrizations.weight.original.detach()
            assert raw.std().item() == pytest.approx(0.02, rel=0.2)  # DCGAN's N(0, 0.02) initialisation
            assert torch.linalg.matrix_norm(_weight_matrix(m), 2).item() == pytest.approx(1.0, abs=0.1)
    with pytest.raises(ValueError, match="initialise it before"):
        init_dcgan_weights(d)


def test_conditional_batch_norm_gain_and_shift_are_linear_in_y():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(4, cond_dim=3)
    h, y = torch.randn(6, 4, 5, 5), torch.eye(3)[[0, 1, 2, 0, 1, 2]]
    normalised = (h - h.mean((0, 2, 3), keepdim=True)) / torch.sqrt(
        h.var((0, 2, 3), unbiased=False, keepdim=True) + 1e-5
    )
    gain, shift = cbn.gain.weight.T[[0, 1, 2, 0, 1, 2]], cbn.shift.weight.T[[0, 1, 2, 0, 1, 2]]
    expected = normalised * (1 + gain[:, :, None, None]) + shift[:, :, None, None]
    assert torch.allclose(cbn(h, y), expected, atol=1e-5)
    assert torch.allclose(cbn(h, torch.zeros(6, 3)), normalised, atol=1e-5)  # y = 0: plain batch norm


def test_generator_condition_reaches_every_layer():
    # y enters the code and modulates every batch norm; in a mixed-condition batch a first-layer-only y is a small
    # share of the pre-normalisation variance (5 ones among 64 Gaussian code entries here).
    torch.manual_seed(0)
    g = Generator(z_dim=64, cond_dim=20, image_size=32, width=8)
    assert len(g.norms) == 3 and all(isinstance(n, ConditionalBatchNorm2d) for n in g.norms)
    assert not any(isinstance(n, ConditionalBatchNorm2d) for n in Generator(64, 0, 32, width=8).modules())
    for norm in g.norms:
        assert norm.gain.weight.std().item() == pytest.approx(0.02, rel=0.3)
        norm.shift.weight.data.normal_(0.0, 1.0)  # a trained-looking condition embedding
    z, y0, y1 = torch.randn(16, 64), torch.eye(20)[[0] * 16], torch.eye(20)[[1] * 16]
    g.train()
    g(z, torch.eye(20)[torch.arange(16) % 20])  # batch statistics of a mixed batch
    g.eval()
    with torch.no_grad():
        assert (g(z, y0) - g(z, y1)).abs().mean() > 0.05


def test_generator_without_conditional_norm_takes_y_with_z_only():
    torch.manual_seed(0)
    g = Generator(z_dim=8, cond_dim=4, image_size=16, width=8, conditional_norm=False)
    assert not any(isinstance(m, ConditionalBatchNorm2d) for m in g.modules())
    assert g.project.in_features == 12
    z = torch.randn(6, 8)
    g.eval()
    with torch.no_grad():
        assert not torch.allclose(g(z, torch.eye(4)[[0] * 6]), g(z, torch.eye(4)[[1] * 6]))


def test_generator_norms_conditioned_on_y_and_z_let_z_act_at_every_layer():
    torch.manual_seed(0)
    g = Generator(z_dim=8, cond_dim=4, image_size=16, width=8, norm_sees_z=True)
    assert all(n.gain.in_features == 12 and n.shift.in_features == 12 for n in g.norms)
    g.project.weight.data[:, :8] = 0.0  # z no longer enters through the code: only the norms can carry it
    for norm in g.norms:
        norm.shift.weight.data.normal_(0.0, 1.0)
    y = torch.eye(4)[[0] * 6]
    g.train()
    g(torch.randn(6, 8), torch.eye(4)[torch.arange(6) % 4])
    g.eval()
    with torch.no_grad():
        assert (g(torch.randn(6, 8), y) - g(torch.randn(6, 8), y)).abs().mean() > 0.01
    with pytest.raises(ValueError, match="norm_sees_z"):
        Generator(z_dim=8, cond_dim=4, image_size=16, width=8, conditional_norm=False, norm_sees_z=True)


def test_concat_conditioning_needs_a_convolution_after_y():
    with pytest.raises(ValueError, match="image_size >= 16"):
        Discriminator(cond_dim=2, image_size=8, conditioning="concat")
    Discriminator(cond_dim=2, image_size=8, conditioning="projection")


def test_unconditional_trunk_with_several_outputs_is_a_classifier():
    classifier = Discriminator(cond_dim=0, image_size=16, width=4, conditioning="none", outputs=7)
    assert classifier(torch.randn(5, 3, 16, 16)).shape == (5, 7)
    with pytest.raises(ValueError, match="outputs"):
        Discriminator(cond_dim=2, image_size=16, conditioning="concat", outputs=3)


def test_plain_cgan_discriminator_is_unconstrained():
    d = Discriminator(cond_dim=5, image_size=16, width=8, spectral=False)
    assert not any(hasattr(m, "parametrizations") for m in d.modules())


def test_generator_shapes_and_condition_checks():
    for size in (8, 32, 64):
        g = Generator(z_dim=10, cond_dim=4, image_size=size, width=8)
        out = g(torch.randn(3, 10), torch.eye(4)[:3])
        assert out.shape == (3, 3, size, size)
        assert out.abs().max() <= 1.0
    with pytest.raises(ValueError, match="needs y"):
        g(torch.randn(3, 10))
    with pytest.raises(ValueError, match="power of two"):
        Generator(10, 4, image_size=48)


def test_concat_discriminator_tiles_y_after_first_conv_and_before_output():
    c, width = 6, 8
    d = Discriminator(cond_dim=c, image_size=32, width=width, conditioning="concat", spectral=False)
    assert d.rest[0].in_channels == width + c
    assert d.out.in_features == d.feature_dim + c
    tiled = tile_condition(torch.arange(6.0).reshape(2, 3), 4, 5)
    assert tiled.shape == (2, 3, 4, 5)
    assert torch.equal(tiled[1, 2], torch.full((4, 5), 5.0))
    x = torch.randn(2, 3, 32, 32)
    d.eval()
    y0, y1 = torch.eye(c)[[0, 0]], torch.eye(c)[[1, 1]]
    assert not torch.allclose(d(x, y0), d(x, y1))  # y reaches the logit
    with pytest.raises(ValueError, match="needs y"):
        d(x)


def test_projection_discriminator_is_psi_plus_inner_product():
    torch.manual_seed(1)
    c = 5
    d = Discriminator(cond_dim=c, image_size=16, width=8, conditioning="projection", spectral=True).eval()
    x = torch.randn(3, 3, 16, 16)
    y = torch.eye(c)[[0, 2, 4]]
    with torch.no_grad():
        phi = d.rest(d.first(x))
        expected = d.out(phi).squeeze(1) + (d.embed(y) * phi).sum(1)
        assert torch.allclose(d(x, y), expected, atol=1e-5)
        # y^T V phi(x) is linear in y and vanishes at y = 0 (eq. 3 of Miyato & Koyama).
        base = d(x, torch.zeros(3, c))
        assert torch.allclose(base, d.out(phi).squeeze(1), atol=1e-5)
        ya, yb = torch.eye(c)[[1, 1, 1]], torch.eye(c)[[3, 3, 3]]
        assert torch.allclose(d(x, ya + yb) - base, (d(x, ya) - base) + (d(x, yb) - base), atol=1e-4)
    assert projection_term(torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, -1.0]])).item() == pytest.approx(1.0)


def test_variants_switch():
    for name, spec in VARIANTS.items():
        trainer = GANTrainer(name, cond_dim=4, image_size=16, g_width=4, d_width=4, z_dim=3)
        assert trainer.generator.cond_dim == (4 if spec.conditional else 0)
        has_sn = any(hasattr(m, "parametrizations") for m in trainer.discriminator.modules())
        assert has_sn == spec.spectral
        assert trainer.discriminator.conditioning == spec.conditioning
    with pytest.raises(ValueError, match="unknown GAN variant"):
        GANTrainer("wgan", 4, 16)


def test_attribute_codec_round_trip_and_sweep():
    codec = AttributeCodec({"shape": ["a", "b", "c"], "colour": ["r", "g"]})
    labels = torch.tensor([[0, 1], [2, 0]])
    y = codec.encode(labels)
    assert y.tolist() == [[1, 0, 0, 0, 1], [0, 0, 1, 1, 0]]
    assert torch.equal(codec.decode(y), labels)
    with pytest.raises(ValueError, match="out of range"):
        codec.encode(torch.tensor([[3, 0]]))
    swept = attribute_sweep(labels, 0, 3)
    assert swept[:, 0].tolist() == [0, 0, 1, 1, 2, 2] and swept[:, 1].tolist() == [1, 0] * 3


def test_slerp_endpoints_and_norm():
    z0, z1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    path = slerp(z0, z1, 5)
    assert torch.allclose(path[0], z0) and torch.allclose(path[-1], z1)
    assert torch.allclose(path.norm(dim=1), torch.ones(5), atol=1e-6)  # a great circle, not a chord

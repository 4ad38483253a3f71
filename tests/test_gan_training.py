"""GAN updates: a conditional GAN learns a trivial conditional distribution; state round-trips; NaN is caught."""

import math

import pytest
import torch

from dreamlab.checkpoint import load_checkpoint, save_checkpoint
from dreamlab.gan.conditioning import AttributeCodec
from dreamlab.gan.data import LabelledImages, images_to_tensor, tensor_to_images
from dreamlab.gan.training import GANTrainer, linear_decay
from dreamlab.grad_monitor import NonFiniteLossError


def _two_level_data(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """16x16 images. Class 0: flat at -0.6; class 1: flat at +0.6 (small noise)."""
    labels = torch.randint(2, (n, 1), generator=generator)
    images = (labels.float() * 1.2 - 0.6).view(n, 1, 1, 1) + 0.05 * torch.randn(n, 3, 16, 16, generator=generator)
    return images, labels


@pytest.mark.parametrize(
    ("variant", "auxiliary"),
    [("sncgan", 0.0), ("sncgan", 1.0), pytest.param("projection", 0.0, marks=pytest.mark.slow)],
)
def test_conditional_gan_learns_the_condition(variant, auxiliary):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    codec = AttributeCodec({"level": ["dark", "bright"]})
    images, labels = _two_level_data(512, generator)
    trainer = GANTrainer(
        variant, codec.dim, 16, z_dim=8, g_width=8, d_width=8, lr=2e-3, auxiliary=auxiliary, codec=codec
    )
    for _ in range(300):
        index = torch.randint(512, (32,), generator=generator)
        trainer.step(images[index], codec.encode(labels[index]), generator)
    z = trainer.sample_z(200, generator)
    dark = trainer.generate(z, codec.encode(torch.zeros(200, 1, dtype=torch.long))).mean()
    bright = trainer.generate(z, codec.encode(torch.ones(200, 1, dtype=torch.long))).mean()
    assert dark < -0.3 and bright > 0.3, (dark.item(), bright.item())


def test_trainer_state_round_trip_continues_identically(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 16, 16).tanh(), torch.eye(3)[torch.arange(8) % 3]
    a = GANTrainer("sncgan", 3, 16, z_dim=4, g_width=4, d_width=4)
    a.step(x, y, torch.Generator().manual_seed(1))
    save_checkpoint(tmp_path / "gan.pt", a.state_dict())
    b = GANTrainer("sncgan", 3, 16, z_dim=4, g_width=4, d_width=4)
    b.load_state_dict(load_checkpoint(tmp_path / "gan.pt"))
    assert a.step(x, y, torch.Generator().manual_seed(2)) == b.step(x, y, torch.Generator().manual_seed(2))


def test_discriminator_steps_learning_rates_mode_seeking_and_r1_options():
    torch.manual_seed(0)
    x, y = torch.randn(12, 3, 16, 16).tanh(), torch.eye(3)[torch.arange(12) % 3]
    trainer = GANTrainer("sncgan", 3, 16, z_dim=4, g_width=4, d_width=4, lr=1e-4, d_lr=4e-4, d_steps=3)
    assert trainer.g_optimizer.param_groups[0]["lr"] == 1e-4 and trainer.d_optimizer.param_groups[0]["lr"] == 4e-4
    trainer.step(x, y)  # three D updates on batches of 4, one G update
    d_state = next(iter(trainer.d_optimizer.state.values()))
    g_state = next(iter(trainer.g_optimizer.state.values()))
    assert int(d_state["step"]) == 3 and int(g_state["step"]) == 1
    with pytest.raises(ValueError, match="d_steps=3 equal batches"):
        trainer.step(x[:10], y[:10])
    with pytest.raises(ValueError, match="d_steps"):
        GANTrainer("sncgan", 3, 16, d_steps=0)
    seeking = GANTrainer("cgan", 3, 16, z_dim=4, g_width=4, d_width=4, mode_seeking=0.1)
    stats = seeking.step(x[:8], y[:8])
    assert stats["mode_seeking"] > 0 and "mode_seeking" not in trainer.step(x, y)
    regularised = GANTrainer("sncgan", 3, 16, z_dim=4, g_width=4, d_width=4, r1=10.0)
    assert regularised.step(x, y)["r1"] > 0 and "r1" not in trainer.step(x, y)
    with pytest.raises(ValueError, match="r1"):
        GANTrainer("sncgan", 3, 16, r1=-1.0)


def test_linear_learning_rate_decay_scales_both_optimisers_from_their_own_rates():
    assert [linear_decay(step, 10, 20) for step in (0, 9, 10, 15, 19, 20, 25)] == [1, 1, 1, 0.5, 0.1, 0, 0]
    for start, end in ((10, 10), (-1, 5), (12, 10)):
        with pytest.raises(ValueError, match="decay"):
            linear_decay(0, start, end)
    trainer = GANTrainer("sncgan", 3, 16, z_dim=4, g_width=4, d_width=4, lr=1e-4, d_lr=4e-4)
    trainer.scale_learning_rates(0.25)
    assert trainer.g_optimizer.param_groups[0]["lr"] == pytest.approx(2.5e-5)
    assert trainer.d_optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    trainer.scale_learning_rates(1.0)  # back to the rates it was built with, not a product of factors
    assert trainer.d_optimizer.param_groups[0]["lr"] == pytest.approx(4e-4)
    with pytest.raises(ValueError, match="factor"):
        trainer.scale_learning_rates(float("nan"))


@pytest.mark.parametrize("architecture", ["discriminator", "batchnorm"])
def test_auxiliary_classifier_learns_real_labels_and_enters_the_generator_loss(tmp_path, architecture):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    codec = AttributeCodec({"level": ["dark", "bright"], "other": ["a", "b", "c"]})
    images, labels = _two_level_data(256, generator)
    labels = torch.cat([labels, torch.randint(3, (256, 1), generator=generator)], dim=1)
    y = codec.encode(labels)
    trainer = GANTrainer(
        "sncgan",
        codec.dim,
        16,
        z_dim=4,
        g_width=4,
        d_width=4,
        lr=2e-3,
        auxiliary=0.5,
        auxiliary_classifier=architecture,
        codec=codec,
    )
    # The classifier is trained with D (its parameters are in D's optimiser), not by G's update.
    classifier_ids = {id(p) for p in trainer.classifier.parameters()}
    assert classifier_ids <= {id(p) for g in trainer.d_optimizer.param_groups for p in g["params"]}
    assert not classifier_ids & {id(p) for g in trainer.g_optimizer.param_groups for p in g["params"]}
    first = trainer.step(images[:32], y[:32], generator)
    for _ in range(60):
        index = torch.randint(256, (32,), generator=generator)
        last = trainer.step(images[index], y[index], generator)
    # The level is learnable from real images, the random "other" is not: the real-image loss falls from
    # log 2 + log 3 towards log 3.
    assert first["class_real"] == pytest.approx(math.log(2) + math.log(3), abs=0.1)
    assert last["class_real"] < math.log(3) + 0.2 and last["class_fake"] > 0
    # Batch norm's statistics come from real batches only (one per step): fakes are judged in inference mode.
    tracked = [int(m.num_batches_tracked) for m in trainer.classifier.modules() if hasattr(m, "num_batches_tracked")]
    assert tracked == ([61] * 3 if architecture == "batchnorm" else [])
    save_checkpoint(tmp_path / "gan.pt", trainer.state_dict())
    plain = GANTrainer("sncgan", codec.dim, 16, z_dim=4, g_width=4, d_width=4)
    with pytest.raises(ValueError, match="auxiliary classifier"):
        plain.load_state_dict(load_checkpoint(tmp_path / "gan.pt"))
    with pytest.raises(ValueError, match="AttributeCodec"):
        GANTrainer("sngan", codec.dim, 16, auxiliary=1.0, codec=codec)
    with pytest.raises(ValueError, match="AttributeCodec"):
        GANTrainer("sncgan", codec.dim, 16, auxiliary=1.0)
    with pytest.raises(ValueError, match="unknown auxiliary classifier"):
        GANTrainer("sncgan", codec.dim, 16, auxiliary=1.0, auxiliary_classifier="resnet", codec=codec)


def test_non_finite_loss_is_named():
    trainer = GANTrainer("cgan", 3, 16, z_dim=4, g_width=4, d_width=4)
    x = torch.full((4, 3, 16, 16), float("nan"))
    with pytest.raises(NonFiniteLossError, match="discriminator loss"):
        trainer.step(x, torch.eye(3)[[0, 1, 2, 0]])


def test_a_non_finite_auxiliary_loss_stops_before_the_discriminator_update():
    codec = AttributeCodec({"kind": ["a", "b", "c"]})
    trainer = GANTrainer("sncgan", codec.dim, 16, z_dim=4, g_width=4, d_width=4, auxiliary=1.0, codec=codec)
    next(trainer.classifier.parameters()).data.fill_(float("nan"))
    before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    with pytest.raises(NonFiniteLossError, match="discriminator loss"):
        trainer.step(torch.zeros(4, 3, 16, 16), codec.encode(torch.tensor([[0], [1], [2], [0]])))
    after = list(trainer.discriminator.parameters())
    assert all(torch.equal(b, a) for b, a in zip(before, after, strict=True))  # no update with a NaN gradient


def test_labelled_images_from_a_dataset_and_pixel_round_trip():
    class Tiny:
        def __init__(self):
            self.images = (torch.arange(4 * 8 * 8 * 3) % 256).to(torch.uint8).reshape(4, 8, 8, 3).numpy()
            self.attributes = {"kind": [0, 1, 1, 0]}
            self.attribute_classes = {"kind": ["a", "b"]}
            self.binary_attributes = frozenset({"kind"})

    tiny = Tiny()
    data = LabelledImages.from_dataset(tiny)
    assert data.images.shape == (4, 3, 8, 8) and data.codec.dim == 1
    assert (tensor_to_images(data.images) == tiny.images).all()
    assert images_to_tensor(tiny.images, 4).shape == (4, 3, 4, 4)
    train, held = data.split(0.5, torch.Generator().manual_seed(0))
    assert len(train) == 2 and len(held) == 2
    with pytest.raises(ValueError, match="uint8"):
        images_to_tensor(tiny.images.astype(float))

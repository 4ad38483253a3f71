"""Conditional GANs (SNcGAN, its baselines, the projection discriminator) and the deepcolor line-art colorizer.

See docs/gan.md; experiments/sncgan.py and experiments/colorize.py wire these pieces into runs.
"""

from dreamlab.gan.conditioning import AttributeCodec, attribute_sweep, slerp
from dreamlab.gan.evaluation import AttributeClassifier, attribute_accuracy, feature_fid, frechet_distance
from dreamlab.gan.losses import discriminator_loss, generator_loss, smoothed_real_targets
from dreamlab.gan.networks import Discriminator, Generator
from dreamlab.gan.training import VARIANTS, GANTrainer

__all__ = [
    "VARIANTS",
    "AttributeClassifier",
    "AttributeCodec",
    "Discriminator",
    "GANTrainer",
    "Generator",
    "attribute_accuracy",
    "attribute_sweep",
    "discriminator_loss",
    "feature_fid",
    "frechet_distance",
    "generator_loss",
    "slerp",
    "smoothed_real_targets",
]

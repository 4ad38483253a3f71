"""Conditional GANs (SNcGAN, its baselines, the projection discriminator) and the deepcolor line-art colorizer.

See docs/gan.md. The studies that wire these pieces into runs are dreamlab.gan.study (SNcGAN) and
dreamlab.gan.colorize_study, each ``run(config)`` / ``load_run(run_dir)``; experiments/sncgan.py and colorize.py are
their command lines.
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

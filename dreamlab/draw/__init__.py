"""DRAW (Gregor et al. 2015): a recurrent VAE with Gaussian filterbank attention, colour DRAW, and a VAE baseline.

The study (config, presets, training, figures) is dreamlab.draw.study: ``run(config)`` and ``load_run(run_dir)``.
"""

from dreamlab.draw.attention import (
    AttentionRead,
    AttentionWindow,
    AttentionWrite,
    FullRead,
    FullWrite,
    filterbanks,
    read_patch,
    window_from_params,
    write_patch,
)
from dreamlab.draw.data import ImageSet, load_image_set
from dreamlab.draw.losses import bernoulli_nll, gaussian_kl, l2_reconstruction, reconstruction_loss
from dreamlab.draw.model import DRAW, DrawOutput
from dreamlab.draw.training import bound_terms, evaluate_bound, train_step
from dreamlab.draw.vae import VAE, VAEOutput

__all__ = [
    "DRAW",
    "VAE",
    "AttentionRead",
    "AttentionWindow",
    "AttentionWrite",
    "DrawOutput",
    "FullRead",
    "FullWrite",
    "ImageSet",
    "VAEOutput",
    "bernoulli_nll",
    "bound_terms",
    "evaluate_bound",
    "filterbanks",
    "gaussian_kl",
    "l2_reconstruction",
    "load_image_set",
    "read_patch",
    "reconstruction_loss",
    "train_step",
    "window_from_params",
    "write_patch",
]

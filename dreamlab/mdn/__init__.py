"""Mixture Density Networks: a mixture head and log-space mixture likelihoods and sampling."""

from dreamlab.mdn.head import MixtureDensityHead
from dreamlab.mdn.mixture import (
    Mixture,
    component_log_prob,
    mixture_log_prob,
    mixture_nll,
    most_likely_mean,
    sample_mixture,
)

__all__ = [
    "Mixture",
    "MixtureDensityHead",
    "component_log_prob",
    "mixture_log_prob",
    "mixture_nll",
    "most_likely_mean",
    "sample_mixture",
]

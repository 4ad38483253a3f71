"""The three losses of PPO with RND: clipped policy surrogate, value regression, predictor distillation."""

from __future__ import annotations

import numpy as np
import torch


def ppo_clipped_policy_loss(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, clip: float
) -> torch.Tensor:
    """PPO's clipped surrogate (Schulman et al. 2017, eq. 7), negated for minimisation:

    L = -E[min(rho * A, clip(rho, 1 - eps, 1 + eps) * A)],  rho = pi(a|s) / pi_old(a|s).
    """
    ratio = torch.exp(log_prob - old_log_prob)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * advantages
    return -torch.minimum(unclipped, clipped).mean()


def value_loss(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """0.5 * mean squared error between a value head and its lambda-returns."""
    return 0.5 * (values - returns).square().mean()


def predictor_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Distillation error ||f_hat(x) - f(x)||^2 (Burda et al., section 2.2), averaged over features and samples."""
    if predicted.shape != target.shape:
        raise ValueError(f"predicted {tuple(predicted.shape)} and target {tuple(target.shape)} must match")
    return (predicted - target.detach()).square().mean()


def predictor_sample_indices(batch_size: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of the random ``fraction`` of a batch the predictor trains on (each sample kept independently).

    Training the predictor on a fixed fraction (0.25 with 32 environments in the paper) makes it see as many
    samples per update as with fewer environments, so its learning speed - hence how fast the intrinsic reward
    decays - does not grow with the number of parallel environments (Burda et al., appendix A.4).
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    kept = np.flatnonzero(rng.random(batch_size) < fraction)
    # A tiny batch can draw no sample at all; one random sample keeps the update defined.
    return kept if kept.size else rng.integers(0, batch_size, size=1)


def categorical_log_prob_entropy(logits: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(a|s) of the taken actions and the policy's entropy, from unnormalised logits."""
    log_probs = torch.log_softmax(logits, dim=-1)
    entropy = -(log_probs.exp() * log_probs).sum(dim=-1)
    return log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1), entropy

"""Running normalisation of the predictor's input and of the rewards (Burda et al., section 2.4).

Both keep a :class:`~dreamlab.running_stats.RunningMeanStd` (the Bessel-corrected parallel merge of the seed post
"Calculating running estimate of mean and standard deviation"), so their state is plain arrays for checkpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from dreamlab.rnd.returns import discounted_return_filter
from dreamlab.running_stats import RunningMeanStd, combine_mean_std


class ObservationNormalizer:
    """Whitens single frames for the RND networks: (x - mean) / std per pixel (or feature), clipped to +-clip.

    The random target network would otherwise map every frame to nearly the same embedding (its inputs are
    not centred) and the intrinsic reward would carry little information; the paper initialises the statistics
    from random-policy steps before training and then updates them with every rollout.
    """

    def __init__(self, shape: tuple[int, ...], clip: float = 5.0, eps: float = 1e-8):
        if clip <= 0:
            raise ValueError(f"observation clip must be positive, got {clip}")
        self.stats = RunningMeanStd(tuple(shape))
        self.clip = clip
        self.eps = eps

    def update(self, frames: np.ndarray) -> None:
        """Merge a batch of (n, *shape) frames into the running per-pixel mean and std.

        The batch moments are computed in float32 (a rollout is 4096 frames of 0..255 pixels, where float64 buys
        nothing but twice the memory traffic) and merged in float64 with the parallel formula.
        """
        batch = np.asarray(frames).astype(np.float32, copy=False)
        if batch.shape[1:] != self.stats.shape or len(batch) == 0:
            raise ValueError(f"expected a non-empty batch of frames of shape {self.stats.shape}, got {batch.shape}")
        batch_std = batch.std(axis=0, ddof=1) if len(batch) > 1 else np.zeros(self.stats.shape)
        mean, std, count = combine_mean_std(
            self.stats.mean, self.stats.std, self.stats.count, batch.mean(axis=0), batch_std, len(batch)
        )
        self.stats.load_state_dict({"mean": mean, "std": std, "count": count})

    def normalize(self, frames: np.ndarray) -> np.ndarray:
        """(n, *shape) frames as float32, whitened and clipped; raises until the statistics have seen data."""
        if self.stats.count < 2:
            raise RuntimeError("observation statistics are empty; update() with random-policy frames first")
        mean = self.stats.mean.astype(np.float32)
        scale = (1.0 / (self.stats.std + self.eps)).astype(np.float32)
        z = np.subtract(frames, mean, dtype=np.float32)
        z *= scale
        return np.clip(z, -self.clip, self.clip, out=z)

    def state_dict(self) -> dict[str, Any]:
        return self.stats.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.stats.load_state_dict(state)


class RewardNormalizer:
    """Divides rewards by the running std of their discounted return.

    Each call folds a (T, N) rollout of raw rewards into the per-environment discounted sums R_t = gamma R_{t-1}
    + r_t (carried across rollouts), merges all R_t into the running statistics, then scales the rewards by
    1 / std. Only the scale changes: the mean is not subtracted, so novelty stays a positive reward.

    The intrinsic stream's sums are non-episodic, as the paper's. The extrinsic stream's option
    (``RNDConfig.normalize_extrinsic``) passes ``dones`` so that a sum restarts with each episode: it keeps the
    extrinsic value targets near unit scale, where otherwise their regression gradient swamps the policy's in the
    shared torso as the returns grow.
    """

    def __init__(self, num_envs: int, gamma: float, eps: float = 1e-8):
        self.gamma = gamma
        self.eps = eps
        self.discounted_return = np.zeros(num_envs, dtype=np.float64)
        self.stats = RunningMeanStd(())

    def __call__(self, rewards: np.ndarray, dones: np.ndarray | None = None) -> np.ndarray:
        """``rewards`` (T, N) scaled by 1 / std; ``dones`` (T, N) makes the discounted sums episodic."""
        rewards = np.asarray(rewards, dtype=np.float64)
        if rewards.ndim != 2 or rewards.shape[1] != self.discounted_return.shape[0]:
            raise ValueError(f"expected rewards of shape (T, {self.discounted_return.shape[0]}), got {rewards.shape}")
        returns, last = discounted_return_filter(
            torch.from_numpy(rewards),
            torch.from_numpy(self.discounted_return),
            self.gamma,
            None if dones is None else torch.from_numpy(np.asarray(dones, dtype=np.float64)),
        )
        self.discounted_return = last.numpy()
        self.stats.update(returns.numpy().reshape(-1))
        return rewards / (self.stats.std + self.eps)

    def state_dict(self) -> dict[str, Any]:
        return {"discounted_return": self.discounted_return.copy(), "stats": self.stats.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        discounted_return = np.asarray(state["discounted_return"], dtype=np.float64)
        if discounted_return.shape != self.discounted_return.shape:
            raise ValueError(
                f"intrinsic-return state for {discounted_return.shape[0]} environments cannot load into "
                f"{self.discounted_return.shape[0]}"
            )
        self.discounted_return = discounted_return
        self.stats.load_state_dict(state["stats"])

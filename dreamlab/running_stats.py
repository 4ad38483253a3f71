"""Running mean and standard deviation, merged batch by batch with the parallel (Chan et al.) formula.

Two groups with sizes n1, n2, means m1, m2 and Bessel-corrected standard deviations s1, s2 combine into

    n  = n1 + n2
    m  = (n1 m1 + n2 m2) / n
    s² = ((n1 - 1) s1² + (n2 - 1) s2² + n1 (m - m1)² + n2 (m - m2)²) / (n - 1)

which is exactly the sample (ddof=1) variance of the pooled data, so streaming in any grouping gives the same
answer as computing over everything at once. RND normalises observations and intrinsic rewards with this.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def combine_mean_std(
    mean1: np.ndarray | float,
    std1: np.ndarray | float,
    n1: int,
    mean2: np.ndarray | float,
    std2: np.ndarray | float,
    n2: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Merge two groups' (mean, Bessel-corrected std, count) into the pooled group's."""
    if n1 < 0 or n2 < 0 or n1 + n2 == 0:
        raise ValueError(f"group sizes must be non-negative and not both zero, got {n1} and {n2}")
    n = n1 + n2
    mean1, std1, mean2, std2 = (np.asarray(v, dtype=np.float64) for v in (mean1, std1, mean2, std2))
    mean = (n1 * mean1 + n2 * mean2) / n
    if n == 1:
        return mean, np.zeros_like(mean), n
    sum_sq = max(n1 - 1, 0) * std1**2 + max(n2 - 1, 0) * std2**2 + n1 * (mean - mean1) ** 2 + n2 * (mean - mean2) ** 2
    return mean, np.sqrt(sum_sq / (n - 1)), n


class RunningMeanStd:
    """Per-feature running mean and Bessel-corrected std of a stream of batches (axis 0 indexes samples)."""

    def __init__(self, shape: tuple[int, ...] | int = ()):
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.mean = np.zeros(self.shape, dtype=np.float64)
        self._std = np.zeros(self.shape, dtype=np.float64)
        self.count = 0

    @property
    def std(self) -> np.ndarray:
        return self._std

    @property
    def var(self) -> np.ndarray:
        return self._std**2

    def update(self, batch: Any) -> None:
        """Merge a batch of shape (n, *shape) into the running estimate."""
        batch = np.asarray(batch.detach().cpu() if hasattr(batch, "detach") else batch, dtype=np.float64)
        if batch.shape[1:] != self.shape:
            raise ValueError(f"expected a batch of shape (n, {', '.join(map(str, self.shape))}), got {batch.shape}")
        n = batch.shape[0]
        if n == 0:
            return
        batch_std = batch.std(axis=0, ddof=1) if n > 1 else np.zeros(self.shape)
        if self.count == 0:
            self.mean, self._std, self.count = batch.mean(axis=0), batch_std, n
            return
        self.mean, self._std, self.count = combine_mean_std(
            self.mean, self._std, self.count, batch.mean(axis=0), batch_std, n
        )

    def normalize(self, x: np.ndarray, clip: float | None = None, eps: float = 1e-8) -> np.ndarray:
        """(x - mean) / std, optionally clipped to [-clip, clip]."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) / (self._std + eps)
        return np.clip(z, -clip, clip) if clip is not None else z

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.copy(), "std": self._std.copy(), "count": self.count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        mean = np.asarray(state["mean"], dtype=np.float64)
        std = np.asarray(state["std"], dtype=np.float64)
        if self.shape == () and mean.shape == std.shape == (1,):
            # Checkpoints saved before dreamlab.checkpoint kept 0-d arrays stored scalar statistics as shape (1,).
            mean, std = mean.reshape(()), std.reshape(())
        if mean.shape != self.shape:
            raise ValueError(f"running stats of shape {mean.shape} cannot load into shape {self.shape}")
        self.mean, self._std, self.count = mean, std, int(state["count"])

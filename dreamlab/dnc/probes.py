"""Is the sprite state readable from a DNC's memory? Linear probes (Test 1) and mutual information (Test 2).

Test 1 (Mufti, after the beta-VAE paper's disentanglement metric): a single linear layer without activation maps
standardised features (memory M_t or read vectors r_t, flattened) to the latents of the sprite seen ``lag`` steps
earlier: softmax cross-entropy for shape, squared error for scale, orientation, posX and posY; Adam, minibatch 256.
Scores are shape classification error and per-factor MSE in the latents' own units (the post's numbers), plus
R^2 = 1 - MSE / Var(target) so factors of different ranges compare. A probe on random inputs of the same width is
the control: it shows what fitting alone achieves.

Test 2: for each memory location (one scalar of M_t), the mutual information between its contents over time and a
sequence of X-position classes fed to the model, against a control sequence drawn the same way but never shown.
Estimator: equal-frequency binning of the location's contents and equal-width grouping of the 32 X classes, then the
plug-in MI of the contingency table (in nats). Why not ``sklearn.metrics.mutual_info_score`` on raw floats: it
treats every distinct float as its own label, so any non-constant location scores the sequence's full entropy
whatever the dependence. The plug-in estimate is biased upwards by roughly (bins_x - 1)(bins_y - 1) / (2T), but the
bias is the same for the true and control sequences (same marginals), so the paired difference over sequences is
the test statistic: a location tracks X when its MI with the true sequence exceeds the control's by more than
chance (one-sided paired t-test, Bonferroni-corrected over locations).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from torch import Tensor, nn

from dreamlab.data.dsprites import DSPRITES_LATENT_NAMES, DSPRITES_LATENT_SIZES, DSPRITES_LATENT_VALUES

SHAPE_COLUMN = DSPRITES_LATENT_NAMES.index("shape")
SHAPE_CLASSES = DSPRITES_LATENT_SIZES[SHAPE_COLUMN]
REGRESSION_LATENTS = ("scale", "orientation", "posX", "posY")
REGRESSION_COLUMNS = tuple(DSPRITES_LATENT_NAMES.index(name) for name in REGRESSION_LATENTS)
# Mean and standard deviation of each regressed latent under uniform draws from the grid: targets are standardised
# with these so the four squared errors weigh alike (orientation spans 2*pi, scale 0.5).
GRID_MEAN = np.array([DSPRITES_LATENT_VALUES[c].mean() for c in REGRESSION_COLUMNS])
GRID_STD = np.array([DSPRITES_LATENT_VALUES[c].std() for c in REGRESSION_COLUMNS])


class LatentTargets(NamedTuple):
    """What a probe predicts for n samples: shape class and the four regressed latent values."""

    shape: np.ndarray  # (n,) int64 in 0..2
    values: np.ndarray  # (n, 4) float64: scale, orientation, posX, posY


def latent_targets(classes: np.ndarray, values: np.ndarray) -> LatentTargets:
    """Probe targets from (..., 6) latent classes and values, flattened over the leading axes."""
    classes, values = np.asarray(classes), np.asarray(values, dtype=np.float64)
    if classes.shape != values.shape or classes.shape[-1] != len(DSPRITES_LATENT_SIZES):
        raise ValueError(f"classes and values must both be (..., 6), got {classes.shape} and {values.shape}")
    return LatentTargets(
        classes[..., SHAPE_COLUMN].reshape(-1).astype(np.int64),
        values[..., list(REGRESSION_COLUMNS)].reshape(-1, len(REGRESSION_LATENTS)),
    )


class LatentDecoder(nn.Module):
    """One linear layer, no activation: features (..., F) -> shape logits (..., 3) and standardised latents (..., 4).

    The Test 1 probe, and the auxiliary decoder that biases a DNC to expose the state (the post's future work).
    """

    def __init__(self, in_features: int) -> None:
        super().__init__()
        if in_features < 1:
            raise ValueError(f"in_features must be >= 1, got {in_features}")
        self.linear = nn.Linear(in_features, SHAPE_CLASSES + len(REGRESSION_LATENTS))

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        out = self.linear(features)
        return out[..., :SHAPE_CLASSES], out[..., SHAPE_CLASSES:]


def standardise_latents(values: Tensor) -> Tensor:
    """(..., 4) regressed latent values -> zero-mean unit-variance units of the uniform grid."""
    mean = torch.as_tensor(GRID_MEAN, dtype=values.dtype, device=values.device)
    std = torch.as_tensor(GRID_STD, dtype=values.dtype, device=values.device)
    return (values - mean) / std


def latent_decoder_loss(shape_logits: Tensor, predicted: Tensor, shape: Tensor, values: Tensor) -> Tensor:
    """Softmax cross-entropy on shape plus the mean squared error on the standardised scale/orientation/x/y."""
    cross_entropy = F.cross_entropy(shape_logits.reshape(-1, SHAPE_CLASSES), shape.reshape(-1))
    squared = (predicted - standardise_latents(values)).square().mean()
    return cross_entropy + squared


def lagged_samples(
    features: np.ndarray, classes: np.ndarray, values: np.ndarray, steps: np.ndarray, lag: int
) -> tuple[np.ndarray, LatentTargets]:
    """Pair the features taken at ``steps`` with the latents of the sprites input ``lag`` steps earlier.

    features (B, len(steps), ...) were recorded at the given steps of sequences whose input sprites have classes and
    values (B, T, 6); returns features flattened to (n, F) and the targets at steps - lag.
    """
    steps = np.asarray(steps, dtype=np.int64)
    if steps.ndim != 1 or len(steps) == 0 or features.shape[:2] != (len(classes), len(steps)):
        raise ValueError(
            f"features must be (batch, len(steps), ...) = ({len(classes)}, {len(steps)}, ...), got {features.shape}"
        )
    if classes.shape != values.shape or classes.ndim != 3:
        raise ValueError(f"classes and values must both be (batch, time, 6), got {classes.shape} and {values.shape}")
    if lag < 0 or steps.min() - lag < 0 or steps.max() >= classes.shape[1]:
        raise ValueError(f"steps {steps.min()}..{steps.max()} with lag {lag} fall outside 0..{classes.shape[1] - 1}")
    flat = features.reshape(len(features) * len(steps), -1)
    return flat, latent_targets(classes[:, steps - lag], values[:, steps - lag])


class Standardiser(NamedTuple):
    """Per-feature mean and std fitted on training features (std 1 where a feature is constant)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, chunk: int = 4096) -> Standardiser:
        # Two passes over row chunks in float64: exact enough, and no float64 copy of a wide feature matrix.
        features = np.asarray(features)
        mean = features.mean(axis=0, dtype=np.float64)
        squares = np.zeros_like(mean)
        for first in range(0, len(features), chunk):
            squares += ((features[first : first + chunk] - mean) ** 2).sum(axis=0)
        std = np.sqrt(squares / max(len(features), 1))
        return cls(mean, np.where(std > 1e-8, std, 1.0))

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, dtype=np.float32) - self.mean.astype(np.float32)) / self.std.astype(np.float32)


def train_probe(
    features: np.ndarray,
    targets: LatentTargets,
    epochs: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[LatentDecoder, Standardiser]:
    """Fit a linear probe with Adam on standardised features; returns the probe and the standardiser."""
    features = np.asarray(features)
    if features.ndim != 2 or len(features) != len(targets.shape) or len(features) != len(targets.values):
        raise ValueError(
            f"features must be (n, F) with one target per row, got {features.shape} for {len(targets.shape)} targets"
        )
    if not np.all(np.isfinite(features)):
        raise ValueError("probe features contain NaN or Inf")
    standardiser = Standardiser.fit(features)
    x = torch.as_tensor(standardiser(features), device=device)
    shape = torch.as_tensor(targets.shape, device=device)
    values = torch.as_tensor(targets.values, dtype=torch.float32, device=device)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    probe = LatentDecoder(x.shape[1]).to(device)
    optimiser = torch.optim.Adam(probe.parameters(), lr=lr)
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(batch_size):
            batch = batch.to(device)
            loss = latent_decoder_loss(*probe(x[batch]), shape[batch], values[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return probe, standardiser


@torch.no_grad()
def probe_scores(
    probe: LatentDecoder, standardiser: Standardiser, features: np.ndarray, targets: LatentTargets
) -> dict[str, float]:
    """Shape classification error, per-factor MSE in latent units and per-factor R^2 on these samples."""
    device = probe.linear.weight.device
    shape_logits, predicted = probe(torch.as_tensor(standardiser(features), device=device))
    values = predicted.double().cpu().numpy() * GRID_STD + GRID_MEAN
    scores = {"shape_error": float((shape_logits.argmax(-1).cpu().numpy() != targets.shape).mean())}
    mse = ((values - targets.values) ** 2).mean(axis=0)
    variance = targets.values.var(axis=0)
    for i, name in enumerate(REGRESSION_LATENTS):
        scores[f"{name}_mse"] = float(mse[i])
    for i, name in enumerate(REGRESSION_LATENTS):
        scores[f"{name}_r2"] = float(1.0 - mse[i] / variance[i]) if variance[i] > 0 else float("nan")
    return scores


def probe_test(
    train_features: np.ndarray,
    train_targets: LatentTargets,
    test_features: np.ndarray,
    test_targets: LatentTargets,
    epochs: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> dict[str, dict[str, float]]:
    """Train a probe, score it on its training samples (as the post did) and on held-out samples."""
    probe, standardiser = train_probe(train_features, train_targets, epochs, batch_size, lr, seed, device)
    return {
        "train": probe_scores(probe, standardiser, train_features, train_targets),
        "test": probe_scores(probe, standardiser, test_features, test_targets),
    }


def quantile_bins(contents: np.ndarray, bins: int) -> np.ndarray:
    """Equal-frequency bin index (0..bins-1) of each column of (T, L) contents; a constant column is one bin."""
    contents = np.asarray(contents, dtype=np.float64)
    if contents.ndim != 2 or bins < 2:
        raise ValueError(f"need (T, L) contents and bins >= 2, got {contents.shape} and {bins}")
    edges = np.quantile(contents, np.linspace(0, 1, bins + 1)[1:-1], axis=0)  # (bins - 1, L)
    # Count the edges each value reaches: ties with an edge all fall on the same side, so a constant column lands
    # in a single bin rather than being split arbitrarily.
    return (contents[None] >= edges[:, None]).sum(axis=0)


def plugin_mutual_information(
    labels: np.ndarray, sequence: np.ndarray, label_bins: int, sequence_bins: int
) -> np.ndarray:
    """Plug-in MI (nats) between each column of (T, L) discrete labels and one (T,) discrete sequence -> (L,)."""
    labels, sequence = np.asarray(labels, dtype=np.int64), np.asarray(sequence, dtype=np.int64)
    steps, locations = labels.shape
    if sequence.shape != (steps,):
        raise ValueError(f"sequence must be ({steps},) to match labels {labels.shape}, got {sequence.shape}")
    cells = label_bins * sequence_bins
    flat = labels * sequence_bins + sequence[:, None] + np.arange(locations) * cells
    joint = np.bincount(flat.reshape(-1), minlength=locations * cells).reshape(locations, label_bins, sequence_bins)
    joint = joint / steps
    marginal_labels = joint.sum(axis=2, keepdims=True)
    marginal_sequence = joint.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = joint * np.log(joint / (marginal_labels * marginal_sequence))
    return np.nansum(terms, axis=(1, 2))


def location_mutual_information(
    contents: np.ndarray, sequence_classes: np.ndarray, bins: int, sequence_classes_total: int
) -> np.ndarray:
    """MI (nats) of each memory location's contents over time with a class sequence: (T, L), (T,) -> (L,).

    Contents are binned by quantiles; the classes (0..sequence_classes_total-1) are grouped into ``bins`` equal
    ranges, so both sides of the table have the same resolution.
    """
    sequence_classes = np.asarray(sequence_classes, dtype=np.int64)
    if sequence_classes.min() < 0 or sequence_classes.max() >= sequence_classes_total:
        raise ValueError(f"sequence classes must lie in 0..{sequence_classes_total - 1}")
    grouped = sequence_classes * bins // sequence_classes_total
    return plugin_mutual_information(quantile_bins(contents, bins), grouped, bins, bins)


def mutual_information_test(
    contents: list[np.ndarray],
    sequences: list[np.ndarray],
    controls: list[np.ndarray],
    bins: int,
    sequence_classes_total: int,
    alpha: float = 0.01,
) -> dict[str, object]:
    """Test 2 over several sequences: per-location MI with the true and the control sequences, and which differ.

    contents[i] (T_i, L) are the memory contents while sequence i (T_i,) was fed; controls[i] (T_i,) is a sequence
    drawn the same way but not fed. Returns the per-location means over sequences, the one-sided paired t statistic
    of (true - control) and the locations whose p-value passes alpha / L.
    """
    if not (len(contents) == len(sequences) == len(controls)) or len(contents) < 2:
        raise ValueError("need at least 2 sequences, each with contents, a true sequence and a control")
    true_mi = np.stack(
        [
            location_mutual_information(c, s, bins, sequence_classes_total)
            for c, s in zip(contents, sequences, strict=True)
        ]
    )
    control_mi = np.stack(
        [
            location_mutual_information(c, s, bins, sequence_classes_total)
            for c, s in zip(contents, controls, strict=True)
        ]
    )
    difference = true_mi - control_mi
    count = len(difference)
    spread = difference.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_statistic = np.where(spread > 0, difference.mean(axis=0) / (spread / np.sqrt(count)), 0.0)
    p_values = stats.t.sf(t_statistic, df=count - 1)
    threshold = alpha / true_mi.shape[1]
    return {
        "true_mi": true_mi.mean(axis=0),
        "control_mi": control_mi.mean(axis=0),
        "t_statistic": t_statistic,
        "p_value": p_values,
        "detected": np.flatnonzero(p_values < threshold),
        "bonferroni_threshold": threshold,
    }

"""Judging generated images without downloads: an attribute classifier trained on the real data.

- Conditioning accuracy: the classifier's prediction for each attribute of G(z, y) compared with the y asked for.
- Feature-FID: the Frechet distance (Heusel et al., 2017, eq. 6) between Gaussians fitted to the classifier's
  penultimate features of real and generated images,
  d^2 = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^{1/2}),
  the FID recipe with this data's own classifier in place of Inception.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dreamlab.gan.conditioning import AttributeCodec
from dreamlab.gan.losses import attribute_cross_entropy
from dreamlab.grad_monitor import check_finite


class AttributeClassifier(nn.Module):
    """A small CNN with one softmax head per attribute; ``features`` is the penultimate layer used for feature-FID."""

    def __init__(self, attribute_sizes: list[int], channels: int = 3, width: int = 32, feature_dim: int = 128):
        super().__init__()
        self.attribute_sizes = list(attribute_sizes)
        self.trunk = nn.Sequential(
            nn.Conv2d(channels, width, 3, 1, 1),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, 1, 1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(True),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, 1, 1),
            nn.BatchNorm2d(4 * width),
            nn.ReLU(True),
            nn.AdaptiveMaxPool2d(4),
            nn.Flatten(),
            nn.Linear(4 * width * 16, feature_dim),
            nn.ReLU(True),
        )
        self.heads = nn.Linear(feature_dim, sum(self.attribute_sizes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-attribute logits, one (n, classes) tensor per attribute."""
        return list(torch.split(self.heads(self.features(x)), self.attribute_sizes, dim=1))

    def predict(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Predicted class index of every attribute, (n, A)."""
        with torch.no_grad():
            self.eval()
            out = [
                torch.stack([logits.argmax(1) for logits in self(x[i : i + batch_size])], dim=1)
                for i in range(0, x.shape[0], batch_size)
            ]
        return torch.cat(out)

    def embed(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Penultimate features of a set of images, (n, feature_dim)."""
        with torch.no_grad():
            self.eval()
            return torch.cat([self.features(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def train_attribute_classifier(
    classifier: AttributeClassifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    generator: torch.Generator | None = None,
) -> list[float]:
    """Fit the classifier by summed per-attribute cross-entropy with Adam; returns the mean loss of each epoch."""
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} label rows")
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
    device = next(classifier.parameters()).device
    history = []
    for _ in range(epochs):
        classifier.train()
        order = torch.randperm(images.shape[0], generator=generator)
        total, batches = 0.0, 0
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            logits = classifier(images[index].to(device))
            target = labels[index].to(device)
            loss = attribute_cross_entropy(logits, target)
            check_finite(loss, "attribute classifier loss")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, batches = total + loss.item(), batches + 1
        history.append(total / batches)
    recalibrate_batchnorm(classifier, images, batch_size)
    return history


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> None:
    """Replace batch-norm running statistics by exact averages over ``images`` at the final weights.

    The exponential running averages gathered during training mix statistics of older weights; a judge evaluated
    in inference mode should normalise with the statistics of the network it actually is.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    device = next(model.parameters()).device
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    model.train()
    for start in range(0, images.shape[0], batch_size):
        model(images[start : start + batch_size].to(device))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()


def attribute_accuracy(
    classifier: AttributeClassifier, images: torch.Tensor, labels: torch.Tensor, codec: AttributeCodec
) -> dict[str, float]:
    """Fraction of images whose predicted class equals ``labels`` (n, A), per attribute name."""
    predicted = classifier.predict(images).cpu()
    correct = (predicted == labels.cpu()).double().mean(dim=0)
    return {name: float(correct[i]) for i, name in enumerate(codec.names)}


def gaussian_statistics(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of feature rows, in float64."""
    x = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need a (n >= 2, d) feature matrix, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix via its eigendecomposition (round-off negatives clipped)."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    Tr((S1 S2)^{1/2}) is computed as Tr((S1^{1/2} S2 S1^{1/2})^{1/2}): the same eigenvalues, but of a symmetric PSD
    matrix, so the square root needs only a symmetric eigendecomposition and never goes complex on singular
    (n < d) covariances, where scipy's sqrtm on the non-symmetric product is unstable.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched Gaussian statistics: {mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}")
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    distance = float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)
    return max(distance, 0.0)


def feature_fid(classifier: AttributeClassifier, real: torch.Tensor, fake: torch.Tensor) -> float:
    """Frechet distance between the classifier features of two image sets."""
    return frechet_distance(*gaussian_statistics(classifier.embed(real)), *gaussian_statistics(classifier.embed(fake)))

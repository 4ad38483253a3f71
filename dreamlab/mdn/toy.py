"""Bishop's inverse problem: the one-to-many regression that motivates mixture density networks.

The forward map t -> x = t + 0.3 sin(2 pi t) + U(-0.1, 0.1) is a function; its inverse x -> t is not (for
x near 0.5 there are three branches). A network trained with squared error learns the conditional mean E[t | x],
which falls between the branches; an MDN learns p(t | x) and its samples cover every branch (Bishop 1994, sec. 5).

    from dreamlab.config import make_config
    from dreamlab.mdn.toy import PRESETS, MDNToyConfig, run
    metrics = run(make_config(MDNToyConfig, PRESETS, "fast"))
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dreamlab.config import RunConfig, positive
from dreamlab.grad_monitor import GradientMonitor, check_finite
from dreamlab.mdn.head import MixtureDensityHead
from dreamlab.mdn.mixture import mixture_nll, sample_mixture
from dreamlab.results import CurveLog, write_result
from dreamlab.runs import UserError, check_finite_module, run_directory
from dreamlab.runtime import resolve_device, resolve_dtype, seed_everything


def inverse_problem_data(n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n pairs (x, t) of the inverse problem, each of shape (n, 1): input x, multi-valued target t."""
    t = torch.rand(n, 1, generator=generator)
    noise = torch.rand(n, 1, generator=generator) * 0.2 - 0.1
    x = t + 0.3 * torch.sin(2 * math.pi * t) + noise
    return x, t


class MeanRegressor(nn.Module):
    """A tanh MLP trained with squared error: it can only represent E[t | x]."""

    def __init__(self, hidden: int = 24):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def loss(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (self(x) - t).square().mean()


class MixtureDensityNetwork(nn.Module):
    """A tanh MLP with a mixture density head: it represents p(t | x)."""

    def __init__(self, hidden: int = 24, n_components: int = 5, out_dim: int = 1):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.head = MixtureDensityHead(hidden, out_dim, n_components)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.head(self.body(x))

    def loss(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return mixture_nll(*self(x), t).mean()


def fit(
    model: MeanRegressor | MixtureDensityNetwork,
    x: torch.Tensor,
    t: torch.Tensor,
    steps: int,
    lr: float,
    batch_size: int,
    generator: torch.Generator | None = None,
    log_grads: bool = False,
) -> list[float]:
    """Adam on random minibatches of (x, t); returns the loss at every step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    monitor = GradientMonitor(model) if log_grads else None
    losses = []
    for step in range(steps):
        batch = torch.randint(len(x), (min(batch_size, len(x)),), generator=generator)
        loss = check_finite(model.loss(x[batch], t[batch]), f"{type(model).__name__} loss at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if monitor is not None:
            monitor.check()
        optimizer.step()
        losses.append(loss.item())
    return losses


def nearest_neighbour_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean distance from each point of ``a`` (n, 2) to its nearest point of ``b`` (m, 2)."""
    return torch.cdist(a, b).min(dim=1).values.mean().item()


@dataclasses.dataclass
class MDNToyConfig(RunConfig):
    """Bishop's inverse problem: MSE network against a mixture density network."""

    n_train: int = 2500
    n_test: int = 1000
    hidden: int = 24
    components: int = 5
    steps: int = 6000
    batch_size: int = 256
    lr: float = 3e-3

    def validate(self) -> None:
        super().validate()
        positive(self, "n_train", "n_test", "hidden", "components", "steps", "batch_size", "lr")
        if self.n_train < 2:
            raise UserError(f"--n_train must be >= 2 (the residual variance needs two points), got {self.n_train}")


PRESETS = {
    "smoke": {"n_train": 500, "n_test": 200, "steps": 200},
    "fast": {},
    "paper": {"n_train": 5000, "n_test": 2000, "hidden": 48, "steps": 20000},
}


def run(config: MDNToyConfig, figures: Callable[[Path, str, dict[str, np.ndarray]], None] | None = None) -> dict:
    """Fit both networks, compare them on held-out points and write the result to <results_dir>/mdn; ``figures``
    gets the folder, the result name and the test points (x, t) with both networks' predictions (mse, mdn)."""
    name = config.name or f"mdn_toy_{config.preset}"
    out = Path(config.results_dir) / "mdn"
    with run_directory(config.run_dir or f"runs/mdn_toy/{name}", out):
        return _run(config, name, out, figures)


def _run(
    config: MDNToyConfig, name: str, out: Path, figures: Callable[[Path, str, dict[str, np.ndarray]], None] | None
) -> dict:
    start = time.perf_counter()
    seed_everything(config.seed)
    device, dtype = resolve_device(config.device), resolve_dtype(config.dtype)
    generator = torch.Generator().manual_seed(config.seed)
    x, t = (v.to(device, dtype) for v in inverse_problem_data(config.n_train, generator))
    x_test, t_test = (v.to(device, dtype) for v in inverse_problem_data(config.n_test, generator))

    mse_net = MeanRegressor(config.hidden).to(device, dtype)
    mdn = MixtureDensityNetwork(config.hidden, config.components).to(device, dtype)
    fit_args = dict(steps=config.steps, lr=config.lr, batch_size=config.batch_size, log_grads=config.log_grads)
    mse_losses = fit(mse_net, x, t, generator=generator, **fit_args)
    mdn_losses = fit(mdn, x, t, generator=generator, **fit_args)
    check_finite_module(mse_net, "squared-error network after training")
    check_finite_module(mdn, "mixture density network after training")

    with torch.no_grad():
        mse_pred = mse_net(x_test)
        mdn_sample = sample_mixture(*mdn(x_test), generator=torch.Generator(device).manual_seed(config.seed))
        residual_var = (mse_net(x) - t).square().mean()
        # The MSE net read as a Gaussian with the training residual variance: its best possible likelihood.
        mse_nll = 0.5 * (mse_pred - t_test).square() / residual_var + 0.5 * torch.log(2 * torch.pi * residual_var)
        truth = torch.cat([x_test, t_test], 1)
        metrics = {
            "test_nll_mdn": mdn.loss(x_test, t_test).item(),
            "test_nll_mse_gaussian": mse_nll.mean().item(),
            "test_mse_of_mse_net": (mse_pred - t_test).square().mean().item(),
            # How far true points lie from the nearest predicted point: small only if every branch is covered.
            "truth_to_prediction_distance_mse": nearest_neighbour_distance(truth, torch.cat([x_test, mse_pred], 1)),
            "truth_to_prediction_distance_mdn": nearest_neighbour_distance(truth, torch.cat([x_test, mdn_sample], 1)),
            "final_train_loss_mse": mse_losses[-1],
            "final_train_loss_mdn": mdn_losses[-1],
        }

    curve = CurveLog()
    for step in range(0, config.steps, max(1, config.steps // 200)):
        curve.append(step=step, mse_loss=mse_losses[step], mdn_nll=mdn_losses[step])
    curve.to_csv(f"{out}/{name}_curve.csv")
    if figures is not None:
        figures(
            out,
            name,
            {
                k: v.cpu().float().numpy()
                for k, v in (("x", x_test), ("t", t_test), ("mse", mse_pred), ("mdn", mdn_sample))
            },
        )
    path = write_result(
        "mdn",
        name,
        experiment="mdn_toy",
        config=config,
        metrics=metrics,
        wall_seconds=time.perf_counter() - start,
        results_dir=config.results_dir,
    )
    print(f"MDN test NLL {metrics['test_nll_mdn']:.3f} nats vs MSE-as-Gaussian {metrics['test_nll_mse_gaussian']:.3f}")
    print(f"result: {path}")
    return metrics

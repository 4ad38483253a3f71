"""Bishop's inverse problem: a squared-error network collapses to the conditional mean, an MDN covers every branch.

python experiments/mdn_toy.py --preset fast
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from dreamlab.config import RunConfig, parse_config, positive
from dreamlab.figures import save_figure
from dreamlab.mdn import sample_mixture
from dreamlab.mdn.toy import MeanRegressor, MixtureDensityNetwork, fit, inverse_problem_data, nearest_neighbour_distance
from dreamlab.results import CurveLog, write_result
from dreamlab.runs import UserError, check_finite_module, cli, run_directory
from dreamlab.runtime import resolve_device, resolve_dtype, seed_everything


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


@cli
def main(argv: list[str] | None = None) -> dict:
    config = parse_config(MDNToyConfig, PRESETS, argv)
    name = config.name or f"mdn_toy_{config.preset}"
    out = Path(config.results_dir) / "mdn"
    with run_directory(config.run_dir or f"runs/mdn_toy/{name}", out):
        return run(config, name, out)


def run(config: MDNToyConfig, name: str, out: Path) -> dict:
    """Fit both networks, compare them on held-out points, and write the result and figures to ``out``."""
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
    xs, ts, mse_np, mdn_np = (v.cpu().float().numpy() for v in (x_test, t_test, mse_pred, mdn_sample))
    for suffix, title, overlay in (
        ("data", "Inverse problem: t given x is multi-valued", None),
        ("mse_fit", "Squared error learns the conditional mean", mse_np),
        ("mdn_samples", "MDN samples cover every branch", mdn_np),
    ):
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.scatter(xs, ts, s=4, alpha=0.4, color="tab:blue", label="data")
        if overlay is not None:
            ax.scatter(xs, overlay, s=4, alpha=0.6, color="tab:red", label="prediction")
        ax.set(xlabel="x", ylabel="t", title=title)
        ax.legend(loc="upper left")
        save_figure(fig, f"{out}/{name}_{suffix}.png")
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
    print(f"result: {path}\nfigures: {out}/{name}_{{data,mse_fit,mdn_samples}}.png")
    return metrics


if __name__ == "__main__":
    main()

"""Figures of a World Models run: V's reconstructions and prior samples, the controller's curve, episode GIFs."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from dreamlab.figures import save_figure, save_gif
from dreamlab.results import CurveLog
from dreamlab.worldmodels.vae import ConvVAE, frames_to_tensor, tensor_to_frames


def _grid(rows: list[np.ndarray], labels: list[str], title: str) -> plt.Figure:
    columns = len(rows[0])
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.3 * columns, 1.4 * len(rows)), squeeze=False)
    for r, (images, label) in enumerate(zip(rows, labels, strict=True)):
        for c in range(columns):
            axes[r, c].imshow(images[c])
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(label)
    fig.suptitle(title)
    return fig


@torch.no_grad()
def save_reconstructions(vae: ConvVAE, frames: np.ndarray, path: str | os.PathLike) -> Path:
    """Real frames (uint8, N x 64 x 64 x 3) above V's reconstructions of them (decoded from the mean)."""
    reference = next(vae.parameters())
    images = frames_to_tensor(torch.from_numpy(frames).to(reference.device), reference.dtype)
    mu, _ = vae.encode(images)
    decoded = tensor_to_frames(vae.decode(mu)).cpu().numpy()
    return save_figure(_grid([frames, decoded], ["real", "V(real)"], "V: frames and reconstructions"), path)


@torch.no_grad()
def save_prior_samples(vae: ConvVAE, count: int, seed: int, path: str | os.PathLike) -> Path:
    """Frames decoded from z ~ N(0, I): what V imagines when M is not steering it."""
    reference = next(vae.parameters())
    generator = torch.Generator(device=reference.device).manual_seed(seed)
    z = torch.randn((2 * count, vae.z_dim), generator=generator, device=reference.device, dtype=reference.dtype)
    decoded = tensor_to_frames(vae.decode(z)).cpu().numpy()
    return save_figure(_grid([decoded[:count], decoded[count:]], ["z~N(0,I)", ""], "V: samples from the prior"), path)


def save_controller_curve(curve: CurveLog, path: str | os.PathLike, trained_in: str, solved: float | None) -> Path:
    """Score over CMA-ES generations: population mean and best where C trains, and the real score of the mean."""
    fig, ax = plt.subplots(figsize=(7, 4))
    generations = curve.column("generation")
    ax.plot(generations, curve.column("mean_score"), label=f"population mean ({trained_in})", alpha=0.8)
    ax.plot(generations, curve.column("best_score"), label=f"population best ({trained_in})", alpha=0.8)
    real_rows = [row for row in curve.rows if "real_mean" in row]
    if real_rows:
        x = np.asarray([row["generation"] for row in real_rows])
        mean = np.asarray([row["real_mean"] for row in real_rows])
        std = np.asarray([row["real_std"] for row in real_rows])
        ax.errorbar(x, mean, yerr=std, fmt="o-", capsize=3, color="black", label="real env, CMA-ES mean (+- std)")
    if solved is not None:
        ax.axhline(solved, color="grey", linestyle="--", label=f"solved ({solved:g})")
    ax.set_xlabel("CMA-ES generation")
    ax.set_ylabel("episode return")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def save_episode_gif(frames: np.ndarray, path: str | os.PathLike, max_frames: int = 300, fps: float = 20.0) -> Path:
    """An episode as a GIF, keeping every k-th frame so that at most ``max_frames`` remain (small files)."""
    stride = max(1, int(np.ceil(len(frames) / max_frames)))
    return save_gif(np.asarray(frames)[::stride], path, fps=fps)


@torch.no_grad()
def decode_frames(vae: ConvVAE, z: torch.Tensor) -> np.ndarray:
    """Decode a sequence of z's (T, D) to uint8 frames (T, 64, 64, 3)."""
    reference = next(vae.parameters())
    return tensor_to_frames(vae.decode(z.to(reference.device, reference.dtype))).cpu().numpy()


@dataclass
class TestedRun:
    """One World Models run as the core comparison shows it: its real checks over generations (``curve`` rows with
    ``real_mean``/``real_std``), the generation whose controller was tested and that test's fresh real returns."""

    label: str
    curve: CurveLog
    check_episodes: int
    tested_generation: int
    final_returns: np.ndarray
    # Iterative training (``--iterations``): each round's tested mean and std on the final test's episodes, round
    # 0 first; empty for a run of one round.
    rounds: list[dict] = field(default_factory=list)


def c_seed(config: dict) -> int:
    """C's seed in a result's config: ``c_seed``, or ``seed`` where it is -1 (results from before C had a seed of
    its own used 0)."""
    seed = config.get("c_seed", 0)
    return config["seed"] if seed < 0 else seed


def load_tested_run(path: str | os.PathLike) -> tuple[dict, TestedRun]:
    """A World Models result file and its run as `TestedRun`, the curve (in the same folder) cut at the generation
    the result evaluated."""
    path = Path(path)
    result = json.loads(path.read_text())
    # A result saved part-way through a longer run shares the run's curve file, named after config.name when the
    # run was given one.
    curve = CurveLog.from_csv(path.parent / f"{result['config']['name'] or path.stem}_curve.csv")
    curve.rows = [row for row in curve.rows if row["generation"] <= result["metrics"]["generations"]]
    tested = TestedRun(
        label=f"C seed {c_seed(result['config'])}",
        curve=curve,
        check_episodes=result["config"]["real_eval_episodes"],
        # Results written before the choice existed tested the last generation's mean.
        tested_generation=result["metrics"].get("final_controller_generation", result["metrics"]["generations"]),
        final_returns=np.asarray(result["metrics"]["real_episode_returns"], dtype=float),
        rounds=result["metrics"].get("rounds", []),
    )
    return result, tested


def save_core_comparison(runs: dict[str, list[TestedRun]], path: str | os.PathLike, solved: float | None) -> Path:
    """The MDN-LSTM vs MDN-DNC figure: each run's real checks over CMA-ES generations (C trained in its dream),
    mean +- standard error, with the tested controller's check starred (one colour per core, one line style per
    run of that core, e.g. per C seed); and per core the tested controllers' fresh real returns, pooled over its
    runs, with each run's mean as a dot.
    """
    fig, (curve_ax, final_ax) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ("-", "--", ":", "-.")
    for (core, core_runs), colour in zip(runs.items(), colours, strict=False):
        for index, run in enumerate(core_runs):
            real_rows = [row for row in run.curve.rows if "real_mean" in row]
            x = np.asarray([row["generation"] for row in real_rows])
            mean = np.asarray([row["real_mean"] for row in real_rows])
            stderr = np.asarray([row["real_std"] for row in real_rows]) / np.sqrt(run.check_episodes)
            label = f"MDN-{core.upper()} {run.label} ({run.check_episodes} episodes a check)"
            curve_ax.plot(x, mean, "o", linestyle=styles[index % len(styles)], color=colour, label=label)
            curve_ax.fill_between(x, mean - stderr, mean + stderr, color=colour, alpha=0.12)
            tested = x == run.tested_generation
            curve_ax.plot(x[tested], mean[tested], "*", markersize=16, color=colour)
    cores = list(runs)
    pooled = [np.concatenate([run.final_returns for run in runs[core]]) for core in cores]
    final_ax.boxplot(pooled, showmeans=True)
    for i, core in enumerate(cores, start=1):
        run_means = [float(np.mean(run.final_returns)) for run in runs[core]]
        final_ax.plot([i - 0.25] * len(run_means), run_means, "o", color="black", markersize=4)
        final_ax.annotate(
            f"{np.mean(pooled[i - 1]):.0f}", (i, np.mean(pooled[i - 1])), xytext=(8, 0), textcoords="offset points"
        )
    final_ax.set_xticks(range(1, len(cores) + 1), [f"MDN-{core.upper()}\n{len(runs[core])} run(s)" for core in cores])
    for ax in (curve_ax, final_ax):
        if solved is not None:
            ax.axhline(solved, color="grey", linestyle="--", label=f"solved ({solved:g})")
        ax.grid(alpha=0.3)
    curve_ax.set_xlabel("CMA-ES generation (C trained in the dream)")
    curve_ax.set_ylabel("real return at each check (mean +- s.e.)")
    curve_ax.set_title("star: the controller tested on fresh episodes", fontsize=9)
    curve_ax.legend(loc="best", fontsize=7)
    final_ax.set_ylabel("tested controllers, fresh real episodes (dots: run means)")
    return save_figure(fig, path)


def save_iteration_rounds(runs: dict[str, list[TestedRun]], path: str | os.PathLike, solved: float | None) -> Path:
    """Iterative training, round by round: each iterated run's tested controller per round (mean +- standard error
    on the same fresh real episodes every round), one colour per core, one line style per run of that core."""
    fig, ax = plt.subplots(figsize=(6, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ("-", "--", ":", "-.")
    for (core, core_runs), colour in zip(runs.items(), colours, strict=False):
        for index, run in enumerate(r for r in core_runs if r.rounds):
            mean = np.asarray([row["real_mean"] for row in run.rounds])
            stderr = np.asarray([row["real_std"] for row in run.rounds]) / np.sqrt(len(run.final_returns))
            x = np.arange(len(mean))
            style = styles[index % len(styles)]
            ax.errorbar(x, mean, stderr, marker="o", linestyle=style, color=colour, capsize=3)
            ax.plot([], [], marker="o", linestyle=style, color=colour, label=f"MDN-{core.upper()} {run.label}")
            ax.annotate(f"{mean[-1]:.0f}", (x[-1], mean[-1]), xytext=(6, 0), textcoords="offset points")
    if solved is not None:
        ax.axhline(solved, color="grey", linestyle="--", label=f"solved ({solved:g})")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("round of iterative training (0: C from random rollouts only)")
    ax.set_ylabel("tested controller, fresh real episodes (mean +- s.e.)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    return save_figure(fig, path)


def save_temperature_calibration(runs: dict[str, dict], path: str | os.PathLike) -> Path:
    """Dream score of each run's tested controller against M's temperature (mean +- standard error), with the
    controller's real check score as a dashed line of the same colour and the calibrated temperature circled.
    ``runs``: {label: {"temperatures", "dream_means", "dream_stderrs", "real_check", "calibrated"}}."""
    fig, ax = plt.subplots(figsize=(6, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (label, run), colour in zip(runs.items(), colours, strict=False):
        taus, means = run["temperatures"], run["dream_means"]
        ax.errorbar(taus, means, yerr=run["dream_stderrs"], fmt="o-", capsize=3, color=colour, label=f"{label}: dream")
        ax.axhline(run["real_check"], color=colour, linestyle="--", label=f"{label}: real (its checks)")
        if run["calibrated"] is not None:
            ax.plot(run["calibrated"], means[taus.index(run["calibrated"])], "o", ms=14, mfc="none", color=colour)
    ax.set_xlabel("temperature tau of M's sampling")
    ax.set_ylabel("tested controller's return")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)

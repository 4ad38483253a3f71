"""PPO + Random Network Distillation on PixelCopter from pixels, with or without the extrinsic reward, as
``run(config)``: train (resumably), then play 100 evaluation episodes of the sampled and of the greedy policy.

    from dreamlab.config import make_config
    from dreamlab.rnd import PRESETS, RNDConfig
    from dreamlab.rnd.pixelcopter_study import run
    metrics = run(make_config(RNDConfig, PRESETS, "fast", extrinsic_coef=0.0))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import dreamlab.envs  # noqa: F401  (registers dreamlab/PixelCopter-v0)
from dreamlab.checkpoint import Checkpointer
from dreamlab.progress import tensorboard_dir
from dreamlab.results import CurveLog, write_result
from dreamlab.rnd.agent import RNDPPO
from dreamlab.rnd.config import EVAL_POLICIES, RNDConfig
from dreamlab.runs import run_directory

# (results folder, result name, config, training curves, the recorded evaluation episode's frames)
Figures = Callable[[Path, str, RNDConfig, CurveLog, list[np.ndarray]], None]


def default_name(config: RNDConfig) -> str:
    """ext_int or int_only (by whether the extrinsic reward counts), smoke_-prefixed for the smoke preset."""
    stream = "ext_int" if config.extrinsic_coef > 0 else "int_only"
    return stream if config.preset != "smoke" else f"smoke_{stream}"


def run(config: RNDConfig, figures: Figures | None = None) -> dict[str, Any]:
    """Train (or resume) in ``config.run_dir`` (default runs/rnd_pixelcopter/<name>), evaluate both policies, call
    ``figures(out, name, config, curves, frames)`` with the recorded episode of the headline policy, and write the
    result to <results_dir>/rnd/<name>_pixelcopter.json; returns its metrics."""
    name = config.name or default_name(config)
    run_dir = Path(config.run_dir or f"runs/rnd_pixelcopter/{name}")
    out = Path(config.results_dir) / "rnd"
    with run_directory(run_dir, out):
        return _run(config, name, run_dir, out, figures)


def _run(config: RNDConfig, name: str, run_dir: Path, out: Path, figures: Figures | None) -> dict[str, Any]:
    agent = RNDPPO(config.env_id, config)
    # Resumes from the run's checkpoint; the loop checks the networks finite when loaded and when trained.
    agent.learn(
        config.total_env_steps, checkpointer=Checkpointer(run_dir, config), tensorboard=tensorboard_dir(config, run_dir)
    )

    agent.curves.to_csv(out / f"{name}_pixelcopter_curves.csv")

    with agent.timer.stage("evaluate"):
        by_policy = {
            policy: agent.evaluate(
                config.eval_episodes,
                config.eval_max_episode_steps,
                greedy=policy == "greedy",
                record_episode=policy == config.eval_policy,
            )
            for policy in EVAL_POLICIES
        }
    evaluation = by_policy[config.eval_policy]
    if figures is not None:
        figures(out, name, config, agent.curves, evaluation["frames"])
    returns, lengths = evaluation["returns"], evaluation["lengths"]
    metrics = {
        "eval_policy": config.eval_policy,
        "eval_episode_returns": returns,
        "eval_episode_lengths": lengths,
        "eval_episodes_truncated": sum(evaluation["truncated"]),
        "eval_mean_return": float(np.mean(returns)),
        "eval_std_return": float(np.std(returns)),
        "eval_mean_length": float(np.mean(lengths)),
        "eval_mean_return_by_policy": {p: float(np.mean(e["returns"])) for p, e in by_policy.items()},
        "eval_mean_length_by_policy": {p: float(np.mean(e["lengths"])) for p, e in by_policy.items()},
        "env_steps": agent.env_steps,
        "obs_norm_init_env_steps": config.num_envs * config.obs_norm_init_steps,
        "updates": agent.updates,
        "train_episodes": agent.episodes,
        "final_train_return_last100": agent.curves.rows[-1].get("extrinsic_return", math.nan)
        if agent.curves.rows
        else math.nan,
    }
    path = write_result(
        "rnd",
        f"{name}_pixelcopter",
        experiment="rnd_pixelcopter",
        config=config,
        metrics=metrics,
        wall_seconds=agent.timer.total,
        stages=agent.timer.seconds,
        results_dir=config.results_dir,
    )
    print(
        f"{config.eval_policy} evaluation over {len(returns)} episodes: return {metrics['eval_mean_return']:.2f} "
        f"+- {metrics['eval_std_return']:.2f}, length {metrics['eval_mean_length']:.1f} "
        f"(mean returns by policy: {metrics['eval_mean_return_by_policy']}); wrote {path}",
        flush=True,
    )
    agent.close()
    return metrics

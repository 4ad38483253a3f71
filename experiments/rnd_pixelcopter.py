"""PPO + Random Network Distillation on PixelCopter from pixels, with or without the extrinsic reward.

    python experiments/rnd_pixelcopter.py --preset fast                        # extrinsic + intrinsic
    python experiments/rnd_pixelcopter.py --preset fast --extrinsic_coef 0     # intrinsic only

Checkpoints go to runs/rnd_pixelcopter/<name>/; rerunning the same command resumes (a larger
--total_env_steps extends a finished run). Writes results/rnd/<name>_pixelcopter.json with 100 evaluation
episodes of the sampled and of the greedy policy (``--eval_policy`` picks the headline one), the training curves
(CSV + PNG) and a GIF of one evaluation episode.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import dreamlab.envs  # noqa: F401  (registers dreamlab/PixelCopter-v0)
from dreamlab.checkpoint import Checkpointer
from dreamlab.config import parse_config
from dreamlab.figures import save_figure, save_gif
from dreamlab.progress import tensorboard_dir
from dreamlab.results import write_result
from dreamlab.rnd import EVAL_POLICIES, PRESETS, RNDPPO, RNDConfig
from dreamlab.runs import check_finite_module, cli, run_directory

GIF_FRAMES = 450  # 15 s of play at 30 fps
CURVE_PANELS = (
    ("extrinsic_return", "extrinsic return (last 100 episodes)"),
    ("episode_length", "episode length (last 100 episodes)"),
    ("intrinsic_reward", "intrinsic reward (normalised, per step)"),
    ("value_loss_ext", "extrinsic value loss"),
    ("value_loss_int", "intrinsic value loss"),
    ("predictor_loss", "RND predictor loss"),
)


def default_name(config: RNDConfig) -> str:
    stream = "ext_int" if config.extrinsic_coef > 0 else "int_only"
    return stream if config.preset != "smoke" else f"smoke_{stream}"


def plot_curves(rows: list[dict], title: str):
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    steps = [row["env_steps"] / 1e6 for row in rows]
    for ax, (key, label) in zip(axes.flat, CURVE_PANELS, strict=True):
        ax.plot(steps, [row[key] for row in rows])
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("env steps (millions)")
        if key.startswith(("value_loss", "predictor")):
            ax.set_yscale("log")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def check_agent_finite(agent: RNDPPO, when: str) -> None:
    """Stop on NaN or infinite weights in the policy or the RND predictor (after loading, after training)."""
    check_finite_module(agent.policy, f"policy of {when}")
    check_finite_module(agent.rnd, f"RND networks of {when}")


@cli
def main(argv: list[str] | None = None) -> Path:
    config = parse_config(RNDConfig, PRESETS, argv, description=__doc__)
    name = config.name or default_name(config)
    run_dir = Path(config.run_dir or f"runs/rnd_pixelcopter/{name}")
    out = Path(config.results_dir) / "rnd"
    with run_directory(run_dir, out):
        return run(config, name, run_dir, out)


def run(config: RNDConfig, name: str, run_dir: Path, out: Path) -> Path:
    """Train (or resume) in ``run_dir``, evaluate, and write the result and figures to ``out``."""
    checkpointer = Checkpointer(run_dir, config)
    agent = RNDPPO(config.env_id, config)
    state = checkpointer.load()
    if state is not None:
        agent.load_state_dict(state)
        check_agent_finite(agent, f"checkpoint {checkpointer.path}")
        print(f"resumed {run_dir} at {agent.env_steps} env steps, update {agent.updates}", flush=True)
    agent.learn(config.total_env_steps, checkpointer=checkpointer, tensorboard=tensorboard_dir(config, run_dir))
    check_agent_finite(agent, f"the agent at {agent.env_steps} env steps")

    agent.curves.to_csv(out / f"{name}_pixelcopter_curves.csv")
    title = f"PPO + RND on PixelCopter, extrinsic_coef={config.extrinsic_coef}"
    save_figure(plot_curves(agent.curves.rows, title), out / f"{name}_pixelcopter_curves.png")

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
    # 48 x 48 frames scaled 3x so the copter is visible; at most GIF_FRAMES frames keep the file small.
    frames = np.stack(evaluation["frames"][:GIF_FRAMES]).repeat(3, axis=1).repeat(3, axis=2)
    save_gif(frames, out / f"{name}_pixelcopter_episode.gif", fps=30)
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
        "final_train_return_last100": agent.curves.rows[-1]["extrinsic_return"] if agent.curves.rows else math.nan,
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
    return path


if __name__ == "__main__":
    main()

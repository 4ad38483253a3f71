"""Configuration of PPO + RND runs, with the paper's hyperparameters (Burda et al. 2018, table 5) as defaults."""

from __future__ import annotations

import dataclasses
import typing
from typing import ClassVar, Literal

from dreamlab.config import RunConfig, in_range, non_negative, positive
from dreamlab.runs import UserError

EvalPolicy = Literal["sampled", "greedy"]
EVAL_POLICIES: tuple[str, ...] = typing.get_args(EvalPolicy)


@dataclasses.dataclass
class RNDConfig(RunConfig):
    """PPO with Random Network Distillation on a discrete-action gymnasium environment."""

    env_id: str = "dreamlab/PixelCopter-v0"
    obs_type: str = "pixels"  # passed to the environment as obs_type=...; empty for environments without it
    num_envs: int = 32
    rollout_steps: int = 128
    total_env_steps: int = 5_000_000
    max_episode_steps: int = 0  # training time limit (0 = none; truncations bootstrap V_E)
    frame_stack: int = 4  # frames the policy sees; the RND networks see only the newest
    grayscale: bool = True
    sticky_action_prob: float = 0.0  # Machado et al. sticky actions (the paper uses 0.25 on Atari)
    recurrent: bool = False  # GRU policy
    hidden_size: int = 448
    rnd_output_size: int = 512
    gamma_ext: float = 0.999
    gamma_int: float = 0.99
    gae_lambda: float = 0.95
    extrinsic_coef: float = 2.0  # advantage = extrinsic_coef * A_E + intrinsic_coef * A_I; 0 = intrinsic only
    intrinsic_coef: float = 1.0
    # Divide extrinsic rewards by the running std of their episodic discounted return (not in the paper, which
    # clips Atari rewards to [-1, 1]); keeps V_E's targets near unit scale as the returns grow.
    normalize_extrinsic: bool = False
    clip_coef: float = 0.1
    update_epochs: int = 4
    num_minibatches: int = 4
    entropy_coef: float = 0.001
    value_coef: float = 1.0
    learning_rate: float = 1e-4
    max_grad_norm: float = 0.5
    normalize_advantages: bool = True
    predictor_update_fraction: float = 0.25
    obs_clip: float = 5.0
    obs_norm_init_steps: int = 256  # random-policy steps per environment before training
    eval_episodes: int = 100
    eval_max_episode_steps: int = 10_000
    # The result's headline evaluation: "sampled" acts from the policy's distribution (as in training), "greedy"
    # takes its most likely action (Stable-Baselines3's deterministic evaluation). Both are run and reported.
    eval_policy: EvalPolicy = "sampled"
    checkpoint_every: int = 10  # updates between checkpoints

    RESUMABLE_FIELDS: ClassVar[tuple[str, ...]] = (
        "total_env_steps",
        "eval_episodes",
        "eval_max_episode_steps",
        "eval_policy",
        "checkpoint_every",
    )

    def validate(self) -> None:
        """Raise :class:`~dreamlab.runs.UserError` naming the first field whose value cannot work."""
        super().validate()
        positive(self, "num_envs", "rollout_steps", "frame_stack", "update_epochs", "num_minibatches", "hidden_size")
        positive(self, "rnd_output_size", "total_env_steps", "learning_rate", "clip_coef", "max_grad_norm")
        positive(self, "obs_clip", "eval_episodes", "eval_max_episode_steps", "checkpoint_every")
        non_negative(self, "max_episode_steps", "entropy_coef", "value_coef")
        batch = self.num_envs * self.rollout_steps
        if batch % self.num_minibatches:
            raise UserError(f"num_envs * rollout_steps = {batch} must be divisible by --num_minibatches")
        if self.recurrent and self.num_envs % self.num_minibatches:
            raise UserError("a recurrent policy splits minibatches by environment: num_envs % num_minibatches != 0")
        if not 0.0 < self.predictor_update_fraction <= 1.0:
            raise UserError(f"--predictor_update_fraction must be in (0, 1], got {self.predictor_update_fraction}")
        if not 0.0 <= self.sticky_action_prob < 1.0:
            raise UserError(f"--sticky_action_prob must be in [0, 1), got {self.sticky_action_prob}")
        for field in ("gamma_ext", "gamma_int", "gae_lambda"):
            in_range(self, field, 0.0, 1.0)
        non_negative(self, "extrinsic_coef", "intrinsic_coef")
        if self.extrinsic_coef + self.intrinsic_coef == 0:
            raise UserError("--extrinsic_coef and --intrinsic_coef must not both be 0")
        if self.obs_norm_init_steps < 1:
            raise UserError("--obs_norm_init_steps must be >= 1: the predictor's input statistics need random steps")
        init_steps = self.num_envs * self.obs_norm_init_steps
        if self.total_env_steps <= init_steps:
            raise UserError(
                f"--total_env_steps {self.total_env_steps} leaves no training: the random-policy initialisation "
                f"alone takes num_envs * obs_norm_init_steps = {init_steps} steps"
            )


PRESETS: dict[str, dict] = {
    "smoke": {
        "num_envs": 4,
        "rollout_steps": 32,
        "total_env_steps": 1024,
        "obs_norm_init_steps": 16,
        "eval_episodes": 4,
        "eval_max_episode_steps": 200,
        "checkpoint_every": 2,
    },
    "fast": {},
    "paper": {"total_env_steps": 30_000_000, "obs_norm_init_steps": 50 * 128},
}

"""PPO with Random Network Distillation (Burda et al. 2018): intrinsic rewards from a distilled random network."""

from dreamlab.rnd.agent import RNDPPO, Rollout
from dreamlab.rnd.config import EVAL_POLICIES, PRESETS, RNDConfig
from dreamlab.rnd.environment import FrameStack, make_vector_env, preprocess, sticky_actions
from dreamlab.rnd.losses import (
    categorical_log_prob_entropy,
    ppo_clipped_policy_loss,
    predictor_loss,
    predictor_sample_indices,
    value_loss,
)
from dreamlab.rnd.networks import ActorCritic, RandomNetworkDistillation
from dreamlab.rnd.normalizers import ObservationNormalizer, RewardNormalizer
from dreamlab.rnd.returns import discounted_return_filter, gae_advantages

__all__ = [
    "EVAL_POLICIES",
    "PRESETS",
    "RNDPPO",
    "ActorCritic",
    "FrameStack",
    "ObservationNormalizer",
    "RNDConfig",
    "RandomNetworkDistillation",
    "RewardNormalizer",
    "Rollout",
    "categorical_log_prob_entropy",
    "discounted_return_filter",
    "gae_advantages",
    "make_vector_env",
    "ppo_clipped_policy_loss",
    "predictor_loss",
    "predictor_sample_indices",
    "preprocess",
    "sticky_actions",
    "value_loss",
]

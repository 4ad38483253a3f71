"""World Models (Ha & Schmidhuber 2018): V (ConvVAE), M (MDN-RNN with a pluggable core) and C (linear, CMA-ES),
trained from random rollouts, with C trained in the real environment or entirely inside M's dream."""

from dreamlab.worldmodels.controller import LinearController
from dreamlab.worldmodels.cores import (
    DNCCore,
    LSTMCore,
    RecurrentCore,
    detach_state,
    make_core,
    register_core,
    reset_state,
    select_state,
)
from dreamlab.worldmodels.dream import Dream, sample_mixture_from_noise
from dreamlab.worldmodels.iterative import collect_controller_rollouts
from dreamlab.worldmodels.loading import WorldModel
from dreamlab.worldmodels.mdnrnn import MDNRNN, MDNOutput, mdnrnn_loss
from dreamlab.worldmodels.real import (
    AgentSpec,
    agent_spec,
    evaluate_real,
    play_episodes,
    play_population,
    real_population_returns,
    record_rollouts,
)
from dreamlab.worldmodels.rollouts import (
    ROLLOUT_KEYS,
    collect_rollout,
    collect_rollouts,
    is_intact,
    load_rollout,
    rollout_path,
)
from dreamlab.worldmodels.sequences import EpisodeStreams, LatentEpisodes, make_chunk
from dreamlab.worldmodels.tasks import TASKS, Task, get_task
from dreamlab.worldmodels.training import (
    Evolution,
    encode_rollouts,
    evolve_controller,
    load_frames,
    load_latents,
    train_mdnrnn,
    train_vae,
)
from dreamlab.worldmodels.vae import ConvVAE, frames_to_tensor, kl_to_standard_normal, tensor_to_frames, vae_loss

__all__ = [
    "MDNRNN",
    "ROLLOUT_KEYS",
    "TASKS",
    "AgentSpec",
    "ConvVAE",
    "DNCCore",
    "Dream",
    "EpisodeStreams",
    "Evolution",
    "LSTMCore",
    "LatentEpisodes",
    "LinearController",
    "MDNOutput",
    "RecurrentCore",
    "Task",
    "WorldModel",
    "agent_spec",
    "collect_controller_rollouts",
    "collect_rollout",
    "collect_rollouts",
    "detach_state",
    "encode_rollouts",
    "evaluate_real",
    "evolve_controller",
    "frames_to_tensor",
    "get_task",
    "is_intact",
    "kl_to_standard_normal",
    "load_frames",
    "load_latents",
    "load_rollout",
    "make_chunk",
    "make_core",
    "mdnrnn_loss",
    "play_episodes",
    "play_population",
    "real_population_returns",
    "record_rollouts",
    "register_core",
    "reset_state",
    "rollout_path",
    "sample_mixture_from_noise",
    "select_state",
    "tensor_to_frames",
    "train_mdnrnn",
    "train_vae",
    "vae_loss",
]

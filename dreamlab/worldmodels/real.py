"""Playing controllers in the real environment: V encodes each frame, M keeps its state, C acts.

Episodes are grouped into picklable jobs; the weights they need (V's encoder and M, a few MB) travel once per
map as an :class:`AgentSpec` shared by its jobs, so the same jobs run in local worker processes or on Ray nodes
without a shared file system.

A job plays its episodes ``games`` at a time: every step, the frames of all running games go through V, M and C as
one batch (at batch 8, V costs ~0.4 ms a frame instead of 1.2 ms), and a finished game's slot starts the job's
next episode. Each episode's z noise comes from its own generator seeded by the episode seed, so a game's actions
do not depend on which other games share its batch (results/worldmodels/real_benchmark.json measures the speed).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from dreamlab.files import npz_bytes
from dreamlab.parallel import WorkerPool
from dreamlab.worldmodels.controller import LinearController, controller_features, controller_input_size
from dreamlab.worldmodels.cores import reset_state, select_state
from dreamlab.worldmodels.mdnrnn import MDNRNN
from dreamlab.worldmodels.rollouts import rollout_bytes
from dreamlab.worldmodels.tasks import get_task
from dreamlab.worldmodels.vae import ConvVAE, frames_to_tensor


@dataclass(frozen=True)
class AgentSpec:
    """How to rebuild V's encoder, M and C in another process: their sizes and weights (CPU tensors)."""

    task: str
    z_dim: int
    hidden_size: int
    n_components: int
    core: str
    core_options: dict[str, Any]
    include_cell: bool
    vae_state: dict[str, torch.Tensor]
    model_state: dict[str, torch.Tensor]
    z_only: bool = False  # C reads z alone (the paper's ablation)


def agent_spec(
    task: str,
    vae: ConvVAE,
    model: MDNRNN,
    hidden_size: int,
    core: str,
    core_options: dict,
    include_cell: bool,
    z_only: bool = False,
) -> AgentSpec:
    # The decoder is not needed to act: leave its weights out of what travels to the workers.
    encoder_state = {
        k: v.detach().cpu().float() for k, v in vae.state_dict().items() if not k.startswith(("decoder", "from_z"))
    }
    model_state = {k: v.detach().cpu().float() for k, v in model.state_dict().items()}
    return AgentSpec(
        task,
        vae.z_dim,
        hidden_size,
        model.n_components,
        core,
        dict(core_options),
        include_cell,
        encoder_state,
        model_state,
        z_only,
    )


@dataclass(frozen=True)
class EpisodeJob:
    """Episodes for one worker: (candidate row of ``params``, episode seed) pairs, played ``games`` at a time.

    ``no_progress_steps`` > 0 ends an episode once the task's progress counter (CarRacing: road tiles visited) has
    not grown for that many steps -- a common CarRacing practice to cut CMA-ES's training episodes short. Only
    training fitness uses it; real checks and the final test (:func:`evaluate_real`) always play whole episodes.
    """

    params: np.ndarray  # (candidates, n_params)
    episodes: tuple[tuple[int, int], ...]
    max_steps: int
    games: int = 1
    no_progress_steps: int = 0
    env_options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the task's make_env
    record: bool = False  # keep the frames of the job's first episode (for a GIF)
    # Return every episode as a rollout file (frames, actions, rewards, dones) and as its latent file (V's mu and
    # logvar of each frame, which the agent computed anyway to act: the latents of `training.encode_rollouts`).
    keep_rollouts: bool = False


@dataclass(frozen=True)
class EpisodeResult:
    candidate: int
    seed: int
    episode_return: float
    steps: int
    frames: np.ndarray | None
    stopped_early: bool = False  # ended by no_progress_steps, not by the game
    rollout: bytes | None = None  # the episode as a rollout file (`dreamlab.worldmodels.rollouts`), if kept
    latents: bytes | None = None  # and as a latent file (`dreamlab.worldmodels.training.LATENT_KEYS`), if kept


class Agent:
    """V + M + C acting in ``games`` real games at once, one frame per game per step, as one batch.

    Row i of the batch is a game played by candidate ``candidates[i]`` (a row of ``params``) with its own M state
    and its own generator for V's posterior samples. After each `act`, ``posterior`` is V's (mu, logvar) of the
    frames it acted on.
    """

    def __init__(self, spec: AgentSpec, params: np.ndarray, games: int = 1):
        if games < 1:
            raise ValueError(f"games must be >= 1, got {games}")
        self.task = get_task(spec.task)
        self.spec = spec
        self.vae = ConvVAE(spec.z_dim)
        self.vae.load_state_dict(spec.vae_state, strict=False)
        self.model = MDNRNN(
            spec.z_dim,
            self.task.action_feature_size,
            spec.hidden_size,
            spec.n_components,
            spec.core,
            predict_done=any(k.startswith("done_head") for k in spec.model_state),
            core_options=spec.core_options,
        )
        self.model.load_state_dict(spec.model_state)
        self.vae.eval()
        self.model.eval()
        feature_size = controller_input_size(spec.z_dim, self.model.core, spec.include_cell, spec.z_only)
        self.controller = LinearController(feature_size, self.task)
        params = torch.as_tensor(np.atleast_2d(np.asarray(params)), dtype=torch.float32)
        self.weights, self.bias = self.controller.unflatten(params)
        self.initial = self.model.initial_state(1)
        self.state = self.model.initial_state(games)
        self.candidates = torch.zeros(games, dtype=torch.long)
        self.generators = [torch.Generator() for _ in range(games)]
        self.posterior: tuple[torch.Tensor, torch.Tensor] | None = None

    def start(self, row: int, seed: int, candidate: int = 0) -> None:
        """Start an episode in batch row ``row``: M's initial state, the candidate, the seed of V's samples."""
        mask = torch.zeros(len(self.generators), dtype=torch.bool)
        mask[row] = True
        self.state = reset_state(self.state, mask, self.initial)
        self.candidates[row] = candidate
        self.generators[row].manual_seed(seed)

    def reset(self, seed: int = 0) -> None:
        """Start an episode in row 0 (the one-game interface)."""
        self.start(0, seed)

    def keep(self, rows: Sequence[int]) -> None:
        """Keep only batch rows ``rows`` (games whose job has no episode left to start drop out)."""
        index = torch.as_tensor(list(rows), dtype=torch.long)
        self.state = select_state(self.state, index)
        self.candidates = self.candidates[index]
        self.generators = [self.generators[r] for r in rows]

    @torch.no_grad()
    def act(self, frames: np.ndarray) -> np.ndarray:
        """Actions for (rows, 64, 64, 3) uint8 frames, one per batch row (or one (64, 64, 3) frame); advances M."""
        single = frames.ndim == 3
        batch = torch.from_numpy(frames[None] if single else frames)
        # frames_to_tensor gives a channels-last view; the convolutions run several times faster on a contiguous
        # NCHW copy (5.0 vs 1.1 ms at batch 1 on CPU).
        mu, logvar = self.vae.encode(frames_to_tensor(batch, torch.float32).contiguous())
        self.posterior = mu, logvar
        # z is drawn from V's posterior, as in M's training data and the dream (where C sees sampled z's), rather
        # than its mean: a controller evolved on noisy z's meets the same kind of input in the real game.
        noise = torch.stack([torch.randn(self.spec.z_dim, generator=g) for g in self.generators])
        z = mu + torch.exp(0.5 * logvar) * noise
        features = controller_features(z, self.model.core, self.state, self.spec.include_cell, self.spec.z_only)
        action = self.controller.act(self.weights, self.bias, features, self.candidates)
        # Only M's state is needed to act: the core alone, without the mixture heads.
        inputs = torch.cat([z, self.task.action_features(action, torch.float32)], dim=-1)
        _, self.state = self.model.core(inputs, self.state)
        return action[0].numpy() if single else action.numpy()


class _Game:
    """One running episode: its env, where it is in the job, its running totals and what it records: the frames
    (``record``), or the whole episode as a rollout (``keep_rollout``: frames, actions, rewards and V's posterior
    of each frame)."""

    def __init__(self, env: gym.Env, index: int, candidate: int, seed: int, record: bool, keep_rollout: bool):
        self.env, self.index, self.candidate, self.seed = env, index, candidate, seed
        self.observation, _ = env.reset(seed=seed)
        self.frames: list[np.ndarray] | None = [] if record or keep_rollout else None
        self.actions: list[np.ndarray] | None = [] if keep_rollout else None
        self.posteriors: list[tuple[np.ndarray, np.ndarray]] | None = [] if keep_rollout else None
        self.rewards: list[float] = []
        self.total, self.steps, self.progress, self.progress_step = 0.0, 0, 0, 0

    def result(self, stopped_early: bool, terminated: bool) -> EpisodeResult:
        if self.actions is None:
            frames = np.stack(self.frames) if self.frames else None
            return EpisodeResult(self.candidate, self.seed, self.total, self.steps, frames, stopped_early)
        dones = np.zeros(self.steps, dtype=bool)
        dones[-1] = terminated  # as in random rollouts: only a game that ended itself is a death
        actions = np.stack(self.actions)
        rollout = {
            "frames": np.stack(self.frames).astype(np.uint8),
            "actions": actions,
            "rewards": np.asarray(self.rewards, dtype=np.float32),
            "dones": dones,
        }
        mu, logvar = (np.stack(x) for x in zip(*self.posteriors, strict=True))
        latents = npz_bytes(mu=mu, logvar=logvar, actions=actions, dones=dones)
        return EpisodeResult(
            self.candidate, self.seed, self.total, self.steps, None, stopped_early, rollout_bytes(rollout), latents
        )


def play_episodes(spec: AgentSpec, job: EpisodeJob) -> list[EpisodeResult]:
    """Play ``job.episodes`` (results in their order); a top-level function so worker processes can run it."""
    task = get_task(spec.task)
    if job.no_progress_steps > 0 and task.progress is None:
        raise ValueError(f"no_progress_steps needs a progress counter, which task {spec.task!r} does not have")
    games = min(job.games, len(job.episodes))
    agent = Agent(spec, job.params, games)
    envs = [task.make_env(job.max_steps, **job.env_options) for _ in range(games)]
    pending = deque(enumerate(job.episodes))
    results: list[EpisodeResult | None] = [None] * len(job.episodes)

    def start(row: int, env: gym.Env) -> _Game:
        index, (candidate, seed) = pending.popleft()
        agent.start(row, int(seed), int(candidate))
        return _Game(env, index, int(candidate), int(seed), job.record and index == 0, job.keep_rollouts)

    try:
        active = [start(row, env) for row, env in enumerate(envs)]
        while active:
            actions = agent.act(np.stack([game.observation for game in active]))
            mu, logvar = agent.posterior
            keep = []
            for row, game in enumerate(active):
                if game.frames is not None:
                    game.frames.append(game.observation)
                if game.actions is not None:  # stored as random rollouts store them (int64 index or float32)
                    game.actions.append(actions[row].astype(np.int64 if task.discrete else np.float32))
                    game.posteriors.append((mu[row].numpy(), logvar[row].numpy()))
                action = actions[row].item() if task.discrete else actions[row]
                game.observation, reward, terminated, truncated, _ = game.env.step(action)
                game.rewards.append(float(reward))
                game.total += float(reward)
                game.steps += 1
                stalled = job.no_progress_steps > 0 and _stalled(game, task.progress(game.env), job.no_progress_steps)
                if not (terminated or truncated or stalled):
                    keep.append(row)
                    continue
                results[game.index] = game.result(stalled and not (terminated or truncated), terminated)
                if pending:  # the slot plays the job's next episode
                    active[row] = start(row, game.env)
                    keep.append(row)
            if len(keep) < len(active):
                agent.keep(keep)
                active = [active[row] for row in keep]
    finally:
        for env in envs:
            env.close()
    return results


def _stalled(game: _Game, progress: int, limit: int) -> bool:
    """Record the game's progress counter; True once it has not grown for ``limit`` steps."""
    if progress > game.progress:
        game.progress, game.progress_step = progress, game.steps
    return game.steps - game.progress_step >= limit


def _run_jobs(pool: WorkerPool, spec: AgentSpec, jobs: list[EpisodeJob]) -> list[list[EpisodeResult]]:
    # The weights travel once per map (to each worker, or into Ray's object store), not once per job.
    return pool.map(play_episodes, jobs, shared=spec)


def _split(episodes: list[tuple[int, int]], pool: WorkerPool, games: int) -> list[tuple[tuple[int, int], ...]]:
    # A few jobs per worker balance the load (episode lengths vary 10x) without shipping the weights 100 times;
    # each job keeps at least ``games`` episodes, so its batch starts full.
    n_jobs = max(1, min(4 * max(1, pool.workers), math.ceil(len(episodes) / games)))
    return [tuple(episodes[i::n_jobs]) for i in range(n_jobs)]


def play_population(
    agent: AgentSpec,
    population: np.ndarray,
    seeds: Sequence[int],
    pool: WorkerPool,
    max_steps: int,
    games: int = 1,
    no_progress_steps: int = 0,
    env_options: Mapping[str, Any] | None = None,
) -> list[list[EpisodeResult]]:
    """Every candidate (row of ``population``) on the same episode seeds: results [candidate][seed index].

    ``no_progress_steps`` (training fitness only) ends an episode after that many steps without new progress.
    """
    population = np.atleast_2d(np.asarray(population))
    seeds = [int(s) for s in seeds]
    episodes = [(c, s) for c in range(len(population)) for s in seeds]
    jobs = [
        EpisodeJob(population, group, max_steps, games, no_progress_steps, dict(env_options or {}))
        for group in _split(episodes, pool, games)
    ]
    by_episode = {(r.candidate, r.seed): r for results in _run_jobs(pool, agent, jobs) for r in results}
    return [[by_episode[c, s] for s in seeds] for c in range(len(population))]


def real_population_returns(
    agent: AgentSpec,
    population: np.ndarray,
    seeds: Sequence[int],
    pool: WorkerPool,
    max_steps: int,
    games: int = 1,
    no_progress_steps: int = 0,
    env_options: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Real returns (P, len(seeds)) of every candidate on the same episode seeds (see :func:`play_population`)."""
    results = play_population(agent, population, seeds, pool, max_steps, games, no_progress_steps, env_options)
    return np.asarray([[r.episode_return for r in row] for row in results])


def evaluate_real(
    agent: AgentSpec,
    params: np.ndarray,
    seeds: Sequence[int],
    pool: WorkerPool,
    max_steps: int,
    record_first: bool = False,
    games: int = 1,
    env_options: Mapping[str, Any] | None = None,
) -> list[EpisodeResult]:
    """Play one whole episode per seed with one controller; results in seed order (frames of seeds[0] if asked).

    Real checks and the final test use this: episodes are never cut short here, whatever the training used.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("need at least one episode seed")
    params = np.atleast_2d(np.asarray(params))
    groups = _split([(0, s) for s in seeds], pool, games)
    jobs = [
        EpisodeJob(params, group, max_steps, games, 0, dict(env_options or {}), record_first and i == 0)
        for i, group in enumerate(groups)
    ]
    by_seed = {r.seed: r for results in _run_jobs(pool, agent, jobs) for r in results}
    return [by_seed[s] for s in seeds]


def record_rollouts(
    agent: AgentSpec,
    params: np.ndarray,
    seeds: Sequence[int],
    pool: WorkerPool,
    max_steps: int,
    games: int = 1,
    env_options: Mapping[str, Any] | None = None,
) -> list[EpisodeResult]:
    """Play one whole episode per seed with one controller and keep each as a rollout file's bytes
    (``EpisodeResult.rollout``, the format of random rollouts) and its latent file's (``EpisodeResult.latents``);
    results in seed order."""
    seeds = [int(s) for s in seeds]
    params = np.atleast_2d(np.asarray(params))
    jobs = [
        EpisodeJob(params, group, max_steps, games, 0, dict(env_options or {}), keep_rollouts=True)
        for group in _split([(0, s) for s in seeds], pool, games)
    ]
    by_seed = {r.seed: r for results in _run_jobs(pool, agent, jobs) for r in results}
    return [by_seed[s] for s in seeds]

"""PPO with Random Network Distillation: ``agent = RNDPPO(env_id, config); agent.learn(total_steps)``.

The training loop follows Algorithm 1 of Burda et al. (2018), "Exploration by Random Network Distillation":

    initialise observation normalisation with random-policy steps
    repeat:
        collect K steps in N environments; i_t = ||f_hat(s_{t+1}) - f(s_{t+1})||^2
        normalise the intrinsic rewards (by the running std of their discounted return); optionally the extrinsic
        returns and advantages for the intrinsic (non-episodic) and extrinsic (episodic) streams
        A = extrinsic_coef * A_E + intrinsic_coef * A_I
        update the observation normalisation with the rollout
        for each epoch and minibatch: PPO step on the policy, distillation step on the predictor
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from dreamlab.checkpoint import Checkpointer
from dreamlab.config import make_config
from dreamlab.grad_monitor import GradientMonitor, check_finite
from dreamlab.loop import TrainingLoop
from dreamlab.results import CurveLog, StageTimer
from dreamlab.rnd.config import PRESETS, RNDConfig
from dreamlab.rnd.environment import (
    FrameStack,
    final_observations,
    frame_shape,
    make_vector_env,
    preprocess,
    sticky_actions,
)
from dreamlab.rnd.losses import (
    categorical_log_prob_entropy,
    ppo_clipped_policy_loss,
    predictor_loss,
    predictor_sample_indices,
    value_loss,
)
from dreamlab.rnd.networks import ActorCritic, RandomNetworkDistillation
from dreamlab.rnd.normalizers import ObservationNormalizer, RewardNormalizer
from dreamlab.rnd.returns import gae_advantages
from dreamlab.runtime import resolve_device, resolve_dtype, seed_everything, set_threads

RECENT_EPISODES = 100  # episodes averaged in the logged return and length


@dataclasses.dataclass
class Rollout:
    """One batch B_i: (T, N) arrays, observations stacked for the policy and single next frames for RND."""

    obs: np.ndarray  # (T, N, k*C, H, W) or (T, N, k*D): what the policy saw
    episode_starts: np.ndarray  # (T, N) bool: obs[t] is an episode's first observation
    actions: np.ndarray  # (T, N) int64: the policy's actions (before sticky repetition)
    log_probs: np.ndarray  # (T, N)
    values_ext: np.ndarray  # (T, N)
    values_int: np.ndarray  # (T, N)
    rewards_ext: np.ndarray  # (T, N): the environment's rewards
    truncation_values_ext: np.ndarray  # (T, N): gamma_E V_E(final state) where a time limit cut the episode, else 0
    dones: np.ndarray  # (T, N) bool: the episode ended with this step
    next_frames: np.ndarray  # (T, N, *frame): s_{t+1}'s newest frame (the final frame where an episode ended)
    initial_state: torch.Tensor  # (N, hidden): recurrent state before obs[0]
    next_value_ext: np.ndarray  # (N,): V_E(s_T)
    next_value_int: np.ndarray  # (N,)
    intrinsic_rewards_raw: np.ndarray | None = None  # (T, N), filled by compute_intrinsic_rewards
    intrinsic_rewards: np.ndarray | None = None  # (T, N), normalised


class RNDPPO:
    """PPO + RND agent on a vectorised discrete-action gymnasium environment.

    ``RNDPPO("dreamlab/PixelCopter-v0")`` uses the ``fast`` preset of :class:`RNDConfig`; pass a config (from
    ``make_config(RNDConfig, PRESETS, ...)``) to change anything. ``learn`` trains (resumably, given a
    :class:`~dreamlab.checkpoint.Checkpointer`), ``evaluate`` plays whole episodes, ``state_dict`` /
    ``load_state_dict`` capture everything a resumed run needs. Environments that expose ``state_dict`` /
    ``load_state_dict`` resume mid-episode; others restart their episodes on resume.
    """

    def __init__(self, env_id: str | None = None, config: RNDConfig | None = None):
        config = config or make_config(RNDConfig, PRESETS, "fast")
        if env_id is not None and env_id != config.env_id:
            config = dataclasses.replace(config, env_id=env_id)
        config.validate()
        self.config = config
        set_threads(config.threads)
        self.device = resolve_device(config.device)
        self.dtype = resolve_dtype(config.dtype)
        self.rng = seed_everything(config.seed)
        self.envs = make_vector_env(
            config.env_id, config.num_envs, config.max_episode_steps or None, self._env_kwargs()
        )
        self.num_actions = int(self.envs.single_action_space.n)
        self.frame_shape = frame_shape(self.envs.single_observation_space, config.grayscale)
        self.frame_dtype = np.uint8 if len(self.frame_shape) == 3 else np.float32
        policy_obs_shape = (config.frame_stack * self.frame_shape[0], *self.frame_shape[1:])

        self.policy = ActorCritic(policy_obs_shape, self.num_actions, config.hidden_size, config.recurrent)
        self.policy.to(self.device, self.dtype)
        self.rnd = RandomNetworkDistillation(self.frame_shape, config.rnd_output_size).to(self.device, self.dtype)
        self.policy_optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.learning_rate)
        self.predictor_optimizer = torch.optim.Adam(self.rnd.predictor.parameters(), lr=config.learning_rate)
        self.policy_monitor = GradientMonitor(self.policy)
        self.predictor_monitor = GradientMonitor(self.rnd.predictor)

        self.obs_normalizer = ObservationNormalizer(self.frame_shape, config.obs_clip)
        self.reward_normalizer = RewardNormalizer(config.num_envs, config.gamma_int)
        self.extrinsic_normalizer = (
            RewardNormalizer(config.num_envs, config.gamma_ext) if config.normalize_extrinsic else None
        )
        self.curves = CurveLog()  # from the first learn on, its training loop's curve and timer
        self.timer = StageTimer()
        self._loop: TrainingLoop | None = None
        self.env_steps = 0
        self.episodes = 0
        self.recent_returns: collections.deque[float] = collections.deque(maxlen=RECENT_EPISODES)
        self.recent_lengths: collections.deque[int] = collections.deque(maxlen=RECENT_EPISODES)
        self._collector_ready = False

    # ------------------------------------------------------------------------------------------ environments
    def _env_kwargs(self) -> dict[str, Any]:
        return {"obs_type": self.config.obs_type} if self.config.obs_type else {}

    def _start_episodes(self, seed: int) -> None:
        """Reset every environment and the per-environment collector state."""
        n = self.config.num_envs
        obs, _ = self.envs.reset(seed=seed)
        self._stack = FrameStack(n, self.frame_shape, self.config.frame_stack, self.frame_dtype)
        self._stack.reset(preprocess(obs, self.config.grayscale))
        self._recurrent_state = self.policy.initial_state(n, self.device, self.dtype)
        self._episode_starts = np.ones(n, dtype=bool)
        self._previous_actions = np.full(n, -1, dtype=np.int64)
        self._episode_return = np.zeros(n)
        self._episode_length = np.zeros(n, dtype=np.int64)
        self._collector_ready = True

    def initialize_observation_normalizer(self) -> None:
        """Algorithm 1's first loop: run a uniform random policy and feed its frames to the statistics."""
        n, steps = self.config.num_envs, self.config.obs_norm_init_steps
        obs, _ = self.envs.reset(seed=self.config.seed + 1_000_003)
        chunk = []
        for step in range(steps):
            actions = self.rng.integers(0, self.num_actions, size=n)
            obs, _, terminated, truncated, info = self.envs.step(actions)
            chunk.append(preprocess(final_observations(obs, info, terminated | truncated), self.config.grayscale))
            if len(chunk) == self.config.rollout_steps or step == steps - 1:
                self.obs_normalizer.update(np.concatenate(chunk))
                chunk = []
        self.env_steps += n * steps

    # -------------------------------------------------------------------------------------------- acting
    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
        return tensor if tensor.dtype in (torch.uint8, torch.bool, torch.int64) else tensor.to(self.dtype)

    def _sample(self, logits: torch.Tensor, rng: np.random.Generator, greedy: bool = False) -> np.ndarray:
        """Actions from logits with the Gumbel-max trick on NumPy draws, so one Generator holds all randomness."""
        logits = logits.double().cpu().numpy()
        if greedy:
            return logits.argmax(axis=-1)
        gumbel = -np.log(-np.log(rng.random(logits.shape)))
        return (logits + gumbel).argmax(axis=-1)

    @torch.no_grad()
    def collect_rollout(self) -> Rollout:
        """K = rollout_steps steps in every environment with the current policy."""
        cfg = self.config
        steps, n = cfg.rollout_steps, cfg.num_envs
        obs = np.zeros((steps, *self._stack.frames.shape), dtype=self.frame_dtype)
        next_frames = np.zeros((steps, n, *self.frame_shape), dtype=self.frame_dtype)
        starts, dones = np.zeros((steps, n), dtype=bool), np.zeros((steps, n), dtype=bool)
        actions = np.zeros((steps, n), dtype=np.int64)
        log_probs, values_ext, values_int, rewards_ext, truncation_values = (np.zeros((steps, n)) for _ in range(5))
        initial_state = self._recurrent_state.clone()

        for t in range(steps):
            obs[t], starts[t] = self._stack.frames, self._episode_starts
            logits, value_ext, value_int, self._recurrent_state = self.policy(
                self._tensor(obs[t])[None], self._tensor(starts[t])[None], self._recurrent_state
            )
            actions[t] = self._sample(logits[0], self.rng)
            log_prob, _ = categorical_log_prob_entropy(logits[0], self._tensor(actions[t]))
            log_probs[t], values_ext[t], values_int[t] = (
                v.double().cpu().numpy() for v in (log_prob, value_ext[0], value_int[0])
            )

            executed = sticky_actions(actions[t], self._previous_actions, cfg.sticky_action_prob, self.rng)
            next_obs, reward, terminated, truncated, info = self.envs.step(executed)
            done = terminated | truncated
            next_frames[t] = preprocess(final_observations(next_obs, info, done), cfg.grayscale)
            rewards_ext[t] = reward
            dones[t] = done
            cut = truncated & ~terminated
            if cut.any():
                # A time limit is not a death: bootstrap V_E from the state the episode was cut at.
                final_stack = self._stack.with_frame(next_frames[t])[cut]
                _, final_value, _, _ = self.policy(
                    self._tensor(final_stack)[None],
                    torch.zeros(1, int(cut.sum()), dtype=torch.bool, device=self.device),
                    self._recurrent_state[torch.from_numpy(cut).to(self.device)],
                )
                truncation_values[t, cut] = cfg.gamma_ext * final_value[0].double().cpu().numpy()

            self._episode_return += reward
            self._episode_length += 1
            for env in np.flatnonzero(done):
                self.recent_returns.append(float(self._episode_return[env]))
                self.recent_lengths.append(int(self._episode_length[env]))
                self.episodes += 1
            self._episode_return[done] = 0.0
            self._episode_length[done] = 0
            self._stack.push(preprocess(next_obs, cfg.grayscale) if done.any() else next_frames[t], done)
            self._episode_starts = done
            self._previous_actions = np.where(done, -1, executed)
            self.env_steps += n

        _, next_value_ext, next_value_int, _ = self.policy(
            self._tensor(self._stack.frames)[None], self._tensor(self._episode_starts)[None], self._recurrent_state
        )
        return Rollout(
            obs=obs,
            episode_starts=starts,
            actions=actions,
            log_probs=log_probs,
            values_ext=values_ext,
            values_int=values_int,
            rewards_ext=rewards_ext,
            truncation_values_ext=truncation_values,
            dones=dones,
            next_frames=next_frames,
            initial_state=initial_state,
            next_value_ext=next_value_ext[0].double().cpu().numpy(),
            next_value_int=next_value_int[0].double().cpu().numpy(),
        )

    @torch.no_grad()
    def compute_intrinsic_rewards(self, rollout: Rollout, chunk: int = 1024) -> None:
        """i_t = ||f_hat(s_{t+1}) - f(s_{t+1})||^2 on normalised frames, then divided by the intrinsic-return std."""
        frames = rollout.next_frames.reshape(-1, *self.frame_shape)
        raw = torch.cat(
            [
                self.rnd.intrinsic_reward(self._tensor(self.obs_normalizer.normalize(frames[i : i + chunk])))
                for i in range(0, len(frames), chunk)
            ]
        )
        rollout.intrinsic_rewards_raw = raw.double().cpu().numpy().reshape(rollout.dones.shape)
        rollout.intrinsic_rewards = self.reward_normalizer(rollout.intrinsic_rewards_raw)

    # ------------------------------------------------------------------------------------------- learning
    def update(self, rollout: Rollout) -> dict[str, float]:
        """Advantages for both streams, then update_epochs x num_minibatches PPO and distillation steps."""
        cfg = self.config
        if rollout.intrinsic_rewards is None:
            self.compute_intrinsic_rewards(rollout)
        as_tensor = self._tensor
        dones = as_tensor(rollout.dones.astype(np.float64))
        rewards_ext = rollout.rewards_ext
        if self.extrinsic_normalizer is not None:
            rewards_ext = self.extrinsic_normalizer(rewards_ext, rollout.dones)
        # V_E's bootstrap at a time limit is already on V_E's (normalised) scale, so it is added after scaling.
        rewards_ext = rewards_ext + rollout.truncation_values_ext
        adv_ext, returns_ext = gae_advantages(
            as_tensor(rewards_ext), as_tensor(rollout.values_ext), as_tensor(rollout.next_value_ext),
            dones, cfg.gamma_ext, cfg.gae_lambda, episodic=True,
        )  # fmt: skip
        adv_int, returns_int = gae_advantages(
            as_tensor(rollout.intrinsic_rewards), as_tensor(rollout.values_int), as_tensor(rollout.next_value_int),
            dones, cfg.gamma_int, cfg.gae_lambda, episodic=False,
        )  # fmt: skip
        advantages = cfg.extrinsic_coef * adv_ext + cfg.intrinsic_coef * adv_int

        steps, n = rollout.dones.shape
        flat_frames = rollout.next_frames.reshape(-1, *self.frame_shape)
        self.obs_normalizer.update(flat_frames)
        normalized_frames = as_tensor(self.obs_normalizer.normalize(flat_frames)).view(steps, n, *self.frame_shape)
        obs, starts = as_tensor(rollout.obs), as_tensor(rollout.episode_starts)
        actions, old_log_probs = as_tensor(rollout.actions), as_tensor(rollout.log_probs)

        sums: collections.Counter[str] = collections.Counter()
        minibatches = 0
        for _ in range(cfg.update_epochs):
            for index in self._minibatch_indices(steps, n):
                stats = self._minibatch_step(
                    index, obs, starts, rollout.initial_state, actions, old_log_probs, advantages,
                    returns_ext, returns_int, normalized_frames,
                )  # fmt: skip
                sums.update(stats)
                minibatches += 1
        return {key: value / minibatches for key, value in sums.items()}

    def _minibatch_indices(self, steps: int, n: int) -> list[tuple[slice | torch.Tensor, torch.Tensor]]:
        """(time index, env index) pairs: random flat samples, or whole environments for a recurrent policy."""
        cfg = self.config
        if self.policy.recurrent:
            envs = torch.from_numpy(self.rng.permutation(n)).to(self.device)
            size = n // cfg.num_minibatches
            return [(slice(None), envs[i : i + size]) for i in range(0, n, size)]
        flat = torch.from_numpy(self.rng.permutation(steps * n)).to(self.device)
        size = steps * n // cfg.num_minibatches
        return [(flat[i : i + size] // n, flat[i : i + size] % n) for i in range(0, steps * n, size)]

    def _minibatch_step(
        self, index, obs, starts, initial_state, actions, old_log_probs, advantages, returns_ext, returns_int, frames
    ) -> dict[str, float]:
        cfg = self.config
        time_index, env_index = index
        if self.policy.recurrent:
            # Replay each environment's whole rollout from its saved state so the GRU sees the same history.
            logits, value_ext, value_int, _ = self.policy(
                obs[:, env_index], starts[:, env_index], initial_state.to(self.device)[env_index]
            )
            select = (slice(None), env_index)
        else:
            batch_obs = obs[time_index, env_index]
            empty_state = self.policy.initial_state(len(env_index), self.device, self.dtype)
            logits, value_ext, value_int, _ = self.policy(
                batch_obs[None], starts[time_index, env_index][None], empty_state
            )
            logits, value_ext, value_int = logits[0], value_ext[0], value_int[0]
            select = (time_index, env_index)

        log_prob, entropy = categorical_log_prob_entropy(logits, actions[select])
        batch_advantages = advantages[select]
        if cfg.normalize_advantages:
            batch_advantages = (batch_advantages - batch_advantages.mean()) / (batch_advantages.std() + 1e-8)
        policy_loss = ppo_clipped_policy_loss(log_prob, old_log_probs[select], batch_advantages, cfg.clip_coef)
        loss_ext = value_loss(value_ext, returns_ext[select])
        loss_int = value_loss(value_int, returns_int[select])
        loss = policy_loss - cfg.entropy_coef * entropy.mean() + cfg.value_coef * (loss_ext + loss_int)
        check_finite(loss, "PPO loss")
        self.policy_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.log_grads:
            self.policy_monitor.check()
        if cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
        self.policy_optimizer.step()

        # Distillation on a random predictor_update_fraction of the minibatch (Burda et al., appendix A.4).
        batch_frames = frames[select].reshape(-1, *self.frame_shape)
        kept = predictor_sample_indices(len(batch_frames), cfg.predictor_update_fraction, self.rng)
        predicted, target = self.rnd(batch_frames[torch.from_numpy(kept).to(self.device)])
        distillation = check_finite(predictor_loss(predicted, target), "RND predictor loss")
        self.predictor_optimizer.zero_grad(set_to_none=True)
        distillation.backward()
        if cfg.log_grads:
            self.predictor_monitor.check()
        self.predictor_optimizer.step()

        with torch.no_grad():
            log_ratio = log_prob - old_log_probs[select]
            approx_kl = ((log_ratio.exp() - 1) - log_ratio).mean()  # Schulman's low-variance KL estimator
            clip_fraction = ((log_ratio.exp() - 1).abs() > cfg.clip_coef).to(self.dtype).mean()
        return {
            "policy_loss": policy_loss.item(),
            "value_loss_ext": loss_ext.item(),
            "value_loss_int": loss_int.item(),
            "entropy": entropy.mean().item(),
            "predictor_loss": distillation.item(),
            "approx_kl": approx_kl.item(),
            "clip_fraction": clip_fraction.item(),
        }

    def learn(
        self,
        total_env_steps: int | None = None,
        checkpointer: Checkpointer | None = None,
        callback: Callable[[dict[str, Any]], None] | None = None,
        tensorboard: str | os.PathLike | None = None,
    ) -> RNDPPO:
        """Train until ``env_steps`` (random-policy initialisation steps included) reaches ``total_env_steps``: one
        PPO iteration (collect a rollout, update) per step of :class:`dreamlab.loop.TrainingLoop`.

        With a checkpointer the run resumes from its checkpoint, if there is one, and saves every
        ``checkpoint_every`` updates and at the end; without one it trains in memory, and a later ``learn``
        continues it. ``callback`` receives each update's curve row. Progress shows as a bar (or log lines when not
        on a terminal), and with ``tensorboard`` (a folder) each row is also written there (:mod:`dreamlab.progress`).
        """
        cfg = self.config
        total = cfg.total_env_steps if total_env_steps is None else total_env_steps
        per_update, init_steps = cfg.num_envs * cfg.rollout_steps, cfg.num_envs * cfg.obs_norm_init_steps
        updates = max(0, -(-(total - init_steps) // per_update))  # env_steps = init_steps + updates * per_update
        loop = self._training_loop(checkpointer, tensorboard, updates)
        if self.obs_normalizer.stats.count == 0:
            with self.timer.stage("obs_norm_init"):
                self.initialize_observation_normalizer()
        if not self._collector_ready:
            self._start_episodes(cfg.seed + self.updates)
        if updates > loop.step:
            loop.run(self._iteration, on_row=callback)
        return self

    def _training_loop(
        self, checkpointer: Checkpointer | None, tensorboard: str | os.PathLike | None, updates: int
    ) -> TrainingLoop:
        """This agent's training loop under ``checkpointer`` (restored from it), kept for a later ``learn``."""
        previous = self._loop
        if previous is None or previous.checkpointer is not checkpointer:
            loop = TrainingLoop(
                checkpointer,
                {"agent": self},
                steps=max(1, updates),
                eval_every=1,
                desc="PPO+RND",
                step_key="update",
                checkpoint_seconds=math.inf,  # saves every checkpoint_every updates instead
                checkpoint_every=self.config.checkpoint_every,
                check_modules={"policy": self.policy, "RND networks": self.rnd},
                map_location=self.device,
                from_legacy=_checkpoint_before_the_loop,
            )
            if previous is not None and loop.step == 0:  # nothing to resume: go on from this agent's training
                loop.step, loop.curve, loop.timer = previous.step, previous.curve, previous.timer
            self._loop, self.curves, self.timer = loop, loop.curve, loop.timer
        self._loop.steps, self._loop.tensorboard = max(1, updates), tensorboard
        return self._loop

    @property
    def updates(self) -> int:
        """PPO iterations done (the training loop's step)."""
        return 0 if self._loop is None else self._loop.step

    def _iteration(self, update: int) -> dict[str, float]:
        """Algorithm 1's loop body: collect a rollout and its intrinsic rewards, then update; the curve's numbers."""
        started = time.perf_counter()
        with self.timer.stage("collect"):
            rollout = self.collect_rollout()
            self.compute_intrinsic_rewards(rollout)
        with self.timer.stage("update"):
            stats = self.update(rollout)
        numbers: dict[str, float] = {"env_steps": self.env_steps, "episodes": self.episodes}
        if self.recent_returns:  # undefined until the first episode ends: such rows leave them out
            numbers.update(extrinsic_return=np.mean(self.recent_returns), episode_length=np.mean(self.recent_lengths))
        return {
            **numbers,
            "intrinsic_reward": float(rollout.intrinsic_rewards.mean()),
            "intrinsic_reward_raw": float(rollout.intrinsic_rewards_raw.mean()),
            **stats,
            "steps_per_second": round(rollout.dones.size / (time.perf_counter() - started), 1),
        }

    # ----------------------------------------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluate(
        self,
        num_episodes: int = 100,
        max_episode_steps: int = 10_000,
        seed: int = 12345,
        greedy: bool = False,
        record_episode: bool = False,
    ) -> dict[str, Any]:
        """Play exactly ``num_episodes`` episodes (one per environment, so short episodes are not over-counted).

        Returns lists ``returns``, ``lengths``, ``truncated`` (hit ``max_episode_steps``) and, with
        ``record_episode``, ``frames``: the first episode's image observations, or for vector observations the
        environment's ``rgb_array`` renders (all but the last frame, which an autoreset has already replaced).
        """
        if num_episodes < 1 or max_episode_steps < 1:
            raise ValueError(
                f"need num_episodes >= 1 and max_episode_steps >= 1, got {num_episodes}, {max_episode_steps}"
            )
        cfg = self.config
        render = record_episode and len(self.frame_shape) != 3
        env_kwargs = {**self._env_kwargs(), **({"render_mode": "rgb_array"} if render else {})}
        envs = make_vector_env(cfg.env_id, num_episodes, max_episode_steps, env_kwargs)
        rng = np.random.default_rng(seed)
        try:
            raw_obs, _ = envs.reset(seed=seed)
            stack = FrameStack(num_episodes, self.frame_shape, cfg.frame_stack, self.frame_dtype)
            stack.reset(preprocess(raw_obs, cfg.grayscale))
            state = self.policy.initial_state(num_episodes, self.device, self.dtype)
            starts = np.ones(num_episodes, dtype=bool)
            running = np.ones(num_episodes, dtype=bool)
            returns, lengths = np.zeros(num_episodes), np.zeros(num_episodes, dtype=np.int64)
            truncated_flags = np.zeros(num_episodes, dtype=bool)
            frames = ([envs.render()[0]] if render else [raw_obs[0]]) if record_episode else []
            while running.any():
                logits, _, _, state = self.policy(self._tensor(stack.frames)[None], self._tensor(starts)[None], state)
                actions = self._sample(logits[0], rng, greedy)
                raw_obs, reward, terminated, truncated, info = envs.step(actions)
                done = terminated | truncated
                returns[running] += reward[running]
                lengths[running] += 1
                if record_episode and running[0] and not (render and done[0]):
                    frames.append(envs.render()[0] if render else final_observations(raw_obs, info, done)[0])
                ended = running & done
                truncated_flags[ended] = truncated[ended] & ~terminated[ended]
                running &= ~done
                stack.push(preprocess(raw_obs, cfg.grayscale), done)
                starts = done
        finally:
            envs.close()
        return {
            "returns": returns.tolist(),
            "lengths": lengths.tolist(),
            "truncated": truncated_flags.tolist(),
            "frames": frames,
        }

    # --------------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything of the agent a resumed run needs to continue as if never stopped (its training loop keeps
        the update count, the curve and the timer beside it)."""
        state: dict[str, Any] = {
            "policy": self.policy.state_dict(),
            "rnd": self.rnd.state_dict(),
            "policy_optimizer": self.policy_optimizer.state_dict(),
            "predictor_optimizer": self.predictor_optimizer.state_dict(),
            "obs_normalizer": self.obs_normalizer.state_dict(),
            "reward_normalizer": self.reward_normalizer.state_dict(),
            **(
                {"extrinsic_normalizer": self.extrinsic_normalizer.state_dict()}
                if self.extrinsic_normalizer is not None
                else {}
            ),
            "rng": self.rng.bit_generator.state,
            "env_steps": self.env_steps,
            "episodes": self.episodes,
            "recent_returns": list(self.recent_returns),
            "recent_lengths": list(self.recent_lengths),
        }
        env_state = getattr(self.envs, "state_dict", None)
        if self._collector_ready and env_state is not None:
            state["environment"] = env_state()
            state["collector"] = {
                "stack": self._stack.frames,
                "recurrent_state": self._recurrent_state,
                "episode_starts": self._episode_starts,
                "previous_actions": self._previous_actions,
                "episode_return": self._episode_return,
                "episode_length": self._episode_length,
            }
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.rnd.load_state_dict(state["rnd"])
        self.policy_optimizer.load_state_dict(state["policy_optimizer"])
        self.predictor_optimizer.load_state_dict(state["predictor_optimizer"])
        self.obs_normalizer.load_state_dict(state["obs_normalizer"])
        self.reward_normalizer.load_state_dict(state["reward_normalizer"])
        if self.extrinsic_normalizer is not None:
            self.extrinsic_normalizer.load_state_dict(state["extrinsic_normalizer"])
        self.rng.bit_generator.state = state["rng"]
        self.env_steps, self.episodes = state["env_steps"], state["episodes"]
        self.recent_returns = collections.deque(state["recent_returns"], maxlen=RECENT_EPISODES)
        self.recent_lengths = collections.deque(state["recent_lengths"], maxlen=RECENT_EPISODES)
        if "environment" in state and hasattr(self.envs, "load_state_dict"):
            self.envs.load_state_dict(state["environment"])
            collector = state["collector"]
            self._stack = FrameStack(self.config.num_envs, self.frame_shape, self.config.frame_stack, self.frame_dtype)
            self._stack.frames = np.asarray(collector["stack"]).copy()
            self._recurrent_state = collector["recurrent_state"].to(self.device, self.dtype)
            self._episode_starts = np.asarray(collector["episode_starts"]).copy()
            self._previous_actions = np.asarray(collector["previous_actions"]).copy()
            self._episode_return = np.asarray(collector["episode_return"]).copy()
            self._episode_length = np.asarray(collector["episode_length"]).copy()
            self._collector_ready = True
        else:
            self._collector_ready = False  # learn() restarts the episodes with a seed derived from `updates`

    def close(self) -> None:
        self.envs.close()


def _checkpoint_before_the_loop(saved: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of :class:`RNDPPO` from before it trained on the training loop: the agent's state held its
    update count, curve and timer."""
    return {"agent": saved, "step": int(saved["updates"]), "curve": saved["curves"], "timer": saved["timer"]}

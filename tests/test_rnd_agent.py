"""PPO + RND agent: the target stays fixed, the predictor sees a quarter of each batch, resuming changes nothing,
it learns a small problem, and the PixelCopter experiment runs end to end."""

import json
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.envs.registration import register, registry
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from dreamlab.checkpoint import Checkpointer
from dreamlab.config import make_config
from dreamlab.rnd import PRESETS, RNDPPO, RandomNetworkDistillation, RNDConfig

CHAIN_ID = "dreamlab_test/Chain-v0"
CHAIN_LENGTH = 6


class ChainVectorEnv(VectorEnv):
    """A corridor of CHAIN_LENGTH cells: action 1 steps right, 0 left; reaching the end pays +1 and ends the episode.

    Observations are one-hot positions. Episodes start in cell 0 or 1 (drawn from the env's own generator) and
    are cut after 3 * CHAIN_LENGTH steps, so a random walk often fails and a learnt policy always succeeds.
    It exposes state_dict / load_state_dict, so runs on it can resume mid-episode.
    """

    def __init__(self, num_envs: int, autoreset_mode=AutoresetMode.NEXT_STEP, max_episode_steps: int | None = None):
        self.num_envs = num_envs
        self.limit = max_episode_steps or 3 * CHAIN_LENGTH
        self.metadata = {"autoreset_mode": AutoresetMode(autoreset_mode)}
        assert self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
        self.single_observation_space = gym.spaces.Box(0, 1, (CHAIN_LENGTH,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.single_action_space = gym.spaces.Discrete(2)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.position = np.zeros(num_envs, dtype=np.int64)
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.generator = np.random.default_rng()

    def _obs(self):
        return np.eye(CHAIN_LENGTH, dtype=np.float32)[self.position]

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.generator = np.random.default_rng(seed)
        self.position = self.generator.integers(0, 2, self.num_envs)
        self.t[:] = 0
        return self._obs(), {}

    def step(self, actions):
        self.position = np.clip(self.position + np.where(np.asarray(actions) == 1, 1, -1), 0, CHAIN_LENGTH - 1)
        self.t += 1
        terminated = self.position == CHAIN_LENGTH - 1
        truncated = ~terminated & (self.t >= self.limit)
        reward = terminated.astype(np.float64)
        done = terminated | truncated
        info = {}
        if done.any():
            final = np.full(self.num_envs, None, dtype=object)
            for env in np.flatnonzero(done):
                final[env] = self._obs()[env]
            info = {"final_obs": final, "_final_obs": done}
            self.position[done] = self.generator.integers(0, 2, int(done.sum()))
            self.t[done] = 0
        return self._obs(), reward, terminated, truncated, info

    def state_dict(self):
        return {"position": self.position.copy(), "t": self.t.copy(), "rng": self.generator.bit_generator.state}

    def load_state_dict(self, state):
        self.position, self.t = state["position"].copy(), state["t"].copy()
        self.generator.bit_generator.state = state["rng"]


if CHAIN_ID not in registry:
    register(id=CHAIN_ID, entry_point=None, vector_entry_point=ChainVectorEnv)


def chain_config(**overrides) -> RNDConfig:
    values = dict(
        env_id=CHAIN_ID,
        obs_type="",
        num_envs=8,
        rollout_steps=32,
        frame_stack=1,
        hidden_size=32,
        rnd_output_size=16,
        obs_norm_init_steps=8,
        threads=1,
        checkpoint_every=1,
    )
    return make_config(RNDConfig, PRESETS, "smoke", **{**values, **overrides})


def test_target_network_never_changes_and_predictor_learns():
    agent = RNDPPO(CHAIN_ID, chain_config())
    target_before = {k: v.clone() for k, v in agent.rnd.target.state_dict().items()}
    predictor_before = {k: v.clone() for k, v in agent.rnd.predictor.state_dict().items()}
    optimised = {id(p) for group in agent.predictor_optimizer.param_groups for p in group["params"]}
    optimised |= {id(p) for group in agent.policy_optimizer.param_groups for p in group["params"]}
    assert not any(id(p) in optimised for p in agent.rnd.target.parameters())
    agent.learn(3 * 8 * 32 + 64)
    for key, value in agent.rnd.target.state_dict().items():
        assert torch.equal(value, target_before[key]), key
    assert any(not torch.equal(v, predictor_before[k]) for k, v in agent.rnd.predictor.state_dict().items())


def test_predictor_update_uses_a_quarter_of_each_minibatch():
    agent = RNDPPO(CHAIN_ID, chain_config(num_envs=16, rollout_steps=64))
    sizes = []
    forward = agent.rnd.forward

    def spy(frames):
        if torch.is_grad_enabled():  # training calls; intrinsic rewards are computed without gradients
            sizes.append(len(frames))
        return forward(frames)

    agent.rnd.forward = spy
    agent.learn(16 * 64 + 128)
    minibatch = 16 * 64 // agent.config.num_minibatches
    assert len(sizes) == agent.config.update_epochs * agent.config.num_minibatches
    assert abs(np.mean(sizes) / minibatch - 0.25) < 0.05


def test_intrinsic_reward_is_larger_for_unseen_states():
    torch.manual_seed(0)
    rnd = RandomNetworkDistillation((4,), output_size=8)
    optimizer = torch.optim.Adam(rnd.predictor.parameters(), lr=1e-2)
    seen = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    unseen = torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    for _ in range(200):
        predicted, target = rnd(seen)
        loss = (predicted - target).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert rnd.intrinsic_reward(unseen).min() > 10 * rnd.intrinsic_reward(seen).max()


@pytest.mark.parametrize(("recurrent", "normalize_extrinsic"), [(False, False), (True, False), (False, True)])
def test_resume_equals_uninterrupted(tmp_path, recurrent, normalize_extrinsic):
    config = chain_config(recurrent=recurrent, normalize_extrinsic=normalize_extrinsic, run_dir=str(tmp_path))
    steps_per_update = 8 * 32
    total = 64 + 4 * steps_per_update

    straight = RNDPPO(CHAIN_ID, config).learn(total)

    checkpointer = Checkpointer(tmp_path, config)
    RNDPPO(CHAIN_ID, config).learn(64 + 2 * steps_per_update, checkpointer=checkpointer)
    resumed = RNDPPO(CHAIN_ID, config).learn(total, checkpointer=checkpointer)  # resumes from the checkpoint

    assert resumed.env_steps == straight.env_steps and resumed.updates == straight.updates == 4
    for key, value in straight.policy.state_dict().items():
        torch.testing.assert_close(resumed.policy.state_dict()[key], value, rtol=0, atol=0)
    for key, value in straight.rnd.state_dict().items():
        torch.testing.assert_close(resumed.rnd.state_dict()[key], value, rtol=0, atol=0)
    assert _without_times(resumed.curves.rows) == _without_times(straight.curves.rows)


def _without_times(rows):
    return [{k: v for k, v in row.items() if k not in ("seconds", "steps_per_second")} for row in rows]


def test_learn_in_memory_continues_and_a_checkpoint_from_before_the_training_loop_resumes(tmp_path):
    config = chain_config(run_dir=str(tmp_path))
    steps_per_update = 8 * 32
    straight = RNDPPO(CHAIN_ID, config).learn(64 + 3 * steps_per_update)
    in_steps = RNDPPO(CHAIN_ID, config).learn(64 + steps_per_update).learn(64 + 3 * steps_per_update)
    assert in_steps.updates == 3 and _without_times(in_steps.curves.rows) == _without_times(straight.curves.rows)

    # An older dreamlab saved the agent's own state dict, with its update count, curve and timer in it.
    checkpointer = Checkpointer(tmp_path, config)
    old = RNDPPO(CHAIN_ID, config).learn(64 + 2 * steps_per_update)
    checkpointer.save(
        {**old.state_dict(), "updates": old.updates, "curves": old.curves.state_dict(), "timer": old.timer.state_dict()}
    )
    resumed = RNDPPO(CHAIN_ID, config).learn(64 + 3 * steps_per_update, checkpointer=checkpointer)
    assert resumed.updates == 3 and resumed.env_steps == straight.env_steps
    for key, value in straight.policy.state_dict().items():
        torch.testing.assert_close(resumed.policy.state_dict()[key], value, rtol=0, atol=0)


def test_pixelcopter_resume_mid_episode_equals_uninterrupted(tmp_path):
    import dreamlab.envs  # noqa: F401  (registers dreamlab/PixelCopter-v0)

    config = make_config(RNDConfig, PRESETS, "smoke", threads=1, run_dir=str(tmp_path))
    per_update = config.num_envs * config.rollout_steps
    total = config.num_envs * config.obs_norm_init_steps + 3 * per_update
    straight = RNDPPO(config.env_id, config).learn(total)

    checkpointer = Checkpointer(tmp_path, config)
    RNDPPO(config.env_id, config).learn(total - per_update, checkpointer=checkpointer)
    assert "environment" in checkpointer.load()["agent"]  # the games in progress are saved, not restarted
    resumed = RNDPPO(config.env_id, config).learn(total, checkpointer=checkpointer)

    for key, value in straight.policy.state_dict().items():
        torch.testing.assert_close(resumed.policy.state_dict()[key], value, rtol=0, atol=0)
    assert resumed.curves.rows[-1]["episode_length"] == straight.curves.rows[-1]["episode_length"]


@pytest.mark.parametrize("normalize_extrinsic", [False, True])
def test_ppo_learns_the_chain(normalize_extrinsic):
    config = chain_config(
        num_envs=16,
        rollout_steps=32,
        learning_rate=3e-3,
        hidden_size=64,
        extrinsic_coef=2.0,
        normalize_extrinsic=normalize_extrinsic,
    )
    agent = RNDPPO(CHAIN_ID, config)
    before = agent.evaluate(num_episodes=64, max_episode_steps=18, seed=1)
    agent.learn(40 * 16 * 32)
    after = agent.evaluate(num_episodes=64, max_episode_steps=18, seed=1)
    # Random walk: about half the episodes time out; learnt: straight to the end in <= 5 steps.
    assert np.mean(before["truncated"]) > 0.2
    assert np.mean(after["returns"]) > 0.95 and np.mean(after["lengths"]) < 6.5


def test_bad_configs_fail_clearly():
    with pytest.raises(ValueError, match="divisible"):
        RNDPPO(CHAIN_ID, chain_config(num_envs=3, rollout_steps=5))
    with pytest.raises(ValueError, match="predictor_update_fraction"):
        RNDPPO(CHAIN_ID, chain_config(predictor_update_fraction=0.0))
    with pytest.raises(ValueError, match="eval_policy"):
        RNDPPO(CHAIN_ID, chain_config(eval_policy="argmax"))
    with pytest.raises(ValueError, match="Discrete"):
        RNDPPO("Pendulum-v1", chain_config(env_id="Pendulum-v1"))


def test_pixelcopter_smoke_run(tmp_path):
    script = Path(__file__).resolve().parents[1] / "experiments" / "rnd_pixelcopter.py"
    args = ["--preset", "smoke", "--threads", "1", "--results_dir", str(tmp_path), "--run_dir", str(tmp_path / "run")]
    done = subprocess.run(
        [sys.executable, str(script), *args, "--eval_policy", "greedy"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    # Training progress in updates (dreamlab.progress): 4 x 16 random steps, then ceil(960 / (4 x 32)) updates.
    assert re.findall(r"PPO\+RND: (\d+)/8 updates", done.stderr)[-1] == "8", done.stderr
    path = tmp_path / "rnd" / "smoke_ext_int_pixelcopter.json"
    result = json.loads(path.read_text())
    metrics = result["metrics"]
    assert len(metrics["eval_episode_returns"]) == len(metrics["eval_episode_lengths"]) == 4
    assert metrics["eval_policy"] == "greedy"
    assert metrics["eval_mean_return_by_policy"]["greedy"] == pytest.approx(metrics["eval_mean_return"])
    assert set(metrics["eval_mean_length_by_policy"]) == {"sampled", "greedy"}
    assert metrics["env_steps"] >= 1024 and result["config"]["extrinsic_coef"] == 2.0
    assert (tmp_path / "rnd" / "smoke_ext_int_pixelcopter_curves.csv").is_file()
    assert (tmp_path / "rnd" / "smoke_ext_int_pixelcopter_episode.gif").is_file()
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_state_observations_record_the_episode_as_rendered_images():
    import dreamlab.envs  # noqa: F401  (registers dreamlab/PixelCopter-v0)

    config = make_config(RNDConfig, PRESETS, "smoke", threads=1, obs_type="state")
    agent = RNDPPO(config.env_id, config)
    evaluation = agent.evaluate(num_episodes=2, max_episode_steps=50, record_episode=True)
    frames = np.stack(evaluation["frames"])
    assert frames.shape[1:] == (48, 48, 3) and frames.dtype == np.uint8
    # Every step of the first episode but the last (already replaced by the autoreset) plus the initial frame.
    assert len(frames) == evaluation["lengths"][0]
    assert (frames[0] == 255).all(axis=-1).sum() == 4  # the 2x2 white player
    agent.close()

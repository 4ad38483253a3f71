"""PPO + RND building blocks against hand-computed values."""

import numpy as np
import pytest
import torch

from dreamlab.rnd import (
    FrameStack,
    ObservationNormalizer,
    RewardNormalizer,
    discounted_return_filter,
    gae_advantages,
    ppo_clipped_policy_loss,
    predictor_loss,
    predictor_sample_indices,
    preprocess,
    sticky_actions,
)

REWARDS = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
VALUES = torch.tensor([[0.5], [1.0], [1.5]], dtype=torch.float64)
NEXT_VALUE = torch.tensor([2.0], dtype=torch.float64)
DONES = torch.tensor([[0.0], [1.0], [0.0]], dtype=torch.float64)  # the episode ends with step 1


def test_gae_episodic_cuts_at_episode_end():
    # gamma 0.9, lambda 0.8 by hand: delta_2 = 3 + 0.9*2 - 1.5 = 3.3; delta_1 = 2 - 1 = 1 (no bootstrap after the
    # end); delta_0 = 1 + 0.9*1 - 0.5 = 1.4; A_0 = 1.4 + 0.72 * 1 = 2.12.
    adv, ret = gae_advantages(REWARDS, VALUES, NEXT_VALUE, DONES, gamma=0.9, lam=0.8, episodic=True)
    torch.testing.assert_close(adv[:, 0], torch.tensor([2.12, 1.0, 3.3], dtype=torch.float64))
    torch.testing.assert_close(ret, adv + VALUES)


def test_gae_non_episodic_bootstraps_through_episode_end():
    # delta_1 = 2 + 0.9*1.5 - 1 = 2.35, A_1 = 2.35 + 0.72*3.3 = 4.726, A_0 = 1.4 + 0.72*4.726 = 4.80272.
    adv, _ = gae_advantages(REWARDS, VALUES, NEXT_VALUE, DONES, gamma=0.9, lam=0.8, episodic=False)
    torch.testing.assert_close(adv[:, 0], torch.tensor([4.80272, 4.726, 3.3], dtype=torch.float64))


def test_gae_lambda_one_gives_monte_carlo_returns():
    rewards = torch.rand(6, 3, dtype=torch.float64)
    values = torch.rand(6, 3, dtype=torch.float64)
    _, ret = gae_advantages(rewards, values, torch.zeros(3, dtype=torch.float64), torch.zeros(6, 3), 0.5, 1.0)
    expected = sum(0.5**k * rewards[k] for k in range(6))
    torch.testing.assert_close(ret[0], expected)


def test_gae_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        gae_advantages(REWARDS, VALUES[:2], NEXT_VALUE, DONES, 0.9, 0.8)


def test_discounted_return_filter_carries_state():
    rewards = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    returns, last = discounted_return_filter(rewards, torch.tensor([10.0, 0.0], dtype=torch.float64), 0.5)
    torch.testing.assert_close(returns, torch.tensor([[6.0, 0.0], [3.0, 2.0]], dtype=torch.float64))
    torch.testing.assert_close(last, torch.tensor([3.0, 2.0], dtype=torch.float64))


def test_discounted_return_filter_restarts_after_an_episode_end():
    rewards = torch.tensor([[1.0], [2.0], [4.0]], dtype=torch.float64)
    dones = torch.tensor([[0.0], [1.0], [0.0]], dtype=torch.float64)
    returns, last = discounted_return_filter(rewards, torch.tensor([8.0], dtype=torch.float64), 0.5, dones)
    # 0.5 * 8 + 1 = 5; 0.5 * 5 + 2 = 4.5 ends the episode; the next sum starts from 0: 4.
    torch.testing.assert_close(returns, torch.tensor([[5.0], [4.5], [4.0]], dtype=torch.float64))
    torch.testing.assert_close(last, torch.tensor([4.0], dtype=torch.float64))
    dones[2, 0] = 1.0
    assert discounted_return_filter(rewards, torch.zeros(1, dtype=torch.float64), 0.5, dones)[1].item() == 0.0
    with pytest.raises(ValueError, match="dones"):
        discounted_return_filter(rewards, torch.zeros(1, dtype=torch.float64), 0.5, dones[:2])


def test_episodic_reward_normalizer_uses_per_episode_returns():
    normalizer = RewardNormalizer(num_envs=1, gamma=0.5)
    rewards = np.array([[2.0], [2.0], [2.0]])
    # The episode ends after step 1: returns 2, 3, then 2 again (not 3.5).
    scaled = normalizer(rewards, dones=np.array([[0.0], [1.0], [0.0]]))
    np.testing.assert_allclose(scaled, rewards / np.std([2.0, 3.0, 2.0], ddof=1), rtol=1e-6)
    assert normalizer.discounted_return[0] == pytest.approx(2.0)


def test_intrinsic_rewards_divided_by_std_of_discounted_intrinsic_return():
    normalizer = RewardNormalizer(num_envs=2, gamma=0.5)
    first = np.array([[1.0, 2.0], [3.0, 0.0], [0.0, 4.0]])
    # Discounted returns: env 0: 1, 3.5, 1.75; env 1: 2, 1, 4.5.
    returns = np.array([1.0, 3.5, 1.75, 2.0, 1.0, 4.5])
    np.testing.assert_allclose(normalizer(first), first / returns.std(ddof=1), rtol=1e-6)
    # The next rollout continues each environment's sum and pools the statistics.
    second = np.array([[2.0, 0.0]])
    returns = np.append(returns, [0.5 * 1.75 + 2.0, 0.5 * 4.5])
    np.testing.assert_allclose(normalizer(second), second / returns.std(ddof=1), rtol=1e-6)
    # Only the scale changes: the sign (novelty is a bonus) and ratios between rewards are kept.
    scaled = normalizer(np.array([[1.0, 4.0]]))
    assert scaled[0, 1] == pytest.approx(4 * scaled[0, 0]) and scaled[0, 0] > 0


def test_observation_normalization_whitens_and_clips_to_five():
    normalizer = ObservationNormalizer((2,), clip=5.0)
    with pytest.raises(RuntimeError, match="random-policy"):
        normalizer.normalize(np.zeros((1, 2)))
    data = np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0]])  # second feature constant: std 0
    normalizer.update(data)
    out = normalizer.normalize(np.array([[2.0, 10.0], [3.0, 10.0], [100.0, 11.0], [-100.0, 9.0]]))
    np.testing.assert_allclose(out[:, 0], [0.0, 0.5, 5.0, -5.0])  # mean 2, std 2; far values clipped to +-5
    np.testing.assert_allclose(out[:, 1], [0.0, 0.0, 5.0, -5.0])  # unseen variation in a constant pixel saturates
    assert out.dtype == np.float32


def test_observation_statistics_streamed_in_rollouts_equal_the_pooled_statistics():
    # Pixel rollouts merged batch by batch (moments in float32) match mean and std of all frames at once.
    frames = np.random.default_rng(0).integers(0, 256, size=(700, 1, 6, 6), dtype=np.uint8)
    normalizer = ObservationNormalizer((1, 6, 6))
    for batch in (frames[:1], frames[1:300], frames[300:]):
        normalizer.update(batch)
    pooled = frames.astype(np.float64)
    assert normalizer.stats.count == 700
    np.testing.assert_allclose(normalizer.stats.mean, pooled.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(normalizer.stats.std, pooled.std(axis=0, ddof=1), rtol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        normalizer.update(np.zeros((4, 1, 5, 5)))


def test_ppo_clipped_loss_on_known_numbers():
    ratios = torch.tensor([1.5, 0.5, 1.05, 0.5], dtype=torch.float64)
    advantages = torch.tensor([1.0, 1.0, -2.0, -1.0], dtype=torch.float64)
    old = torch.log(torch.tensor([0.2, 0.4, 0.5, 0.6], dtype=torch.float64))
    new = (old + torch.log(ratios)).requires_grad_()
    # min(rho A, clip(rho, 0.8, 1.2) A) = 1.2, 0.5, -2.1, -0.8 -> mean -0.3 -> loss 0.3
    loss = ppo_clipped_policy_loss(new, old, advantages, clip=0.2)
    assert loss.item() == pytest.approx(0.3)
    loss.backward()
    # Clipped terms (sample 0 above 1 + eps with A > 0, sample 3 below 1 - eps with A < 0) give no gradient.
    assert new.grad[0] == 0 and new.grad[3] == 0
    torch.testing.assert_close(new.grad[1:3], -ratios[1:3] * advantages[1:3] / 4)


def test_predictor_trains_on_a_quarter_of_the_batch():
    rng = np.random.default_rng(0)
    kept = predictor_sample_indices(100_000, 0.25, rng)
    assert abs(len(kept) / 100_000 - 0.25) < 0.01
    assert len(np.unique(kept)) == len(kept)
    assert len(predictor_sample_indices(1, 0.25, np.random.default_rng(3))) == 1  # never empty
    with pytest.raises(ValueError):
        predictor_sample_indices(10, 0.0, rng)


def test_predictor_loss_does_not_train_the_target():
    predicted = torch.ones(3, 4, requires_grad=True)
    target = torch.zeros(3, 4, requires_grad=True)
    loss = predictor_loss(predicted, target)
    loss.backward()
    assert loss.item() == 1.0 and target.grad is None


def test_preprocess_grayscale_and_frame_stack():
    frames = np.zeros((2, 48, 48, 3), dtype=np.uint8)
    frames[0, 0, 0] = (255, 255, 255)
    frames[1, 0, 0] = (120, 240, 80)
    grey = preprocess(frames, grayscale=True)
    assert grey.shape == (2, 1, 48, 48) and grey.dtype == np.uint8
    assert grey[0, 0, 0, 0] == 255 and grey[1, 0, 0, 0] == round(0.299 * 120 + 0.587 * 240 + 0.114 * 80)
    stack = FrameStack(2, (1, 48, 48), k=3, dtype=np.uint8)
    stack.reset(grey)
    later = np.full((2, 1, 48, 48), 7, dtype=np.uint8)
    out = stack.push(later, new_episode=np.array([False, True]))
    assert (out[0, :2] == grey[0, 0]).all() and (out[0, 2] == 7).all()
    assert (out[1] == 7).all()  # a new episode's stack is copies of its first frame


def test_sticky_actions_repeat_with_probability():
    rng = np.random.default_rng(0)
    previous = np.zeros(10_000, dtype=np.int64)
    actions = np.ones(10_000, dtype=np.int64)
    executed = sticky_actions(actions, previous, 0.25, rng)
    assert abs((executed == 0).mean() - 0.25) < 0.02
    assert (sticky_actions(actions, np.full(10_000, -1), 0.25, rng) == 1).all()  # nothing to repeat at a start

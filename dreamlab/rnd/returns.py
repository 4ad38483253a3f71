"""Advantages and discounted returns for PPO with two reward streams (Burda et al. 2018, section 2.3).

RND keeps two value heads because the two rewards live on different time axes: the extrinsic return is episodic
(a death ends it), the intrinsic return is non-episodic (the novelty an agent could find after a reset still
counts, so dying is not a free way to stop being surprised). Both use generalised advantage estimation (Schulman
et al. 2016):

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}

with ``done_t`` ignored (treated as 0) for the non-episodic stream. All arrays are (T, N): time by environment.
"""

from __future__ import annotations

import torch


def gae_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_value: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
    lam: float,
    episodic: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and lambda-returns (A + V) of a (T, N) rollout.

    ``dones[t]`` is 1 where the episode ended with the transition at step t; ``values[t]`` is V(s_t) and
    ``next_value`` is V(s_T), the state after the rollout. With ``episodic=False`` episode ends do not cut the
    bootstrap: the value of the next episode's first state is used, as RND's intrinsic stream requires.
    """
    if rewards.shape != values.shape or rewards.shape != dones.shape or rewards.ndim != 2:
        raise ValueError(
            f"rewards, values and dones must share a (T, N) shape, got {tuple(rewards.shape)}, "
            f"{tuple(values.shape)}, {tuple(dones.shape)}"
        )
    if next_value.shape != rewards.shape[1:]:
        raise ValueError(f"next_value must have shape ({rewards.shape[1]},), got {tuple(next_value.shape)}")
    continues = (1.0 - dones.to(rewards.dtype)) if episodic else torch.ones_like(rewards)
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(next_value)
    for t in reversed(range(rewards.shape[0])):
        following = next_value if t == rewards.shape[0] - 1 else values[t + 1]
        delta = rewards[t] + gamma * following * continues[t] - values[t]
        running = delta + gamma * lam * continues[t] * running
        advantages[t] = running
    return advantages, advantages + values


def discounted_return_filter(
    rewards: torch.Tensor | list, initial: torch.Tensor, gamma: float, dones: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Running discounted sums R_t = gamma * R_{t-1} + r_t along time.

    Returns every R_t (T, N) and the last one (N,) to carry into the next rollout. Without ``dones`` the sums
    are never reset (non-episodic); with ``dones`` (T, N) a sum restarts after the step that ended an episode.
    RND divides intrinsic rewards by the running standard deviation of these R_t, which keeps the intrinsic
    reward on a scale that does not depend on the environment or on how far the predictor has converged
    (Burda et al., section 2.4).
    """
    rewards = torch.as_tensor(rewards, dtype=initial.dtype)
    if rewards.ndim != 2 or rewards.shape[1:] != initial.shape:
        raise ValueError(f"rewards must be (T, {initial.shape[0]}), got {tuple(rewards.shape)}")
    if dones is not None and dones.shape != rewards.shape:
        raise ValueError(f"dones must match rewards' shape {tuple(rewards.shape)}, got {tuple(dones.shape)}")
    returns = torch.empty_like(rewards)
    running = initial
    for t in range(rewards.shape[0]):
        running = gamma * running + rewards[t]
        returns[t] = running
        if dones is not None:
            running = running * (1.0 - dones[t].to(running.dtype))
    return returns, running

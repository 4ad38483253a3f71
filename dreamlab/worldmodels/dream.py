"""The dream: M as the environment, C trained inside it (Ha & Schmidhuber 2018, section 4.4).

An episode starts from z_0 drawn from V's encoding of a real first frame. Each step, C picks a_t from
[z_t, h_t], M advances its state, samples z_{t+1} from its mixture at temperature tau and decides from its done
head whether the agent died. The reward is +1 per step survived (Doom's living reward), capped at
``max_steps``. Higher tau makes the dream more uncertain and harder to exploit, which is what lets a controller
trained in it transfer to the real game (tau = 1.15 in the paper).

Death is a coin flip per step with M's probability of dying. M's done head is trained with positives up-weighted
by w, which multiplies the odds it learns by w (the minimiser of the weighted cross-entropy is q = w p / (w p + 1 - p)
for a true death rate p), so the dream divides the odds by w again: p = sigmoid(logit - log w). With the calibrated
hazard the dream kills a random policy about as often as the real game does (M's summed hazard along real random
episodes is close to one death per episode). A threshold q > 1/2 instead kills only where M is sure, so dream
episodes run to the cap and C learns nothing about dodging.

All candidates x trials advance together as one batch; finished episodes are dropped from the batch as they end,
so the cost follows the number of living agents. Randomness is shared across candidates: trial j of every
candidate starts from the same real frame and sees the same noise at each step (common random numbers), so the
candidates are ranked on equal terms, and a candidate's returns do not depend on which other candidates share
its batch -- evaluating one at a time gives exactly the batched result.

A dream whose z or done logit turns NaN or infinite (an M whose weights blew up) stops with
:class:`dreamlab.runs.NonFiniteError`: such an agent would never die and score the step cap.
"""

from __future__ import annotations

import math

import torch

from dreamlab.runs import NonFiniteError
from dreamlab.worldmodels.controller import LinearController, controller_features
from dreamlab.worldmodels.cores import select_state
from dreamlab.worldmodels.mdnrnn import MDNRNN
from dreamlab.worldmodels.tasks import Task


def sample_mixture_from_noise(
    logits: torch.Tensor,
    mu: torch.Tensor,
    log_sigma: torch.Tensor,
    temperature: float,
    uniform: torch.Tensor,
    normal: torch.Tensor,
) -> torch.Tensor:
    """:func:`dreamlab.mdn.sample_mixture` with its random draws passed in.

    ``uniform`` (shape of ``logits``) picks the component by Gumbel-max on logits / tau, ``normal`` (shape of the
    sample) scales sigma * sqrt(tau): given the draws sample_mixture makes, the result is the same sample.
    """
    gumbel = -torch.log(-torch.log(uniform.clamp_min(torch.finfo(uniform.dtype).tiny)))
    component = torch.argmax(logits / temperature + gumbel, dim=-1)
    index = component[..., None, None].expand(*component.shape, 1, mu.shape[-1])
    chosen_mu = mu.gather(-2, index).squeeze(-2)
    chosen_sigma = torch.exp(log_sigma.gather(-2, index).squeeze(-2)) * math.sqrt(temperature)
    return chosen_mu + chosen_sigma * normal


class Dream:
    """Batched dream rollouts of a population of linear controllers in M."""

    def __init__(
        self,
        model: MDNRNN,
        task: Task,
        controller: LinearController,
        initial_mu: torch.Tensor,
        initial_logvar: torch.Tensor,
        temperature: float = 1.15,
        max_steps: int = 2100,
        include_cell: bool = False,
        done_pos_weight: float = 1.0,
        z_only: bool = False,
    ):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not done_pos_weight > 0:
            raise ValueError(
                f"done_pos_weight must be > 0 (the weight M's done head was trained with), got {done_pos_weight}"
            )
        if initial_mu.dim() != 2 or initial_mu.shape != initial_logvar.shape or initial_mu.shape[1] != model.z_dim:
            raise ValueError(
                f"initial mu/logvar must both be (frames, {model.z_dim}), got "
                f"{tuple(initial_mu.shape)} and {tuple(initial_logvar.shape)}"
            )
        if not model.predict_done:
            raise ValueError("dreaming needs an M with a done head (predict_done=True) to know when the agent dies")
        self.model, self.task, self.controller = model, task, controller
        reference = model.head.linear.weight
        self.device, self.dtype = reference.device, reference.dtype
        self.initial_mu = initial_mu.to(self.device, self.dtype)
        self.initial_logvar = initial_logvar.to(self.device, self.dtype)
        self.temperature, self.max_steps, self.include_cell = temperature, max_steps, include_cell
        self.z_only = z_only
        self.done_logit_offset = math.log(done_pos_weight)

    @torch.no_grad()
    def returns(
        self, params: torch.Tensor, trials: int, seed: int, record: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Dream returns (P, trials) of the candidates ``params`` (P, n_params).

        ``seed`` fixes the trials' start frames and noise. With ``record``, also returns the z's of trial 0 of
        candidate 0, (steps, D), to decode into a dream GIF.
        """
        model, z_dim = self.model, self.model.z_dim
        params = params.to(self.device, self.dtype)
        population = params.shape[0]
        weights, bias = self.controller.unflatten(params)
        generator = torch.Generator(device=self.device).manual_seed(seed)

        start = torch.randint(len(self.initial_mu), (trials,), generator=generator, device=self.device)
        eps = torch.randn((trials, z_dim), generator=generator, device=self.device, dtype=self.dtype)
        z_trial = self.initial_mu[start] + torch.exp(0.5 * self.initial_logvar[start]) * eps

        # Row r plays candidate rows_candidate[r] in trial rows_trial[r].
        rows_candidate = torch.arange(population, device=self.device).repeat_interleave(trials)
        rows_trial = torch.arange(trials, device=self.device).repeat(population)
        z = z_trial[rows_trial]
        state = model.initial_state(population * trials)
        returns = torch.zeros(population * trials, device=self.device, dtype=self.dtype)
        alive = torch.arange(population * trials, device=self.device)
        recorded = [z[0]] if record else []
        k = model.n_components

        for step in range(self.max_steps):
            features = controller_features(z, model.core, state, self.include_cell, self.z_only)
            actions = self.controller.act(weights, bias, features, rows_candidate)
            output, state = model.step(z, self.task.action_features(actions, self.dtype), state)
            # One draw per trial and step, shared by every candidate (common random numbers).
            uniform = torch.rand((trials, z_dim, k), generator=generator, device=self.device, dtype=self.dtype)
            normal = torch.randn((trials, z_dim, 1), generator=generator, device=self.device, dtype=self.dtype)
            coin = torch.rand(trials, generator=generator, device=self.device, dtype=self.dtype)
            z = sample_mixture_from_noise(
                output.logits, output.mu, output.log_sigma, self.temperature, uniform[rows_trial], normal[rows_trial]
            ).squeeze(-1)
            returns[alive] += 1.0
            died = coin[rows_trial] < torch.sigmoid(output.done_logit - self.done_logit_offset)
            # One host sync per step for both questions: is any agent dead, is anything broken.
            finite = torch.isfinite(z).all() & torch.isfinite(output.done_logit).all()
            any_died, finite = torch.stack([died.any(), finite]).tolist()
            if not finite:
                raise NonFiniteError(
                    f"the dream's z or done logit is NaN or infinite at step {step + 1}: M is broken (its weights "
                    "blew up); retrain it with a smaller --m_lr"
                )
            if record and alive[0] == 0 and not died[0]:
                recorded.append(z[0])
            if any_died:
                keep = torch.nonzero(~died).squeeze(-1)
                if len(keep) == 0:
                    break
                alive, rows_candidate, rows_trial = alive[keep], rows_candidate[keep], rows_trial[keep]
                z, state = z[keep], select_state(state, keep)
        returns = returns.view(population, trials)
        return (returns, torch.stack(recorded)) if record else returns

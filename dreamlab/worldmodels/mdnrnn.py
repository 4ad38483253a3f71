"""M: the MDN-RNN of World Models (Ha & Schmidhuber 2018, section 2.2; Graves 2013; Bishop 1994).

Given z_t and a_t, a recurrent core updates its state and a mixture density head predicts z_{t+1} as an
independent K-component Gaussian mixture per latent dimension,

    p(z_{t+1} | a_t, z_t, h_t) = prod_j sum_k pi_jk N(z_{t+1,j}; mu_jk, sigma_jk^2),

and, for Doom, a done head predicts the probability that the episode ends (the agent dies) at this step. The
done loss weights positives by ``done_pos_weight``: deaths are about one step in a few hundred, and a model that
never predicts them lets the controller survive every dream.

With ``input_skip=True`` each dimension's mixture parameters also get an affine function of that dimension's
own input z_{t,j} and of the action features (:class:`InputSkip`). When z_{t+1} mostly equals z_t, or changes by
an amount the action decides (an integer-coded game state, :mod:`dreamlab.worldmodels.next_state`), the core no
longer has to carry every input through its few features to predict it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dreamlab.mdn import MixtureDensityHead, mixture_nll
from dreamlab.worldmodels.cores import State, make_core, reset_state


class MDNOutput(NamedTuple):
    """Mixture parameters over z_{t+1}, per dimension: logits (..., D, K), mu and log_sigma (..., D, K, 1); and
    the done logit (...) (zeros when the model has no done head)."""

    logits: torch.Tensor
    mu: torch.Tensor
    log_sigma: torch.Tensor
    done_logit: torch.Tensor


class InputSkip(nn.Module):
    """Per-dimension skip into a per-dimension mixture head: raw head outputs (..., D * 3K) from z_t and a_t.

    out[j] = w_j * z_{t,j} + V_j a_t, with w_j (3K,) for dimension j alone and V (D * 3K, A) dense over the
    action features; both start at zero, so a fresh model equals one without the skip.
    """

    def __init__(self, z_dim: int, action_size: int, n_components: int):
        super().__init__()
        self.own = nn.Parameter(torch.zeros(z_dim, 3 * n_components))
        self.action = nn.Linear(action_size, z_dim * 3 * n_components, bias=False)
        nn.init.zeros_(self.action.weight)

    def forward(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        own = (z.unsqueeze(-1) * self.own).flatten(-2)
        return own + self.action(actions)


class MDNRNN(nn.Module):
    """World Models' M with a pluggable recurrent core (``core="lstm"`` or ``"dnc"``)."""

    def __init__(
        self,
        z_dim: int,
        action_size: int,
        hidden_size: int,
        n_components: int = 5,
        core: str = "lstm",
        predict_done: bool = True,
        core_options: dict[str, Any] | None = None,
        input_skip: bool = False,
    ):
        super().__init__()
        self.z_dim, self.action_size, self.n_components = z_dim, action_size, n_components
        self.predict_done = predict_done
        self.core = make_core(core, z_dim + action_size, hidden_size, **(core_options or {}))
        self.head = MixtureDensityHead(self.core.output_size, z_dim, n_components, per_dimension=True)
        self.done_head = nn.Linear(self.core.output_size, 1) if predict_done else None
        self.input_skip = InputSkip(z_dim, action_size, n_components) if input_skip else None

    def initial_state(self, batch_size: int) -> State:
        reference = self.head.linear.weight
        return self.core.initial_state(batch_size, reference.device, reference.dtype)

    def heads(self, features: torch.Tensor, z: torch.Tensor, actions: torch.Tensor) -> MDNOutput:
        """Mixture (and done) predictions for t+1 from the core's features at t and the inputs z_t, a_t."""
        raw = self.head.linear(features)
        if self.input_skip is not None:
            raw = raw + self.input_skip(z, actions)
        logits, mu, log_sigma = self.head.split(raw)
        done = (
            self.done_head(features).squeeze(-1)
            if self.done_head is not None
            else features.new_zeros(features.shape[:-1])
        )
        return MDNOutput(logits, mu, log_sigma, done)

    def _check_inputs(self, z: torch.Tensor, actions: torch.Tensor) -> None:
        if z.shape[-1] != self.z_dim or actions.shape[-1] != self.action_size or z.shape[:-1] != actions.shape[:-1]:
            raise ValueError(
                f"MDNRNN expects z (..., {self.z_dim}) and action features (..., {self.action_size}) with the same "
                f"leading shape; got {tuple(z.shape)} and {tuple(actions.shape)}"
            )

    def step(self, z: torch.Tensor, actions: torch.Tensor, state: State) -> tuple[MDNOutput, State]:
        """One step: z_t (B, D), action features a_t (B, A), state_{t-1} -> predictions for t+1, state_t."""
        self._check_inputs(z, actions)
        features, state = self.core(torch.cat([z, actions], dim=-1), state)
        return self.heads(features, z, actions), state

    def forward(
        self, z: torch.Tensor, actions: torch.Tensor, state: State, reset: torch.Tensor | None = None
    ) -> tuple[MDNOutput, State]:
        """Unroll over (B, L, ...) inputs. ``reset`` (B, L) marks steps where a new episode starts: the state is
        set back to the initial state before that step, so several episodes can share one stream."""
        self._check_inputs(z, actions)
        inputs = torch.cat([z, actions], dim=-1)
        initial = self.initial_state(z.shape[0]) if reset is not None else None
        features = []
        for t in range(inputs.shape[1]):
            if reset is not None:
                state = reset_state(state, reset[:, t], initial)
            out, state = self.core(inputs[:, t], state)
            features.append(out)
        # The heads need no recurrence: apply them to all time steps at once.
        return self.heads(torch.stack(features, dim=1), z, actions), state


def mdnrnn_loss(
    output: MDNOutput,
    z_next: torch.Tensor,
    z_mask: torch.Tensor,
    done: torch.Tensor,
    done_mask: torch.Tensor,
    done_pos_weight: float = 10.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, z NLL per dimension, done BCE), each averaged over the valid steps.

    ``z_next`` (B, L, D) are the targets, valid where ``z_mask`` (B, L); ``done`` (B, L) the done targets, valid
    where ``done_mask``. The z term is the mixture NLL averaged over dimensions (Ha & Schmidhuber's scale);
    the done term is a binary cross-entropy with positives weighted by ``done_pos_weight``.
    """
    nll = mixture_nll(output.logits, output.mu, output.log_sigma, z_next.unsqueeze(-1)).mean(-1)  # (B, L)
    z_weight = z_mask.to(nll.dtype)
    z_loss = (nll * z_weight).sum() / z_weight.sum().clamp_min(1.0)
    done_weight = done_mask.to(nll.dtype)
    bce = F.binary_cross_entropy_with_logits(
        output.done_logit,
        done.to(nll.dtype),
        pos_weight=torch.tensor(done_pos_weight, dtype=nll.dtype, device=nll.device),
        reduction="none",
    )
    done_loss = (bce * done_weight).sum() / done_weight.sum().clamp_min(1.0)
    return z_loss + done_loss, z_loss, done_loss

"""LSTM controller of the DNC (Graves et al., Nature 2016, Methods "Controller network").

The controller sees chi_t = [x_t; r_{t-1}^1; ...; r_{t-1}^R]. Its gate pre-activations split as
W_x x_t + W_rh [r_{t-1}; h_{t-1}] + b: the W_x x_t part does not depend on the recurrence, so `project_input`
computes it for a whole sequence in one matmul and each step does a single (B, RW + H) x (RW + H, 4H) product.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dreamlab.dnc.state import ControllerState


class LSTMController(nn.Module):
    """One-layer LSTM over [x_t; r_{t-1}] with gates (i, f, g, o) in the layout of torch.nn.LSTM."""

    def __init__(self, input_size: int, read_size: int, hidden_size: int) -> None:
        super().__init__()
        if hidden_size < 1:
            raise ValueError(f"hidden_size must be a positive int, got {hidden_size!r}")
        self.input_size = input_size
        self.read_size = read_size
        self.hidden_size = hidden_size
        self.input_weight = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.recurrent_weight = nn.Parameter(torch.empty(4 * hidden_size, read_size + hidden_size))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch.nn.LSTM's uniform(-1/sqrt(H), 1/sqrt(H)) initialisation, forget-gate bias 1."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)
        with torch.no_grad():
            self.bias[self.hidden_size : 2 * self.hidden_size].fill_(1.0)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> ControllerState:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return ControllerState(zeros, zeros)

    def project_input(self, inputs: Tensor) -> Tensor:
        """W_x x + b for any leading shape: (..., input_size) -> (..., 4 H)."""
        return nn.functional.linear(inputs, self.input_weight, self.bias)

    def forward(
        self, projected_input: Tensor, prev_reads: Tensor, prev: ControllerState, recurrent_weight: Tensor | None = None
    ) -> ControllerState:
        """One step: projected input (B, 4H), flattened r_{t-1} (B, R W) and (h, c)_{t-1} -> (h, c)_t.

        recurrent_weight replaces the parameter (`DNC` passes it detached; see `deferred_weights`).
        """
        weight = self.recurrent_weight if recurrent_weight is None else recurrent_weight
        gates = torch.addmm(projected_input, torch.cat([prev_reads, prev.h], dim=-1), weight.t())
        # One sigmoid over all four gate blocks (the cell block's is unused) instead of three: on (B, 4H) the
        # cost is the kernel launch, forward and backward, not the arithmetic.
        input_gate, forget_gate, _, output_gate = torch.sigmoid(gates).chunk(4, dim=-1)
        cell_gate = torch.tanh(gates[:, 2 * self.hidden_size : 3 * self.hidden_size])
        c = torch.addcmul(forget_gate * prev.c, input_gate, cell_gate)
        h = output_gate * torch.tanh(c)
        return ControllerState(h, c)

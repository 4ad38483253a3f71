"""The DNC interface vector and its activations (Graves et al., Nature 2016, Methods "Interface parameters")."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from dreamlab.dnc.addressing import oneplus

READ_MODES = ("backward", "content", "forward")


class Interface(NamedTuple):
    """The interface vector xi_t split into its parts, after the paper's activations (B = batch)."""

    read_keys: Tensor  # k_t^{r,i}, (B, R, W)
    read_strengths: Tensor  # beta_t^{r,i} = oneplus(.) in [1, inf), (B, R)
    write_key: Tensor  # k_t^w, (B, 1, W)
    write_strength: Tensor  # beta_t^w = oneplus(.), (B, 1)
    erase_vector: Tensor  # e_t = sigmoid(.) in [0, 1]^W, (B, W)
    write_vector: Tensor  # v_t, (B, W)
    free_gates: Tensor  # f_t^i = sigmoid(.), (B, R)
    allocation_gate: Tensor  # g_t^a = sigmoid(.), (B, 1)
    write_gate: Tensor  # g_t^w = sigmoid(.), (B, 1)
    read_modes: Tensor  # pi_t^i = softmax(.) over (backward, content, forward), (B, R, 3)


def interface_size(word_size: int, read_heads: int) -> int:
    """|xi_t| = W R + 3 W + 5 R + 3."""
    return word_size * read_heads + 3 * word_size + 5 * read_heads + 3


def split_interface(interface_vector: Tensor, word_size: int, read_heads: int) -> Interface:
    """Split a raw interface vector (B, W R + 3 W + 5 R + 3) and apply the paper's activations."""
    width, heads = word_size, read_heads
    if interface_vector.shape[-1] != interface_size(width, heads):
        raise ValueError(
            f"interface vector has size {interface_vector.shape[-1]}, expected {interface_size(width, heads)} "
            f"for word_size={width}, read_heads={heads}"
        )
    batch = interface_vector.shape[0]
    # Paper order: xi_t = [k^r; beta^r; k^w; beta^w; e; v; f; g^a; g^w; pi].
    read_keys, read_strengths, write_key, write_strength, erase, write_vector, gates, read_modes = torch.split(
        interface_vector, [heads * width, heads, width, 1, width, width, heads + 2, 3 * heads], dim=-1
    )
    free_gates, allocation_gate, write_gate = torch.split(torch.sigmoid(gates), [heads, 1, 1], dim=-1)
    return Interface(
        read_keys=read_keys.reshape(batch, heads, width),
        read_strengths=oneplus(read_strengths),
        write_key=write_key.unsqueeze(1),
        write_strength=oneplus(write_strength),
        erase_vector=torch.sigmoid(erase),
        write_vector=write_vector,
        free_gates=free_gates,
        allocation_gate=allocation_gate,
        write_gate=write_gate,
        read_modes=torch.softmax(read_modes.reshape(batch, heads, 3), dim=-1),
    )


class InterfaceLayer(nn.Module):
    """xi_t = W_xi h_t, split and activated into an `Interface`."""

    def __init__(self, hidden_size: int, word_size: int, read_heads: int) -> None:
        super().__init__()
        self.word_size = word_size
        self.read_heads = read_heads
        self.linear = nn.Linear(hidden_size, interface_size(word_size, read_heads))

    def forward(self, hidden: Tensor, weight: Tensor | None = None, bias: Tensor | None = None) -> Interface:
        """xi_t from h_t (B, H); weight (|xi|, H) and bias (B, |xi|) replace the parameters (`DNC` passes them
        detached)."""
        if weight is None:
            return split_interface(self.linear(hidden), self.word_size, self.read_heads)
        return split_interface(torch.addmm(bias, hidden, weight.t()), self.word_size, self.read_heads)

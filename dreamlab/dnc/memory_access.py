"""Memory access of the DNC: one write head and R read heads (Graves et al., Nature 2016, Methods).

One step, in the paper's order: free gates and usage -> allocation -> write weighting -> erase and write
M_t -> link matrix L_t and precedence p_t -> read weightings (backward / content / forward) -> read vectors.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dreamlab.dnc.addressing import content_weighting
from dreamlab.dnc.allocation import allocation_weighting, retention, update_usage, write_weighting
from dreamlab.dnc.interface import Interface
from dreamlab.dnc.state import AccessState
from dreamlab.dnc.temporal_links import TemporalLinkage


def erase_and_write(memory: Tensor, write_weights: Tensor, erase_vector: Tensor, write_vector: Tensor) -> Tensor:
    """M_t = M_{t-1} o (E - w_t^w e_t^T) + w_t^w v_t^T; memory (B, N, W), w (B, N), e and v (B, W)."""
    weights = write_weights.unsqueeze(-1)
    # M - M o (w e^T) + w v^T as three element-wise kernels (w e^T, then two broadcast multiply-adds), where
    # M o (1 - w e^T) + w v^T takes four; a compiled step fuses them into one. baddbmm for the outer product
    # w v^T would copy the (B, N, W) addend into its output first.
    kept = torch.addcmul(memory, memory, weights * erase_vector.unsqueeze(-2), value=-1.0)
    return kept.addcmul_(weights, write_vector.unsqueeze(-2))


def read_weighting(
    read_modes: Tensor, backward_weights: Tensor, content_weights: Tensor, forward_weights: Tensor
) -> Tensor:
    """w_t^{r,i} = pi_t^i[1] b_t^i + pi_t^i[2] c_t^{r,i} + pi_t^i[3] f_t^i; modes (B, R, 3), others (B, R, N)."""
    modes = read_modes.unsqueeze(-1)
    mixed = torch.addcmul(modes[:, :, 1] * content_weights, modes[:, :, 0], backward_weights)
    return mixed.addcmul_(modes[:, :, 2], forward_weights)


class MemoryAccess(nn.Module):
    """Memory of N slots of width W with R read heads and one write head; sparse_links=K keeps K links per row."""

    def __init__(self, memory_slots: int, word_size: int, read_heads: int, sparse_links: int | None = None) -> None:
        super().__init__()
        for name, value in (("memory_slots", memory_slots), ("word_size", word_size), ("read_heads", read_heads)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.memory_slots = memory_slots
        self.word_size = word_size
        self.read_heads = read_heads
        self.linkage = TemporalLinkage(memory_slots, sparse_links)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> AccessState:
        """All-zero memory, weightings, usage, precedence and links at t = 0."""
        slots, heads = self.memory_slots, self.read_heads
        zeros = torch.zeros(batch_size, slots, device=device, dtype=dtype)
        return AccessState(
            memory=torch.zeros(batch_size, slots, self.word_size, device=device, dtype=dtype),
            read_weights=torch.zeros(batch_size, heads, slots, device=device, dtype=dtype),
            write_weights=zeros,
            usage=zeros,
            link=self.linkage.initial_link(batch_size, device, dtype),
            precedence=zeros,
        )

    def forward(self, interface: Interface, prev: AccessState) -> tuple[Tensor, AccessState]:
        """One memory step: (xi_t, state_{t-1}) -> (read vectors r_t (B, R, W), state_t)."""
        usage = update_usage(prev.usage, prev.write_weights, retention(interface.free_gates, prev.read_weights))
        write_content = content_weighting(prev.memory, interface.write_key, interface.write_strength).squeeze(1)
        write_weights = write_weighting(
            allocation_weighting(usage), write_content, interface.allocation_gate, interface.write_gate
        )
        memory = erase_and_write(prev.memory, write_weights, interface.erase_vector, interface.write_vector)
        link, precedence, forward_weights, backward_weights = self.linkage(
            prev.link, write_weights, prev.precedence, prev.read_weights
        )
        read_content = content_weighting(memory, interface.read_keys, interface.read_strengths)
        read_weights = read_weighting(interface.read_modes, backward_weights, read_content, forward_weights)
        read_vectors = torch.bmm(read_weights, memory)
        return read_vectors, AccessState(memory, read_weights, write_weights, usage, link, precedence)

    def extra_repr(self) -> str:
        return f"memory_slots={self.memory_slots}, word_size={self.word_size}, read_heads={self.read_heads}"

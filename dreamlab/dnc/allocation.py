"""Dynamic memory allocation of the DNC (Graves et al., Nature 2016, Methods "Dynamic memory allocation").

All functions are batched over the leading dimension B and act on N memory slots.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Usage is floored at this value before sorting (as in deepmind/dnc): a slot with usage exactly 0 would make
# the exclusive product of usages 0 for every later slot in the free list and stop gradients there.
USAGE_EPSILON = 1e-6


def retention(free_gates: Tensor, prev_read_weights: Tensor) -> Tensor:
    """psi_t = prod_i (1 - f_t^i w_{t-1}^{r,i}): how much each slot is kept by the free gates.

    free_gates (B, R) in [0, 1], prev_read_weights (B, R, N) -> (B, N).
    """
    return torch.prod(1.0 - free_gates.unsqueeze(-1) * prev_read_weights, dim=1)


def update_usage(prev_usage: Tensor, prev_write_weights: Tensor, retention_vector: Tensor) -> Tensor:
    """u_t = (u_{t-1} + w_{t-1}^w - u_{t-1} o w_{t-1}^w) o psi_t, all (B, N)."""
    # u + w - u o w = u + w o (1 - u)
    return torch.addcmul(prev_usage, prev_write_weights, 1.0 - prev_usage) * retention_vector


def allocation_weighting(usage: Tensor) -> Tensor:
    """a_t[phi_t[j]] = (1 - u_t[phi_t[j]]) prod_{i<j} u_t[phi_t[i]], phi_t the slots sorted by usage.

    usage (B, N) -> allocation weighting (B, N), summing to at most 1. phi_t is the "free list": slots in
    ascending order of usage. As in the paper, no gradient flows through the sort's permutation; it flows
    through the sorted usage values.
    """
    usage = USAGE_EPSILON + (1.0 - USAGE_EPSILON) * usage
    # Stable: slots of equal usage (all of them at t = 0) enter the free list in index order, as in the
    # fused kernel (`memory_kernels`), instead of an order that depends on the sort's implementation.
    sorted_usage, free_list = torch.sort(usage, dim=-1, stable=True)
    ones = torch.ones_like(sorted_usage[..., :1])
    exclusive_product = torch.cumprod(torch.cat([ones, sorted_usage[..., :-1]], dim=-1), dim=-1)
    sorted_allocation = (1.0 - sorted_usage) * exclusive_product
    return torch.empty_like(sorted_allocation).scatter(-1, free_list, sorted_allocation)


def write_weighting(
    allocation: Tensor, write_content_weights: Tensor, allocation_gate: Tensor, write_gate: Tensor
) -> Tensor:
    """w_t^w = g_t^w [g_t^a a_t + (1 - g_t^a) c_t^w].

    allocation and write_content_weights (B, N); the gates (B, 1) in [0, 1] -> (B, N).
    """
    return write_gate * torch.lerp(write_content_weights, allocation, allocation_gate)

"""Temporal memory linkage of the DNC (Graves et al., Nature 2016, Methods "Temporal memory linkage").

L_t[i, j] is the degree to which slot i was written right after slot j. Two representations:

- dense: L_t as a (B, N, N) tensor. The update and the forward/backward read weightings are one autograd
  function with a hand-written backward: one (B, N, N) allocation per step forward and one backward (on a
  CPU; temporaries share one per-thread buffer), and nothing saved but L_{t-1} and L_t, which the recurrence
  keeps alive anyway. No exact low-rank form exists to avoid materialising L_t: the decay (1 - w_i - w_j)
  multiplies element-wise, and its products over time do not factor into row and column scalings;
- top-K sparse (Rae et al., "Scaling Memory-Augmented Neural Networks with Sparse Reads and Writes", NeurIPS
  2016): each row keeps only its K largest entries, stored as (values, column indices) of shape (B, N, K),
  and only the K most-written rows receive new links, so memory and time are O(N K) per step instead of
  O(N^2).
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable


class TopKLinks(NamedTuple):
    """A link matrix with at most K non-zero entries per row: L[b, i, indices[b, i, k]] = values[b, i, k]."""

    values: Tensor
    indices: Tensor

    def dense(self) -> Tensor:
        """The (B, N, N) link matrix these entries stand for."""
        batch, slots, _ = self.values.shape
        zeros = self.values.new_zeros(batch, slots, slots)
        return zeros.scatter_add(-1, self.indices, self.values)


def update_precedence(prev_precedence: Tensor, write_weights: Tensor) -> Tensor:
    """p_t = (1 - sum_i w_t^w[i]) p_{t-1} + w_t^w, all (B, N)."""
    return (1.0 - write_weights.sum(-1, keepdim=True)) * prev_precedence + write_weights


class _Scratch(threading.local):
    """One (B, N, N) buffer per thread for values that live only inside one backward call of `_DenseLinkStep`.

    On a CPU a fresh 4 MB tensor (B=16, N=256) per step costs far more than its arithmetic: the allocator hands
    back memory that is cold or not yet mapped (page faults, ~2 ms per 4 MB on the machine of record). Autograd
    runs CPU nodes one at a time on the thread that called backward, so a per-thread buffer is never in use
    twice at once. Other devices keep fresh tensors: their caching allocators make them cheap, and kernels
    queued on different streams could otherwise race on one buffer.
    """

    buffer: Tensor | None = None

    def like(self, tensor: Tensor) -> Tensor:
        if tensor.device.type != "cpu" or type(tensor) is not Tensor or torch.compiler.is_compiling():
            return torch.empty_like(tensor)
        buffer = self.buffer
        if buffer is None or buffer.shape != tensor.shape or buffer.dtype != tensor.dtype:
            buffer = self.buffer = torch.empty_like(tensor)  # kept for the thread's next backward (4 MB here)
        return buffer


_SCRATCH = _Scratch()


class _DenseLinkStep(torch.autograd.Function):
    """L_t from L_{t-1}, w_t^w, p_{t-1}, then f_t = L_t w_{t-1}^r and b_t = L_t^T w_{t-1}^r, with analytic backward.

    Fusing the update with the two reads of L_t lets the backward pass form the total gradient of L_t (from the
    next step and from f_t, b_t) in one batched matmul, instead of the autograd engine allocating and adding
    three (B, N, N) gradients; autograd's version of the update would also save a (B, N, N) scale tensor.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx, prev_link: Tensor, write_weights: Tensor, prev_precedence: Tensor, prev_read_weights: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        # L_t[i, j] = (1 - w[i] - w[j]) L_{t-1}[i, j] + w[i] p_{t-1}[j], and L_t[i, i] = 0.
        link = torch.sub(1.0 - write_weights.unsqueeze(-1), write_weights.unsqueeze(-2))
        link.mul_(prev_link)
        link.addcmul_(write_weights.unsqueeze(-1), prev_precedence.unsqueeze(-2))
        link.diagonal(dim1=-2, dim2=-1).zero_()
        # f_t[r, i] = sum_j L_t[i, j] w[r, j];  b_t[r, j] = sum_i L_t[i, j] w[r, i].
        forward_weights = torch.bmm(prev_read_weights, link.transpose(-2, -1))
        backward_weights = torch.bmm(prev_read_weights, link)
        ctx.save_for_backward(prev_link, write_weights, prev_precedence, prev_read_weights, link)
        return link, forward_weights, backward_weights

    @staticmethod
    @once_differentiable
    def backward(
        ctx: FunctionCtx, grad_link: Tensor, grad_forward: Tensor, grad_backward: Tensor
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None, Tensor | None]:
        prev_link, write_weights, prev_precedence, prev_read_weights, link = ctx.saved_tensors
        need_link, need_write, need_precedence, need_read = ctx.needs_input_grad
        grad_prev_link = grad_write = grad_precedence = grad_read = None
        if need_read:
            grad_read = torch.bmm(grad_forward, link)
            grad_read.baddbmm_(grad_backward, link.transpose(-2, -1))
        # dLoss/dL_t = G_next + grad_f^T w + w^T grad_b, as one (B, N, 2R) x (B, 2R, N) product.
        grad_total = torch.baddbmm(
            grad_link,
            torch.cat([grad_forward, prev_read_weights], dim=1).transpose(-2, -1),
            torch.cat([prev_read_weights, grad_backward], dim=1),
        )
        # L_t[i, i] is the constant 0: gradient arriving there is dropped, by zeroing it in our own tensor.
        grad_total.diagonal(dim1=-2, dim2=-1).zero_()
        # One (B, N, N) scratch buffer, reused for G o L_{t-1} and then for the decay factors, and the gradient
        # for L_{t-1} written over grad_total: no fresh 4 MB allocation but grad_total's.
        scratch = _SCRATCH.like(grad_total)
        if need_write:
            # dL[i, j]/dw[i] = p[j] - L_{t-1}[i, j] and dL[i, j]/dw[j] = -L_{t-1}[i, j] for i != j.
            torch.mul(grad_total, prev_link, out=scratch)
            # (row vector) x (matrix) products: much faster on CPU than (matrix) x (column vector) bmm.
            grad_write = torch.bmm(prev_precedence.unsqueeze(-2), grad_total.transpose(-2, -1)).squeeze(-2)
            grad_write -= scratch.sum(-1) + scratch.sum(-2)
        if need_precedence:
            # dL[i, j]/dp[j] = w[i] for i != j.
            grad_precedence = torch.bmm(write_weights.unsqueeze(-2), grad_total).squeeze(-2)
        if need_link:
            torch.sub(1.0 - write_weights.unsqueeze(-1), write_weights.unsqueeze(-2), out=scratch)
            grad_prev_link = grad_total.mul_(scratch)
        return grad_prev_link, grad_write, grad_precedence, grad_read


def dense_link_step(
    prev_link: Tensor, write_weights: Tensor, prev_precedence: Tensor, prev_read_weights: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Link update and directional read weightings with a dense (B, N, N) link matrix.

    L_t = (1 - w 1^T - 1 w^T) o L_{t-1} + w p_{t-1}^T with zero diagonal; f_t^i = L_t w_{t-1}^{r,i},
    b_t^i = L_t^T w_{t-1}^{r,i}. prev_link (B, N, N); write_weights, prev_precedence (B, N);
    prev_read_weights (B, R, N) -> L_t (B, N, N), f_t (B, R, N), b_t (B, R, N).
    """
    return _DenseLinkStep.apply(prev_link, write_weights, prev_precedence, prev_read_weights)


def topk_link_update(prev_link: TopKLinks, write_weights: Tensor, prev_precedence: Tensor) -> TopKLinks:
    """The link update of `dense_link_update` restricted to K entries per row (Rae et al. 2016).

    Every stored entry decays by (1 - w[i] - w[j]) exactly. New links w[i] p[j] are added only to the K rows
    with the largest write weight (the sparse write weighting of Rae et al.); those rows are rebuilt densely,
    (B, K, N), and truncated back to their K largest entries. With K = N this equals the dense update.
    prev_link (B, N, K) entries; write_weights, prev_precedence (B, N) -> L_t as (B, N, K) entries.
    """
    values, indices = prev_link
    batch, slots, k = values.shape
    column_weights = torch.gather(write_weights, -1, indices.view(batch, slots * k)).view(batch, slots, k)
    values = values * (1.0 - write_weights.unsqueeze(-1) - column_weights)

    row_weights, rows = torch.topk(write_weights, k, dim=-1)
    row_index = rows.unsqueeze(-1).expand(batch, k, k)
    old_values = torch.gather(values, 1, row_index)
    old_indices = torch.gather(indices, 1, row_index)
    dense_rows = torch.baddbmm(
        values.new_zeros(batch, k, slots).scatter_add(-1, old_indices, old_values),
        row_weights.unsqueeze(-1),
        prev_precedence.unsqueeze(-2),
    )
    dense_rows = dense_rows.scatter(-1, rows.unsqueeze(-1), 0.0)  # L_t[i, i] = 0
    new_values, new_indices = torch.topk(dense_rows, k, dim=-1)
    return TopKLinks(values.scatter(1, row_index, new_values), indices.scatter(1, row_index, new_indices))


def topk_directional_weights(link: TopKLinks, prev_read_weights: Tensor) -> tuple[Tensor, Tensor]:
    """f_t^i = L_t w_{t-1}^{r,i}, b_t^i = L_t^T w_{t-1}^{r,i} for a top-K link matrix, in O(B R N K).

    link values and indices (B, N, K), prev_read_weights (B, R, N) -> forward, backward, each (B, R, N).
    """
    values, indices = link
    batch, slots, k = values.shape
    heads = prev_read_weights.shape[1]
    flat_indices = indices.reshape(batch, 1, slots * k).expand(batch, heads, slots * k)
    # f[r, i] = sum_k values[i, k] w[r, indices[i, k]]
    gathered = torch.gather(prev_read_weights, -1, flat_indices).view(batch, heads, slots, k)
    forward = (gathered * values.unsqueeze(1)).sum(-1)
    # b[r, j] = sum over entries (i, k) with indices[i, k] = j of values[i, k] w[r, i]
    contributions = values.unsqueeze(1) * prev_read_weights.unsqueeze(-1)
    backward = prev_read_weights.new_zeros(batch, heads, slots).scatter_add(
        -1, flat_indices, contributions.reshape(batch, heads, slots * k)
    )
    return forward, backward


class TemporalLinkage(nn.Module):
    """The link matrix L_t and precedence p_t of one write head, dense or top-K sparse (sparse_links=K)."""

    def __init__(self, memory_slots: int, sparse_links: int | None = None) -> None:
        super().__init__()
        if sparse_links is not None and not 1 <= sparse_links <= memory_slots:
            raise ValueError(f"sparse_links must be in [1, memory_slots={memory_slots}], got {sparse_links}")
        self.memory_slots = memory_slots
        self.sparse_links = sparse_links

    def initial_link(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> Tensor | TopKLinks:
        """L_0 = 0."""
        slots = self.memory_slots
        if self.sparse_links is None:
            return torch.zeros(batch_size, slots, slots, device=device, dtype=dtype)
        shape = (batch_size, slots, self.sparse_links)
        return TopKLinks(
            torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=torch.long)
        )

    def forward(
        self, prev_link: Tensor | TopKLinks, write_weights: Tensor, prev_precedence: Tensor, prev_read_weights: Tensor
    ) -> tuple[Tensor | TopKLinks, Tensor, Tensor, Tensor]:
        """(L_{t-1}, w_t^w, p_{t-1}, w_{t-1}^r) -> (L_t, p_t, forward weights f_t, backward weights b_t)."""
        precedence = update_precedence(prev_precedence, write_weights)
        if self.sparse_links is None:
            link, forward_weights, backward_weights = dense_link_step(
                prev_link, write_weights, prev_precedence, prev_read_weights
            )
        else:
            link = topk_link_update(prev_link, write_weights, prev_precedence)
            forward_weights, backward_weights = topk_directional_weights(link, prev_read_weights)
        return link, precedence, forward_weights, backward_weights

    def extra_repr(self) -> str:
        return f"memory_slots={self.memory_slots}, sparse_links={self.sparse_links}"

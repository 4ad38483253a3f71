"""Temporal memory linkage of the DNC (Graves et al., Nature 2016, Methods "Temporal memory linkage").

L_t[i, j] is the degree to which slot i was written right after slot j. Two representations:

- dense: L_t as a (B, N, N) tensor. The update and the forward/backward read weightings are one autograd
  function with a hand-written backward, and nothing (B, N, N) is saved but L_{t-1} and L_t, which the
  recurrence keeps alive anyway. On CPU float32/float64 tensors with R <= 4 read heads it runs as numba
  kernels (`link_kernels`) making one pass over the (B, N, N) tensors per direction, into warm buffers of a
  pool instead of fresh allocations; elsewhere (GPUs, other dtypes, more heads) as torch operations. No
  exact low-rank form exists to avoid materialising L_t: the decay (1 - w_i - w_j) multiplies element-wise,
  and its products over time do not factor into row and column scalings;
- top-K sparse (Rae et al., "Scaling Memory-Augmented Neural Networks with Sparse Reads and Writes", NeurIPS
  2016): each row keeps only its K largest entries, stored as (values, column indices) of shape (B, N, K),
  and only the K most-written rows receive new links, so memory and time are O(N K) per step instead of
  O(N^2).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable

from dreamlab.dnc.link_kernels import HEADS, LINK_BUFFERS, link_step_backward, link_step_forward, run_split


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
        # One (B, N, N) scratch tensor, for G o L_{t-1} and then for the decay factors, and the gradient for
        # L_{t-1} written over grad_total (our own tensor).
        scratch = torch.empty_like(grad_total)
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


def _padded_heads(weights: Tensor) -> Tensor:
    """(B, R, N) -> C-contiguous (B, HEADS, N), the heads past R all zero (they then add nothing anywhere)."""
    heads = weights.shape[1]
    if heads == HEADS:
        return weights.contiguous()
    return torch.cat([weights, weights.new_zeros(weights.shape[0], HEADS - heads, weights.shape[2])], dim=1)


# The numba kernels as torch operators (see `kernel_applies` for where they apply), so that torch.compile keeps
# the whole step in one graph and calls them as opaque kernels instead of breaking the graph around them.
# After changing their signatures, clear torch.compile's cache (/tmp/torchinductor_<user>): its keys do not
# cover the autograd formula registered below, and a stale compiled backward calls the old signature.
@torch.library.custom_op("dreamlab::dnc_link_step", mutates_args=(), device_types="cpu")
def _kernel_link_step(
    prev_link: Tensor, write_weights: Tensor, prev_precedence: Tensor, prev_read_weights: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """`_DenseLinkStep.forward` in one pass (`link_kernels.link_step_forward`), L_t into a pooled buffer."""
    prev_link, write, precedence = (t.contiguous() for t in (prev_link, write_weights, prev_precedence))
    read = _padded_heads(prev_read_weights)
    link = LINK_BUFFERS.empty(tuple(prev_link.shape), prev_link.dtype)
    forward_weights, backward_weights = torch.zeros_like(read), torch.zeros_like(read)
    arrays = (prev_link, 1.0 - write, write, precedence, read, link, forward_weights, backward_weights)
    run_split(link_step_forward, *(t.numpy() for t in arrays))
    heads = prev_read_weights.shape[1]
    return link, forward_weights[:, :heads].contiguous(), backward_weights[:, :heads].contiguous()


@_kernel_link_step.register_fake
def _(
    prev_link: Tensor, write_weights: Tensor, prev_precedence: Tensor, prev_read_weights: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    return torch.empty_like(prev_link), torch.empty_like(prev_read_weights), torch.empty_like(prev_read_weights)


@torch.library.custom_op("dreamlab::dnc_link_step_backward", mutates_args=(), device_types="cpu")
def _kernel_link_step_backward(
    grad_link: Tensor,
    grad_forward: Tensor,
    grad_backward: Tensor,
    prev_link: Tensor,
    write_weights: Tensor,
    prev_precedence: Tensor,
    prev_read_weights: Tensor,
    need_prev_link: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """`_DenseLinkStep.backward` in one pass (`link_kernels.link_step_backward`): the gradients of prev_link
    (into a pooled buffer; empty unless need_prev_link), write_weights, prev_precedence, prev_read_weights."""
    prev_link, write, precedence = (t.contiguous() for t in (prev_link, write_weights, prev_precedence))
    read, grad_forward, grad_backward = (_padded_heads(t) for t in (prev_read_weights, grad_forward, grad_backward))
    grad_write, grad_precedence, grad_read = torch.zeros_like(write), torch.zeros_like(write), torch.zeros_like(read)
    # A free pooled buffer, never grad_link itself (a hook on L_t may have kept that one). Unasked for, the
    # kernel gets prev_link in its place and leaves it alone.
    grad_prev_link = LINK_BUFFERS.empty(tuple(prev_link.shape), prev_link.dtype) if need_prev_link else prev_link
    arrays = (grad_link.contiguous(), grad_forward, grad_backward, prev_link, 1.0 - write, write, precedence, read)
    run_split(
        link_step_backward,
        *(t.numpy() for t in arrays),
        need_prev_link,
        *(t.numpy() for t in (grad_prev_link, grad_write, grad_precedence, grad_read)),
    )
    if not need_prev_link:
        grad_prev_link = prev_link.new_empty(0, 0, 0)
    return grad_prev_link, grad_write, grad_precedence, grad_read[:, : prev_read_weights.shape[1]].contiguous()


@_kernel_link_step_backward.register_fake
def _(
    grad_link: Tensor,
    grad_forward: Tensor,
    grad_backward: Tensor,
    prev_link: Tensor,
    write_weights: Tensor,
    prev_precedence: Tensor,
    prev_read_weights: Tensor,
    need_prev_link: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    grad_prev_link = torch.empty_like(prev_link) if need_prev_link else prev_link.new_empty(0, 0, 0)
    return (
        grad_prev_link,
        torch.empty_like(write_weights),
        torch.empty_like(write_weights),
        torch.empty_like(prev_read_weights),
    )


def _save_link_step_inputs(ctx: FunctionCtx, inputs: tuple[Tensor, ...], output: tuple[Tensor, ...]) -> None:
    ctx.save_for_backward(*inputs)


def _link_step_gradients(
    ctx: FunctionCtx, grad_link: Tensor, grad_forward: Tensor, grad_backward: Tensor
) -> tuple[Tensor | None, Tensor | None, Tensor | None, Tensor | None]:
    need = ctx.needs_input_grad
    grads = _kernel_link_step_backward(grad_link, grad_forward, grad_backward, *ctx.saved_tensors, need[0])
    return tuple(grad if needed else None for grad, needed in zip(grads, need, strict=True))


_kernel_link_step.register_autograd(_link_step_gradients, setup_context=_save_link_step_inputs)


def kernel_applies(
    prev_link: Tensor, write_weights: Tensor, prev_precedence: Tensor, prev_read_weights: Tensor
) -> bool:
    """Whether the numba kernels take these inputs: plain CPU tensors, all float32 or all float64, and at most
    `link_kernels.HEADS` read heads."""
    tensors = (prev_link, write_weights, prev_precedence, prev_read_weights)
    dtype = prev_link.dtype
    return (
        dtype in (torch.float32, torch.float64)
        and all(type(t) is Tensor and t.device.type == "cpu" and t.dtype == dtype for t in tensors)
        and prev_read_weights.dim() == 3
        and prev_read_weights.shape[1] <= HEADS
    )


def dense_link_step(
    prev_link: Tensor, write_weights: Tensor, prev_precedence: Tensor, prev_read_weights: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Link update and directional read weightings with a dense (B, N, N) link matrix.

    L_t = (1 - w 1^T - 1 w^T) o L_{t-1} + w p_{t-1}^T with zero diagonal; f_t^i = L_t w_{t-1}^{r,i},
    b_t^i = L_t^T w_{t-1}^{r,i}. prev_link (B, N, N); write_weights, prev_precedence (B, N);
    prev_read_weights (B, R, N) -> L_t (B, N, N), f_t (B, R, N), b_t (B, R, N). CPU float32/float64 inputs
    with R <= 4 go through numba kernels (`link_kernels`), others (GPU tensors, other dtypes, more heads)
    through torch operations.
    """
    inputs = (prev_link, write_weights, prev_precedence, prev_read_weights)
    if kernel_applies(*inputs):
        _check_shapes(*inputs)  # the kernels index without bounds checks
        return _kernel_link_step(*inputs)
    return _DenseLinkStep.apply(*inputs)


def _check_shapes(prev_link: Tensor, write_weights: Tensor, prev_precedence: Tensor, prev_read_weights: Tensor) -> None:
    shapes = [tuple(t.shape) for t in (prev_link, write_weights, prev_precedence, prev_read_weights)]
    if write_weights.dim() == 2 and prev_read_weights.dim() == 3:
        (batch, slots), heads = write_weights.shape, prev_read_weights.shape[1]
        if shapes == [(batch, slots, slots), (batch, slots), (batch, slots), (batch, heads, slots)]:
            return
    raise ValueError(
        "dense_link_step expects prev_link (B, N, N), write_weights and prev_precedence (B, N) and "
        f"prev_read_weights (B, R, N); got shapes {shapes}"
    )


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

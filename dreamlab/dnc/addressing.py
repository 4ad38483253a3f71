"""Content-based addressing of the DNC (Graves et al., Nature 2016, Methods "Content-based addressing")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import FunctionCtx

# Added under the square root of every norm so an all-zero memory row (the initial memory) has a finite
# cosine similarity of 0 and a finite gradient instead of 0/0.
NORM_EPSILON = 1e-6


def oneplus(x: Tensor) -> Tensor:
    """oneplus(x) = 1 + log(1 + e^x), the paper's activation for key strengths, range [1, inf)."""
    return 1.0 + F.softplus(x)


class _KeyMemoryDots(torch.autograd.Function):
    """keys @ memory^T, (B, H, W) x (B, N, W) -> (B, H, N), with each backward product in a CPU-friendly layout.

    Autograd's own backward of bmm(keys, memory^T) forms dLoss/dmemory as (B, W, N), transposed against memory and
    the other gradients summed into it (a compiled step then transposes it tile by tile); that of
    bmm(memory, keys^T) forms dLoss/dkeys as (B, W, N) x (B, N, H), a product ~6x slower on a CPU than
    (B, H, N) x (B, N, W). Here dkeys = dD memory and dmemory = dD^T keys, both in their tensors' layouts
    (measured at the benchmark's size: the three products 0.17 ms per step instead of 0.5 ms).
    """

    @staticmethod
    def forward(ctx: FunctionCtx, keys: Tensor, memory: Tensor) -> Tensor:
        ctx.save_for_backward(keys, memory)
        return torch.bmm(keys, memory.transpose(1, 2))

    @staticmethod
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        keys, memory = ctx.saved_tensors
        grad_keys = torch.bmm(grad, memory) if ctx.needs_input_grad[0] else None
        grad_memory = torch.bmm(grad.transpose(1, 2), keys) if ctx.needs_input_grad[1] else None
        return grad_keys, grad_memory


def cosine_similarity(keys: Tensor, memory: Tensor, epsilon: float = NORM_EPSILON) -> Tensor:
    """D(k, M[i, .]) = k . M[i, .] / (|k| |M[i, .]|) for every key and memory row.

    keys (B, H, W) and memory (B, N, W) -> similarities (B, H, N). The dot products come from one batched
    matmul and are divided by the norms afterwards, on (B, H, N): normalising the (B, N, W) memory first
    would cost several more passes over it, forward and backward, at every step.
    """
    dots = _KeyMemoryDots.apply(keys, memory)
    # Squared norms as (x * x).sum(-1): forward + backward ~2.5x faster on a CPU than vector_norm(x).square(),
    # whose backward divides by the norm and masks zero norms, over the whole (B, N, W) memory.
    inverse_key_norms = torch.rsqrt((keys * keys).sum(-1) + epsilon)
    inverse_memory_norms = torch.rsqrt((memory * memory).sum(-1) + epsilon)
    return dots * inverse_key_norms.unsqueeze(-1) * inverse_memory_norms.unsqueeze(-2)


def content_weighting(memory: Tensor, keys: Tensor, strengths: Tensor) -> Tensor:
    """C(M, k, beta)[i] = exp(beta D(k, M[i])) / sum_j exp(beta D(k, M[j])) (Methods, eq. for C).

    memory (B, N, W), keys (B, H, W), strengths (B, H) with beta >= 1 -> weightings (B, H, N), each row on
    the simplex. The softmax subtracts its maximum, so large strengths cannot overflow.
    """
    similarity = cosine_similarity(keys, memory)
    return torch.softmax(similarity * strengths.unsqueeze(-1), dim=-1)

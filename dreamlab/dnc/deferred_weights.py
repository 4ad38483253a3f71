"""Weight gradients of the DNC's recurrent products, computed once per sequence instead of once per step.

At every step the controller computes gates_t = a_t + x_t W^T (a_t = W_x x_t + b, projected for the whole
sequence beforehand; x_t = [r_{t-1}; h_{t-1}]) and the interface xi_t = b_xi + h_t W_xi^T. Left to autograd,
the backward of each step makes its own weight gradient, dLoss/dgates_t^T x_t: a (4H, RW + H) product with an
inner dimension of only B, whose 2 MB result is then added into W.grad, at every one of T steps. But
dLoss/dW = sum_t dLoss/dgates_t^T x_t = G^T X with G and X stacked over time: one product with inner dimension
T B, run once the whole sequence's gradients are known.

So the steps use the weights detached (their backward computes gradients for x_t only), and `DeferredWeightGradient`
sits on a_t, which enters gates_t with coefficient 1: the gradient arriving at a_t for all t is G, complete only
after every step's backward, and there it adds G^T X to W's gradient. X is known only after the forward of all
steps, so it is handed over through a `SequenceInputs` filled in after the unroll.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable


class SequenceInputs:
    """The inputs x_t of a recurrent product over a sequence, (T, B, in_features), set once the unroll is done."""

    def __init__(self) -> None:
        self.inputs: Tensor | None = None


class DeferredWeightGradient(torch.autograd.Function):
    """Identity on `addend` (T, B, out); backward also gives weight (out, in) the gradient sum_t g_t^T x_t.

    For y_t = addend_t + x_t weight^T computed with weight detached, where `inputs.inputs` holds x_t (T, B, in).
    """

    @staticmethod
    def forward(ctx: FunctionCtx, addend: Tensor, weight: Tensor, inputs: SequenceInputs) -> Tensor:
        ctx.inputs = inputs
        return addend.view_as(addend)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor, Tensor | None, None]:
        grad_weight = None
        if ctx.needs_input_grad[1]:
            inputs = ctx.inputs.inputs
            if inputs is None:
                raise RuntimeError("the sequence inputs of a deferred weight gradient were never set")
            grad_weight = grad.reshape(-1, grad.shape[-1]).t().mm(inputs.reshape(-1, inputs.shape[-1]))
        return grad, grad_weight, None

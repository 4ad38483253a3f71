"""A whole DNC step (controller, interface, memory access) as one autograd function with numba memory kernels.

`DNCCell.advance` takes this path where `fused_step_applies` (CPU tensors, all float32 or all float64, dense
links, at most `link_kernels.HEADS` read heads); elsewhere (GPUs, other dtypes, more heads, sparse links) it
composes the modules' torch operations, the reference this step is tested against.

The step is the modules' equations in their order: the LSTM controller on [r_{t-1}; h_{t-1}], the interface
xi_t = W_xi h_t + b with the paper's activations, then the memory access of `memory_kernels` and `link_kernels`
(usage and allocation, write, links, read) and the precedence. The backward runs them in reverse by hand:
the memory kernels' backward passes, the activations' derivatives, and the two products of the controller,
(B, 4H) x (4H, RW + H) and (B, |xi|) x (|xi|, H), as torch matmuls.

Why: composed of torch operators, a step is ~150 kernels forward and backward, each with its dispatch, its
autograd node and a pass over its tensor. At the size of `experiments/dnc_benchmark.py`, even compiled, only
about half of a step was the link kernels and the products (py-spy, one thread); here it is ~85%, and autograd
sees one node per step (`results/dnc/benchmark.json`: `dreamlab` against `dreamlab_modules_compiled`).
Weights may come in detached, as `DNC` passes them (their gradients are then formed once per sequence by
`deferred_weights`), or as the parameters, whose gradients this step then forms itself.
(B, N, W) and (B, N, N) outputs come from warm buffer pools (`link_kernels.BufferPool`): a fresh 1 MB or 4 MB
tensor costs page faults at every step. With several threads the kernels split the batch over them while torch runs
the step's own small operations on one (`link_kernels.torch_on_one_thread`: its idle OpenMP threads would spin
on the kernels' cores).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable

from dreamlab.dnc.addressing import NORM_EPSILON
from dreamlab.dnc.allocation import USAGE_EPSILON
from dreamlab.dnc.link_kernels import HEADS, LINK_BUFFERS, BufferPool, run_split, torch_on_one_thread
from dreamlab.dnc.state import ControllerState, DNCState
from dreamlab.dnc.step_kernels import access_backward, access_forward, lstm_backward

MEMORY_BUFFERS = BufferPool()  # M_t and the gradients of M_{t-1}, (B, N, W)


def fused_step_applies(projected_input: Tensor, state: DNCState, *weights: Tensor) -> bool:
    """Whether `fused_step` takes this step: plain CPU tensors all of one dtype, float32 or float64, a dense
    (B, N, N) link matrix and at most `link_kernels.HEADS` read heads."""
    tensors = (projected_input, *weights, *state[:-1], *state.controller)
    dtype = projected_input.dtype
    return (
        dtype in (torch.float32, torch.float64)
        and all(type(t) in (Tensor, nn.Parameter) and t.device.type == "cpu" and t.dtype == dtype for t in tensors)
        and state.read_weights.shape[1] <= HEADS
    )


def fused_step(
    projected_input: Tensor, state: DNCState, recurrent_weight: Tensor, interface_weight: Tensor, interface_bias: Tensor
) -> DNCState:
    """One DNC step from the controller's projected input W_x x_t + b (B, 4H) and state_{t-1} -> state_t.

    recurrent_weight (4H, RW + H) and interface_weight (|xi|, H) as in `LSTMController` and `InterfaceLayer`;
    interface_bias (|xi|,) or (B, |xi|).
    """
    outputs = _FusedStep.apply(
        projected_input, recurrent_weight, interface_weight, interface_bias, *state.controller, *state[:-1]
    )
    h, c, memory, read_vectors, read_weights, write_weights, usage, link, precedence = outputs
    return DNCState(memory, read_vectors, read_weights, write_weights, usage, link, precedence, ControllerState(h, c))


def _scalars(dtype: np.dtype) -> tuple[np.floating, np.floating, np.floating]:
    """NORM_EPSILON, 1 and USAGE_EPSILON as numpy scalars of the arrays' dtype (numba types them exactly)."""
    return dtype.type(NORM_EPSILON), dtype.type(1.0), dtype.type(USAGE_EPSILON)


def _padded(array: np.ndarray) -> np.ndarray:
    """(B, R, ...) -> C-contiguous (B, HEADS, ...), the heads past R zero."""
    if array.shape[1] == HEADS:
        return np.ascontiguousarray(array)
    padded = np.zeros((array.shape[0], HEADS, *array.shape[2:]), dtype=array.dtype)
    padded[:, : array.shape[1]] = array
    return padded


class _Intermediates(NamedTuple):
    """The forward kernel's arrays that the backward kernel reads again, kept as numpy arrays on the context."""

    interface: tuple[np.ndarray, ...]  # the ten activated interface arrays of `interface_forward`, heads padded
    padded_prev_read_weights: np.ndarray  # (B, HEADS, N)
    keep: np.ndarray  # (B, N) retention psi_t
    allocation: np.ndarray  # (B, N) a_t
    free_list: np.ndarray  # (B, N) int64, slots by usage
    write_addressing: tuple[np.ndarray, np.ndarray, np.ndarray]  # content weighting, similarity D, 1/|M_n|
    directional: tuple[np.ndarray, np.ndarray]  # forward and backward weightings f_t, b_t, (B, HEADS, N)
    read_addressing: tuple[np.ndarray, np.ndarray, np.ndarray]  # content weightings, similarities, 1/|M_n|


def _with_torch_on_one_thread(method: Callable[..., Any]) -> Callable[..., Any]:
    """The autograd method with torch on one thread (`torch_on_one_thread`: the step's products are small, and torch's
    idle OpenMP threads would spin on the kernels' cores); the thread count it had, which the kernels split the batch
    over, is ``ctx.kernel_threads``."""

    @functools.wraps(method)
    def on_one_thread(ctx: FunctionCtx, *args: Tensor) -> Any:
        with torch_on_one_thread() as threads:
            ctx.kernel_threads = threads
            return method(ctx, *args)

    return on_one_thread


class _FusedStep(torch.autograd.Function):
    """(projected input, W, W_xi, b_xi, h, c, M, r, w^r, w^w, u, L, p)_{t-1} -> (h, c, M, r, w^r, w^w, u, L, p)_t."""

    @staticmethod
    @_with_torch_on_one_thread
    def forward(
        ctx: FunctionCtx,
        projected: Tensor,
        recurrent_weight: Tensor,
        interface_weight: Tensor,
        interface_bias: Tensor,
        prev_h: Tensor,
        prev_c: Tensor,
        prev_memory: Tensor,
        prev_read_vectors: Tensor,
        prev_read_weights: Tensor,
        prev_write_weights: Tensor,
        prev_usage: Tensor,
        prev_link: Tensor,
        prev_precedence: Tensor,
    ) -> tuple[Tensor, ...]:
        batch, slots, width = prev_memory.shape
        heads, hidden = prev_read_weights.shape[1], prev_h.shape[1]

        # Controller (Methods, "Controller network"): gates = W_x x_t + b + W [r_{t-1}; h_{t-1}] in torch.nn.LSTM's
        # (i, f, g, o) layout; then the interface vector xi_t = W_xi h_t + b_xi, raw.
        controller_input = torch.cat([prev_read_vectors.reshape(batch, -1), prev_h], dim=1)
        gates = torch.addmm(projected, controller_input, recurrent_weight.t())
        activated = torch.sigmoid(gates)
        activated[:, 2 * hidden : 3 * hidden] = torch.tanh(gates[:, 2 * hidden : 3 * hidden])
        input_gate, forget_gate, cell_gate, output_gate = activated.chunk(4, dim=1)
        c = torch.addcmul(forget_gate * prev_c, input_gate, cell_gate)
        tanh_c = torch.tanh(c)
        h = output_gate * tanh_c
        raw = torch.addmm(interface_bias, h, interface_weight.t())

        # Interface activations and memory access (Methods), one numba call: `step_kernels.access_forward`.
        dtype = raw.numpy().dtype
        eps, one, floor = _scalars(dtype)

        def empty(*shape: int) -> np.ndarray:
            return np.empty(shape, dtype=dtype)

        interface = (
            empty(batch, HEADS, width),  # padded read keys
            empty(batch, HEADS),  # padded read strengths
            empty(batch, width),  # write key
            empty(batch),  # write strength
            empty(batch, width),  # erase
            empty(batch, width),  # write vector
            empty(batch, heads),  # free gates
            empty(batch),  # allocation gate
            empty(batch),  # write gate
            empty(batch, HEADS, 3),  # padded read modes
        )
        padded_prev_read_weights, keep = empty(batch, HEADS, slots), empty(batch, slots)
        usage, write_weights, precedence = (prev_usage.new_empty(batch, slots) for _ in range(3))
        allocation, free_list = empty(batch, slots), np.empty((batch, slots), dtype=np.int64)
        write_addressing = (empty(batch, slots), empty(batch, slots), empty(batch, slots))  # content, D, 1/|M_n|
        memory = MEMORY_BUFFERS.empty((batch, slots, width), prev_memory.dtype)
        link = LINK_BUFFERS.empty((batch, slots, slots), prev_memory.dtype)
        directional = (empty(batch, HEADS, slots), empty(batch, HEADS, slots))  # f_t, b_t
        read_addressing = (empty(batch, HEADS, slots), empty(batch, HEADS, slots), empty(batch, slots))
        read_weights, read_vectors = (
            prev_memory.new_empty(batch, HEADS, slots),
            prev_memory.new_empty(batch, HEADS, width),
        )
        prev = [t.contiguous() for t in (prev_memory, prev_read_weights, prev_write_weights, prev_usage, prev_link)]
        prev_precedence = prev_precedence.contiguous()
        run_split(
            access_forward,
            raw.numpy(),
            *(t.numpy() for t in (*prev, prev_precedence)),
            eps,
            one,
            floor,
            *interface,
            padded_prev_read_weights,
            keep,
            usage.numpy(),
            allocation,
            free_list,
            *write_addressing,
            write_weights.numpy(),
            memory.numpy(),
            link.numpy(),
            *directional,
            *read_addressing,
            read_weights.numpy(),
            read_vectors.numpy(),
            precedence.numpy(),
            threads=ctx.kernel_threads,
        )
        # Tensors for autograd's checks (inputs, outputs); the kernels' own intermediates as arrays.
        ctx.save_for_backward(
            recurrent_weight, interface_weight, prev_c, *prev, prev_precedence, controller_input, activated,
            tanh_c, h, raw, usage, write_weights, memory, read_weights,
        )  # fmt: skip
        ctx.intermediates = _Intermediates(
            interface, padded_prev_read_weights, keep, allocation, free_list, write_addressing, directional,
            read_addressing,
        )  # fmt: skip
        ctx.bias_shape = interface_bias.shape
        if heads < HEADS:
            read_vectors, read_weights = read_vectors[:, :heads].contiguous(), read_weights[:, :heads].contiguous()
        return h, c, memory, read_vectors, read_weights, write_weights, usage, link, precedence

    @staticmethod
    @once_differentiable
    @_with_torch_on_one_thread
    def backward(
        ctx: FunctionCtx,
        grad_h: Tensor,
        grad_c: Tensor,
        grad_memory: Tensor,
        grad_read_vectors: Tensor,
        grad_read_weights: Tensor,
        grad_write_weights: Tensor,
        grad_usage: Tensor,
        grad_link: Tensor,
        grad_precedence: Tensor,
    ) -> tuple[Tensor | None, ...]:
        (
            recurrent_weight, interface_weight, prev_c, prev_memory, prev_read_weights, prev_write_weights,
            prev_usage, prev_link, prev_precedence, controller_input, activated, tanh_c, h, raw, usage,
            write_weights, memory, padded_read_weights,
        ) = ctx.saved_tensors  # fmt: skip
        batch, slots, width = prev_memory.shape
        heads = prev_read_weights.shape[1]
        eps, one, floor = _scalars(raw.numpy().dtype)
        need = ctx.needs_input_grad

        grad_raw = torch.empty_like(raw)
        grad_prev_memory = MEMORY_BUFFERS.empty((batch, slots, width), prev_memory.dtype)
        grad_memory_total = MEMORY_BUFFERS.empty((batch, slots, width), prev_memory.dtype)
        # A free pooled buffer for dLoss/dL_{t-1}, never grad_link itself (a hook on L_t may keep it); unasked
        # for, the kernel gets prev_link in its place and leaves it alone.
        grad_prev_link = LINK_BUFFERS.empty((batch, slots, slots), prev_memory.dtype) if need[11] else prev_link
        grad_prev_read_weights = torch.empty_like(prev_read_weights)
        grad_prev_write_weights, grad_prev_usage, grad_prev_precedence = (
            torch.empty_like(prev_usage) for _ in range(3)
        )
        grads = [t.contiguous().numpy() for t in (grad_memory, grad_read_vectors, grad_read_weights)]
        grads += [t.contiguous().numpy() for t in (grad_write_weights, grad_usage, grad_link, grad_precedence)]
        grads[1], grads[2] = _padded(grads[1]), _padded(grads[2])
        saved = ctx.intermediates
        run_split(
            access_backward,
            *grads,
            raw.numpy(),
            *(t.numpy() for t in (prev_memory, prev_read_weights, prev_write_weights, prev_usage, prev_link)),
            prev_precedence.numpy(),
            *saved.interface,
            saved.padded_prev_read_weights,
            saved.keep,
            usage.numpy(),
            saved.allocation,
            saved.free_list,
            *saved.write_addressing,
            write_weights.numpy(),
            memory.numpy(),
            *saved.directional,
            *saved.read_addressing,
            _padded(padded_read_weights.numpy()),
            eps,
            one,
            floor,
            bool(need[11]),
            grad_raw.numpy(),
            grad_prev_memory.numpy(),
            grad_prev_read_weights.numpy(),
            grad_prev_write_weights.numpy(),
            grad_prev_usage.numpy(),
            grad_prev_link.numpy(),
            grad_prev_precedence.numpy(),
            grad_memory_total.numpy(),
            threads=ctx.kernel_threads,
        )

        # Controller: h = o tanh(c), c = f c_{t-1} + i g, then the two products.
        grad_h_total = torch.addmm(grad_h, grad_raw, interface_weight)
        grad_gates, grad_prev_c = torch.empty_like(activated), torch.empty_like(prev_c)
        arrays = (grad_h_total, grad_c.contiguous(), activated, tanh_c, prev_c.contiguous())
        lstm_backward(*(t.numpy() for t in arrays), one, grad_gates.numpy(), grad_prev_c.numpy())
        grad_controller_input = grad_gates.mm(recurrent_weight)
        return (
            grad_gates,
            grad_gates.t().mm(controller_input) if need[1] else None,
            grad_raw.t().mm(h) if need[2] else None,
            grad_raw.sum(0) if len(ctx.bias_shape) == 1 else grad_raw,
            grad_controller_input[:, heads * width :],
            grad_prev_c,
            grad_prev_memory,
            grad_controller_input[:, : heads * width].reshape(batch, heads, width),
            grad_prev_read_weights,
            grad_prev_write_weights,
            grad_prev_usage,
            grad_prev_link if need[11] else None,
            grad_prev_precedence,
        )

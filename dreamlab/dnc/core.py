"""The Differentiable Neural Computer (Graves et al., "Hybrid computing using a neural network with dynamic
external memory", Nature 538, 2016): an LSTM controller coupled to a memory with content addressing, dynamic
allocation and temporal links.

`DNCCell` is one step (for stepping inside a dream or any hand-written loop); `DNC` unrolls a cell over a
sequence, batching the work that does not depend on the recurrence (the input projection of the controller
and the output layer) over all time steps. `DNC(..., compile=True)` runs the recurrent step through
`torch.compile`, which fuses its many small element-wise operations (forward and backward) into a few C++ loops.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from dreamlab.dnc.controller import LSTMController
from dreamlab.dnc.deferred_weights import DeferredWeightGradient, SequenceInputs
from dreamlab.dnc.fused_step import fused_step, fused_step_applies
from dreamlab.dnc.interface import InterfaceLayer
from dreamlab.dnc.memory_access import MemoryAccess
from dreamlab.dnc.state import ControllerState, DNCState, map_state

TRACEABLE_FIELDS = DNCState._fields


class StepWeights(NamedTuple):
    """The recurrent weights a step uses: the parameters, or (from `DNC`) detached copies whose gradients
    `deferred_weights` forms once per sequence."""

    recurrent: Tensor  # W of the controller's gates, (4H, RW + H)
    interface: Tensor  # W_xi, (|xi|, H)
    interface_bias: Tensor  # b_xi, (|xi|,), or from `DNC` broadcast to the batch, (B, |xi|)


class DNCCell(nn.Module):
    """One DNC step: x_t (B, input_size), state_{t-1} -> y_t (B, output_size), state_t.

    chi_t = [x_t; r_{t-1}] drives the LSTM controller; xi_t = W_xi h_t is the interface vector that steers
    the memory access; y_t = W_y h_t + W_r [r_t^1; ...; r_t^R] (Methods, "Controller network").

    fused=True (the default) runs each step on CPU float tensors with dense links and at most 4 read heads as
    one autograd function over numba kernels (`fused_step`, ~1.6x faster than the modules' torch operations
    at the size of `experiments/dnc_benchmark.py`; the kernels compile on first use, ~20 s per dtype, and are
    cached on disk); fused=False, and every other case (GPUs, other dtypes, more heads, sparse links), composes
    the modules (`advance_with_modules`), the reference.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        hidden_size: int,
        memory_slots: int,
        word_size: int,
        read_heads: int,
        sparse_links: int | None = None,
        fused: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("output_size", output_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.input_size = input_size
        self.output_size = output_size
        self.fused = fused
        self.access = MemoryAccess(memory_slots, word_size, read_heads, sparse_links)
        read_size = read_heads * word_size
        self.controller = LSTMController(input_size, read_size, hidden_size)
        self.interface = InterfaceLayer(hidden_size, word_size, read_heads)
        self.output = nn.Linear(hidden_size + read_size, output_size)

    def initial_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> DNCState:
        """The all-zero state at t = 0, on the parameters' device and dtype unless given."""
        reference = self.output.weight
        device = reference.device if device is None else device
        dtype = reference.dtype if dtype is None else dtype
        access = self.access.initial_state(batch_size, device, dtype)
        read_vectors = torch.zeros(
            batch_size, self.access.read_heads, self.access.word_size, device=device, dtype=dtype
        )
        return DNCState.from_parts(access, read_vectors, self.controller.initial_state(batch_size, device, dtype))

    def advance(
        self,
        projected_input: Tensor,
        state: DNCState,
        weights: StepWeights | None = None,
        modules_step: Callable[[Tensor, DNCState, StepWeights], DNCState] | None = None,
    ) -> DNCState:
        """The recurrent part of a step, from the controller's projected input W_x x_t + b (B, 4H): the fused
        step where `takes_fused_step`, else modules_step (default `advance_with_modules`; `DNC(compile=True)`
        passes its compiled version)."""
        weights = self.step_weights() if weights is None else weights
        if self.takes_fused_step(projected_input, state, weights):
            return fused_step(projected_input, state, *weights)
        return (modules_step or self.advance_with_modules)(projected_input, state, weights)

    def step_weights(self) -> StepWeights:
        """The parameters a step uses (not detached)."""
        return StepWeights(self.controller.recurrent_weight, self.interface.linear.weight, self.interface.linear.bias)

    def takes_fused_step(self, projected_input: Tensor, state: DNCState, weights: StepWeights) -> bool:
        """Whether `advance` runs this step through `fused_step` (see the class docstring)."""
        return (
            self.fused
            and self.access.linkage.sparse_links is None
            and fused_step_applies(projected_input, state, *weights)
        )

    def advance_with_modules(self, projected_input: Tensor, state: DNCState, weights: StepWeights) -> DNCState:
        """`advance` composed of the controller, interface and memory access modules: the reference."""
        recurrent, interface, interface_bias = weights
        controller = self.controller(projected_input, state.read_vectors.flatten(1), state.controller, recurrent)
        read_vectors, access = self.access(self.interface(controller.h, interface, interface_bias), state.access)
        return DNCState.from_parts(access, read_vectors, controller)

    def readout(self, hidden: Tensor, read_vectors: Tensor) -> Tensor:
        """y = W_y h + W_r r for any leading shape: hidden (..., H), read_vectors (..., R, W)."""
        return self.output(torch.cat([hidden, read_vectors.flatten(-2)], dim=-1))

    def forward(self, x: Tensor, state: DNCState | None = None) -> tuple[Tensor, DNCState]:
        if x.dim() != 2 or x.shape[-1] != self.input_size:
            raise ValueError(f"DNCCell expects x of shape (batch, {self.input_size}), got {tuple(x.shape)}")
        self._check_dtype(x)
        state = self.initial_state(x.shape[0], x.device) if state is None else state
        self.check_state(state, x.shape[0])
        state = self.advance(self.controller.project_input(x), state)
        return self.readout(state.controller.h, state.read_vectors), state

    def check_state(self, state: DNCState, batch_size: int) -> None:
        """Raise ValueError unless state is a DNCState for this cell and batch size."""
        if not isinstance(state, DNCState):
            raise ValueError(f"state must be a DNCState (or None), got {type(state).__name__}")
        expected = (batch_size, self.access.memory_slots, self.access.word_size)
        if tuple(state.memory.shape) != expected:
            raise ValueError(
                f"state.memory has shape {tuple(state.memory.shape)}, expected {expected} "
                "(batch, memory_slots, word_size)"
            )
        if tuple(state.controller.h.shape) != (batch_size, self.controller.hidden_size):
            raise ValueError(
                f"state.controller.h has shape {tuple(state.controller.h.shape)}, "
                f"expected {(batch_size, self.controller.hidden_size)}"
            )

    def _check_dtype(self, x: Tensor) -> None:
        if x.dtype != self.output.weight.dtype:
            raise ValueError(
                f"input dtype {x.dtype} differs from the DNC's parameters ({self.output.weight.dtype}); "
                "convert one of them, e.g. dnc.to(torch.float64)"
            )


class DNC(nn.Module):
    """Differentiable Neural Computer over sequences.

    DNC(input_size, output_size, hidden_size, memory_slots, word_size, read_heads, sparse_links=None,
    batch_first=True); `y, state = dnc(x, state=None)` maps x (B, T, input_size) to y (B, T, output_size),
    or (T, B, .) with batch_first=False. The state is a `DNCState` (batch first whatever batch_first is).
    `forward_traced` also returns chosen state fields at every step. sparse_links=K keeps K links per row
    of the temporal link matrix (Rae et al. 2016). The single-step `DNCCell` is `dnc.cell`.

    fused (default True): steps on CPU float tensors run as one autograd function over numba kernels (see
    `DNCCell`). compile=True runs the other steps (GPUs, other dtypes, more than 4 read heads, sparse links,
    fused=False) through `torch.compile` (compiled on first use, for each new batch size, dtype or device;
    about a minute on a CPU): same outputs and gradients up to float rounding. Where compilation fails (no
    C++ compiler, an unsupported Python) it warns once and runs eagerly.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        hidden_size: int,
        memory_slots: int,
        word_size: int,
        read_heads: int,
        sparse_links: int | None = None,
        batch_first: bool = True,
        compile: bool = False,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.compile_steps = compile  # not `self.compile`: that would hide nn.Module.compile
        self.cell = DNCCell(
            input_size, output_size, hidden_size, memory_slots, word_size, read_heads, sparse_links, fused
        )
        self._compiled_advance: Callable[[Tensor, DNCState, StepWeights], DNCState] | None = None

    def initial_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> DNCState:
        return self.cell.initial_state(batch_size, device, dtype)

    def forward(self, x: Tensor, state: DNCState | None = None) -> tuple[Tensor, DNCState]:
        y, state, _ = self._unroll(x, state, ())
        return y, state

    def forward_traced(
        self, x: Tensor, state: DNCState | None = None, fields: Sequence[str] = ("memory", "read_vectors")
    ) -> tuple[Tensor, DNCState, dict[str, object]]:
        """Like forward, plus {field: that DNCState field at every step} with time stacked as in y.

        E.g. fields=("memory", "read_vectors") gives M_t (B, T, N, W) and r_t (B, T, R, W) for batch_first.
        Traces stay in the autograd graph (so a loss may use them); detach them for logging.
        """
        unknown = [name for name in fields if name not in TRACEABLE_FIELDS]
        if unknown:
            raise ValueError(f"unknown trace fields {unknown}; choose from {list(TRACEABLE_FIELDS)}")
        return self._unroll(x, state, tuple(fields))

    def _unroll(
        self, x: Tensor, state: DNCState | None, fields: tuple[str, ...]
    ) -> tuple[Tensor, DNCState, dict[str, object]]:
        cell = self.cell
        layout = "(batch, time, input_size)" if self.batch_first else "(time, batch, input_size)"
        if x.dim() != 3 or x.shape[-1] != cell.input_size or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"DNC expects x of shape {layout} with input_size={cell.input_size}, got {tuple(x.shape)}")
        cell._check_dtype(x)
        time_major = x.transpose(0, 1) if self.batch_first else x
        batch_size = time_major.shape[1]
        state = cell.initial_state(batch_size, x.device) if state is None else state
        cell.check_state(state, batch_size)

        projected = cell.controller.project_input(time_major)
        steps = time_major.shape[0]
        recurrent, interface = cell.controller.recurrent_weight, cell.interface.linear
        # Training: the steps use the recurrent weights detached and their gradients come in one product per
        # sequence (`deferred_weights`), from the inputs of every step, handed over after the loop.
        defer = torch.is_grad_enabled() and recurrent.requires_grad and interface.weight.requires_grad
        controller_inputs, interface_inputs = SequenceInputs(), SequenceInputs()
        step_weights: Sequence[StepWeights | None] = [None] * steps
        if defer:
            projected = DeferredWeightGradient.apply(projected, recurrent, controller_inputs)
            biases = DeferredWeightGradient.apply(
                interface.bias.expand(steps, batch_size, -1), interface.weight, interface_inputs
            )
            fixed = recurrent.detach(), interface.weight.detach()
            step_weights = [StepWeights(*fixed, bias) for bias in biases.unbind(0)]
        initial = state
        advance = self._advance()
        hidden, reads = [], []
        traces: dict[str, list] = {name: [] for name in fields}
        # unbind, not projected[t]: the backward of each index fills and adds a whole (T, B, 4H) gradient, O(T^2).
        for projected_t, weights in zip(projected.unbind(0), step_weights, strict=True):
            state = advance(projected_t, state, weights)
            hidden.append(state.controller.h)
            reads.append(state.read_vectors)
            for name in fields:
                traces[name].append(getattr(state, name))
        hidden_seq, reads_seq = torch.stack(hidden), torch.stack(reads)
        if defer:
            prev_hidden = torch.cat([initial.controller.h.unsqueeze(0), hidden_seq[:-1]])
            prev_reads = torch.cat([initial.read_vectors.unsqueeze(0), reads_seq[:-1]]).flatten(2)
            controller_inputs.inputs = torch.cat([prev_reads, prev_hidden], dim=-1).detach()
            interface_inputs.inputs = hidden_seq.detach()
        y = cell.readout(hidden_seq, reads_seq)
        time_dim = 1 if self.batch_first else 0
        if self.batch_first:
            y = y.transpose(0, 1)
        return y, state, {name: _stack_steps(values, time_dim) for name, values in traces.items()}

    def _advance(self) -> Callable[[Tensor, DNCState, StepWeights | None], DNCState]:
        """The recurrent step: `cell.advance`, its modules' path compiled on first use when compile=True."""
        if not self.compile_steps:
            return self.cell.advance
        if self._compiled_advance is None:
            self._compiled_advance = compiled_or_eager(self.cell.advance_with_modules)
        return functools.partial(self.cell.advance, modules_step=self._compiled_advance)

    def __getstate__(self) -> dict:
        # A compiled function does not pickle or deep-copy; a copy compiles its own on first use.
        return {**super().__getstate__(), "_compiled_advance": None}


def compiled_or_eager(function: Callable) -> Callable:
    """`torch.compile(function)`, falling back to `function` with one warning if compilation fails.

    Compilation happens at the first call (and again for new shapes, dtypes or devices), so failures surface
    there: a missing C++ compiler, an unsupported Python or platform. The failed call is rerun eagerly, so
    the caller sees eager results; an error of the inputs themselves is raised again by the eager call.
    """
    try:
        # cpp_wrapper: the code that launches the step's ~40 kernels is C++ instead of Python (5% of a step at the
        # benchmark's size, measured; compilation takes as long).
        compiled = torch.compile(function, dynamic=False, options={"cpp_wrapper": True})
    except Exception as err:  # e.g. "torch.compile is not supported on this Python"
        _warn_eager(err)
        return function
    failed = False

    def step(*args: object) -> object:
        nonlocal failed
        if not failed:
            try:
                return compiled(*args)
            except Exception as err:  # a backend failure: compile once, warn once, then stay eager
                failed = True
                _warn_eager(err)
        return function(*args)

    return step


def _warn_eager(err: Exception) -> None:
    message = str(err).strip().splitlines()[0] if str(err).strip() else ""
    warnings.warn(
        f"torch.compile is unavailable here ({type(err).__name__}: {message}); the DNC runs eagerly",
        RuntimeWarning,
        stacklevel=3,
    )


def _stack_steps(values: list, dim: int) -> object:
    """Stack per-step tensors (or NamedTuples of tensors, e.g. ControllerState) along a new time dim."""
    first = values[0]
    if isinstance(first, Tensor):
        return torch.stack(values, dim=dim)
    return type(first)(*(_stack_steps(list(parts), dim) for parts in zip(*values, strict=True)))


__all__ = ["DNC", "TRACEABLE_FIELDS", "ControllerState", "DNCCell", "DNCState", "map_state"]

"""Pluggable recurrent cores for M: the LSTM of World Models, or the DNC of the MDN-DNC.

A core is a single-step cell: ``features, state = core(x_t, state)``. Whatever the core, M reads its mixture and
done heads off ``features`` and the controller reads ``controller_features(state)``: the LSTM's h (and optionally
c), plus, for the DNC, its read vectors. States are (nested) tuples of batch-first tensors, so the helpers below
can reset, select and detach any core's state without knowing its layout.

Register a new core with ``register_core(name, factory)``; ``factory(input_size, hidden_size, **options)`` returns
a :class:`RecurrentCore`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

State = Any  # a tensor or a (named) tuple of states, every tensor batch-first


def map_state(fn: Callable[..., torch.Tensor], *states: State) -> State:
    """Apply ``fn`` leaf-wise to one or more states of the same structure."""
    first = states[0]
    if isinstance(first, torch.Tensor):
        return fn(*states)
    parts = [map_state(fn, *group) for group in zip(*states, strict=True)]
    return type(first)(*parts) if hasattr(first, "_fields") else type(first)(parts)


def reset_state(state: State, reset: torch.Tensor, initial: State) -> State:
    """Rows where ``reset`` (B,) is True go back to ``initial``; the others keep ``state``."""

    def choose(current: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        mask = reset.view(-1, *([1] * (current.dim() - 1)))
        return torch.where(mask, start, current)

    return map_state(choose, state, initial)


def select_state(state: State, index: torch.Tensor) -> State:
    """The rows ``index`` of every tensor (to drop finished episodes from a batched dream)."""
    return map_state(lambda t: t.index_select(0, index), state)


def detach_state(state: State) -> State:
    """The state cut from the autograd graph (the truncation in truncated backpropagation through time)."""
    return map_state(torch.Tensor.detach, state)


class RecurrentCore(nn.Module, ABC):
    """Interface of M's recurrent core: one step at a time, with features for M's heads and for C."""

    input_size: int
    output_size: int  # size of the features the heads read

    @abstractmethod
    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        """The state before the first step of an episode."""

    @abstractmethod
    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One step: x_t (B, input_size), state_{t-1} -> features (B, output_size), state_t."""

    @abstractmethod
    def controller_features(self, state: State, include_cell: bool) -> torch.Tensor:
        """What C sees of the model's state, (B, controller_feature_size(include_cell))."""

    @abstractmethod
    def controller_feature_size(self, include_cell: bool) -> int:
        """Width of :meth:`controller_features`."""


class LSTMCore(RecurrentCore):
    """A single LSTM layer (Hochreiter & Schmidhuber 1997) as in World Models; state (h, c), features h."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.output_size, self.hidden_size = input_size, hidden_size, hidden_size
        self.cell = nn.LSTMCell(input_size, hidden_size)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return (zeros, zeros.clone())

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h, c = self.cell(x, state)
        return h, (h, c)

    def controller_features(self, state: State, include_cell: bool) -> torch.Tensor:
        h, c = state
        return torch.cat([h, c], dim=-1) if include_cell else h

    def controller_feature_size(self, include_cell: bool) -> int:
        return 2 * self.hidden_size if include_cell else self.hidden_size


class DNCCore(RecurrentCore):
    """The Differentiable Neural Computer of :mod:`dreamlab.dnc` as M's core (the MDN-DNC).

    Features are the DNC's output y_t; C sees the controller's h (and optionally c) and the read vectors r_t,
    which the MDN-DNC thesis suggests exposing to the controller.
    """

    def __init__(
        self, input_size: int, hidden_size: int, memory_slots: int = 16, word_size: int = 16, read_heads: int = 4
    ):
        super().__init__()
        from dreamlab.dnc import DNCCell

        self.input_size, self.output_size, self.hidden_size = input_size, hidden_size, hidden_size
        self.read_size = read_heads * word_size
        self.cell = DNCCell(input_size, hidden_size, hidden_size, memory_slots, word_size, read_heads)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        return self.cell.initial_state(batch_size, device, dtype)

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        return self.cell(x, state)

    def controller_features(self, state: State, include_cell: bool) -> torch.Tensor:
        parts = [state.controller.h, *([state.controller.c] if include_cell else []), state.read_vectors.flatten(1)]
        return torch.cat(parts, dim=-1)

    def controller_feature_size(self, include_cell: bool) -> int:
        return self.hidden_size * (2 if include_cell else 1) + self.read_size


_CORES: dict[str, Callable[..., RecurrentCore]] = {"lstm": LSTMCore, "dnc": DNCCore}


def register_core(name: str, factory: Callable[..., RecurrentCore]) -> None:
    """Make ``core=name`` available to :class:`dreamlab.worldmodels.MDNRNN`."""
    _CORES[name] = factory


def make_core(name: str, input_size: int, hidden_size: int, **options: Any) -> RecurrentCore:
    """Build the core called ``name`` (``lstm`` or ``dnc``, or any registered one)."""
    if name not in _CORES:
        raise ValueError(f"unknown recurrent core {name!r}; choose from {sorted(_CORES)}")
    return _CORES[name](input_size, hidden_size, **options)

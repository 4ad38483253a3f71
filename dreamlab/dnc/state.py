"""Typed recurrent state of the DNC: plain NamedTuples of tensors, batch first, easy to log or detach."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, TypeVar

from torch import Tensor

from dreamlab.dnc.temporal_links import TopKLinks

StateT = TypeVar("StateT")


class ControllerState(NamedTuple):
    """LSTM controller state, each (B, hidden_size)."""

    h: Tensor
    c: Tensor


class AccessState(NamedTuple):
    """Everything the memory access carries from step t-1 to step t (B batch, N slots, W word, R heads)."""

    memory: Tensor  # M_t, (B, N, W)
    read_weights: Tensor  # w_t^{r,i}, (B, R, N)
    write_weights: Tensor  # w_t^w, (B, N)
    usage: Tensor  # u_t, (B, N)
    link: Tensor | TopKLinks  # L_t, (B, N, N), or TopKLinks of (B, N, K) with sparse_links=K
    precedence: Tensor  # p_t, (B, N)


class DNCState(NamedTuple):
    """The full DNC state after a step: memory access state, read vectors r_t and controller (h, c)."""

    memory: Tensor  # M_t, (B, N, W)
    read_vectors: Tensor  # r_t^i, (B, R, W)
    read_weights: Tensor  # w_t^{r,i}, (B, R, N)
    write_weights: Tensor  # w_t^w, (B, N)
    usage: Tensor  # u_t, (B, N)
    link: Tensor | TopKLinks  # L_t, (B, N, N), or TopKLinks of (B, N, K) with sparse_links=K
    precedence: Tensor  # p_t, (B, N)
    controller: ControllerState  # (h_t, c_t), each (B, H)

    @classmethod
    def from_parts(cls, access: AccessState, read_vectors: Tensor, controller: ControllerState) -> DNCState:
        return cls(
            access.memory,
            read_vectors,
            access.read_weights,
            access.write_weights,
            access.usage,
            access.link,
            access.precedence,
            controller,
        )

    @property
    def access(self) -> AccessState:
        return AccessState(self.memory, self.read_weights, self.write_weights, self.usage, self.link, self.precedence)

    @property
    def batch_size(self) -> int:
        return self.memory.shape[0]

    def detach(self) -> DNCState:
        """The same state cut from the autograd graph (truncated backpropagation through time)."""
        return map_state(Tensor.detach, self)


def map_state(fn: Callable[[Tensor], Tensor], state: StateT) -> StateT:
    """Apply fn to every tensor in a (nested) NamedTuple state, keeping its types."""
    if isinstance(state, Tensor):
        return fn(state)
    return type(state)(*(map_state(fn, part) for part in state))

"""Differentiable Neural Computer (Graves et al., Nature 2016) with optional top-K sparse links.

    dnc = DNC(input_size=9, output_size=8, hidden_size=64, memory_slots=32, word_size=16, read_heads=1)
    y, state = dnc(x)                      # x (B, T, 9) -> y (B, T, 8); state.memory (B, 32, 16), ...
    y, state = dnc(x_next, state.detach()) # continue, truncating backpropagation
    y, state, trace = dnc.forward_traced(x, fields=("memory", "read_vectors"))  # M_t, r_t at every t
    y_t, state = dnc.cell(x_t, state)      # one step, e.g. inside a dream loop

Modules follow the paper's Methods: `addressing` (content lookup), `allocation` (usage and free list),
`temporal_links` (link matrix, precedence, sparse links of Rae et al. 2016), `interface` (xi_t and its
activations), `memory_access` (one write head, R read heads), `controller` (LSTM), `core` (DNCCell, DNC).
On a CPU a step runs as one autograd function over numba kernels (`fused_step`; kernels in `memory_kernels`,
`link_kernels`, `step_kernels`), tested against the modules' torch composition, which runs everywhere else.
`tasks` holds the copy and repeat-copy tasks and an LSTM baseline.
"""

from dreamlab.dnc.addressing import content_weighting, cosine_similarity, oneplus
from dreamlab.dnc.allocation import allocation_weighting, retention, update_usage, write_weighting
from dreamlab.dnc.controller import LSTMController
from dreamlab.dnc.core import DNC, TRACEABLE_FIELDS, DNCCell
from dreamlab.dnc.interface import Interface, InterfaceLayer, interface_size, split_interface
from dreamlab.dnc.memory_access import MemoryAccess, erase_and_write, read_weighting
from dreamlab.dnc.state import AccessState, ControllerState, DNCState, map_state
from dreamlab.dnc.temporal_links import (
    TemporalLinkage,
    TopKLinks,
    dense_link_step,
    topk_directional_weights,
    topk_link_update,
    update_precedence,
)

__all__ = [
    "DNC",
    "TRACEABLE_FIELDS",
    "AccessState",
    "ControllerState",
    "DNCCell",
    "DNCState",
    "Interface",
    "InterfaceLayer",
    "LSTMController",
    "MemoryAccess",
    "TemporalLinkage",
    "TopKLinks",
    "allocation_weighting",
    "content_weighting",
    "cosine_similarity",
    "dense_link_step",
    "erase_and_write",
    "interface_size",
    "map_state",
    "oneplus",
    "read_weighting",
    "retention",
    "split_interface",
    "topk_directional_weights",
    "topk_link_update",
    "update_precedence",
    "update_usage",
    "write_weighting",
]

"""Everything of a DNC step after the interface product, as one numba call each way.

`access_forward` takes the raw interface vector xi_t and state_{t-1} through the interface activations
(Methods, "Interface parameters"), usage and allocation, write, links, read and precedence, calling the
kernels of `memory_kernels` and `link_kernels` in that order; `access_backward` runs their backward kernels in
reverse and ends at dLoss/dxi_t. One call each way instead of one per stage saves the per-call conversions and
allocations that, per stage, cost as much as the smaller kernels themselves.

Read heads are padded to `link_kernels.HEADS` in the arrays named padded_*: the heads past R get a zero key,
strength 1 and zero read modes, so they read nothing and add nothing. Scalars and arrays as in
`memory_kernels`; arrays said to be zeroed on entry accumulate.
"""

from __future__ import annotations

import numba
import numpy as np

from dreamlab.dnc.link_kernels import link_step_backward, link_step_forward
from dreamlab.dnc.memory_kernels import (
    read_backward,
    read_forward,
    usage_allocation_backward,
    usage_allocation_forward,
    write_backward,
    write_forward,
)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _sigmoid(x: float, one: float) -> float:
    """1 / (1 + e^-x) without overflowing e^-x (fastmath assumes no infinities)."""
    if x >= 0:
        return one / (one + np.exp(-x))
    e = np.exp(x)
    return e / (one + e)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _oneplus(x: float, zero: float, one: float) -> float:
    """oneplus(x) = 1 + log(1 + e^x), written so that e^x cannot overflow."""
    return one + max(x, zero) + np.log1p(np.exp(-abs(x)))


@numba.njit(cache=True, nogil=True, fastmath=True)
def interface_forward(
    raw: np.ndarray,
    one: float,
    padded_read_keys: np.ndarray,
    padded_read_strengths: np.ndarray,
    write_key: np.ndarray,
    write_strength: np.ndarray,
    erase: np.ndarray,
    write_vector: np.ndarray,
    free_gates: np.ndarray,
    allocation_gate: np.ndarray,
    write_gate: np.ndarray,
    padded_read_modes: np.ndarray,
) -> None:
    """Split xi_t = [k^r; beta^r; k^w; beta^w; e; v; f; g^a; g^w; pi] (B, W R + 3 W + 5 R + 3) and activate:
    oneplus strengths, sigmoid erase and gates, softmax read modes. Padded arrays: all heads written."""
    batch, width, heads = raw.shape[0], write_key.shape[1], free_gates.shape[1]
    zero = one - one
    for b in range(batch):
        x = raw[b]
        at = 0
        for r in range(padded_read_keys.shape[1]):
            for i in range(width):
                padded_read_keys[b, r, i] = x[at + i] if r < heads else zero
            if r < heads:
                at += width
        for r in range(padded_read_strengths.shape[1]):
            padded_read_strengths[b, r] = _oneplus(x[at + r], zero, one) if r < heads else one
        at += heads
        for i in range(width):
            write_key[b, i] = x[at + i]
        at += width
        write_strength[b] = _oneplus(x[at], zero, one)
        at += 1
        for i in range(width):
            erase[b, i] = _sigmoid(x[at + i], one)
            write_vector[b, i] = x[at + width + i]
        at += 2 * width
        for r in range(heads):
            free_gates[b, r] = _sigmoid(x[at + r], one)
        allocation_gate[b] = _sigmoid(x[at + heads], one)
        write_gate[b] = _sigmoid(x[at + heads + 1], one)
        at += heads + 2
        for r in range(padded_read_modes.shape[1]):
            if r < heads:
                m0, m1, m2 = x[at + 3 * r], x[at + 3 * r + 1], x[at + 3 * r + 2]
                top = max(m0, max(m1, m2))
                e0, e1, e2 = np.exp(m0 - top), np.exp(m1 - top), np.exp(m2 - top)
                inverse = one / (e0 + e1 + e2)
                padded_read_modes[b, r, 0], padded_read_modes[b, r, 1], padded_read_modes[b, r, 2] = (
                    e0 * inverse,
                    e1 * inverse,
                    e2 * inverse,
                )
            else:
                padded_read_modes[b, r, 0] = padded_read_modes[b, r, 1] = padded_read_modes[b, r, 2] = zero


@numba.njit(cache=True, nogil=True, fastmath=True)
def interface_backward(
    raw: np.ndarray,
    padded_read_modes: np.ndarray,
    erase: np.ndarray,
    free_gates: np.ndarray,
    allocation_gate: np.ndarray,
    write_gate: np.ndarray,
    grad_read_keys: np.ndarray,
    grad_read_strengths: np.ndarray,
    grad_write_key: np.ndarray,
    grad_write_strength: np.ndarray,
    grad_erase: np.ndarray,
    grad_write_vector: np.ndarray,
    grad_free_gates: np.ndarray,
    grad_allocation_gate: np.ndarray,
    grad_write_gate: np.ndarray,
    grad_read_modes: np.ndarray,
    one: float,
    grad_raw: np.ndarray,
) -> None:
    """dLoss/dxi_t from the gradients of the activated parts (read heads padded): oneplus' = sigmoid,
    sigmoid' = s (1 - s), softmax' = pi o (g - pi . g)."""
    batch, width, heads = raw.shape[0], erase.shape[1], free_gates.shape[1]
    for b in range(batch):
        x, out = raw[b], grad_raw[b]
        at = 0
        for r in range(heads):
            for i in range(width):
                out[at + i] = grad_read_keys[b, r, i]
            at += width
        for r in range(heads):
            out[at + r] = grad_read_strengths[b, r] * _sigmoid(x[at + r], one)
        at += heads
        for i in range(width):
            out[at + i] = grad_write_key[b, i]
        at += width
        out[at] = grad_write_strength[b] * _sigmoid(x[at], one)
        at += 1
        for i in range(width):
            e = erase[b, i]
            out[at + i] = grad_erase[b, i] * e * (one - e)
            out[at + width + i] = grad_write_vector[b, i]
        at += 2 * width
        for r in range(heads):
            f = free_gates[b, r]
            out[at + r] = grad_free_gates[b, r] * f * (one - f)
        a, w = allocation_gate[b], write_gate[b]
        out[at + heads] = grad_allocation_gate[b] * a * (one - a)
        out[at + heads + 1] = grad_write_gate[b] * w * (one - w)
        at += heads + 2
        for r in range(heads):
            p0, p1, p2 = padded_read_modes[b, r, 0], padded_read_modes[b, r, 1], padded_read_modes[b, r, 2]
            g0, g1, g2 = grad_read_modes[b, r, 0], grad_read_modes[b, r, 1], grad_read_modes[b, r, 2]
            dot = p0 * g0 + p1 * g1 + p2 * g2
            out[at + 3 * r] = p0 * (g0 - dot)
            out[at + 3 * r + 1] = p1 * (g1 - dot)
            out[at + 3 * r + 2] = p2 * (g2 - dot)


@numba.njit(cache=True, nogil=True, fastmath=True)
def access_forward(
    raw: np.ndarray,
    prev_memory: np.ndarray,
    prev_read_weights: np.ndarray,
    prev_write_weights: np.ndarray,
    prev_usage: np.ndarray,
    prev_link: np.ndarray,
    prev_precedence: np.ndarray,
    eps: float,
    one: float,
    floor: float,
    padded_read_keys: np.ndarray,
    padded_read_strengths: np.ndarray,
    write_key: np.ndarray,
    write_strength: np.ndarray,
    erase: np.ndarray,
    write_vector: np.ndarray,
    free_gates: np.ndarray,
    allocation_gate: np.ndarray,
    write_gate: np.ndarray,
    padded_read_modes: np.ndarray,
    padded_prev_read_weights: np.ndarray,
    keep: np.ndarray,
    usage: np.ndarray,
    allocation: np.ndarray,
    free_list: np.ndarray,
    write_content: np.ndarray,
    write_similarity: np.ndarray,
    write_inverse_norms: np.ndarray,
    write_weights: np.ndarray,
    memory: np.ndarray,
    link: np.ndarray,
    forward_weights: np.ndarray,
    backward_weights: np.ndarray,
    read_content: np.ndarray,
    read_similarity: np.ndarray,
    read_inverse_norms: np.ndarray,
    padded_read_weights: np.ndarray,
    padded_read_vectors: np.ndarray,
    precedence: np.ndarray,
) -> None:
    """xi_t, state_{t-1} -> interface, u_t, a_t, w^w_t, M_t, L_t, f_t, b_t, w^r_t, r_t, p_t (and what their
    backward needs). Every output is written in full."""
    batch, heads, slots = prev_read_weights.shape
    zero = one - one
    interface_forward(
        raw, one, padded_read_keys, padded_read_strengths, write_key, write_strength, erase, write_vector,
        free_gates, allocation_gate, write_gate, padded_read_modes,
    )  # fmt: skip
    usage_allocation_forward(
        free_gates, prev_read_weights, prev_write_weights, prev_usage, floor, one, usage, allocation, free_list
    )
    write_forward(
        prev_memory, write_key, write_strength, allocation, allocation_gate, write_gate, erase, write_vector,
        padded_read_keys, eps, one, write_content, write_similarity, write_inverse_norms, write_weights, memory,
        read_similarity, read_inverse_norms,
    )  # fmt: skip
    for b in range(batch):
        total = zero
        for n in range(slots):
            total += write_weights[b, n]
            keep[b, n] = one - write_weights[b, n]
        for n in range(slots):  # p_t = (1 - sum_i w_t^w[i]) p_{t-1} + w_t^w
            precedence[b, n] = (one - total) * prev_precedence[b, n] + write_weights[b, n]
        for r in range(padded_prev_read_weights.shape[1]):
            for n in range(slots):
                padded_prev_read_weights[b, r, n] = prev_read_weights[b, r, n] if r < heads else zero
                forward_weights[b, r, n] = backward_weights[b, r, n] = zero
            for i in range(padded_read_vectors.shape[2]):
                padded_read_vectors[b, r, i] = zero
    link_step_forward(
        prev_link, keep, write_weights, prev_precedence, padded_prev_read_weights, link, forward_weights,
        backward_weights,
    )  # fmt: skip
    read_forward(
        memory, padded_read_strengths, padded_read_modes, forward_weights, backward_weights, read_similarity, one,
        read_content, padded_read_weights, padded_read_vectors,
    )  # fmt: skip


@numba.njit(cache=True, nogil=True, fastmath=True)
def access_backward(
    grad_memory: np.ndarray,
    padded_grad_read_vectors: np.ndarray,
    padded_grad_read_weights: np.ndarray,
    grad_write_weights: np.ndarray,
    grad_usage: np.ndarray,
    grad_link: np.ndarray,
    grad_precedence: np.ndarray,
    raw: np.ndarray,
    prev_memory: np.ndarray,
    prev_read_weights: np.ndarray,
    prev_write_weights: np.ndarray,
    prev_usage: np.ndarray,
    prev_link: np.ndarray,
    prev_precedence: np.ndarray,
    padded_read_keys: np.ndarray,
    padded_read_strengths: np.ndarray,
    write_key: np.ndarray,
    write_strength: np.ndarray,
    erase: np.ndarray,
    write_vector: np.ndarray,
    free_gates: np.ndarray,
    allocation_gate: np.ndarray,
    write_gate: np.ndarray,
    padded_read_modes: np.ndarray,
    padded_prev_read_weights: np.ndarray,
    keep: np.ndarray,
    usage: np.ndarray,
    allocation: np.ndarray,
    free_list: np.ndarray,
    write_content: np.ndarray,
    write_similarity: np.ndarray,
    write_inverse_norms: np.ndarray,
    write_weights: np.ndarray,
    memory: np.ndarray,
    forward_weights: np.ndarray,
    backward_weights: np.ndarray,
    read_content: np.ndarray,
    read_similarity: np.ndarray,
    read_inverse_norms: np.ndarray,
    padded_read_weights: np.ndarray,
    eps: float,
    one: float,
    floor: float,
    need_prev_link: bool,
    grad_raw: np.ndarray,
    grad_prev_memory: np.ndarray,
    grad_prev_read_weights: np.ndarray,
    grad_prev_write_weights: np.ndarray,
    grad_prev_usage: np.ndarray,
    grad_prev_link: np.ndarray,
    grad_prev_precedence: np.ndarray,
    grad_memory_total: np.ndarray,
) -> None:
    """dLoss/dxi_t and dLoss/dstate_{t-1} from dLoss/dstate_t through `access_forward`'s steps in reverse.

    grad_prev_link is written only if need_prev_link; grad_memory_total is (B, N, W) workspace."""
    batch, heads, slots = prev_read_weights.shape
    zero = one - one
    # Read: dLoss/dM_t in total (the reads' and what M_t passed on to later steps), and the write stage's terms
    # through M_t.
    grad_read_keys = np.zeros_like(padded_read_keys)
    grad_read_strengths = np.empty_like(padded_read_strengths)
    grad_read_modes = np.empty_like(padded_read_modes)
    grad_forward_weights = np.empty_like(forward_weights)
    grad_backward_weights = np.empty_like(backward_weights)
    write_row_terms = np.empty_like(write_weights)
    grad_erase = np.zeros_like(erase)
    grad_write_vector = np.zeros_like(write_vector)
    read_backward(
        padded_grad_read_weights, padded_grad_read_vectors, grad_memory, memory, padded_read_keys,
        padded_read_strengths, padded_read_modes, forward_weights, backward_weights, read_content, read_similarity,
        read_inverse_norms, padded_read_weights, prev_memory, write_weights, erase, write_vector, eps, one,
        grad_memory_total, grad_read_keys, grad_read_strengths, grad_read_modes, grad_forward_weights,
        grad_backward_weights, write_row_terms, grad_erase, grad_write_vector,
    )  # fmt: skip
    # Links, then the precedence p_t = (1 - sum w) p_{t-1} + w: both give w_t^w and p_{t-1} gradients.
    grad_write_total = np.zeros_like(write_weights)
    padded_grad_prev_read_weights = np.zeros_like(padded_prev_read_weights)
    for b in range(batch):
        for n in range(slots):
            grad_prev_precedence[b, n] = zero
    link_step_backward(
        grad_link, grad_forward_weights, grad_backward_weights, prev_link, keep, write_weights, prev_precedence,
        padded_prev_read_weights, need_prev_link, grad_prev_link, grad_write_total, grad_prev_precedence,
        padded_grad_prev_read_weights,
    )  # fmt: skip
    for b in range(batch):
        total, dot = zero, zero
        for n in range(slots):
            total += write_weights[b, n]
            dot += grad_precedence[b, n] * prev_precedence[b, n]
        for n in range(slots):
            grad_prev_precedence[b, n] += grad_precedence[b, n] * (one - total)
            grad_write_total[b, n] += grad_write_weights[b, n] + grad_precedence[b, n] - dot
    # Write.
    grad_write_key = np.zeros_like(write_key)
    grad_write_strength = np.empty_like(write_strength)
    grad_allocation = np.empty_like(allocation)
    grad_allocation_gate = np.empty_like(allocation_gate)
    grad_write_gate = np.empty_like(write_gate)
    write_backward(
        grad_write_total, write_row_terms, grad_memory_total, prev_memory, write_key, write_strength, allocation,
        allocation_gate, write_gate, erase, write_content, write_similarity, write_inverse_norms, write_weights,
        eps, one, grad_prev_memory, grad_write_key, grad_write_strength, grad_allocation,
        grad_allocation_gate, grad_write_gate,
    )  # fmt: skip
    # Usage and allocation.
    grad_free_gates = np.zeros_like(free_gates)
    usage_allocation_backward(
        grad_usage, grad_allocation, free_gates, prev_read_weights, prev_write_weights, prev_usage, usage,
        free_list, floor, one, grad_free_gates, grad_prev_read_weights, grad_prev_write_weights, grad_prev_usage,
    )  # fmt: skip
    for b in range(batch):
        for r in range(heads):
            for n in range(slots):
                grad_prev_read_weights[b, r, n] += padded_grad_prev_read_weights[b, r, n]
    interface_backward(
        raw, padded_read_modes, erase, free_gates, allocation_gate, write_gate, grad_read_keys, grad_read_strengths,
        grad_write_key, grad_write_strength, grad_erase, grad_write_vector, grad_free_gates, grad_allocation_gate,
        grad_write_gate, grad_read_modes, one, grad_raw,
    )  # fmt: skip


@numba.njit(cache=True, nogil=True, fastmath=True)
def lstm_backward(
    grad_h: np.ndarray,
    grad_c: np.ndarray,
    activated: np.ndarray,
    tanh_c: np.ndarray,
    prev_c: np.ndarray,
    one: float,
    grad_gates: np.ndarray,
    grad_prev_c: np.ndarray,
) -> None:
    """Gradients of the LSTM's pre-activations (i, f, g, o) and of c_{t-1}, for h = o tanh(c), c = f c_{t-1} + i g
    with activated = [sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)] (B, 4H); grad_h and grad_c (B, H) in total."""
    batch, hidden = grad_h.shape
    for b in range(batch):
        a, out = activated[b], grad_gates[b]
        for k in range(hidden):
            i, f, g, o = a[k], a[hidden + k], a[2 * hidden + k], a[3 * hidden + k]
            t = tanh_c[b, k]
            dc = grad_c[b, k] + grad_h[b, k] * o * (one - t * t)
            out[k] = dc * g * i * (one - i)
            out[hidden + k] = dc * prev_c[b, k] * f * (one - f)
            out[2 * hidden + k] = dc * i * (one - g * g)
            out[3 * hidden + k] = grad_h[b, k] * t * o * (one - o)
            grad_prev_c[b, k] = dc * f

"""The DNC's memory access outside the link matrix as numba CPU kernels, forward and backward.

Three stages of one step (Graves et al. 2016, Methods), each a kernel that makes one or two passes over its
rows per batch element with every quantity of a row formed once:

- usage and allocation: psi_t, u_t, the free list phi_t and a_t. The backward of the allocation's exclusive
  product takes no division: with s_j the sorted usages and P_j = prod_{i<j} s_i,
  dLoss/ds_j = P_j (S_j - da_j) where S_{N-1} = 0 and S_{j-1} = da_j (1 - s_j) + s_j S_j;
- write: the content weighting of the write key over M_{t-1}, w_t^w, and M_t = M_{t-1} o (E - w e^T) + w v^T;
- read: the content weightings of the read keys over M_t, w_t^r from the read modes, and r_t = M_t^T w_t^r.

Where one stage's pass over the rows of M_t can do the next stage's work on the same row, it does: the write
kernel forms the read keys' similarities to each new row of M_t, and the read backward kernel, with each row of
dLoss/dM_t at hand, forms the write stage's gradients through that row (dLoss/de, dLoss/dv, and the row terms
that `write_backward` takes). Measured at the size of `experiments/dnc_benchmark.py`: ~0.2 ms of a ~4.2 ms step.

Content weightings C(M, k, beta) = softmax_n(beta D(k, M_n)) with D the cosine similarity whose norms take
`NORM_EPSILON` under the square root (as `addressing.cosine_similarity`). With D_n = (k . M_n) i_k i_n and
i = (|x|^2 + eps)^(-1/2), the backward from dLoss/dD_n = g_n is d(k . M_n) = g_n i_k i_n,
dk -= (sum_n g_n D_n) i_k^2 k and dM_n -= g_n D_n i_n^2 M_n.

The read kernels handle `link_kernels.HEADS` read heads written out, as the link kernels do, so that their
row loops vectorise; fewer heads arrive zero-padded (a zero key and zero read modes add nothing anywhere).
In torch the same work is ~60 operators forward and ~90 backward per step, each a pass over a (B, N) or
(B, N, W) tensor or a skinny batched matmul. Arrays are float32 or float64, C-contiguous, of one dtype;
`eps` and `one` are scalars of that dtype (a Python float would promote float32 arithmetic to float64).
Outputs that accumulate arrive zeroed (said per kernel); every other output is written in full.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, fastmath=True)
def _inverse_norm(x: np.ndarray, eps: float, one: float) -> float:
    """(|x|^2 + eps)^(-1/2) of a vector."""
    total = eps
    for i in range(x.shape[0]):
        total += x[i] * x[i]
    return one / np.sqrt(total)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _softmax(logits: np.ndarray, out: np.ndarray, one: float) -> None:
    """out = softmax(logits), the maximum subtracted first."""
    top = logits[0]
    for n in range(logits.shape[0]):
        top = max(top, logits[n])
    total = top - top
    for n in range(logits.shape[0]):
        value = np.exp(logits[n] - top)
        out[n] = value
        total += value
    inverse = one / total
    for n in range(logits.shape[0]):
        out[n] *= inverse


@numba.njit(cache=True, nogil=True, fastmath=True)
def usage_allocation_forward(
    free_gates: np.ndarray,
    prev_read_weights: np.ndarray,
    prev_write_weights: np.ndarray,
    prev_usage: np.ndarray,
    floor: float,
    one: float,
    usage: np.ndarray,
    allocation: np.ndarray,
    free_list: np.ndarray,
) -> None:
    """u_t = (u_{t-1} + w_{t-1}^w - u_{t-1} o w_{t-1}^w) o psi_t, psi_t = prod_i (1 - f^i w_{t-1}^{r,i});
    a_t[phi[j]] = (1 - s_j) prod_{i<j} s_i with s = floor + (1 - floor) u_t sorted ascending (stable) by phi.

    free_gates (B, R); prev_read_weights (B, R, N), any R; the others (B, N); free_list (B, N) int64.
    """
    batch, heads, slots = prev_read_weights.shape
    floored = np.empty(slots, dtype=usage.dtype)
    for b in range(batch):
        u, w = prev_usage[b], prev_write_weights[b]
        for n in range(slots):
            retention = one
            for r in range(heads):
                retention *= one - free_gates[b, r] * prev_read_weights[b, r, n]
            value = (u[n] + w[n] * (one - u[n])) * retention
            usage[b, n] = value
            floored[n] = floor + (one - floor) * value
        order = np.argsort(floored, kind="mergesort")
        product = one
        for j in range(slots):
            slot = order[j]
            free_list[b, j] = slot
            allocation[b, slot] = (one - floored[slot]) * product
            product *= floored[slot]


@numba.njit(cache=True, nogil=True, fastmath=True)
def usage_allocation_backward(
    grad_usage: np.ndarray,
    grad_allocation: np.ndarray,
    free_gates: np.ndarray,
    prev_read_weights: np.ndarray,
    prev_write_weights: np.ndarray,
    prev_usage: np.ndarray,
    usage: np.ndarray,
    free_list: np.ndarray,
    floor: float,
    one: float,
    grad_free_gates: np.ndarray,
    grad_prev_read_weights: np.ndarray,
    grad_prev_write_weights: np.ndarray,
    grad_prev_usage: np.ndarray,
) -> None:
    """Gradients of `usage_allocation_forward`'s inputs from those of u_t and a_t (grad_free_gates zeroed)."""
    batch, heads, slots = prev_read_weights.shape
    prefix = np.empty(slots, dtype=usage.dtype)
    total = np.empty(slots, dtype=usage.dtype)  # dLoss/du_t in total
    for b in range(batch):
        order, ga = free_list[b], grad_allocation[b]
        product = one
        for j in range(slots):
            prefix[j] = product
            product *= floor + (one - floor) * usage[b, order[j]]
        suffix = one - one  # S_j
        for j in range(slots - 1, -1, -1):
            slot = order[j]
            s = floor + (one - floor) * usage[b, slot]
            total[slot] = grad_usage[b, slot] + (one - floor) * prefix[j] * (suffix - ga[slot])
            suffix = ga[slot] * (one - s) + s * suffix
        u, w = prev_usage[b], prev_write_weights[b]
        for n in range(slots):
            retention = one
            for r in range(heads):
                retention *= one - free_gates[b, r] * prev_read_weights[b, r, n]
            grad_kept = total[n] * retention  # dLoss/d(u + w - u w)
            grad_prev_usage[b, n] = grad_kept * (one - w[n])
            grad_prev_write_weights[b, n] = grad_kept * (one - u[n])
            grad_retention = total[n] * (u[n] + w[n] * (one - u[n]))
            for r in range(heads):
                others = one  # prod over the other heads, without dividing by this one's factor
                for q in range(heads):
                    if q != r:
                        others *= one - free_gates[b, q] * prev_read_weights[b, q, n]
                grad_factor = grad_retention * others
                grad_free_gates[b, r] -= grad_factor * prev_read_weights[b, r, n]
                grad_prev_read_weights[b, r, n] = -grad_factor * free_gates[b, r]


@numba.njit(cache=True, nogil=True, fastmath=True)
def write_forward(
    prev_memory: np.ndarray,
    key: np.ndarray,
    strength: np.ndarray,
    allocation: np.ndarray,
    allocation_gate: np.ndarray,
    write_gate: np.ndarray,
    erase: np.ndarray,
    write_vector: np.ndarray,
    read_keys: np.ndarray,
    eps: float,
    one: float,
    content: np.ndarray,
    similarity: np.ndarray,
    inverse_norms: np.ndarray,
    write_weights: np.ndarray,
    memory: np.ndarray,
    read_similarity: np.ndarray,
    read_inverse_norms: np.ndarray,
) -> None:
    """c^w = C(M_{t-1}, k^w, beta^w); w^w = g^w (c^w + g^a (a - c^w)); M_t = M_{t-1} - M_{t-1} o (w e^T) + w v^T.

    prev_memory, memory (B, N, W); key, erase, write_vector (B, W); strength and the gates (B,); allocation and
    the (B, N) outputs: content c^w, similarity D, inverse_norms i_n of M_{t-1}'s rows, write_weights.
    With each row of M_t at hand it also forms the read keys' (B, 4, W) cosine similarities to M_t's rows,
    read_similarity (B, 4, N), and M_t's read_inverse_norms (B, N), which `read_forward` starts from.
    """
    batch, slots, width = prev_memory.shape
    zero = eps - eps
    logits = np.empty(slots, dtype=memory.dtype)
    for b in range(batch):
        mem, k, e, v = prev_memory[b], key[b], erase[b], write_vector[b]
        inverse_key, beta = _inverse_norm(k, eps, one), strength[b]
        for n in range(slots):
            row = mem[n]
            squares, dot = eps, zero
            for i in range(width):
                squares += row[i] * row[i]
                dot += k[i] * row[i]
            inverse = one / np.sqrt(squares)
            inverse_norms[b, n] = inverse
            similarity[b, n] = dot * inverse_key * inverse
            logits[n] = beta * similarity[b, n]
        _softmax(logits, content[b], one)
        gate_a, gate_w = allocation_gate[b], write_gate[b]
        k0, k1, k2, k3 = read_keys[b, 0], read_keys[b, 1], read_keys[b, 2], read_keys[b, 3]
        ik0, ik1 = _inverse_norm(k0, eps, one), _inverse_norm(k1, eps, one)
        ik2, ik3 = _inverse_norm(k2, eps, one), _inverse_norm(k3, eps, one)
        s0, s1, s2, s3 = read_similarity[b, 0], read_similarity[b, 1], read_similarity[b, 2], read_similarity[b, 3]
        for n in range(slots):
            weight = gate_w * (content[b, n] + gate_a * (allocation[b, n] - content[b, n]))
            write_weights[b, n] = weight
            row, out = mem[n], memory[b, n]
            squares = eps
            d0 = d1 = d2 = d3 = zero
            for i in range(width):
                x = row[i] - row[i] * (weight * e[i]) + weight * v[i]
                out[i] = x
                squares += x * x
                d0 += k0[i] * x
                d1 += k1[i] * x
                d2 += k2[i] * x
                d3 += k3[i] * x
            inverse = one / np.sqrt(squares)
            read_inverse_norms[b, n] = inverse
            s0[n] = d0 * ik0 * inverse
            s1[n] = d1 * ik1 * inverse
            s2[n] = d2 * ik2 * inverse
            s3[n] = d3 * ik3 * inverse


@numba.njit(cache=True, nogil=True, fastmath=True)
def write_backward(
    grad_write_weights: np.ndarray,
    write_row_terms: np.ndarray,
    grad_memory: np.ndarray,
    prev_memory: np.ndarray,
    key: np.ndarray,
    strength: np.ndarray,
    allocation: np.ndarray,
    allocation_gate: np.ndarray,
    write_gate: np.ndarray,
    erase: np.ndarray,
    content: np.ndarray,
    similarity: np.ndarray,
    inverse_norms: np.ndarray,
    write_weights: np.ndarray,
    eps: float,
    one: float,
    grad_prev_memory: np.ndarray,
    grad_key: np.ndarray,
    grad_strength: np.ndarray,
    grad_allocation: np.ndarray,
    grad_allocation_gate: np.ndarray,
    grad_write_gate: np.ndarray,
) -> None:
    """Gradients of `write_forward`'s inputs but e and v (which `read_backward` forms with the row terms) from
    dLoss/dw^w not through M_t, dLoss/dM_t and the row terms sum_i dLoss/dM_t[n, i] (v[i] - M_{t-1}[n, i] e[i])
    (grad_key zeroed on entry)."""
    batch, slots, width = prev_memory.shape
    zero = eps - eps
    total = np.empty(slots, dtype=prev_memory.dtype)  # dLoss/dw^w in total, then dLoss/dD
    for b in range(batch):
        mem, k, e = prev_memory[b], key[b], erase[b]
        for n in range(slots):
            total[n] = grad_write_weights[b, n] + write_row_terms[b, n]
        gate_a, gate_w, c = allocation_gate[b], write_gate[b], content[b]
        sum_w = sum_a = sum_c = zero
        for n in range(slots):
            grad = total[n]
            sum_w += grad * (c[n] + gate_a * (allocation[b, n] - c[n]))
            sum_a += grad * (allocation[b, n] - c[n])
            sum_c += grad * c[n]
            grad_allocation[b, n] = gate_w * gate_a * grad
        grad_write_gate[b] = sum_w
        grad_allocation_gate[b] = gate_w * sum_a
        # dLoss/dc = scale * total; softmax: dLoss/dlogit_n = c_n (dc_n - sum_m c_m dc_m).
        scale, beta, sim = gate_w - gate_w * gate_a, strength[b], similarity[b]
        grad_beta = key_term = zero
        for n in range(slots):
            grad_logit = c[n] * scale * (total[n] - sum_c)
            grad_beta += grad_logit * sim[n]
            grad_sim = beta * grad_logit
            key_term += grad_sim * sim[n]
            total[n] = grad_sim
        grad_strength[b] = grad_beta
        inverse_key, grad_k = _inverse_norm(k, eps, one), grad_key[b]
        for n in range(slots):
            row, grad, out = mem[n], grad_memory[b, n], grad_prev_memory[b, n]
            inverse, weight = inverse_norms[b, n], write_weights[b, n]
            grad_dot = total[n] * inverse_key * inverse
            norm_term = total[n] * sim[n] * inverse * inverse
            for i in range(width):
                out[i] = grad[i] - grad[i] * (weight * e[i]) + grad_dot * k[i] - norm_term * row[i]
                grad_k[i] += grad_dot * row[i]
        key_term *= inverse_key * inverse_key
        for i in range(width):
            grad_k[i] -= key_term * k[i]


@numba.njit(cache=True, nogil=True, fastmath=True)
def read_forward(
    memory: np.ndarray,
    strengths: np.ndarray,
    modes: np.ndarray,
    forward_weights: np.ndarray,
    backward_weights: np.ndarray,
    similarity: np.ndarray,
    one: float,
    content: np.ndarray,
    read_weights: np.ndarray,
    read_vectors: np.ndarray,
) -> None:
    """c^r = C(M_t, k^r, beta^r) from the similarities D(k^r, M_t) that `write_forward` formed;
    w^r = pi[0] b + pi[1] c^r + pi[2] f; r = M_t^T w^r, for HEADS = 4 heads.

    memory (B, N, W); strengths (B, 4); modes (B, 4, 3); forward/backward weights, similarity, content,
    read_weights (B, 4, N); read_vectors (B, 4, W), zeroed on entry.
    """
    batch, slots, width = memory.shape
    logits = np.empty(slots, dtype=memory.dtype)
    for b in range(batch):
        mem = memory[b]
        for r in range(4):
            beta, sim = strengths[b, r], similarity[b, r]
            for n in range(slots):
                logits[n] = beta * sim[n]
            _softmax(logits, content[b, r], one)
            p0, p1, p2 = modes[b, r, 0], modes[b, r, 1], modes[b, r, 2]
            c, f, bw, out = content[b, r], forward_weights[b, r], backward_weights[b, r], read_weights[b, r]
            for n in range(slots):
                out[n] = p0 * bw[n] + p1 * c[n] + p2 * f[n]
        v0, v1, v2, v3 = read_vectors[b, 0], read_vectors[b, 1], read_vectors[b, 2], read_vectors[b, 3]
        w0, w1, w2, w3 = read_weights[b, 0], read_weights[b, 1], read_weights[b, 2], read_weights[b, 3]
        for n in range(slots):
            row = mem[n]
            x0, x1, x2, x3 = w0[n], w1[n], w2[n], w3[n]
            for i in range(width):
                x = row[i]
                v0[i] += x0 * x
                v1[i] += x1 * x
                v2[i] += x2 * x
                v3[i] += x3 * x


@numba.njit(cache=True, nogil=True, fastmath=True)
def read_backward(
    grad_read_weights: np.ndarray,
    grad_read_vectors: np.ndarray,
    grad_memory_later: np.ndarray,
    memory: np.ndarray,
    keys: np.ndarray,
    strengths: np.ndarray,
    modes: np.ndarray,
    forward_weights: np.ndarray,
    backward_weights: np.ndarray,
    content: np.ndarray,
    similarity: np.ndarray,
    inverse_norms: np.ndarray,
    read_weights: np.ndarray,
    prev_memory: np.ndarray,
    write_weights: np.ndarray,
    erase: np.ndarray,
    write_vector: np.ndarray,
    eps: float,
    one: float,
    grad_memory: np.ndarray,
    grad_keys: np.ndarray,
    grad_strengths: np.ndarray,
    grad_modes: np.ndarray,
    grad_forward_weights: np.ndarray,
    grad_backward_weights: np.ndarray,
    write_row_terms: np.ndarray,
    grad_erase: np.ndarray,
    grad_write_vector: np.ndarray,
) -> None:
    """Gradients of `read_forward`'s inputs from those of w^r and r, and dLoss/dM_t in total (grad_memory_later
    is what M_t passed on to later steps). With each row of dLoss/dM_t at hand it also forms the write stage's
    terms through M_t = M_{t-1} - M_{t-1} o (w e^T) + w v^T: dLoss/de, dLoss/dv and the row terms
    sum_i dLoss/dM_t[n, i] (v[i] - M_{t-1}[n, i] e[i]) that `write_backward` takes (grad_keys, grad_erase and
    grad_write_vector zeroed on entry)."""
    batch, slots, width = memory.shape
    zero = eps - eps
    total = np.empty((4, slots), dtype=memory.dtype)  # dLoss/dw^r in total, then dLoss/d(k . M_n)
    norm_terms = np.empty(slots, dtype=memory.dtype)
    key_terms = np.empty(4, dtype=memory.dtype)
    for b in range(batch):
        mem = memory[b]
        k0, k1, k2, k3 = keys[b, 0], keys[b, 1], keys[b, 2], keys[b, 3]
        grad_r = grad_read_vectors[b]
        g0, g1, g2, g3 = grad_r[0], grad_r[1], grad_r[2], grad_r[3]
        t0, t1, t2, t3 = total[0], total[1], total[2], total[3]
        gw = grad_read_weights[b]
        for n in range(slots):
            row = mem[n]
            d0 = d1 = d2 = d3 = zero
            for i in range(width):
                x = row[i]
                d0 += g0[i] * x
                d1 += g1[i] * x
                d2 += g2[i] * x
                d3 += g3[i] * x
            t0[n] = gw[0, n] + d0
            t1[n] = gw[1, n] + d1
            t2[n] = gw[2, n] + d2
            t3[n] = gw[3, n] + d3
            norm_terms[n] = zero
        for r in range(4):
            p0, p1, p2 = modes[b, r, 0], modes[b, r, 1], modes[b, r, 2]
            c, sim, t = content[b, r], similarity[b, r], total[r]
            bw, f = backward_weights[b, r], forward_weights[b, r]
            grad_bw, grad_f = grad_backward_weights[b, r], grad_forward_weights[b, r]
            m0 = m1 = m2 = zero
            for n in range(slots):
                grad = t[n]
                m0 += grad * bw[n]
                m1 += grad * c[n]
                m2 += grad * f[n]
                grad_bw[n] = p0 * grad
                grad_f[n] = p2 * grad
            grad_modes[b, r, 0], grad_modes[b, r, 1], grad_modes[b, r, 2] = m0, m1, m2
            inverse_key, beta = _inverse_norm(keys[b, r], eps, one), strengths[b, r]
            grad_beta = key_term = zero
            for n in range(slots):
                grad_logit = c[n] * p1 * (t[n] - m1)  # softmax backward, dLoss/dc = p1 t
                grad_beta += grad_logit * sim[n]
                grad_sim = beta * grad_logit
                key_term += grad_sim * sim[n]
                norm_terms[n] += grad_sim * sim[n]
                t[n] = grad_sim * inverse_key * inverse_norms[b, n]
            grad_strengths[b, r] = grad_beta
            key_terms[r] = key_term * inverse_key * inverse_key
        w0, w1, w2, w3 = read_weights[b, 0], read_weights[b, 1], read_weights[b, 2], read_weights[b, 3]
        gk0, gk1, gk2, gk3 = grad_keys[b, 0], grad_keys[b, 1], grad_keys[b, 2], grad_keys[b, 3]
        e, v, grad_e, grad_v = erase[b], write_vector[b], grad_erase[b], grad_write_vector[b]
        for n in range(slots):
            row, later, out, prev_row = mem[n], grad_memory_later[b, n], grad_memory[b, n], prev_memory[b, n]
            inverse = inverse_norms[b, n]
            norm_term = norm_terms[n] * inverse * inverse
            a0, a1, a2, a3 = w0[n], w1[n], w2[n], w3[n]
            y0, y1, y2, y3 = t0[n], t1[n], t2[n], t3[n]
            weight = write_weights[b, n]
            row_term = zero
            for i in range(width):
                x = row[i]
                grad = (
                    later[i]
                    + a0 * g0[i] + a1 * g1[i] + a2 * g2[i] + a3 * g3[i]
                    + y0 * k0[i] + y1 * k1[i] + y2 * k2[i] + y3 * k3[i]
                    - norm_term * x
                )  # fmt: skip
                out[i] = grad
                gk0[i] += y0 * x
                gk1[i] += y1 * x
                gk2[i] += y2 * x
                gk3[i] += y3 * x
                row_term += grad * (v[i] - prev_row[i] * e[i])  # dM_t[n, i]/dw[n] = v[i] - M_{t-1}[n, i] e[i]
                grad_e[i] -= weight * grad * prev_row[i]
                grad_v[i] += weight * grad
            write_row_terms[b, n] = row_term
        for i in range(width):
            gk0[i] -= key_terms[0] * k0[i]
            gk1[i] -= key_terms[1] * k1[i]
            gk2[i] -= key_terms[2] * k2[i]
            gk3[i] -= key_terms[3] * k3[i]

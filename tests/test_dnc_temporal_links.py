"""Temporal link matrix and precedence of the DNC, dense and top-K sparse."""

import itertools

import pytest
import torch

from dreamlab.dnc import temporal_links
from dreamlab.dnc.link_kernels import BufferPool
from dreamlab.dnc.temporal_links import (
    TemporalLinkage,
    TopKLinks,
    _DenseLinkStep,
    dense_link_step,
    kernel_applies,
    topk_directional_weights,
    topk_link_update,
    update_precedence,
)


def reference_link_step(prev_link, write_weights, prev_precedence, prev_read_weights):
    """The paper's equations written directly (autograd differentiates them)."""
    slots = prev_link.shape[-1]
    link = (1 - write_weights[:, :, None] - write_weights[:, None, :]) * prev_link
    link = link + write_weights[:, :, None] * prev_precedence[:, None, :]
    link = link * (1 - torch.eye(slots, dtype=link.dtype))
    forward = torch.einsum("bij,brj->bri", link, prev_read_weights)  # f = L w
    backward = torch.einsum("bij,bri->brj", link, prev_read_weights)  # b = L^T w
    return link, forward, backward


def random_inputs(batch=3, slots=6, heads=2, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    prev_link = torch.rand(batch, slots, slots, generator=generator, dtype=dtype) / slots
    prev_link = prev_link * (1 - torch.eye(slots, dtype=dtype))
    write = 0.9 * torch.softmax(torch.randn(batch, slots, generator=generator, dtype=dtype), -1)
    precedence = 0.9 * torch.softmax(torch.randn(batch, slots, generator=generator, dtype=dtype), -1)
    read = torch.softmax(torch.randn(batch, heads, slots, generator=generator, dtype=dtype), -1)
    return prev_link, write, precedence, read


def test_precedence_update():
    prev = torch.tensor([[0.5, 0.5, 0.0]])
    write = torch.tensor([[0.0, 0.2, 0.6]])
    torch.testing.assert_close(update_precedence(prev, write), torch.tensor([[0.1, 0.3, 0.6]]))


def test_dense_step_matches_the_equations_and_their_gradients():
    inputs = random_inputs()
    for ours, reference in zip(dense_link_step(*inputs), reference_link_step(*inputs), strict=True):
        torch.testing.assert_close(ours, reference)
    leaves = [t.clone().requires_grad_() for t in inputs]
    assert torch.autograd.gradcheck(dense_link_step, leaves)
    # Gradient of a loss using all three outputs equals autograd through the reference equations.
    weights = [torch.randn_like(t) for t in reference_link_step(*inputs)]
    grads = []
    for step in (dense_link_step, reference_link_step):
        leaves = [t.clone().requires_grad_() for t in inputs]
        loss = sum((w * out).sum() for w, out in zip(weights, step(*leaves), strict=True))
        grads.append(torch.autograd.grad(loss, leaves))
    for ours, reference in zip(*grads, strict=True):
        torch.testing.assert_close(ours, reference)


def test_cpu_float_inputs_take_the_numba_kernels_and_others_the_torch_operations():
    inputs = random_inputs()
    assert kernel_applies(*inputs) and kernel_applies(*(t.float() for t in inputs))
    assert not kernel_applies(*(t.to(torch.bfloat16) for t in inputs))
    assert not kernel_applies(inputs[0].float(), *inputs[1:])  # mixed dtypes
    assert not kernel_applies(*(t.to("meta") for t in inputs))  # as for CUDA tensors: not on the CPU
    five_heads = torch.softmax(torch.randn(3, 5, 6, dtype=torch.float64), -1)
    assert not kernel_applies(*inputs[:3], five_heads)  # the kernels handle up to 4 read heads
    five_head_inputs = (*inputs[:3], five_heads)
    for ours, reference in zip(dense_link_step(*five_head_inputs), reference_link_step(*five_head_inputs), strict=True):
        torch.testing.assert_close(ours, reference)
    leaves = [t.clone().requires_grad_() for t in inputs]
    assert "dnc_link_step" in type(dense_link_step(*leaves)[0].grad_fn).__name__
    assert type(dense_link_step(*(t.to(torch.bfloat16).requires_grad_() for t in inputs))[0].grad_fn).__name__ == (
        "_DenseLinkStepBackward"
    )
    # The torch operations (GPUs, other dtypes) compute the same step.
    link, forward, backward = dense_link_step(*(t.to(torch.bfloat16) for t in inputs))
    for ours, reference in zip((link, forward, backward), reference_link_step(*inputs), strict=True):
        torch.testing.assert_close(ours.double(), reference, atol=2e-2, rtol=2e-2)
    shapes = [tuple(t.shape) for t in dense_link_step(*(t.to("meta") for t in inputs))]
    assert shapes == [tuple(inputs[0].shape), tuple(inputs[3].shape), tuple(inputs[3].shape)]


@pytest.mark.parametrize(
    ("step", "heads"), [(dense_link_step, 3), (dense_link_step, 4), (_DenseLinkStep.apply, 3)], ids=str
)
def test_both_implementations_pass_gradcheck(step, heads):
    """Float64 through the kernels, with the heads padded to 4 (3) or not (4), and through torch operations."""
    leaves = [t.clone().requires_grad_() for t in random_inputs(batch=2, slots=7, heads=heads, seed=5)]
    assert torch.autograd.gradcheck(step, leaves)


@pytest.mark.parametrize("heads", [1, 3, 4])
def test_numba_and_torch_implementations_agree_in_float32(heads):
    inputs = [t.float() for t in random_inputs(batch=4, slots=33, heads=heads, seed=6)]
    weights = [torch.randn_like(t) for t in reference_link_step(*inputs)]
    results = []
    for step in (dense_link_step, _DenseLinkStep.apply):
        leaves = [t.clone().requires_grad_() for t in inputs]
        outputs = step(*leaves)
        loss = sum((w * out).sum() for w, out in zip(weights, outputs, strict=True))
        results.append((*outputs, *torch.autograd.grad(loss, leaves)))
    for ours, theirs in zip(*results, strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_the_kernel_operators_pass_torch_library_opcheck():
    """Schema, fake (meta) implementation and autograd registration hold, as torch.compile relies on them."""
    leaves = [t.float().requires_grad_() for t in random_inputs(seed=7)]
    torch.library.opcheck(torch.ops.dreamlab.dnc_link_step.default, leaves)


def test_mismatched_shapes_are_an_error_not_a_stray_memory_access():
    prev_link, write, precedence, read = random_inputs()
    with pytest.raises(ValueError, match=r"prev_read_weights \(B, R, N\).*\(3, 2, 5\)"):
        dense_link_step(prev_link, write, precedence, read[..., :5])
    with pytest.raises(ValueError, match="prev_link"):
        dense_link_step(prev_link[:2], write, precedence, read)


def test_buffer_pool_reuses_a_buffer_only_once_nothing_refers_to_it():
    pool = BufferPool()
    first = pool.empty((2, 3, 3), torch.float32)
    view = first.diagonal(dim1=-2, dim2=-1)
    address = first.data_ptr()
    del first
    second = pool.empty((2, 3, 3), torch.float32)
    assert second.data_ptr() != address and len(pool) == 2  # the view still holds the first buffer
    del view
    third = pool.empty((2, 3, 3), torch.float32)
    assert third.data_ptr() == address and len(pool) == 2
    assert third.is_contiguous() and third.dtype == torch.float32
    del second, third
    other = pool.empty((4, 3, 3), torch.float64)  # another shape drops the free buffers of the old one
    assert len(pool) == 1 and other.dtype == torch.float64 and other.shape == (4, 3, 3)


def test_a_training_sequence_reuses_warm_buffers_and_its_links_stay_distinct(monkeypatch):
    """Every L_t of a sequence is its own buffer; once a backward is done, the next sequence allocates none,
    although the first step's L_{t-1} (the initial state) needs no gradient."""
    pool = BufferPool()
    monkeypatch.setattr(temporal_links, "LINK_BUFFERS", pool)
    inputs = [t.float() for t in random_inputs(batch=3, slots=5, heads=2, seed=8)]

    def unroll():
        link, addresses, values = torch.zeros(3, 5, 5), set(), []
        leaves = [t.clone().requires_grad_() for t in inputs[1:]]
        for _ in range(4):
            link, forward, _ = dense_link_step(link, *leaves)
            addresses.add(link.data_ptr())
            values.append(link.detach().clone())
        (forward.sum() + link.square().sum()).backward()
        return len(addresses), [*values, *(leaf.grad for leaf in leaves)]

    distinct, results = unroll()
    allocations = pool.allocations
    assert distinct == 4
    _, results_again = unroll()
    assert pool.allocations == allocations
    for ours, theirs in zip(results, results_again, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_threads_split_the_batch_without_changing_a_bit():
    inputs = [t.float() for t in random_inputs(batch=5, slots=9, heads=3, seed=9)]
    weights = [torch.randn_like(t) for t in reference_link_step(*inputs)]
    results, threads = [], torch.get_num_threads()
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            leaves = [t.clone().requires_grad_() for t in inputs]
            outputs = dense_link_step(*leaves)
            loss = sum((w * out).sum() for w, out in zip(weights, outputs, strict=True))
            results.append((*outputs, *torch.autograd.grad(loss, leaves)))
    finally:
        torch.set_num_threads(threads)
    for ours, theirs in zip(*results, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


@pytest.mark.parametrize("needs", [(0,), (1,), (2,), (3,), (0, 3), (1, 2)])
def test_dense_step_gradients_when_only_some_inputs_need_them(needs):
    """The backward skips (and reuses buffers across) the parts no input needs; the rest stays exact."""
    inputs = random_inputs(seed=2)
    weights = [torch.randn_like(t) for t in reference_link_step(*inputs)]
    grads = []
    for step in (dense_link_step, reference_link_step):
        leaves = [t.clone().requires_grad_(index in needs) for index, t in enumerate(inputs)]
        loss = sum((w * out).sum() for w, out in zip(weights, step(*leaves), strict=True))
        grads.append(torch.autograd.grad(loss, [leaves[index] for index in needs]))
    for ours, reference in zip(*grads, strict=True):
        torch.testing.assert_close(ours, reference)


def chained_gradients(step, steps, weights, link_weight, hook=None):
    """Gradients of a loss over f_t, b_t (and link_weight * L_t) of a chain of link steps, for every input."""
    batch, _, slots = weights[0].shape
    leaves = [[t.clone().requires_grad_() for t in inputs] for inputs in steps]
    link, loss = torch.zeros(batch, slots, slots, dtype=torch.float64), 0
    for t, ((write, precedence, read), weight) in enumerate(zip(leaves, weights, strict=True)):
        link, forward, backward = step(link, write, precedence, read)
        if hook is not None and t == 1:
            link.register_hook(hook)
        loss = loss + (weight * forward).sum() + (weight.flip(-1) * backward).sum() + link_weight * link.square().sum()
    return torch.autograd.grad(loss, [t for inputs in leaves for t in inputs])


@pytest.mark.parametrize("link_weight", [0.0, 0.5])
def test_chained_dense_steps_match_the_equations_through_time(link_weight):
    """Backward through several steps, where the gradient of L_t is accumulated in place from step to step
    (link_weight 0) or summed by autograd with a loss on L_t too (0.5); then a different shape."""
    for batch, slots, heads in ((3, 6, 2), (2, 5, 3)):
        generator = torch.Generator().manual_seed(slots)
        steps = [random_inputs(batch, slots, heads, seed=seed)[1:] for seed in range(4)]
        weights = [torch.randn(batch, heads, slots, generator=generator, dtype=torch.float64) for _ in steps]
        ours = chained_gradients(dense_link_step, steps, weights, link_weight)
        reference = chained_gradients(reference_link_step, steps, weights, link_weight)
        for mine, theirs in zip(ours, reference, strict=True):
            torch.testing.assert_close(mine, theirs)


def test_a_hook_on_a_link_keeps_the_gradient_it_saw():
    """The backward must not later overwrite the gradient tensor a hook on L_t kept."""
    steps = [random_inputs(2, 5, 2, seed=seed)[1:] for seed in range(4)]
    weights = [torch.randn(2, 2, 5, dtype=torch.float64) for _ in steps]
    kept, copies = [], []

    def hook(grad):
        kept.append(grad)
        copies.append(grad.clone())

    chained_gradients(dense_link_step, steps, weights, 0.0, hook=hook)
    torch.testing.assert_close(kept[0], copies[0], rtol=0, atol=0)


def test_sequential_one_hot_writes_form_a_chain():
    slots, batch = 5, 2
    linkage = TemporalLinkage(slots)
    link = linkage.initial_link(batch, torch.device("cpu"), torch.float32)
    precedence = torch.zeros(batch, slots)
    read = torch.zeros(batch, 1, slots)
    order = [2, 0, 4, 1]
    for slot in order:
        write = torch.zeros(batch, slots)
        write[:, slot] = 1.0
        link, precedence, _, _ = linkage(link, write, precedence, read)
    expected = torch.zeros(slots, slots)
    for before, after in itertools.pairwise(order):
        expected[after, before] = 1.0  # L[i, j] = 1: i written right after j
    torch.testing.assert_close(link, expected.expand(batch, slots, slots))
    torch.testing.assert_close(precedence, torch.nn.functional.one_hot(torch.tensor([1, 1]), slots).float())
    # Reading slot 0 forward lands on slot 4 (written next), backward on slot 2 (written before).
    read = torch.zeros(batch, 1, slots)
    read[:, 0, 0] = 1.0
    still = torch.zeros(batch, slots)
    _, _, forward, backward = linkage(link, still, precedence, read)
    assert forward[0, 0].argmax() == 4 and backward[0, 0].argmax() == 2


def test_link_rows_and_columns_stay_substochastic():
    inputs = random_inputs(batch=4, slots=8, seed=3)
    link, precedence = inputs[0].float() * 0, torch.zeros(4, 8)
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        write = torch.rand(4, 1, generator=generator) * torch.softmax(3 * torch.randn(4, 8, generator=generator), -1)
        link, _, _ = dense_link_step(link, write, precedence, torch.zeros(4, 1, 8))
        precedence = update_precedence(precedence, write)
    assert link.min() >= 0
    assert link.sum(-1).max() <= 1 + 1e-5 and link.sum(-2).max() <= 1 + 1e-5
    assert torch.diagonal(link, dim1=-2, dim2=-1).abs().max() == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_topk_with_k_equal_n_equals_dense(seed):
    slots, batch = 6, 3
    *_, read = random_inputs(batch, slots, seed=seed)
    dense = TemporalLinkage(slots)
    sparse = TemporalLinkage(slots, sparse_links=slots)
    dense_link = dense.initial_link(batch, torch.device("cpu"), torch.float64)
    sparse_link = sparse.initial_link(batch, torch.device("cpu"), torch.float64)
    precedence = torch.zeros(batch, slots, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(6):
        write = 0.8 * torch.softmax(torch.randn(batch, slots, generator=generator, dtype=torch.float64), -1)
        dense_link, dense_precedence, dense_f, dense_b = dense(dense_link, write, precedence, read)
        sparse_link, _, sparse_f, sparse_b = sparse(sparse_link, write, precedence, read)
        precedence = dense_precedence
        torch.testing.assert_close(sparse_link.dense(), dense_link)
        torch.testing.assert_close(sparse_f, dense_f)
        torch.testing.assert_close(sparse_b, dense_b)


def test_topk_keeps_k_entries_per_row_and_is_exact_for_sharp_writes():
    slots, batch, k = 10, 2, 2
    sparse = TemporalLinkage(slots, sparse_links=k)
    dense = TemporalLinkage(slots)
    sparse_link = sparse.initial_link(batch, torch.device("cpu"), torch.float32)
    dense_link = dense.initial_link(batch, torch.device("cpu"), torch.float32)
    precedence = torch.zeros(batch, slots)
    read = torch.softmax(torch.randn(batch, 3, slots), -1)
    for slot in [3, 7, 1, 0, 9, 4]:
        write = torch.nn.functional.one_hot(torch.tensor([slot, (slot + 1) % slots]), slots).float()
        sparse_link, _, sparse_f, sparse_b = sparse(sparse_link, write, precedence, read)
        dense_link, precedence, dense_f, dense_b = dense(dense_link, write, precedence, read)
    assert sparse_link.values.shape == (batch, slots, k)
    torch.testing.assert_close(sparse_link.dense(), dense_link)
    torch.testing.assert_close(sparse_f, dense_f)
    torch.testing.assert_close(sparse_b, dense_b)


def test_topk_truncates_rows_and_passes_gradients():
    slots, batch, k = 8, 2, 3
    generator = torch.Generator().manual_seed(0)
    values = torch.zeros(batch, slots, k, dtype=torch.float64)
    indices = torch.zeros(batch, slots, k, dtype=torch.long)
    link = TopKLinks(values, indices)
    precedence = torch.zeros(batch, slots, dtype=torch.float64)
    for _ in range(5):
        write = 0.9 * torch.softmax(torch.randn(batch, slots, generator=generator, dtype=torch.float64), -1)
        link = topk_link_update(link, write, precedence)
        precedence = update_precedence(precedence, write)
    assert ((link.dense() != 0).sum(-1) <= k).all()
    assert torch.diagonal(link.dense(), dim1=-2, dim2=-1).abs().max() == 0

    write = (
        0.9 * torch.softmax(torch.randn(batch, slots, generator=generator, dtype=torch.float64), -1)
    ).requires_grad_()
    read = torch.softmax(torch.randn(batch, 2, slots, dtype=torch.float64), -1).requires_grad_()
    prev_values = link.values.clone().requires_grad_()
    precedence = precedence.clone().requires_grad_()

    def step(values, write, precedence, read):
        new = topk_link_update(TopKLinks(values, link.indices), write, precedence)
        return (new.values, *topk_directional_weights(new, read))

    assert torch.autograd.gradcheck(step, (prev_values, write, precedence, read))


def test_sparse_links_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="sparse_links"):
        TemporalLinkage(8, sparse_links=9)
    with pytest.raises(ValueError, match="sparse_links"):
        TemporalLinkage(8, sparse_links=0)

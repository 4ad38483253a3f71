"""The fused DNC step (one autograd function over numba kernels) against the modules' torch composition."""

import pytest
import torch

from dreamlab.dnc import DNC, DNCCell, fused_step
from dreamlab.dnc.fused_step import fused_step_applies

SIZES = dict(input_size=5, output_size=3, hidden_size=16, memory_slots=12, word_size=6)


def sequence_loss(y, state):
    # Every output of the last step enters the loss, so every gradient path of the step is exercised.
    weights = torch.arange(y.numel(), dtype=y.dtype).view_as(y).sin()
    extra = sum((t * t.detach().sin()).sum() for t in state[:-1]) + state.controller.c.sum()
    return (y * weights).sum() + extra


def outputs_and_grads(model, x):
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    y, state = model(x)
    sequence_loss(y, state).backward()
    return y.detach(), state, {name: p.grad.clone() for name, p in model.named_parameters()}, x.grad


@pytest.mark.parametrize("heads", [1, 3, 4])
def test_a_dnc_of_fused_steps_equals_the_modules_in_float64(heads):
    torch.manual_seed(0)
    fused = DNC(**SIZES, read_heads=heads).double()
    modules = DNC(**SIZES, read_heads=heads, fused=False).double()
    modules.load_state_dict(fused.state_dict())
    x = torch.randn(3, 9, SIZES["input_size"], dtype=torch.float64)
    y, state, grads, x_grad = outputs_and_grads(fused, x)
    y_ref, state_ref, grads_ref, x_grad_ref = outputs_and_grads(modules, x)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-12)
    for name, value, expected in zip(state._fields[:-1], state[:-1], state_ref[:-1], strict=True):
        torch.testing.assert_close(value.detach(), expected.detach(), rtol=1e-10, atol=1e-12, msg=name)
    for name, grad in grads_ref.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-9, atol=1e-12, msg=name)
    torch.testing.assert_close(x_grad, x_grad_ref, rtol=1e-9, atol=1e-12)


def test_a_cell_stepping_with_its_parameters_equals_the_modules():
    """DNCCell passes the parameters themselves: the fused step then forms their gradients at every step."""
    torch.manual_seed(1)
    fused = DNCCell(**SIZES, read_heads=2).double()
    modules = DNCCell(**SIZES, read_heads=2, fused=False).double()
    modules.load_state_dict(fused.state_dict())
    x = torch.randn(4, 2, SIZES["input_size"], dtype=torch.float64)
    results = []
    for cell in (fused, modules):
        state, outputs = None, []
        for x_t in x.unbind(1):
            y_t, state = cell(x_t, state)
            outputs.append(y_t)
        sequence_loss(torch.stack(outputs, 1), state).backward()
        results.append({name: p.grad for name, p in cell.named_parameters()})
    for name, grad in results[1].items():
        torch.testing.assert_close(results[0][name], grad, rtol=1e-9, atol=1e-12, msg=name)


def test_the_fused_step_passes_gradcheck_through_every_state_output():
    torch.manual_seed(2)
    cell = DNCCell(4, 2, 8, 6, 5, 3).double()
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)

    def run(x):
        state, outputs = None, []
        for x_t in x.unbind(1):
            y_t, state = cell(x_t, state)
            outputs.append(y_t)
        return (torch.stack(outputs), *state[:-1], *state.controller)

    assert torch.autograd.gradcheck(run, (x,))


def test_float32_fused_steps_match_the_modules_at_a_training_size():
    torch.manual_seed(3)
    fused = DNC(8, 8, 64, 32, 16, 4)
    modules = DNC(8, 8, 64, 32, 16, 4, fused=False)
    modules.load_state_dict(fused.state_dict())
    x = torch.randn(4, 20, 8)
    y, _, grads, _ = outputs_and_grads(fused, x)
    y_ref, _, grads_ref, _ = outputs_and_grads(modules, x)
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-5)
    for name, grad in grads_ref.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-3, atol=1e-5, msg=name)


def test_which_steps_are_fused():
    torch.manual_seed(0)

    def applies(cell, dtype=torch.float32):
        cell = cell.to(dtype)
        state = cell.initial_state(2)
        projected = cell.controller.project_input(torch.randn(2, SIZES["input_size"], dtype=dtype))
        return cell.takes_fused_step(projected, state, cell.step_weights())

    assert applies(DNCCell(**SIZES, read_heads=4))
    assert applies(DNCCell(**SIZES, read_heads=2), torch.float64)
    assert not applies(DNCCell(**SIZES, read_heads=5))  # the kernels handle at most 4 read heads
    assert not applies(DNCCell(**SIZES, read_heads=2, sparse_links=3))
    assert not applies(DNCCell(**SIZES, read_heads=2, fused=False))
    assert not applies(DNCCell(**SIZES, read_heads=2), torch.bfloat16)
    cell = DNCCell(**SIZES, read_heads=2)
    state = cell.initial_state(2)
    projected = cell.controller.project_input(torch.randn(2, SIZES["input_size"]))
    mixed = state._replace(usage=state.usage.double())
    assert not fused_step_applies(projected, mixed, *cell.step_weights())


def test_more_read_heads_than_the_kernels_take_still_run_on_the_modules():
    torch.manual_seed(4)
    dnc = DNC(**SIZES, read_heads=5)
    y, _ = dnc(torch.randn(2, 3, SIZES["input_size"]))
    y.sum().backward()
    assert y.shape == (2, 3, 3) and dnc.cell.output.weight.grad is not None


def test_two_threads_split_the_batch_and_agree_with_one(monkeypatch):
    """The kernels split the batch over torch's threads while torch itself runs the step on one (its OpenMP
    threads would spin on the kernels' cores), and the thread count is given back; the split kernels are
    bit-identical, so the two runs agree to float32 rounding."""
    torch.manual_seed(5)
    dnc = DNC(**SIZES, read_heads=3)
    x = torch.randn(5, 6, SIZES["input_size"])
    splits = []

    def run_split(kernel, *args, threads):
        splits.append((threads, torch.get_num_threads()))
        original(kernel, *args, threads=threads)

    original = fused_step.run_split
    monkeypatch.setattr(fused_step, "run_split", run_split)
    threads = torch.get_num_threads()
    runs = []
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            splits.clear()
            runs.append(outputs_and_grads(dnc, x))
            assert torch.get_num_threads() == count
            assert set(splits) == {(count, 1)} and len(splits) == 2 * 6  # forward and backward of each step
    finally:
        torch.set_num_threads(threads)
    (y1, state1, grads1, _), (y2, state2, grads2, _) = runs
    torch.testing.assert_close(y1, y2)
    for a, b in zip(state1[:-1], state2[:-1], strict=True):
        torch.testing.assert_close(a, b)
    for name, grad in grads1.items():
        torch.testing.assert_close(grads2[name], grad, msg=name)


def test_the_backward_leaves_the_gradients_it_receives_alone():
    """A hook may keep the gradient of a state; the step's backward must not write into it."""
    torch.manual_seed(6)
    cell = DNCCell(**SIZES, read_heads=2)
    state = None
    kept = {}
    for k, x_t in enumerate(torch.randn(3, 2, SIZES["input_size"]).unbind(0)):
        y, state = cell(x_t, state)
        if k == 1:
            for name in ("memory", "link", "usage"):
                getattr(state, name).register_hook(lambda grad, name=name: kept.update({name: (grad, grad.clone())}))
    y.sum().backward()
    for name, (grad, copy) in kept.items():
        assert torch.equal(grad, copy), name

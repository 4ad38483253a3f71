"""A weight gradient deferred to one product per sequence equals autograd's sum of per-step products."""

import pytest
import torch

from dreamlab.dnc.deferred_weights import DeferredWeightGradient, SequenceInputs


def recurrence(addends, weight, h0, defer):
    """h_t = tanh(a_t + h_{t-1} W^T), with W used detached and its gradient deferred when defer."""
    inputs = SequenceInputs()
    step_weight = weight
    if defer:
        addends = DeferredWeightGradient.apply(addends, weight, inputs)
        step_weight = weight.detach()
    h, seen, outputs = h0, [], []
    for a_t in addends.unbind(0):
        seen.append(h)
        h = torch.tanh(torch.addmm(a_t, h, step_weight.t()))
        outputs.append(h)
    inputs.inputs = torch.stack(seen).detach()
    return torch.stack(outputs)


def test_deferred_gradient_equals_per_step_autograd():
    torch.manual_seed(0)
    steps, batch, size = 7, 3, 5
    weight = torch.randn(size, size, dtype=torch.float64, requires_grad=True)
    addends = torch.randn(steps, batch, size, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(batch, size, dtype=torch.float64)
    grads = {}
    for defer in (False, True):
        outputs = recurrence(addends, weight, h0, defer)
        grads[defer] = torch.autograd.grad(outputs.sin().sum(), (addends, weight))
    for ours, reference in zip(grads[True], grads[False], strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)


def test_gradcheck():
    torch.manual_seed(1)
    weight = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    addends = torch.randn(5, 2, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, w: recurrence(a, w, h0, defer=True), (addends, weight))


def test_missing_inputs_fail_with_a_clear_error():
    weight = torch.randn(2, 2, requires_grad=True)
    out = DeferredWeightGradient.apply(torch.randn(3, 1, 2, requires_grad=True), weight, SequenceInputs())
    with pytest.raises(RuntimeError, match="never set"):
        out.sum().backward()

"""Usage, retention and the sorted-free-list allocation of the DNC against hand-computed values."""

import torch

from dreamlab.dnc.allocation import allocation_weighting, retention, update_usage, write_weighting


def test_allocation_follows_the_free_list():
    usage = torch.tensor([[0.4, 0.1, 0.8, 0.2]])
    # Free list (ascending usage): slots 1, 3, 0, 2. a[phi_j] = (1 - u[phi_j]) prod_{i<j} u[phi_i].
    expected = torch.tensor([[0.6 * 0.1 * 0.2, 0.9, 0.2 * 0.1 * 0.2 * 0.4, 0.8 * 0.1]])
    torch.testing.assert_close(allocation_weighting(usage), expected, atol=1e-5, rtol=0)


def test_allocation_picks_the_free_slot_and_sums_to_at_most_one():
    usage = torch.ones(3, 6)
    usage[0, 4] = 0.0
    usage[1, 2] = 0.0
    allocation = allocation_weighting(usage)
    assert allocation[0, 4] > 0.999 and allocation[1, 2] > 0.999
    assert allocation[2].sum() < 1e-4  # memory full: nothing to allocate
    random_usage = torch.rand(50, 16)
    totals = allocation_weighting(random_usage).sum(-1)
    assert torch.all(totals <= 1 + 1e-6) and torch.all(allocation_weighting(random_usage) >= 0)


def test_allocation_is_differentiable_with_finite_gradients():
    usage = torch.rand(4, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(allocation_weighting, (usage,))
    zero_usage = torch.zeros(2, 8, requires_grad=True)
    allocation_weighting(zero_usage).square().sum().backward()
    assert torch.isfinite(zero_usage.grad).all()


def test_retention_and_usage_update():
    free_gates = torch.tensor([[1.0, 0.5]])
    prev_read = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.5]]])
    psi = retention(free_gates, prev_read)
    torch.testing.assert_close(psi, torch.tensor([[0.0, 0.5, 0.75]]))
    prev_usage = torch.tensor([[0.5, 0.5, 0.2]])
    prev_write = torch.tensor([[0.0, 1.0, 0.5]])
    # (u + w - u w) o psi
    expected = torch.tensor([[0.5 * 0.0, 1.0 * 0.5, (0.2 + 0.5 - 0.1) * 0.75]])
    torch.testing.assert_close(update_usage(prev_usage, prev_write, psi), expected)


def test_write_weighting_interpolates_allocation_and_content():
    allocation = torch.tensor([[1.0, 0.0, 0.0]])
    content = torch.tensor([[0.0, 0.5, 0.5]])
    out = write_weighting(allocation, content, torch.tensor([[0.25]]), torch.tensor([[0.8]]))
    torch.testing.assert_close(out, 0.8 * (0.25 * allocation + 0.75 * content))
    assert write_weighting(allocation, content, torch.tensor([[1.0]]), torch.tensor([[0.0]])).abs().sum() == 0

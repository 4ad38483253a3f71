"""Content addressing of the DNC against hand-computed values."""

import math

import pytest
import torch

from dreamlab.dnc.addressing import content_weighting, cosine_similarity, oneplus


def test_oneplus_is_one_plus_softplus():
    x = torch.tensor([-50.0, 0.0, 3.0])
    expected = torch.tensor([1.0, 1.0 + math.log(2.0), 1.0 + math.log1p(math.exp(3.0))])
    torch.testing.assert_close(oneplus(x), expected)
    assert torch.all(oneplus(torch.randn(100) * 10) >= 1.0)


def test_cosine_similarity_of_known_vectors():
    memory = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [1.0, 1.0]]])
    keys = torch.tensor([[[2.0, 0.0]]])
    torch.testing.assert_close(
        cosine_similarity(keys, memory), torch.tensor([[[1.0, 0.0, -1.0, 1 / math.sqrt(2)]]]), atol=1e-5, rtol=0
    )


def test_content_weighting_is_softmax_of_sharpened_similarity():
    memory = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]])
    keys = torch.tensor([[[1.0, 0.0], [0.0, -1.0]]])
    strengths = torch.tensor([[2.0, 1.0]])
    weights = content_weighting(memory, keys, strengths)
    expected = torch.stack(
        [torch.softmax(torch.tensor([2.0, 0.0, -2.0]), 0), torch.softmax(torch.tensor([0.0, -1.0, 0.0]), 0)]
    ).unsqueeze(0)
    torch.testing.assert_close(weights, expected, atol=1e-5, rtol=0)


def test_content_weighting_is_stable_for_huge_strengths_and_zero_memory():
    memory = torch.zeros(2, 5, 3)
    memory[:, 1] = 1.0
    keys = torch.ones(2, 4, 3, requires_grad=True)
    strengths = torch.full((2, 4), 1e6, requires_grad=True)
    weights = content_weighting(memory, keys, strengths)
    assert torch.isfinite(weights).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4))
    assert weights[..., 1].min() > 0.999
    (weights[..., 0] * torch.arange(4.0)).sum().backward()
    assert torch.isfinite(keys.grad).all() and torch.isfinite(strengths.grad).all()


def test_gradients_flow_through_keys_and_strengths():
    torch.manual_seed(0)
    memory = torch.randn(2, 6, 4, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    strengths = oneplus(torch.randn(2, 3, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(content_weighting, (memory, keys, strengths))
    target = torch.softmax(torch.randn(2, 3, 6, dtype=torch.float64), -1)
    loss = (content_weighting(memory, keys, strengths) - target).square().sum()
    key_grad, strength_grad = torch.autograd.grad(loss, (keys, strengths))
    assert key_grad.abs().min() > 0 and strength_grad.abs().min() > 0


@pytest.mark.parametrize("heads", [1, 4])
def test_batched_heads_match_one_key_at_a_time(heads):
    torch.manual_seed(1)
    memory, keys, strengths = torch.randn(3, 7, 5), torch.randn(3, heads, 5), oneplus(torch.randn(3, heads))
    together = content_weighting(memory, keys, strengths)
    for h in range(heads):
        alone = content_weighting(memory, keys[:, h : h + 1], strengths[:, h : h + 1])
        torch.testing.assert_close(together[:, h : h + 1], alone)

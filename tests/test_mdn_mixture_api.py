"""The mixture a head returns works both as a named tuple to unpack and through its own methods."""

import torch

from dreamlab.mdn import Mixture, MixtureDensityHead, mixture_log_prob, mixture_nll, most_likely_mean, sample_mixture


def test_head_output_methods_equal_the_functions():
    torch.manual_seed(0)
    head = MixtureDensityHead(4, 2, 3)
    mixture = head(torch.randn(5, 4))
    y = torch.randn(5, 2)
    assert isinstance(mixture, Mixture)
    torch.testing.assert_close(mixture.nll(y), mixture_nll(*mixture, y))
    torch.testing.assert_close(mixture.log_prob(y), mixture_log_prob(*mixture, y))
    torch.testing.assert_close(mixture.nll(y), -mixture.log_prob(y))
    torch.testing.assert_close(mixture.most_likely_mean(), most_likely_mean(mixture.logits, mixture.mu))
    draws = [mixture.sample(1.15, torch.Generator().manual_seed(3)) for _ in range(2)]
    torch.testing.assert_close(draws[0], sample_mixture(*mixture, 1.15, torch.Generator().manual_seed(3)))
    torch.testing.assert_close(draws[0], draws[1])


def test_one_component_nll_is_the_gaussian_nll():
    # K = 1, D = 1: -log N(y; mu, sigma^2) = 0.5 z^2 + log sigma + 0.5 log(2 pi)
    mixture = Mixture(torch.zeros(1, 1), torch.full((1, 1, 1), 0.5), torch.full((1, 1, 1), 0.2))
    y = torch.tensor([[1.5]])
    sigma = torch.exp(torch.tensor(0.2))
    expected = 0.5 * (1.0 / sigma) ** 2 + 0.2 + 0.5 * torch.log(torch.tensor(2 * torch.pi))
    torch.testing.assert_close(mixture.nll(y), expected.reshape(1))

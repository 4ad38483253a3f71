"""Mixture density math against torch.distributions and analytic values; the toy actually learns."""

import math

import pytest
import torch
from torch import distributions as D

from dreamlab.mdn import MixtureDensityHead, mixture_log_prob, mixture_nll, most_likely_mean, sample_mixture
from dreamlab.mdn.toy import MeanRegressor, MixtureDensityNetwork, fit, inverse_problem_data


def random_mixture(batch=(4, 3), k=5, d=2, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(*batch, k, generator=g, dtype=dtype)
    mu = torch.randn(*batch, k, d, generator=g, dtype=dtype)
    log_sigma = 0.5 * torch.randn(*batch, k, d, generator=g, dtype=dtype)
    y = torch.randn(*batch, d, generator=g, dtype=dtype)
    return logits, mu, log_sigma, y


def torch_mixture(logits, mu, log_sigma):
    components = D.Independent(D.Normal(mu, log_sigma.exp()), 1)
    return D.MixtureSameFamily(D.Categorical(logits=logits), components)


def test_log_prob_equals_mixture_same_family():
    logits, mu, log_sigma, y = random_mixture()
    expected = torch_mixture(logits, mu, log_sigma).log_prob(y)
    torch.testing.assert_close(mixture_log_prob(logits, mu, log_sigma, y), expected)
    torch.testing.assert_close(mixture_nll(logits, mu, log_sigma, y), -expected)


def test_single_component_is_gaussian_density():
    y = torch.tensor([[0.3]], dtype=torch.float64)
    nll = mixture_nll(torch.zeros(1, 1), torch.tensor([[[1.0]]]), torch.tensor([[[math.log(2.0)]]]), y.float())
    expected = 0.5 * ((0.3 - 1.0) / 2.0) ** 2 + math.log(2.0) + 0.5 * math.log(2 * math.pi)
    assert nll.item() == pytest.approx(expected, rel=1e-6)


def test_far_tails_stay_finite_with_finite_gradients():
    logits, mu, log_sigma, _ = random_mixture(dtype=torch.float32)
    logits.requires_grad_(True)
    mu.requires_grad_(True)
    y = torch.full((4, 3, 2), 1e4)  # every component density underflows to 0 in linear space
    nll = mixture_nll(logits, mu, log_sigma, y)
    assert torch.isfinite(nll).all()
    nll.sum().backward()
    assert torch.isfinite(logits.grad).all() and torch.isfinite(mu.grad).all()


def test_per_dimension_mixture_is_d1_with_extra_axis():
    head = MixtureDensityHead(8, out_dim=6, n_components=5, per_dimension=True)
    logits, mu, log_sigma = head(torch.randn(2, 7, 8))
    assert logits.shape == (2, 7, 6, 5) and mu.shape == (2, 7, 6, 5, 1) and log_sigma.shape == mu.shape
    y = torch.randn(2, 7, 6)
    per_dim = mixture_nll(logits, mu, log_sigma, y.unsqueeze(-1))
    expected = -torch_mixture(logits, mu, log_sigma).log_prob(y.unsqueeze(-1))
    torch.testing.assert_close(per_dim, expected)


def test_joint_head_shapes():
    logits, mu, log_sigma = MixtureDensityHead(8, out_dim=3, n_components=4)(torch.randn(5, 8))
    assert logits.shape == (5, 4) and mu.shape == (5, 4, 3) and log_sigma.shape == (5, 4, 3)


def test_bad_shapes_are_named():
    logits, mu, log_sigma, y = random_mixture()
    with pytest.raises(ValueError, match="logits"):
        mixture_nll(logits[..., :3], mu, log_sigma, y)
    with pytest.raises(ValueError, match="target"):
        mixture_nll(logits, mu, log_sigma, y[..., :1])


def test_sampling_matches_moments_and_temperature():
    # Components far apart (-30 and 20), so a sample's sign tells which component drew it.
    logits = torch.log(torch.tensor([0.2, 0.8])).expand(200_000, 2)
    mu = torch.tensor([[-30.0], [20.0]]).expand(200_000, 2, 1)
    log_sigma = torch.log(torch.tensor([[0.5], [1.0]])).expand(200_000, 2, 1)
    g = torch.Generator().manual_seed(0)
    samples = sample_mixture(logits, mu, log_sigma, generator=g).squeeze(-1)
    assert samples.mean().item() == pytest.approx(0.2 * -30 + 0.8 * 20, abs=0.1)
    expected_var = 0.2 * (0.25 + 900) + 0.8 * (1 + 400) - 10.0**2
    assert samples.var().item() == pytest.approx(expected_var, rel=0.02)
    # tau = 2: component weights softmax(log w / 2), i.e. proportional to sqrt(w); variances doubled.
    hot = sample_mixture(logits, mu, log_sigma, temperature=2.0, generator=g).squeeze(-1)
    w = torch.tensor([0.2, 0.8]).sqrt()
    assert (hot < 0).float().mean().item() == pytest.approx((w[0] / w.sum()).item(), abs=0.005)
    assert hot[hot < 0].var().item() == pytest.approx(2 * 0.25, rel=0.03)
    assert hot[hot > 0].var().item() == pytest.approx(2 * 1.0, rel=0.03)
    with pytest.raises(ValueError, match="temperature"):
        sample_mixture(logits, mu, log_sigma, temperature=0.0)


def test_most_likely_mean_picks_heaviest_component():
    logits = torch.tensor([[0.0, 3.0, 1.0]])
    mu = torch.tensor([[[1.0, 1.0], [2.0, -2.0], [3.0, 3.0]]])
    torch.testing.assert_close(most_likely_mean(logits, mu), torch.tensor([[2.0, -2.0]]))


def test_mdn_learns_inverse_problem_where_mse_cannot():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x, t = inverse_problem_data(1000, g)
    mse, mdn = MeanRegressor(), MixtureDensityNetwork()
    fit(mse, x, t, steps=1500, lr=3e-3, batch_size=256, generator=g)
    fit(mdn, x, t, steps=1500, lr=3e-3, batch_size=256, generator=g)
    x_mid = torch.full((4000, 1), 0.5)  # three branches near t ~ 0.15, 0.5, 0.85
    with torch.no_grad():
        samples = sample_mixture(*mdn(x_mid), generator=g).squeeze(-1)
        mse_pred = mse(x_mid).squeeze(-1)
    for branch in (0.15, 0.5, 0.85):
        assert ((samples - branch).abs() < 0.1).float().mean() > 0.1, f"MDN misses the branch near {branch}"
    assert ((mse_pred - 0.5).abs() < 0.1).all(), "MSE net should sit on the conditional mean between branches"
    assert mdn.loss(x, t).item() < -0.5


def test_toy_study_runs_from_the_package_and_hands_its_points_to_figures(tmp_path):
    from dreamlab.config import make_config
    from dreamlab.mdn.toy import PRESETS, MDNToyConfig, run

    config = make_config(
        MDNToyConfig, PRESETS, "smoke", steps=20, results_dir=str(tmp_path), run_dir=str(tmp_path / "run")
    )
    drawn = {}
    metrics = run(config, figures=lambda out, name, points: drawn.update(out=out, name=name, **points))
    assert drawn["out"] == tmp_path / "mdn" and drawn["name"] == "mdn_toy_smoke"
    assert all(drawn[k].shape == (config.n_test, 1) for k in ("x", "t", "mse", "mdn"))
    assert (tmp_path / "mdn/mdn_toy_smoke.json").is_file() and (tmp_path / "mdn/mdn_toy_smoke_curve.csv").is_file()
    assert set(metrics) >= {"test_nll_mdn", "test_nll_mse_gaussian", "final_train_loss_mdn"}

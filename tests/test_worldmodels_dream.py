"""The dream: sampling as dreamlab.mdn samples, batching equal to one-at-a-time, the cap and the done head."""

import math

import pytest
import torch
from experiment_scripts import load_experiment

from dreamlab.mdn import sample_mixture
from dreamlab.worldmodels import MDNRNN, Dream, LinearController, get_task, sample_mixture_from_noise


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small models: extra intra-op threads only add overhead (and stall badly on a shared, busy CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_sampling_from_given_noise_matches_sample_mixture():
    torch.manual_seed(0)
    logits, mu, log_sigma = torch.randn(6, 4, 5), torch.randn(6, 4, 5, 1), torch.randn(6, 4, 5, 1) * 0.3
    generator = torch.Generator().manual_seed(3)
    expected = sample_mixture(logits, mu, log_sigma, temperature=1.15, generator=generator)
    generator = torch.Generator().manual_seed(3)
    uniform = torch.rand(logits.shape, generator=generator)
    normal = torch.randn((6, 4, 1), generator=generator)
    torch.testing.assert_close(sample_mixture_from_noise(logits, mu, log_sigma, 1.15, uniform, normal), expected)


def _dream(max_steps=300, done_bias=None, state_dependent_death=False, done_pos_weight=1.0):
    torch.manual_seed(0)
    task = get_task("doom")
    model = MDNRNN(z_dim=6, action_size=3, hidden_size=12)
    if done_bias is not None:
        with torch.no_grad():
            if state_dependent_death:
                model.done_head.weight.mul_(10.0)
            else:
                model.done_head.weight.zero_()
            model.done_head.bias.fill_(done_bias)
    controller = LinearController(6 + 12, task)
    start_mu, start_logvar = torch.randn(10, 6), torch.full((10, 6), -2.0)
    dream = Dream(model, task, controller, start_mu, start_logvar, 1.15, max_steps, done_pos_weight=done_pos_weight)
    return dream, controller


def test_batched_dream_equals_candidates_one_at_a_time():
    # A done head that reacts strongly to M's state: episodes end at very different times, exercising the
    # removal of finished rows from the batch.
    dream, controller = _dream(done_bias=-3.0, state_dependent_death=True)
    params = torch.randn(7, controller.n_params, generator=torch.Generator().manual_seed(1))
    batched = dream.returns(params, trials=5, seed=11)
    assert batched.shape == (7, 5)
    assert len(torch.unique(batched)) > 5  # the episodes really differ in length
    alone = torch.cat([dream.returns(params[i : i + 1], trials=5, seed=11) for i in range(7)])
    torch.testing.assert_close(batched, alone)


def test_dream_is_capped_and_the_done_head_kills():
    dream, controller = _dream(max_steps=50, done_bias=-1e4)
    params = torch.zeros(3, controller.n_params)
    assert (dream.returns(params, trials=2, seed=0) == 50).all()
    dream, _ = _dream(max_steps=50, done_bias=1e4)
    assert (dream.returns(params, trials=2, seed=0) == 1).all()  # the first step is the last


def test_dream_death_rate_is_the_done_heads_calibrated_probability():
    # A done head trained with positives weighted by w learns odds w times too high; the dream divides them out.
    # With a constant logit the episode length is geometric with p = sigmoid(logit - log w): mean 1 / p.
    w, p = 10.0, 0.02
    logit = math.log(p / (1 - p)) + math.log(w)
    dream, controller = _dream(max_steps=5000, done_bias=logit, done_pos_weight=w)
    lengths = dream.returns(torch.zeros(1, controller.n_params), trials=2000, seed=0)
    assert abs(lengths.mean().item() - 1 / p) < 4 * (1 - p) ** 0.5 / p / 2000**0.5  # within 4 standard errors
    with pytest.raises(ValueError, match="done_pos_weight"):
        _dream(done_bias=0.0, done_pos_weight=0.0)


def test_dream_records_the_first_episode_and_rejects_models_without_done_head():
    dream, controller = _dream(max_steps=40, done_bias=-1e4)
    returns, z = dream.returns(torch.zeros(2, controller.n_params), trials=1, seed=0, record=True)
    assert z.shape == (41, 6)  # the start frame and one z per step
    assert (returns == 40).all()
    model = MDNRNN(z_dim=6, action_size=3, hidden_size=12, predict_done=False)
    with pytest.raises(ValueError, match="done head"):
        Dream(model, get_task("doom"), controller, torch.zeros(2, 6), torch.zeros(2, 6))


def test_dream_benchmark_smoke(tmp_path):
    main = load_experiment("worldmodels_dream_benchmark").main
    metrics = main(["--preset", "smoke", "--results_dir", str(tmp_path), "--threads", "1"])
    assert metrics["same_returns"]  # batching changes no candidate's returns
    assert metrics["mean_episode_steps"] == 20  # the untrained M's done head is off: full batches to the cap
    assert (tmp_path / "worldmodels" / "dream_benchmark.json").is_file()

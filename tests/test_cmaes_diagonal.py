"""sep-CMA-ES (the diagonal mode), the in-place full-covariance update and IPOP restarts."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from dreamlab.checkpoint import load_checkpoint, save_checkpoint
from dreamlab.cmaes import CMAES, ellipsoid, ipop, rastrigin, rosenbrock, sphere, strategy_parameters
from dreamlab.cmaes.strategy import _symmetric_update


def run(es: CMAES, f, generations: int | None = None) -> CMAES:
    done = 0
    while not es.stop() and (generations is None or done < generations):
        X = es.ask()
        es.tell(X, f(X))
        done += 1
    return es


def arrays_of(value) -> list[np.ndarray]:
    """Every ndarray in an object's attributes or a state dict, however nested."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, dict):
        return [a for v in value.values() for a in arrays_of(v)]
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in arrays_of(v)]
    return []


@pytest.mark.parametrize("n", [2, 10, 100, 5000])
def test_diagonal_learning_rates_are_the_full_ones_times_n_plus_2_over_3(n):
    full, sep = strategy_parameters(n), strategy_parameters(n, covariance="diagonal")
    # Ros & Hansen (2008): c_cov^sep = (n + 2) / 3 c_cov; the step-size and path constants do not change.
    assert sep.c_1 == pytest.approx(full.c_1 * (n + 2) / 3, rel=1e-12)
    assert sep.c_mu == pytest.approx(min(1 - sep.c_1, full.c_mu * (n + 2) / 3), rel=1e-12)
    for key in ("popsize", "mu", "mu_eff", "c_sigma", "d_sigma", "c_c", "chi_n"):
        assert getattr(sep, key) == getattr(full, key), key
    np.testing.assert_array_equal(sep.weights[: sep.mu], full.weights[: full.mu])
    # The negative weights obey eq. 52 with the larger rates, which keeps every variance positive.
    assert -sep.weights[sep.mu :].sum() <= (1 - sep.c_1 - sep.c_mu) / (n * sep.c_mu) * (1 + 1e-12)
    assert sep.eigen_interval == 1


def test_one_diagonal_generation_equals_the_diagonal_of_eq_47():
    n = 4
    es = CMAES(np.array([1.0, -2.0, 0.5, 3.0]), 0.7, seed=3, covariance="diagonal")
    p = es.params
    for _ in range(3):
        mean, sigma, c, p_c, g = es.mean.copy(), es.sigma, es.variances.copy(), es.p_c.copy(), es.generation + 1
        p_sigma = es.p_sigma.copy()
        X = es.ask()
        losses = np.random.default_rng(g).normal(size=len(X))
        es.tell(X, losses)
        ys = (X[np.argsort(losses)] - mean) / sigma
        y_w = p.weights[: p.mu] @ ys[: p.mu]
        p_sigma = (1 - p.c_sigma) * p_sigma + math.sqrt(p.c_sigma * (2 - p.c_sigma) * p.mu_eff) * y_w / np.sqrt(c)
        h = float(np.sum(p_sigma**2) / (1 - (1 - p.c_sigma) ** (2 * g)) / n < 2 + 4 / (n + 1))
        p_c = (1 - p.c_c) * p_c + h * math.sqrt(p.c_c * (2 - p.c_c) * p.mu_eff) * y_w
        norms = np.sqrt(np.sum(ys**2 / c, axis=1)) + 1e-9  # eq. 46 with pycma's 1e-9
        w = np.where(p.weights >= 0, p.weights, p.weights * n / norms**2)
        delta = (1 - h) * p.c_c * (2 - p.c_c)
        c = (1 + p.c_1 * delta - p.c_1 - p.c_mu * p.weights.sum()) * c + p.c_1 * p_c**2 + p.c_mu * w @ ys**2
        np.testing.assert_allclose(es.p_sigma, p_sigma, rtol=1e-10)
        np.testing.assert_allclose(es.p_c, p_c, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(es.variances, c, rtol=1e-10)
        np.testing.assert_allclose(es.D, np.sqrt(c), rtol=1e-12)
        np.testing.assert_array_equal(es.C, np.diag(es.variances))


def test_diagonal_mode_keeps_no_n_by_n_array():
    n = 20_000
    es = CMAES(np.ones(n), 1.0, seed=0, covariance="diagonal")
    run(es, sphere, generations=2)
    tracemalloc.start()
    try:
        run(es, sphere, generations=3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A generation touches O(popsize n) numbers (the samples); an n x n float64 matrix would be 3.2 GB.
    assert peak < 40 * es.popsize * n * 8
    for array in arrays_of(vars(es)) + arrays_of(es.state_dict()):
        assert array.size <= es.popsize * n and array.ndim <= 2, array.shape
    assert es.B is None and "B" not in es.state_dict() and es.state_dict()["C"].shape == (n,)


def test_diagonal_mode_solves_a_separable_ill_conditioned_ellipsoid_in_1000_dimensions():
    n = 1000
    es = run(CMAES(np.ones(n), 1.0, seed=0, covariance="diagonal", ftarget=1e-6), lambda X: ellipsoid(X, 1e3))
    assert es.stop() == {"ftarget": 1e-6}
    # Learned scales follow the ellipsoid's axes: variances ~ 1 / scale_i, over the three orders of magnitude.
    scales = 1e3 ** (np.arange(n) / (n - 1))
    ratio = es.variances * scales
    assert np.median(ratio[-100:]) / np.median(ratio[:100]) == pytest.approx(1.0, abs=0.5)
    # sep-CMA-ES needs O(n) generations here (Ros & Hansen 2008): about 1e5 evaluations.
    assert es.evaluations < 2.5e5


def test_diagonal_mode_is_invariant_to_scaling_coordinates():
    scales = np.array([1.0, 10.0, 0.01, 3.0])
    base = run(CMAES(np.ones(4), 0.5, seed=4, covariance="diagonal"), rosenbrock, generations=60)
    # Stretching coordinate i by s_i (and the initial variances with it) is invisible to a diagonal C.
    stretched = CMAES(scales, 0.5, seed=4, covariance="diagonal")
    stretched.load_state_dict({**stretched.state_dict(), "C": scales**2, "D": scales})
    run(stretched, lambda X: rosenbrock(X / scales), generations=60)
    np.testing.assert_allclose(stretched.mean / scales, base.mean, rtol=1e-8)
    np.testing.assert_allclose(stretched.variances / scales**2, base.variances, rtol=1e-8)


def test_diagonal_state_round_trip_continues_identically(tmp_path):
    reference = run(CMAES(np.zeros(6), 0.5, seed=11, covariance="diagonal"), rosenbrock, generations=30)
    first = run(CMAES(np.zeros(6), 0.5, seed=11, covariance="diagonal"), rosenbrock, generations=12)
    save_checkpoint(tmp_path / "es.pt", {"es": first.state_dict()})
    resumed = CMAES(np.zeros(6), 0.5, seed=11, covariance="diagonal")
    resumed.load_state_dict(load_checkpoint(tmp_path / "es.pt")["es"])
    run(resumed, rosenbrock, generations=18)
    assert np.array_equal(resumed.mean, reference.mean) and np.array_equal(resumed.variances, reference.variances)
    with pytest.raises(ValueError, match="covariance=diagonal"):
        CMAES(np.zeros(6), 0.5).load_state_dict(resumed.state_dict())


def test_a_checkpoint_from_before_the_diagonal_mode_loads_as_full():
    state = run(CMAES(np.zeros(3), 0.5, seed=1), sphere, generations=5).state_dict()
    del state["covariance"]
    es = CMAES(np.zeros(3), 0.5)
    es.load_state_dict(state)
    assert es.covariance == "full" and es.generation == 5


def test_symmetric_update_equals_the_dense_formula_in_place():
    rng = np.random.default_rng(0)
    n = 7
    A = rng.normal(size=(n, n))
    C = A @ A.T
    vectors, coefficients = rng.normal(size=(5, n)), np.array([0.3, 0.2, 0.1, -0.05, -0.02])
    expected = 0.9 * C + (coefficients[:, None] * vectors).T @ vectors
    buffer = C.copy()
    _symmetric_update(buffer, 0.9, coefficients, vectors)
    np.testing.assert_allclose(np.tril(buffer), np.tril(expected), rtol=1e-12)
    np.testing.assert_array_equal(np.triu(buffer, 1), np.triu(C, 1))  # the upper triangle is not touched


def test_full_generation_forms_no_n_by_n_temporary():
    n = 1500
    es = CMAES(np.ones(n), 1.0, seed=0)
    assert es.params.eigen_interval > 4
    run(es, sphere, generations=1)
    tracemalloc.start()
    try:
        run(es, sphere, generations=2)  # no eigendecomposition in these
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.25 * n * n * 8  # the old update built five n x n temporaries per generation


def test_telling_other_candidates_than_asked_recomputes_the_normal_draws():
    # tell() reuses ask()'s draws only for the very candidates ask() returned; edited candidates (say clipped to
    # bounds) are whitened afresh, and both routes agree with a strategy that never cached anything.
    a, b = CMAES(np.ones(5), 0.5, seed=2), CMAES(np.ones(5), 0.5, seed=2)
    for _ in range(20):
        X = a.ask()
        b.ask()
        b._asked = None
        X_clipped = np.clip(X, -1.0, 2.0)
        a.tell(X_clipped, rosenbrock(X_clipped))
        b.tell(X_clipped, rosenbrock(X_clipped))
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)
    np.testing.assert_allclose(a.C, b.C, rtol=1e-12)


def test_ipop_doubles_the_population_until_rastrigin_is_solved():
    result = ipop(lambda x: float(rastrigin(x)), lambda: np.full(6, 3.0), 2.0, seed=1, ftarget=1e-8, maxfevals=300_000)
    assert result.best_loss <= 1e-8 and "ftarget" in result.stops[-1]
    assert result.restarts >= 1  # the default population (9) almost never solves 6-D Rastrigin
    assert result.popsizes == [9 * 2**i for i in range(len(result.popsizes))]
    assert all(not {"ftarget", "maxfevals"} & set(stop) for stop in result.stops[:-1])
    assert np.linalg.norm(result.best_x) < 1e-4


def test_ipop_respects_the_total_budget_and_restart_count():
    capped = ipop(lambda x: float(rastrigin(x)), np.full(5, 3.0), 2.0, seed=0, maxfevals=500)
    assert capped.evaluations < 500 + capped.popsizes[-1] and "maxfevals" in capped.stops[-1]
    single = ipop(lambda x: float(rastrigin(x)), np.full(5, 3.0), 2.0, seed=0, restarts=0)
    assert single.restarts == 0 and len(single.stops) == 1
    with pytest.raises(ValueError, match="restarts"):
        ipop(sphere, np.zeros(2), 1.0, restarts=-1)

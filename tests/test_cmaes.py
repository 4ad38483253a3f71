"""CMA-ES against the tutorial's formulas, on test functions, under invariances, and through a checkpoint."""

from __future__ import annotations

import math

import numpy as np
import pytest
from experiment_scripts import load_experiment

from dreamlab.checkpoint import load_checkpoint, save_checkpoint
from dreamlab.cmaes import CMAES, ellipsoid, minimize, rosenbrock, schaffer, schaffer_loss, sphere, strategy_parameters
from dreamlab.parallel import WorkerPool


def run(es: CMAES, f, generations: int | None = None) -> CMAES:
    """Plain ask/tell loop with a vectorised loss."""
    done = 0
    while not es.stop() and (generations is None or done < generations):
        X = es.ask()
        es.tell(X, f(X))
        done += 1
    return es


def reference_parameters(n: int, lam: int | None = None) -> dict:
    """Table 1 of Hansen's tutorial (2016), eqs. 48-58, written out independently of the library, with the four
    documented deviations that pycma also makes: c_sigma's denominator n + mu_eff + 3 (eq. 55 has + 5) and its cap
    at 1/2, d_sigma's square root scaled by max(1, 3 (1 - 2^(-n/9))), the offset 1/4 in c_mu's numerator (eq. 58)
    and the exact E||N(0, I)|| instead of its approximation."""
    lam = lam or 4 + int(3 * math.log(n))
    mu = lam // 2
    w_prime = [math.log((lam + 1) / 2) - math.log(i) for i in range(1, lam + 1)]
    pos, neg = w_prime[:mu], [min(w, 0.0) for w in w_prime[mu:]]
    mu_eff = sum(pos) ** 2 / sum(w * w for w in pos)
    mu_eff_minus = sum(neg) ** 2 / sum(w * w for w in neg)
    c_1 = 2 / ((n + 1.3) ** 2 + mu_eff)
    c_mu = min(1 - c_1, 2 * (0.25 + mu_eff - 2 + 1 / mu_eff) / ((n + 2) ** 2 + mu_eff))
    alpha_min = min(1 + c_1 / c_mu, 1 + 2 * mu_eff_minus / (mu_eff + 2), (1 - c_1 - c_mu) / (n * c_mu))
    weights = [w / sum(pos) for w in pos] + [alpha_min * w / -sum(neg) for w in neg]
    c_sigma = min(0.5, (mu_eff + 2) / (n + mu_eff + 3))
    return {
        "popsize": lam,
        "mu": mu,
        "weights": np.array(weights),
        "mu_eff": mu_eff,
        "c_sigma": c_sigma,
        "d_sigma": 1 + 2 * max(0, max(1, 3 * (1 - 2 ** (-n / 9))) * math.sqrt((mu_eff - 1) / (n + 1)) - 1) + c_sigma,
        "c_c": (4 + mu_eff / n) / (n + 4 + 2 * mu_eff / n),
        "c_1": c_1,
        "c_mu": c_mu,
        "chi_n": math.sqrt(2) * math.gamma((n + 1) / 2) / math.gamma(n / 2),
        "eigen_interval": max(1, int(1 / (10 * n * (c_1 + c_mu)))),
    }


@pytest.mark.parametrize(("n", "lam"), [(2, None), (5, None), (10, None), (40, None), (300, None), (10, 160), (3, 64)])
def test_default_parameters_follow_the_tutorial(n, lam):
    params = strategy_parameters(n, lam)
    expected = reference_parameters(n, lam)
    for key, value in expected.items():
        np.testing.assert_allclose(getattr(params, key), value, rtol=1e-12, err_msg=key)
    assert params.weights[: params.mu].sum() == pytest.approx(1.0)
    assert np.all(np.diff(params.weights) <= 0)


def test_default_parameters_for_ten_dimensions_by_hand():
    # lambda = 4 + floor(3 ln 10) = 10, mu = 5; weights ln(5.5) - ln(i) for i = 1..5.
    params = strategy_parameters(10)
    assert (params.popsize, params.mu) == (10, 5)
    raw = np.log(5.5) - np.log([1, 2, 3, 4, 5])
    np.testing.assert_allclose(params.weights[:5], raw / raw.sum())
    assert params.mu_eff == pytest.approx(3.1672992, rel=1e-6)
    # c_sigma = (mu_eff + 2) / (n + mu_eff + 3) and d_sigma = 1 + c_sigma (the mu_eff term is zero for n = 10).
    assert params.c_sigma == pytest.approx(5.1672992 / 16.1672992, rel=1e-6)
    assert params.d_sigma == pytest.approx(1 + params.c_sigma, rel=1e-12)


@pytest.mark.parametrize(
    ("n", "mean_norm"), [(1, math.sqrt(2 / math.pi)), (2, math.sqrt(math.pi / 2)), (3, 2 * math.sqrt(2 / math.pi))]
)
def test_chi_n_is_the_mean_norm_of_a_standard_normal(n, mean_norm):
    # E||N(0, I_n)|| in closed form: the chi distribution's mean for n = 1, 2, 3.
    assert strategy_parameters(n).chi_n == pytest.approx(mean_norm, rel=1e-14)
    # Appendix A's approximation agrees to 1e-3 relative.
    assert math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n**2)) == pytest.approx(mean_norm, rel=1e-3)


def test_default_parameters_match_pycma():
    cma = pytest.importorskip("cma")
    from cma.utilities.math import Mh

    # Default populations, and the large ones of IPOP's restarts (where d_sigma's scaled square root matters).
    for n, lam in [(3, None), (10, None), (30, None), (10, 20), (10, 160), (10, 640), (30, 400)]:
        es = cma.CMAEvolutionStrategy(np.zeros(n), 1.0, {"verbose": -9, "seed": 1, "popsize": lam})
        ours = strategy_parameters(n, lam)
        learning_rates = es.sm.parameters()  # the c_1 and c_mu pycma's covariance update uses
        assert ours.popsize == es.sp.popsize and ours.mu == es.sp.weights.mu
        np.testing.assert_allclose(ours.weights, es.sp.weights, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(
            [ours.mu_eff, ours.c_sigma, ours.d_sigma, ours.c_c, ours.c_1, ours.c_mu, ours.chi_n],
            [
                es.sp.weights.mueff,
                es.adapt_sigma.cs,
                es.adapt_sigma.damps,
                es.sp.cc,
                learning_rates["c1"],
                learning_rates["cmu"],
                Mh.chiN(n),
            ],
            rtol=1e-12,
        )


def test_generations_equal_pycma_on_the_same_normal_draws():
    # Common random numbers: pycma samples from the generator CMAES(seed=5) uses. pycma starts from
    # C = diag(exp(1e-5 i)) (to separate eigenvalues) rather than I, so its C is reset to I; after that every
    # generation must agree to rounding (which 1e-9 added to the Mahalanobis norms of the negative-weight steps, as
    # pycma does, would exceed).
    cma = pytest.importorskip("cma")
    n, seed = 10, 5
    rng = np.random.default_rng(seed)
    options = {"verbose": -9, "randn": lambda rows, columns: rng.standard_normal((rows, columns))}
    theirs = cma.CMAEvolutionStrategy(np.zeros(n), 0.5, options)
    theirs.sm.C, theirs.sm.B, theirs.sm.D = np.eye(n), np.eye(n), np.ones(n)
    ours = CMAES(np.zeros(n), 0.5, seed=seed)
    for g in range(40):
        X = ours.ask()
        np.testing.assert_allclose(np.array(theirs.ask()), X, rtol=1e-10, atol=1e-10, err_msg=f"generation {g}")
        theirs.tell(list(X), rosenbrock(X).tolist())
        ours.tell(X, rosenbrock(X))
        assert ours.sigma == pytest.approx(theirs.sigma, rel=1e-10)
        np.testing.assert_allclose(ours.mean, theirs.mean, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(ours.p_c, theirs.pc, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(ours.C, theirs.sm.C, rtol=1e-10, atol=1e-10)
    assert ours.evaluations == theirs.countevals


def test_mu_as_count_or_fraction_of_popsize():
    assert CMAES(np.zeros(2), 1.0, popsize=64, mu=0.25).mu == 16
    assert CMAES(np.zeros(2), 1.0, popsize=64, mu=10).mu == 10
    params = strategy_parameters(2, popsize=64, mu=16)
    assert np.all(params.weights[:16] > 0) and np.all(params.weights[16:] < 0)
    passive = strategy_parameters(2, popsize=64, mu=16, active=False)
    assert np.all(passive.weights[16:] == 0) and passive.weights.sum() == pytest.approx(1.0)


def test_one_generation_equals_the_tutorial_update():
    """Two generations against eqs. 41-47 written with explicit loops and np.outer."""
    n = 3
    es = CMAES(np.array([1.0, -2.0, 0.5]), 0.7, seed=3)
    p = reference_parameters(n)
    w = p["weights"]
    rng = np.random.default_rng(0)
    for _ in range(2):
        mean, sigma, C = es.mean.copy(), es.sigma, es.C.copy()
        p_sigma, p_c, g = es.p_sigma.copy(), es.p_c.copy(), es.generation + 1
        X = es.ask()
        losses = rng.normal(size=len(X))
        es.tell(X, losses)

        eigenvalues, vectors = np.linalg.eigh(C)
        inv_sqrt_C = vectors @ np.diag(eigenvalues**-0.5) @ vectors.T
        ys = [(X[k] - mean) / sigma for k in np.argsort(losses)]
        y_w = sum(w[i] * ys[i] for i in range(p["mu"]))
        c_s, c_c, c_1, c_mu = p["c_sigma"], p["c_c"], p["c_1"], p["c_mu"]
        p_sigma = (1 - c_s) * p_sigma + math.sqrt(c_s * (2 - c_s) * p["mu_eff"]) * inv_sqrt_C @ y_w
        norm = np.linalg.norm(p_sigma)
        h = 1.0 if norm**2 / (1 - (1 - c_s) ** (2 * g)) / n < 2 + 4 / (n + 1) else 0.0
        p_c = (1 - c_c) * p_c + h * math.sqrt(c_c * (2 - c_c) * p["mu_eff"]) * y_w
        # eq. 46, with pycma's 1e-9 added to the Mahalanobis norm.
        norms = [np.linalg.norm(inv_sqrt_C @ y) + 1e-9 for y in ys]
        w_circ = [w[i] if w[i] >= 0 else w[i] * n / norms[i] ** 2 for i in range(len(w))]
        rank_mu = sum(w_circ[i] * np.outer(ys[i], ys[i]) for i in range(len(w)))
        delta = (1 - h) * c_c * (2 - c_c)
        C = (1 + c_1 * delta - c_1 - c_mu * w.sum()) * C + c_1 * np.outer(p_c, p_c) + c_mu * rank_mu
        sigma = sigma * math.exp(min(1.0, c_s / p["d_sigma"] * (norm / p["chi_n"] - 1)))

        np.testing.assert_allclose(es.mean, (X[np.argsort(losses)[: p["mu"]]].T @ w[: p["mu"]]), rtol=1e-12)
        np.testing.assert_allclose(es.p_sigma, p_sigma, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(es.p_c, p_c, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(es.C, C, rtol=1e-10, atol=1e-14)
        assert es.sigma == pytest.approx(sigma, rel=1e-12)


def test_sphere_converges_linearly():
    es = run(CMAES(3 * np.ones(10), 2.0, seed=1, ftarget=1e-8), sphere)
    assert es.stop() == {"ftarget": 1e-8}
    # pycma needs about 1450 evaluations here (experiments/cmaes_benchmark.py); a broken step-size rule needs 10x.
    assert es.evaluations < 2500
    assert np.linalg.norm(es.best_x) < 1e-4


def test_rosenbrock_converges():
    es = run(CMAES(np.zeros(10), 0.5, seed=2, ftarget=1e-8, maxfevals=20000), rosenbrock)
    assert "ftarget" in es.stop()
    np.testing.assert_allclose(es.best_x, np.ones(10), atol=1e-3)
    assert es.evaluations < 10000


def test_covariance_learns_the_inverse_hessian():
    # f(x) = x^T H x with a rotated, conditioned H: a well adapted C is proportional to H^{-1}.
    rng = np.random.default_rng(0)
    rotation = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    H = rotation @ np.diag([1.0, 10.0, 100.0, 1000.0]) @ rotation.T
    es = run(CMAES(np.ones(4), 1.0, seed=0), lambda X: np.einsum("ki,ij,kj->k", X, H, X), generations=250)
    sqrt_C = es.B @ np.diag(es.D) @ es.B.T
    # Sampling noise with popsize 8 keeps the ratio fluctuating between about 2 and 4; without adaptation: 1000.
    assert np.linalg.cond(sqrt_C @ H @ sqrt_C) < 6.0
    assert np.linalg.cond(es.C) > 300


def test_rank_based_invariance_to_monotone_transforms():
    a = run(CMAES(np.ones(5), 0.5, seed=7), rosenbrock, generations=60)
    b = run(CMAES(np.ones(5), 0.5, seed=7), lambda X: np.log1p(rosenbrock(X)) ** 3, generations=60)
    assert np.array_equal(a.mean, b.mean) and a.sigma == b.sigma and np.array_equal(a.C, b.C)


def test_translation_and_scale_invariance_in_search_space():
    shift, scale = np.array([5.0, -3.0, 2.0, 7.0]), 1e3
    base = run(CMAES(np.zeros(4), 0.5, seed=4), rosenbrock, generations=80)
    shifted = run(CMAES(shift, 0.5, seed=4), lambda X: rosenbrock(X - shift), generations=80)
    scaled = run(CMAES(np.zeros(4), 0.5 * scale, seed=4), lambda X: rosenbrock(X / scale), generations=80)
    np.testing.assert_allclose(shifted.mean - shift, base.mean, atol=1e-8)
    np.testing.assert_allclose(scaled.mean / scale, base.mean, rtol=1e-8, atol=1e-12)
    assert scaled.sigma / scale == pytest.approx(base.sigma, rel=1e-8)
    np.testing.assert_allclose(scaled.C, base.C, rtol=1e-7, atol=1e-12)


def test_rotation_invariance_in_distribution():
    # An ill-conditioned ellipsoid, axis-parallel or rotated, must cost the same number of evaluations in
    # distribution; a coordinate-wise method (diagonal C) would need many more on the rotated one.
    n, seeds = 5, range(8)
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(n, n)))[0]

    def evaluations(f):
        return [run(CMAES(np.ones(n), 1.0, seed=s, ftarget=1e-8), f).evaluations for s in seeds]

    aligned = np.median(evaluations(lambda X: ellipsoid(X, 1e4)))
    rotated = np.median(evaluations(lambda X: ellipsoid(X @ rotation.T, 1e4)))
    assert abs(aligned - rotated) / aligned < 0.15


def test_covariance_stays_symmetric_positive_definite():
    es = CMAES(np.zeros(8), 0.5, seed=5, popsize=20, mu=0.25)
    for _ in range(300):
        X = es.ask()
        es.tell(X, rosenbrock(X) + 1e3 * np.abs(X[:, 0]))
        assert np.array_equal(es.C, es.C.T)
        assert np.linalg.eigvalsh(es.C).min() > 0
    np.testing.assert_allclose(es.B @ np.diag(es.D**2) @ es.B.T, es.C, rtol=1e-6, atol=1e-12 * es.C.max())


def test_eigendecomposition_is_lazy_in_high_dimension():
    es = CMAES(np.zeros(200), 1.0, seed=0)
    assert es.params.eigen_interval > 1
    run(es, sphere, generations=es.params.eigen_interval - 1)
    assert es.eigen_generation == 0 and np.array_equal(es.B, np.eye(200))
    run(es, sphere, generations=1)
    assert es.eigen_generation == es.params.eigen_interval


def test_termination_reasons():
    assert CMAES(np.ones(3), 1.0).stop() == {}
    assert run(CMAES(np.ones(3), 1.0, seed=0, ftarget=1e-3), sphere).stop() == {"ftarget": 1e-3}
    maxfevals = run(CMAES(np.ones(3), 1.0, seed=0, maxfevals=70), sphere)
    assert maxfevals.stop() == {"maxfevals": 70} and maxfevals.evaluations == 70
    flat = run(CMAES(np.ones(3), 1.0, seed=0), lambda X: np.zeros(len(X)))
    assert "tolfun" in flat.stop() and flat.generation == 10 + math.ceil(30 * 3 / flat.popsize)
    tolx = run(CMAES(np.ones(3), 1.0, seed=0, tolfun=0, tolx=1e-6), sphere)
    assert tolx.stop() == {"tolx": 1e-6} and tolx.sigma * np.sqrt(np.diag(tolx.C)).max() < 1e-6
    ill = run(CMAES(np.ones(2), 1.0, seed=0, tolfun=0, tolx=0), lambda X: X[:, 0] ** 2 + 1e20 * X[:, 1] ** 2)
    assert ill.stop() == {"tolconditioncov": 1e14} and ill.condition_number > 1e14


def test_state_round_trip_through_a_checkpoint_continues_identically(tmp_path):
    def fresh():
        return CMAES(np.zeros(6), 0.5, seed=11, popsize=12, mu=0.25)

    reference = fresh()
    sequence = []
    for _ in range(30):
        X = reference.ask()
        sequence.append(X)
        reference.tell(X, rosenbrock(X))

    first = fresh()
    for X in sequence[:12]:
        first.tell(first.ask(), rosenbrock(X))
    save_checkpoint(tmp_path / "es.pt", {"es": first.state_dict()})
    resumed = fresh()
    resumed.load_state_dict(load_checkpoint(tmp_path / "es.pt")["es"])
    for X_expected in sequence[12:]:
        X = resumed.ask()
        assert np.array_equal(X, X_expected)
        resumed.tell(X, rosenbrock(X))
    for key, value in reference.state_dict().items():
        assert np.array_equal(np.asarray(resumed.state_dict()[key]), np.asarray(value)) or key == "rng_state", key
    assert resumed.state_dict()["rng_state"] == reference.state_dict()["rng_state"]


def test_load_state_dict_rejects_other_strategies():
    state = CMAES(np.zeros(4), 1.0, popsize=8).state_dict()
    with pytest.raises(ValueError, match="popsize=8"):
        CMAES(np.zeros(4), 1.0, popsize=10).load_state_dict(state)
    with pytest.raises(ValueError, match="active"):
        CMAES(np.zeros(4), 1.0, popsize=8, active=False).load_state_dict(state)
    with pytest.raises(ValueError, match="missing"):
        CMAES(np.zeros(4), 1.0, popsize=8).load_state_dict({k: v for k, v in state.items() if k != "C"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x0": np.zeros((2, 2))}, "1-D"),
        ({"x0": [0.0, np.nan]}, "NaN"),
        ({"sigma0": 0.0}, "sigma0"),
        ({"sigma0": np.inf}, "sigma0"),
        ({"popsize": 1}, "popsize"),
        ({"mu": 0}, "mu"),
        ({"mu": 9}, "mu"),
        ({"mu": 1.5}, "fraction"),
        ({"maxfevals": 0}, "maxfevals"),
        ({"covariance": "sparse"}, "covariance must be one of"),
    ],
)
def test_bad_construction_arguments(kwargs, message):
    args = {"x0": np.zeros(3), "sigma0": 1.0, "popsize": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        CMAES(**args)


def test_bad_tell_arguments():
    es = CMAES(np.zeros(3), 1.0, popsize=6)
    X = es.ask()
    with pytest.raises(ValueError, match=r"X must have shape \(popsize, n\) = \(6, 3\)"):
        es.tell(X[:5], np.zeros(5))
    with pytest.raises(ValueError, match="losses must have shape"):
        es.tell(X, np.zeros(5))
    with pytest.raises(ValueError, match=r"NaN at candidate\(s\) \[2\]"):
        es.tell(X, [0.0, 1.0, np.nan, 2.0, 3.0, 4.0])
    assert es.generation == 0 and es.evaluations == 0  # a refused tell changes nothing


def _minimize_with_pool(workers: int) -> None:
    kwargs = dict(x0=np.array([2.0, 1.0]), sigma0=0.3, popsize=64, mu=0.25, seed=0, max_generations=8)
    seen = []
    serial = minimize(schaffer_loss, callback=lambda es, X, losses: seen.append((X.shape, losses.min())), **kwargs)
    with WorkerPool(workers=workers) as pool:
        pooled = minimize(schaffer_loss, pool=pool, **kwargs)
    assert serial.generation == pooled.generation == 8 and len(seen) == 8 and seen[0][0] == (64, 2)
    assert seen[-1][1] == serial.best_loss or serial.best_loss < seen[-1][1]
    assert np.array_equal(serial.mean, pooled.mean) and serial.best_loss == pooled.best_loss


def test_minimize_through_a_worker_pool_matches_the_serial_loop():
    _minimize_with_pool(workers=0)


@pytest.mark.slow
def test_minimize_on_worker_processes_matches_the_serial_loop():
    _minimize_with_pool(workers=2)


def test_schaffer_toy_finds_the_shifted_optimum():
    assert schaffer(np.array([10.0, 10.0])) == 0.0
    es = minimize(schaffer_loss, np.zeros(2), 0.3, popsize=64, mu=0.25, seed=0, ftarget=1e-10, maxfevals=20000)
    assert "ftarget" in es.stop()
    # (f - 0)^2 <= 1e-10 means f <= 1e-5; along the valleys |u| = |v|, f ~ 0.001 r^2, so r <= 0.1.
    assert np.linalg.norm(es.best_x - 10.0) < 0.1


@pytest.mark.parametrize(
    ("script", "argv", "outputs"),
    [
        ("cmaes_benchmark.py", ["--no-compare_pycma"], ["benchmark_smoke.json", "benchmark_smoke.csv"]),
        ("cmaes_schaffer.py", [], ["schaffer_smoke.json", "schaffer_smoke.gif", "schaffer_smoke.png"]),
    ],
)
def test_experiment_scripts_run_on_the_smoke_preset(tmp_path, script, argv, outputs):
    main = load_experiment(script.removesuffix(".py")).main
    metrics = main(["--preset", "smoke", "--results_dir", str(tmp_path), "--run_dir", str(tmp_path / "run"), *argv])
    assert metrics
    for name in outputs:
        assert (tmp_path / "cmaes" / name).stat().st_size > 0

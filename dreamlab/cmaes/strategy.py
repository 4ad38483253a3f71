"""The (mu/mu_w, lambda)-CMA-ES, written from Hansen's tutorial.

Reference: N. Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772 (2016). Equation numbers in the
comments are the tutorial's: the algorithm summary of Appendix A (eqs. 38-47), the default parameters of Table 1
(eqs. 48-58), the implementation notes of Appendix B (lazy eigendecomposition, B.2) and the termination criteria
of B.3 in the form pycma uses them.

Where pycma (the ``cma`` package, 4.x, by the tutorial's author) has refined the tutorial's defaults, this module
follows pycma, and each place says so: c_sigma (eq. 55: n + mu_eff + 3 in the denominator, capped at 1/2), the 1/4
offset in c_mu (eq. 58), the exact E||N(0, I)||, the squared-norm form of h_sigma and the clipping of the step-size
change to a factor e per generation. With these, on the same normal draws and the same initial C, a run equals
pycma's generation by generation up to rounding (tests/test_cmaes.py; rounding eventually flips a ranking or an
eigenvector's sign and the runs part), so both need the same number of evaluations in distribution
(experiments/cmaes_benchmark.py). Not adopted: pycma's mirrored sampling and smaller c_1 for popsize < 6, and its
initial C = diag(exp(1e-5 i)) that separates the eigenvalues for numpy (C = I here).

The strategy only ranks the losses it is told, so it does not care how (or where) the losses were computed;
:meth:`CMAES.optimize` and :func:`minimize` are the convenience loops that evaluate a fitness function, in this
process or on a :class:`dreamlab.parallel.WorkerPool`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from dreamlab.parallel import WorkerPool

# Keys of state_dict(); load_state_dict() requires exactly these.
_STATE_KEYS = (
    "n",
    "popsize",
    "mu",
    "active",
    "mean",
    "sigma",
    "C",
    "B",
    "D",
    "p_sigma",
    "p_c",
    "eigen_generation",
    "generation",
    "evaluations",
    "best_x",
    "best_loss",
    "best_loss_history",
    "last_losses",
    "rng_state",
)


@dataclass(frozen=True)
class StrategyParameters:
    """The strategy's constants for dimension ``n`` (tutorial Table 1, eqs. 48-58)."""

    n: int
    popsize: int  # lambda
    mu: int
    weights: np.ndarray  # (popsize,) w_1 >= ... >= w_mu > 0 (sum 1) >= w_{mu+1} >= ... >= w_lambda
    mu_eff: float
    c_sigma: float
    d_sigma: float
    c_c: float
    c_1: float
    c_mu: float
    chi_n: float  # E||N(0, I)||
    eigen_interval: int  # generations between eigendecompositions (Appendix B.2)


def default_popsize(n: int) -> int:
    """lambda = 4 + floor(3 ln n) (eq. 48)."""
    return 4 + math.floor(3 * math.log(n))


def resolve_mu(mu: int | float | None, popsize: int) -> int:
    """The number of parents: floor(lambda / 2) by default, a count, or a fraction of the population."""
    if mu is None:
        return popsize // 2
    if isinstance(mu, bool) or not isinstance(mu, (int, float, np.integer, np.floating)):
        raise ValueError(f"mu must be a count or a fraction of popsize, got {mu!r}")
    if isinstance(mu, (float, np.floating)):
        if not 0.0 < mu <= 1.0:
            raise ValueError(f"mu as a fraction of popsize must lie in (0, 1], got {mu}")
        return max(1, math.floor(mu * popsize))
    if not 1 <= mu <= popsize:
        raise ValueError(f"mu must be between 1 and popsize={popsize}, got {mu}")
    return int(mu)


def strategy_parameters(
    n: int, popsize: int | None = None, mu: int | float | None = None, active: bool = True
) -> StrategyParameters:
    """The tutorial's default parameters (Table 1, eqs. 48-58) for an ``n``-dimensional problem, with pycma's
    refinements of c_sigma, c_mu and E||N(0, I)|| (commented where they are computed).

    ``active=True`` gives the tutorial's full weight vector: positive weights for the mu best candidates (the
    recombination of the mean) and negative weights for the rest, which the covariance update uses to shrink C
    along bad directions (active CMA, eqs. 50-53). ``active=False`` zeroes the negative weights.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"dimension n must be a positive int, got {n!r}")
    n = int(n)
    if popsize is None:
        popsize = default_popsize(n)
    if isinstance(popsize, bool) or not isinstance(popsize, (int, np.integer)) or popsize < 2:
        raise ValueError(f"popsize must be an int >= 2, got {popsize!r}")
    popsize = int(popsize)
    mu = resolve_mu(mu, popsize)

    # eq. 49: w'_i = ln((lambda + 1) / 2) - ln i, positive exactly for i <= floor(lambda / 2) = mu. For another mu
    # the reference point moves to mu + 1/2 (as in the tutorial's Appendix C code), so that w'_i > 0 exactly for
    # i <= mu; for an even lambda and mu = lambda / 2 both forms agree.
    reference = (popsize + 1) / 2 if mu == popsize // 2 else mu + 0.5
    raw = math.log(reference) - np.log(np.arange(1, popsize + 1, dtype=np.float64))
    positive, negative = raw[:mu], raw[mu:]
    mu_eff = float(positive.sum() ** 2 / np.sum(positive**2))  # mu_eff of the positive weights

    # Deviation from eq. 55: c_sigma = min(1/2, (mu_eff + 2) / (n + mu_eff + 3)) instead of (mu_eff + 2) /
    # (n + mu_eff + 5), as in pycma (sigma_adaptation.CMAAdaptSigmaCSA.compute_cs). The shorter backward horizon of
    # p_sigma adapts sigma faster: eq. 55 costs 1.5% more evaluations on the 10-D sphere benchmark (median of 200
    # seeds, 1500 against 1480) and no fewer on Rosenbrock.
    # The cap keeps the newest step from outweighing all older ones in p_sigma (n <= 3 or a large population).
    c_sigma = min(0.5, (mu_eff + 2) / (n + mu_eff + 3))
    # eq. 55. pycma scales the mu_eff term's inner square root by up to 3 for n >= 6 (compute_damps), which only
    # changes d_sigma for populations far above the default; for the default popsize both give 1 + c_sigma.
    d_sigma = 1 + 2 * max(0.0, math.sqrt((mu_eff - 1) / (n + 1)) - 1) + c_sigma
    c_c = (4 + mu_eff / n) / (n + 4 + 2 * mu_eff / n)  # eq. 56
    alpha_cov = 2.0
    c_1 = alpha_cov / ((n + 1.3) ** 2 + mu_eff)  # eq. 57
    # Deviation from eq. 58: the numerator mu_eff - 2 + 1/mu_eff gets pycma's offset 1/4 (its rankmu_offset, in
    # interfaces.StatisticalModelSamplerWithZeroMeanBaseClass.parameters), a slightly larger rank-mu learning rate:
    # 2% fewer evaluations on the 10-D Rosenbrock benchmark (mean of 200 seeds, 5043 against 5137), 0.5% more on
    # the sphere, where C has nothing to learn.
    c_mu = min(1 - c_1, alpha_cov * (0.25 + mu_eff - 2 + 1 / mu_eff) / ((n + 2) ** 2 + alpha_cov * mu_eff / 2))

    weights = np.zeros(popsize)
    weights[:mu] = positive / positive.sum()  # eq. 53, positive part: sum to 1
    negative = np.minimum(negative, 0.0)  # w'_{mu+1} = 0 for an odd lambda
    if active and c_mu > 0 and negative.sum() < 0:
        mu_eff_minus = float(negative.sum() ** 2 / np.sum(negative**2))
        alpha_mu = 1 + c_1 / c_mu  # eq. 50
        alpha_mu_eff = 1 + 2 * mu_eff_minus / (mu_eff + 2)  # eq. 51
        alpha_posdef = (1 - c_1 - c_mu) / (n * c_mu)  # eq. 52
        # eq. 53, negative part: sum |w_i^-| = min(alpha's), which keeps C positive definite.
        weights[mu:] = min(alpha_mu, alpha_mu_eff, alpha_posdef) * negative / np.abs(negative).sum()

    # E||N(0, I)|| = sqrt(2) Gamma((n + 1) / 2) / Gamma(n / 2), the chi distribution's mean, computed exactly (as
    # pycma's Mh.chiN tabulates it) rather than with Appendix A's approximation sqrt(n) (1 - 1/(4n) + 1/(21n^2)),
    # which is up to 1e-3 too large for small n and would bias sigma downwards through eq. 44.
    chi_n = math.sqrt(2) * math.exp(math.lgamma((n + 1) / 2) - math.lgamma(n / 2))
    # Appendix B.2: decomposing C every max(1, floor(1 / (10 n (c_1 + c_mu)))) generations keeps its O(n^3) cost
    # at O(n^2) per generation without measurably slowing the adaptation.
    eigen_interval = max(1, math.floor(1 / (10 * n * (c_1 + c_mu))))
    return StrategyParameters(
        n=n,
        popsize=popsize,
        mu=mu,
        weights=weights,
        mu_eff=mu_eff,
        c_sigma=c_sigma,
        d_sigma=d_sigma,
        c_c=c_c,
        c_1=c_1,
        c_mu=c_mu,
        chi_n=chi_n,
        eigen_interval=eigen_interval,
    )


class CMAES:
    """(mu/mu_w, lambda)-CMA-ES minimising a loss by ask/tell (Hansen's tutorial, 2016).

    ``es = CMAES(x0, sigma0)``; repeat ``X = es.ask()`` (``(popsize, n)`` candidates), evaluate them however you
    like, ``es.tell(X, losses)``, until ``es.stop()`` returns a non-empty dict of the termination reasons met.

    Args:
        x0: initial mean, a 1-D array of ``n`` finite numbers.
        sigma0: initial step size (> 0); the optimum should lie within about ``3 * sigma0`` of ``x0``.
        popsize: lambda, candidates per generation; default ``4 + floor(3 ln n)``.
        mu: parents recombined into the new mean: a count, or a float in (0, 1] taken as a fraction of popsize
            (``0.25`` with popsize 64 gives 16); default ``popsize // 2``.
        seed: seed of the sampling generator (``numpy.random.default_rng``).
        ftarget: stop once the best loss is <= ftarget.
        maxfevals: stop once this many losses have been told.
        tolfun: stop when the losses of the current generation and the best losses of the last
            ``10 + ceil(30 n / popsize)`` generations all lie within tolfun of each other.
        tolx: stop when sigma times every coordinate's standard deviation and sigma times every component of the
            evolution path p_c are below tolx.
        tolconditioncov: stop when the condition number of C exceeds this.
        active: also use the worst candidates, with negative weights, in the covariance update (the tutorial's
            default weights, eqs. 46 and 53); ``False`` keeps only the positive weights.
    """

    def __init__(
        self,
        x0: Sequence[float] | np.ndarray,
        sigma0: float,
        popsize: int | None = None,
        mu: int | float | None = None,
        seed: int | None = None,
        *,
        ftarget: float = -math.inf,
        maxfevals: float = math.inf,
        tolfun: float = 1e-11,
        tolx: float = 1e-11,
        tolconditioncov: float = 1e14,
        active: bool = True,
    ):
        x0 = np.array(x0, dtype=np.float64)
        if x0.ndim != 1 or x0.size == 0:
            raise ValueError(f"x0 must be a non-empty 1-D array, got shape {x0.shape}")
        if not np.all(np.isfinite(x0)):
            raise ValueError("x0 contains NaN or Inf")
        sigma0 = float(sigma0)
        if not (math.isfinite(sigma0) and sigma0 > 0):
            raise ValueError(f"sigma0 must be a positive finite number, got {sigma0}")
        for name, value in (("tolfun", tolfun), ("tolx", tolx), ("tolconditioncov", tolconditioncov)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not maxfevals > 0:
            raise ValueError(f"maxfevals must be > 0, got {maxfevals}")
        if math.isnan(ftarget):
            raise ValueError("ftarget is NaN")

        self.params = strategy_parameters(x0.size, popsize, mu, active)
        self.active = bool(active)
        self.ftarget = float(ftarget)
        self.maxfevals = float(maxfevals)
        self.tolfun = float(tolfun)
        self.tolx = float(tolx)
        self.tolconditioncov = float(tolconditioncov)
        n = self.params.n
        # Generations of best losses that tolfun looks back over (pycma's history length).
        self._tolfun_window = 10 + math.ceil(30 * n / self.params.popsize)

        self.rng = np.random.default_rng(seed)
        self.mean = x0
        self.sigma = sigma0
        self.C = np.eye(n)
        self.B = np.eye(n)  # eigenvectors of C (columns)
        self.D = np.ones(n)  # square roots of the eigenvalues of C: C = B diag(D^2) B^T
        self.p_sigma = np.zeros(n)
        self.p_c = np.zeros(n)
        self.eigen_generation = 0
        self.generation = 0
        self.evaluations = 0
        self.best_x = x0.copy()
        self.best_loss = math.inf
        self.best_loss_history: list[float] = []
        self.last_losses = np.empty(0)

    @property
    def n(self) -> int:
        return self.params.n

    @property
    def popsize(self) -> int:
        return self.params.popsize

    @property
    def mu(self) -> int:
        return self.params.mu

    def ask(self) -> np.ndarray:
        """Sample ``popsize`` candidates x_k = m + sigma B D z_k, z_k ~ N(0, I) (eqs. 38-40); shape (popsize, n)."""
        z = self.rng.standard_normal((self.popsize, self.n))  # eq. 38
        y = (z * self.D) @ self.B.T  # eq. 39: y_k = B D z_k ~ N(0, C)
        return self.mean + self.sigma * y  # eq. 40

    def tell(self, X: np.ndarray | Sequence[Sequence[float]], losses: np.ndarray | Sequence[float]) -> None:
        """Update the distribution from candidates ``X`` (popsize, n) and their ``losses`` (popsize,), lower better."""
        X = np.asarray(X, dtype=np.float64)
        losses = np.asarray(losses, dtype=np.float64)
        if X.shape != (self.popsize, self.n):
            raise ValueError(f"X must have shape (popsize, n) = ({self.popsize}, {self.n}), got {X.shape}")
        if losses.shape != (self.popsize,):
            raise ValueError(f"losses must have shape (popsize,) = ({self.popsize},), got {losses.shape}")
        if np.isnan(losses).any():
            raise ValueError(f"losses contain NaN at candidate(s) {np.flatnonzero(np.isnan(losses)).tolist()}")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"X contains NaN or Inf in row(s) {np.flatnonzero(~np.isfinite(X).all(1)).tolist()}")
        p = self.params

        order = np.argsort(losses, kind="stable")
        self.evaluations += self.popsize
        self.generation += 1
        self.last_losses = losses[order]
        if losses[order[0]] < self.best_loss:
            self.best_loss = float(losses[order[0]])
            self.best_x = X[order[0]].copy()
        self.best_loss_history = [*self.best_loss_history, float(losses[order[0]])][-self._tolfun_window :]

        # Selection and recombination (eqs. 41-42, c_m = 1 by eq. 54): only the mu best have positive weights.
        y = (X[order] - self.mean) / self.sigma  # y_{i:lambda} ~ N(0, C), best first
        y_w = p.weights[: p.mu] @ y[: p.mu]  # eq. 41
        self.mean = self.mean + self.sigma * y_w  # eq. 42

        # Cumulative step-size adaptation (eq. 43); C^{-1/2} = B D^{-1} B^T from the last eigendecomposition.
        inv_sqrt_C_y = ((y @ self.B) / self.D) @ self.B.T  # rows C^{-1/2} y_{i:lambda}
        inv_sqrt_C_y_w = p.weights[: p.mu] @ inv_sqrt_C_y[: p.mu]
        self.p_sigma = (1 - p.c_sigma) * self.p_sigma + math.sqrt(
            p.c_sigma * (2 - p.c_sigma) * p.mu_eff
        ) * inv_sqrt_C_y_w
        p_sigma_norm = float(np.linalg.norm(self.p_sigma))

        # h_sigma (Appendix A, after eq. 45) stalls the update of p_c while ||p_sigma|| is large, i.e. while sigma
        # is growing fast, so C does not lengthen too quickly along the path in a linear environment.
        # Deviation from the tutorial's ||p_sigma|| / sqrt(1 - (1 - c_sigma)^(2(g+1))) < (1.4 + 2/(n+1)) E||N(0,I)||:
        # pycma's squared form (sigma_adaptation.CMAAdaptSigmaBase.hsig), ||p_sigma||^2 / (1 - (1 - c_sigma)^(2(g+1)))
        # / n < 2 + 4/(n+1). Both thresholds are ~1.5 E||N(0,I)|| (23.6 against 23.8 squared for n = 10).
        bias = 1 - (1 - p.c_sigma) ** (2 * self.generation)
        h_sigma = float(p_sigma_norm**2 / bias / p.n < 2 + 4 / (p.n + 1))
        self.p_c = (1 - p.c_c) * self.p_c + h_sigma * math.sqrt(p.c_c * (2 - p.c_c) * p.mu_eff) * y_w  # eq. 45

        # eq. 46: a negative weight is rescaled by n / ||C^{-1/2} y||^2 so that the (unselected, often long) worst
        # steps cannot remove more variance than their Mahalanobis length warrants.
        weights_circ = p.weights.copy()
        bad = p.weights < 0
        weights_circ[bad] *= p.n / np.maximum(np.sum(inv_sqrt_C_y[bad] ** 2, axis=1), 1e-300)

        # Covariance matrix adaptation (eq. 47): the rank-one term is the outer product p_c p_c^T (an n x n
        # matrix) and the rank-mu term sum_i w°_i y_i y_i^T = Y^T diag(w°) Y. delta(h_sigma) = (1 - h_sigma)
        # c_c (2 - c_c) restores the variance the stalled p_c did not add.
        delta_h_sigma = (1 - h_sigma) * p.c_c * (2 - p.c_c)
        rank_one = np.outer(self.p_c, self.p_c)
        rank_mu = (y * weights_circ[:, None]).T @ y
        decay = 1 + p.c_1 * delta_h_sigma - p.c_1 - p.c_mu * p.weights.sum()
        C = decay * self.C + p.c_1 * rank_one + p.c_mu * rank_mu
        self.C = (C + C.T) / 2  # exact symmetry; the products above are symmetric only up to rounding

        # eq. 44. Deviation: the exponent is clipped to [-1, 1] as in pycma (CMAAdaptSigmaCSA.update2), so a single
        # generation can change sigma by at most a factor e; this only acts far from the equilibrium of p_sigma.
        log_sigma_change = (p.c_sigma / p.d_sigma) * (p_sigma_norm / p.chi_n - 1)
        self.sigma = self.sigma * math.exp(min(1.0, max(-1.0, log_sigma_change)))

        if self.generation - self.eigen_generation >= p.eigen_interval:
            self._decompose()

    def _decompose(self) -> None:
        """C = B diag(D^2) B^T (Appendix B.2), done lazily every ``eigen_interval`` generations."""
        eigenvalues, self.B = np.linalg.eigh(self.C)
        if eigenvalues[0] <= 0:
            # Rounding can only push the smallest eigenvalue below zero once C is numerically singular, which
            # the condition-number criterion reports; clip so sampling stays defined until then.
            eigenvalues = np.maximum(eigenvalues, eigenvalues[-1] * 1e-20)
        self.D = np.sqrt(eigenvalues)
        self.eigen_generation = self.generation

    @property
    def condition_number(self) -> float:
        """Condition number of C (max over min eigenvalue) at the last eigendecomposition."""
        return float((self.D.max() / self.D.min()) ** 2)

    def stop(self) -> dict[str, float]:
        """The termination criteria met (Appendix B.3, pycma's names), mapped to their thresholds; {} to go on."""
        reasons: dict[str, float] = {}
        if self.best_loss <= self.ftarget:
            reasons["ftarget"] = self.ftarget
        if self.evaluations >= self.maxfevals:
            reasons["maxfevals"] = self.maxfevals
        if self.generation >= self._tolfun_window:
            recent = np.concatenate([self.best_loss_history, self.last_losses])
            if recent.max() - recent.min() < self.tolfun:
                reasons["tolfun"] = self.tolfun
        if self.generation > 0 and (
            self.sigma * np.sqrt(np.diag(self.C)).max() < self.tolx and self.sigma * np.abs(self.p_c).max() < self.tolx
        ):
            reasons["tolx"] = self.tolx
        if self.condition_number > self.tolconditioncov:
            reasons["tolconditioncov"] = self.tolconditioncov
        return reasons

    def optimize(
        self,
        fitness: Callable[[np.ndarray], float],
        pool: WorkerPool | None = None,
        callback: Callable[[CMAES, np.ndarray, np.ndarray], None] | None = None,
        max_generations: int | None = None,
    ) -> CMAES:
        """Ask, evaluate ``fitness`` on each candidate, tell, until :meth:`stop` (or ``max_generations`` more).

        With ``pool=None`` the candidates are evaluated one after another in this process; with a
        :class:`dreamlab.parallel.WorkerPool` they are evaluated by its workers (local processes, or a Ray
        cluster when the pool was given a Ray address), so ``fitness`` must then be a picklable top-level
        function (``functools.partial`` of one binds extra arguments). ``callback(es, X, losses)`` runs after
        every generation with the candidates and their losses, e.g. to log population statistics or checkpoint.
        """
        done = 0
        while not self.stop() and (max_generations is None or done < max_generations):
            X = self.ask()
            losses = pool.map(fitness, list(X)) if pool is not None else [fitness(x) for x in X]
            losses = np.array([float(loss) for loss in losses])
            self.tell(X, losses)
            done += 1
            if callback is not None:
                callback(self, X, losses)
        return self

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run exactly, as arrays and plain values (checkpointable)."""
        return {
            "n": self.n,
            "popsize": self.popsize,
            "mu": self.mu,
            "active": self.active,
            "mean": self.mean.copy(),
            "sigma": self.sigma,
            "C": self.C.copy(),
            "B": self.B.copy(),
            "D": self.D.copy(),
            "p_sigma": self.p_sigma.copy(),
            "p_c": self.p_c.copy(),
            "eigen_generation": self.eigen_generation,
            "generation": self.generation,
            "evaluations": self.evaluations,
            "best_x": self.best_x.copy(),
            "best_loss": self.best_loss,
            "best_loss_history": list(self.best_loss_history),
            "last_losses": self.last_losses.copy(),
            "rng_state": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from a strategy built with the same n, popsize, mu and active."""
        missing = [key for key in _STATE_KEYS if key not in state]
        if missing:
            raise ValueError(f"CMA-ES state is missing {missing}")
        for key in ("n", "popsize", "mu", "active"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"CMA-ES state has {key}={state[key]} but this strategy has {key}={getattr(self, key)}"
                )
        n = self.n
        arrays = {}
        for key, shape in (
            ("mean", (n,)),
            ("C", (n, n)),
            ("B", (n, n)),
            ("D", (n,)),
            ("p_sigma", (n,)),
            ("p_c", (n,)),
            ("best_x", (n,)),
        ):
            arrays[key] = np.array(state[key], dtype=np.float64)
            if arrays[key].shape != shape:
                raise ValueError(f"CMA-ES state {key!r} has shape {arrays[key].shape}, expected {shape}")
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng_state"]
        self.rng = rng
        self.mean, self.C, self.B, self.D = arrays["mean"], arrays["C"], arrays["B"], arrays["D"]
        self.p_sigma, self.p_c, self.best_x = arrays["p_sigma"], arrays["p_c"], arrays["best_x"]
        self.sigma = float(state["sigma"])
        self.eigen_generation = int(state["eigen_generation"])
        self.generation = int(state["generation"])
        self.evaluations = int(state["evaluations"])
        self.best_loss = float(state["best_loss"])
        self.best_loss_history = [float(v) for v in state["best_loss_history"]]
        self.last_losses = np.array(state["last_losses"], dtype=np.float64)


def minimize(
    fitness: Callable[[np.ndarray], float],
    x0: Sequence[float] | np.ndarray,
    sigma0: float,
    popsize: int | None = None,
    mu: int | float | None = None,
    seed: int | None = None,
    *,
    pool: WorkerPool | None = None,
    callback: Callable[[CMAES, np.ndarray, np.ndarray], None] | None = None,
    max_generations: int | None = None,
    **options: Any,
) -> CMAES:
    """Minimise ``fitness`` from ``x0`` with CMA-ES; returns the strategy (``best_x``, ``best_loss``, ``stop()``).

    ``options`` are the termination settings of :class:`CMAES` (ftarget, maxfevals, tolfun, tolx,
    tolconditioncov); ``pool``, ``callback`` and ``max_generations`` are those of :meth:`CMAES.optimize`.
    """
    es = CMAES(x0, sigma0, popsize=popsize, mu=mu, seed=seed, **options)
    return es.optimize(fitness, pool=pool, callback=callback, max_generations=max_generations)

"""The (mu/mu_w, lambda)-CMA-ES, written from Hansen's tutorial, with a linear-cost diagonal mode and IPOP restarts.

References:

- N. Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772 (2016). Equation numbers in the comments
  are the tutorial's: the algorithm summary of Appendix A (eqs. 38-47), the default parameters of Table 1
  (eqs. 48-58), the implementation notes of Appendix B (lazy eigendecomposition, B.2) and the termination criteria
  of B.3 in the form pycma uses them.
- R. Ros and N. Hansen, "A Simple Modification in CMA-ES Achieving Linear Time and Space Complexity", PPSN X
  (2008): sep-CMA-ES, ``covariance="diagonal"``. C is kept diagonal, so sampling, the update and the memory are
  O(n) per candidate, and c_1 and c_mu are multiplied by (n + 2) / 3 because only n entries are learned.
- A. Auger and N. Hansen, "A Restart CMA Evolution Strategy With Increasing Population Size", CEC 2005 (IPOP):
  :func:`ipop` restarts a run that stopped short of its target with twice the population.

Where pycma (the ``cma`` package, 4.x, by the tutorial's author) has refined the tutorial's defaults, this module
follows pycma, and each place says so: c_sigma (eq. 55: n + mu_eff + 3 in the denominator, capped at 1/2), d_sigma
for large populations (eq. 55's square root scaled by up to 3), 1e-9 added to the norms of eq. 46, the 1/4
offset in c_mu (eq. 58), the exact E||N(0, I)||, the squared-norm form of h_sigma and the clipping of the step-size
change to a factor e per generation. With these, on the same normal draws and the same initial C, a run equals
pycma's generation by generation up to rounding (tests/test_cmaes.py; rounding eventually flips a ranking or an
eigenvector's sign and the runs part), so both need the same number of evaluations in distribution
(experiments/cmaes_benchmark.py). Not adopted: pycma's mirrored sampling and smaller c_1 for popsize < 6, and its
initial C = diag(exp(1e-5 i)) that separates the eigenvalues for numpy (C = I here). pycma's own diagonal mode
(``CMA_diagonal=True``) differs from Ros & Hansen's: it updates the diagonal multiplicatively (its diagonal
decoding) with learning rates of its own; the diagonal mode here is the paper's additive update.

Cost per generation in the full mode, for lambda candidates in n dimensions: sampling and the inverse square root
of C are one (lambda, n) x (n, n) product each, and the covariance update is a symmetric rank-(lambda + 1) update
of C in place (BLAS dsyrk on one triangle), so no n x n temporary is formed; the O(n^3) eigendecomposition is
amortised over ``eigen_interval`` generations (Appendix B.2).

The strategy only ranks the losses it is told, so it does not care how (or where) the losses were computed;
:meth:`CMAES.optimize`, :func:`minimize` and :func:`ipop` are the convenience loops that evaluate a fitness
function, in this process or on a :class:`dreamlab.parallel.WorkerPool`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy.linalg import blas

if TYPE_CHECKING:
    from dreamlab.parallel import WorkerPool

Covariance = Literal["full", "diagonal"]
COVARIANCES: tuple[Covariance, ...] = ("full", "diagonal")

# Keys of state_dict(); load_state_dict() requires these (a diagonal strategy has no "B": its eigenvectors are the
# coordinate axes). "covariance" is absent from checkpoints written before the diagonal mode and then means "full".
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
    """The strategy's constants for dimension ``n`` (tutorial Table 1, eqs. 48-58; Ros & Hansen 2008 for the
    diagonal mode's learning rates)."""

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
    eigen_interval: int  # generations between eigendecompositions (Appendix B.2); 1 when C is diagonal
    covariance: Covariance = "full"


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
    n: int,
    popsize: int | None = None,
    mu: int | float | None = None,
    active: bool = True,
    covariance: Covariance = "full",
) -> StrategyParameters:
    """The tutorial's default parameters (Table 1, eqs. 48-58) for an ``n``-dimensional problem, with pycma's
    refinements of c_sigma, c_mu and E||N(0, I)|| (commented where they are computed).

    ``active=True`` gives the tutorial's full weight vector: positive weights for the mu best candidates (the
    recombination of the mean) and negative weights for the rest, which the covariance update uses to shrink C
    along bad directions (active CMA, eqs. 50-53). ``active=False`` zeroes the negative weights.

    ``covariance="diagonal"`` (sep-CMA-ES, Ros & Hansen 2008) multiplies c_1 and c_mu by (n + 2) / 3:
    a diagonal C has n free entries instead of n (n + 1) / 2, so it can be learned that much faster. The negative
    weights are then bounded with these larger rates (eq. 52), which keeps every variance positive.
    """
    if covariance not in COVARIANCES:
        raise ValueError(f"covariance must be one of {COVARIANCES}, got {covariance!r}")
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
    # Deviation from eq. 55: as in pycma (sigma_adaptation.CMAAdaptSigmaCSA.compute_damps), the inner square root
    # is multiplied by max(1, 3 (1 - 2^(-n/9))) (1.61 for n = 10, -> 3 for large n), which damps sigma more when
    # mu_eff is large against n. For the default popsize the term stays zero (d_sigma = 1 + c_sigma either way);
    # IPOP's large populations meet it: at n = 10 and popsize 160, d_sigma is 5.75 instead of 3.38.
    damping_inner = max(1.0, 3 * (1 - 0.5 ** (n / 9)))
    d_sigma = 1 + 2 * max(0.0, damping_inner * math.sqrt((mu_eff - 1) / (n + 1)) - 1) + c_sigma
    c_c = (4 + mu_eff / n) / (n + 4 + 2 * mu_eff / n)  # eq. 56
    alpha_cov = 2.0
    c_1 = alpha_cov / ((n + 1.3) ** 2 + mu_eff)  # eq. 57
    # Deviation from eq. 58: the numerator mu_eff - 2 + 1/mu_eff gets pycma's offset 1/4 (its rankmu_offset, in
    # interfaces.StatisticalModelSamplerWithZeroMeanBaseClass.parameters), a slightly larger rank-mu learning rate:
    # 2% fewer evaluations on the 10-D Rosenbrock benchmark (mean of 200 seeds, 5043 against 5137), 0.5% more on
    # the sphere, where C has nothing to learn.
    c_mu = alpha_cov * (0.25 + mu_eff - 2 + 1 / mu_eff) / ((n + 2) ** 2 + alpha_cov * mu_eff / 2)
    if covariance == "diagonal":
        # sep-CMA-ES (Ros & Hansen 2008): c_cov^sep = (n + 2) / 3 c_cov, applied to both learning rates.
        c_1 = min(1.0, c_1 * (n + 2) / 3)
        c_mu = c_mu * (n + 2) / 3
    c_mu = min(1 - c_1, c_mu)

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
    # A diagonal C is its own eigendecomposition, refreshed every generation at O(n).
    eigen_interval = 1 if covariance == "diagonal" else max(1, math.floor(1 / (10 * n * (c_1 + c_mu))))
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
        covariance=covariance,
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
        seed: seed of the sampling generator (``numpy.random.default_rng``), or a generator to sample from
            (:func:`ipop` passes one generator through all its restarts).
        ftarget: stop once the best loss is <= ftarget.
        maxfevals: stop once this many losses have been told.
        tolfun: stop when the losses of the current generation and the best losses of the last
            ``10 + ceil(30 n / popsize)`` generations all lie within tolfun of each other.
        tolx: stop when sigma times every coordinate's standard deviation and sigma times every component of the
            evolution path p_c are below tolx.
        tolconditioncov: stop when the condition number of C exceeds this.
        active: also use the worst candidates, with negative weights, in the covariance update (the tutorial's
            default weights, eqs. 46 and 53); ``False`` keeps only the positive weights.
        covariance: ``"full"`` learns the whole n x n matrix C (O(n^2) memory and time per candidate);
            ``"diagonal"`` is sep-CMA-ES (Ros & Hansen 2008): only the n variances, O(n) memory and time per
            candidate, invariant to scaling each coordinate but not to rotations. It fits separable or very
            high-dimensional problems (a neural network's weights), where the full matrix does not fit or cannot
            be learned within the budget anyway.
    """

    def __init__(
        self,
        x0: Sequence[float] | np.ndarray,
        sigma0: float,
        popsize: int | None = None,
        mu: int | float | None = None,
        seed: int | np.random.Generator | None = None,
        *,
        ftarget: float = -math.inf,
        maxfevals: float = math.inf,
        tolfun: float = 1e-11,
        tolx: float = 1e-11,
        tolconditioncov: float = 1e14,
        active: bool = True,
        covariance: Covariance = "full",
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

        self.params = strategy_parameters(x0.size, popsize, mu, active, covariance)
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
        # Full mode: C is an n x n array of which only the lower triangle is kept up to date (the update is a
        # symmetric rank-k update of one triangle, and eigh reads that triangle); the ``C`` property mirrors it.
        # Diagonal mode: the n variances. B holds the eigenvectors of C (columns), None when C is diagonal.
        self._C = np.eye(n) if covariance == "full" else np.ones(n)
        self.B: np.ndarray | None = np.eye(n) if covariance == "full" else None
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
        self._asked: tuple[np.ndarray, np.ndarray] | None = None  # the last ask()'s candidates and normal draws

    @property
    def n(self) -> int:
        return self.params.n

    @property
    def popsize(self) -> int:
        return self.params.popsize

    @property
    def mu(self) -> int:
        return self.params.mu

    @property
    def covariance(self) -> Covariance:
        return self.params.covariance

    @property
    def diagonal(self) -> bool:
        return self.params.covariance == "diagonal"

    @property
    def C(self) -> np.ndarray:
        """The covariance matrix, a new symmetric (n, n) array (also in the diagonal mode, where building it costs
        O(n^2) memory: use :attr:`variances` there)."""
        if self.diagonal:
            return np.diag(self._C)
        return np.tril(self._C) + np.tril(self._C, -1).T

    @property
    def variances(self) -> np.ndarray:
        """The diagonal of C, a read-only (n,) view."""
        variances = self._C if self.diagonal else np.diagonal(self._C)
        view = variances.view()
        view.flags.writeable = False
        return view

    def ask(self) -> np.ndarray:
        """Sample ``popsize`` candidates x_k = m + sigma B D z_k, z_k ~ N(0, I) (eqs. 38-40); shape (popsize, n)."""
        z = self.rng.standard_normal((self.popsize, self.n))  # eq. 38
        y = z * self.D if self.B is None else (z * self.D) @ self.B.T  # eq. 39: y_k = B D z_k ~ N(0, C)
        X = self.mean + self.sigma * y  # eq. 40
        # tell() needs z_k = D^{-1} B^T y_k again; keeping it saves an n x n product when the same X comes back.
        self._asked = (X.copy(), z)
        return X

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

        # Cumulative step-size adaptation (eq. 43) with C^{-1/2} = B D^{-1} B^T from the last eigendecomposition.
        # Only the rows z_i = D^{-1} B^T y_i are needed for all candidates: the path needs the weighted sum
        # C^{-1/2} y_w = B z_w, and eq. 46 needs ||C^{-1/2} y_i|| = ||z_i|| (B is orthogonal). They are the normal
        # draws of ask() when X is what it returned; otherwise one product with B computes them.
        z = self._whitened(X, y, order)
        z_w = p.weights[: p.mu] @ z[: p.mu]
        inv_sqrt_C_y_w = z_w if self.B is None else self.B @ z_w
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
        # steps cannot remove more variance than their Mahalanobis length warrants. As in pycma
        # (sampler.GaussFullSampler.update), the norm gets 1e-9 added, which guards a zero-length step; the norm is
        # ~sqrt(n) whatever the scale of the problem, so this is a relative change of ~1e-9, and with it paired runs
        # of the two libraries agree to rounding (1e-13) instead of to 1e-9.
        weights_circ = p.weights.copy()
        bad = p.weights < 0
        weights_circ[bad] *= p.n / (np.sqrt(np.sum(z[bad] ** 2, axis=1)) + 1e-9) ** 2

        # Covariance matrix adaptation (eq. 47): decay * C + c_1 p_c p_c^T + c_mu sum_i w°_i y_i y_i^T, where
        # delta(h_sigma) = (1 - h_sigma) c_c (2 - c_c) restores the variance the stalled p_c did not add.
        delta_h_sigma = (1 - h_sigma) * p.c_c * (2 - p.c_c)
        decay = 1 + p.c_1 * delta_h_sigma - p.c_1 - p.c_mu * p.weights.sum()
        coefficients = np.concatenate([[p.c_1], p.c_mu * weights_circ])
        vectors = np.concatenate([self.p_c[None, :], y])
        if self.B is None:
            # sep-CMA-ES (Ros & Hansen 2008): only the diagonal of eq. 47 is computed and kept, O(lambda n).
            self._C = decay * self._C + coefficients @ vectors**2
        else:
            _symmetric_update(self._C, decay, coefficients, vectors)

        # eq. 44. Deviation: the exponent is clipped to [-1, 1] as in pycma (CMAAdaptSigmaCSA.update2), so a single
        # generation can change sigma by at most a factor e; this only acts far from the equilibrium of p_sigma.
        log_sigma_change = (p.c_sigma / p.d_sigma) * (p_sigma_norm / p.chi_n - 1)
        self.sigma = self.sigma * math.exp(min(1.0, max(-1.0, log_sigma_change)))

        if self.generation - self.eigen_generation >= p.eigen_interval:
            self._decompose()

    def _whitened(self, X: np.ndarray, y: np.ndarray, order: np.ndarray) -> np.ndarray:
        """Rows D^{-1} B^T y_i for the sorted steps ``y`` of the told candidates ``X`` (unsorted)."""
        asked, self._asked = self._asked, None
        if asked is not None and np.array_equal(asked[0], X):
            return asked[1][order]
        return y / self.D if self.B is None else (y @ self.B) / self.D

    def _decompose(self) -> None:
        """C = B diag(D^2) B^T (Appendix B.2), done lazily every ``eigen_interval`` generations (every generation,
        at O(n), for a diagonal C)."""
        if self.B is None:
            eigenvalues = self._C
        else:
            # LAPACK dsyevd (divide and conquer), reading the lower triangle: at n = 3000 it takes as long as
            # scipy's "evd" driver and 25% less than "evr" (experiments/cmaes_benchmark.py times n = 10,000).
            eigenvalues, self.B = np.linalg.eigh(self._C, UPLO="L")
        if eigenvalues.min() <= 0:
            # Rounding can only push the smallest eigenvalue below zero once C is numerically singular, which
            # the condition-number criterion reports; clip so sampling stays defined until then.
            eigenvalues = np.maximum(eigenvalues, eigenvalues.max() * 1e-20)
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
            self.sigma * math.sqrt(self.variances.max()) < self.tolx and self.sigma * np.abs(self.p_c).max() < self.tolx
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
        """Everything needed to continue the run exactly, as arrays and plain values (checkpointable). ``C`` is
        the (n, n) matrix in the full mode and the (n,) variances in the diagonal mode, which has no ``B``."""
        state = {
            "n": self.n,
            "popsize": self.popsize,
            "mu": self.mu,
            "active": self.active,
            "covariance": self.covariance,
            "mean": self.mean.copy(),
            "sigma": self.sigma,
            "C": self._C.copy() if self.diagonal else self.C,
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
        if self.B is not None:
            state["B"] = self.B.copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from a strategy built with the same n, popsize, mu, active and
        covariance."""
        state = {"covariance": "full", **state}  # checkpoints from before the diagonal mode
        required = [key for key in _STATE_KEYS if not (key == "B" and state["covariance"] == "diagonal")]
        missing = [key for key in required if key not in state]
        if missing:
            raise ValueError(f"CMA-ES state is missing {missing}")
        for key in ("n", "popsize", "mu", "active", "covariance"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"CMA-ES state has {key}={state[key]} but this strategy has {key}={getattr(self, key)}"
                )
        n = self.n
        shapes = {"mean": (n,), "D": (n,), "p_sigma": (n,), "p_c": (n,), "best_x": (n,)}
        shapes.update({"C": (n,)} if self.diagonal else {"C": (n, n), "B": (n, n)})
        arrays = {}
        for key, shape in shapes.items():
            arrays[key] = np.array(state[key], dtype=np.float64)
            if arrays[key].shape != shape:
                raise ValueError(f"CMA-ES state {key!r} has shape {arrays[key].shape}, expected {shape}")
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng_state"]
        self.rng = rng
        self.mean, self._C, self.B, self.D = arrays["mean"], arrays["C"], arrays.get("B"), arrays["D"]
        self.p_sigma, self.p_c, self.best_x = arrays["p_sigma"], arrays["p_c"], arrays["best_x"]
        self.sigma = float(state["sigma"])
        self.eigen_generation = int(state["eigen_generation"])
        self.generation = int(state["generation"])
        self.evaluations = int(state["evaluations"])
        self.best_loss = float(state["best_loss"])
        self.best_loss_history = [float(v) for v in state["best_loss_history"]]
        self.last_losses = np.array(state["last_losses"], dtype=np.float64)
        self._asked = None


def _symmetric_update(C: np.ndarray, decay: float, coefficients: np.ndarray, vectors: np.ndarray) -> None:
    """C <- decay C + sum_k coefficients[k] v_k v_k^T on the lower triangle of the C-ordered ``C``, in place.

    BLAS dsyrk needs one sign per call, so the positive and the negative coefficients (active CMA) are two
    rank-k updates; each reads and writes one triangle of C once and allocates only the (k, n) scaled vectors.
    ``C.T`` is C seen in Fortran order, where numpy's lower triangle is the upper one (hence ``lower=0``).
    """
    for sign in (1.0, -1.0):
        chosen = coefficients * sign > 0
        if not chosen.any():
            if sign > 0:
                C *= decay
            continue
        rows = np.sqrt(coefficients[chosen] * sign)[:, None] * vectors[chosen]  # (k, n), C order
        result = blas.dsyrk(sign, rows.T, beta=decay if sign > 0 else 1.0, c=C.T, trans=0, lower=0, overwrite_c=1)
        if not np.shares_memory(result, C):  # f2py copied instead of updating in place; never with C-ordered C
            raise RuntimeError("BLAS dsyrk did not update C in place")


@dataclass
class IPOPResult:
    """The outcome of :func:`ipop`: the best candidate over all runs, and each run's population and stop reasons."""

    best_x: np.ndarray
    best_loss: float
    evaluations: int
    popsizes: list[int] = field(default_factory=list)
    stops: list[dict[str, float]] = field(default_factory=list)
    last: CMAES | None = None  # the strategy of the last run

    @property
    def restarts(self) -> int:
        return max(0, len(self.popsizes) - 1)


def ipop(
    fitness: Callable[[np.ndarray], float],
    x0: Sequence[float] | np.ndarray | Callable[[], np.ndarray],
    sigma0: float,
    popsize: int | None = None,
    seed: int | np.random.Generator | None = None,
    *,
    restarts: int = 9,
    incpopsize: float = 2.0,
    ftarget: float = -math.inf,
    maxfevals: float = math.inf,
    pool: WorkerPool | None = None,
    **options: Any,
) -> IPOPResult:
    """IPOP-CMA-ES (Auger & Hansen 2005): run CMA-ES; while a run stops on anything but ``ftarget`` or the
    evaluation budget, start a fresh one with ``incpopsize`` times the population, at most ``restarts`` times.

    A larger population smooths a multimodal landscape's global structure (Rastrigin's), at the price of
    more evaluations per generation; doubling finds the population that suffices within a factor of two.
    ``x0`` may be a callable returning a new initial mean for each run (the paper draws it uniformly in the
    initial region). ``seed`` seeds one generator that all runs sample from; ``maxfevals`` bounds the total over
    all runs. ``options`` are the other settings of :class:`CMAES` (tolfun, tolx, covariance, ...).
    """
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 0:
        raise ValueError(f"restarts must be an int >= 0, got {restarts!r}")
    if not incpopsize >= 1:
        raise ValueError(f"incpopsize must be >= 1, got {incpopsize}")
    rng = np.random.default_rng(seed)
    result = IPOPResult(best_x=np.empty(0), best_loss=math.inf, evaluations=0)
    lam = popsize
    for _ in range(restarts + 1):
        start = np.asarray(x0() if callable(x0) else x0, dtype=np.float64)
        lam = lam or default_popsize(start.size)
        budget = maxfevals - result.evaluations
        es = CMAES(start, sigma0, lam, seed=rng, ftarget=ftarget, maxfevals=budget, **options)
        es.optimize(fitness, pool=pool)
        result.evaluations += es.evaluations
        result.popsizes.append(es.popsize)
        result.stops.append(es.stop())
        result.last = es
        if es.best_loss < result.best_loss:
            result.best_loss, result.best_x = es.best_loss, es.best_x.copy()
        if {"ftarget", "maxfevals"} & set(result.stops[-1]):
            break
        # pycma's fmin rounds the same way: popsize0 * incpopsize ** restart.
        lam = round(lam * incpopsize)
    return result


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

    ``options`` are the other settings of :class:`CMAES` (ftarget, maxfevals, tolfun, tolx, tolconditioncov,
    active, covariance); ``pool``, ``callback`` and ``max_generations`` are those of :meth:`CMAES.optimize`.
    """
    es = CMAES(x0, sigma0, popsize=popsize, mu=mu, seed=seed, **options)
    return es.optimize(fitness, pool=pool, callback=callback, max_generations=max_generations)

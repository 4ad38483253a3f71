"""CMA-ES: the (mu/mu_w, lambda)-CMA-ES of Hansen's tutorial with an ask/tell interface and a parallel loop, its
linear-cost diagonal variant (sep-CMA-ES) and IPOP restarts."""

from dreamlab.cmaes.objectives import (
    SCHAFFER_OPTIMUM,
    ellipsoid,
    rastrigin,
    rosenbrock,
    schaffer,
    schaffer_loss,
    sphere,
)
from dreamlab.cmaes.strategy import (
    CMAES,
    COVARIANCES,
    Covariance,
    IPOPResult,
    StrategyParameters,
    default_popsize,
    ipop,
    minimize,
    resolve_mu,
    strategy_parameters,
)

__all__ = [
    "CMAES",
    "COVARIANCES",
    "SCHAFFER_OPTIMUM",
    "Covariance",
    "IPOPResult",
    "StrategyParameters",
    "default_popsize",
    "ellipsoid",
    "ipop",
    "minimize",
    "rastrigin",
    "resolve_mu",
    "rosenbrock",
    "schaffer",
    "schaffer_loss",
    "sphere",
    "strategy_parameters",
]

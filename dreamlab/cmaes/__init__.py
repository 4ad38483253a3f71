"""CMA-ES: the (mu/mu_w, lambda)-CMA-ES of Hansen's tutorial with an ask/tell interface and a parallel loop."""

from dreamlab.cmaes.objectives import SCHAFFER_OPTIMUM, ellipsoid, rosenbrock, schaffer, schaffer_loss, sphere
from dreamlab.cmaes.strategy import (
    CMAES,
    StrategyParameters,
    default_popsize,
    minimize,
    resolve_mu,
    strategy_parameters,
)

__all__ = [
    "CMAES",
    "SCHAFFER_OPTIMUM",
    "StrategyParameters",
    "default_popsize",
    "ellipsoid",
    "minimize",
    "resolve_mu",
    "rosenbrock",
    "schaffer",
    "schaffer_loss",
    "sphere",
    "strategy_parameters",
]

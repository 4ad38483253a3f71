"""Test functions for the CMA-ES benchmark and toy, vectorised over leading axes: (..., n) -> (...)."""

from __future__ import annotations

import numpy as np

# The optimum of the shifted Schaffer toy (Adeel Mufti's CMA-ES post).
SCHAFFER_OPTIMUM = np.array([10.0, 10.0])


def sphere(x: np.ndarray) -> np.ndarray:
    """f(x) = sum_i x_i^2; minimum 0 at the origin."""
    x = np.asarray(x, dtype=np.float64)
    return np.sum(x**2, axis=-1)


def rosenbrock(x: np.ndarray) -> np.ndarray:
    """f(x) = sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2; minimum 0 at (1, ..., 1)."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] < 2:
        raise ValueError(f"rosenbrock needs n >= 2, got n={x.shape[-1]}")
    return np.sum(100.0 * (x[..., 1:] - x[..., :-1] ** 2) ** 2 + (1.0 - x[..., :-1]) ** 2, axis=-1)


def ellipsoid(x: np.ndarray, condition: float = 1e6) -> np.ndarray:
    """f(x) = sum_i condition^((i-1)/(n-1)) x_i^2: a separable quadratic whose Hessian has that condition number."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    scales = condition ** (np.arange(n) / max(n - 1, 1))
    return np.sum(scales * x**2, axis=-1)


def rastrigin(x: np.ndarray) -> np.ndarray:
    """f(x) = 10 n + sum_i x_i^2 - 10 cos(2 pi x_i); minimum 0 at the origin, a local minimum near every integer
    point: the global structure is the sphere's, which a large enough population sees through (IPOP's test case)."""
    x = np.asarray(x, dtype=np.float64)
    return 10.0 * x.shape[-1] + np.sum(x**2 - 10.0 * np.cos(2 * np.pi * x), axis=-1)


def schaffer(x: np.ndarray, optimum: np.ndarray = SCHAFFER_OPTIMUM) -> np.ndarray:
    """The shifted Schaffer function of the post: with (u, v) = x - optimum,

    f = 0.5 + (sin^2(u^2 - v^2) - 0.5) / (1 + 0.001 (u^2 + v^2))^2,

    a ridged landscape with its global minimum f = 0 at ``optimum``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] != 2:
        raise ValueError(f"schaffer is 2-D, got points of dimension {x.shape[-1]}")
    u, v = x[..., 0] - optimum[0], x[..., 1] - optimum[1]
    return 0.5 + (np.sin(u**2 - v**2) ** 2 - 0.5) / (1.0 + 0.001 * (u**2 + v**2)) ** 2


def schaffer_loss(x: np.ndarray) -> np.ndarray:
    """The post's fitness F(s) = -(f(s) - f(10, 10))^2 turned into a loss to minimise: (f(s) - f(10, 10))^2."""
    return (schaffer(x) - schaffer(SCHAFFER_OPTIMUM)) ** 2

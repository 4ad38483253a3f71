"""How hard M's dream is at each temperature, and the temperature at which it is as hard as the game.

Ha & Schmidhuber (2018, section 4.5) raise the temperature tau of M's sampling so that the dream is harder than the
game: a controller evolved in an easy dream learns to exploit M's imperfections, and its dream score overstates
its real one (their Table 2: at tau 1.0 a dream score of 1145 went with a real 868; at 1.15, 918 with 1092). M
differs from run to run, so the tau that makes the dream as hard as the game does too. The calibration here
measures it on a finished run: the dream score of the run's tested controller at each tau, against that
controller's real score from the run's own checks (episodes disjoint from the final test's), and picks the lowest
tau at which the dream is no easier than the game. Whether C trained there does better is an experiment, not a
given: on the committed Doom runs it tested worse (docs/worldmodels.md, "A harder dream").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dreamlab.worldmodels.loading import WorldModel


def dream_returns_by_temperature(
    world: WorldModel, temperatures: Sequence[float], episodes: int, seed: int = 0
) -> dict[float, np.ndarray]:
    """{tau: the run's tested controller's returns in ``episodes`` dream episodes at tau}; the episodes of every tau
    start from the same frames and noise (the same ``seed``)."""
    if not temperatures or any(not tau > 0 for tau in temperatures):
        raise ValueError(f"temperatures must be a non-empty list of positive numbers, got {list(temperatures)}")
    return {float(tau): world.dream_returns(episodes, tau, seed) for tau in temperatures}


def calibrated_temperature(dream_means: dict[float, float], real_score: float) -> float | None:
    """The lowest temperature whose dream mean is at most ``real_score``: the dream no easier than the game.

    None when the dream is easier than the game at every temperature measured (measure higher ones).
    """
    harder = [tau for tau, score in dream_means.items() if score <= real_score]
    return min(harder) if harder else None

"""Learning curves: when a training run is evaluated (the checkpoint schedule) and whether it has converged.

Every training run is evaluated at ``count`` log-spaced checkpoints, the last at its full budget, on the same users
(the first ``evaluation.curve_sessions`` A/B users: common random numbers across checkpoints, agents and seeds). A
run's curve is ``(steps, returns)`` with ``returns[k, i]`` the session return of user ``i`` under the policy of
checkpoint ``k``. A group of runs (one per seed) has converged when the last two checkpoints agree: the paired
bootstrap CI of the relative change from the second-last to the last contains 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mtf_gym.metrics import ConfidenceInterval, paired_lift_ci

__all__ = ["CONVERGED_RULE", "Convergence", "checkpoint_schedule", "convergence", "seed_mean_curve"]

CONVERGED_RULE = ("the last two checkpoints agree: the paired 95% bootstrap CI (over the curve users, returns averaged "
                  "over seeds) of the relative change from the second-last to the last checkpoint contains 0; "
                  "'still improving' if the CI is above 0, 'declining' if below")

Status = Literal["converged", "still improving", "declining", "one checkpoint"]


def checkpoint_schedule(n_steps: int, count: int = 8) -> tuple[int, ...]:
    """``count`` log-spaced step counts ending at ``n_steps`` (each one double the previous for ``count = 8`` and a
    ratio of 2; fewer when small budgets round to the same integer). ``count = 1`` is ``(n_steps,)``.

    >>> checkpoint_schedule(1500, 8)
    (12, 23, 47, 94, 187, 375, 750, 1500)
    """
    if n_steps < 1 or count < 1:
        raise ValueError(f"n_steps and count must be integers >= 1, got {n_steps!r}, {count!r}")
    if count == 1:
        return (int(n_steps),)
    first = max(1.0, n_steps / 2 ** (count - 1))
    points = np.rint(np.geomspace(first, n_steps, count)).astype(int)
    return tuple(int(p) for p in np.unique(np.clip(points, 1, n_steps)))


@dataclass(frozen=True)
class Convergence:
    """Whether a group of runs converged: the verdict and the change from the second-last to the last checkpoint."""

    status: Status
    change: ConfidenceInterval | None
    steps: tuple[int, int] | None


def seed_mean_curve(curves: Sequence[tuple[Sequence[int], np.ndarray]]) -> tuple[tuple[int, ...], np.ndarray]:
    """Average per-user returns over seeds: ``curves`` are ``(steps, returns (K, U))`` of runs with the same
    schedule and users; returns ``(steps, (K, U))``. Runs whose schedule differs from the first are an error."""
    if not curves:
        raise ValueError("curves must hold at least one run")
    steps = tuple(int(s) for s in curves[0][0])
    for other, returns in curves:
        if tuple(int(s) for s in other) != steps or np.shape(returns) != np.shape(curves[0][1]):
            raise ValueError(f"curves must share one schedule and user set, got {steps} and {tuple(other)}")
    return steps, np.mean([np.asarray(r, dtype=np.float64) for _, r in curves], axis=0)


def convergence(steps: Sequence[int], returns: np.ndarray, *, rng: np.random.Generator, confidence: float = 0.95,
                num_resamples: int = 2000) -> Convergence:
    """:data:`CONVERGED_RULE` applied to a seed-averaged curve ``returns (K, U)`` at ``steps (K,)``."""
    returns = np.asarray(returns, dtype=np.float64)
    if returns.ndim != 2 or returns.shape[0] != len(steps):
        raise ValueError(f"returns must have shape (len(steps), users), got {returns.shape} for {len(steps)} steps")
    if len(steps) < 2:
        return Convergence("one checkpoint", None, None)
    change = paired_lift_ci(returns[-1], returns[-2], confidence=confidence, num_resamples=num_resamples, rng=rng)
    status: Status = ("still improving" if change.low > 0 else "declining" if change.high < 0 else "converged")
    return Convergence(status, change, (int(steps[-2]), int(steps[-1])))

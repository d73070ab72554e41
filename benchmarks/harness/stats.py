"""Aggregate statistics over training seeds, from ``rliable`` (Agarwal et al. 2021, "Deep RL at the edge of the
statistical precipice"), and rank agreement of offline estimators with online return.

Scores are *normalised returns*: ``100 * (R - R_random) / (R_reference - R_random)``, so the uniformly random
fusion scores 0 and the reference (the environment's best known fusion; until a headroom ladder exists, the value
given as ``evaluation.reference_return``, else the control arm) scores 100. A score matrix is ``(runs, tasks)``: one
row per training seed; this benchmark has one task (one environment version), so the stratified bootstrap resamples
seeds.

The statistics are rliable's (``rliable.metrics.aggregate_iqm`` and ``probability_of_improvement``); the
stratified bootstrap around them is rliable's ``StratifiedBootstrap`` (runs resampled with replacement within each
task; for two arms, each independently) with percentile intervals, re-implemented in :func:`_stratified_bootstrap`
because ``rliable.library`` cannot run with the pinned stack: it imports ``arch``, whose 7.x releases fail to import
under pandas 3, and it passes ``random_state=`` which ``arch`` 8 no longer accepts. Resampling uses an explicit
``numpy.random.Generator``, so intervals are reproducible without touching NumPy's global state.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "IntervalEstimate",
    "SpearmanEstimate",
    "iqm",
    "normalise",
    "offline_selection_regret",
    "performance_profiles",
    "probability_of_improvement",
    "spearman_with_ci",
]


@dataclass(frozen=True)
class IntervalEstimate:
    """A point estimate with its interval."""

    value: float
    low: float
    high: float


def normalise(returns: np.ndarray | float, random_return: float, reference_return: float) -> np.ndarray:
    """``100 * (returns - random) / (reference - random)``: the random policy scores 0, the reference 100."""
    if not reference_return > random_return:
        raise ValueError(f"reference_return ({reference_return!r}) must exceed random_return ({random_return!r})")
    return 100.0 * (np.asarray(returns, dtype=np.float64) - random_return) / (reference_return - random_return)


def _matrix(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores.reshape(-1, 1) if scores.ndim == 1 else scores
    if scores.ndim != 2 or scores.size == 0 or not np.isfinite(scores).all():
        raise ValueError(f"scores must be a non-empty finite (runs, tasks) matrix, got shape {scores.shape}")
    return scores


def _resample(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One stratified resample: within each task (column), runs drawn with replacement."""
    runs, tasks = scores.shape
    return scores[rng.integers(0, runs, size=(runs, tasks)), np.arange(tasks)]


def _stratified_bootstrap(statistic: Callable[..., Any], matrices: Sequence[np.ndarray], *, reps: int,
                          confidence: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``statistic(*matrices)`` and its percentile interval over ``reps`` stratified resamples (each matrix
    resampled independently); returns ``(point, low, high)`` as arrays of the statistic's shape."""
    if reps < 1 or not 0 < confidence < 1:
        raise ValueError(f"reps must be >= 1 and confidence in (0, 1), got {reps!r}, {confidence!r}")
    rng = np.random.default_rng(seed)
    point = np.asarray(statistic(*matrices), dtype=np.float64)
    boot = np.stack([np.asarray(statistic(*(_resample(m, rng) for m in matrices)), dtype=np.float64)
                     for _ in range(reps)])
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    return point, low, high


def iqm(scores: Mapping[str, np.ndarray], *, reps: int = 2000, confidence: float = 0.95,
        seed: int = 0) -> dict[str, IntervalEstimate]:
    """Interquartile mean (rliable's ``aggregate_iqm``: the 25%-trimmed mean over runs and tasks) of each arm's
    ``(runs, tasks)`` scores, with a stratified-bootstrap interval."""
    from rliable import metrics

    out = {}
    for name, s in scores.items():
        point, low, high = _stratified_bootstrap(metrics.aggregate_iqm, [_matrix(s)], reps=reps,
                                                 confidence=confidence, seed=seed)
        out[name] = IntervalEstimate(float(point), float(low), float(high))
    return out


def probability_of_improvement(x: np.ndarray, y: np.ndarray, *, reps: int = 2000, confidence: float = 0.95,
                               seed: int = 0) -> IntervalEstimate:
    """rliable's probability of improvement, P(X > Y) + P(X = Y) / 2 for a random run of X against a random run of
    Y (per task, averaged over tasks), with a stratified-bootstrap interval (X and Y resampled independently)."""
    from rliable import metrics

    point, low, high = _stratified_bootstrap(metrics.probability_of_improvement, [_matrix(x), _matrix(y)],
                                             reps=reps, confidence=confidence, seed=seed)
    return IntervalEstimate(float(point), float(low), float(high))


def _profile(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    # rliable's run-score distribution: the fraction of runs above tau, averaged over tasks.
    return np.mean(scores[None, :, :] > thresholds[:, None, None], axis=(1, 2))


def performance_profiles(scores: Mapping[str, np.ndarray], thresholds: Sequence[float], *, reps: int = 2000,
                         confidence: float = 0.95,
                         seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Performance profiles (rliable's run-score distributions): per arm, the fraction of runs scoring above each
    threshold, as ``(point (T,), low (T,), high (T,))`` with stratified-bootstrap intervals."""
    taus = np.asarray(thresholds, dtype=np.float64)
    return {name: _stratified_bootstrap(lambda m: _profile(m, taus), [_matrix(s)], reps=reps,
                                        confidence=confidence, seed=seed) for name, s in scores.items()}


@dataclass(frozen=True)
class SpearmanEstimate:
    """Spearman's rank correlation of an offline estimate with online return over ``n`` policies, and its
    percentile bootstrap interval over policies (NaN when ``n < 3`` or a side is constant)."""

    rho: float
    low: float
    high: float
    pvalue: float
    n: int


def spearman_with_ci(offline: Sequence[float], online: Sequence[float], *, confidence: float = 0.95,
                     reps: int = 2000, seed: int = 0) -> SpearmanEstimate:
    """Spearman's rho of ``offline`` vs ``online`` (paired by policy) with a paired bootstrap over policies."""
    from scipy import stats

    x, y = np.asarray(offline, dtype=np.float64), np.asarray(online, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"offline and online must be 1-D and of one length, got {x.shape}, {y.shape}")
    n = len(x)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return SpearmanEstimate(float("nan"), float("nan"), float("nan"), float("nan"), n)
    result = stats.spearmanr(x, y)
    with warnings.catch_warnings():
        # Resamples that repeat one policy n times have constant ranks: rho is undefined there (NaN, dropped).
        warnings.simplefilter("ignore")
        boot = stats.bootstrap((x, y), lambda a, b: stats.spearmanr(a, b).statistic, paired=True,
                               vectorized=False, n_resamples=reps, confidence_level=confidence, method="percentile",
                               random_state=np.random.default_rng(seed))
    low, high = boot.confidence_interval
    return SpearmanEstimate(float(result.statistic), float(low), float(high), float(result.pvalue), n)


def offline_selection_regret(offline: Sequence[float], online: Sequence[float]) -> tuple[int, float, float]:
    """Pick the policy the offline estimate ranks first: its index, its regret in online return (best online
    return minus its own) and that regret relative to the best."""
    x, y = np.asarray(offline, dtype=np.float64), np.asarray(online, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) == 0:
        raise ValueError(f"offline and online must be non-empty, 1-D and of one length, got {x.shape}, {y.shape}")
    picked = int(np.argmax(x))
    regret = float(y.max() - y[picked])
    return picked, regret, regret / abs(float(y.max())) if y.max() != 0 else float("nan")

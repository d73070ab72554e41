"""Every metric the env, the harness and the agents use, implemented once (pure NumPy/SciPy, float64, vectorised).

Contents:

* :func:`weighted_auc` / :func:`weighted_gauc` - the paper's offline MTF-GAUC (Sec. 4.3.1, docs/design.md#evaluation),
  O(n log n) via one ``np.lexsort`` over ``(user, score)`` and segment sums (``np.add.reduceat``).
* :func:`normalise_scores` - min-max to ``[0, 1]`` (globally or per user), as the paper does before GAUC.
* :func:`bootstrap_ci` / :func:`paired_lift_ci` - percentile bootstrap confidence intervals for the simulated A/B
  (per-seed values; arms share user seeds, so lifts use a *paired* bootstrap).
* :func:`rank_agreement` - Spearman / Kendall agreement between an offline metric and online return across policies.
* :func:`exploration_efficiency_analytic` / :func:`fraction_inside_band` - Gaussian vs bounded-uniform exploration
  efficiency (docs/design.md#exploration), analytic and measured.

Conventions: ties count 1/2 in every AUC; invalid input raises ``ValueError`` whose message starts with the
argument's name; a wrong ``rng`` type raises ``TypeError``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mtf_gym.validation import check_int

# SciPy (the ``bench`` extra) is imported inside the two functions that need it (rank_agreement and the Gaussian
# band probability), so ``import mtf_gym`` and ``mtf_gym.evaluation`` work on a core install.

__all__ = [
    "ConfidenceInterval",
    "ExplorationEfficiency",
    "GaucResult",
    "RankAgreement",
    "bootstrap_ci",
    "exploration_efficiency_analytic",
    "fraction_inside_band",
    "normalise_scores",
    "paired_lift_ci",
    "rank_agreement",
    "weighted_auc",
    "weighted_gauc",
]

FloatArray = NDArray[np.float64]

# Bootstrap resampling draws index matrices of shape (chunk, n); chunk is chosen so that chunk * n stays below this
# many elements (8 bytes each for the int64 indices plus 8 for the gathered values: ~64 MiB at most).
_BOOTSTRAP_CHUNK_ELEMENTS = 4_000_000


# ----------------------------------------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------------------------------------
def _as_1d_float(values: ArrayLike, name: str, *, finite: bool = True) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be convertible to a float array: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if finite and not np.isfinite(arr).all():
        raise ValueError(f"{name} must contain only finite values (found NaN or inf)")
    return arr


def _as_labels(labels: ArrayLike, name: str = "labels") -> FloatArray:
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    try:
        out = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric 0/1 values: {exc}") from exc
    if not np.isin(out, (0.0, 1.0)).all():
        bad = out[~np.isin(out, (0.0, 1.0))][:5]
        raise ValueError(f"{name} must contain only 0 and 1, found e.g. {bad.tolist()}")
    return out


def _as_weights(weights: ArrayLike | None, n: int, name: str = "weights") -> FloatArray:
    if weights is None:
        return np.ones(n, dtype=np.float64)
    arr = _as_1d_float(weights, name)
    if (arr < 0).any():
        raise ValueError(f"{name} must be >= 0, found min {arr.min()!r}")
    return arr


def _check_same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        first = next(iter(lengths))
        for name, length in lengths.items():
            if length != lengths[first]:
                raise ValueError(f"{name} must have the same length as {first}: got {length} vs {lengths[first]}")


def _check_confidence(confidence: float) -> float:
    conf = float(confidence)
    if not 0.0 < conf < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    return conf


def _check_num_resamples(num_resamples: int) -> int:
    return check_int("num_resamples", num_resamples, minimum=1)


def _bootstrap_settings(confidence: float, num_resamples: int, rng: object) -> tuple[float, int, np.random.Generator]:
    return _check_confidence(confidence), _check_num_resamples(num_resamples), _check_rng(rng)


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)); got {type(rng).__name__}. "
            "The global NumPy RNG is deliberately not supported."
        )
    return rng


# ----------------------------------------------------------------------------------------------------------------------
# Weighted AUC / GAUC
# ----------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaucResult:
    """Result of :func:`weighted_gauc`.

    Attributes:
        value: the weighted GAUC, ``sum_u W_u * AUC_u / sum_u W_u`` over qualifying users; NaN if none qualifies.
        num_users_used: number of users that entered the average.
        num_users_skipped: number of users left out (one class by weight, or total weight below ``min_weight``).
        per_user_auc: ``(U,)`` weighted AUC of every distinct user, NaN for skipped users.
        per_user_weight: ``(U,)`` total sample weight ``W_u`` of every distinct user (skipped users included).
        users: ``(U,)`` the distinct user ids, in sorted order; aligns with the two per-user arrays.
    """

    value: float
    num_users_used: int
    num_users_skipped: int
    per_user_auc: FloatArray
    per_user_weight: FloatArray
    users: np.ndarray


def _grouped_weighted_auc(
    groups: np.ndarray, labels: FloatArray, scores: FloatArray, weights: FloatArray
) -> tuple[np.ndarray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per-group weighted AUC with one lexsort; returns ``(groups, auc, W_total, W_pos, W_neg)`` per distinct group.

    Samples are sorted by ``(group, score)``. Within a group, consecutive equal scores form a *tie block* ``b`` with
    positive weight ``P_b`` and negative weight ``N_b``. With ``N_<b`` the negative weight of the group's strictly
    lower-scoring blocks, the pairwise numerator is::

        num_g = sum_{b in g} P_b * (N_<b + N_b / 2)            (wins count 1, ties 1/2)
        AUC_g = num_g / (W_pos,g * W_neg,g)                     (NaN where the denominator is 0)

    ``N_<b`` is a segmented cumulative sum over the group's blocks (vectorised, see the code comment).
    """
    n = len(scores)
    if n == 0:
        empty = np.zeros(0, dtype=np.float64)
        return groups[:0], empty, empty, empty, empty
    order = np.lexsort((scores, groups))  # last key is primary: group, then score (ascending)
    g_sorted = groups[order]
    s_sorted = scores[order]
    w_sorted = weights[order]
    pos_w = w_sorted * labels[order]
    neg_w = w_sorted - pos_w

    group_start = np.empty(n, dtype=bool)
    group_start[0] = True
    group_start[1:] = g_sorted[1:] != g_sorted[:-1]
    block_start = group_start.copy()
    block_start[1:] |= s_sorted[1:] != s_sorted[:-1]

    block_idx = np.flatnonzero(block_start)
    p_block = np.add.reduceat(pos_w, block_idx)
    n_block = np.add.reduceat(neg_w, block_idx)
    # For each block: index of its group, and index (in block numbering) of that group's first block.
    block_is_group_start = group_start[block_idx]
    group_first_block = np.flatnonzero(block_is_group_start)
    block_group = np.cumsum(block_is_group_start) - 1

    w_pos = np.add.reduceat(p_block, group_first_block)
    w_neg = np.add.reduceat(n_block, group_first_block)
    # Segmented cumulative sum without a Python loop: subtract the previous group's total at each group's first block
    # so the running sum restarts near 0 (a plain global cumsum minus its value at the group start would lose
    # precision in proportion to the *global* total weight), then remove the small residual drift per group.
    reset = n_block.copy()
    reset[group_first_block[1:]] -= w_neg[:-1]
    cum_neg_excl = np.cumsum(reset) - n_block  # = drift_g + (negative weight of lower blocks of the same group)
    neg_below = cum_neg_excl - cum_neg_excl[group_first_block][block_group]
    neg_below[group_first_block] = 0.0
    np.maximum(neg_below, 0.0, out=neg_below)  # guard against tiny negative rounding
    numerator = np.add.reduceat(p_block * (neg_below + 0.5 * n_block), group_first_block)
    w_total = w_pos + w_neg

    denom = w_pos * w_neg
    auc = np.full(len(group_first_block), np.nan, dtype=np.float64)
    ok = denom > 0
    auc[ok] = np.clip(numerator[ok] / denom[ok], 0.0, 1.0)
    distinct_groups = g_sorted[np.flatnonzero(group_start)]
    return distinct_groups, auc, w_total, w_pos, w_neg


def weighted_auc(labels: ArrayLike, scores: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Weighted ROC AUC: the weighted probability that a positive outscores a negative, ties counting 1/2.

    Formula (``w`` = sample weights, ``P`` = positives, ``N`` = negatives)::

        AUC = sum_{i in P, j in N} w_i * w_j * ([s_i > s_j] + 0.5 * [s_i == s_j])
              / (sum_{i in P} w_i * sum_{j in N} w_j)

    Computed in O(n log n) by sorting on score and summing over tie blocks (see :func:`weighted_gauc`).

    Args:
        labels: ``(n,)`` 0/1 labels (bool, int or float).
        scores: ``(n,)`` finite scores; only their order matters.
        weights: ``(n,)`` finite, non-negative sample weights; ``None`` means all ones.

    Returns:
        The AUC in ``[0, 1]``, or NaN when the total positive or total negative weight is zero (no weighted pair).

    Raises:
        ValueError: naming the offending argument (lengths differ, labels not in {0, 1}, NaN/inf, negative weights).
    """
    y = _as_labels(labels)
    s = _as_1d_float(scores, "scores")
    _check_same_length(labels=y, scores=s)
    w = _as_weights(weights, len(y))
    _check_same_length(labels=y, weights=w)
    groups = np.zeros(len(y), dtype=np.int8)
    _, auc, _, _, _ = _grouped_weighted_auc(groups, y, s, w)
    return float(auc[0]) if len(auc) else float("nan")


def weighted_gauc(
    user_ids: ArrayLike,
    labels: ArrayLike,
    scores: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    min_weight: float = 0.0,
) -> GaucResult:
    """The paper's MTF-GAUC (Sec. 4.3.1; docs/design.md#evaluation): per-user weighted AUC, averaged with user weights.

    For every user ``u`` the weighted AUC ``AUC_u`` is computed over that user's samples exactly as in
    :func:`weighted_auc` (ties inside a user count 1/2; pairs never cross users). Then::

        GAUC = sum_{u in Q} W_u * AUC_u / sum_{u in Q} W_u,        W_u = sum_{i in u} w_i

    **Grouping choice.** The user weight ``W_u`` is the user's *total sample weight* (positives and negatives,
    with the paper's sample weight ``reward + 1``), not the sample count and not the number of pos/neg pairs. The
    paper states a user-weighted average of per-user AUCs without fixing the user weight; total sample weight is
    the choice that reduces to the usual impression-weighted GAUC when all weights are 1.

    A user qualifies (``u in Q``) when its positive *and* negative total weights are both > 0 (so a user with a
    single class, or whose positives or negatives all have zero weight, is skipped: its AUC is undefined) and
    ``W_u >= min_weight``. Zero-weight samples never contribute to any pair but do not disqualify a user.

    Cost: one ``np.lexsort`` over ``(user, score)`` plus segment sums, O(n log n) overall, no Python loop.

    Args:
        user_ids: ``(n,)`` user identifiers (any sortable dtype: ints, strings).
        labels: ``(n,)`` 0/1 labels (the paper: valid view).
        scores: ``(n,)`` finite scores (e.g. the fused score of the policy's action, optionally normalised with
            :func:`normalise_scores`; the AUC does not depend on that monotone rescaling).
        weights: ``(n,)`` finite, non-negative sample weights (the paper: ``reward + 1``); ``None`` means all ones.
        min_weight: users whose total weight is below this are skipped.

    Returns:
        A :class:`GaucResult`; ``value`` is NaN if no user qualifies (including empty input).
    """
    u = np.asarray(user_ids)
    if u.ndim != 1:
        raise ValueError(f"user_ids must be 1-D, got shape {u.shape}")
    y = _as_labels(labels)
    s = _as_1d_float(scores, "scores")
    _check_same_length(user_ids=u, labels=y, scores=s)
    w = _as_weights(weights, len(y))
    _check_same_length(user_ids=u, weights=w)
    min_w = float(min_weight)
    if not np.isfinite(min_w) or min_w < 0:
        raise ValueError(f"min_weight must be a finite number >= 0, got {min_weight!r}")

    try:
        users, auc, w_total, w_pos, w_neg = _grouped_weighted_auc(u, y, s, w)
    except TypeError as exc:  # e.g. an object array mixing str and int ids
        raise ValueError(f"user_ids must be mutually comparable (sortable): {exc}") from exc
    used = (w_pos > 0) & (w_neg > 0) & (w_total >= min_w)
    auc = np.where(used, auc, np.nan)
    num_used = int(used.sum())
    if num_used:
        value = float(np.sum(w_total[used] * auc[used]) / np.sum(w_total[used]))
    else:
        value = float("nan")
    return GaucResult(
        value=value,
        num_users_used=num_used,
        num_users_skipped=int(len(users) - num_used),
        per_user_auc=auc,
        per_user_weight=w_total,
        users=users,
    )


def normalise_scores(scores: ArrayLike, user_ids: ArrayLike | None = None) -> FloatArray:
    """Min-max normalise scores to ``[0, 1]``: ``(s - min) / (max - min)``, globally or per user.

    The paper normalises all final scores of the test set to ``[0, 1]`` at once (``user_ids=None``) before computing
    GAUC. The (G)AUC is invariant to either map (both are increasing within each user), so per-user normalisation
    gives the same GAUC; the pipeline calls this only so that its steps match the paper's description.

    Args:
        scores: ``(n,)`` finite scores.
        user_ids: optional ``(n,)`` user ids; when given, min and max are taken per user.

    Returns:
        ``(n,)`` float64 scores in ``[0, 1]``; a constant group (``max == min``) maps to 0.5.
    """
    s = _as_1d_float(scores, "scores")
    if len(s) == 0:
        return s.copy()
    if user_ids is None:
        lo = np.full_like(s, s.min())
        hi = np.full_like(s, s.max())
    else:
        u = np.asarray(user_ids)
        if u.ndim != 1:
            raise ValueError(f"user_ids must be 1-D, got shape {u.shape}")
        _check_same_length(scores=s, user_ids=u)
        _, inverse = np.unique(u, return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.argsort(inverse, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(inverse[order]) != 0])
        s_sorted = s[order]
        lo = np.minimum.reduceat(s_sorted, starts)[inverse]
        hi = np.maximum.reduceat(s_sorted, starts)[inverse]
    span = hi - lo
    out = np.full_like(s, 0.5)
    nz = span > 0
    out[nz] = np.clip((s[nz] - lo[nz]) / span[nz], 0.0, 1.0)
    return out


# ----------------------------------------------------------------------------------------------------------------------
# Bootstrap confidence intervals
# ----------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConfidenceInterval:
    """A point estimate with a percentile-bootstrap interval.

    Attributes:
        estimate: the statistic on the original sample.
        low, high: the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the bootstrap statistic.
        confidence: nominal coverage, e.g. 0.95.
        n: sample size (number of seeds / sessions / pairs).
    """

    estimate: float
    low: float
    high: float
    confidence: float
    n: int

    @property
    def half_width(self) -> float:
        """``(high - low) / 2``."""
        return 0.5 * (self.high - self.low)

    def contains(self, value: float) -> bool:
        """Whether ``low <= value <= high``."""
        return bool(self.low <= value <= self.high)

    def as_dict(self, scale: float = 1.0) -> dict[str, float]:
        """``{"estimate", "low", "high"}``, each times ``scale`` (100 for percent): the form JSON records keep."""
        return {"estimate": scale * self.estimate, "low": scale * self.low, "high": scale * self.high}


_STATISTICS = ("mean", "median")


def _chunk_size(n: int, num_resamples: int) -> int:
    return max(1, min(num_resamples, _BOOTSTRAP_CHUNK_ELEMENTS // max(n, 1)))


def _resample(num_resamples: int, elements_per_resample: int,
              statistic: Callable[[int], FloatArray]) -> FloatArray:
    """The bootstrap loop, once: ``statistic(size)`` returns ``size`` resampled statistics; it is called in chunks
    so that each chunk's index matrices stay below ~4M elements whatever ``n`` and ``num_resamples`` are."""
    boot = np.empty(num_resamples, dtype=np.float64)
    chunk = _chunk_size(elements_per_resample, num_resamples)
    with np.errstate(divide="ignore", invalid="ignore"):  # a resampled control mean of 0 gives +-inf or NaN
        for start in range(0, num_resamples, chunk):
            stop = min(start + chunk, num_resamples)
            boot[start:stop] = statistic(stop - start)
    return boot


def _interval(boot: FloatArray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    finite = boot[~np.isnan(boot)]
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def bootstrap_ci(
    values: ArrayLike,
    *,
    confidence: float = 0.95,
    num_resamples: int = 10_000,
    rng: np.random.Generator,
    statistic: Literal["mean", "median"] = "mean",
) -> ConfidenceInterval:
    """Percentile bootstrap CI of the mean (or median) of per-seed / per-session values.

    ``B = num_resamples`` resamples of size ``n`` are drawn with replacement (indices ``rng.integers(0, n)``), the
    statistic ``T_b`` is computed on each, and the interval is ``[q_{a/2}(T), q_{1-a/2}(T)]`` with
    ``a = 1 - confidence`` (``np.quantile``, linear interpolation). Resampling is vectorised in chunks of at most
    ~4M indices so memory stays bounded for any ``n`` and ``B``.

    ``n == 1``: there is no sampling variability to resample, so ``low == high == estimate`` (a degenerate
    interval, *not* a claim of certainty) and ``rng`` is not consumed.

    Args:
        values: ``(n,)`` finite values, ``n >= 1``.
        confidence: nominal coverage in ``(0, 1)``.
        num_resamples: number of bootstrap resamples ``B >= 1``.
        rng: an explicit ``numpy.random.Generator`` (no global RNG is ever used).
        statistic: ``"mean"`` or ``"median"``.

    Raises:
        ValueError: naming the argument (empty/non-finite values, bad confidence, num_resamples or statistic).
        TypeError: if ``rng`` is not a ``numpy.random.Generator``.
    """
    x = _as_1d_float(values, "values")
    n = len(x)
    if n == 0:
        raise ValueError("values must contain at least one value")
    conf, num_resamples, rng = _bootstrap_settings(confidence, num_resamples, rng)
    if statistic not in _STATISTICS:
        raise ValueError(f"statistic must be one of {_STATISTICS}, got {statistic!r}")
    reduce = np.mean if statistic == "mean" else np.median
    estimate = float(reduce(x))
    if n == 1:
        return ConfidenceInterval(estimate=estimate, low=estimate, high=estimate, confidence=conf, n=1)

    boot = _resample(num_resamples, n, lambda size: reduce(x[rng.integers(0, n, size=(size, n))], axis=1))
    low, high = _interval(boot, conf)
    return ConfidenceInterval(estimate=estimate, low=low, high=high, confidence=conf, n=n)


def paired_lift_ci(
    treatment: ArrayLike,
    control: ArrayLike,
    *,
    confidence: float = 0.95,
    num_resamples: int = 10_000,
    rng: np.random.Generator,
) -> ConfidenceInterval:
    """Relative lift ``mean(t) / mean(c) - 1`` with a paired percentile bootstrap.

    ``treatment[i]`` and ``control[i]`` must come from the same user seed ``i`` (common random numbers), so each
    resample draws one index vector and applies it to *both* arms::

        L_b = mean(t[idx_b]) / mean(c[idx_b]) - 1

    which keeps the between-seed correlation and gives a much tighter interval than resampling the arms apart.

    A 2-D ``treatment`` ``(K, n)`` holds ``K`` runs of the treatment (e.g. one policy per training seed), each on
    the control's ``n`` users. The bootstrap then has two levels: it resamples runs, then users, applying the
    same user indices to both arms, so the interval carries the variation between runs as well as between users::

        L_b = mean_{k in K_b, i in I_b} t[k, i] / mean_{i in I_b} c[i] - 1

    The estimate is the lift of the average over runs; ``n`` of the result counts users. ``K == 1`` is the 1-D
    case exactly.
    The interval is the ``(1 -/+ confidence) / 2`` quantiles of ``L_b``. A resample whose control mean is exactly 0
    (possible only when control values are zero or of mixed sign) gives ``+-inf`` (kept in the ordering) or NaN
    (dropped). ``n == 1`` gives ``low == high == estimate`` and does not consume ``rng``.

    Args:
        treatment, control: ``(n,)`` finite per-seed values, equal length, ``n >= 1``, ``mean(control) != 0``.
        confidence, num_resamples, rng: as in :func:`bootstrap_ci`.

    Returns:
        A :class:`ConfidenceInterval` whose ``estimate`` is the plain lift on the full sample.
    """
    t_arr = np.asarray(treatment, dtype=np.float64) if np.ndim(treatment) == 2 else None
    if t_arr is not None:
        if t_arr.shape[0] == 0 or not np.isfinite(t_arr).all():
            raise ValueError(f"treatment must hold at least one run of finite values, got shape {t_arr.shape}")
        if t_arr.shape[0] == 1:
            treatment, t_arr = t_arr[0], None
    c = _as_1d_float(control, "control")
    if t_arr is not None:
        if t_arr.shape[1] != len(c):
            raise ValueError(f"treatment must have one column per control value: got {t_arr.shape[1]} vs {len(c)}")
        return _two_level_lift_ci(t_arr, c, *_bootstrap_settings(confidence, num_resamples, rng))
    t = _as_1d_float(treatment, "treatment")
    _check_same_length(treatment=t, control=c)
    n = len(t)
    if n == 0:
        raise ValueError("treatment must contain at least one value")
    conf, num_resamples, rng = _bootstrap_settings(confidence, num_resamples, rng)
    c_mean = float(np.mean(c))
    if c_mean == 0.0:
        raise ValueError("control must have a non-zero mean (relative lift is undefined)")
    estimate = float(np.mean(t)) / c_mean - 1.0
    if n == 1:
        return ConfidenceInterval(estimate=estimate, low=estimate, high=estimate, confidence=conf, n=1)

    def lifts(size: int) -> FloatArray:
        idx = rng.integers(0, n, size=(size, n))  # the same users for both arms
        return t[idx].mean(axis=1) / c[idx].mean(axis=1) - 1.0

    low, high = _interval(_resample(num_resamples, 2 * n, lifts), conf)
    return ConfidenceInterval(estimate=estimate, low=low, high=high, confidence=conf, n=n)


def _two_level_lift_ci(t: FloatArray, c: FloatArray, confidence: float, num_resamples: int,
                       rng: np.random.Generator) -> ConfidenceInterval:
    """:func:`paired_lift_ci` of ``K > 1`` treatment runs ``t`` ``(K, n)``: resample runs, then users."""
    k, n = t.shape
    c_mean = float(np.mean(c))
    if c_mean == 0.0:
        raise ValueError("control must have a non-zero mean (relative lift is undefined)")
    def lifts(size: int) -> FloatArray:
        runs = rng.integers(0, k, size=(size, k))
        users = rng.integers(0, n, size=(size, n))  # the same users for both arms
        return t[runs[:, :, None], users[:, None, :]].mean(axis=(1, 2)) / c[users].mean(axis=1) - 1.0

    low, high = _interval(_resample(num_resamples, k * n, lifts), confidence)
    return ConfidenceInterval(estimate=float(t.mean() / c_mean - 1.0), low=low, high=high, confidence=confidence,
                              n=n)


# ----------------------------------------------------------------------------------------------------------------------
# Rank agreement (offline metric vs online return across policies)
# ----------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RankAgreement:
    """Rank correlation between two per-policy metrics.

    Attributes:
        spearman_rho, spearman_pvalue: ``scipy.stats.spearmanr`` (two-sided).
        kendall_tau, kendall_pvalue: ``scipy.stats.kendalltau`` (tau-b, two-sided).
        n: number of pairs used (pairs with a NaN on either side are dropped).
        reason: ``None`` when the statistics are defined, otherwise why they are NaN
            (fewer than 3 usable pairs, or a constant input).
    """

    spearman_rho: float
    spearman_pvalue: float
    kendall_tau: float
    kendall_pvalue: float
    n: int
    reason: str | None = None


def rank_agreement(x: ArrayLike, y: ArrayLike) -> RankAgreement:
    """Spearman's rho and Kendall's tau-b between ``x`` and ``y`` (e.g. weighted GAUC vs online return per policy).

    Pairs where ``x`` or ``y`` is NaN are dropped first. With fewer than 3 remaining pairs, or when either side is
    constant, every statistic is NaN and ``reason`` says why; no warning is emitted.
    """
    a = _as_1d_float(x, "x", finite=False)
    b = _as_1d_float(y, "y", finite=False)
    _check_same_length(x=a, y=b)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    n = len(a)
    nan = float("nan")
    if n < 3:
        return RankAgreement(nan, nan, nan, nan, n, f"need at least 3 non-NaN pairs, got {n}")
    if np.all(a == a[0]) or np.all(b == b[0]):
        which = "x" if np.all(a == a[0]) else "y"
        return RankAgreement(nan, nan, nan, nan, n, f"{which} is constant; rank correlation is undefined")
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sp = stats.spearmanr(a, b)
        kt = stats.kendalltau(a, b)
    return RankAgreement(
        spearman_rho=float(sp.statistic),
        spearman_pvalue=float(sp.pvalue),
        kendall_tau=float(kt.statistic),
        kendall_pvalue=float(kt.pvalue),
        n=n,
        reason=None,
    )


# ----------------------------------------------------------------------------------------------------------------------
# Exploration efficiency (Gaussian vs bounded-uniform)
# ----------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExplorationEfficiency:
    """Analytic exploration efficiency of Gaussian noise relative to bounded-uniform noise.

    Attributes:
        per_dim_probability: ``(A,)`` ``P(lower_d <= N(0, sigma_d^2) <= upper_d)`` per dimension.
        joint_probability: product over dimensions (noise is independent across dimensions).
        efficiency_ratio: ``1 / joint_probability``: bounded-uniform noise puts all its mass in the band, so at
            equal numbers of samples it places this many times more samples inside the band (inf if joint is 0).
        action_dim: ``A``.
    """

    per_dim_probability: FloatArray
    joint_probability: float
    efficiency_ratio: float
    action_dim: int


def _gaussian_interval_probability(sigma: FloatArray, lower: FloatArray, upper: FloatArray) -> FloatArray:
    """``Phi(upper/sigma) - Phi(lower/sigma)``, using the upper tail when the interval is right of 0 (accuracy)."""
    from scipy import special

    zl, zu = lower / sigma, upper / sigma
    right = zl > 0
    return np.where(right, special.ndtr(-zl) - special.ndtr(-zu), special.ndtr(zu) - special.ndtr(zl))


def exploration_efficiency_analytic(
    sigma: ArrayLike, lower: ArrayLike, upper: ArrayLike, action_dim: int
) -> ExplorationEfficiency:
    """Probability that Gaussian exploration noise lands inside the bounded-uniform band, and the efficiency ratio.

    Per dimension ``d`` with noise ``eps_d ~ N(0, sigma_d^2)``::

        p_d   = Phi(upper_d / sigma_d) - Phi(lower_d / sigma_d)
        joint = prod_d p_d
        ratio = 1 / joint

    docs/design.md#exploration: ``sigma = 0.2``, band ``+-0.15``: ``p = P(|Z| < 0.75) = 0.547`` and, over 10 dims,
    ``joint = 0.00239``, ``ratio ~ 419`` (the paper's "about 2^10" is a loose bound). The analysis ignores the
    clipping of actions to ``[-1, 1]`` (exact whenever the band around the centre lies inside the action box);
    measure the clipped reality with :func:`fraction_inside_band`.

    Args:
        sigma: noise standard deviation, scalar or ``(action_dim,)``, finite and > 0.
        lower, upper: band offsets relative to the centre, scalars or ``(action_dim,)``, ``lower <= upper``.
        action_dim: number of action dimensions ``A >= 1``.
    """
    if isinstance(action_dim, bool) or int(action_dim) != action_dim or action_dim < 1:
        raise ValueError(f"action_dim must be a positive integer, got {action_dim!r}")
    a_dim = int(action_dim)

    def per_dim(value: ArrayLike, name: str) -> FloatArray:
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != a_dim):
            raise ValueError(f"{name} must be a scalar or have shape ({a_dim},), got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} must be finite")
        return np.broadcast_to(arr, (a_dim,)).astype(np.float64)

    sig = per_dim(sigma, "sigma")
    lo = per_dim(lower, "lower")
    hi = per_dim(upper, "upper")
    if (sig <= 0).any():
        raise ValueError(f"sigma must be > 0, got {np.asarray(sigma).tolist()}")
    if (lo > hi).any():
        raise ValueError("lower must be <= upper in every dimension")
    p = _gaussian_interval_probability(sig, lo, hi)
    joint = float(np.prod(p))
    ratio = float("inf") if joint == 0.0 else 1.0 / joint
    return ExplorationEfficiency(per_dim_probability=p, joint_probability=joint, efficiency_ratio=ratio,
                                 action_dim=a_dim)


def fraction_inside_band(
    offsets: ArrayLike, lower: ArrayLike, upper: ArrayLike, *, atol: float = 1e-9
) -> tuple[FloatArray, float]:
    """Measured fraction of exploration offsets inside the band, per dimension and jointly.

    With ``offsets = action - centre`` of shape ``(N, A)`` and inclusive bounds (widened by ``atol`` so that a
    bounded-uniform sample landing on its bound after float rounding still counts)::

        inside_{n,d} = lower_{n,d} - atol <= offsets_{n,d} <= upper_{n,d} + atol
        per_dim_d    = mean_n inside_{n,d}
        joint        = mean_n prod_d inside_{n,d}

    Args:
        offsets: ``(N, A)`` finite offsets, ``N >= 1``.
        lower, upper: scalars, ``(A,)`` or ``(N, A)`` (per-sample bounds, e.g. logged per transition).
        atol: non-negative tolerance added to both bounds.

    Returns:
        ``(per_dim, joint)``: a ``(A,)`` float64 array and a float.
    """
    off = np.asarray(offsets, dtype=np.float64)
    if off.ndim != 2:
        raise ValueError(f"offsets must have shape (N, A), got shape {off.shape}")
    if off.shape[0] == 0:
        raise ValueError("offsets must contain at least one row")
    if not np.isfinite(off).all():
        raise ValueError("offsets must contain only finite values")
    tol = float(atol)
    if not np.isfinite(tol) or tol < 0:
        raise ValueError(f"atol must be a finite number >= 0, got {atol!r}")

    def bound(value: ArrayLike, name: str) -> FloatArray:
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape not in ((), (off.shape[1],), off.shape):
            raise ValueError(f"{name} must be a scalar or have shape ({off.shape[1]},) or {off.shape}, got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} must be finite")
        return arr

    lo = bound(lower, "lower")
    hi = bound(upper, "upper")
    if np.any(lo > hi):
        raise ValueError("lower must be <= upper everywhere")
    inside = (off >= lo - tol) & (off <= hi + tol)
    return inside.mean(axis=0), float(inside.all(axis=1).mean())

"""The multi-task fusion formula: the one place the env, the harness and the agents take it from.

A ranker predicts ``T`` behaviour scores per candidate. The fusion parameters turn them into one score::

    final_score = prod_i (pred_i + bias_i) ** power_i          (paper, Eq. 1)

An RL action is a vector in ``[-1, 1]^(2T)``: the first ``T`` entries are the powers, the last ``T`` the biases,
powers mapped affinely onto a documented range and biases log-uniformly (:class:`FusionRanges`). Ranking uses
the logarithm of the product, ``sum_i power_i * log(pred_i + bias_i)``, which orders candidates identically and
cannot overflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

__all__ = [
    "FusionRanges",
    "action_to_fusion_params",
    "fused_log_scores",
    "fused_scores",
    "fusion_params_to_action",
    "validate_actions",
]

# Predictions are clipped here before the log so that a zero bias never produces log(0).
PREDICTION_FLOOR = 1e-4
_FLOOR = np.float32(PREDICTION_FLOOR)
_ONE = np.float32(1.0)
# Layout of FusionRanges.kernel_params().
_P_POWER_LOW, _P_POWER_SPAN, _P_BIAS_LOW, _P_BIAS_HIGH, _P_LOG_LOW, _P_BIAS_SPAN, _P_LOG_SCALE = range(7)


@dataclass(frozen=True)
class FusionRanges:
    """Ranges the action's ``[-1, 1]`` entries are mapped onto.

    Attributes:
        power_low, power_high: power range. Negative powers let a fusion *penalise* a task, so random fusion
            can rank worse than the ranker's scores would suggest (as random fusion weights do in production).
        bias_low, bias_high: bias range. A small bias makes the fused score sensitive to relative differences in
            small predictions (likes, follows); a large one flattens that task's influence.
        bias_scale: ``"log"`` (default) maps the action onto ``log(bias)`` uniformly, because a bias acts relative
            to the size of the predictions it is added to (0.01 matters for a 2% like rate, not for a 45% valid-view
            rate); ``"linear"`` maps it onto ``bias`` directly. ``"log"`` needs ``bias_low > 0``.
    """

    power_low: float = -2.0
    power_high: float = 2.0
    bias_low: float = 1e-3
    bias_high: float = 1.0
    bias_scale: str = "log"

    def __post_init__(self) -> None:
        for name in ("power_low", "power_high", "bias_low", "bias_high"):
            value = getattr(self, name)
            if not np.isfinite(value):
                raise ValueError(f"FusionRanges.{name} must be finite, got {value!r}")
        if not self.power_low < self.power_high:
            raise ValueError(
                f"FusionRanges needs power_low < power_high, got power_low={self.power_low}, "
                f"power_high={self.power_high}"
            )
        if not 0.0 <= self.bias_low < self.bias_high:
            raise ValueError(
                f"FusionRanges needs 0 <= bias_low < bias_high, got bias_low={self.bias_low}, "
                f"bias_high={self.bias_high}"
            )
        if self.bias_scale not in ("log", "linear"):
            raise ValueError(f"FusionRanges.bias_scale must be 'log' or 'linear', got {self.bias_scale!r}")
        if self.bias_scale == "log" and self.bias_low <= 0.0:
            raise ValueError(f"FusionRanges with bias_scale='log' needs bias_low > 0, got bias_low={self.bias_low}")

    def kernel_params(self) -> np.ndarray:
        """The ranges as the float32 vector the compiled fusion kernel reads (:func:`fusion_params_row`)."""
        half = np.float32(0.5)
        log_scale = self.bias_scale == "log"
        if log_scale:
            log_low = np.float32(np.log(self.bias_low))
            bias_span = np.float32(np.log(self.bias_high) - np.log(self.bias_low)) * half
        else:
            log_low = np.float32(0.0)
            bias_span = np.float32(self.bias_high - self.bias_low) * half
        power_span = np.float32(self.power_high - self.power_low) * half
        return np.array([self.power_low, power_span, self.bias_low, self.bias_high, log_low, bias_span,
                         float(log_scale)], dtype=np.float32)


def validate_actions(actions: np.ndarray, action_dim: int, *, batch: bool, name: str = "action") -> np.ndarray:
    """Return ``actions`` as float32 of shape ``(action_dim,)`` or ``(N, action_dim)``; raise on NaN/inf or bad shape.

    Out-of-range values are *not* clipped here: the env clips and counts them (see ``info["action_clipped"]``).
    """
    arr = np.asarray(actions, dtype=np.float32)
    expected = f"(num_envs, {action_dim})" if batch else f"({action_dim},)"
    if (batch and (arr.ndim != 2 or arr.shape[1] != action_dim)) or (not batch and arr.shape != (action_dim,)):
        raise ValueError(f"{name} must have shape {expected} (powers then biases), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf; every entry must be a finite number in [-1, 1]")
    return arr


def action_to_fusion_params(
    actions: np.ndarray, ranges: FusionRanges = FusionRanges()
) -> tuple[np.ndarray, np.ndarray]:
    """Map actions in ``[-1, 1]^(2T)`` (shape ``(..., 2T)``) to ``(powers, biases)``, each of shape ``(..., T)``.

    Values outside ``[-1, 1]`` are clipped first, so the result always lies inside the documented ranges.
    """
    arr = np.asarray(actions, dtype=np.float32)
    if arr.ndim == 0 or arr.shape[-1] % 2:
        raise ValueError(f"actions' last dimension must be 2*T (powers then biases), got shape {arr.shape}")
    num_tasks = arr.shape[-1] // 2
    flat = np.ascontiguousarray(arr.reshape(-1, 2 * num_tasks))
    powers = np.empty((flat.shape[0], num_tasks), np.float32)
    biases = np.empty((flat.shape[0], num_tasks), np.float32)
    params = ranges.kernel_params()
    _fusion_params_rows(flat, params, powers, biases)
    shape = (*arr.shape[:-1], num_tasks)
    return powers.reshape(shape), biases.reshape(shape)


@njit(cache=True)
def _fusion_params_rows(actions: np.ndarray, params: np.ndarray, powers: np.ndarray, biases: np.ndarray) -> None:
    for i in range(actions.shape[0]):
        fusion_params_row(actions[i], params, powers[i], biases[i])


@njit(cache=True)
def fusion_params_row(action: np.ndarray, params: np.ndarray, powers: np.ndarray, biases: np.ndarray) -> int:
    """One action ``(2T,)`` -> ``powers``, ``biases`` ``(T,)`` in place; returns how many entries were clipped.

    ``params`` is :meth:`FusionRanges.kernel_params`. The simulator's kernel and :func:`action_to_fusion_params`
    both call this, so the mapping exists once.
    """
    num_tasks = powers.shape[0]
    clipped = 0
    for j in range(2 * num_tasks):
        a = action[j]
        if a > _ONE:
            a = _ONE
            clipped += 1
        elif a < -_ONE:
            a = -_ONE
            clipped += 1
        shifted = a + _ONE
        if j < num_tasks:
            powers[j] = params[_P_POWER_LOW] + shifted * params[_P_POWER_SPAN]
        elif params[_P_LOG_SCALE] != 0:
            # Clipped: float32 exp can land an ulp outside the documented range.
            b = np.float32(math.exp(params[_P_LOG_LOW] + shifted * params[_P_BIAS_SPAN]))
            biases[j - num_tasks] = min(max(b, params[_P_BIAS_LOW]), params[_P_BIAS_HIGH])
        else:
            biases[j - num_tasks] = params[_P_BIAS_LOW] + shifted * params[_P_BIAS_SPAN]
    return clipped


def fusion_params_to_action(
    powers: np.ndarray, biases: np.ndarray, ranges: FusionRanges = FusionRanges()
) -> np.ndarray:
    """Inverse of :func:`action_to_fusion_params`; raises if a power or bias lies outside its range."""
    powers = np.asarray(powers, dtype=np.float64)
    biases = np.asarray(biases, dtype=np.float64)
    if powers.shape != biases.shape:
        raise ValueError(f"powers and biases must have the same shape, got {powers.shape} and {biases.shape}")
    tol = 1e-6
    if (powers < ranges.power_low - tol).any() or (powers > ranges.power_high + tol).any():
        raise ValueError(f"powers outside their range [{ranges.power_low}, {ranges.power_high}]: {powers}")
    if (biases < ranges.bias_low - tol).any() or (biases > ranges.bias_high + tol).any():
        raise ValueError(f"biases outside their range [{ranges.bias_low}, {ranges.bias_high}]: {biases}")
    a_pow = 2.0 * (powers - ranges.power_low) / (ranges.power_high - ranges.power_low) - 1.0
    if ranges.bias_scale == "log":
        log_low, log_high = np.log(ranges.bias_low), np.log(ranges.bias_high)
        a_bias = 2.0 * (np.log(np.maximum(biases, ranges.bias_low)) - log_low) / (log_high - log_low) - 1.0
    else:
        a_bias = 2.0 * (biases - ranges.bias_low) / (ranges.bias_high - ranges.bias_low) - 1.0
    return np.clip(np.concatenate([a_pow, a_bias], axis=-1), -1.0, 1.0).astype(np.float32)


def fused_log_scores(
    predictions: np.ndarray,
    powers: np.ndarray,
    biases: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Log of the fused score, ``sum_i power_i * log(max(pred_i, floor) + bias_i)``.

    Args:
        predictions: ``(N, C, T)`` predicted scores in ``[0, 1]``.
        powers, biases: ``(N, T)`` fusion parameters (one set per user/request).
        out: optional ``(N, C)`` float32 buffer for the result.

    Returns:
        ``(N, C)`` log-scores. Ranking by them equals ranking by :func:`fused_scores`.
    """
    predictions = np.ascontiguousarray(predictions, dtype=np.float32)
    powers = np.ascontiguousarray(powers, dtype=np.float32)
    biases = np.ascontiguousarray(biases, dtype=np.float32)
    n, c, t = predictions.shape
    if powers.shape != (n, t) or biases.shape != (n, t):
        raise ValueError(f"powers and biases must have shape {(n, t)}, got {powers.shape} and {biases.shape}")
    if out is None:
        out = np.empty((n, c), np.float32)
    _fused_log_scores(predictions, powers, biases, out)
    return out


@njit(cache=True)
def _fused_log_scores(predictions: np.ndarray, powers: np.ndarray, biases: np.ndarray, out: np.ndarray) -> None:
    for i in range(predictions.shape[0]):
        for j in range(predictions.shape[1]):
            out[i, j] = fused_log_score(predictions[i], j, powers[i], biases[i])


@njit(cache=True, inline="always")
def fused_log_score(predictions: np.ndarray, candidate: int, powers: np.ndarray, biases: np.ndarray) -> np.float32:
    """Log fused score of ``predictions[candidate]`` (``predictions``: ``(C, T)``): the formula every caller shares.

    Takes the 2-D array and an index rather than a row view: a view per candidate costs reference counting.
    """
    score = np.float32(0.0)
    for t in range(predictions.shape[1]):
        score += powers[t] * np.float32(math.log(max(predictions[candidate, t], _FLOOR) + biases[t]))
    return score


@njit(cache=True, inline="always")
def fused_top_k(predictions: np.ndarray, powers: np.ndarray, biases: np.ndarray, scores: np.ndarray,
                order: np.ndarray) -> None:
    """The page the fusion picks: ``scores[j]`` the log fused score of candidate ``j`` (``predictions``: ``(C, T)``),
    ``order`` (``(K,)``) the ``K`` best candidates, best first (ties: the earlier candidate first).

    Insertion into a sorted page (K is small); allocates nothing, so it runs inside the simulators' kernels.
    """
    page = order.shape[0]
    filled = 0
    for j in range(predictions.shape[0]):
        s = fused_log_score(predictions, j, powers, biases)
        scores[j] = s
        if filled == page and s <= scores[order[page - 1]]:
            continue
        pos = filled if filled < page else page - 1
        while pos > 0 and scores[order[pos - 1]] < s:
            order[pos] = order[pos - 1]
            pos -= 1
        order[pos] = j
        if filled < page:
            filled += 1


def fused_scores(predictions: np.ndarray, powers: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """The paper's Eq. 1 literally, ``prod_i (pred_i + bias_i) ** power_i`` (float64, for tests and reports)."""
    preds = np.maximum(np.asarray(predictions, dtype=np.float64), PREDICTION_FLOOR)
    return np.prod((preds + biases[:, None, :]) ** powers[:, None, :], axis=2)

"""The multi-task fusion formula: the one place the env, the harness and the agents take it from.

A ranker predicts ``T`` behaviour scores per candidate. The fusion parameters turn them into one score::

    final_score = prod_i (pred_i + bias_i) ** power_i          (paper, Eq. 1)

An RL action is a vector in ``[-1, 1]^(2T)``: the first ``T`` entries are the powers, the last ``T`` the biases,
powers mapped affinely onto a documented range and biases log-uniformly (:class:`FusionRanges`). Ranking uses
the logarithm of the product, ``sum_i power_i * log(pred_i + bias_i)``, which orders candidates identically and
cannot overflow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    arr = np.clip(np.asarray(actions, dtype=np.float32), -1.0, 1.0)
    if arr.shape[-1] % 2:
        raise ValueError(f"actions' last dimension must be 2*T (powers then biases), got {arr.shape[-1]}")
    num_tasks = arr.shape[-1] // 2
    half = np.float32(0.5)
    power_span = np.float32(ranges.power_high - ranges.power_low) * half
    powers = ranges.power_low + (arr[..., :num_tasks] + 1.0) * power_span
    if ranges.bias_scale == "log":
        log_low = np.float32(np.log(ranges.bias_low))
        log_span = np.float32(np.log(ranges.bias_high) - np.log(ranges.bias_low)) * half
        # Clipped: float32 exp can land an ulp outside the documented range.
        biases = np.clip(np.exp(log_low + (arr[..., num_tasks:] + 1.0) * log_span), ranges.bias_low, ranges.bias_high)
    else:
        bias_span = np.float32(ranges.bias_high - ranges.bias_low) * half
        biases = ranges.bias_low + (arr[..., num_tasks:] + 1.0) * bias_span
    return powers.astype(np.float32, copy=False), biases.astype(np.float32, copy=False)


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
    workspace: np.ndarray | None = None,
) -> np.ndarray:
    """Log of the fused score, ``sum_i power_i * log(max(pred_i, floor) + bias_i)``.

    Args:
        predictions: ``(N, C, T)`` predicted scores in ``[0, 1]``.
        powers, biases: ``(N, T)`` fusion parameters (one set per user/request).
        out: optional ``(N, C)`` float32 buffer for the result (the env passes one to avoid allocation).
        workspace: optional ``(N, C, T)`` float32 scratch buffer.

    Returns:
        ``(N, C)`` log-scores. Ranking by them equals ranking by :func:`fused_scores`.
    """
    if workspace is None:
        workspace = np.empty(predictions.shape, dtype=np.float32)
    np.maximum(predictions, PREDICTION_FLOOR, out=workspace)
    workspace += biases[:, None, :]
    np.log(workspace, out=workspace)
    # A batched (C, T) @ (T, 1) product: much faster than a sum over the short task axis.
    result = np.matmul(workspace, powers[:, :, None].astype(workspace.dtype, copy=False))[:, :, 0]
    if out is None:
        return result
    out[...] = result
    return out


def fused_scores(predictions: np.ndarray, powers: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """The paper's Eq. 1 literally, ``prod_i (pred_i + bias_i) ** power_i`` (float64, for tests and reports)."""
    preds = np.maximum(np.asarray(predictions, dtype=np.float64), PREDICTION_FLOOR)
    return np.prod((preds + biases[:, None, :]) ** powers[:, None, :], axis=2)

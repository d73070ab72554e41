"""Reference policies: the documented production baseline, constant fusions and random fusion.

A policy here is any callable ``policy(observations) -> actions`` on a batch: ``(N, obs_dim) -> (N, 2T)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from mtf_gym.config import PREDICTABLE_TASKS, MTFSessionConfig
from mtf_gym.fusion import fusion_params_to_action
from mtf_gym.sim.config import MTFSessionV1Config

__all__ = ["CONTROL_FUSION_V1", "BaselineFusion", "BaselinePolicy", "BatchPolicy", "ConstantPolicy",
           "RandomFusionPolicy"]

# The MTFSession-v1 production control: the constant fusion found by a converged CMA-ES on the session return of
# training users (never the evaluation users). Regenerate with ``python -m mtf_bench.tune_control`` (it prints
# this block); the check that an independent search on other users does not beat it by more than 1% is the "best
# constant" rung of ``python -m mtf_bench.headroom``.
# Powers then biases, per task of the default ranker_tasks (valid_view, watch_time, long_view, like, follow).
CONTROL_FUSION_V1: dict[str, tuple[float, float]] = {
    "valid_view": (1.058, 1.0),
    "watch_time": (-2.0, 1.0),
    "long_view": (0.336, 0.7379),
    "like": (1.104, 0.001138),
    "follow": (1.713, 0.001),
}


class BatchPolicy(Protocol):
    def __call__(self, observations: np.ndarray) -> np.ndarray: ...


def _per_task(values: dict[str, float]) -> dict[str, float]:
    return dict(values)


@dataclass(frozen=True)
class BaselineFusion:
    """The production fusion before RL: hand-tuned powers and biases per task.

    It weights valid views most (what a team optimising consumption tunes first), long views, likes and watch time
    a little less, and the rarer engagements lightly, with small biases on the rare-event tasks so their small
    predictions still separate items. It is reasonable but not optimal: a better constant fusion and better
    state-dependent fusions exist (``benchmarks/env_properties.py`` measures by how much).
    """

    powers: dict[str, float] = field(
        default_factory=lambda: _per_task(
            {"valid_view": 1.0, "watch_time": 0.6, "long_view": 0.8, "like": 0.8, "comment": 0.4, "follow": 0.5,
             "share": 0.4}
        )
    )
    biases: dict[str, float] = field(
        default_factory=lambda: _per_task(
            {"valid_view": 0.2, "watch_time": 0.2, "long_view": 0.2, "like": 0.02, "comment": 0.02, "follow": 0.02,
             "share": 0.02}
        )
    )

    def __post_init__(self) -> None:
        for name in ("powers", "biases"):
            missing = sorted(set(PREDICTABLE_TASKS) - set(getattr(self, name)))
            if missing:
                raise ValueError(f"BaselineFusion.{name} must give a value for every task; missing {missing}")


def control_fusion_v1() -> BaselineFusion:
    """:data:`CONTROL_FUSION_V1` as a :class:`BaselineFusion` (tasks it does not tune keep v0's hand-set values)."""
    base = BaselineFusion()
    return BaselineFusion(
        powers={**base.powers, **{t: p for t, (p, _) in CONTROL_FUSION_V1.items()}},
        biases={**base.biases, **{t: b for t, (_, b) in CONTROL_FUSION_V1.items()}},
    )


class ConstantPolicy:
    """The same action in every state (used to search for the best constant fusion)."""

    def __init__(self, action: np.ndarray) -> None:
        self.action = np.asarray(action, dtype=np.float32)
        if self.action.ndim != 1:
            raise ValueError(f"action must be 1-D, got shape {self.action.shape}")

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        obs = np.asarray(observations)
        if obs.ndim == 1:
            return self.action.copy()
        return np.broadcast_to(self.action, (obs.shape[0], self.action.shape[0])).copy()


class BaselinePolicy(ConstantPolicy):
    """The documented baseline policy ``mu_bp``: deterministic, the same fusion in every state.

    It is the centre of exploration for the paper's datasets and the control arm of every simulated A/B test. For
    ``MTFSession-v1`` (an :class:`~mtf_gym.sim.config.MTFSessionV1Config`) it is the tuned production control
    :data:`CONTROL_FUSION_V1`; for v0 the hand-set :class:`BaselineFusion`. Pass the env's config
    (``BaselinePolicy(env.unwrapped.config)``): without one it is v0's, whose config is the default here.
    """

    def __init__(self, config: MTFSessionConfig | MTFSessionV1Config | None = None,
                 fusion: BaselineFusion | None = None) -> None:
        self.config = config or MTFSessionConfig()
        if fusion is None:
            fusion = control_fusion_v1() if isinstance(self.config, MTFSessionV1Config) else BaselineFusion()
        self.fusion = fusion
        tasks = self.config.ranker_tasks
        powers = np.array([self.fusion.powers[t] for t in tasks])
        biases = np.array([self.fusion.biases[t] for t in tasks])
        super().__init__(fusion_params_to_action(powers, biases, self.config.fusion))


class RandomFusionPolicy:
    """Uniformly random fusion parameters at every request: ``a ~ U[-1, 1]^(2T)``."""

    def __init__(self, action_dim: int, rng: np.random.Generator) -> None:
        self.action_dim = action_dim
        self.rng = rng

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        obs = np.asarray(observations)
        n = 1 if obs.ndim == 1 else obs.shape[0]
        actions = self.rng.uniform(-1.0, 1.0, size=(n, self.action_dim)).astype(np.float32)
        return actions[0] if obs.ndim == 1 else actions

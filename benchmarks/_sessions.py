"""The benchmarks' session helpers; the rollout loop itself is :class:`mtf_gym.evaluation.SessionRunner`.

Session ``i`` of a run with ``seed`` is the user of ``gym.make("MTFSession-v0").reset(seed=seed + i)``, so two
policies run with the same ``seed`` meet the same users (common random numbers): per-session values are paired and
lifts can use :func:`mtf_gym.metrics.paired_lift_ci`.
"""

from __future__ import annotations

import numpy as np

from mtf_gym import MTFSessionConfig
from mtf_gym.envs.vector import MTFSessionVectorEnv
from mtf_gym.evaluation import CLICKBAIT_THRESHOLD, SessionOutcomes, SessionRunner
from mtf_gym.policies import BatchPolicy

__all__ = ["CLICKBAIT_THRESHOLD", "SessionOutcomes", "SessionRunner", "run_sessions", "user_segments"]


def run_sessions(
    policy: BatchPolicy, num_sessions: int, seed: int, config: MTFSessionConfig | None = None
) -> SessionOutcomes:
    """Run exactly ``num_sessions`` complete sessions (one per sub-env, user seeds ``seed + i``)."""
    return SessionRunner(num_sessions, config).run(policy, seed)


def user_segments(first_seed: int, count: int, config: MTFSessionConfig | None = None) -> np.ndarray:
    """Segment of the users of seeds ``first_seed .. first_seed + count - 1`` (drawn at reset, before any step)."""
    env = MTFSessionVectorEnv(num_envs=count, config=config)
    env.reset(seed=first_seed)
    return env.sim.segment.copy()

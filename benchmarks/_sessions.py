"""Run exactly N complete ``MTFSession-v0`` sessions and keep per-session totals (the benchmarks' shared runner).

Session ``i`` of a run with ``seed`` is the user of ``gym.make("MTFSession-v0").reset(seed=seed + i)``, so two
policies run with the same ``seed`` meet the same users (common random numbers): per-session values are paired and
lifts can use :func:`mtf_gym.metrics.paired_lift_ci`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mtf_gym import RESPONSE_FIELDS, MTFSessionConfig
from mtf_gym.envs.vector import MTFSessionVectorEnv
from mtf_gym.policies import BatchPolicy

__all__ = ["CLICKBAIT_THRESHOLD", "SessionRunner", "SessionStats", "run_sessions", "user_segments"]

# Catalogue clickbait scores are U(0.5, 1) for clickbait items and U(0, 0.15) otherwise (mtf_gym/catalogue.py).
CLICKBAIT_THRESHOLD = 0.5


@dataclass
class SessionStats:
    """Per-session totals of one run; every array is indexed by session (= user seed offset).

    ``responses`` and ``clickbait_shown`` need ``item_logs=True``; they are ``None`` otherwise.
    """

    returns: np.ndarray  # (S,) undiscounted session return
    requests: np.ndarray  # (S,) requests made before the session ended (or before ``max_requests`` of the run)
    first_rewards: np.ndarray  # (S,) reward of the first request
    segments: np.ndarray  # (S,) user segment index
    satisfaction: np.ndarray  # (S,) mean latent satisfaction after each request
    page_size: int
    responses: np.ndarray | None = None  # (S, len(RESPONSE_FIELDS)) summed over the session's shown items
    clickbait_shown: np.ndarray | None = None  # (S,) shown items with clickbait >= CLICKBAIT_THRESHOLD

    @property
    def exposures(self) -> int:
        return int(self.requests.sum() * self.page_size)

    @property
    def response_totals(self) -> np.ndarray:
        """``(len(RESPONSE_FIELDS),)`` totals over every shown item of the run."""
        return self._logged("responses").sum(axis=0)

    def per_session(self, name: str) -> np.ndarray:
        """``(S,)`` session totals of one response field (e.g. ``"valid_view"``, ``"watch_time_s"``)."""
        return self._logged("responses")[:, RESPONSE_FIELDS.index(name)]

    def rate(self, name: str) -> float:
        """Pooled rate per exposure of one response field."""
        return float(self.per_session(name).sum() / self.exposures)

    def _logged(self, what: str) -> np.ndarray:
        value = getattr(self, what)
        if value is None:
            raise ValueError(f"SessionStats.{what} needs a run with MTFSessionConfig(item_logs=True)")
        return value


class SessionRunner:
    """Reuses one vector env of ``num_sessions`` sub-envs (constructing it costs more than resetting it)."""

    def __init__(self, num_sessions: int, config: MTFSessionConfig | None = None) -> None:
        self.env = MTFSessionVectorEnv(num_envs=num_sessions, config=config)
        self.config = self.env.config
        self.num_sessions = num_sessions
        self._clickbait = self.env.sim.catalogue.clickbait >= CLICKBAIT_THRESHOLD

    def run(self, policy: BatchPolicy, seed: int | Sequence[int], max_requests: int | None = None) -> SessionStats:
        """Run every session to its end, or for at most ``max_requests`` requests (``1``: first request only).

        ``seed``: user seeds ``seed + i``, or one seed per session (e.g. users picked by segment).
        """
        env, n = self.env, self.num_sessions
        logs = self.config.item_logs
        obs, _ = env.reset(seed=seed if isinstance(seed, int) else [int(s) for s in seed])
        segments = env.sim.segment.copy()
        alive = np.ones(n, dtype=bool)
        returns = np.zeros(n)
        requests = np.zeros(n, dtype=np.int64)
        satisfaction = np.zeros(n)
        first = None
        responses = np.zeros((n, len(RESPONSE_FIELDS))) if logs else None
        clickbait = np.zeros(n) if logs else None
        limit = max_requests if max_requests is not None else self.config.max_requests
        # Rows that ended are stepped once more by the env's autoreset; ``alive`` masks them out of every total.
        while alive.any() and int(requests.max()) < limit:
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            if first is None:
                first = reward.astype(np.float64)
            returns[alive] += reward[alive]
            requests[alive] += 1
            satisfaction[alive] += info["satisfaction"][alive]
            if logs:
                responses[alive] += info["responses"][alive].sum(axis=1)
                clickbait[alive] += self._clickbait[info["item_ids"][alive]].sum(axis=1)
            alive &= ~(terminated | truncated)
        return SessionStats(
            returns=returns,
            requests=requests,
            first_rewards=first,
            segments=segments,
            satisfaction=satisfaction / np.maximum(requests, 1),
            page_size=self.config.page_size,
            responses=responses,
            clickbait_shown=clickbait,
        )


def run_sessions(
    policy: BatchPolicy, num_sessions: int, seed: int, config: MTFSessionConfig | None = None
) -> SessionStats:
    """Run exactly ``num_sessions`` complete sessions (one per sub-env, user seeds ``seed + i``)."""
    return SessionRunner(num_sessions, config).run(policy, seed)


def user_segments(first_seed: int, count: int, config: MTFSessionConfig | None = None) -> np.ndarray:
    """Segment of the users of seeds ``first_seed .. first_seed + count - 1`` (drawn at reset, before any step)."""
    env = MTFSessionVectorEnv(num_envs=count, config=config)
    env.reset(seed=first_seed)
    return env.sim.segment.copy()

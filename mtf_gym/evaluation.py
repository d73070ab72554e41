"""Policy evaluation, implemented once: the simulated A/B test, offline weighted GAUC, and their agreement.

Everything that scores a policy goes through this module (the benchmark harness, the tests, notebooks):

* :func:`simulate_sessions` / :func:`online_ab` - the online simulated A/B with **common random numbers**: session
  ``i`` of every arm is the user of ``reset(seed=user_seed + i)``, so arms differ only by the policy and lifts are
  paired (:func:`lift_ci`, bootstrap over user seeds, and over training seeds when an arm has several).
* :func:`offline_weighted_gauc` - the paper's MTF-GAUC (Sec. 4.3.1, docs/design.md#evaluation) of a policy on a
  logged dataset.
* :func:`action_deviation` - mean ``|policy(s) - baseline(s)|`` per action dimension (the paper's Fig. 2).
* :func:`gauc_online_agreement` - rank agreement between weighted GAUC and online return across policies.

The statistics themselves (AUC, bootstrap, rank correlation) live in :mod:`mtf_gym.metrics`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from mtf_gym.config import RESPONSE_FIELDS, MTFSessionConfig
from mtf_gym.envs.vector import MTFSessionVectorEnv
from mtf_gym.fusion import FusionRanges, action_to_fusion_params, fused_log_scores
from mtf_gym.metrics import (
    ConfidenceInterval,
    GaucResult,
    RankAgreement,
    normalise_scores,
    paired_lift_ci,
    rank_agreement,
    weighted_gauc,
)
from mtf_gym.policies import BatchPolicy
from mtf_gym.validation import check_int

__all__ = [
    "CLICKBAIT_THRESHOLD",
    "ONLINE_METRICS",
    "ArmSummary",
    "LoggedItems",
    "OnlineAB",
    "SessionOutcomes",
    "SessionRunner",
    "SessionStats",
    "action_deviation",
    "action_labels",
    "gauc_online_agreement",
    "lift_ci",
    "offline_weighted_gauc",
    "online_ab",
    "simulate_sessions",
    "summarise_ab",
]

FloatArray = NDArray[np.float64]

# Per-session online metrics, in report order. "return" is the undiscounted session return.
ONLINE_METRICS: tuple[str, ...] = ("return", "valid_views", "watch_time_min", "requests")


# ----------------------------------------------------------------------------------------------------------------------
# Online: simulated A/B with common random numbers
# ----------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionOutcomes:
    """Per-session outcomes of one policy on users ``user_seed .. user_seed + S - 1`` (one entry per user).

    Attributes:
        returns: ``(S,)`` undiscounted session return.
        valid_views: ``(S,)`` shown items watched > ``valid_view_s`` seconds.
        watch_time_min: ``(S,)`` total watch time in minutes.
        requests: ``(S,)`` feed requests before the user left or the request cap.
        user_seed: seed of the first user; two outcomes are comparable (paired) only with equal ``user_seed``
            and length.
    """

    returns: FloatArray
    valid_views: FloatArray
    watch_time_min: FloatArray
    requests: FloatArray
    user_seed: int

    def __post_init__(self) -> None:
        n = len(self.returns)
        for name in ONLINE_METRICS:
            if self.metric(name).shape != (n,):
                raise ValueError(f"SessionOutcomes.{_FIELD[name]} must have shape ({n},)")

    @property
    def num_sessions(self) -> int:
        return len(self.returns)

    def metric(self, name: str) -> FloatArray:
        """Per-session values of one of :data:`ONLINE_METRICS`."""
        if name not in _FIELD:
            raise ValueError(f"metric must be one of {ONLINE_METRICS}, got {name!r}")
        return getattr(self, _FIELD[name])

    def means(self) -> dict[str, float]:
        """Mean per session of every metric."""
        return {name: float(np.mean(self.metric(name))) for name in ONLINE_METRICS}

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for ``np.savez`` (inverse: :meth:`from_arrays`)."""
        return {**{name: self.metric(name) for name in ONLINE_METRICS}, "user_seed": np.asarray(self.user_seed)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> SessionOutcomes:
        return cls(**{_FIELD[name]: np.asarray(arrays[name], dtype=np.float64) for name in ONLINE_METRICS},
                   user_seed=int(arrays["user_seed"]))


_FIELD = {"return": "returns", "valid_views": "valid_views", "watch_time_min": "watch_time_min",
          "requests": "requests"}


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


def simulate_sessions(
    policy: BatchPolicy,
    num_sessions: int,
    user_seed: int,
    config: MTFSessionConfig | None = None,
    *,
    batch_size: int = 1024,
) -> SessionOutcomes:
    """Run ``num_sessions`` complete sessions of ``policy``; session ``i`` is the user of seed ``user_seed + i``.

    Sessions run ``batch_size`` at a time through :class:`SessionRunner`; the vector env seeds sub-env ``j`` with
    ``seed + j``, so the user of a session does not depend on ``batch_size`` or on the policy (common random
    numbers across arms).
    """
    num_sessions = check_int("num_sessions", num_sessions, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    # Valid views and watch time need the per-item responses.
    config = dataclasses.replace(config or MTFSessionConfig(), item_logs=True)
    totals = np.zeros((4, int(num_sessions)))
    runner: SessionRunner | None = None
    for start in range(0, int(num_sessions), batch_size):
        n = min(batch_size, int(num_sessions) - start)
        if runner is None or runner.num_sessions != n:
            runner = SessionRunner(n, config)
        stats = runner.run(policy, int(user_seed) + start)
        totals[:, start:start + n] = (stats.returns, stats.per_session("valid_view"),
                                      stats.per_session("watch_time_s") / 60.0, stats.requests)
    return SessionOutcomes(returns=totals[0], valid_views=totals[1], watch_time_min=totals[2], requests=totals[3],
                           user_seed=int(user_seed))


def _check_paired(runs: Sequence[SessionOutcomes], control: SessionOutcomes) -> None:
    for run in runs:
        if run.user_seed != control.user_seed or run.num_sessions != control.num_sessions:
            raise ValueError(
                "lift needs common random numbers: every arm must be evaluated on the same users (same user_seed "
                f"and num_sessions); got treatment ({run.user_seed}, {run.num_sessions}) vs control "
                f"({control.user_seed}, {control.num_sessions})"
            )


def lift_ci(
    treatment: SessionOutcomes | Sequence[SessionOutcomes],
    control: SessionOutcomes,
    metric: str = "return",
    *,
    rng: np.random.Generator,
    confidence: float = 0.95,
    num_resamples: int = 10_000,
) -> ConfidenceInterval:
    """Relative lift ``mean(treatment) / mean(control) - 1`` of ``metric`` with a paired bootstrap CI.

    :func:`mtf_gym.metrics.paired_lift_ci` over user seeds (sessions); with several runs (one policy per training
    seed, all evaluated on the control's users) its two-level form, which resamples training seeds, then user
    seeds, so the interval carries the variation between training seeds as well as between users. The estimate is
    the lift of the average over training seeds; ``n`` of the result counts user seeds.
    """
    runs = [treatment] if isinstance(treatment, SessionOutcomes) else list(treatment)
    if not runs:
        raise ValueError("treatment must hold at least one SessionOutcomes")
    _check_paired(runs, control)
    t = np.stack([run.metric(metric) for run in runs])  # (runs, sessions)
    return paired_lift_ci(t if len(runs) > 1 else t[0], control.metric(metric), confidence=confidence,
                          num_resamples=num_resamples, rng=rng)


@dataclass(frozen=True)
class ArmSummary:
    """One arm of an A/B test: mean per session of every metric, and its lift vs the control (None for it)."""

    name: str
    means: dict[str, float]
    lifts: dict[str, ConfidenceInterval] | None


@dataclass(frozen=True)
class OnlineAB:
    """A simulated A/B test: per-session outcomes of every arm (one run per training seed), summaries (control
    first)."""

    control: str
    outcomes: dict[str, tuple[SessionOutcomes, ...]]
    arms: tuple[ArmSummary, ...]

    def arm(self, name: str) -> ArmSummary:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(f"no arm {name!r}; arms: {[a.name for a in self.arms]}")


def online_ab(
    policies: Mapping[str, BatchPolicy],
    *,
    control: str,
    num_sessions: int,
    user_seed: int,
    config: MTFSessionConfig | None = None,
    rng: np.random.Generator,
    confidence: float = 0.95,
    num_resamples: int = 10_000,
) -> OnlineAB:
    """Simulated A/B: every policy meets the same ``num_sessions`` users; lifts vs ``control`` with paired CIs."""
    if control not in policies:
        raise ValueError(f"control {control!r} is not one of the policies {list(policies)}")
    outcomes = {name: simulate_sessions(policy, num_sessions, user_seed, config) for name, policy in policies.items()}
    return summarise_ab(outcomes, control=control, rng=rng, confidence=confidence, num_resamples=num_resamples)


def summarise_ab(
    outcomes: Mapping[str, SessionOutcomes | Sequence[SessionOutcomes]],
    *,
    control: str,
    rng: np.random.Generator,
    confidence: float = 0.95,
    num_resamples: int = 10_000,
) -> OnlineAB:
    """Summaries and lifts of already simulated arms (an arm may hold one run per training seed)."""
    runs = {name: [o] if isinstance(o, SessionOutcomes) else list(o) for name, o in outcomes.items()}
    if control not in runs or len(runs[control]) != 1:
        raise ValueError(f"control {control!r} must be one of the arms and hold exactly one run")
    ctrl = runs[control][0]
    arms = []
    for name in [control, *(n for n in runs if n != control)]:
        means = {m: float(np.mean([np.mean(r.metric(m)) for r in runs[name]])) for m in ONLINE_METRICS}
        lifts = None if name == control else {
            m: lift_ci(runs[name], ctrl, m, rng=rng, confidence=confidence, num_resamples=num_resamples)
            for m in ONLINE_METRICS
        }
        arms.append(ArmSummary(name=name, means=means, lifts=lifts))
    return OnlineAB(control=control, outcomes={name: tuple(r) for name, r in runs.items()}, arms=tuple(arms))


# ----------------------------------------------------------------------------------------------------------------------
# Offline: weighted GAUC on logged items
# ----------------------------------------------------------------------------------------------------------------------
class _ItemLogSource(Protocol):
    observations: Any
    predictions: Any
    responses: Any
    item_rewards: Any
    episode_ids: Any


@dataclass(frozen=True)
class LoggedItems:
    """What the offline metric needs from a logged dataset, one row per logged request (transition).

    Attributes:
        observations: ``(N, obs_dim)`` the logged state of each request.
        predictions: ``(N, K, T)`` the ranker's predictions of the ``K`` items that were shown, in position order.
        valid_view: ``(N, K)`` 0/1, whether each shown item got a valid view (the label).
        item_rewards: ``(N, K)`` each shown item's reward (its share of the request reward).
        user_ids: ``(N,)`` the user of each request. In MTFSession every session is a new user, so the harness uses
            the episode (session) index: the GAUC groups items by session.
    """

    observations: np.ndarray
    predictions: np.ndarray
    valid_view: np.ndarray
    item_rewards: np.ndarray
    user_ids: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.observations)
        if np.ndim(self.predictions) != 3 or len(self.predictions) != n:
            raise ValueError(f"predictions must have shape (N={n}, K, T), got {np.shape(self.predictions)}")
        k = np.shape(self.predictions)[1]
        for name in ("valid_view", "item_rewards"):
            if np.shape(getattr(self, name)) != (n, k):
                raise ValueError(f"{name} must have shape ({n}, {k}), got {np.shape(getattr(self, name))}")
        if np.shape(self.user_ids) != (n,):
            raise ValueError(f"user_ids must have shape ({n},), got {np.shape(self.user_ids)}")

    @classmethod
    def from_transitions(cls, data: _ItemLogSource) -> LoggedItems:
        """From a ``mtf_gym.datasets.TransitionData`` collected with item logs (users = episodes)."""
        responses = np.asarray(data.responses)
        if responses.ndim != 3 or responses.shape[1] == 0:
            raise ValueError("the dataset has no item logs (collected with item_logs=False): weighted GAUC needs the "
                             "shown items' predictions and responses")
        return cls(
            observations=np.asarray(data.observations, dtype=np.float32),
            predictions=np.asarray(data.predictions, dtype=np.float32),
            valid_view=responses[..., RESPONSE_FIELDS.index("valid_view")],
            item_rewards=np.asarray(data.item_rewards, dtype=np.float64),
            user_ids=np.asarray(data.episode_ids),
        )


def offline_weighted_gauc(
    policy: BatchPolicy, logs: LoggedItems, ranges: FusionRanges | None = None, *, batch_size: int = 65_536
) -> GaucResult:
    """Weighted GAUC of ``policy`` on logged items (paper 4.3.1, docs/design.md#evaluation).

    1. The policy acts on every logged state: ``a_n = policy(s_n)``;
    2. its fusion re-scores the items that were shown at that request, on their *logged* predictions:
       ``score_{n,k} = sum_t power_t(a_n) * log(pred_{n,k,t} + bias_t(a_n))`` (:func:`~mtf_gym.fusion.fused_log_scores`,
       the log of the paper's product, same order);
    3. scores are min-max normalised to ``[0, 1]`` per user (:func:`~mtf_gym.metrics.normalise_scores`). The paper
       normalises all test-set final scores at once ("normalise all final scores in the test set to [0, 1]"), not
       per user; both maps are increasing within every user, so the per-user AUCs and the GAUC are identical;
    4. label = valid view of the item; sample weight = item reward + 1, floored at 0 (a strongly disliked item,
       reward < -1, would otherwise get a negative weight, which an AUC cannot take; it is rare: hate ~0.05%);
    5. :func:`~mtf_gym.metrics.weighted_gauc`: weighted AUC per user over all of the user's logged items (pairs
       never cross users), averaged with each user's total sample weight; users with a single class are skipped.

    ``ranges`` must be the ``FusionRanges`` of the env that logged the data (default ranges if None).
    """
    ranges = ranges or FusionRanges()
    obs = np.asarray(logs.observations, dtype=np.float32)
    preds = np.asarray(logs.predictions, dtype=np.float32)
    n, k, _ = preds.shape
    scores = np.empty((n, k), dtype=np.float32)
    for lo in range(0, n, batch_size):
        actions = np.asarray(policy(obs[lo:lo + batch_size]), dtype=np.float32)
        powers, biases = action_to_fusion_params(actions, ranges)
        fused_log_scores(preds[lo:lo + batch_size], powers, biases, out=scores[lo:lo + batch_size])
    users = np.repeat(np.asarray(logs.user_ids), k)
    flat = normalise_scores(scores.reshape(-1).astype(np.float64), users)
    weights = np.maximum(np.asarray(logs.item_rewards, dtype=np.float64).reshape(-1) + 1.0, 0.0)
    labels = (np.asarray(logs.valid_view).reshape(-1) > 0).astype(np.float64)
    return weighted_gauc(users, labels, flat, weights)


# ----------------------------------------------------------------------------------------------------------------------
# Learned vs baseline actions, and offline/online agreement
# ----------------------------------------------------------------------------------------------------------------------
def action_labels(config: MTFSessionConfig) -> tuple[str, ...]:
    """Names of the action dimensions: ``power:<task>`` then ``bias:<task>``."""
    return (*(f"power:{t}" for t in config.ranker_tasks), *(f"bias:{t}" for t in config.ranker_tasks))


def action_deviation(policy: BatchPolicy, baseline: BatchPolicy, observations: np.ndarray) -> FloatArray:
    """``(A,)`` mean over states of ``|policy(s) - baseline(s)|`` per action dimension (the paper's Fig. 2)."""
    obs = np.asarray(observations, dtype=np.float32)
    diff = np.abs(np.asarray(policy(obs), dtype=np.float64) - np.asarray(baseline(obs), dtype=np.float64))
    return diff.mean(axis=0)


def gauc_online_agreement(gauc: Mapping[str, float], online: Mapping[str, float]) -> RankAgreement:
    """Rank agreement (Spearman, Kendall) between weighted GAUC and online return over the policies in both maps."""
    names = sorted(set(gauc) & set(online))
    return rank_agreement([gauc[n] for n in names], [online[n] for n in names])

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from gymnasium.vector import VectorEnv
from numpy.typing import NDArray

from mtf_gym.config import RESPONSE_FIELDS
from mtf_gym.envs.vector import MTFSessionVectorEnv
from mtf_gym.envs.versions import DEFAULT_SESSION_ENV_ID, AnyConfig, config_class_for
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
from mtf_gym.rng import seed_keys
from mtf_gym.validation import check_int

__all__ = [
    "CLICKBAIT_THRESHOLD",
    "ONLINE_METRICS",
    "SEGMENT_LABELS",
    "ArmSummary",
    "ContextPolicy",
    "LoggedItems",
    "OnlineAB",
    "SessionOutcomes",
    "SessionRunner",
    "action_deviation",
    "action_labels",
    "default_config",
    "gauc_online_agreement",
    "lift_by_segment",
    "lift_ci",
    "offline_weighted_gauc",
    "online_ab",
    "simulate_sessions",
    "summarise_ab",
]

FloatArray = NDArray[np.float64]


def default_config() -> AnyConfig:
    """The default ``MTFSession`` version's default config (what a runner without a config plays)."""
    return config_class_for(DEFAULT_SESSION_ENV_ID)()

# Per-session online metrics, in report order. "return" is the undiscounted session return.
ONLINE_METRICS: tuple[str, ...] = ("return", "valid_views", "watch_time_min", "requests")


# ----------------------------------------------------------------------------------------------------------------------
# Online: simulated A/B with common random numbers
# ----------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionOutcomes:
    """The per-session record, one entry per session: every rollout of the project returns one.

    Sessions come from :class:`SessionRunner` (one batch) or :func:`simulate_sessions` (batches of users
    ``user_seed .. user_seed + S - 1``). What a run measures beyond returns and requests depends on the env: the
    response-based fields need item logs (``item_logs=True``), ``segments`` and ``satisfaction`` an env on the
    project's user simulator (MTFSession, MTFSlate).

    Attributes:
        returns: ``(S,)`` undiscounted session return.
        valid_views: ``(S,)`` shown items watched > ``valid_view_s`` seconds (``None`` without item logs).
        watch_time_min: ``(S,)`` total watch time in minutes (``None`` without item logs).
        requests: ``(S,)`` feed requests before the user left, the request cap or the run's ``max_requests``.
        user_seed: seed of the first user when session ``i`` is the user of ``user_seed + i``; ``None`` when the run
            was given one seed per session. Two records are comparable (paired) only with equal ``user_seed`` and
            length.
        first_rewards: ``(S,)`` reward of the first request.
        segments: ``(S,)`` each user's segment index.
        satisfaction: ``(S,)`` mean latent satisfaction after each request.
        responses: ``(S, len(RESPONSE_FIELDS))`` responses summed over the session's shown items (item logs only).
        clickbait_shown: ``(S,)`` shown items with clickbait >= :data:`CLICKBAIT_THRESHOLD` (item logs only).
        page_size: items per page (per-exposure rates divide by ``requests * page_size``).
    """

    returns: FloatArray
    valid_views: FloatArray | None
    watch_time_min: FloatArray | None
    requests: FloatArray
    user_seed: int | None
    first_rewards: FloatArray | None = None
    segments: np.ndarray | None = None
    satisfaction: FloatArray | None = None
    responses: FloatArray | None = None
    clickbait_shown: FloatArray | None = None
    page_size: int | None = None

    def __post_init__(self) -> None:
        n = len(self.returns)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray) and f.name != "responses" and value.shape != (n,):
                raise ValueError(f"SessionOutcomes.{f.name} must have shape ({n},), got {value.shape}")
        if self.responses is not None and self.responses.shape != (n, len(RESPONSE_FIELDS)):
            raise ValueError(f"SessionOutcomes.responses must have shape ({n}, {len(RESPONSE_FIELDS)}), "
                             f"got {self.responses.shape}")

    @property
    def num_sessions(self) -> int:
        return len(self.returns)

    def metric(self, name: str) -> FloatArray:
        """Per-session values of one of :data:`ONLINE_METRICS`."""
        if name not in _FIELD:
            raise ValueError(f"metric must be one of {ONLINE_METRICS}, got {name!r}")
        return self._measured(_FIELD[name])

    def means(self) -> dict[str, float]:
        """Mean per session of every metric."""
        return {name: float(np.mean(self.metric(name))) for name in ONLINE_METRICS}

    @property
    def exposures(self) -> int:
        """Items shown over the run."""
        return int(np.sum(self.requests) * self._measured("page_size"))

    @property
    def response_totals(self) -> np.ndarray:
        """``(len(RESPONSE_FIELDS),)`` totals over every shown item of the run."""
        return self._measured("responses").sum(axis=0)

    def per_session(self, name: str) -> np.ndarray:
        """``(S,)`` session totals of one response field (e.g. ``"valid_view"``, ``"watch_time_s"``)."""
        if name not in RESPONSE_FIELDS:
            raise ValueError(f"name must be one of {RESPONSE_FIELDS}, got {name!r}")
        return self._measured("responses")[:, RESPONSE_FIELDS.index(name)]

    def rate(self, name: str) -> float:
        """Pooled rate per exposure of one response field."""
        return float(self.per_session(name).sum() / self.exposures)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The online metrics as arrays for ``np.savez`` (what the benchmark stores; inverse: :meth:`from_arrays`)."""
        if self.user_seed is None:
            raise ValueError("to_arrays needs sessions of consecutive user seeds (user_seed is None)")
        return {**{name: self.metric(name) for name in ONLINE_METRICS}, "user_seed": np.asarray(self.user_seed)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> SessionOutcomes:
        return cls(**{_FIELD[name]: np.asarray(arrays[name], dtype=np.float64) for name in ONLINE_METRICS},
                   user_seed=int(arrays["user_seed"]))

    @classmethod
    def concatenate(cls, parts: Sequence[SessionOutcomes], user_seed: int | None) -> SessionOutcomes:
        """Consecutive batches of sessions as one record (fields missing from any part are left out)."""
        if not parts:
            raise ValueError("parts must hold at least one SessionOutcomes")
        fields: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            values = [getattr(p, f.name) for p in parts]
            if f.name in ("user_seed", "page_size"):
                continue
            fields[f.name] = None if any(v is None for v in values) else np.concatenate(values)
        sizes = {p.page_size for p in parts}
        return cls(**fields, user_seed=user_seed, page_size=sizes.pop() if len(sizes) == 1 else None)

    def _measured(self, what: str) -> Any:
        value = getattr(self, what)
        if value is None:
            need = ("a run with item logs (item_logs=True)" if what in _NEEDS_ITEM_LOGS
                    else "a run of an env on the project's user simulator")
            raise ValueError(f"SessionOutcomes.{what} was not measured: it needs {need}")
        return value


_FIELD = {"return": "returns", "valid_views": "valid_views", "watch_time_min": "watch_time_min",
          "requests": "requests"}
_NEEDS_ITEM_LOGS = ("valid_views", "watch_time_min", "responses", "clickbait_shown")


# Catalogue clickbait scores are U(0.5, 1) for clickbait items and U(0, 0.15) otherwise (mtf_gym/catalogue.py).
CLICKBAIT_THRESHOLD = 0.5

# A policy that sees the step's info and which rows are still in their session (the slate env's page policies):
# ``policy(obs, info, live) -> actions``.
ContextPolicy = Callable[[Any, dict, np.ndarray], np.ndarray]


class SessionRunner:
    """The project's one rollout loop: every sub-env of a vector env plays one session, to its end.

    ``SessionRunner(num_sessions, config)`` builds the fusion env of ``config``'s version (constructing a vector env
    costs more than resetting it, so reuse the runner); ``SessionRunner.on(env)`` runs an existing vector env
    instead (for example ``MTFSlate-v0``'s). Sessions that end are stepped on by the env's autoreset until the last
    one ends; a mask keeps those steps out of every total.
    """

    def __init__(self, num_sessions: int, config: AnyConfig | None = None) -> None:
        num_sessions = check_int("num_sessions", num_sessions, minimum=1)
        self._attach(MTFSessionVectorEnv(num_envs=num_sessions, config=config if config is not None
                                          else default_config()))

    @classmethod
    def on(cls, env: VectorEnv) -> SessionRunner:
        """A runner over an existing vector env (its sub-envs play the sessions)."""
        runner = cls.__new__(cls)
        runner._attach(env)
        return runner

    def _attach(self, env: VectorEnv) -> None:
        self.env = env
        self.num_sessions = int(env.num_envs)
        self.config = getattr(env.unwrapped, "config", None)
        session = getattr(self.config, "session", self.config)  # the slate env's config wraps the user model's
        self._item_logs = bool(getattr(session, "item_logs", False))
        self._page_size = getattr(session, "page_size", None)
        self._max_requests = int(getattr(session, "max_requests", 10 ** 9))
        sim = getattr(env.unwrapped, "sim", None)
        catalogue = getattr(sim, "catalogue", None)
        self._clickbait = (catalogue.clickbait >= CLICKBAIT_THRESHOLD) if catalogue is not None else None
        self._user_state = hasattr(sim, "segment")  # the project's user simulator (fusion and slate envs)

    def run(self, policy: BatchPolicy, seed: int | Sequence[int], max_requests: int | None = None, *,
            before_step: Callable[[np.ndarray], None] | None = None,
            after_step: Callable[[np.ndarray, dict], None] | None = None,
            session_seed: int | Sequence[int] | None = None) -> SessionOutcomes:
        """Run every session to its end, or for at most ``max_requests`` requests (``1``: first request only).

        Args:
            policy: ``policy(obs) -> actions`` for the whole batch.
            seed: user seeds ``seed + i``, or one seed per session (e.g. users picked by segment).
            max_requests: stop every session after this many requests.
            before_step: called with the rows still in their session before each step (e.g. to read the
                simulator's state the step starts from).
            after_step: called with those rows and the step's ``info`` after each step.
            session_seed: the same users (``seed``) in other sessions: each session's draws (retrieval, responses,
                leaving) come from session seed ``session_seed + i`` (or one per session) instead of the user's
                own seed (:meth:`mtf_gym.sim.UserSimulator.reseed_sessions`; the project's user simulator only).
        """
        return self.run_with_context(lambda obs, info, live: policy(obs), seed, max_requests,
                                     before_step=before_step, after_step=after_step, session_seed=session_seed)

    def run_with_context(self, policy: ContextPolicy, seed: int | Sequence[int], max_requests: int | None = None, *,
                         before_step: Callable[[np.ndarray], None] | None = None,
                         after_step: Callable[[np.ndarray, dict], None] | None = None,
                         session_seed: int | Sequence[int] | None = None) -> SessionOutcomes:
        """:meth:`run` for a policy that also reads the step's ``info`` and the live rows (``(S,)`` bool)."""
        env, n = self.env, self.num_sessions
        logs = self._item_logs
        obs, info = env.reset(seed=seed if isinstance(seed, (int, np.integer)) else [int(s) for s in seed])
        sim = getattr(env.unwrapped, "sim", None)
        if session_seed is not None:
            if not hasattr(sim, "reseed_sessions"):
                raise ValueError(f"session_seed needs the project's user simulator; {type(env).__name__} has none")
            seeds = (range(int(session_seed), int(session_seed) + n) if isinstance(session_seed, (int, np.integer))
                     else [int(s) for s in session_seed])
            if len(seeds) != n:
                raise ValueError(f"session_seed must be an int or {n} seeds, got {len(seeds)}")
            sim.reseed_sessions(np.arange(n), seed_keys(seeds))
        segments = sim.segment.copy() if self._user_state else None
        alive = np.ones(n, dtype=bool)
        returns = np.zeros(n)
        requests = np.zeros(n, dtype=np.int64)
        satisfaction = np.zeros(n) if self._user_state else None
        first = None
        responses = np.zeros((n, len(RESPONSE_FIELDS))) if logs else None
        clickbait = np.zeros(n) if logs and self._clickbait is not None else None
        limit = self._max_requests if max_requests is None else int(max_requests)
        while alive.any() and int(requests.max()) < limit:
            rows = np.flatnonzero(alive)
            if before_step is not None:
                before_step(rows)
            obs, reward, terminated, truncated, info = env.step(policy(obs, info, alive.copy()))
            if first is None:
                first = np.asarray(reward, np.float64).copy()
            returns[alive] += reward[alive]
            requests[alive] += 1
            if satisfaction is not None:
                satisfaction[alive] += info["satisfaction"][alive]
            if responses is not None:
                responses[alive] += info["responses"][alive].sum(axis=1)
            if clickbait is not None:
                clickbait[alive] += self._clickbait[info["item_ids"][alive]].sum(axis=1)
            if after_step is not None:
                after_step(rows, info)
            alive &= ~(terminated | truncated)
        minutes = None if responses is None else responses[:, RESPONSE_FIELDS.index("watch_time_s")] / 60.0
        return SessionOutcomes(
            returns=returns,
            valid_views=None if responses is None else responses[:, RESPONSE_FIELDS.index("valid_view")].copy(),
            watch_time_min=minutes,
            requests=requests.astype(np.float64),
            user_seed=int(seed) if isinstance(seed, (int, np.integer)) else None,
            first_rewards=first,
            segments=segments,
            satisfaction=None if satisfaction is None else satisfaction / np.maximum(requests, 1),
            responses=responses,
            clickbait_shown=clickbait,
            page_size=self._page_size,
        )


def simulate_sessions(
    policy: BatchPolicy,
    num_sessions: int,
    user_seed: int,
    config: AnyConfig | None = None,
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
    config = dataclasses.replace(config if config is not None else default_config(), item_logs=True)
    parts: list[SessionOutcomes] = []
    runner: SessionRunner | None = None
    for start in range(0, int(num_sessions), batch_size):
        n = min(batch_size, int(num_sessions) - start)
        if runner is None or runner.num_sessions != n:
            runner = SessionRunner(n, config)
        parts.append(runner.run(policy, int(user_seed) + start))
    return SessionOutcomes.concatenate(parts, user_seed=int(user_seed))


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


# Short labels of the user segments (SEGMENT_NAMES order) for tables and JSON records.
SEGMENT_LABELS: tuple[str, ...] = ("casual", "lean-back", "social", "quality")


def lift_by_segment(treatment: SessionOutcomes, control: SessionOutcomes, *, rng: np.random.Generator,
                    metric: str = "return") -> dict[str, Any]:
    """:func:`lift_ci` of ``metric`` over all users and within each user segment, as a JSON-able record:
    ``{"estimate", "low", "high", "per_segment": {label: {"estimate", "low", "high", "users"}}}``
    (:data:`SEGMENT_LABELS`; the segments are the control's, the same users as the treatment's)."""
    if control.segments is None:
        raise ValueError("lift_by_segment needs the project's user simulator (outcomes with segments)")
    overall = lift_ci(treatment, control, metric, rng=rng)
    t, c = treatment.metric(metric), control.metric(metric)
    per_segment = {}
    for g, label in enumerate(SEGMENT_LABELS):
        rows = control.segments == g
        ci = paired_lift_ci(t[rows], c[rows], rng=rng)
        per_segment[label] = {**ci.as_dict(), "users": int(rows.sum())}
    return {**overall.as_dict(), "per_segment": per_segment}


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
    config: AnyConfig | None = None,
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
def action_labels(config: AnyConfig) -> tuple[str, ...]:
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

"""Typed, frozen configuration of the v1 user model (``MTFSession-v1`` and ``MTFSlate-v0`` share it).

v1 exists because on v0 one better constant fusion held ~92% of the headroom (``docs/environment.md``, version
history). v1 gives every user continuous latent traits that move the best fusion (what feeds their satisfaction,
clickbait aversion, patience, boredom sensitivity, ranker accuracy), in-session state that moves it within a session
(fatigue, low satisfaction, repetition), an observation without exact latents, and a mean-calibrated ranker.
``docs/user_model.md`` writes every equation out; each field here says what it enters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtf_gym.config import PREDICTABLE_TASKS, SEGMENT_NAMES, RewardWeights, _check, _check_finite_fields
from mtf_gym.fusion import FusionRanges


def _chk(cond: bool, owner: Any, name: str, value: Any, allowed: str) -> None:
    _check(cond, type(owner).__name__, name, value, allowed)


__all__ = ["CatalogueConfig", "MTFSessionV1Config", "RankerV1Config", "TraitPopulation", "UserDynamicsV1"]


@dataclass(frozen=True)
class TraitPopulation:
    """How a new user's continuous latent traits are drawn: a mixture of the four segments, each a distribution.

    Each tuple has one entry per segment (:data:`mtf_gym.config.SEGMENT_NAMES` order); the ``*_spread`` fields are
    the within-segment standard deviation of the trait on its (log or logit) scale, so two users of one segment differ.
    """

    share: tuple[float, ...] = (0.35, 0.30, 0.20, 0.15)
    interest_concentration: tuple[float, ...] = (0.8, 1.6, 1.4, 1.2)
    hook_bias: tuple[float, ...] = (-1.882, -1.432, -1.632, -1.832)
    # Exponential scale (s) of a hooked viewer's stopping time, before item and state terms; log-normal per user.
    patience_s: tuple[float, ...] = (4.97, 10.88, 6.34, 7.44)
    patience_spread: float = 0.35
    # Engagement propensity: added to every engagement logit (log-odds); normal per user.
    engagement_offset: tuple[float, ...] = (-0.35, -1.0, 1.05, 0.05)
    engagement_spread: float = 0.6
    # Satisfaction lost per unit hooked clickbait (log-normal per user).
    clickbait_aversion: tuple[float, ...] = (1.2, 0.8, 1.8, 4.0)
    aversion_spread: float = 0.6
    # Hook penalty per unit topic boredom (log-normal per user).
    boredom_sensitivity: tuple[float, ...] = (2.6, 1.0, 1.6, 1.8)
    boredom_spread: float = 0.4
    # Watch drive in [0, 1]: share of satisfaction fed by long views (the rest by content they would interact with).
    # Logit-normal per user: lean-back users stay for long watches, social users for interaction.
    watch_drive: tuple[float, ...] = (0.5, 0.85, 0.15, 0.6)
    watch_drive_spread: float = 1.0
    # Fatigue accumulated per watched minute (log-normal per user).
    fatigue_rate: tuple[float, ...] = (0.25, 0.12, 0.2, 0.18)
    fatigue_spread: float = 0.4
    # Median account age (days), log-normal; young accounts are cold-start users with noisier predictions.
    account_age_days: tuple[float, ...] = (40.0, 400.0, 600.0, 250.0)
    account_age_spread: float = 1.3

    def __post_init__(self) -> None:
        _check_finite_fields(self)
        n = len(SEGMENT_NAMES)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                _chk(len(value) == n, self, f.name, value, f"a tuple of {n} numbers ({', '.join(SEGMENT_NAMES)})")
            else:
                _chk(value >= 0, self, f.name, value, ">= 0")
        _chk(all(s >= 0 for s in self.share) and abs(sum(self.share) - 1.0) < 1e-6, self, "share", self.share,
              "non-negative and summing to 1")
        for name in ("interest_concentration", "patience_s", "clickbait_aversion", "boredom_sensitivity",
                     "fatigue_rate", "account_age_days"):
            _chk(all(v > 0 for v in getattr(self, name)), self, name, getattr(self, name), "all > 0")
        _chk(all(0 < v < 1 for v in self.watch_drive), self, "watch_drive", self.watch_drive, "all in (0, 1)")


@dataclass(frozen=True)
class UserDynamicsV1:
    """Coefficients of the v1 response funnel, state transition and leaving (``docs/user_model.md`` v1 sections)."""

    hook_affinity: float = 1.3
    hook_quality: float = 0.8
    hook_clickbait: float = 2.6
    hook_satisfaction: float = 0.5
    # Fatigue makes long videos lose their hook: logit -= hook_fatigue_length * F * max(0, log(d / 15 s)).
    hook_fatigue_length: float = 0.9
    patience_affinity: float = 0.45
    patience_quality: float = 0.35
    patience_clickbait: float = -0.2
    patience_boredom: float = -0.8
    patience_satisfaction: float = 0.25
    patience_fatigue: float = -0.35
    engagement_affinity: float = 0.8
    engagement_quality: float = 0.9
    engagement_clickbait: float = -0.5
    engagement_noise_scale: float = 1.0
    like_bias: float = -6.376
    comment_bias: float = -8.6
    follow_bias: float = -9.509
    share_bias: float = -9.659
    hate_bias: float = -6.041
    hate_clickbait: float = 1.6
    hate_affinity: float = -1.0
    valid_view_s: float = 10.0
    long_view_s: float = 18.0
    quick_skip_s: float = 3.0
    boredom_decay: float = 0.7
    satisfaction_decay: float = 0.85
    # Satisfaction gained per page: watch_drive * gain_watch * (minutes watched per item) + (1 - watch_drive) *
    # gain_interaction * IN, IN the page's mean "would interact" probability over watched items (sigmoid of the
    # engagement logit + interaction_offset): long-watch users stay for long watches, social users for interaction.
    satisfaction_gain_watch: float = 3.0
    satisfaction_gain_interaction: float = 2.0
    interaction_offset: float = 1.0
    satisfaction_loss_quick_skip: float = 0.35
    satisfaction_loss_hate: float = 1.5
    # Hooked clickbait costs aversion * (1 + low_mood_clickbait * max(0, -S)): a user in a bad mood forgives less.
    low_mood_clickbait: float = 1.5
    # Subtracted from every page's satisfaction change, so that an average page keeps satisfaction level.
    satisfaction_baseline: float = 0.45
    initial_satisfaction_std: float = 0.3
    leave_bias: float = -3.5
    leave_satisfaction: float = 1.1
    leave_boredom: float = 0.8  # per unit boredom_sensitivity-weighted top-topic boredom
    leave_fatigue: float = 0.8
    leave_activity: float = 0.5
    retrieval_exploration: float = 0.5
    activity_std: float = 0.4

    def __post_init__(self) -> None:
        _check_finite_fields(self)
        _chk(0 < self.valid_view_s <= self.long_view_s, self, "valid_view_s", self.valid_view_s,
              "in (0, long_view_s]")
        _chk(0 < self.quick_skip_s < self.valid_view_s, self, "quick_skip_s", self.quick_skip_s,
              "in (0, valid_view_s)")
        for name in ("boredom_decay", "satisfaction_decay", "retrieval_exploration"):
            _chk(0.0 <= getattr(self, name) < 1.0, self, name, getattr(self, name), "in [0, 1)")
        for name in ("initial_satisfaction_std", "engagement_noise_scale", "activity_std", "low_mood_clickbait"):
            _chk(getattr(self, name) >= 0, self, name, getattr(self, name), ">= 0")


@dataclass(frozen=True)
class RankerV1Config:
    """The v1 ranker: mean-calibrated over candidates, with documented biases.

    Kept biases: a per-user, per-task low-rank error (larger for young accounts and rare tasks), blindness to
    in-session state (satisfaction, boredom, fatigue), and an over-estimate of clickbait's hook. Removed: v0's
    uncorrected ``exp(e)`` (mean ``exp(s^2/2)`` > 1), which over-predicted noisy users; v1 multiplies by
    ``exp(e - s^2/2)``, whose mean is 1.
    """

    error_rank: int = 4
    task_noise: tuple[float, ...] = (0.35, 0.30, 0.40, 0.55, 0.7, 0.8, 0.8)
    # Error scale multiplier = cold_noise_floor + cold_noise_gain * cold, cold = 1 / (1 + age / cold_start_days),
    # times a per-user, per-task log-normal factor of spread task_noise_spread.
    cold_noise_floor: float = 0.6
    cold_noise_gain: float = 1.4
    cold_start_days: float = 60.0
    task_noise_spread: float = 0.45
    clickbait_overestimate: float = 0.6
    watch_time_scale_s: float = 60.0
    # Log calibration multiplier per segment (rows, SEGMENT_NAMES order) and task (columns, PREDICTABLE_TASKS order):
    # absorbs the average in-session state the ranker cannot see, as a production ranker calibrated per user group
    # would. Fitted by ``python -m mtf_bench.calibration --fit-ranker`` (mean prediction / mean truth ~ 1 over
    # candidates, per segment and task).
    calibration_offset: tuple[tuple[float, ...], ...] = (
        (-0.5917, -0.2938, -0.6296, -0.4777, 0.0, -0.4887, 0.0),
        (-0.337, -0.3285, -0.3562, -0.2918, 0.0, -0.2753, 0.0),
        (-0.418, -0.3048, -0.4337, -0.3864, 0.0, -0.3655, 0.0),
        (-0.5124, -0.3609, -0.5753, -0.3978, 0.0, -0.3703, 0.0),
    )

    def __post_init__(self) -> None:
        _check_finite_fields(self)
        n = len(PREDICTABLE_TASKS)
        _chk(isinstance(self.error_rank, int) and self.error_rank >= 1, self, "error_rank", self.error_rank,
              "an integer >= 1")
        _chk(len(self.task_noise) == n and all(v >= 0 for v in self.task_noise), self, "task_noise",
              self.task_noise, f"{n} numbers >= 0")
        object.__setattr__(self, "calibration_offset", tuple(tuple(float(v) for v in row)
                                                             for row in self.calibration_offset))
        _chk(len(self.calibration_offset) == len(SEGMENT_NAMES) and all(len(r) == n for r in self.calibration_offset)
             and all(np.isfinite(v) for r in self.calibration_offset for v in r), self, "calibration_offset",
             self.calibration_offset, f"{len(SEGMENT_NAMES)} rows (segments) of {n} finite numbers (tasks)")
        for name in ("cold_noise_floor", "cold_noise_gain", "task_noise_spread"):
            _chk(getattr(self, name) >= 0, self, name, getattr(self, name), ">= 0")
        for name in ("cold_start_days", "watch_time_scale_s"):
            _chk(getattr(self, name) > 0, self, name, getattr(self, name), "> 0")


@dataclass(frozen=True)
class CatalogueConfig:
    """The item catalogue: ``num_topics`` topics of ``items_per_topic`` items each, stored grouped by topic.

    ``embedding_dim`` and ``embedding_noise`` set the public item embeddings (``MTFSlate-v0``): noisy linear views of
    each item's topic, quality, clickbait and duration, as a production item tower would give.
    """

    num_topics: int = 20
    items_per_topic: int = 150
    catalogue_seed: int = 20240426
    median_duration_s: float = 40.0
    duration_log_std: float = 0.9
    clickbait_share: float = 0.15
    embedding_dim: int = 32
    embedding_noise: float = 0.5

    def __post_init__(self) -> None:
        _check_finite_fields(self)
        _chk(isinstance(self.num_topics, int) and 2 <= self.num_topics <= 32767, self, "num_topics",
              self.num_topics, "an integer in [2, 32767]")
        _chk(isinstance(self.items_per_topic, int) and self.items_per_topic >= 1, self, "items_per_topic",
              self.items_per_topic, "an integer >= 1")
        _chk(self.median_duration_s > 0, self, "median_duration_s", self.median_duration_s, "> 0")
        _chk(self.duration_log_std >= 0, self, "duration_log_std", self.duration_log_std, ">= 0")
        _chk(0.0 <= self.clickbait_share <= 1.0, self, "clickbait_share", self.clickbait_share, "in [0, 1]")
        _chk(isinstance(self.embedding_dim, int) and self.embedding_dim >= 4, self, "embedding_dim",
              self.embedding_dim, "an integer >= 4")
        _chk(self.embedding_noise >= 0, self, "embedding_noise", self.embedding_noise, ">= 0")

    @property
    def num_items(self) -> int:
        return self.num_topics * self.items_per_topic


@dataclass(frozen=True)
class MTFSessionV1Config:
    """All parameters of ``MTFSession-v1`` (and of the user side of ``MTFSlate-v0``).

    Attributes:
        ranker_tasks: the T fused tasks (subset of :data:`~mtf_gym.config.PREDICTABLE_TASKS`, in order).
        num_candidates, page_size, max_requests: C, K and the request cap.
        catalogue: the items (:class:`CatalogueConfig`).
        population, dynamics, ranker: the user model (:class:`TraitPopulation`, :class:`UserDynamicsV1`) and the
            ranker (:class:`RankerV1Config`).
        fusion, reward: the action's ranges and the reward weights (as in v0).
        history_impressions: impressions per day of account age behind the observed long-term statistics (more
            history = less noisy statistics), capped at ``max_history_impressions``.
        item_logs: put per-item logs in ``info``.
    """

    ranker_tasks: tuple[str, ...] = ("valid_view", "watch_time", "long_view", "like", "follow")
    num_candidates: int = 50
    page_size: int = 6
    max_requests: int = 40
    catalogue: CatalogueConfig = field(default_factory=CatalogueConfig)
    population: TraitPopulation = field(default_factory=TraitPopulation)
    dynamics: UserDynamicsV1 = field(default_factory=UserDynamicsV1)
    ranker: RankerV1Config = field(default_factory=RankerV1Config)
    fusion: FusionRanges = field(default_factory=FusionRanges)
    reward: RewardWeights = field(default_factory=RewardWeights)
    history_impressions: float = 25.0
    max_history_impressions: float = 20000.0
    item_logs: bool = True

    def __post_init__(self) -> None:
        _check_finite_fields(self)
        tasks = self.ranker_tasks
        _chk(isinstance(tasks, tuple) and len(tasks) >= 1 and len(set(tasks)) == len(tasks)
              and all(t in PREDICTABLE_TASKS for t in tasks), self, "ranker_tasks", tasks,
              f"a non-empty tuple of distinct names from {PREDICTABLE_TASKS}")
        _chk(isinstance(self.page_size, int) and self.page_size >= 1, self, "page_size", self.page_size,
              "an integer >= 1")
        _chk(isinstance(self.num_candidates, int) and self.num_candidates >= self.page_size, self,
              "num_candidates", self.num_candidates, f"an integer >= page_size ({self.page_size})")
        _chk(self.catalogue.items_per_topic >= self.num_candidates, self, "catalogue.items_per_topic",
              self.catalogue.items_per_topic, f">= num_candidates ({self.num_candidates}) so a request never "
              "repeats an item")
        _chk(isinstance(self.max_requests, int) and self.max_requests >= 1, self, "max_requests",
              self.max_requests, "an integer >= 1")
        _chk(self.history_impressions > 0, self, "history_impressions", self.history_impressions, "> 0")
        _chk(self.max_history_impressions >= 1, self, "max_history_impressions", self.max_history_impressions,
              ">= 1")
        for name, cls in (("catalogue", CatalogueConfig), ("population", TraitPopulation),
                          ("dynamics", UserDynamicsV1), ("ranker", RankerV1Config), ("fusion", FusionRanges),
                          ("reward", RewardWeights)):
            _chk(isinstance(getattr(self, name), cls), self, name, getattr(self, name), f"a {cls.__name__}")

    @property
    def num_tasks(self) -> int:
        return len(self.ranker_tasks)

    @property
    def action_dim(self) -> int:
        return 2 * len(self.ranker_tasks)

    @property
    def num_items(self) -> int:
        return self.catalogue.num_items

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MTFSessionV1Config:
        """Inverse of :meth:`to_dict`; unknown keys raise a ``TypeError`` naming them."""
        nested = {"catalogue": CatalogueConfig, "population": TraitPopulation, "dynamics": UserDynamicsV1,
                  "ranker": RankerV1Config, "fusion": FusionRanges, "reward": RewardWeights}

        def tuples(d: dict[str, Any]) -> dict[str, Any]:
            return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}

        data = tuples(dict(data))
        for key, sub in nested.items():
            if isinstance(data.get(key), dict):
                data[key] = sub(**tuples(data[key]))
        return cls(**data)

    @classmethod
    def from_kwargs(cls, config: MTFSessionV1Config | None, kwargs: dict[str, Any]) -> MTFSessionV1Config:
        """``gym.make(..., config=..., **kwargs)``: kwargs override fields of ``config`` (unknown names: TypeError)."""
        if config is not None and not isinstance(config, cls):
            raise TypeError(f"config must be a {cls.__name__}, got {type(config).__name__}")
        base = config if config is not None else cls()
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise TypeError(f"unknown {cls.__name__} parameter(s) {unknown}; allowed: {sorted(names)}")
        return dataclasses.replace(base, **kwargs) if kwargs else base


def segment_table(population: TraitPopulation) -> np.ndarray:
    """Per-segment trait means as the float32 table the kernel reads (columns: :data:`SEGMENT_COLUMNS`)."""
    return np.stack([np.asarray(getattr(population, name), np.float64) for name in SEGMENT_COLUMNS],
                    axis=1).astype(np.float32)


SEGMENT_COLUMNS: tuple[str, ...] = (
    "interest_concentration", "hook_bias", "patience_s", "engagement_offset", "clickbait_aversion",
    "boredom_sensitivity", "watch_drive", "fatigue_rate", "account_age_days",
)

"""Typed, frozen configuration of the ``MTFSession`` simulator.

Every number the simulator uses lives here, with the reason for its default. Configs validate themselves on
construction, so a bad value fails where it was written, naming the parameter and its allowed range.
``docs/user_model.md`` gives the equations these parameters enter.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtf_gym.fusion import FusionRanges
from mtf_gym.validation import check

__all__ = [
    "PREDICTABLE_TASKS",
    "RESPONSE_FIELDS",
    "SEGMENT_NAMES",
    "MTFSessionConfig",
    "RankerConfig",
    "RewardWeights",
    "SegmentParams",
    "UserModelConfig",
    "config_from_kwargs",
]

# What the multi-task ranker can predict. ``MTFSessionConfig.ranker_tasks`` picks T of these (default 5).
PREDICTABLE_TASKS: tuple[str, ...] = ("valid_view", "watch_time", "long_view", "like", "comment", "follow", "share")

# Per shown item, the user's true response, in this column order (``info["responses"]``).
RESPONSE_FIELDS: tuple[str, ...] = (
    "watch_time_s",
    "valid_view",
    "long_view",
    "like",
    "comment",
    "follow",
    "share",
    "hate",
    "quick_skip",
)

SEGMENT_NAMES: tuple[str, ...] = ("casual", "lean_back", "social", "quality_seeker")


def _check(cond: bool, owner: str, name: str, value: Any, allowed: str) -> None:
    check(cond, name, allowed, value, owner=owner)


def _check_finite_fields(obj: Any) -> None:
    owner = type(obj).__name__
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                _check(math.isfinite(v), owner, f.name, value, "finite")


@dataclass(frozen=True)
class RewardWeights:
    """Weights ``w_k`` of the per-request reward ``r = sum_k w_k * v_k`` (paper Eq. 2), summed over shown items.

    Defaults follow the paper's emphasis on valid consumption and duration, with the rarer, stronger signals
    (follow, share) weighted higher, and explicit dislike (hate) negative.
    """

    watch_time_minutes: float = 1.0
    valid_view: float = 1.0
    long_view: float = 0.5
    like: float = 2.0
    comment: float = 2.0
    follow: float = 5.0
    share: float = 3.0
    hate: float = -5.0
    quick_skip: float = 0.0

    def __post_init__(self) -> None:
        _check_finite_fields(self)

    def as_vector(self) -> np.ndarray:
        """Weights aligned with :data:`RESPONSE_FIELDS` (watch time converted from minutes to seconds)."""
        return np.array(
            [
                self.watch_time_minutes / 60.0,
                self.valid_view,
                self.long_view,
                self.like,
                self.comment,
                self.follow,
                self.share,
                self.hate,
                self.quick_skip,
            ],
            dtype=np.float32,
        )


@dataclass(frozen=True)
class SegmentParams:
    """Per-segment user parameters; each tuple has one entry per segment in :data:`SEGMENT_NAMES` order.

    The segments differ in what they respond to and in how well the ranker knows them, so the best fusion
    weights differ by segment (the personalisation requirement: P4 of
    ``docs/design.md#required-properties-of-the-environment``).
    """

    share: tuple[float, ...] = (0.35, 0.30, 0.20, 0.15)
    # Softmax temperature of topic interests: higher = more concentrated interests.
    interest_concentration: tuple[float, ...] = (0.8, 1.6, 1.4, 1.2)
    hook_bias: tuple[float, ...] = (-2.2, -1.7, -1.85, -2.05)
    # Mean patience (seconds): scale of a hooked viewer's exponential stopping time (its median is ln 2 times this).
    patience_s: tuple[float, ...] = (6.0, 10.2, 7.8, 8.4)
    like_bias: tuple[float, ...] = (-6.58, -7.18, -5.18, -6.18)
    comment_bias: tuple[float, ...] = (-8.7, -9.5, -7.1, -8.5)
    follow_bias: tuple[float, ...] = (-9.6, -10.4, -8.0, -9.2)
    share_bias: tuple[float, ...] = (-9.95, -10.75, -8.35, -9.75)
    # Satisfaction lost per unit clickbait watched: quality seekers punish clickbait hardest.
    clickbait_aversion: tuple[float, ...] = (1.5, 1.2, 2.0, 4.5)
    # Hook penalty per unit of topic boredom: casual users tire of repetition fastest.
    boredom_sensitivity: tuple[float, ...] = (2.6, 1.2, 1.8, 1.8)
    # Multiplier of the ranker's prediction error (casual = colder-start users: noisier predictions).
    ranker_noise: tuple[float, ...] = (1.6, 1.0, 0.6, 0.9)
    # Extra multiplier of the ranker's error on engagement tasks (like/comment/follow/share).
    engagement_noise: tuple[float, ...] = (1.2, 2.0, 0.6, 1.0)

    def __post_init__(self) -> None:
        _check_finite_fields(self)
        n = len(SEGMENT_NAMES)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            allowed = f"a tuple of {n} numbers ({', '.join(SEGMENT_NAMES)})"
            _check(len(value) == n, "SegmentParams", f.name, value, allowed)
        _check(all(s >= 0 for s in self.share) and abs(sum(self.share) - 1.0) < 1e-6, "SegmentParams", "share",
               self.share, "non-negative and summing to 1")
        for name in ("interest_concentration", "patience_s", "ranker_noise", "engagement_noise"):
            _check(all(v > 0 for v in getattr(self, name)), "SegmentParams", name, getattr(self, name), "all > 0")
        for name in ("clickbait_aversion", "boredom_sensitivity"):
            _check(all(v >= 0 for v in getattr(self, name)), "SegmentParams", name, getattr(self, name), "all >= 0")


@dataclass(frozen=True)
class UserModelConfig:
    """Coefficients of the user's choice and state model. ``docs/user_model.md`` writes the equations out."""

    segments: SegmentParams = field(default_factory=SegmentParams)
    # Hook (does the user stay past the first seconds?) logit coefficients.
    hook_affinity: float = 1.3
    hook_quality: float = 0.8
    hook_clickbait: float = 2.6
    hook_satisfaction: float = 0.5
    # Log-patience coefficients: watch time once hooked.
    patience_affinity: float = 0.45
    patience_quality: float = 0.35
    patience_clickbait: float = -0.2
    patience_boredom: float = -0.8
    patience_satisfaction: float = 0.25
    # Engagement logits (like/comment/follow/share) on a valid view.
    engagement_affinity: float = 0.8
    engagement_quality: float = 0.9
    engagement_clickbait: float = -0.5
    engagement_noise_scale: float = 1.0
    hate_bias: float = -6.1
    hate_clickbait: float = 1.6
    hate_affinity: float = -1.0
    # Thresholds defining the logged behaviours (seconds).
    valid_view_s: float = 10.0
    long_view_s: float = 18.0
    quick_skip_s: float = 3.0
    # State dynamics.
    boredom_decay: float = 0.7
    satisfaction_decay: float = 0.85
    satisfaction_gain_long_view: float = 0.45
    satisfaction_gain_engagement: float = 0.6
    satisfaction_loss_quick_skip: float = 0.35
    satisfaction_loss_hate: float = 1.5
    initial_satisfaction_std: float = 0.3
    # Leave (terminated) logit after each request.
    leave_bias: float = -3.3
    leave_per_request: float = 0.06
    leave_satisfaction: float = 0.9
    leave_quick_skip: float = 1.2
    leave_boredom: float = 1.4
    leave_activity: float = 0.5
    # Retrieval: share of candidates drawn uniformly over topics rather than by interest.
    retrieval_exploration: float = 0.5

    def __post_init__(self) -> None:
        _check_finite_fields(self)
        _check(0 < self.valid_view_s <= self.long_view_s, "UserModelConfig", "valid_view_s", self.valid_view_s,
               "in (0, long_view_s]")
        _check(0 < self.quick_skip_s < self.valid_view_s, "UserModelConfig", "quick_skip_s", self.quick_skip_s,
               "in (0, valid_view_s)")
        for name in ("boredom_decay", "satisfaction_decay", "retrieval_exploration"):
            value = getattr(self, name)
            _check(0.0 <= value < 1.0, "UserModelConfig", name, value, "in [0, 1)")
        _check(self.initial_satisfaction_std >= 0, "UserModelConfig", "initial_satisfaction_std",
               self.initial_satisfaction_std, ">= 0")
        _check(self.engagement_noise_scale >= 0, "UserModelConfig", "engagement_noise_scale",
               self.engagement_noise_scale, ">= 0")


@dataclass(frozen=True)
class RankerConfig:
    """The simulated multi-task ranker: what makes its predictions differ from the user's true probabilities.

    The error has three parts (``docs/user_model.md``): a low-rank user x item term (model misspecification,
    scaled per segment and task), a systematic over-estimate of clickbait's appeal (the ranker learns from
    clicks), and blindness to in-session state (boredom, satisfaction), which the ranker does not see.
    """

    error_rank: int = 4
    # Per-task error scale on the logit (log for watch time) scale, in PREDICTABLE_TASKS order.
    task_noise: tuple[float, ...] = (0.35, 0.30, 0.40, 0.55, 0.7, 0.8, 0.8)
    clickbait_overestimate: float = 0.6
    watch_time_scale_s: float = 60.0

    def __post_init__(self) -> None:
        _check_finite_fields(self)
        _check(self.error_rank >= 1, "RankerConfig", "error_rank", self.error_rank, "an integer >= 1")
        _check(len(self.task_noise) == len(PREDICTABLE_TASKS) and all(v >= 0 for v in self.task_noise),
               "RankerConfig", "task_noise", self.task_noise, f"{len(PREDICTABLE_TASKS)} numbers >= 0")
        _check(self.watch_time_scale_s > 0, "RankerConfig", "watch_time_scale_s", self.watch_time_scale_s, "> 0")


@dataclass(frozen=True)
class MTFSessionConfig:
    """All parameters of ``MTFSession-v0``.

    Attributes:
        ranker_tasks: the T tasks whose predictions are fused (subset of :data:`PREDICTABLE_TASKS`, in order).
        num_candidates: C, candidates retrieved per request.
        page_size: K, items shown per request (KuaiRand: up to 6 videos per request).
        max_requests: requests after which the session is truncated.
        num_topics, items_per_topic: catalogue size (items = num_topics * items_per_topic).
        catalogue_seed: seed of the item catalogue, fixed across episodes like a real platform's inventory.
        median_duration_s, duration_log_std: log-normal video durations (KuaiRec's median is ~9.6 s; 12 s here
            so that long views are not mostly completed sub-10 s clips, see docs/user_model.md).
        clickbait_share: fraction of catalogue items that are clickbait.
        fusion: ranges the action is mapped onto.
        reward: reward weights.
        user: user model coefficients.
        ranker: ranker error model.
        item_logs: put per-item logs in ``info`` (needed for weighted GAUC; off is faster).
    """

    ranker_tasks: tuple[str, ...] = ("valid_view", "watch_time", "long_view", "like", "follow")
    num_candidates: int = 50
    page_size: int = 6
    max_requests: int = 30
    num_topics: int = 20
    items_per_topic: int = 150
    catalogue_seed: int = 20240426
    median_duration_s: float = 12.0
    duration_log_std: float = 0.75
    clickbait_share: float = 0.15
    fusion: FusionRanges = field(default_factory=FusionRanges)
    reward: RewardWeights = field(default_factory=RewardWeights)
    user: UserModelConfig = field(default_factory=UserModelConfig)
    ranker: RankerConfig = field(default_factory=RankerConfig)
    item_logs: bool = True

    def __post_init__(self) -> None:
        _check_finite_fields(self)
        tasks = self.ranker_tasks
        _check(isinstance(tasks, tuple) and len(tasks) >= 1 and len(set(tasks)) == len(tasks)
               and all(t in PREDICTABLE_TASKS for t in tasks), "MTFSessionConfig", "ranker_tasks", tasks,
               f"a non-empty tuple of distinct names from {PREDICTABLE_TASKS}")
        _check(isinstance(self.page_size, int) and self.page_size >= 1, "MTFSessionConfig", "page_size",
               self.page_size, "an integer >= 1")
        _check(isinstance(self.num_candidates, int) and self.num_candidates >= self.page_size, "MTFSessionConfig",
               "num_candidates", self.num_candidates, f"an integer >= page_size ({self.page_size})")
        _check(isinstance(self.max_requests, int) and self.max_requests >= 1, "MTFSessionConfig", "max_requests",
               self.max_requests, "an integer >= 1")
        _check(isinstance(self.num_topics, int) and 2 <= self.num_topics <= 32767, "MTFSessionConfig",
               "num_topics", self.num_topics, "an integer in [2, 32767]")
        _check(isinstance(self.items_per_topic, int) and self.items_per_topic >= self.num_candidates,
               "MTFSessionConfig", "items_per_topic", self.items_per_topic,
               f"an integer >= num_candidates ({self.num_candidates}) so a request never repeats an item")
        _check(self.median_duration_s > 0, "MTFSessionConfig", "median_duration_s", self.median_duration_s, "> 0")
        _check(self.duration_log_std >= 0, "MTFSessionConfig", "duration_log_std", self.duration_log_std, ">= 0")
        _check(0.0 <= self.clickbait_share <= 1.0, "MTFSessionConfig", "clickbait_share", self.clickbait_share,
               "in [0, 1]")
        for name, cls in (("fusion", FusionRanges), ("reward", RewardWeights), ("user", UserModelConfig),
                          ("ranker", RankerConfig)):
            _check(isinstance(getattr(self, name), cls), "MTFSessionConfig", name, getattr(self, name),
                   f"a {cls.__name__}")

    @property
    def num_tasks(self) -> int:
        return len(self.ranker_tasks)

    @property
    def action_dim(self) -> int:
        return 2 * len(self.ranker_tasks)

    @property
    def num_items(self) -> int:
        return self.num_topics * self.items_per_topic

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON-serialisable), e.g. for dataset datasheets."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MTFSessionConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise a ``TypeError`` naming them."""
        data = dict(data)
        nested = {"fusion": FusionRanges, "reward": RewardWeights, "user": UserModelConfig, "ranker": RankerConfig}
        for key, sub in nested.items():
            if isinstance(data.get(key), dict):
                sub_data = dict(data[key])
                if sub is UserModelConfig and isinstance(sub_data.get("segments"), dict):
                    sub_data["segments"] = SegmentParams(**{k: tuple(v) for k, v in sub_data["segments"].items()})
                sub_data = {k: tuple(v) if isinstance(v, list) else v for k, v in sub_data.items()}
                data[key] = sub(**sub_data)
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**data)


def config_from_kwargs(config: MTFSessionConfig | None, kwargs: dict[str, Any]) -> MTFSessionConfig:
    """Build the env's config from ``gym.make(..., config=..., **kwargs)``: kwargs override fields of ``config``."""
    if config is not None and not isinstance(config, MTFSessionConfig):
        raise TypeError(f"config must be an MTFSessionConfig, got {type(config).__name__}")
    base = config if config is not None else MTFSessionConfig()
    if not kwargs:
        return base
    names = {f.name for f in dataclasses.fields(MTFSessionConfig)}
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise TypeError(f"unknown MTFSession parameter(s) {unknown}; allowed: {sorted(names)}")
    return dataclasses.replace(base, **kwargs)

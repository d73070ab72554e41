"""The data layout the v1 kernels share: three structures instead of long positional argument lists.

* :class:`Model` - read-only parameters (catalogue tables, coefficient vectors, layout integers);
* :class:`Users` - the per-row user state (profile drawn at session start, in-session state, history);
* :class:`Scratch` - per-chunk work buffers (a chunk of rows per thread), reused every step;
* :class:`Outputs` - what a step writes, row by row.

They are plain named tuples of NumPy arrays, which numba passes to compiled functions as one typed argument. The
column constants below name every column of every table; kernels index with them, never with bare numbers.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mtf_gym.config import RESPONSE_FIELDS

__all__ = ["OBSERVATION_FEATURES_V1", "Model", "Outputs", "Scratch", "Users"]


def _names(*names: str) -> dict[str, int]:
    return {name: i for i, name in enumerate(names)}


# ---------------------------------------------------------------------------------------------- observation (v1)
OBSERVATION_FEATURES_V1: tuple[str, ...] = (
    "account_age",
    "history_valid_view_rate",
    "history_long_view_rate",
    "history_like_rate",
    "history_follow_rate",
    "history_interest_concentration",
    "request_progress",
    "last_valid_view_rate",
    "last_long_view_rate",
    "last_engagement_rate",
    "last_quick_skip_rate",
    "last_watch_fraction",
    "session_valid_view_rate",
    "session_long_view_rate",
    "session_engagement_rate",
    "session_quick_skip_rate",
    "session_watch_fraction",
    "session_watch_minutes",
    "last_page_topic_share",
)
OBS_DIM = len(OBSERVATION_FEATURES_V1)
OBS_PROFILE = 0  # first of the 6 long-term statistics, fixed for the session
NUM_PROFILE_OBS = 6
OBS_PROGRESS = 6
OBS_LAST = 7
OBS_SESSION = 12
OBS_SESSION_MINUTES = 17
OBS_TOPIC_SHARE = 18
HISTORY_WIDTH = 5  # valid view, long view, engagement, quick skip, watch fraction (per page)

# History per row: last page (5), session sums (5), session watch minutes, last page's top-topic share.
H_LAST, H_SUM, H_MINUTES, H_TOPIC_SHARE = 0, HISTORY_WIDTH, 2 * HISTORY_WIDTH, 2 * HISTORY_WIDTH + 1
HISTORY_COLUMNS = 2 * HISTORY_WIDTH + 2

# ---------------------------------------------------------------------------------------------- responses
NUM_RESPONSES = len(RESPONSE_FIELDS)
R_WATCH, R_VALID, R_LONG, R_LIKE, R_COMMENT, R_FOLLOW, R_SHARE, R_HATE, R_QUICK_SKIP = range(NUM_RESPONSES)
assert RESPONSE_FIELDS[R_LIKE:R_SHARE + 1] == ("like", "comment", "follow", "share")
NUM_ENGAGEMENT = 4
UNIFORMS_PER_ITEM = 9  # hook, patience, glance, delight, like, comment, follow, share, hate
TOPIC_TABLE_SIZE = 256  # interest distribution quantised to 1/256 for O(1) topic sampling

# ---------------------------------------------------------------------------------------------- item table
# One row per item holding every per-item number a step reads (the user model's attributes, then the ranker's
# item error features), ITEM_ROW_FLOATS float32 wide and cache-line aligned (mtf_gym.sim.items): at catalogue sizes
# beyond the CPU caches a shown item then costs one cache miss. View times and the glance mean are not stored: they
# are min(duration, a constant) (mtf_gym.sim.items.valid_time, long_time, glance_mean).
ITEM_COLUMNS = _names(
    "hook", "hook_ranker_exp", "log_patience", "patience_scale", "engagement", "engagement_exp", "hate",
    "duration_s", "clickbait", "length_excess",
)
(I_HOOK, I_HOOK_RANKER_EXP, I_LOG_PATIENCE, I_PATIENCE_SCALE, I_ENGAGEMENT, I_ENGAGEMENT_EXP, I_HATE, I_DURATION,
 I_CLICKBAIT, I_LENGTH_EXCESS) = ITEM_COLUMNS.values()
I_ERROR = len(ITEM_COLUMNS)  # first of the ranker's `error_rank` item error features
ITEM_ROW_FLOATS = 16  # one 64-byte cache line; a row grows by whole lines when the error rank needs more


def item_row_floats(error_rank: int) -> int:
    """Width of the item table (float32 columns) for a ranker error of rank ``error_rank``: whole cache lines."""
    return -(-(I_ERROR + error_rank) // ITEM_ROW_FLOATS) * ITEM_ROW_FLOATS


# ---------------------------------------------------------------------------------------------- user tables
# Per user x topic (the user side of every logit), (N, UT_WIDTH, topics); the *_EXP columns are exponentials the
# ranker multiplies by the item's (exp(-(u + i)) = exp(-u) exp(-i): fewer exp calls per candidate).
(UT_HOOK, UT_LOG_PATIENCE, UT_ENGAGEMENT, UT_HATE, UT_HOOK_EXP, UT_PATIENCE, UT_ENGAGEMENT_EXP) = range(7)
UT_WIDTH = 7
# Per-user latent traits, (N, TRAIT_WIDTH). These are the model's parameters of the user: never observed.
TRAIT_NAMES: tuple[str, ...] = (
    "log_activity", "log_patience", "engagement_offset", "clickbait_aversion", "boredom_sensitivity", "watch_drive",
    "fatigue_rate", "log_account_age", "cold_start", "leave_base",
)
(T_LOG_ACTIVITY, T_LOG_PATIENCE, T_ENGAGEMENT_OFFSET, T_AVERSION, T_BOREDOM_SENSITIVITY, T_WATCH_DRIVE,
 T_FATIGUE_RATE, T_LOG_ACCOUNT_AGE, T_COLD_START, T_LEAVE_BASE) = range(len(TRAIT_NAMES))
TRAIT_WIDTH = len(TRAIT_NAMES)
# In-session latent state, (N, STATE_WIDTH).
STATE_NAMES: tuple[str, ...] = ("satisfaction", "fatigue", "top_boredom")
S_SATISFACTION, S_FATIGUE, S_TOP_BOREDOM = range(len(STATE_NAMES))
STATE_WIDTH = len(STATE_NAMES)

# ---------------------------------------------------------------------------------------------- coefficient vectors
# Dynamics scalars (UserDynamicsV1 fields, plus derived ones), one float32 vector.
DYNAMICS_SCALARS: tuple[str, ...] = (
    "hook_satisfaction", "hook_fatigue_length", "patience_boredom", "patience_satisfaction", "patience_fatigue",
    "quick_skip_s", "valid_view_s", "long_view_s", "glance_mean_s", "delight_scale", "boredom_decay",
    "satisfaction_decay", "satisfaction_gain_watch", "satisfaction_gain_interaction", "interaction_offset",
    "satisfaction_loss_quick_skip", "satisfaction_loss_hate", "low_mood_clickbait", "satisfaction_baseline",
    "leave_satisfaction", "leave_boredom", "leave_fatigue", "inverse_watch_time_scale", "like_bias", "comment_bias",
    "follow_bias", "share_bias",
)
(M_HOOK_SAT, M_HOOK_FATIGUE_LENGTH, M_PATIENCE_BOREDOM, M_PATIENCE_SAT, M_PATIENCE_FATIGUE, M_QUICK_SKIP_S,
 M_VALID_VIEW_S, M_LONG_VIEW_S, M_GLANCE_MEAN_S, M_DELIGHT_SCALE, M_BOREDOM_DECAY, M_SAT_DECAY, M_GAIN_WATCH,
 M_GAIN_INTERACTION, M_INTERACTION_OFFSET, M_LOSS_QUICK_SKIP, M_LOSS_HATE, M_LOW_MOOD, M_SAT_BASELINE, M_LEAVE_SAT,
 M_LEAVE_BOREDOM, M_LEAVE_FATIGUE, M_INV_WATCH_SCALE, M_ENGAGEMENT_BIAS) = range(len(DYNAMICS_SCALARS) - 3)
# The four engagement biases are consecutive from M_ENGAGEMENT_BIAS (like, comment, follow, share).
assert DYNAMICS_SCALARS[M_ENGAGEMENT_BIAS:] == ("like_bias", "comment_bias", "follow_bias", "share_bias")
# Session-start scalars (population spreads, profile coefficients, history), one float32 vector.
PROFILE_SCALARS: tuple[str, ...] = (
    "hook_affinity", "patience_affinity", "engagement_affinity", "hate_affinity", "retrieval_exploration",
    "initial_satisfaction_std", "leave_bias", "leave_activity", "activity_std", "patience_spread",
    "engagement_spread", "aversion_spread", "boredom_spread", "watch_drive_spread", "fatigue_spread",
    "account_age_spread", "cold_noise_floor", "cold_noise_gain", "cold_start_days", "task_noise_spread",
    "history_impressions", "max_history_impressions", "hook_quality", "hook_clickbait", "patience_quality",
    "patience_clickbait", "engagement_quality", "engagement_clickbait", "valid_view_s", "long_view_s",
)
(P_HOOK_AFF, P_PATIENCE_AFF, P_ENGAGEMENT_AFF, P_HATE_AFF, P_EXPLORATION, P_SAT_STD, P_LEAVE_BIAS, P_LEAVE_ACTIVITY,
 P_ACTIVITY_STD, P_PATIENCE_SPREAD, P_ENGAGEMENT_SPREAD, P_AVERSION_SPREAD, P_BOREDOM_SPREAD, P_WATCH_DRIVE_SPREAD,
 P_FATIGUE_SPREAD, P_AGE_SPREAD, P_COLD_FLOOR, P_COLD_GAIN, P_COLD_DAYS, P_TASK_NOISE_SPREAD, P_HISTORY_PER_DAY,
 P_MAX_HISTORY, P_HOOK_QUALITY, P_HOOK_CLICKBAIT, P_PATIENCE_QUALITY, P_PATIENCE_CLICKBAIT, P_ENGAGEMENT_QUALITY,
 P_ENGAGEMENT_CLICKBAIT, P_VALID_VIEW_S, P_LONG_VIEW_S) = range(len(PROFILE_SCALARS))
# Per-segment trait means (mtf_gym.sim.config.SEGMENT_COLUMNS order).
(G_CONCENTRATION, G_HOOK_BIAS, G_PATIENCE_S, G_ENGAGEMENT_OFFSET, G_AVERSION, G_BOREDOM, G_WATCH_DRIVE,
 G_FATIGUE_RATE, G_ACCOUNT_AGE) = range(9)
# Integer layout, one int64 vector.
(D_CANDIDATES, D_PAGE, D_PER_TOPIC, D_STRIDE, D_MAX_REQUESTS) = range(5)
# Prior (population) rates the observed long-term statistics shrink towards, and its weight in impressions.
HISTORY_PRIOR = np.array([0.45, 0.33, 0.018, 0.0011], np.float32)
HISTORY_PRIOR_WEIGHT = np.float32(30.0)
HISTORY_REFERENCE_ITEMS = 24


class Model(NamedTuple):
    """Read-only parameters every kernel reads."""

    dims: np.ndarray  # int64 (D_*)
    tasks: np.ndarray  # int64 (T,): PREDICTABLE_TASKS index of each fused task
    fusion: np.ndarray  # float32: FusionRanges.kernel_params()
    dynamics: np.ndarray  # float32 (DYNAMICS_SCALARS)
    profile: np.ndarray  # float32 (PROFILE_SCALARS)
    reward: np.ndarray  # float32 (NUM_RESPONSES,)
    items: np.ndarray  # float32 (N_items, item_row_floats(rank)), 64-byte aligned: ITEM_COLUMNS, then I_ERROR..
    segments: np.ndarray  # float32 (segments, G_*)
    cum_share: np.ndarray  # float64 (segments - 1,)
    task_noise: np.ndarray  # float32 (len(PREDICTABLE_TASKS),)
    ranker_offset: np.ndarray  # float32 (segments, len(PREDICTABLE_TASKS)): log calibration multiplier


class Users(NamedTuple):
    """Per-row user state. Row ``i`` of every array belongs to user slot ``i``."""

    keys: np.ndarray  # uint64 (N,)
    segment: np.ndarray  # int64 (N,)
    request_index: np.ndarray  # int64 (N,)
    topic_table: np.ndarray  # int16 (N, TOPIC_TABLE_SIZE)
    affinity: np.ndarray  # float32 (N, topics)
    user_topic: np.ndarray  # float32 (N, UT_WIDTH, topics)
    traits: np.ndarray  # float32 (N, TRAIT_WIDTH)
    engagement_exp: np.ndarray  # float32 (N, NUM_ENGAGEMENT): exp(-bias_k)
    ranker_error: np.ndarray  # float32 (N, rank, T)
    ranker_scale: np.ndarray  # float32 (N, T): exp(-var/2 + offset), the mean correction
    state: np.ndarray  # float32 (N, STATE_WIDTH)
    boredom: np.ndarray  # float32 (N, topics)
    history: np.ndarray  # float32 (N, HISTORY_COLUMNS)
    profile_obs: np.ndarray  # float32 (N, NUM_PROFILE_OBS)


class Scratch(NamedTuple):
    """Work buffers, one set per chunk of rows (leading axis: chunk)."""

    candidates: np.ndarray  # int64 (chunks, C)
    topics: np.ndarray  # int64 (chunks, C)
    preds: np.ndarray  # float32 (chunks, C, T)
    scores: np.ndarray  # float32 (chunks, C)
    powers: np.ndarray  # float32 (chunks, T)
    biases: np.ndarray  # float32 (chunks, T)
    order: np.ndarray  # int64 (chunks, K)
    page_sum: np.ndarray  # float32 (chunks, NUM_RESPONSES + 2): responses, hooked clickbait, interaction
    page_topics: np.ndarray  # int64 (chunks, K)
    normals: np.ndarray  # float32 (chunks, even count)


class Outputs(NamedTuple):
    """What a step writes (row ``i`` of each array for user ``i``)."""

    observations: np.ndarray  # float32 (N, OBS_DIM)
    rewards: np.ndarray  # float64 (N,)
    terminated: np.ndarray  # bool (N,)
    truncated: np.ndarray  # bool (N,)
    clipped: np.ndarray  # int64 (N,)
    item_ids: np.ndarray  # int64 (N, K)
    predictions: np.ndarray  # float32 (N, K, T)
    responses: np.ndarray  # float32 (N, K, NUM_RESPONSES)
    item_rewards: np.ndarray  # float32 (N, K)


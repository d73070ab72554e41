"""Session start: draw a new v1 user (latent traits, interests, ranker error) and the statistics a feature log holds.

``docs/user_model.md`` (v1, section 2) writes the distributions out. Everything is drawn from the session key on the
reserved profile counter (:data:`mtf_gym.rng.PROFILE_STREAM`), so a user is a pure function of its key.
"""

from __future__ import annotations

import math

import numpy as np

from mtf_gym.rng import PROFILE_STREAM, counter_normals, counter_uniform
from mtf_gym.sim.funnel import survival
from mtf_gym.sim.items import long_time, valid_time
from mtf_gym.sim.layout import (
    G_ACCOUNT_AGE,
    G_AVERSION,
    G_BOREDOM,
    G_CONCENTRATION,
    G_ENGAGEMENT_OFFSET,
    G_FATIGUE_RATE,
    G_HOOK_BIAS,
    G_PATIENCE_S,
    G_WATCH_DRIVE,
    HISTORY_PRIOR,
    HISTORY_PRIOR_WEIGHT,
    HISTORY_REFERENCE_ITEMS,
    I_ENGAGEMENT,
    I_HOOK,
    I_LOG_PATIENCE,
    M_ENGAGEMENT_BIAS,
    NUM_ENGAGEMENT,
    P_ACTIVITY_STD,
    P_AGE_SPREAD,
    P_AVERSION_SPREAD,
    P_BOREDOM_SPREAD,
    P_COLD_DAYS,
    P_COLD_FLOOR,
    P_COLD_GAIN,
    P_ENGAGEMENT_AFF,
    P_ENGAGEMENT_SPREAD,
    P_EXPLORATION,
    P_FATIGUE_SPREAD,
    P_HATE_AFF,
    P_HISTORY_PER_DAY,
    P_HOOK_AFF,
    P_LEAVE_ACTIVITY,
    P_LEAVE_BIAS,
    P_MAX_HISTORY,
    P_PATIENCE_AFF,
    P_PATIENCE_SPREAD,
    P_SAT_STD,
    P_TASK_NOISE_SPREAD,
    P_WATCH_DRIVE_SPREAD,
    S_FATIGUE,
    S_SATISFACTION,
    S_TOP_BOREDOM,
    T_AVERSION,
    T_BOREDOM_SENSITIVITY,
    T_COLD_START,
    T_ENGAGEMENT_OFFSET,
    T_FATIGUE_RATE,
    T_LEAVE_BASE,
    T_LOG_ACCOUNT_AGE,
    T_LOG_ACTIVITY,
    T_LOG_PATIENCE,
    T_WATCH_DRIVE,
    TOPIC_TABLE_SIZE,
    UT_ENGAGEMENT,
    UT_ENGAGEMENT_EXP,
    UT_HATE,
    UT_HOOK,
    UT_HOOK_EXP,
    UT_LOG_PATIENCE,
    UT_PATIENCE,
)
from mtf_gym.sim.links import sigmoid
from mtf_gym.sim.memory import kernel_jit, prefetch

__all__ = ["NUM_TRAIT_NORMALS", "num_start_normals", "start_row"]

_F0, _F1, _HALF = np.float32(0.0), np.float32(1.0), np.float32(0.5)
_MAX_AGE_DAYS = np.float32(3650.0)
# Normals after the topic affinities: activity, satisfaction, 7 traits, 5 history-noise draws, cold-start factor.
NUM_TRAIT_NORMALS = 2 + 7 + 5 + 1
# Counter of the reference impressions behind the user's long-term statistics (distinct from PROFILE_STREAM).
_HISTORY_STREAM = PROFILE_STREAM + 1


def num_start_normals(num_topics: int, rank: int, num_predictable: int) -> int:
    """Normals a session start draws (an even number): affinities, traits, ranker error, per-task noise factors."""
    count = num_topics + NUM_TRAIT_NORMALS + rank * num_predictable + num_predictable
    return 2 * ((count + 1) // 2)


@kernel_jit
def start_row(i, key, model, users, normals):
    """Draw a new user for row ``i`` from ``key`` and reset its session state."""
    profile, dyn = model.profile, model.dynamics
    num_topics = users.boredom.shape[1]
    counter = np.uint64(PROFILE_STREAM)
    u0 = counter_uniform(key, counter, np.uint64(0))
    counter_normals(key, counter, normals)
    g = 0
    while g < model.cum_share.shape[0] and model.cum_share[g] <= u0:
        g += 1
    users.keys[i] = key
    users.segment[i] = g
    seg = model.segments[g]
    z = num_topics  # index of the first non-affinity normal

    # Continuous traits: each a per-segment mean with a within-segment spread (log, logit or linear scale).
    traits = users.traits[i]
    log_activity = profile[P_ACTIVITY_STD] * normals[z]
    log_patience = np.float32(math.log(seg[G_PATIENCE_S])) + profile[P_PATIENCE_SPREAD] * normals[z + 2]
    engagement_offset = seg[G_ENGAGEMENT_OFFSET] + profile[P_ENGAGEMENT_SPREAD] * normals[z + 3]
    aversion = seg[G_AVERSION] * np.float32(math.exp(profile[P_AVERSION_SPREAD] * normals[z + 4]))
    bored = seg[G_BOREDOM] * np.float32(math.exp(profile[P_BOREDOM_SPREAD] * normals[z + 5]))
    drive_logit = np.float32(math.log(seg[G_WATCH_DRIVE] / (_F1 - seg[G_WATCH_DRIVE])))
    watch_drive = sigmoid(drive_logit + profile[P_WATCH_DRIVE_SPREAD] * normals[z + 6])
    fatigue_rate = seg[G_FATIGUE_RATE] * np.float32(math.exp(profile[P_FATIGUE_SPREAD] * normals[z + 7]))
    log_age = min(np.float32(math.log(seg[G_ACCOUNT_AGE])) + profile[P_AGE_SPREAD] * normals[z + 8],
                  np.float32(math.log(_MAX_AGE_DAYS)))
    log_age = max(log_age, _F0)  # at least one day
    age = np.float32(math.exp(log_age))
    # Cold start: young accounts are noisier for the ranker, with an individual factor (how much signal a user's
    # history carries is not a function of its age alone).
    cold = _F1 / (_F1 + age / profile[P_COLD_DAYS] * np.float32(math.exp(np.float32(0.6) * normals[z + 14])))
    traits[T_LOG_ACTIVITY] = log_activity
    traits[T_LOG_PATIENCE] = log_patience
    traits[T_ENGAGEMENT_OFFSET] = engagement_offset
    traits[T_AVERSION] = aversion
    traits[T_BOREDOM_SENSITIVITY] = bored
    traits[T_WATCH_DRIVE] = watch_drive
    traits[T_FATIGUE_RATE] = fatigue_rate
    traits[T_LOG_ACCOUNT_AGE] = log_age
    traits[T_COLD_START] = cold
    traits[T_LEAVE_BASE] = profile[P_LEAVE_BIAS] - profile[P_LEAVE_ACTIVITY] * log_activity

    # Retrieval distribution: softmax of interests mixed with uniform exploration, as a 256-entry lookup table.
    conc = seg[G_CONCENTRATION]
    top = normals[0] * conc
    for tp in range(1, num_topics):
        top = max(top, normals[tp] * conc)
    total = _F0
    for tp in range(num_topics):
        p = np.float32(math.exp(normals[tp] * conc - top))
        users.boredom[i, tp] = p  # scratch: unnormalised probabilities (boredom is reset below)
        total += p
    eps = profile[P_EXPLORATION]
    cdf = 0.0
    filled = 0
    largest = _F0
    for tp in range(num_topics):
        p = users.boredom[i, tp] / total
        largest = max(largest, p)
        cdf += np.float64((_F1 - eps) * p + eps / np.float32(num_topics))
        bound = TOPIC_TABLE_SIZE if tp == num_topics - 1 else int(np.rint(cdf * TOPIC_TABLE_SIZE))
        while filled < bound:
            users.topic_table[i, filled] = np.int16(tp)
            filled += 1
    # The history statistics below read HISTORY_REFERENCE_ITEMS random item rows: ask for them now, so that their
    # cache misses overlap each other and the work in between (at 10^6 items every one misses).
    for m in range(HISTORY_REFERENCE_ITEMS):
        prefetch(model.items, _reference_item(i, key, model, users, m)[1], 0)
    ut = users.user_topic[i]
    for tp in range(num_topics):
        a = normals[tp]
        users.affinity[i, tp] = a
        ut[UT_HOOK, tp] = seg[G_HOOK_BIAS] + profile[P_HOOK_AFF] * a
        ut[UT_LOG_PATIENCE, tp] = log_patience + _HALF * log_activity + profile[P_PATIENCE_AFF] * a
        ut[UT_ENGAGEMENT, tp] = engagement_offset + profile[P_ENGAGEMENT_AFF] * a
        ut[UT_HATE, tp] = profile[P_HATE_AFF] * a
        ut[UT_HOOK_EXP, tp] = np.float32(math.exp(-ut[UT_HOOK, tp]))
        ut[UT_PATIENCE, tp] = np.float32(math.exp(ut[UT_LOG_PATIENCE, tp]))
        ut[UT_ENGAGEMENT_EXP, tp] = np.float32(math.exp(-ut[UT_ENGAGEMENT, tp]))
        users.boredom[i, tp] = _F0
    for e in range(NUM_ENGAGEMENT):
        users.engagement_exp[i, e] = np.float32(math.exp(-dyn[M_ENGAGEMENT_BIAS + e]))

    # Ranker error: low rank, scale = task noise x cold-start multiplier x a per-user, per-task log-normal factor.
    # The mean correction exp(-var/2) (var = the error's variance over items for this user) makes the ranker
    # mean-calibrated; ranker_offset absorbs the average in-session state it cannot see.
    num_predictable = model.task_noise.shape[0]
    rank = users.ranker_error.shape[1]
    zr = z + NUM_TRAIT_NORMALS  # first ranker-error normal
    zf = zr + rank * num_predictable  # first per-task noise factor
    spread = profile[P_TASK_NOISE_SPREAD]
    cold_mult = profile[P_COLD_FLOOR] + profile[P_COLD_GAIN] * cold
    for col in range(model.tasks.shape[0]):
        task = model.tasks[col]
        scale = (model.task_noise[task] * cold_mult
                 * np.float32(math.exp(spread * normals[zf + task] - _HALF * spread * spread)))
        var = _F0
        for r in range(rank):
            e = normals[zr + r * num_predictable + task] * scale
            users.ranker_error[i, r, col] = e
            var += e * e
        var /= np.float32(rank)  # item error features have variance 1 / rank per component
        users.ranker_scale[i, col] = np.float32(math.exp(model.ranker_offset[g, task] - _HALF * var))

    state = users.state[i]
    state[S_SATISFACTION] = profile[P_SAT_STD] * normals[z + 1]
    state[S_FATIGUE] = _F0
    state[S_TOP_BOREDOM] = _F0
    users.request_index[i] = 0
    users.history[i, :] = _F0
    _long_term_statistics(i, key, model, users, normals[z + 9:z + 14], age, largest)


@kernel_jit(inline="always")
def _reference_item(i, key, model, users, m):
    """Topic and id of row ``i``'s ``m``-th history reference item, drawn from its interests."""
    counter = np.uint64(PROFILE_STREAM + 1)
    tp = np.int64(users.topic_table[i, int(counter_uniform(key, counter, np.uint64(2 * m))
                                           * np.float32(TOPIC_TABLE_SIZE))])
    per_topic = model.dims[2]
    return tp, tp * per_topic + int(counter_uniform(key, counter, np.uint64(2 * m + 1)) * np.float32(per_topic))


@kernel_jit
def _long_term_statistics(i, key, model, users, noise, age, largest):
    """What a feature log holds about the user: rates estimated from a finite history, noisier for young accounts.

    The user's long-run valid-view, long-view, like and follow rates are averaged over reference impressions drawn
    from their interests (their true funnel, no session state); the logged estimate adds the binomial sampling noise
    of ``n = history_impressions x age`` impressions and shrinks towards the population prior.
    """
    profile, dyn, items = model.profile, model.dynamics, model.items
    ut = users.user_topic[i]
    valid_sum, long_sum, like_sum, follow_sum = _F0, _F0, _F0, _F0  # scalars: no allocation per new user
    for m in range(HISTORY_REFERENCE_ITEMS):
        tp, item = _reference_item(i, key, model, users, m)
        hook = sigmoid(ut[UT_HOOK, tp] + items[item, I_HOOK])
        inv_patience = np.float32(math.exp(-(ut[UT_LOG_PATIENCE, tp] + items[item, I_LOG_PATIENCE])))
        p_valid = hook * survival(valid_time(model, item), inv_patience)
        p_long = hook * survival(long_time(model, item), inv_patience)
        engagement = ut[UT_ENGAGEMENT, tp] + items[item, I_ENGAGEMENT]
        valid_sum += p_valid
        long_sum += p_long
        like_sum += p_valid * sigmoid(engagement + dyn[M_ENGAGEMENT_BIAS])
        follow_sum += p_valid * sigmoid(engagement + dyn[M_ENGAGEMENT_BIAS + 2])
    rates = (valid_sum, long_sum, like_sum, follow_sum)
    n = min(profile[P_HISTORY_PER_DAY] * age, profile[P_MAX_HISTORY])
    obs = users.profile_obs[i]
    obs[0] = min(np.float32(math.log(age)) / np.float32(math.log(_MAX_AGE_DAYS)), _F1)
    scales = (np.float32(1.0), np.float32(1.0), np.float32(10.0), np.float32(100.0))
    for k in range(4):
        r = rates[k] / np.float32(HISTORY_REFERENCE_ITEMS)
        count = max(r * n + np.float32(math.sqrt(n * r * (_F1 - r))) * noise[k], _F0)
        estimate = (count + HISTORY_PRIOR_WEIGHT * HISTORY_PRIOR[k]) / (n + HISTORY_PRIOR_WEIGHT)
        obs[1 + k] = min(estimate * scales[k], _F1)
    # Interest concentration estimated from the same history: sampling noise of a share over n impressions.
    obs[5] = min(max(largest + np.float32(math.sqrt(largest * (_F1 - largest) / n)) * noise[4], _F0), _F1)

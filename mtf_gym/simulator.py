"""The batched session simulator shared by the single env and the vector env (one implementation of the dynamics).

Per request, for every user row (``docs/user_model.md`` has the equations):

1. retrieval: ``C`` candidates drawn from the user's topic interests, mixed with uniform exploration;
2. ranker: ``T`` predicted scores per candidate, with a realistic prediction/truth gap;
3. fusion: the action's powers and biases fuse the predictions (:mod:`mtf_gym.fusion`); the top ``K`` are shown;
4. user response: a hook/patience funnel gives watch time, valid view, long view, then likes, comments, follows,
   shares (correlated through a shared per-item "delight"), hates and quick skips;
5. state: topic boredom, satisfaction and the observable history update; the user leaves with a probability that
   depends on what was shown.

The dynamics are two compiled (numba) kernels, one that starts sessions and one that advances them by a request,
each a loop over rows calling a per-row function. :class:`SessionSimulator` holds the state as NumPy arrays and
calls them; the single env is a simulator of one row, the vector env one of ``N`` rows. All randomness is
counter-based (:mod:`mtf_gym.rng`), so row ``i`` of a batch evolves exactly as a batch of one with the same key.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
from numba import njit

from mtf_gym.catalogue import ItemCatalogue
from mtf_gym.config import PREDICTABLE_TASKS, RESPONSE_FIELDS, SEGMENT_NAMES, MTFSessionConfig
from mtf_gym.fusion import fused_top_k, fusion_params_row
from mtf_gym.rng import PROFILE_STREAM, counter_normals, counter_uniform
from mtf_gym.threads import CHUNKS_PER_THREAD, ROWS_PER_CHUNK, get_num_threads, run_chunks
from mtf_gym.validation import rows_and_keys

__all__ = ["OBSERVATION_FEATURES", "SessionSimulator", "StepOutput"]

OBSERVATION_FEATURES: tuple[str, ...] = (
    *(f"segment_{name}" for name in SEGMENT_NAMES),
    "activity_level",
    "interest_concentration",
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
    "topic_repetition",
)
_OBS_DIM = len(OBSERVATION_FEATURES)
_OBS_TOPIC_REPETITION = OBSERVATION_FEATURES.index("topic_repetition")
_HISTORY_WIDTH = 5  # valid view, long view, engagement, quick skip, watch fraction (per page)
_NUM_SEGMENTS = len(SEGMENT_NAMES)
_TOPIC_TABLE_SIZE = 256  # interest distribution quantised to 1/256 for O(1) topic sampling
_QUICK_SKIP_MEAN_FRACTION = 0.6  # mean watch of an unhooked view, as a fraction of quick_skip_s
_ENGAGEMENT_TASKS = ("like", "comment", "follow", "share")
_NUM_ENGAGEMENT = len(_ENGAGEMENT_TASKS)
_UNIFORMS_PER_ITEM = 9  # hook, patience, glance, delight, like, comment, follow, share, hate
_NUM_RESPONSES = len(RESPONSE_FIELDS)
_COL = {name: i for i, name in enumerate(RESPONSE_FIELDS)}
_WATCH, _VALID, _LONG, _LIKE, _HATE, _QUICK_SKIP = (
    _COL[name] for name in ("watch_time_s", "valid_view", "long_view", "like", "hate", "quick_skip")
)

# Task codes of the ranker kernel: PREDICTABLE_TASKS order (valid view, watch time, long view, then engagement).
_TASK_VALID, _TASK_WATCH, _TASK_LONG, _TASK_FIRST_ENGAGEMENT = 0, 1, 2, 3
assert PREDICTABLE_TASKS[:3] == ("valid_view", "watch_time", "long_view")
assert PREDICTABLE_TASKS[3:] == _ENGAGEMENT_TASKS

# Columns of the per-item table (item-side terms of every logit, precomputed once: they do not depend on the user).
# The ``*_exp`` / ``patience_scale`` columns are the exponentials of the ranker's item terms (see _UT_HOOK_EXP).
_ITEM_COLUMNS = ("hook", "hook_ranker", "log_patience", "engagement", "hate", "glance_mean", "duration_s",
                 "valid_view_time_s", "long_view_time_s", "clickbait", "hook_ranker_exp", "patience_scale",
                 "engagement_exp")
(_I_HOOK, _I_HOOK_RANKER, _I_LOG_PATIENCE, _I_ENGAGEMENT, _I_HATE, _I_GLANCE_MEAN, _I_DURATION, _I_VALID_TIME,
 _I_LONG_TIME, _I_CLICKBAIT, _I_HOOK_RANKER_EXP, _I_PATIENCE_SCALE, _I_ENGAGEMENT_EXP) = range(len(_ITEM_COLUMNS))
# Per-user x topic terms of the logits (the user side): (N, _UT_WIDTH, topics).
# The last three are exponentials the ranker multiplies by the item's, so that a candidate costs fewer exp calls:
# exp(-(user + item)) = exp(-user) * exp(-item).
_UT_HOOK, _UT_LOG_PATIENCE, _UT_ENGAGEMENT, _UT_HATE, _UT_HOOK_EXP, _UT_PATIENCE, _UT_ENGAGEMENT_EXP = range(7)
_UT_WIDTH = 7
# Per-user scalars: (N, _U_WIDTH). The last four are exp(-bias) of the engagement logits (like, comment, follow, share).
(_U_LOG_ACTIVITY, _U_INTEREST_CONCENTRATION, _U_SATISFACTION, _U_AVERSION, _U_BOREDOM_SENSITIVITY, _U_LEAVE_BASE,
 _U_ENGAGEMENT_EXP) = range(7)
_U_WIDTH = _U_ENGAGEMENT_EXP + _NUM_ENGAGEMENT
# Model scalars the kernels read, as one float32 vector (names are UserModelConfig/RankerConfig fields).
_MODEL_SCALARS = (
    "hook_satisfaction", "patience_boredom", "patience_satisfaction", "quick_skip_s", "delight_scale",
    "boredom_decay", "satisfaction_decay", "satisfaction_gain_long_view", "satisfaction_gain_engagement",
    "satisfaction_loss_quick_skip", "satisfaction_loss_hate", "leave_per_request", "leave_satisfaction",
    "leave_quick_skip", "leave_boredom", "inverse_watch_time_scale",
)
(_M_HOOK_SAT, _M_PATIENCE_BOREDOM, _M_PATIENCE_SAT, _M_QUICK_SKIP_S, _M_DELIGHT_SCALE, _M_BOREDOM_DECAY,
 _M_SAT_DECAY, _M_GAIN_LONG, _M_GAIN_ENGAGEMENT, _M_LOSS_QUICK_SKIP, _M_LOSS_HATE, _M_LEAVE_PER_REQUEST,
 _M_LEAVE_SAT, _M_LEAVE_QUICK_SKIP, _M_LEAVE_BOREDOM, _M_INV_WATCH_SCALE) = range(len(_MODEL_SCALARS))
# Profile (session start) scalars, one float32 vector.
_PROFILE_SCALARS = ("hook_affinity", "patience_affinity", "engagement_affinity", "hate_affinity",
                    "retrieval_exploration", "initial_satisfaction_std", "leave_bias", "leave_activity")
(_PR_HOOK_AFF, _PR_PATIENCE_AFF, _PR_ENGAGEMENT_AFF, _PR_HATE_AFF, _PR_EXPLORATION, _PR_SAT_STD, _PR_LEAVE_BIAS,
 _PR_LEAVE_ACTIVITY) = range(len(_PROFILE_SCALARS))
# Per-segment table: (segments, _S_WIDTH); the per-task ranker noise (PREDICTABLE_TASKS order) is the last block.
(_S_HOOK_BIAS, _S_LOG_PATIENCE, _S_AVERSION, _S_BOREDOM, _S_CONCENTRATION, _S_ENGAGEMENT_BIAS) = range(6)
_S_TASK_NOISE = _S_ENGAGEMENT_BIAS + _NUM_ENGAGEMENT
_S_WIDTH = _S_TASK_NOISE + len(PREDICTABLE_TASKS)
# Integer layout constants of a simulator, one int64 vector.
(_D_CANDIDATES, _D_PAGE, _D_PER_TOPIC, _D_STRIDE, _D_MAX_REQUESTS) = range(5)

_F0, _F1, _HALF = np.float32(0.0), np.float32(1.0), np.float32(0.5)
_TABLE = np.float32(_TOPIC_TABLE_SIZE)
_DELIGHT_CLIP = np.float32(1e-6)
_GLANCE_MIN, _GLANCE_SPAN = np.float32(0.2), np.float32(0.8)
_INV_MINUTE = np.float32(1.0 / 60.0)
_ACTIVITY_OBS_SCALE = np.float32(0.625)


@dataclass
class StepOutput:
    """What one simulator step returns, batched over rows. Arrays are owned by the caller (fresh each step)."""

    observations: np.ndarray  # (N, obs_dim)
    rewards: np.ndarray  # (N,)
    terminated: np.ndarray  # (N,) user left
    truncated: np.ndarray  # (N,) request cap reached
    clipped: np.ndarray  # (N,) number of action entries clipped to [-1, 1]
    item_ids: np.ndarray | None = None  # (N, K) shown items, in position order
    predictions: np.ndarray | None = None  # (N, K, T) ranker scores of shown items
    responses: np.ndarray | None = None  # (N, K, len(RESPONSE_FIELDS)) true responses
    item_rewards: np.ndarray | None = None  # (N, K) per-item reward (weighted sum of its responses)


@njit(cache=True, inline="always")
def _sigmoid(x: np.float32) -> np.float32:
    return _F1 / (_F1 + np.float32(math.exp(-x)))


# ---------------------------------------------------------------------------------------------------- session start
@njit(cache=True)
def _start_row(i, key, segments, profile, cum_share, task_columns, keys, segment, topic_table, user_topic, user,
               ranker_error, boredom, history, request_index, normals):
    """Draw a new user for row ``i`` from ``key`` and reset its session state."""
    num_topics = boredom.shape[1]
    counter = np.uint64(PROFILE_STREAM)
    u0 = counter_uniform(key, counter, np.uint64(0))
    counter_normals(key, counter, normals)  # Box-Muller normals from uniform pairs
    g = 0
    while g < cum_share.shape[0] and cum_share[g] <= u0:
        g += 1
    keys[i] = key
    segment[i] = g
    seg = segments[g]
    # Retrieval distribution: softmax of interests (segment temperature) mixed with uniform exploration, stored as a
    # 256-entry lookup table so a topic draw is one gather.
    top = normals[0] * seg[_S_CONCENTRATION]
    for tp in range(1, num_topics):
        top = max(top, normals[tp] * seg[_S_CONCENTRATION])
    total = _F0
    largest = _F0
    for tp in range(num_topics):
        p = np.float32(math.exp(normals[tp] * seg[_S_CONCENTRATION] - top))
        boredom[i, tp] = p  # scratch: unnormalised probabilities (boredom is reset below)
        total += p
    eps = profile[_PR_EXPLORATION]
    cdf = 0.0
    filled = 0
    for tp in range(num_topics):
        p = boredom[i, tp] / total
        largest = max(largest, p)
        cdf += np.float64((_F1 - eps) * p + eps / np.float32(num_topics))
        # Topic tp fills round(cdf_tp * 256) - round(cdf_{tp-1} * 256) table entries (rows sum to exactly 256).
        bound = _TOPIC_TABLE_SIZE if tp == num_topics - 1 else int(np.rint(cdf * _TOPIC_TABLE_SIZE))
        while filled < bound:
            topic_table[i, filled] = np.int16(tp)
            filled += 1
    log_activity = np.float32(0.4) * normals[num_topics]
    for tp in range(num_topics):
        affinity = normals[tp]
        user_topic[i, _UT_HOOK, tp] = seg[_S_HOOK_BIAS] + profile[_PR_HOOK_AFF] * affinity
        user_topic[i, _UT_LOG_PATIENCE, tp] = (seg[_S_LOG_PATIENCE] + _HALF * log_activity
                                               + profile[_PR_PATIENCE_AFF] * affinity)
        user_topic[i, _UT_ENGAGEMENT, tp] = profile[_PR_ENGAGEMENT_AFF] * affinity
        user_topic[i, _UT_HATE, tp] = profile[_PR_HATE_AFF] * affinity
        user_topic[i, _UT_HOOK_EXP, tp] = np.float32(math.exp(-user_topic[i, _UT_HOOK, tp]))
        user_topic[i, _UT_PATIENCE, tp] = np.float32(math.exp(user_topic[i, _UT_LOG_PATIENCE, tp]))
        user_topic[i, _UT_ENGAGEMENT_EXP, tp] = np.float32(math.exp(-user_topic[i, _UT_ENGAGEMENT, tp]))
        boredom[i, tp] = _F0
    num_predictable = segments.shape[1] - _S_TASK_NOISE
    for r in range(ranker_error.shape[1]):
        for col in range(task_columns.shape[0]):
            task = task_columns[col]
            ranker_error[i, r, col] = (normals[num_topics + 2 + r * num_predictable + task]
                                       * seg[_S_TASK_NOISE + task])
    user[i, _U_LOG_ACTIVITY] = log_activity
    user[i, _U_INTEREST_CONCENTRATION] = largest
    user[i, _U_SATISFACTION] = profile[_PR_SAT_STD] * normals[num_topics + 1]
    user[i, _U_AVERSION] = seg[_S_AVERSION]
    user[i, _U_BOREDOM_SENSITIVITY] = seg[_S_BOREDOM]
    user[i, _U_LEAVE_BASE] = profile[_PR_LEAVE_BIAS] - profile[_PR_LEAVE_ACTIVITY] * log_activity
    for e in range(_NUM_ENGAGEMENT):
        user[i, _U_ENGAGEMENT_EXP + e] = np.float32(math.exp(-seg[_S_ENGAGEMENT_BIAS + e]))
    request_index[i] = 0
    history[i, :] = _F0


@njit(cache=True)
def _start_rows(rows, new_keys, segments, profile, cum_share, task_columns, keys, segment, topic_table, user_topic,
                user, ranker_error, boredom, history, request_index, normals):
    for j in range(rows.shape[0]):
        _start_row(rows[j], new_keys[j], segments, profile, cum_share, task_columns, keys, segment, topic_table,
                   user_topic, user, ranker_error, boredom, history, request_index, normals)


# ---------------------------------------------------------------------------------------------------- one request
@njit(cache=True)
def _predict_row(i, candidates, topics, tasks, items, item_error, user_topic, user, ranker_error, model, preds):
    """The ranker's ``(C, T)`` predictions for row ``i``'s candidates (see ``docs/user_model.md`` section 3).

    The ranker computes the user's funnel from the long-term profile and the item (it does not see in-session
    boredom or satisfaction, and over-estimates clickbait's hook), then multiplies each task's probability by
    ``exp(e)`` with ``e`` a low-rank user x item error: ``pred = min(1, p_ranker * exp(e))``.
    """
    rank = item_error.shape[1]
    for j in range(candidates.shape[0]):
        item, tp = candidates[j], topics[j]
        hook = _F1 / (_F1 + user_topic[i, _UT_HOOK_EXP, tp] * items[item, _I_HOOK_RANKER_EXP])
        patience = user_topic[i, _UT_PATIENCE, tp] * items[item, _I_PATIENCE_SCALE]
        inv_patience = _F1 / patience
        # Survival of the exponential stopping time to the valid/long thresholds and to the video's end; a
        # threshold equal to the duration (short videos) reuses the same exponential.
        valid_time, long_time = items[item, _I_VALID_TIME], items[item, _I_LONG_TIME]
        duration = items[item, _I_DURATION]
        survive_valid = np.float32(math.exp(-valid_time * inv_patience))
        survive_long = survive_valid if long_time == valid_time else np.float32(math.exp(-long_time * inv_patience))
        survive_end = survive_long if duration == long_time else np.float32(math.exp(-duration * inv_patience))
        p_valid = hook * survive_valid
        # sigma(a + b_e) = 1 / (1 + exp(-a) * exp(-b_e)): one exponential for every engagement task.
        engagement_exp = user_topic[i, _UT_ENGAGEMENT_EXP, tp] * items[item, _I_ENGAGEMENT_EXP]
        for col in range(tasks.shape[0]):
            task = tasks[col]
            if task == _TASK_VALID:
                p = p_valid
            elif task == _TASK_WATCH:
                expected = hook * (_F1 - survive_end) * patience + (_F1 - hook) * items[item, _I_GLANCE_MEAN]
                p = expected * model[_M_INV_WATCH_SCALE]
            elif task == _TASK_LONG:
                p = hook * survive_long
            else:
                p = p_valid / (_F1 + engagement_exp * user[i, _U_ENGAGEMENT_EXP + task - _TASK_FIRST_ENGAGEMENT])
            error = _F0
            for r in range(rank):
                error += item_error[item, r] * ranker_error[i, r, col]
            preds[j, col] = min(p * np.float32(math.exp(error)), _F1)


@njit(cache=True)
def _step_row(i, actions, dims, tasks, fusion, model, reward_weights, items, item_error, keys, segment, topic_table,
              user_topic, user, ranker_error, boredom, history, request_index, candidates, topics, preds, scores,
              powers, biases, order, page_sum, obs, rewards, terminated, truncated, clipped, shown_ids, shown_preds,
              responses, item_rewards):
    """Advance row ``i`` by one request and write its outputs (row ``i`` of every output array)."""
    num_candidates, page = dims[_D_CANDIDATES], dims[_D_PAGE]
    per_topic, stride = dims[_D_PER_TOPIC], dims[_D_STRIDE]
    num_topics = boredom.shape[1]
    key, counter = keys[i], np.uint64(request_index[i])
    clipped[i] = fusion_params_row(actions[i], fusion, powers, biases)

    # 1. Retrieval: topics by interest; items of a topic spread by a stride coprime to its size, so no repeats.
    offset = int(counter_uniform(key, counter, np.uint64(num_candidates)) * np.float32(per_topic))
    for j in range(num_candidates):
        draw = int(counter_uniform(key, counter, np.uint64(j)) * _TABLE)
        tp = np.int64(topic_table[i, draw])
        topics[j] = tp
        candidates[j] = tp * per_topic + (offset + j * stride) % per_topic

    # 2. Ranker predictions; 3. fusion and top-K (insertion into a sorted page: K is small).
    _predict_row(i, candidates, topics, tasks, items, item_error, user_topic, user, ranker_error, model, preds)
    shown = shown_ids[i]
    fused_top_k(preds, powers, biases, scores, order)

    # 4. True responses of the shown items (with the state before this request).
    sat = user[i, _U_SATISFACTION]
    base_lane = num_candidates + 1
    page_sum[:] = _F0
    clickbait_hooked = _F0
    reward = _F0
    for k in range(page):
        j = order[k]
        item, tp = candidates[j], topics[j]
        shown[k] = item
        for col in range(tasks.shape[0]):
            shown_preds[i, k, col] = preds[j, col]
        lane = np.uint64(base_lane + k * _UNIFORMS_PER_ITEM)
        b = boredom[i, tp]
        hook_logit = (user_topic[i, _UT_HOOK, tp] + items[item, _I_HOOK] - user[i, _U_BOREDOM_SENSITIVITY] * b
                      + model[_M_HOOK_SAT] * sat)
        hooked = counter_uniform(key, counter, lane) < _sigmoid(hook_logit)
        duration = items[item, _I_DURATION]
        if hooked:
            log_patience = (user_topic[i, _UT_LOG_PATIENCE, tp] + items[item, _I_LOG_PATIENCE]
                            + model[_M_PATIENCE_BOREDOM] * b + model[_M_PATIENCE_SAT] * sat)
            # Exponential stopping time once hooked.
            u = counter_uniform(key, counter, lane + np.uint64(1))
            watch = np.float32(math.exp(log_patience)) * -np.float32(math.log1p(-u))
            clickbait_hooked += items[item, _I_CLICKBAIT]
        else:
            watch = (_GLANCE_MIN + _GLANCE_SPAN * counter_uniform(key, counter, lane + np.uint64(2))) * model[
                _M_QUICK_SKIP_S]
        watch = min(watch, duration)
        valid = watch >= items[item, _I_VALID_TIME]
        response = responses[i, k]
        response[_WATCH] = watch
        response[_VALID] = valid
        response[_LONG] = watch >= items[item, _I_LONG_TIME]
        response[_QUICK_SKIP] = watch < model[_M_QUICK_SKIP_S] and watch < duration
        # Engagement only on valid views; a shared logistic "delight" term correlates like/comment/follow/share.
        delight = min(max(counter_uniform(key, counter, lane + np.uint64(3)), _DELIGHT_CLIP), _F1 - _DELIGHT_CLIP)
        engagement = (user_topic[i, _UT_ENGAGEMENT, tp] + items[item, _I_ENGAGEMENT]
                      + model[_M_DELIGHT_SCALE] * np.float32(math.log(delight / (_F1 - delight))))
        engagement_exp = np.float32(math.exp(-engagement))  # sigma(a + b_e) = 1 / (1 + exp(-a) * exp(-b_e))
        for e in range(_NUM_ENGAGEMENT):
            engaged = valid and counter_uniform(key, counter, lane + np.uint64(4 + e)) < _F1 / (
                _F1 + engagement_exp * user[i, _U_ENGAGEMENT_EXP + e])
            response[_LIKE + e] = engaged
        hate_logit = user_topic[i, _UT_HATE, tp] + items[item, _I_HATE]
        response[_HATE] = not valid and counter_uniform(key, counter, lane + np.uint64(8)) < _sigmoid(hate_logit)
        item_reward = _F0
        for f in range(_NUM_RESPONSES):
            item_reward += response[f] * reward_weights[f]
            page_sum[f] += response[f]
        item_rewards[i, k] = item_reward
        reward += item_reward
    rewards[i] = reward

    # 5. State transition: topic boredom is a moving average of topic shares; satisfaction integrates the page.
    inv_k = _F1 / np.float32(page)
    decay = model[_M_BOREDOM_DECAY]
    for tp in range(num_topics):
        boredom[i, tp] *= decay
    for k in range(page):
        boredom[i, topics[order[k]]] += (_F1 - decay) * inv_k
    engaged_rate = _F0
    for e in range(_NUM_ENGAGEMENT):
        engaged_rate += page_sum[_LIKE + e] * inv_k
    satisfaction = sat * model[_M_SAT_DECAY] + (
        model[_M_GAIN_LONG] * page_sum[_LONG] * inv_k
        + model[_M_GAIN_ENGAGEMENT] * engaged_rate
        - user[i, _U_AVERSION] * clickbait_hooked * inv_k
        - model[_M_LOSS_QUICK_SKIP] * page_sum[_QUICK_SKIP] * inv_k
        - model[_M_LOSS_HATE] * page_sum[_HATE] * inv_k
    )
    user[i, _U_SATISFACTION] = satisfaction
    last = history[i, :_HISTORY_WIDTH]
    last[0] = page_sum[_VALID] * inv_k
    last[1] = page_sum[_LONG] * inv_k
    last[2] = min(engaged_rate, _F1)
    last[3] = page_sum[_QUICK_SKIP] * inv_k
    last[4] = min(page_sum[_WATCH] * inv_k * _INV_MINUTE, _F1)
    for h in range(_HISTORY_WIDTH):
        history[i, _HISTORY_WIDTH + h] += last[h]
    requests = request_index[i] + 1
    request_index[i] = requests

    # Leave (terminated) after the page; the request cap truncates. The new observation's topic_repetition is the
    # largest topic boredom the leave logit needs.
    _observe_row(i, segment, user, request_index, history, boredom, dims[_D_MAX_REQUESTS], obs)
    leave_logit = (user[i, _U_LEAVE_BASE] + model[_M_LEAVE_PER_REQUEST] * np.float32(requests)
                   - model[_M_LEAVE_SAT] * satisfaction + model[_M_LEAVE_QUICK_SKIP] * last[3]
                   + model[_M_LEAVE_BOREDOM] * obs[i, _OBS_TOPIC_REPETITION])
    leave_lane = np.uint64(base_lane + page * _UNIFORMS_PER_ITEM)
    terminated[i] = counter_uniform(key, counter, leave_lane) < _sigmoid(leave_logit)
    truncated[i] = requests >= dims[_D_MAX_REQUESTS] and not terminated[i]


@njit(cache=True)
def _observe_row(i, segment, user, request_index, history, boredom, max_requests, obs):
    """Row ``i`` of the observation (``OBSERVATION_FEATURES``)."""
    row = obs[i]
    for g in range(_NUM_SEGMENTS):
        row[g] = _F1 if segment[i] == g else _F0
    row[4] = min(max(_HALF + user[i, _U_LOG_ACTIVITY] * _ACTIVITY_OBS_SCALE, _F0), _F1)
    row[5] = user[i, _U_INTEREST_CONCENTRATION]
    steps = np.float32(request_index[i])
    row[6] = steps / np.float32(max_requests)
    for h in range(_HISTORY_WIDTH):
        row[7 + h] = history[i, h]
        row[12 + h] = history[i, _HISTORY_WIDTH + h] / max(steps, _F1)
    top = _F0
    for tp in range(boredom.shape[1]):
        top = max(top, boredom[i, tp])
    row[_OBS_TOPIC_REPETITION] = top


@njit(cache=True)
def _observe_rows(segment, user, request_index, history, boredom, max_requests, obs):
    for i in range(obs.shape[0]):
        _observe_row(i, segment, user, request_index, history, boredom, max_requests, obs)


@njit(cache=True, nogil=True)
def _step_chunk(chunk, num_chunks, restart, restart_keys, actions, dims, tasks, fusion, model, reward_weights, items,
                item_error, segments, profile, cum_share, keys, segment, topic_table, user_topic, user, ranker_error,
                boredom, history, request_index, candidates, topics, preds, scores, powers, biases, order, page_sum,
                normals, obs, rewards, terminated, truncated, clipped, shown_ids, shown_preds, responses,
                item_rewards):
    """Advance the rows of one contiguous chunk, with that chunk's scratch (results do not depend on the chunking).

    A row with ``restart[i]`` starts a new session from ``restart_keys[i]`` instead (its outputs: the new session's
    first observation, zero reward, not done). Releases the GIL, so chunks run on several threads at once.
    """
    n = restart.shape[0]
    for i in range(chunk * n // num_chunks, (chunk + 1) * n // num_chunks):
        if restart[i]:
            _start_row(i, restart_keys[i], segments, profile, cum_share, tasks, keys, segment, topic_table,
                       user_topic, user, ranker_error, boredom, history, request_index, normals[chunk])
            _observe_row(i, segment, user, request_index, history, boredom, dims[_D_MAX_REQUESTS], obs)
        else:
            _step_row(i, actions, dims, tasks, fusion, model, reward_weights, items, item_error, keys, segment,
                      topic_table, user_topic, user, ranker_error, boredom, history, request_index,
                      candidates[chunk], topics[chunk], preds[chunk], scores[chunk], powers[chunk], biases[chunk],
                      order[chunk], page_sum[chunk], obs, rewards, terminated, truncated, clipped, shown_ids,
                      shown_preds, responses, item_rewards)


class SessionSimulator:
    """``num_rows`` user sessions advanced in lock-step. Rows are (re)started with :meth:`start_sessions`.

    Public state (NumPy arrays over rows, updated in place): ``keys``, ``segment``, ``request_index``,
    ``satisfaction``, ``boredom`` (per topic), ``last_page`` and ``session_sum`` (the observable history),
    ``log_activity``, ``interest_concentration``, ``ranker_user_error``; ``catalogue`` is the item side.
    """

    def __init__(self, config: MTFSessionConfig, num_rows: int) -> None:
        if num_rows < 1:
            raise ValueError(f"num_rows must be >= 1, got {num_rows}")
        self.config = config
        self.num_rows = n = num_rows
        self.catalogue = cat = ItemCatalogue.generate(config)
        user_cfg = config.user
        seg = user_cfg.segments
        c, k, t = config.num_candidates, config.page_size, config.num_tasks
        self.num_candidates, self.page_size, self.num_tasks = c, k, t
        nt, rank = config.num_topics, config.ranker.error_rank
        self.reward_vector = config.reward.as_vector()
        f32 = np.float32

        # Per-segment parameter table, read by a row's segment at session start.
        engagement = np.array([name in _ENGAGEMENT_TASKS for name in PREDICTABLE_TASKS])
        task_noise = (
            np.asarray(seg.ranker_noise)[:, None]
            * np.where(engagement[None, :], np.asarray(seg.engagement_noise)[:, None], 1.0)
            * np.asarray(config.ranker.task_noise)[None, :]
        )
        engagement_bias = np.stack([np.asarray(getattr(seg, f"{name}_bias")) for name in _ENGAGEMENT_TASKS], axis=1)
        self._segments = np.concatenate([
            np.stack([seg.hook_bias, np.log(seg.patience_s), seg.clickbait_aversion, seg.boredom_sensitivity,
                      seg.interest_concentration], axis=1),
            engagement_bias, task_noise], axis=1).astype(f32)
        assert self._segments.shape == (_NUM_SEGMENTS, _S_WIDTH)
        self._cum_share = np.cumsum(np.asarray(seg.share, np.float64))[:-1]
        self._task_columns = np.array([PREDICTABLE_TASKS.index(name) for name in config.ranker_tasks], np.int64)
        self._profile = np.array([getattr(user_cfg, name) for name in _PROFILE_SCALARS], f32)
        model = {name: getattr(user_cfg, name, None) for name in _MODEL_SCALARS}
        model["delight_scale"] = user_cfg.engagement_noise_scale * 0.55  # logistic noise with std ~ scale
        model["inverse_watch_time_scale"] = 1.0 / config.ranker.watch_time_scale_s
        self._model = np.array([model[name] for name in _MODEL_SCALARS], f32)
        self._fusion = config.fusion.kernel_params()

        q, cb = cat.quality, cat.clickbait
        hook = user_cfg.hook_quality * q + user_cfg.hook_clickbait * cb
        item_columns = {
            "hook": hook,
            "hook_ranker": hook + config.ranker.clickbait_overestimate * cb,
            "log_patience": user_cfg.patience_quality * q + user_cfg.patience_clickbait * cb,
            "engagement": user_cfg.engagement_quality * q + user_cfg.engagement_clickbait * cb,
            "hate": user_cfg.hate_bias + user_cfg.hate_clickbait * cb,
            "glance_mean": np.minimum(cat.duration_s, _QUICK_SKIP_MEAN_FRACTION * user_cfg.quick_skip_s),
            "duration_s": cat.duration_s,
            "valid_view_time_s": cat.valid_view_time_s,
            "long_view_time_s": cat.long_view_time_s,
            "clickbait": cb,
        }
        item_columns["hook_ranker_exp"] = np.exp(-item_columns["hook_ranker"].astype(f32))
        item_columns["patience_scale"] = np.exp(item_columns["log_patience"].astype(f32))
        item_columns["engagement_exp"] = np.exp(-item_columns["engagement"].astype(f32))
        self._items = np.ascontiguousarray(np.stack([item_columns[name] for name in _ITEM_COLUMNS], axis=1), f32)
        self._item_error = np.ascontiguousarray(cat.ranker_error_features, f32)

        # Retrieval without duplicates: candidate j of topic tp is item tp*P + (offset + j*stride) mod P with
        # stride coprime to P, so two candidates of the same topic are always different items.
        per_topic = config.items_per_topic
        stride = max(1, round(per_topic * 0.618))
        while np.gcd(stride, per_topic) != 1:
            stride += 1
        self._dims = np.array([c, k, per_topic, stride, config.max_requests], np.int64)

        # User profile (set at session start) and dynamic state.
        self.keys = np.zeros(n, np.uint64)
        self.segment = np.zeros(n, np.int64)
        # int16 (config.num_topics <= 32767): 512 bytes per user keeps a large batch's tables in cache.
        self.topic_table = np.zeros((n, _TOPIC_TABLE_SIZE), np.int16)
        self._user_topic = np.zeros((n, _UT_WIDTH, nt), f32)
        self._user = np.zeros((n, _U_WIDTH), f32)
        self.ranker_user_error = np.zeros((n, rank, t), f32)  # low-rank error, configured tasks only
        self.request_index = np.zeros(n, np.int64)
        self.boredom = np.zeros((n, nt), f32)
        self._history = np.zeros((n, 2 * _HISTORY_WIDTH), f32)
        self._no_restart = np.zeros(n, bool)
        # Scratch reused every step, one set per chunk of rows (a chunk per thread), and at every session start.
        chunks = self._max_chunks = max(1, min(n // ROWS_PER_CHUNK, CHUNKS_PER_THREAD * (os.cpu_count() or 1)))
        self._candidates = np.empty((chunks, c), np.int64)
        self._topics = np.empty((chunks, c), np.int64)
        self._preds = np.empty((chunks, c, t), f32)
        self._scores = np.empty((chunks, c), f32)
        self._powers = np.empty((chunks, t), f32)
        self._biases = np.empty((chunks, t), f32)
        self._order = np.empty((chunks, k), np.int64)
        self._page_sum = np.empty((chunks, _NUM_RESPONSES), f32)
        num_normals = nt + 2 + rank * len(PREDICTABLE_TASKS)
        self._normals = np.empty((chunks, 2 * ((num_normals + 1) // 2)), f32)
        # Item-log buffers when item logs are off (the kernel always writes them).
        self._log_scratch = None if config.item_logs else self._new_item_logs()
        self.last_step: StepOutput | None = None

    # Views of the state, by name.
    @property
    def satisfaction(self) -> np.ndarray:
        return self._user[:, _U_SATISFACTION]

    @property
    def log_activity(self) -> np.ndarray:
        return self._user[:, _U_LOG_ACTIVITY]

    @property
    def interest_concentration(self) -> np.ndarray:
        return self._user[:, _U_INTEREST_CONCENTRATION]

    @property
    def last_page(self) -> np.ndarray:
        return self._history[:, :_HISTORY_WIDTH]

    @property
    def session_sum(self) -> np.ndarray:
        return self._history[:, _HISTORY_WIDTH:]

    def _new_item_logs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n, k, t = self.num_rows, self.page_size, self.num_tasks
        return (np.zeros((n, k), np.int64), np.zeros((n, k, t), np.float32),
                np.zeros((n, k, _NUM_RESPONSES), np.float32), np.zeros((n, k), np.float32))

    # ------------------------------------------------------------------ session start (profile sampling)
    def start_sessions(self, rows: np.ndarray, keys: np.ndarray) -> None:
        """(Re)start the sessions of ``rows`` (int indices) with new users drawn from ``keys`` (uint64)."""
        rows, keys = rows_and_keys(rows, keys, self.num_rows)
        _start_rows(rows, keys, self._segments, self._profile, self._cum_share, self._task_columns, self.keys,
                    self.segment, self.topic_table, self._user_topic, self._user, self.ranker_user_error,
                    self.boredom, self._history, self.request_index, self._normals[0])

    # ------------------------------------------------------------------ observation
    def observations(self) -> np.ndarray:
        """``(num_rows, obs_dim)`` float32 observation of every row (documented in ``OBSERVATION_FEATURES``)."""
        obs = np.empty((self.num_rows, _OBS_DIM), np.float32)
        _observe_rows(self.segment, self._user, self.request_index, self._history, self.boredom,
                      self.config.max_requests, obs)
        return obs

    # ------------------------------------------------------------------ one request
    def step(self, actions: np.ndarray, restart: np.ndarray | None = None,
             restart_keys: np.ndarray | None = None) -> StepOutput:
        """Advance every row by one request, or restart it.

        Args:
            actions: ``(num_rows, 2T)`` finite float32 (clipped here).
            restart: optional ``(num_rows,)`` bool: these rows start a new session from ``restart_keys`` (uint64,
                ``(num_rows,)``; other entries ignored) instead of being stepped. Their outputs are the new
                session's first observation, zero reward, not terminated or truncated, no clipping (the vector env's
                autoreset step).
        """
        n = self.num_rows
        actions = np.ascontiguousarray(actions, dtype=np.float32)
        if restart is None:
            restart, restart_keys = self._no_restart, self.keys
        else:
            restart = np.ascontiguousarray(restart, dtype=bool)
            restart_keys = np.ascontiguousarray(restart_keys, dtype=np.uint64)
            if restart.shape != (n,) or restart_keys.shape != (n,):
                raise ValueError(f"restart and restart_keys must have shape ({n},), got {restart.shape} and "
                                 f"{restart_keys.shape}")
        obs = np.empty((n, _OBS_DIM), np.float32)
        rewards = np.zeros(n, np.float32)
        terminated = np.zeros(n, bool)
        truncated = np.zeros(n, bool)
        clipped = np.zeros(n, np.int64)
        logs = self._new_item_logs() if self._log_scratch is None else self._log_scratch
        args = (restart, restart_keys, actions, self._dims, self._task_columns, self._fusion, self._model,
                self.reward_vector, self._items, self._item_error, self._segments, self._profile, self._cum_share,
                self.keys, self.segment, self.topic_table, self._user_topic, self._user, self.ranker_user_error,
                self.boredom, self._history, self.request_index, self._candidates, self._topics, self._preds,
                self._scores, self._powers, self._biases, self._order, self._page_sum, self._normals, obs, rewards,
                terminated, truncated, clipped, *logs)
        run_chunks(_step_chunk, min(self._max_chunks, CHUNKS_PER_THREAD * get_num_threads()), args)
        out = StepOutput(obs, rewards, terminated, truncated, clipped)
        if self._log_scratch is None:
            out.item_ids, out.predictions, out.responses, out.item_rewards = logs
        self.last_step = out
        return out

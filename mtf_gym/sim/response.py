"""The user's response to one shown item (the funnel), and its expectation (the truth the ranker estimates).

``docs/user_model.md`` (v1, section 4): a hook decides whether the user stays past the first seconds (boredom,
mood and, for long videos, fatigue lower it); once hooked an exponential stopping time gives the watch time; valid
and long views follow from it; likes, comments, follows and shares happen on valid views, correlated by a shared
per-item "delight"; hates happen on unwatched, mostly clickbait items.
"""

from __future__ import annotations

import math

import numpy as np

from mtf_gym.rng import counter_uniform
from mtf_gym.sim.funnel import expected_watch, sample_watch, survival
from mtf_gym.sim.items import glance_mean, long_time, valid_time
from mtf_gym.sim.layout import (
    I_CLICKBAIT,
    I_DURATION,
    I_ENGAGEMENT,
    I_HATE,
    I_HOOK,
    I_LENGTH_EXCESS,
    I_LOG_PATIENCE,
    M_DELIGHT_SCALE,
    M_ENGAGEMENT_BIAS,
    M_HOOK_FATIGUE_LENGTH,
    M_HOOK_SAT,
    M_INTERACTION_OFFSET,
    M_INV_WATCH_SCALE,
    M_PATIENCE_BOREDOM,
    M_PATIENCE_FATIGUE,
    M_PATIENCE_SAT,
    M_QUICK_SKIP_S,
    NUM_ENGAGEMENT,
    R_HATE,
    R_LIKE,
    R_LONG,
    R_QUICK_SKIP,
    R_VALID,
    R_WATCH,
    S_FATIGUE,
    S_SATISFACTION,
    T_BOREDOM_SENSITIVITY,
    UT_ENGAGEMENT,
    UT_HATE,
    UT_HOOK,
    UT_LOG_PATIENCE,
)
from mtf_gym.sim.links import sigmoid
from mtf_gym.sim.memory import kernel_jit

__all__ = ["expected_item", "expected_predictions", "respond"]

_F0, _F1 = np.float32(0.0), np.float32(1.0)
_DELIGHT_CLIP = np.float32(1e-6)
_GLANCE_MIN, _GLANCE_SPAN = np.float32(0.2), np.float32(0.8)


@kernel_jit(inline="always")
def _logits(i, item, tp, model, users):
    """Hook logit, log patience and engagement logit (without task bias) of ``item`` for row ``i``, state included."""
    items, dyn = model.items, model.dynamics
    ut = users.user_topic[i]
    b = users.boredom[i, tp]
    sat = users.state[i, S_SATISFACTION]
    fatigue = users.state[i, S_FATIGUE]
    hook = (ut[UT_HOOK, tp] + items[item, I_HOOK] - users.traits[i, T_BOREDOM_SENSITIVITY] * b
            + dyn[M_HOOK_SAT] * sat - dyn[M_HOOK_FATIGUE_LENGTH] * fatigue * items[item, I_LENGTH_EXCESS])
    log_patience = (ut[UT_LOG_PATIENCE, tp] + items[item, I_LOG_PATIENCE] + dyn[M_PATIENCE_BOREDOM] * b
                    + dyn[M_PATIENCE_SAT] * sat + dyn[M_PATIENCE_FATIGUE] * fatigue)
    engagement = ut[UT_ENGAGEMENT, tp] + items[item, I_ENGAGEMENT]
    return hook, log_patience, engagement


@kernel_jit
def respond(i, item, tp, key, counter, lane, model, users, response):
    """Draw the user's response to ``item`` into ``response`` (``RESPONSE_FIELDS`` columns); uses lanes
    ``lane .. lane + 8``. Returns ``(hooked clickbait, interaction)``: the item's clickbait score if it hooked the
    user (else 0), and ``V * sigmoid(engagement + interaction_offset)``, how much it fed a social user."""
    items, dyn = model.items, model.dynamics
    hook_logit, log_patience, engagement = _logits(i, item, tp, model, users)
    hooked = counter_uniform(key, counter, lane) < sigmoid(hook_logit)
    duration = items[item, I_DURATION]
    clickbait_hooked = _F0
    if hooked:
        u = counter_uniform(key, counter, lane + np.uint64(1))
        watch = sample_watch(np.float32(math.exp(log_patience)), u)
        clickbait_hooked = items[item, I_CLICKBAIT]
    else:
        watch = (_GLANCE_MIN + _GLANCE_SPAN * counter_uniform(key, counter, lane + np.uint64(2))) * dyn[M_QUICK_SKIP_S]
    watch = min(watch, duration)
    valid = watch >= valid_time(model, item)
    response[R_WATCH] = watch
    response[R_VALID] = valid
    response[R_LONG] = watch >= long_time(model, item)
    response[R_QUICK_SKIP] = watch < dyn[M_QUICK_SKIP_S] and watch < duration
    delight = min(max(counter_uniform(key, counter, lane + np.uint64(3)), _DELIGHT_CLIP), _F1 - _DELIGHT_CLIP)
    engaged_logit = engagement + dyn[M_DELIGHT_SCALE] * np.float32(math.log(delight / (_F1 - delight)))
    for e in range(NUM_ENGAGEMENT):
        response[R_LIKE + e] = valid and counter_uniform(key, counter, lane + np.uint64(4 + e)) < sigmoid(
            engaged_logit + dyn[M_ENGAGEMENT_BIAS + e])
    hate_logit = users.user_topic[i, UT_HATE, tp] + items[item, I_HATE]
    response[R_HATE] = not valid and counter_uniform(key, counter, lane + np.uint64(8)) < sigmoid(hate_logit)
    interaction = sigmoid(engagement + dyn[M_INTERACTION_OFFSET]) if valid else _F0
    return clickbait_hooked, interaction


@kernel_jit
def expected_item(i, item, tp, model, users, out):
    """The true expected response of row ``i`` to ``item`` in its current state, ``RESPONSE_FIELDS`` columns
    (watch time in seconds, the others probabilities; engagement ignores the delight noise's spread)."""
    items, dyn = model.items, model.dynamics
    hook_logit, log_patience, engagement = _logits(i, item, tp, model, users)
    hook = sigmoid(hook_logit)
    patience = np.float32(math.exp(log_patience))
    duration = items[item, I_DURATION]
    inv_patience = _F1 / patience
    p_valid = hook * survival(valid_time(model, item), inv_patience)
    out[R_WATCH] = expected_watch(hook, patience, duration, glance_mean(model, item))
    out[R_VALID] = p_valid
    out[R_LONG] = hook * survival(long_time(model, item), inv_patience)
    for e in range(NUM_ENGAGEMENT):
        out[R_LIKE + e] = p_valid * sigmoid(engagement + dyn[M_ENGAGEMENT_BIAS + e])
    out[R_HATE] = (_F1 - p_valid) * sigmoid(users.user_topic[i, UT_HATE, tp] + items[item, I_HATE])
    out[R_QUICK_SKIP] = (_F1 - hook) * np.float32(duration > dyn[M_QUICK_SKIP_S])


@kernel_jit
def expected_predictions(i, item, tp, model, users, scratch_response, out):
    """The true counterpart of the ranker's ``(T,)`` predictions for ``item`` (same units: watch time / scale)."""
    expected_item(i, item, tp, model, users, scratch_response)
    for col in range(model.tasks.shape[0]):
        task = model.tasks[col]
        if task == 0:
            out[col] = scratch_response[R_VALID]
        elif task == 1:
            out[col] = scratch_response[R_WATCH] * model.dynamics[M_INV_WATCH_SCALE]
        elif task == 2:
            out[col] = scratch_response[R_LONG]
        else:
            out[col] = scratch_response[R_LIKE + task - 3]


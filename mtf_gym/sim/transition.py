"""After a page: the user's state moves (boredom, fatigue, satisfaction, history), then they may leave.

``docs/user_model.md`` (v1, section 5). Every in-session effect that moves the best fusion lives here: fatigue
grows with watched minutes (and, in the funnel, takes the hook away from long videos), satisfaction integrates what
the user values (long views or content they would interact with, by their watch drive) and loses more to clickbait
in a bad mood, and topic boredom remembers repetition. The observation is what a feature log holds; it never equals
a latent parameter or a term of the leave logit.
"""

from __future__ import annotations

import math

import numpy as np

from mtf_gym.sim.layout import (
    D_MAX_REQUESTS,
    H_LAST,
    H_MINUTES,
    H_SUM,
    H_TOPIC_SHARE,
    HISTORY_WIDTH,
    M_BOREDOM_DECAY,
    M_GAIN_INTERACTION,
    M_GAIN_WATCH,
    M_LEAVE_BOREDOM,
    M_LEAVE_FATIGUE,
    M_LEAVE_SAT,
    M_LOSS_HATE,
    M_LOSS_QUICK_SKIP,
    M_LOW_MOOD,
    M_SAT_BASELINE,
    M_SAT_DECAY,
    NUM_ENGAGEMENT,
    NUM_PROFILE_OBS,
    NUM_RESPONSES,
    OBS_LAST,
    OBS_PROGRESS,
    OBS_SESSION,
    OBS_SESSION_MINUTES,
    OBS_TOPIC_SHARE,
    R_HATE,
    R_LIKE,
    R_LONG,
    R_QUICK_SKIP,
    R_VALID,
    R_WATCH,
    S_FATIGUE,
    S_SATISFACTION,
    S_TOP_BOREDOM,
    T_AVERSION,
    T_BOREDOM_SENSITIVITY,
    T_FATIGUE_RATE,
    T_LEAVE_BASE,
    T_WATCH_DRIVE,
)
from mtf_gym.sim.memory import kernel_jit

__all__ = ["P_CLICKBAIT", "P_INTERACTION", "end_page", "leave_probability", "observe"]

_F0, _F1 = np.float32(0.0), np.float32(1.0)
_INV_MINUTE = np.float32(1.0 / 60.0)
_MINUTES_SCALE = np.float32(1.0 / 30.0)  # session_watch_minutes = minutes / 30, capped at 1
# page_sum columns after the responses: hooked clickbait and interaction totals of the page.
P_CLICKBAIT, P_INTERACTION = NUM_RESPONSES, NUM_RESPONSES + 1


@kernel_jit
def end_page(i, model, users, page_sum, page_topics):
    """Update row ``i``'s state after a page of ``K`` items (``page_sum``: summed responses, clickbait, interaction;
    ``page_topics``: the topic of each shown item) and count the request."""
    dyn, traits, state = model.dynamics, users.traits[i], users.state[i]
    page = page_topics.shape[0]
    inv_k = _F1 / np.float32(page)
    # Topic boredom: exponential moving average of topic shares; its maximum is kept for the leave logit.
    decay = dyn[M_BOREDOM_DECAY]
    boredom = users.boredom[i]
    for tp in range(boredom.shape[0]):
        boredom[tp] *= decay
    top_count = 0
    for k in range(page):
        boredom[page_topics[k]] += (_F1 - decay) * inv_k
        count = 0
        for k2 in range(page):
            count += page_topics[k2] == page_topics[k]
        top_count = max(top_count, count)
    top = _F0
    for tp in range(boredom.shape[0]):
        top = max(top, boredom[tp])
    state[S_TOP_BOREDOM] = top
    minutes = page_sum[R_WATCH] * _INV_MINUTE
    state[S_FATIGUE] += traits[T_FATIGUE_RATE] * minutes
    sat = state[S_SATISFACTION]
    engaged = _F0
    for e in range(NUM_ENGAGEMENT):
        engaged += page_sum[R_LIKE + e] * inv_k
    drive = traits[T_WATCH_DRIVE]
    mood_cost = _F1 + dyn[M_LOW_MOOD] * max(-sat, _F0)
    state[S_SATISFACTION] = sat * dyn[M_SAT_DECAY] + (
        drive * dyn[M_GAIN_WATCH] * minutes * inv_k
        + (_F1 - drive) * dyn[M_GAIN_INTERACTION] * page_sum[P_INTERACTION] * inv_k
        - traits[T_AVERSION] * mood_cost * page_sum[P_CLICKBAIT] * inv_k
        - dyn[M_LOSS_QUICK_SKIP] * page_sum[R_QUICK_SKIP] * inv_k
        - dyn[M_LOSS_HATE] * page_sum[R_HATE] * inv_k
        - dyn[M_SAT_BASELINE]
    )
    history = users.history[i]
    history[H_LAST] = page_sum[R_VALID] * inv_k
    history[H_LAST + 1] = page_sum[R_LONG] * inv_k
    history[H_LAST + 2] = min(engaged, _F1)
    history[H_LAST + 3] = page_sum[R_QUICK_SKIP] * inv_k
    history[H_LAST + 4] = min(minutes * inv_k, _F1)
    for h in range(HISTORY_WIDTH):
        history[H_SUM + h] += history[H_LAST + h]
    history[H_MINUTES] += minutes
    history[H_TOPIC_SHARE] = np.float32(top_count) * inv_k
    users.request_index[i] += 1


@kernel_jit(inline="always")
def leave_probability(i, model, users):
    """Probability that row ``i`` leaves now: satisfaction holds the user, topic boredom (weighted by their
    sensitivity) and fatigue push them out; heavy users leave later."""
    dyn, traits, state = model.dynamics, users.traits[i], users.state[i]
    logit = (traits[T_LEAVE_BASE] - dyn[M_LEAVE_SAT] * state[S_SATISFACTION]
             + dyn[M_LEAVE_BOREDOM] * traits[T_BOREDOM_SENSITIVITY] * state[S_TOP_BOREDOM]
             + dyn[M_LEAVE_FATIGUE] * state[S_FATIGUE])
    return _F1 / (_F1 + np.float32(math.exp(-logit)))


@kernel_jit
def observe(i, model, users, obs):
    """Row ``i`` of the observation (``OBSERVATION_FEATURES_V1``) into ``obs`` (``(OBS_DIM,)``)."""
    for f in range(NUM_PROFILE_OBS):
        obs[f] = users.profile_obs[i, f]
    steps = np.float32(users.request_index[i])
    obs[OBS_PROGRESS] = steps / np.float32(model.dims[D_MAX_REQUESTS])
    history = users.history[i]
    for h in range(HISTORY_WIDTH):
        obs[OBS_LAST + h] = history[H_LAST + h]
        obs[OBS_SESSION + h] = history[H_SUM + h] / max(steps, _F1)
    obs[OBS_SESSION_MINUTES] = min(history[H_MINUTES] * _MINUTES_SCALE, _F1)
    obs[OBS_TOPIC_SHARE] = history[H_TOPIC_SHARE]

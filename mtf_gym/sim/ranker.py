"""The v1 multi-task ranker: the user's funnel from the long-term profile, with a mean-corrected low-rank error.

``pred_k = min(1, p~_k * exp(e_k - var_k / 2 + c_k))``: ``p~`` is the user's funnel evaluated without in-session
state (satisfaction, boredom, fatigue) and with clickbait's hook over-estimated, ``e_k = f_i . E_u[:, k]`` the
user x item error (variance ``var_k`` over items for this user), ``c_k`` a per-task calibration offset
(``docs/user_model.md``, v1 section 3). The error's mean correction makes predictions calibrated on average;
what remains are the documented biases: per-user, per-task noise, state blindness and the clickbait over-estimate.
"""

from __future__ import annotations

import math

import numpy as np

from mtf_gym.sim.funnel import expected_watch, survival
from mtf_gym.sim.items import glance_mean, long_time, valid_time
from mtf_gym.sim.layout import (
    I_DURATION,
    I_ENGAGEMENT_EXP,
    I_ERROR,
    I_HOOK_RANKER_EXP,
    I_PATIENCE_SCALE,
    M_INV_WATCH_SCALE,
    UT_ENGAGEMENT_EXP,
    UT_HOOK_EXP,
    UT_PATIENCE,
)
from mtf_gym.sim.memory import kernel_jit

__all__ = ["TASK_LONG", "TASK_VALID", "TASK_WATCH", "predict"]

_F0, _F1 = np.float32(0.0), np.float32(1.0)
# Task codes: PREDICTABLE_TASKS order (valid view, watch time, long view, then like, comment, follow, share).
TASK_VALID, TASK_WATCH, TASK_LONG, TASK_FIRST_ENGAGEMENT = 0, 1, 2, 3


@kernel_jit
def predict(i, model, users, candidates, topics, preds):
    """The ranker's ``(C, T)`` predictions for row ``i``'s candidates."""
    items, tasks = model.items, model.tasks
    ut = users.user_topic[i]
    rank = users.ranker_error.shape[1]
    for j in range(candidates.shape[0]):
        item, tp = candidates[j], topics[j]
        hook = _F1 / (_F1 + ut[UT_HOOK_EXP, tp] * items[item, I_HOOK_RANKER_EXP])
        patience = ut[UT_PATIENCE, tp] * items[item, I_PATIENCE_SCALE]
        inv_patience = _F1 / patience
        valid_s, long_s = valid_time(model, item), long_time(model, item)
        duration = items[item, I_DURATION]
        survive_valid = survival(valid_s, inv_patience)
        survive_long = survive_valid if long_s == valid_s else survival(long_s, inv_patience)
        p_valid = hook * survive_valid
        engagement_exp = ut[UT_ENGAGEMENT_EXP, tp] * items[item, I_ENGAGEMENT_EXP]
        for col in range(tasks.shape[0]):
            task = tasks[col]
            if task == TASK_VALID:
                p = p_valid
            elif task == TASK_WATCH:
                p = expected_watch(hook, patience, duration, glance_mean(model, item)) * model.dynamics[
                    M_INV_WATCH_SCALE]
            elif task == TASK_LONG:
                p = hook * survive_long
            else:
                p = p_valid / (_F1 + engagement_exp * users.engagement_exp[i, task - TASK_FIRST_ENGAGEMENT])
            error = _F0
            for r in range(rank):
                error += items[item, I_ERROR + r] * users.ranker_error[i, r, col]
            preds[j, col] = min(p * np.float32(math.exp(error)) * users.ranker_scale[i, col], _F1)

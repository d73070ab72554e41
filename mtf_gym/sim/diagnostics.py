"""Diagnostic kernels (not on any env's step path): the truth behind the ranker's predictions, for calibration."""

from __future__ import annotations

import numpy as np
from numba import njit

from mtf_gym.sim.layout import NUM_RESPONSES
from mtf_gym.sim.ranker import predict
from mtf_gym.sim.response import expected_predictions
from mtf_gym.sim.retrieval import retrieve

__all__ = ["candidate_truth"]


@njit(cache=True)
def _candidate_truth(rows, model, users, candidates, topics, predictions, truths):
    scratch = np.empty(NUM_RESPONSES, np.float32)
    for j in range(rows.shape[0]):
        i = rows[j]
        key, counter = users.keys[i], np.uint64(users.request_index[i])
        retrieve(i, key, counter, model, users, candidates[j], topics[j])
        predict(i, model, users, candidates[j], topics[j], predictions[j])
        for c in range(candidates.shape[1]):
            expected_predictions(i, candidates[j, c], topics[j, c], model, users, scratch, truths[j, c])


def candidate_truth(sim, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``rows`` of a v1 simulator, before its next step: the next request's candidates ``(R, C)``, the ranker's
    predictions ``(R, C, T)`` and the true values they estimate ``(R, C, T)`` (same draws the step will make)."""
    rows = np.ascontiguousarray(rows, np.int64)
    c, t = sim.num_candidates, sim.num_tasks
    candidates = np.empty((rows.shape[0], c), np.int64)
    topics = np.empty((rows.shape[0], c), np.int64)
    predictions = np.empty((rows.shape[0], c, t), np.float32)
    truths = np.empty((rows.shape[0], c, t), np.float32)
    _candidate_truth(rows, sim.model, sim.users, candidates, topics, predictions, truths)
    return candidates, predictions, truths

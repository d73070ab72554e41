"""Retrieval: ``C`` candidates per request, topics drawn from the user's interests, no repeats inside a request."""

from __future__ import annotations

import numpy as np

from mtf_gym.rng import counter_uniform
from mtf_gym.sim.layout import D_CANDIDATES, D_PER_TOPIC, D_STRIDE, TOPIC_TABLE_SIZE
from mtf_gym.sim.memory import kernel_jit

__all__ = ["retrieve"]

_TABLE = np.float32(TOPIC_TABLE_SIZE)


@kernel_jit(inline="always")
def retrieve(i, key, counter, model, users, candidates, topics):
    """Fill ``candidates``/``topics`` (``(C,)``) for row ``i``: candidate ``j`` of topic ``tp`` is item
    ``tp * P + (offset + j * stride) mod P`` with a stride coprime to ``P``, so two candidates are never the same item.
    Uses lanes ``0..C`` of ``(key, counter)``."""
    num_candidates, per_topic, stride = model.dims[D_CANDIDATES], model.dims[D_PER_TOPIC], model.dims[D_STRIDE]
    offset = int(counter_uniform(key, counter, np.uint64(num_candidates)) * np.float32(per_topic))
    for j in range(num_candidates):
        draw = int(counter_uniform(key, counter, np.uint64(j)) * _TABLE)
        tp = np.int64(users.topic_table[i, draw])
        topics[j] = tp
        candidates[j] = tp * per_topic + (offset + j * stride) % per_topic

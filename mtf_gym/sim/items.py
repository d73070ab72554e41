"""The kernels' item table: every per-item number a step reads, one cache-line aligned float32 row per item.

Row ``i`` holds item ``i``'s user-model attributes (``ITEM_COLUMNS``: logits' item terms and their exponentials,
duration, clickbait, length excess) followed by the ranker's item error features (``I_ERROR ..``), padded to whole
64-byte cache lines (:func:`mtf_gym.sim.layout.item_row_floats`; one line for error ranks up to 6). Showing or
ranking an item then touches one cache line, where separate tables would touch several: at 10^6 items, far beyond
the CPU caches, a step's cost is these misses (``docs/slate.md``, speed section). The view thresholds and the glance
mean are ``min(duration, constant)``, computed where they are read (:func:`valid_time`, :func:`long_time`,
:func:`glance_mean`) rather than stored: the same float32 values as a stored column, one line per item.
"""

from __future__ import annotations

import numpy as np

from mtf_gym.sim.catalogue import Catalogue
from mtf_gym.sim.config import MTFSessionV1Config
from mtf_gym.sim.layout import (
    I_DURATION,
    I_ERROR,
    ITEM_COLUMNS,
    M_GLANCE_MEAN_S,
    M_LONG_VIEW_S,
    M_VALID_VIEW_S,
    item_row_floats,
)
from mtf_gym.sim.memory import aligned_empty, kernel_jit

__all__ = ["GLANCE_MEAN_FRACTION", "build_item_table", "glance_mean", "long_time", "valid_time"]

GLANCE_MEAN_FRACTION = 0.6  # mean watch of an unhooked view, as a fraction of quick_skip_s


def build_item_table(config: MTFSessionV1Config, catalogue: Catalogue) -> np.ndarray:
    """The ``(N, item_row_floats(rank))`` float32 item table of ``catalogue`` (64-byte aligned, padding zeroed)."""
    dyn, ranker = config.dynamics, config.ranker
    error = catalogue.ranker_error_features
    n, rank = catalogue.num_items, error.shape[1]
    table = aligned_empty((n, item_row_floats(rank)), np.float32)
    table[:, I_ERROR + rank:] = 0.0
    q, cb, d = catalogue.quality, catalogue.clickbait, catalogue.duration_s
    hook = dyn.hook_quality * q + dyn.hook_clickbait * cb
    log_patience = dyn.patience_quality * q + dyn.patience_clickbait * cb
    engagement = dyn.engagement_quality * q + dyn.engagement_clickbait * cb
    columns = {
        "hook": hook,
        "hook_ranker_exp": np.exp(-(hook + ranker.clickbait_overestimate * cb)),
        "log_patience": log_patience,
        "patience_scale": np.exp(log_patience),
        "engagement": engagement,
        "engagement_exp": np.exp(-engagement),
        "hate": dyn.hate_bias + dyn.hate_clickbait * cb,
        "duration_s": d,
        "clickbait": cb,
        "length_excess": np.maximum(np.log(d / 15.0), 0.0),
    }
    for name, col in ITEM_COLUMNS.items():
        table[:, col] = columns[name]
    table[:, I_ERROR:I_ERROR + rank] = error
    return table


@kernel_jit(inline="always")
def valid_time(model, item):
    """Watch time (s) that makes a valid view of ``item``: the threshold, or the whole item if shorter."""
    return min(model.items[item, I_DURATION], model.dynamics[M_VALID_VIEW_S])


@kernel_jit(inline="always")
def long_time(model, item):
    """Watch time (s) that makes a long view of ``item``."""
    return min(model.items[item, I_DURATION], model.dynamics[M_LONG_VIEW_S])


@kernel_jit(inline="always")
def glance_mean(model, item):
    """Mean watch time (s) of an unhooked view of ``item``."""
    return min(model.items[item, I_DURATION], model.dynamics[M_GLANCE_MEAN_S])

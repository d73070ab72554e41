"""The item catalogue (RecSim's "document" side): fixed per ``catalogue_seed``, shared by every user and episode."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtf_gym.config import MTFSessionConfig

__all__ = ["ItemCatalogue"]

MIN_DURATION_S = 3.0
MAX_DURATION_S = 300.0


@dataclass(frozen=True)
class ItemCatalogue:
    """Item attributes, as float32 arrays indexed by item id. Items are stored grouped by topic.

    Attributes:
        topic: topic id of each item (``num_topics`` topics, ``items_per_topic`` each, contiguous).
        quality: latent quality ~ N(0, 1) (lower for clickbait): drives completion, likes, satisfaction.
        clickbait: in [0, 1]; high for the ``clickbait_share`` of items with a catchy hook but little substance.
        duration_s: video length, log-normal around ``median_duration_s``, clipped to [3, 300] s.
        valid_view_time_s / long_view_time_s: watch time needed for a valid / long view (min(threshold, duration)).
        ranker_error_features: ``(items, error_rank)`` item side of the ranker's low-rank error.
    """

    topic: np.ndarray
    quality: np.ndarray
    clickbait: np.ndarray
    duration_s: np.ndarray
    valid_view_time_s: np.ndarray
    long_view_time_s: np.ndarray
    ranker_error_features: np.ndarray

    @classmethod
    def generate(cls, config: MTFSessionConfig) -> ItemCatalogue:
        # A private generator: the catalogue never touches global or per-episode randomness.
        rng = np.random.default_rng(config.catalogue_seed)
        n = config.num_items
        topic = np.repeat(np.arange(config.num_topics, dtype=np.int64), config.items_per_topic)
        is_clickbait = rng.random(n) < config.clickbait_share
        clickbait = np.where(is_clickbait, rng.uniform(0.5, 1.0, n), rng.uniform(0.0, 0.15, n))
        # Clickbait is made cheaply: lower quality on average.
        quality = rng.standard_normal(n) - 0.8 * is_clickbait
        duration = np.exp(np.log(config.median_duration_s) + config.duration_log_std * rng.standard_normal(n))
        duration = np.clip(duration, MIN_DURATION_S, MAX_DURATION_S)
        rank = config.ranker.error_rank
        error_features = rng.standard_normal((n, rank)) / np.sqrt(rank)
        user = config.user
        f32 = np.float32
        return cls(
            topic=topic,
            quality=quality.astype(f32),
            clickbait=clickbait.astype(f32),
            duration_s=duration.astype(f32),
            valid_view_time_s=np.minimum(duration, user.valid_view_s).astype(f32),
            long_view_time_s=np.minimum(duration, user.long_view_s).astype(f32),
            ranker_error_features=error_features.astype(f32),
        )

    @property
    def num_items(self) -> int:
        return int(self.topic.shape[0])

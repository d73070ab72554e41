"""The v1 item catalogue (RecSim's "document" side) and its public embeddings.

Items are stored grouped by topic (item ``i`` has topic ``i // items_per_topic``), so retrieval draws an item of a
topic in O(1) and nothing in a step scans the catalogue. Latent attributes (quality, clickbait, duration) drive the
user model; the public embeddings are what an item-level agent sees (``docs/slate.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from mtf_gym.sim.config import CatalogueConfig
from mtf_gym.sim.memory import aligned_empty

__all__ = ["MAX_DURATION_S", "MIN_DURATION_S", "Catalogue"]

MIN_DURATION_S = 3.0
MAX_DURATION_S = 300.0
_CHUNK = 1 << 18  # items generated per block: bounded temporaries at N = 10^6


@dataclass(frozen=True, eq=False)
class Catalogue:
    """Item attributes as float32 arrays indexed by item id; fixed per ``catalogue_seed``.

    Attributes:
        config: the generating :class:`CatalogueConfig`.
        quality: latent quality ~ N(0, 1) - 0.8 [clickbait].
        clickbait: in [0, 1]: U(0.5, 1) for the ``clickbait_share`` of catchy low-substance items, else U(0, 0.15).
        duration_s: log-normal around ``median_duration_s``, clipped to [3, 300] s.
        ranker_error_features: ``(N, rank)`` item side of the ranker's low-rank error.
    """

    config: CatalogueConfig
    quality: np.ndarray
    clickbait: np.ndarray
    duration_s: np.ndarray
    ranker_error_features: np.ndarray

    @classmethod
    def generate(cls, config: CatalogueConfig, error_rank: int) -> Catalogue:
        # A private generator: the catalogue never touches global or per-episode randomness.
        rng = np.random.default_rng(config.catalogue_seed)
        n = config.num_items
        is_clickbait = rng.random(n) < config.clickbait_share
        clickbait = np.where(is_clickbait, rng.uniform(0.5, 1.0, n), rng.uniform(0.0, 0.15, n)).astype(np.float32)
        quality = (rng.standard_normal(n, dtype=np.float32) - np.float32(0.8) * is_clickbait).astype(np.float32)
        log_d = np.log(config.median_duration_s) + config.duration_log_std * rng.standard_normal(n)
        duration = np.clip(np.exp(log_d), MIN_DURATION_S, MAX_DURATION_S).astype(np.float32)
        error = (rng.standard_normal((n, error_rank), dtype=np.float32) / np.float32(np.sqrt(error_rank)))
        return cls(config, quality, clickbait, duration, error)

    @property
    def num_items(self) -> int:
        return int(self.quality.shape[0])

    @property
    def topic(self) -> np.ndarray:
        return np.arange(self.num_items, dtype=np.int64) // self.config.items_per_topic

    @cached_property
    def embeddings(self) -> np.ndarray:
        """Public ``(N, embedding_dim)`` float32 item embeddings, stable for a given catalogue seed.

        ``e_i = normalise(u_topic(i) + M [q_i, 3 (b_i - 0.2), log(d_i / median duration)] + noise)``: the item's
        topic vector (unit-norm, one per topic) plus a fixed random linear map ``M`` (3 x d) of its quality, clickbait
        and log duration, plus isotropic Gaussian noise of scale ``embedding_noise / sqrt(d)``, then L2-normalised.
        Informative but noisy: a linear model on them recovers most, not all, of an item's latent attributes
        (``docs/slate.md``).
        """
        cfg = self.config
        d = cfg.embedding_dim
        rng = np.random.default_rng([cfg.catalogue_seed, 1])
        topic_vectors = rng.standard_normal((cfg.num_topics, d)).astype(np.float32)
        topic_vectors /= np.linalg.norm(topic_vectors, axis=1, keepdims=True)
        attribute_map = (rng.standard_normal((3, d)) / np.sqrt(d)).astype(np.float32) * np.float32(2.0)
        out = aligned_empty((self.num_items, d), np.float32)  # rows on cache-line boundaries (kernels gather them)
        noise_rng = np.random.default_rng([cfg.catalogue_seed, 2])
        for start in range(0, self.num_items, _CHUNK):
            stop = min(start + _CHUNK, self.num_items)
            topics = np.arange(start, stop) // cfg.items_per_topic
            attrs = np.stack([self.quality[start:stop], (self.clickbait[start:stop] - 0.2) * 3.0,
                              np.log(self.duration_s[start:stop] / cfg.median_duration_s)], axis=1)
            attrs = attrs.astype(np.float32)
            block = topic_vectors[topics] + attrs @ attribute_map
            block += np.float32(cfg.embedding_noise / np.sqrt(d)) * noise_rng.standard_normal(
                block.shape, dtype=np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            out[start:stop] = block
        out.setflags(write=False)
        return out

"""Reference item-level policies for ``MTFSlate-v0``, and fusion-level agents acting through the production pipeline.

A slate policy maps a batch of observations (and the env's ``info``) to pages: ``policy(obs, info) -> (N, K)``
int64 item ids, ``K`` distinct ids per row.

* :class:`RandomSlatePolicy` - ``K`` distinct items uniformly from the catalogue;
* :class:`MostPopularPolicy` - the ``K`` items with the highest population-average appeal (the same page for all);
* :class:`PipelinePolicy` - the production pipeline: the ``C`` retrieved candidates, the ranker's predictions, a
  fusion (the control, or any fusion policy) and top-``K``; needs ``expose_candidates=True``;
* :class:`OraclePolicy` - the ``K`` items with the highest *true* expected reward for the user in their current
  state (a myopic oracle over the whole catalogue; for normalised scores, not deployable).

:class:`FusionPipelineEnv` wraps ``MTFSlate-v0`` so that a fusion-level agent's action (fusion weights) picks the
page through the pipeline: on the same users it reproduces ``MTFSession-v1`` exactly (tested).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from numba import njit

from mtf_gym.envs.session import action_space as fusion_action_space
from mtf_gym.fusion import FusionRanges, action_to_fusion_params, fused_log_scores
from mtf_gym.policies import BaselinePolicy
from mtf_gym.sim.layout import I_HOOK, NUM_RESPONSES
from mtf_gym.sim.response import expected_item

__all__ = ["FusionPipelineEnv", "MostPopularPolicy", "OraclePolicy", "PipelinePolicy", "RandomSlatePolicy",
           "pipeline_pages"]


def _rows(obs: np.ndarray) -> int:
    return 1 if np.ndim(obs) == 1 else int(np.shape(obs)[0])


def _maybe_single(pages: np.ndarray, obs: np.ndarray) -> np.ndarray:
    return pages[0] if np.ndim(obs) == 1 else pages


class RandomSlatePolicy:
    """``K`` distinct items drawn uniformly from ``num_items`` at every request."""

    def __init__(self, num_items: int, page_size: int, rng: np.random.Generator) -> None:
        if page_size > num_items:
            raise ValueError(f"page_size ({page_size}) must be <= num_items ({num_items})")
        self.num_items, self.page_size, self.rng = int(num_items), int(page_size), rng

    def __call__(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> np.ndarray:
        n, k = _rows(obs), self.page_size
        pages = self.rng.integers(0, self.num_items, size=(n, k))
        # Redraw rows with a repeated item (rare for a large catalogue).
        while True:
            ordered = np.sort(pages, axis=1)
            bad = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1) if k > 1 else np.zeros(n, bool)
            if not bad.any():
                return _maybe_single(pages, obs)
            pages[bad] = self.rng.integers(0, self.num_items, size=(int(bad.sum()), k))


class MostPopularPolicy:
    """The same page for everyone: the ``K`` items whose population-average hook is highest (quality and
    clickbait appeal; the ranking a non-personalised "trending" feed would show)."""

    def __init__(self, env: gym.Env) -> None:
        sim = env.unwrapped.sim
        k = env.unwrapped.page_size
        appeal = sim.model.items[:, I_HOOK]
        self.page = np.sort(np.argpartition(-appeal, k)[:k]).astype(np.int64)  # one scan, at construction

    def __call__(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> np.ndarray:
        return _maybe_single(np.broadcast_to(self.page, (_rows(obs), self.page.shape[0])).copy(), obs)


def pipeline_pages(candidates: np.ndarray, predictions: np.ndarray, actions: np.ndarray, ranges: FusionRanges,
                   page_size: int) -> np.ndarray:
    """Top-``K`` of each row's candidates by the fused score of ``actions`` (``(N, 2T)``): the production
    pipeline's last step, with the same fusion formula as ``MTFSession-v1`` (:mod:`mtf_gym.fusion`)."""
    powers, biases = action_to_fusion_params(actions, ranges)
    scores = fused_log_scores(predictions, powers, biases)
    # Stable descending order: ties keep the candidate order, as the env's insertion sort does.
    order = np.argsort(-scores, axis=1, kind="stable")[:, :page_size]
    return np.take_along_axis(candidates, order, axis=1).astype(np.int64)


class PipelinePolicy:
    """The production pipeline as an item-level policy: retrieval -> ranker -> ``fusion`` -> top-K.

    ``fusion`` maps user observations ``(N, 19)`` to fusion actions (default: the env's control,
    :class:`mtf_gym.BaselinePolicy`); it reads the candidates and predictions from ``info``.
    """

    def __init__(self, env: gym.Env, fusion: Any = None) -> None:
        slate = env.unwrapped
        self.config = slate.slate_config.session
        if not slate.slate_config.expose_candidates:
            raise ValueError("PipelinePolicy needs MTFSlate-v0 with expose_candidates=True (the candidates and "
                             "their predictions come in info)")
        self.fusion = fusion if fusion is not None else BaselinePolicy(self.config)
        # A vector env's observation_space is batched: the per-user width is its single_observation_space's.
        space = getattr(slate, "single_observation_space", slate.observation_space)
        self.user_dim = space.shape[-1] - self.config.catalogue.embedding_dim

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        single = np.ndim(obs) == 1
        user_obs = np.atleast_2d(obs)[:, :self.user_dim]
        actions = np.atleast_2d(self.fusion(user_obs))
        candidates = np.atleast_2d(info["candidates"])
        predictions = info["candidate_predictions"]
        predictions = predictions[None] if single else predictions
        pages = pipeline_pages(candidates, predictions, actions, self.config.fusion, self.config.page_size)
        return pages[0] if single else pages


@njit(cache=True)
def _oracle_pages(model, users, page_size, out):
    scratch = np.empty(NUM_RESPONSES, np.float32)
    per_topic = model.dims[2]
    num_items = model.items.shape[0]
    scores = np.empty(page_size, np.float32)
    for i in range(out.shape[0]):
        filled = 0
        for item in range(num_items):
            expected_item(i, item, item // per_topic, model, users, scratch)
            value = np.float32(0.0)
            for f in range(NUM_RESPONSES):
                value += scratch[f] * model.reward[f]
            if filled == page_size and value <= scores[page_size - 1]:
                continue
            pos = filled if filled < page_size else page_size - 1
            while pos > 0 and scores[pos - 1] < value:
                scores[pos] = scores[pos - 1]
                out[i, pos] = out[i, pos - 1]
                pos -= 1
            scores[pos] = value
            out[i, pos] = item
            if filled < page_size:
                filled += 1


class OraclePolicy:
    """The ``K`` items of highest true expected reward for each user in their current latent state (a full scan
    of the catalogue per request: an upper reference for normalised scores, not a deployable policy).

    It reads the env's simulator, so it must be called with the observations of the env it was built on."""

    def __init__(self, env: gym.Env) -> None:
        self.env = env.unwrapped

    def __call__(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> np.ndarray:
        sim = self.env.sim
        out = np.empty((sim.num_rows, self.env.page_size), np.int64)
        _oracle_pages(sim.model, sim.users, self.env.page_size, out)
        return _maybe_single(out, obs)


class FusionPipelineEnv(gym.Wrapper):
    """``MTFSlate-v0`` seen by a fusion-level agent: the action is fusion weights (``Box(-1, 1, (2T,))``), the
    observation the user part of the slate observation (the ``MTFSession-v1`` observation); the page is the
    pipeline's top-K of the exposed candidates. On the same seeds and actions it reproduces ``MTFSession-v1``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        slate = env.unwrapped
        if not slate.slate_config.expose_candidates:
            raise ValueError("FusionPipelineEnv needs MTFSlate-v0 with expose_candidates=True")
        self.config = slate.slate_config.session
        self.action_space = fusion_action_space(self.config)
        self.user_dim = slate.observation_space.shape[0] - self.config.catalogue.embedding_dim
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.user_dim,), np.float32)
        self._info: dict[str, Any] = {}

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self._info = info
        return obs[:self.user_dim], info

    def step(self, action: np.ndarray):
        from mtf_gym.fusion import validate_actions

        arr = validate_actions(action, self.config.action_dim, batch=False)
        page = pipeline_pages(self._info["candidates"][None], self._info["candidate_predictions"][None],
                              arr[None], self.config.fusion, self.config.page_size)[0]
        obs, reward, terminated, truncated, info = self.env.step(page)
        self._info = info
        return obs[:self.user_dim], reward, terminated, truncated, info

"""``MTFSlate-v0``: the v1 users, but the agent picks the page's items directly from a large catalogue.

The user side (users, responses, satisfaction, boredom, fatigue, leaving) is the v1 simulator's, unchanged: the
slate env differs from ``MTFSession-v1`` only in how the page is chosen (:func:`mtf_gym.sim.kernels.serve_page` is
shared). ``docs/slate.md`` is the environment card.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from mtf_gym.config import _check
from mtf_gym.envs.session import MTFSessionEnv, step_info
from mtf_gym.envs.vector import MTFSessionVectorEnv
from mtf_gym.sim.catalogue import Catalogue
from mtf_gym.sim.config import CatalogueConfig, MTFSessionV1Config
from mtf_gym.sim.layout import OBS_DIM
from mtf_gym.sim.simulator import UserSimulator

__all__ = ["MTFSlateConfig", "MTFSlateEnv", "MTFSlateVectorEnv", "PageSpace", "validate_pages"]


class PageSpace(spaces.MultiDiscrete):
    """``MultiDiscrete([N] * K)`` whose members are pages: ``K`` *distinct* item ids. ``sample`` draws ``K`` distinct
    items uniformly and ``contains`` rejects a repeated item, so a sampled action is always one the env accepts."""

    def __init__(self, num_items: int, page_size: int, seed: int | np.random.Generator | None = None) -> None:
        if page_size > num_items:
            raise ValueError(f"page_size ({page_size}) must be <= num_items ({num_items})")
        super().__init__(np.full(page_size, num_items, np.int64), dtype=np.int64, seed=seed)
        self.num_items, self.page_size = int(num_items), int(page_size)

    def sample(self, mask: Any = None) -> np.ndarray:
        if mask is not None:
            return super().sample(mask)
        return self.np_random.choice(self.num_items, self.page_size, replace=False).astype(self.dtype)

    def contains(self, x: Any) -> bool:
        return bool(super().contains(x)) and len(np.unique(np.asarray(x))) == self.page_size

    def __repr__(self) -> str:
        return f"PageSpace(num_items={self.num_items}, page_size={self.page_size})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, PageSpace) and super().__eq__(other)


def _default_session() -> MTFSessionV1Config:
    return MTFSessionV1Config(catalogue=CatalogueConfig(items_per_topic=1000))


@dataclass(frozen=True)
class MTFSlateConfig:
    """Parameters of ``MTFSlate-v0``.

    Attributes:
        session: the v1 user model, catalogue, page size and request cap (default: 20 topics x 1,000 items =
            20,000 items). ``gym.make("MTFSlate-v0", num_items=10**6)`` sets the catalogue size directly.
        expose_candidates: after every step (and at reset), run the production pipeline's retrieval and ranker for
            the next request and put its candidates and their predictions in ``info`` (``candidates`` ``(C,)``,
            ``candidate_predictions`` ``(C, T)``): what an item-level agent may reuse, and what
            :class:`mtf_gym.slate.PipelinePolicy` needs. Off is faster.
    """

    session: MTFSessionV1Config = field(default_factory=_default_session)
    expose_candidates: bool = True

    def __post_init__(self) -> None:
        _check(isinstance(self.session, MTFSessionV1Config), "MTFSlateConfig", "session", self.session,
               "an MTFSessionV1Config")

    @property
    def num_items(self) -> int:
        return self.session.num_items

    @property
    def page_size(self) -> int:
        return self.session.page_size

    @property
    def embedding_dim(self) -> int:
        return self.session.catalogue.embedding_dim

    @property
    def action_dim(self) -> int:
        return self.session.page_size

    @classmethod
    def from_kwargs(cls, config: MTFSlateConfig | None, kwargs: dict[str, Any]) -> MTFSlateConfig:
        """``gym.make("MTFSlate-v0", config=..., **kwargs)``: ``expose_candidates``, ``num_items``,
        ``num_topics``, ``embedding_dim``, ``catalogue_seed`` or any ``MTFSessionV1Config`` field."""
        if config is not None and not isinstance(config, cls):
            raise TypeError(f"config must be an MTFSlateConfig, got {type(config).__name__}")
        base = config if config is not None else cls()
        kwargs = dict(kwargs)
        expose = kwargs.pop("expose_candidates", base.expose_candidates)
        catalogue = base.session.catalogue
        cat_fields = {f.name for f in dataclasses.fields(CatalogueConfig)}
        cat_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in cat_fields}
        if "num_items" in kwargs:
            num_items = kwargs.pop("num_items")
            topics = cat_kwargs.get("num_topics", catalogue.num_topics)
            _check(isinstance(num_items, (int, np.integer)) and num_items >= topics and num_items % topics == 0,
                   "MTFSlateConfig", "num_items", num_items,
                   f"a positive multiple of num_topics ({topics}) (items are stored grouped by topic)")
            cat_kwargs["items_per_topic"] = int(num_items) // topics
        catalogue = dataclasses.replace(catalogue, **cat_kwargs) if cat_kwargs else catalogue
        session = base.session if not (kwargs or cat_kwargs) else dataclasses.replace(
            MTFSessionV1Config.from_kwargs(base.session, kwargs), catalogue=catalogue)
        return cls(session=session, expose_candidates=bool(expose))


def validate_pages(actions: Any, num_items: int, page_size: int, *, batch: bool) -> np.ndarray:
    """Item-id pages as int64 ``(K,)`` or ``(N, K)``; a clear ``ValueError`` for a wrong shape, a non-integer or
    non-finite value, an id out of ``[0, num_items)``, or an item repeated inside one page."""
    arr = np.asarray(actions)
    expected = f"(num_envs, {page_size})" if batch else f"({page_size},)"
    if (batch and (arr.ndim != 2 or arr.shape[1] != page_size)) or (not batch and arr.shape != (page_size,)):
        raise ValueError(f"action must have shape {expected} (item ids of the page, in position order), got shape "
                         f"{arr.shape}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError("action contains NaN or inf; it must hold integer item ids")
        if (arr != np.round(arr)).any():
            raise ValueError(f"action must hold integer item ids, got {arr}")
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"action must hold integer item ids, got dtype {arr.dtype}")
    ids = arr.astype(np.int64).reshape(-1, page_size)
    if ids.size and (ids.min() < 0 or ids.max() >= num_items):
        raise ValueError(f"action item ids must be in [0, {num_items}) (num_items), got min {ids.min()} and max "
                         f"{ids.max()}")
    if page_size > 1:
        ordered = np.sort(ids, axis=1)
        repeated = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        if repeated.any():
            row = int(np.flatnonzero(repeated)[0])
            raise ValueError(f"action repeats an item inside one page (row {row}: {ids[row].tolist()}); a page shows "
                             f"{page_size} distinct items")
    return ids if batch else ids[0]


class _SlateMixin:
    """What the single and vector slate envs share: spaces, the embedding part of the observation, candidates."""

    slate_config: MTFSlateConfig
    sim: UserSimulator

    def _setup_slate(self, config: MTFSlateConfig | None, kwargs: dict[str, Any], num_rows: int) -> None:
        self.slate_config = MTFSlateConfig.from_kwargs(config, kwargs)
        session = self.slate_config.session
        self.config = session
        catalogue = Catalogue.generate(session.catalogue, session.ranker.error_rank)
        self.sim = UserSimulator(session, num_rows, catalogue)
        d, k = session.catalogue.embedding_dim, session.page_size
        low = np.concatenate([np.zeros(OBS_DIM, np.float32), -np.ones(d, np.float32)])
        self._single_observation_space = spaces.Box(low, np.ones(OBS_DIM + d, np.float32), dtype=np.float32)
        self._single_action_space = PageSpace(session.num_items, k)
        c, t = session.num_candidates, session.num_tasks
        self.candidates = np.zeros((num_rows, c), np.int64) if self.slate_config.expose_candidates else None
        self.candidate_predictions = (np.zeros((num_rows, c, t), np.float32) if self.slate_config.expose_candidates
                                      else None)
        self._page_embeddings = np.zeros((num_rows, d), np.float32)

    @property
    def item_embeddings(self) -> np.ndarray:
        """Public ``(num_items, embedding_dim)`` float32 item embeddings (read-only; stable per catalogue seed)."""
        return self.sim.catalogue.embeddings

    @property
    def num_items(self) -> int:
        return self.slate_config.num_items

    @property
    def page_size(self) -> int:
        return self.slate_config.page_size

    def _with_embeddings(self, user_obs: np.ndarray, page_mean: np.ndarray | None) -> np.ndarray:
        """The observation: the user part, then the last page's mean public embedding (zeros before any page)."""
        out = np.zeros((user_obs.shape[0], user_obs.shape[1] + self.slate_config.embedding_dim), np.float32)
        out[:, :user_obs.shape[1]] = user_obs
        if page_mean is not None:
            out[:, user_obs.shape[1]:] = page_mean
        return out

    def _refresh_candidates(self) -> None:
        if self.candidates is not None:
            from mtf_gym.sim.kernels import next_candidates_rows

            next_candidates_rows(self.sim.model, self.sim.users, self.sim.scratch, self.candidates,
                                 self.candidate_predictions)

    def _slate_step(self, ids: np.ndarray, restart, restart_keys):
        # The kernel averages the page's embeddings (zeros for a restarted row) while the item rows are in cache.
        return self.sim.step_slate(ids, restart, restart_keys, self.candidates, self.candidate_predictions,
                                   self._page_embeddings)

    def _candidate_info(self, info: dict[str, Any], row: int | slice) -> dict[str, Any]:
        if self.candidates is not None:
            info["candidates"] = self.candidates[row].copy()
            info["candidate_predictions"] = self.candidate_predictions[row].copy()
        return info


class MTFSlateEnv(_SlateMixin, MTFSessionEnv):
    """
    ## Description

    ``MTFSlate-v0``: the users of ``MTFSession-v1``, but the agent chooses the page itself: ``K`` item ids out of
    a catalogue of ``N`` items (default 20,000; up to 10^6 and beyond). Everything after the page is chosen
    (responses, satisfaction, boredom, fatigue, leaving, reward) is the v1 user model's, so item-level and
    fusion-level policies can be compared on the same users. Items expose public embeddings
    (``env.unwrapped.item_embeddings``, ``(N, d)`` float32): noisy views of their latent topic, quality, clickbait
    and duration.

    ## Action Space

    ``PageSpace(N, K)``, a ``MultiDiscrete([N] * K)`` of distinct ids: the page's item ids in position order.
    An id out of range or an item repeated inside
    one page raises ``ValueError``; an item shown again in a later request is allowed (the user judges it afresh;
    only its topic's boredom remembers it).

    ## Observation Space

    ``Box((19 + d,), float32)``: the ``MTFSession-v1`` observation (``mtf_gym.OBSERVATION_FEATURES_V1``, in
    [0, 1]) followed by the mean public embedding of the last page's items (in [-1, 1]; zeros before the first
    request).

    ## Rewards, Starting State, Episode End

    As ``MTFSession-v1``.

    ## Info

    As ``MTFSession-v1`` (item logs hold the ranker's predictions of the shown items) plus, with
    ``expose_candidates=True`` (default), ``candidates`` ``(C,)`` and ``candidate_predictions`` ``(C, T)``: the
    production pipeline's retrieval and ranker output for the *next* request (at reset: for the first).

    ## Arguments

    ``gym.make("MTFSlate-v0", num_items=20000, page_size=6, expose_candidates=True, ...)`` or
    ``config=MTFSlateConfig(...)``. ``gym.make_vec("MTFSlate-v0", num_envs=N)`` is natively batched.

    ## Version History

    * v0: initial release, on the v1 user model.
    """

    def __init__(self, config: MTFSlateConfig | None = None, render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self._setup_slate(config, kwargs, 1)
        self.observation_space = self._single_observation_space
        self.action_space = self._single_action_space
        self._row = np.zeros(1, np.int64)
        self._needs_reset = True
        self._last_action = None

    def _first_observation(self, user_obs: np.ndarray) -> np.ndarray:
        self._refresh_candidates()
        return self._with_embeddings(user_obs, None)

    def _advance(self, action: np.ndarray):
        ids = validate_pages(action, self.num_items, self.page_size, batch=False)
        return self._slate_step(ids[None, :], None, None)

    def _observation(self, out) -> np.ndarray:
        return self._with_embeddings(out.observations, self._page_embeddings)

    def _info(self, out) -> dict[str, Any]:
        return self._candidate_info(step_info(out, self.sim, 0), 0)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        return obs, self._candidate_info(info, 0)


class MTFSlateVectorEnv(_SlateMixin, MTFSessionVectorEnv):
    """``num_envs`` slate sessions in one batched simulator; semantics of ``SyncVectorEnv`` over ``MTFSlate-v0``
    (next-step autoreset, Gymnasium's info masks, float64 rewards)."""

    def __init__(self, num_envs: int = 1, config: MTFSlateConfig | None = None, render_mode: str | None = None,
                 **kwargs: Any) -> None:
        kwargs.pop("max_episode_steps", None)
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        from gymnasium.utils import seeding

        self.num_envs = int(num_envs)
        self.render_mode = render_mode
        self._setup_slate(config, kwargs, self.num_envs)
        self.single_observation_space = self._single_observation_space
        self.single_action_space = self._single_action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._rngs = [seeding.np_random()[0] for _ in range(self.num_envs)]
        self._bit_generators = [rng.bit_generator for rng in self._rngs]
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._all_rows = np.arange(self.num_envs)
        self._needs_reset = True

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed, options=options)
        if self.candidates is not None:
            ones = np.ones(self.num_envs, dtype=bool)
            info.update(candidates=self.candidates.copy(), _candidates=ones,
                        candidate_predictions=self.candidate_predictions.copy(), _candidate_predictions=ones.copy())
        return obs, info

    def _validate(self, actions: np.ndarray) -> np.ndarray:
        ids = validate_pages(actions, self.num_items, self.page_size, batch=True)
        if ids.shape[0] != self.num_envs:
            raise ValueError(f"actions must have shape ({self.num_envs}, {self.page_size}), got {ids.shape}")
        return ids

    def _first_observation(self, user_obs: np.ndarray) -> np.ndarray:
        self._refresh_candidates()
        return self._with_embeddings(user_obs, None)

    def _advance(self, actions, restart, restart_keys):
        return self._slate_step(actions, restart, restart_keys)

    def _observation(self, out, live) -> np.ndarray:
        return self._with_embeddings(out.observations, self._page_embeddings)

    def _info(self, out) -> dict[str, Any]:
        info = step_info(out, self.sim, slice(None))
        if self.candidates is not None:
            # Candidates are "reset info" too: an autoreset row reports its new session's first candidates.
            info["candidates"] = self.candidates.copy()
            info["candidate_predictions"] = self.candidate_predictions.copy()
        return info

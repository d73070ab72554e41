"""A small slate environment whose best item is known, with the ``MTFSlate-v0`` interface.

:class:`KnownBestItemEnv` is what the slate agents' tests learn on (and what anyone can use to check a slate agent
before spending time on ``MTFSlate-v0``)::

    catalogue   N items with unit-norm public embeddings V (N, d), fixed by catalogue_seed
    user        one of U types, drawn at reset; type z has a hidden best item b_z (distinct per type)
    item reward r(z, i) = <v_i, v_{b_z}>  in [-1, 1], largest (= 1) at i = b_z; the best page is the top-K
    page reward sum of r(z, i) over the K distinct items of the page
    observation one-hot user type (U), then the mean embedding of the last page's items (d; zeros at first)
    action      MultiDiscrete([N] * K), distinct item ids (a repeated item raises ValueError)
    episode     terminated with probability leave_prob per request (the user left); truncated at max_requests

``env.unwrapped.item_embeddings``, ``num_items`` and ``page_size`` are exposed as on ``MTFSlate-v0``;
:class:`KnownBestItemVectorEnv` is the vector version (Gymnasium 1.0 "next step" autoreset, like the native vector
envs of ``mtf_gym``) and exposes the same attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["KnownBestItemConfig", "KnownBestItemEnv", "KnownBestItemVectorEnv", "mean_episode_return"]


@dataclass(frozen=True)
class KnownBestItemConfig:
    num_items: int = 50
    embedding_dim: int = 8
    page_size: int = 1
    num_user_types: int = 4
    max_requests: int = 5
    leave_prob: float = 0.0
    catalogue_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("num_items", "embedding_dim", "page_size", "num_user_types", "max_requests"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"KnownBestItemConfig.{name} must be an integer >= 1, got {value!r}")
        if self.page_size > self.num_items:
            raise ValueError(f"KnownBestItemConfig.page_size must be <= num_items ({self.num_items}), "
                             f"got {self.page_size}")
        if self.num_user_types > self.num_items:
            raise ValueError(f"KnownBestItemConfig.num_user_types must be <= num_items ({self.num_items}), "
                             f"got {self.num_user_types}")
        if not 0.0 <= self.leave_prob < 1.0:
            raise ValueError(f"KnownBestItemConfig.leave_prob must be in [0, 1), got {self.leave_prob!r}")


class KnownBestItemEnv(gym.Env):
    """See the module docstring. ``item_rewards[z]`` ``(N,)`` and ``best_items[z]`` are public for tests."""

    metadata = {"render_modes": []}

    def __init__(self, config: KnownBestItemConfig | None = None, **overrides: object) -> None:
        config = KnownBestItemConfig(**overrides) if config is None else config  # type: ignore[arg-type]
        self.config = config
        rng = np.random.default_rng(config.catalogue_seed)
        emb = rng.normal(size=(config.num_items, config.embedding_dim))
        self.item_embeddings = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
        self.best_items = rng.choice(config.num_items, size=config.num_user_types, replace=False)
        self.item_rewards = (self.item_embeddings @ self.item_embeddings[self.best_items].T).T.astype(np.float64)
        self.num_items, self.page_size = config.num_items, config.page_size
        obs_dim = config.num_user_types + config.embedding_dim
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(obs_dim,), dtype=np.float32)
        self.action_space = spaces.MultiDiscrete([config.num_items] * config.page_size)
        self.user_type = 0
        self._requests = 0

    def oracle_page_reward(self, user_type: int) -> float:
        """Reward of the best page (the top-K items) for ``user_type``."""
        return float(np.sort(self.item_rewards[user_type])[::-1][: self.page_size].sum())

    def random_page_reward(self, user_type: int) -> float:
        """Expected reward of a uniformly random page of K distinct items for ``user_type``."""
        return float(self.page_size * self.item_rewards[user_type].mean())

    def _obs(self, page_mean: np.ndarray) -> np.ndarray:
        onehot = np.zeros(self.config.num_user_types, dtype=np.float32)
        onehot[self.user_type] = 1.0
        return np.concatenate([onehot, page_mean.astype(np.float32)])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.user_type = int(self.np_random.integers(self.config.num_user_types))
        self._requests = 0
        return self._obs(np.zeros(self.config.embedding_dim)), {"user_type": self.user_type}

    def step(self, action):
        page = np.asarray(action, dtype=np.int64).reshape(-1)
        if page.shape != (self.page_size,) or page.min() < 0 or page.max() >= self.num_items:
            raise ValueError(f"action must be {self.page_size} item ids in [0, {self.num_items}), got {action!r}")
        if len(np.unique(page)) != len(page):
            raise ValueError(f"action must not repeat an item on a page, got {page.tolist()}")
        reward = float(self.item_rewards[self.user_type, page].sum())
        self._requests += 1
        terminated = bool(self.np_random.random() < self.config.leave_prob)
        truncated = not terminated and self._requests >= self.config.max_requests
        obs = self._obs(self.item_embeddings[page].mean(0))
        return obs, reward, terminated, truncated, {"user_type": self.user_type}


class KnownBestItemVectorEnv(gym.vector.SyncVectorEnv):
    """``num_envs`` copies of :class:`KnownBestItemEnv` (same catalogue), with the catalogue attributes exposed."""

    def __init__(self, num_envs: int, config: KnownBestItemConfig | None = None, **overrides: object) -> None:
        config = KnownBestItemConfig(**overrides) if config is None else config  # type: ignore[arg-type]
        super().__init__([lambda: KnownBestItemEnv(config) for _ in range(num_envs)])
        first = self.envs[0].unwrapped
        self.item_embeddings, self.num_items, self.page_size = first.item_embeddings, first.num_items, first.page_size
        self.config = config


def mean_episode_return(policy: Callable[[np.ndarray], np.ndarray], envs: gym.vector.VectorEnv, episodes: int,
                        seed: int = 0) -> float:
    """Mean undiscounted return of ``policy`` (``(B, obs_dim) -> (B, K)`` item ids) over the first ``episodes``
    episodes of a next-step-autoreset vector env reset with ``seed``."""
    obs, _ = envs.reset(seed=seed)
    n = envs.num_envs
    returns: list[float] = []
    running = np.zeros(n)
    pending_reset = np.zeros(n, dtype=bool)
    while len(returns) < episodes:
        obs, reward, terminated, truncated, _ = envs.step(policy(obs))
        live = ~pending_reset
        running[live] += reward[live]
        done = (terminated | truncated) & live
        returns.extend(running[done].tolist())
        running[done] = 0.0
        pending_reset = done
    return float(np.mean(returns[:episodes]))

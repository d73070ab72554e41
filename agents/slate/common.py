"""What the slate agents share: the config fields, the agent base class, the vector-env stepper, returns, latency.

A slate agent plays ``MTFSlate-v0`` (or any env with its interface, e.g. :mod:`mtf_agents.slate.testing`):

* action ``MultiDiscrete([N] * K)``: a page of ``K`` distinct item ids;
* observation: a flat float32 vector (user features, then the mean public embedding of the last page);
* ``env.unwrapped.item_embeddings`` ``(N, d)`` float32, ``num_items``, ``page_size``.

Contract (the slate variant of :class:`mtf_agents.base.Agent`'s):

* ``agent.fit_online(env, n_steps, *, seed=0, show_progress=True)``: ``env`` is an env id (built with
  ``gym.make_vec(env, num_envs=config.n_envs)``), a ``gym.vector.VectorEnv``, or a single ``gym.Env``; ``n_steps``
  counts requests (env steps summed over sub-envs). Training again on the same catalogue continues; on another
  catalogue it starts afresh.
* ``agent.act(observations, exclude=None) -> (B, K)`` int64 item ids, distinct per row, deterministic;
  ``exclude`` ``(B, M)`` item ids (``-1`` padding) never to be picked (e.g. items already shown in the session).
* ``agent.initialise(observation_dim, item_embeddings, page_size)``: untrained networks for a catalogue (what the
  latency benchmark times); ``save`` / ``load_agent`` round-trip the networks *and* the catalogue embeddings.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from mtf_agents.base import Agent, AgentConfig, Kind

__all__ = ["SLATE_ENV_ID", "SlateAgent", "SlateAgentConfig", "VecStepper", "catalogue_of", "decision_latency",
           "discounted_returns", "mlp"]

SLATE_ENV_ID = "MTFSlate-v0"
CATALOGUE_FILE = "catalogue.npz"
NETWORKS_FILE = "networks.pt"


@dataclass(frozen=True)
class SlateAgentConfig(AgentConfig):
    """Fields every slate agent has. ``hidden_units``/``gamma`` default to the zoo's shared 256x256 / 0.9."""

    shared_settings: ClassVar[tuple[str, ...]] = ("hidden_units", "gamma")  # CPU-only, on-policy: no batch/device

    hidden_units: tuple[int, ...] = (256, 256)
    gamma: float = 0.9
    learning_rate: float = 3e-4
    n_envs: int = 8

    def validate(self) -> None:
        super().validate()
        self.check_layers("hidden_units")
        self.check_range("gamma", 0.0, 1.0)
        self.check_positive("learning_rate")
        self.check_min("n_envs", 1)


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int | None) -> nn.Sequential:
    """ReLU MLP; ``out_dim=None`` ends on the last hidden layer (a trunk)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    if out_dim is not None:
        layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def catalogue_of(env: gym.Env | gym.vector.VectorEnv) -> tuple[np.ndarray, int]:
    """``(item_embeddings (N, d) float32, page_size K)`` of a slate env or vector env."""
    base = env.unwrapped
    if hasattr(base, "item_embeddings"):
        emb, page_size = base.item_embeddings, base.page_size
    elif isinstance(env, gym.vector.VectorEnv):  # a generic SyncVectorEnv / AsyncVectorEnv of slate envs
        emb, page_size = env.get_attr("item_embeddings")[0], env.get_attr("page_size")[0]
    else:
        raise TypeError(f"{type(base).__name__} has no item_embeddings: slate agents play MTFSlate-v0-like envs")
    # The agent keeps its own copy (saved with it): MTFSlate-v0's array is read-only, and torch.from_numpy warns on
    # a read-only array.
    emb = np.array(emb, dtype=np.float32, order="C", copy=True)
    if emb.ndim != 2 or len(emb) == 0:
        raise ValueError(f"env item_embeddings must be a non-empty (N, d) matrix, got shape {emb.shape}")
    return emb, int(page_size)


def discounted_returns(rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray, valid: np.ndarray,
                       next_values: np.ndarray, gamma: float) -> np.ndarray:
    """Discounted return of every step of a ``(T, B)`` rollout segment.

    ``G_t = r_t + gamma * next`` where ``next`` is 0 after a termination (the user left), the baseline's value of
    the next observation after a truncation (request cap) or at the segment's end, and ``G_{t+1}`` otherwise.
    Invalid steps (a next-step autoreset) get 0 and are skipped by the losses.
    """
    T = rewards.shape[0]
    out = np.zeros_like(rewards, dtype=np.float64)
    carry = next_values[-1].astype(np.float64)
    for t in range(T - 1, -1, -1):
        following = np.where(truncated[t] | (t == T - 1), next_values[t], carry)
        following = np.where(terminated[t], 0.0, following)
        out[t] = np.where(valid[t], rewards[t] + gamma * following, 0.0)
        carry = out[t]
    return out


class VecStepper:
    """Steps a vector env, telling which transitions are real (Gymnasium 1.0 next-step autoreset) and keeping the
    chapter's reward shaping ``r + alpha * (c_p - c_n)`` (consecutive positive / negative rewards before this one,
    per session)."""

    def __init__(self, envs: gym.vector.VectorEnv, seed: int, shaping_alpha: float = 0.0) -> None:
        self.envs = envs
        mode = str(envs.metadata.get("autoreset_mode", "next_step")).lower()
        self.same_step = "same" in mode
        self.obs, _ = envs.reset(seed=seed)
        n = envs.num_envs
        self.pending_reset = np.zeros(n, dtype=bool)
        self.alpha = shaping_alpha
        self.c_pos = np.zeros(n)
        self.c_neg = np.zeros(n)
        self.episode_return = np.zeros(n)
        self.finished_returns: list[float] = []

    def step(self, actions: np.ndarray) -> dict[str, np.ndarray]:
        obs = self.obs
        next_obs, reward, terminated, truncated, info = self.envs.step(actions)
        reward = np.asarray(reward, dtype=np.float64)
        valid = np.ones(len(reward), dtype=bool) if self.same_step else ~self.pending_reset
        done = (terminated | truncated) & valid
        learn_next = next_obs
        if self.same_step and done.any() and "final_obs" in info:
            learn_next = next_obs.copy()
            for i in np.flatnonzero(done):
                learn_next[i] = info["final_obs"][i]
        shaped = reward + self.alpha * (self.c_pos - self.c_neg)
        self.c_pos = np.where(valid, np.where(reward > 0, self.c_pos + 1, 0), self.c_pos)
        self.c_neg = np.where(valid, np.where(reward < 0, self.c_neg + 1, 0), self.c_neg)
        self.episode_return += np.where(valid, reward, 0.0)
        self.finished_returns.extend(self.episode_return[done].tolist())
        self.episode_return[done] = 0.0
        self.c_pos[done] = 0
        self.c_neg[done] = 0
        self.pending_reset = done
        self.obs = next_obs
        return {"obs": obs, "actions": actions, "reward": reward, "shaped": shaped, "next_obs": learn_next,
                "terminated": terminated & valid, "truncated": truncated & valid, "valid": valid}

    def recent_return(self, last: int = 100) -> float:
        return float(np.mean(self.finished_returns[-last:])) if self.finished_returns else float("nan")


def _as_vector_env(env: Any, n_envs: int) -> tuple[gym.vector.VectorEnv, bool]:
    """``(vector env, whether we built it and must close it)``."""
    if isinstance(env, str):
        import mtf_gym  # noqa: F401  (registers the env ids: Gymnasium 1.0 loads no plug-ins by itself)

        return gym.make_vec(env, num_envs=n_envs), True
    if isinstance(env, gym.vector.VectorEnv):
        return env, False
    if isinstance(env, gym.Env):
        return gym.vector.SyncVectorEnv([lambda: env]), False  # the caller's env: not ours to close
    raise TypeError(f"slate agents train in {SLATE_ENV_ID} or an env with its interface: env must be an env id, a "
                    f"gymnasium.vector.VectorEnv or a gymnasium.Env, got {type(env).__name__}")


class SlateAgent(Agent):
    """Base of the slate agents. Subclasses implement ``_build`` (networks), ``_select`` (pages), ``_train``."""

    kind: ClassVar[Kind] = "online"
    env_id: ClassVar[str] = SLATE_ENV_ID
    config: SlateAgentConfig

    def __init__(self, config: AgentConfig | None = None) -> None:
        super().__init__(config)
        self.item_embeddings: np.ndarray | None = None
        self.page_size: int | None = None
        self.training_seed = 0
        # Arrays of a saved agent's catalogue structures (tree, approximate index) for _build to reuse on load.
        self._saved_structure: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ set-up
    def initialise(self, observation_dim: int, item_embeddings: np.ndarray, page_size: int, *, seed: int = 0) -> None:
        """Fresh (untrained) networks for this catalogue, observation size and page size."""
        emb = np.ascontiguousarray(np.asarray(item_embeddings, dtype=np.float32))
        if emb.ndim != 2 or len(emb) == 0:
            raise ValueError(f"item_embeddings must be a non-empty (N, d) matrix, got shape {emb.shape}")
        if not 1 <= int(page_size) <= len(emb):
            raise ValueError(f"page_size must be in [1, {len(emb)}] (the catalogue size), got {page_size}")
        self.item_embeddings, self.page_size = emb, int(page_size)
        self._set_dims(observation_dim, page_size)
        self.training_seed = int(seed)
        with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the global RNG
            torch.manual_seed(seed)
            self._build(seed)

    @property
    def num_items(self) -> int:
        assert self.item_embeddings is not None
        return len(self.item_embeddings)

    # ------------------------------------------------------------------ acting
    def act(self, observations: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:  # type: ignore[override]
        """Pages ``(B, K)`` int64 of distinct item ids for observations ``(B, obs_dim)``; deterministic."""
        obs = self._checked_observations(observations)
        exclude = self._check_exclude(exclude, len(obs))
        with torch.no_grad():
            pages = np.asarray(self._select(torch.from_numpy(obs), exclude, explore=False)[0], dtype=np.int64)
        assert pages.shape == (len(obs), self.page_size), pages.shape
        return pages

    def decision_latency(self, observations: np.ndarray, *, repeats: int = 5) -> float:
        """Median seconds per request of ``act(observations)`` (see :func:`decision_latency`)."""
        return decision_latency(self, observations, repeats=repeats)

    def _check_exclude(self, exclude: np.ndarray | None, batch: int) -> np.ndarray | None:
        if exclude is None:
            return None
        ex = np.asarray(exclude, dtype=np.int64)
        if ex.ndim != 2 or ex.shape[0] != batch or (ex.size and (ex.min() < -1 or ex.max() >= self.num_items)):
            raise ValueError(f"exclude must be (B, M) item ids in [0, {self.num_items}) or -1, got shape {ex.shape}")
        if self.num_items - (ex >= 0).sum(1).max(initial=0) < self.page_size:
            raise ValueError("exclude leaves fewer than page_size items to choose from")
        return ex

    def _predict(self, observations: np.ndarray) -> np.ndarray:
        return self.act(observations)

    @abstractmethod
    def _build(self, seed: int) -> None:
        """Create networks (and indexes) for ``self.item_embeddings`` / ``observation_dim`` / ``page_size``."""

    @abstractmethod
    def _select(self, obs: torch.Tensor, exclude: np.ndarray | None, *, explore: bool,
                generator: torch.Generator | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Pages ``(B, K)`` and whatever the training step needs to recompute log-probabilities."""

    # ------------------------------------------------------------------ training
    def fit_online(self, env: Any, n_steps: int, *, seed: int = 0,  # type: ignore[override]
                   show_progress: bool = True) -> dict[str, float]:
        """Train for about ``n_steps`` requests in ``env`` (an env id, a vector env, or an env); see the module."""
        from mtf_agents.base import _check_steps

        _check_steps(n_steps)
        envs, owned = _as_vector_env(env, self.config.n_envs)
        try:
            emb, page_size = catalogue_of(envs)
            obs_space = envs.single_observation_space
            act_space = envs.single_action_space
            if not isinstance(act_space, gym.spaces.MultiDiscrete) or act_space.shape != (page_size,):
                raise TypeError(f"slate agents need a MultiDiscrete([N] * K) action space, got {act_space}")
            obs_dim = int(np.prod(obs_space.shape))
            same = (self.is_fitted and self.item_embeddings is not None and self.item_embeddings.shape == emb.shape
                    and np.array_equal(self.item_embeddings, emb) and self.observation_dim == obs_dim
                    and self.page_size == page_size)
            if not same:
                self.initialise(obs_dim, emb, page_size, seed=seed)
            return self._train(envs, int(n_steps), seed=int(seed), show_progress=show_progress)
        finally:
            if owned:
                envs.close()

    def fit(self, data: Any, n_steps: int, *, seed: int = 0, show_progress: bool = True) -> dict[str, float]:
        raise TypeError(f"{self.name!r} is an online slate agent: train it with fit_online(env, n_steps) on "
                        f"{self.env_id}")

    @abstractmethod
    def _train(self, envs: gym.vector.VectorEnv, n_steps: int, *, seed: int, show_progress: bool) -> dict[str, float]:
        """Training proper, on a vector env whose catalogue the networks were built for."""

    # ------------------------------------------------------------------ persistence
    @abstractmethod
    def _modules(self) -> dict[str, nn.Module]:
        """Every module whose state must be saved (target networks included)."""

    def _structure_arrays(self) -> dict[str, np.ndarray]:
        """Catalogue structures to save verbatim (a tree, an approximate index), so that a loaded agent does not
        depend on rebuilding them identically (k-means, faiss versions); ``_build`` finds them in
        ``self._saved_structure``."""
        return {}

    def _save_payload(self, path: Path) -> None:
        assert self.item_embeddings is not None
        tmp = path / (CATALOGUE_FILE + ".tmp.npz")
        np.savez(tmp, item_embeddings=self.item_embeddings, page_size=self.page_size, seed=self.training_seed,
                 **self._structure_arrays())
        tmp.replace(path / CATALOGUE_FILE)
        state = {name: module.state_dict() for name, module in self._modules().items()}
        torch.save(state, path / (NETWORKS_FILE + ".tmp"))
        (path / (NETWORKS_FILE + ".tmp")).replace(path / NETWORKS_FILE)

    def _load_payload(self, path: Path, metadata: dict[str, Any]) -> None:
        with np.load(path / CATALOGUE_FILE) as data:
            emb, page_size, seed = data["item_embeddings"], int(data["page_size"]), int(data["seed"])
            self._saved_structure = {key: data[key] for key in data.files
                                     if key not in ("item_embeddings", "page_size", "seed")}
        try:
            self.initialise(metadata["observation_dim"], emb, page_size, seed=seed)
        finally:
            self._saved_structure = {}
        state = torch.load(path / NETWORKS_FILE, weights_only=True)
        for name, module in self._modules().items():
            module.load_state_dict(state[name])


def decision_latency(agent: SlateAgent, observations: np.ndarray, *, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds per request of ``agent.act(observations)`` (the batch divided over its rows)."""
    for _ in range(warmup):
        agent.act(observations)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        agent.act(observations)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / len(observations)

"""``wolpertinger``: DDPG in item-embedding space plus k-nearest-neighbour search (Dulac-Arnold et al. 2015).

Acting, for an observation ``s`` (the chapter's eqs. 7-2 to 7-4)::

    a_hat = f(s)                                  actor -> proto-action in R^d (tanh, scaled to the catalogue's box)
    C     = g_k(a_hat)                            the k nearest items of a_hat (kNN backend, metric "l2" by default)
    page  = the K items of C with the largest Q(s, v_i)   (the critic's top-K among the neighbours: K distinct items)

``k = clip(ceil(knn_fraction * N), K, N)`` (the chapter suggests ``k / N > 10 %``), optionally capped by
``max_neighbours``. Slates: the critic is an *item* critic ``Q(s, v)`` and a page's value is the sum over its items,
``Q(s, page) = sum_k Q(s, v_{a_k})``; under that decomposition the critic's best page among the neighbours is
exactly its top-K, so one proto-action per request yields ``K`` distinct items.

Training (DDPG, the chapter's table 7-1), on a replay buffer of ``(s, page, r, s', terminated)``::

    y        = r + gamma * (1 - terminated) * sum_k Q'(s', v_{a'_k}),  a' = top-K of Q' over g_k(f'(s'))
    critic   minimises (sum_k Q(s, v_{a_k}) - y)^2           (the target page goes through the same kNN)
    actor    maximises Q(s, f(s))                             (the gradient flows through the proto-action)
    targets  Polyak averaging with tau

Exploration: Gaussian noise on the proto-action, ``exploration_noise`` times the catalogue's per-dimension spread;
uniformly random pages for the first ``learning_starts`` transitions. With an approximate kNN backend, recall@k
against exact search is measured when the index is built and returned in the training metrics
(``knn_recall_at_k``) and by :meth:`WolpertingerAgent.knn_report`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mtf_agents.base import config_error
from mtf_agents.slate.common import SlateAgent, SlateAgentConfig, VecStepper, mlp
from mtf_agents.slate.knn import ApproximateKNN, KNNIndex, RecallReport, make_knn

__all__ = ["WolpertingerAgent", "WolpertingerConfig"]


@dataclass(frozen=True)
class WolpertingerConfig(SlateAgentConfig):
    """Wolpertinger (DDPG + kNN). ``knn_fraction``: neighbours per proto-action as a fraction of the catalogue."""

    shared_settings: ClassVar[tuple[str, ...]] = ("hidden_units", "batch_size", "gamma")  # CPU-only

    knn_fraction: float = 0.1
    max_neighbours: int | None = None
    knn_backend: Literal["exact", "hnsw", "ivf"] = "exact"
    knn_metric: Literal["l2", "ip"] = "l2"
    batch_size: int = 256
    buffer_size: int = 100_000
    learning_starts: int = 1_000
    tau: float = 0.005
    exploration_noise: float = 0.2
    updates_per_step: int = 1

    def validate(self) -> None:
        super().validate()
        self.check_range("knn_fraction", 0.0, 1.0, low_open=True)
        if self.max_neighbours is not None and self.max_neighbours < 1:
            raise config_error(self, "max_neighbours", "None or an integer >= 1", self.max_neighbours)
        self.check_min("batch_size", 1)
        self.check_min("buffer_size", 1)
        self.check_min("learning_starts", 0)
        self.check_range("tau", 0.0, 1.0, low_open=True)
        self.check_min("exploration_noise", 0.0)
        self.check_min("updates_per_step", 1)


def _distinct_mask(ids: np.ndarray) -> np.ndarray:
    """True at the first occurrence of each id in its row (approximate indexes may pad with repeats)."""
    order = np.argsort(ids, axis=1, kind="stable")
    sorted_ids = np.take_along_axis(ids, order, axis=1)
    first_sorted = np.ones_like(sorted_ids, dtype=bool)
    first_sorted[:, 1:] = sorted_ids[:, 1:] != sorted_ids[:, :-1]
    mask = np.empty_like(first_sorted)
    np.put_along_axis(mask, order, first_sorted, axis=1)
    return mask


class WolpertingerAgent(SlateAgent):
    name = "wolpertinger"
    config_class = WolpertingerConfig
    summary = "Wolpertinger (MTFSlate-v0): DDPG proto-action + kNN over item embeddings + critic's top-K"
    config: WolpertingerConfig

    # ------------------------------------------------------------------ networks
    def _build(self, seed: int) -> None:
        cfg = self.config
        emb = self.item_embeddings
        assert emb is not None and self.observation_dim is not None
        d = emb.shape[1]
        self._emb_t = torch.from_numpy(emb)
        self._scale = torch.from_numpy(np.abs(emb).max(0) + 1e-6)  # proto-actions live in the catalogue's box
        self._spread = torch.from_numpy(emb.std(0) + 1e-6)
        self.actor = mlp(self.observation_dim, cfg.hidden_units, d)
        self.critic = mlp(self.observation_dim + d, cfg.hidden_units, 1)
        self.actor_target = copy.deepcopy(self.actor)
        self.critic_target = copy.deepcopy(self.critic)
        n = len(emb)
        k = math.ceil(cfg.knn_fraction * n)
        if cfg.max_neighbours is not None:
            k = min(k, cfg.max_neighbours)
        self.k = int(min(n, max(k, self.page_size)))
        self.knn: KNNIndex = make_knn(emb, backend=cfg.knn_backend, metric=cfg.knn_metric, recall_k=self.k,
                                      seed=seed, serialized=self._saved_structure.get("knn_index"))

    def _modules(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "critic": self.critic, "actor_target": self.actor_target,
                "critic_target": self.critic_target}

    def _structure_arrays(self) -> dict[str, np.ndarray]:
        # An approximate index is saved as built (faiss k-means / HNSW graphs need not rebuild identically).
        return {"knn_index": self.knn.serialize()} if isinstance(self.knn, ApproximateKNN) else {}

    def knn_report(self) -> RecallReport | None:
        """recall@k of the approximate kNN backend against exact search (``None`` for the exact backend)."""
        return self.knn.recall

    def _proto(self, actor: nn.Module, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(actor(obs)) * self._scale

    def _q_items(self, critic: nn.Module, obs: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``Q(s_b, v_{items[b, j]})`` ``(B, J)``."""
        b, j = items.shape
        vec = self._emb_t[items.reshape(-1)]
        pairs = torch.cat([obs.repeat_interleave(j, dim=0), vec], dim=1)
        return critic(pairs).reshape(b, j)

    def _top_pages(self, actor: nn.Module, critic: nn.Module, obs: torch.Tensor, exclude: np.ndarray | None,
                   noise: torch.Tensor | None = None) -> tuple[np.ndarray, torch.Tensor]:
        """Pages ``(B, K)`` (critic's top-K among the proto-action's neighbours) and their item Q values."""
        proto = self._proto(actor, obs)
        if noise is not None:
            proto = proto + noise
        k = self.k if exclude is None else min(self.num_items, self.k + exclude.shape[1])
        ids = self.knn.search(proto.detach().numpy(), k)[1]
        q = self._q_items(critic, obs, torch.from_numpy(ids))
        allowed = _distinct_mask(ids)
        if exclude is not None:
            allowed &= ~(ids[:, :, None] == exclude[:, None, :]).any(-1)
        q_masked = q.masked_fill(torch.from_numpy(~allowed), float("-inf"))
        top_q, top = torch.topk(q_masked, self.page_size, dim=1)
        pages = np.take_along_axis(ids, top.numpy(), axis=1)
        short = ~np.isfinite(top_q.detach().numpy())
        if short.any():  # fewer than K usable neighbours (heavy exclusion / approximate misses): fill by id order
            pages = self._fill(pages, short, exclude)
            top_q = torch.where(torch.from_numpy(short), torch.zeros_like(top_q), top_q)
        return pages, top_q

    def _fill(self, pages: np.ndarray, short: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
        pages = pages.copy()
        for row in np.flatnonzero(short.any(1)):
            taken = set(pages[row][~short[row]].tolist()) | (set(exclude[row].tolist()) if exclude is not None
                                                             else set())
            free = (i for i in range(self.num_items) if i not in taken)
            for col in np.flatnonzero(short[row]):
                pages[row, col] = next(free)
        return pages

    def _select(self, obs: torch.Tensor, exclude: np.ndarray | None, *, explore: bool,
                generator: torch.Generator | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        noise = None
        if explore and self.config.exploration_noise > 0:
            noise = torch.randn(obs.shape[0], self._scale.shape[0], generator=generator)
            noise = noise * self._spread * self.config.exploration_noise
        pages, _ = self._top_pages(self.actor, self.critic, obs, exclude, noise)
        return pages, {}

    # ------------------------------------------------------------------ training
    def _train(self, envs: gym.vector.VectorEnv, n_steps: int, *, seed: int, show_progress: bool) -> dict[str, float]:
        cfg = self.config
        assert self.observation_dim is not None and self.page_size is not None
        gen = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
        cap = cfg.buffer_size
        buf_obs = np.zeros((cap, self.observation_dim), dtype=np.float32)
        buf_next = np.zeros_like(buf_obs)
        buf_pages = np.zeros((cap, self.page_size), dtype=np.int64)
        buf_reward = np.zeros(cap, dtype=np.float32)
        buf_term = np.zeros(cap, dtype=np.float32)
        size = pos = 0
        actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.learning_rate)
        critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.learning_rate)
        stepper = VecStepper(envs, seed)
        metrics = {"critic_loss": float("nan"), "actor_loss": float("nan")}
        done_steps = 0
        bar = tqdm(total=n_steps, disable=not show_progress, desc=self.name)
        while done_steps < n_steps:
            obs_t = torch.from_numpy(np.asarray(stepper.obs, dtype=np.float32))
            if done_steps < cfg.learning_starts:
                pages = np.stack([rng.choice(self.num_items, self.page_size, replace=False)
                                  for _ in range(len(obs_t))])
            else:
                with torch.no_grad():
                    pages, _ = self._select(obs_t, None, explore=True, generator=gen)
            out = stepper.step(pages)
            valid = out["valid"]
            rows = np.flatnonzero(valid)
            slots = (pos + np.arange(len(rows))) % cap  # ring buffer
            buf_obs[slots], buf_next[slots], buf_pages[slots] = out["obs"][rows], out["next_obs"][rows], pages[rows]
            buf_reward[slots], buf_term[slots] = out["reward"][rows], out["terminated"][rows]
            pos = (pos + len(rows)) % cap
            size = min(size + len(rows), cap)
            done_steps += int(valid.sum())
            bar.update(int(valid.sum()))
            if done_steps >= cfg.learning_starts and size > 0:
                for _ in range(cfg.updates_per_step):
                    idx = rng.integers(0, size, size=min(cfg.batch_size, size))
                    metrics = self._update(buf_obs[idx], buf_pages[idx], buf_reward[idx], buf_next[idx],
                                           buf_term[idx], actor_opt, critic_opt)
        bar.close()
        return {**metrics, "mean_return": stepper.recent_return(), **self._knn_metrics()}

    def _knn_metrics(self) -> dict[str, float]:
        report = self.knn_report()
        return {} if report is None else {"knn_recall_at_k": float(report.recall), "knn_k": float(report.k)}

    def _update(self, obs: np.ndarray, pages: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
                terminated: np.ndarray, actor_opt: torch.optim.Optimizer,
                critic_opt: torch.optim.Optimizer) -> dict[str, float]:
        cfg = self.config
        obs_t, next_t = torch.from_numpy(obs), torch.from_numpy(next_obs)
        with torch.no_grad():
            _, next_q = self._top_pages(self.actor_target, self.critic_target, next_t, None)
            y = torch.from_numpy(reward) + cfg.gamma * (1 - torch.from_numpy(terminated)) * next_q.sum(1)
        q = self._q_items(self.critic, obs_t, torch.from_numpy(pages)).sum(1)
        critic_loss = ((q - y) ** 2).mean()
        critic_opt.zero_grad()
        critic_loss.backward()
        critic_opt.step()
        proto = self._proto(self.actor, obs_t)
        actor_loss = -self.critic(torch.cat([obs_t, proto], dim=1)).mean()
        actor_opt.zero_grad()
        actor_loss.backward()
        actor_opt.step()
        with torch.no_grad():
            for net, target in ((self.actor, self.actor_target), (self.critic, self.critic_target)):
                for p, tp in zip(net.parameters(), target.parameters()):
                    tp.mul_(1 - cfg.tau).add_(p, alpha=cfg.tau)
        return {"critic_loss": float(critic_loss.detach()), "actor_loss": float(actor_loss.detach())}

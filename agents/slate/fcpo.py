"""``fcpo``: matrix reconstruction, the chapter's reading of FCPO: a whole page from one Gaussian matrix sample.

For an observation ``s`` (the chapter's eqs. 7-7 to 7-11), with ``V`` ``(N, d)`` the public item embeddings::

    (mu, sigma) = pi(s)                  two heads, each K x d (sigma: a diagonal covariance, via log sigma)
    W ~ N(mu, diag(sigma^2))             W in R^{K x d}; acting deterministically uses W = mu
    P = softmax(W V^T)                   (K, N): row k is the distribution over items for position k
    a_k = argmax_i P[k, i]               over items not already on the page (positions filled in order 1..K)

The softmax is monotone, so the argmax of ``P`` equals the argmax of the scores ``W V^T``: the agent computes the
scores and masks, not the softmax itself (same pages, no ``exp`` over ``N`` items).

Training: **REINFORCE with a learned value baseline** (not PPO). The policy's action is the sampled matrix ``W``;
its log-density ``log N(W; mu, sigma)`` (summed over the ``K x d`` entries) is weighted by the advantage
``G_t - V(s_t)``, where ``G_t`` is the discounted return within an on-policy rollout of ``rollout_steps`` requests
per sub-env, bootstrapped with ``V`` at the rollout's end and at truncations (0 after the user left). ``V`` is a
separate MLP fitted to ``G_t`` by squared error; an entropy bonus ``entropy_coef`` keeps ``sigma`` from collapsing
early. Advantages are standardised per rollout (``normalize_advantages``, on by default). Defaults of the loop
(``learning_rate`` 1e-3, 8-request rollouts): :mod:`mtf_agents.slate.onpolicy`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from mtf_agents.slate.common import SlateAgent, SlateAgentConfig, mlp
from mtf_agents.slate.onpolicy import OnPolicyConfigMixin, train_on_policy

__all__ = ["FCPOAgent", "FCPOConfig", "masked_sequential_argmax"]


@dataclass(frozen=True)
class FCPOConfig(OnPolicyConfigMixin, SlateAgentConfig):
    """Matrix reconstruction trained by REINFORCE with a value baseline."""

    log_std_init: float = -0.5
    log_std_min: float = -5.0
    log_std_max: float = 1.0

    def validate(self) -> None:
        super().validate()
        if not self.log_std_min < self.log_std_max:
            from mtf_agents.base import config_error

            raise config_error(self, "log_std_min", f"< log_std_max ({self.log_std_max})", self.log_std_min)
        self.check_range("log_std_init", self.log_std_min, self.log_std_max)


def masked_sequential_argmax(scores: torch.Tensor, exclude: np.ndarray | None) -> np.ndarray:
    """Pages from position scores ``(B, K, N)``: position ``k`` takes its best item not yet on the page (nor in
    ``exclude``)."""
    b, k_slots, _ = scores.shape
    mask = torch.zeros(b, scores.shape[2], dtype=torch.bool)
    if exclude is not None:
        rows, cols = np.nonzero(exclude >= 0)
        mask[torch.from_numpy(rows), torch.from_numpy(exclude[rows, cols])] = True
    pages = torch.empty(b, k_slots, dtype=torch.int64)
    arange = torch.arange(b)
    for k in range(k_slots):
        choice = scores[:, k].masked_fill(mask, float("-inf")).argmax(1)
        pages[:, k] = choice
        mask[arange, choice] = True
    return pages.numpy()


class FCPOAgent(SlateAgent):
    name = "fcpo"
    config_class = FCPOConfig
    summary = "Matrix reconstruction / FCPO (MTFSlate-v0): K x d Gaussian W, argmax of softmax(W V^T), REINFORCE"
    config: FCPOConfig

    def _build(self, seed: int) -> None:
        cfg = self.config
        assert self.item_embeddings is not None and self.observation_dim is not None and self.page_size is not None
        with warnings.catch_warnings():
            # The catalogue's embeddings are read-only and shared (no copy of N x d floats); nothing writes to them.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            self._emb_t = torch.from_numpy(self.item_embeddings)
        d, k = self.item_embeddings.shape[1], self.page_size
        self.trunk = mlp(self.observation_dim, cfg.hidden_units, None)
        self.mean_head = nn.Linear(cfg.hidden_units[-1], k * d)
        self.log_std_head = nn.Linear(cfg.hidden_units[-1], k * d)
        nn.init.zeros_(self.log_std_head.weight)
        nn.init.constant_(self.log_std_head.bias, cfg.log_std_init)
        self.value = mlp(self.observation_dim, cfg.hidden_units, 1)
        self.policy_parameters = [*self.trunk.parameters(), *self.mean_head.parameters(),
                                  *self.log_std_head.parameters()]

    def _modules(self) -> dict[str, nn.Module]:
        return {"trunk": self.trunk, "mean_head": self.mean_head, "log_std_head": self.log_std_head,
                "value": self.value}

    def _distribution(self, obs: torch.Tensor) -> torch.distributions.Normal:
        h = self.trunk(obs)
        shape = (obs.shape[0], self.page_size, self._emb_t.shape[1])
        mu = self.mean_head(h).reshape(shape)
        log_std = self.log_std_head(h).reshape(shape).clamp(self.config.log_std_min, self.config.log_std_max)
        return torch.distributions.Normal(mu, log_std.exp())

    def _select(self, obs: torch.Tensor, exclude: np.ndarray | None, *, explore: bool,
                generator: torch.Generator | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        dist = self._distribution(obs)
        if explore:
            w = dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=generator)
        else:
            w = dist.mean
        scores = w @ self._emb_t.T  # (B, K, N); softmax would not change the argmax
        return masked_sequential_argmax(scores, exclude), {"w": w.numpy()}

    def _log_prob_entropy(self, obs: torch.Tensor, pages: torch.Tensor,
                          extra: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        dist = self._distribution(obs)
        return dist.log_prob(extra["w"]).sum((1, 2)), dist.entropy().sum((1, 2))

    def _train(self, envs: gym.vector.VectorEnv, n_steps: int, *, seed: int, show_progress: bool) -> dict[str, float]:
        return train_on_policy(self, envs, n_steps, seed=seed, show_progress=show_progress)

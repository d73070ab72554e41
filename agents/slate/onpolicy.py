"""The on-policy training loop FCPO and TPGR share: REINFORCE on discounted returns with a learned value baseline.

Per update: every sub-env plays ``rollout_steps`` requests with the stochastic policy; each valid request ``t`` gets
its discounted return ``G_t`` (:func:`mtf_agents.slate.common.discounted_returns`: bootstrapped with the baseline ``V``
at the rollout's end and at truncations, 0 after a termination); the policy takes one gradient step on
``-mean(log pi(a_t | s_t) * A_t) - entropy_coef * mean(entropy)`` with ``A_t = G_t - V(s_t)`` (standardised when
``normalize_advantages``), and ``V`` one step on ``mean((V(s_t) - G_t)^2)``. Without the baseline
(``value_baseline=False``) ``A_t = G_t`` and nothing is bootstrapped: plain REINFORCE on rollout-truncated returns.
Defaults (``learning_rate`` 1e-3, ``rollout_steps`` 8, standardised advantages) were checked on validation users
with ``mtf_bench.slate_validation``: with the zoo's 3e-4 and 32-request rollouts the policies of both agents stay
near their initialisation for tens of thousands of requests (docs/agents/slate.md, "Budgets and defaults").
Rewards may be shaped (``shaping_alpha``, TPGR's ``r + alpha * (c_p - c_n)``); returned ``mean_return`` is always
the raw undiscounted session return.

An agent using it provides ``policy_parameters``, a ``value`` module, ``_select(obs, None, explore=True,
generator=...) -> (pages, extra arrays)`` and ``_log_prob_entropy(obs, pages, extra) -> (log_prob (B,), entropy (B,))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from mtf_agents.slate.common import VecStepper, discounted_returns

if TYPE_CHECKING:
    from mtf_agents.slate.common import SlateAgent

__all__ = ["OnPolicyConfigMixin", "train_on_policy"]


@dataclass(frozen=True)
class OnPolicyConfigMixin:
    """On-policy fields (mixed into a :class:`~mtf_agents.slate.common.SlateAgentConfig` subclass)."""

    # More, smaller updates and a larger step than the zoo's 3e-4: at 3e-4 with 32-request rollouts the policy barely
    # moves in a quick budget (2,000 requests on 8 sub-envs = 8 updates; docs/agents/slate.md, "Budgets").
    learning_rate: float = 1e-3
    rollout_steps: int = 8
    entropy_coef: float = 0.01
    value_baseline: bool = True
    normalize_advantages: bool = True

    def validate(self) -> None:
        super().validate()  # type: ignore[misc]
        self.check_min("rollout_steps", 1)  # type: ignore[attr-defined]
        self.check_min("entropy_coef", 0.0)  # type: ignore[attr-defined]


def train_on_policy(agent: SlateAgent, envs: gym.vector.VectorEnv, n_steps: int, *, seed: int,
                    show_progress: bool) -> dict[str, float]:
    cfg = agent.config
    shaping = float(getattr(cfg, "shaping_alpha", 0.0))
    gen = torch.Generator().manual_seed(seed)
    stepper = VecStepper(envs, seed, shaping_alpha=shaping)
    policy_opt = torch.optim.Adam(agent.policy_parameters, lr=cfg.learning_rate)
    value_opt = torch.optim.Adam(agent.value.parameters(), lr=cfg.learning_rate)
    metrics: dict[str, float] = {}
    done_steps = 0
    bar = tqdm(total=n_steps, disable=not show_progress, desc=agent.name)
    while done_steps < n_steps:
        steps = []
        for _ in range(cfg.rollout_steps):
            obs_t = torch.from_numpy(np.asarray(stepper.obs, dtype=np.float32))
            with torch.no_grad():
                pages, extra = agent._select(obs_t, None, explore=True, generator=gen)
            out = stepper.step(pages)
            out["extra"] = extra
            steps.append(out)
            done_steps += int(out["valid"].sum())
            bar.update(int(out["valid"].sum()))
        stack = {key: np.stack([s[key] for s in steps]) for key in
                 ("obs", "actions", "shaped", "next_obs", "terminated", "truncated", "valid")}
        extra = {key: np.stack([s["extra"][key] for s in steps]) for key in steps[0]["extra"]}
        next_obs = torch.from_numpy(stack["next_obs"].astype(np.float32))
        with torch.no_grad():
            next_values = (agent.value(next_obs).squeeze(-1).numpy() if cfg.value_baseline
                           else np.zeros(stack["shaped"].shape))
        returns = discounted_returns(stack["shaped"], stack["terminated"], stack["truncated"], stack["valid"],
                                     next_values, cfg.gamma)
        valid = stack["valid"]
        obs = torch.from_numpy(stack["obs"][valid].astype(np.float32))
        pages = torch.from_numpy(stack["actions"][valid].astype(np.int64))
        extra_t = {key: torch.from_numpy(value[valid]) for key, value in extra.items()}
        g = torch.from_numpy(returns[valid].astype(np.float32))
        if cfg.value_baseline:
            values = agent.value(obs).squeeze(-1)
            advantages = g - values.detach()
        else:
            advantages = g
        if cfg.normalize_advantages and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        log_prob, entropy = agent._log_prob_entropy(obs, pages, extra_t)
        policy_loss = -(log_prob * advantages).mean() - cfg.entropy_coef * entropy.mean()
        policy_opt.zero_grad()
        policy_loss.backward()
        policy_opt.step()
        metrics = {"policy_loss": float(policy_loss.detach()), "entropy": float(entropy.detach().mean())}
        if cfg.value_baseline:
            value_loss = ((values - g) ** 2).mean()
            value_opt.zero_grad()
            value_loss.backward()
            value_opt.step()
            metrics["value_loss"] = float(value_loss.detach())
    bar.close()
    return {**metrics, "mean_return": stepper.recent_return()}

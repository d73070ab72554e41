"""``ddpg_va``: the DDPG variant of Meituan's "reinforcement learning in Guess You Like" article, trained offline.

What the article changes in DDPG, and how each is realised here (``docs/agents/ddpg_va.md`` has the details):

* **Critic = V(s) + A(s, a).** The article observed V:A ~ 97:3 and trains V first "from states and returns", then A
  on the residual Q - V. Here V regresses on the logged behaviour's TD target ``r + gamma V'(s')`` (so it is the
  *baseline's* value), and A on the residual ``r + gamma Q'(s', mu'(s')) - V(s)`` with V frozen in that loss; for
  the first ``value_warmup_fraction`` of training only V learns. ``A(s, mu(s)) > 0`` then reads "the policy beats
  the logged behaviour in s", the article's monitoring signal (logged as ``policy_advantage``).
* **Shared state encoder.** One MLP encodes s for V, A and the actor. Only the critic losses train it; the actor
  reads detached features (as in A3C-style sharing, an actor gradient into the encoder would let the actor reshape
  the critic's inputs).
* **Actor initialised at the baseline, with action clipping.** ``mu(s) = clip(c + max_deviation * tanh(h(s)), -1,
  1)`` with ``c`` the mean logged exploration centre (the baseline fusion for baseline-centred data) and the actor's
  last layer zero-initialised, so the untrained actor *is* the baseline (the article's "initialise a = 1") and can
  never leave ``c +- max_deviation`` (its clip "by physical meaning"). ``pretrain_steps`` optionally regresses the
  actor onto the per-state centres first, for data whose centre varies with the state.
* **One parameter set for Q_t and Q_{t+1}.** The article drops target networks; ``tau=1.0`` does exactly that.
  The default keeps slowly-moving targets (``tau=0.005``), the usual DDPG stabiliser, because offline training has
  no fresh data to correct a diverging bootstrap.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from mtf_agents.base import AgentConfig, OfflineAgent, resolve_device, transition_arrays

if TYPE_CHECKING:
    from mtf_gym.datasets import TransitionData

__all__ = ["DDPGVAAgent", "DDPGVAConfig", "VANetwork"]

MODEL_FILE = "ddpg_va.pt"


@dataclass(frozen=True)
class DDPGVAConfig(AgentConfig):
    """DDPG with a V + A critic and a shared state encoder.

    Attributes:
        hidden_units: widths of the shared state encoder.
        head_units: hidden width of the V, A and actor heads (one hidden layer each).
        batch_size: mini-batch size.
        gamma: discount (the IntegratedRL paper's 0.9, so all offline agents optimise the same objective).
        actor_learning_rate, critic_learning_rate: Adam step sizes (critic = encoder + V + A).
        tau: soft target-update rate; 1.0 = no target networks (the article's shared Q_t / Q_{t+1} parameters).
        max_deviation: the actor's reach around the exploration centre (action clip), per dimension.
        value_warmup_fraction: share of ``n_steps`` during which only V trains (the article trains V first).
        pretrain_steps: actor regression steps onto the logged centres before RL (0 = rely on the zero init).
        device: torch device, ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (``mtf_agents.base.resolve_device``).
    """

    shared_settings: ClassVar[tuple[str, ...]] = ("hidden_units", "batch_size", "gamma", "device")

    hidden_units: tuple[int, ...] = (256, 256)
    head_units: int = 64
    batch_size: int = 256
    gamma: float = 0.9
    actor_learning_rate: float = 3e-4
    critic_learning_rate: float = 3e-4
    tau: float = 0.005
    max_deviation: float = 0.3
    value_warmup_fraction: float = 0.1
    pretrain_steps: int = 0
    device: str = "cpu"

    def validate(self) -> None:
        self.check_device()
        self.check_layers("hidden_units")
        self.check_min("head_units", 1)
        self.check_min("batch_size", 1)
        self.check_range("gamma", 0.0, 1.0)
        self.check_positive("actor_learning_rate", "critic_learning_rate")
        self.check_range("tau", 0.0, 1.0, low_open=True)
        self.check_range("max_deviation", 0.0, 2.0, low_open=True)
        self.check_range("value_warmup_fraction", 0.0, 1.0, high_open=True)
        self.check_min("pretrain_steps", 0)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers)


class VANetwork(nn.Module):
    """Shared encoder ``E``, value head ``V(E(s))``, advantage head ``A(E(s), a)`` and actor head."""

    def __init__(self, observation_dim: int, action_dim: int, config: DDPGVAConfig) -> None:
        super().__init__()
        hidden, head = list(config.hidden_units), config.head_units
        self.encoder = _mlp([observation_dim, *hidden])
        self.value_head = nn.Sequential(nn.Linear(hidden[-1], head), nn.ReLU(), nn.Linear(head, 1))
        self.advantage_head = nn.Sequential(nn.Linear(hidden[-1] + action_dim, head), nn.ReLU(), nn.Linear(head, 1))
        self.actor_head = nn.Sequential(nn.Linear(hidden[-1], head), nn.ReLU(), nn.Linear(head, action_dim))
        # Zero last layer: tanh(0) = 0, so the untrained actor returns exactly the centre (the baseline fusion).
        nn.init.zeros_(self.actor_head[-1].weight)
        nn.init.zeros_(self.actor_head[-1].bias)
        self.register_buffer("centre", torch.zeros(action_dim))
        self.max_deviation = config.max_deviation

    def value(self, features: torch.Tensor) -> torch.Tensor:
        return self.value_head(features).squeeze(-1)

    def advantage(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.advantage_head(torch.cat([features, actions], dim=-1)).squeeze(-1)

    def policy(self, features: torch.Tensor) -> torch.Tensor:
        return (self.centre + self.max_deviation * torch.tanh(self.actor_head(features))).clamp(-1.0, 1.0)


class DDPGVAAgent(OfflineAgent):
    name = "ddpg_va"
    config_class = DDPGVAConfig
    config: DDPGVAConfig
    reports_checkpoints = True

    def __init__(self, config: AgentConfig | None = None) -> None:
        super().__init__(config)
        self._net: VANetwork | None = None

    def _fit(self, data: TransitionData, n_steps: int, *, seed: int, show_progress: bool) -> dict[str, float]:
        cfg = self.config
        device = torch.device(resolve_device(cfg.device))
        arrays = {k: torch.as_tensor(v, device=device) for k, v in transition_arrays(data).items()}
        obs, act, rew = arrays["observations"], arrays["actions"], arrays["rewards"]
        next_obs, centres = arrays["next_observations"], arrays["centres"]
        not_done = 1.0 - arrays["terminals"].float()  # truncation (request cap) still bootstraps
        rng = np.random.default_rng(seed)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's torch generator
            torch.manual_seed(seed)
            net = VANetwork(self.observation_dim, self.action_dim, cfg).to(device)
        net.centre.copy_(centres.mean(dim=0))
        target = copy.deepcopy(net).requires_grad_(False)
        critic_params = [*net.encoder.parameters(), *net.value_head.parameters(), *net.advantage_head.parameters()]
        critic_opt = torch.optim.Adam(critic_params, lr=cfg.critic_learning_rate)
        actor_opt = torch.optim.Adam(net.actor_head.parameters(), lr=cfg.actor_learning_rate)

        def batch() -> torch.Tensor:
            return torch.as_tensor(rng.integers(0, len(obs), size=cfg.batch_size), device=device)

        for _ in range(cfg.pretrain_steps):
            idx = batch()
            loss = F.mse_loss(net.policy(net.encoder(obs[idx]).detach()), centres[idx])
            actor_opt.zero_grad()
            loss.backward()
            actor_opt.step()
        if cfg.pretrain_steps:
            target.load_state_dict(net.state_dict())

        warmup = math.ceil(cfg.value_warmup_fraction * n_steps)
        metrics: dict[str, float] = {}
        self._net = net  # a checkpoint callback acts with the network as it trains
        for step in tqdm(range(n_steps), desc=self.name, disable=not show_progress):
            idx = batch()
            s, a, r, s2, nd = obs[idx], act[idx], rew[idx], next_obs[idx], not_done[idx]
            with torch.no_grad():
                f2 = target.encoder(s2)
                v2 = target.value(f2)
                q2 = v2 + target.advantage(f2, target.policy(f2))
                value_target = r + cfg.gamma * nd * v2
                q_target = r + cfg.gamma * nd * q2
            f = net.encoder(s)
            v = net.value(f)
            value_loss = F.mse_loss(v, value_target)
            learn_policy = step >= warmup
            advantage_loss = F.mse_loss(v.detach() + net.advantage(f, a), q_target) if learn_policy else v.new_zeros(())
            critic_opt.zero_grad()
            (value_loss + advantage_loss).backward()
            critic_opt.step()
            metrics = {"value_loss": value_loss.item(), "advantage_loss": advantage_loss.item()}
            if learn_policy:
                f_actor = net.encoder(s).detach()
                policy_advantage = net.advantage(f_actor, net.policy(f_actor)).mean()
                actor_opt.zero_grad()
                (-policy_advantage).backward()
                actor_opt.step()
                metrics["policy_advantage"] = policy_advantage.item()
            with torch.no_grad():
                for p_target, p in zip(target.parameters(), net.parameters()):
                    p_target.lerp_(p, cfg.tau)
            self._checkpoint(step + 1)
        self._net = net.eval()
        return metrics

    def _predict(self, observations: np.ndarray) -> np.ndarray:
        device = next(self._net.parameters()).device
        with torch.no_grad():
            return self._net.policy(self._net.encoder(torch.as_tensor(observations, device=device))).cpu().numpy()

    def _save_payload(self, path: Path) -> None:
        torch.save(self._net.state_dict(), path / MODEL_FILE)

    def _load_payload(self, path: Path, metadata: dict[str, Any]) -> None:
        device = resolve_device(self.config.device)
        net = VANetwork(self.observation_dim, self.action_dim, self.config)
        net.load_state_dict(torch.load(path / MODEL_FILE, map_location=device, weights_only=True))
        self._net = net.to(device).eval()

"""IntegratedRL losses (pure functions, unit-tested against NumPy) and the torch Impl that applies them.

Notation (per action dimension j): band ``[l_j, u_j] = [c_j + lower_j, c_j + upper_j]``, width ``W_j = u_j - l_j``,
excess ``z_j = (max(a_j - u_j, 0) + max(l_j - a_j, 0)) / (beta * W_j)``.

Critic sets: the ensemble's ``q * m`` members are ``q`` sets of ``m`` consecutive critics; set ``k`` (members
``k*m .. k*m + m - 1``) regresses on reward component ``k``. Every loss function takes the ensemble output
``[q*m, B, 1]`` and views it as ``[q, m, B, 1]``; with ``q = 1`` that is the single set of the first paper version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from d3rlpy.algos.qlearning.base import QLearningAlgoImplBase
from d3rlpy.dataclass_utils import asdict_as_float
from d3rlpy.models.torch import Policy
from d3rlpy.optimizers import OptimizerWrapper
from d3rlpy.torch_utility import CudaGraphWrapper, Modules, TorchMiniBatch, hard_sync, soft_sync
from d3rlpy.types import Shape, TorchObservation
from torch import nn
from torch.optim import Optimizer

from .data import BandedTorchMiniBatch
from .ensemble import EnsembleQFunction

__all__ = [
    "BAND_REDUCTIONS",
    "CRITIC_PENALTIES",
    "CRITIC_TARGETS",
    "ActorObjective",
    "CriticObjective",
    "IntegratedRLImpl",
    "IntegratedRLModules",
    "LossSettings",
    "actor_objective",
    "band_excess",
    "band_factor",
    "band_penalty",
    "critic_objective",
    "smoothed_target_actions",
    "td_targets",
]

BAND_REDUCTIONS = ("sum", "mean")
CRITIC_PENALTIES = ("subtractive", "multiplicative")
CRITIC_TARGETS = ("independent", "mean", "min")

# Beyond this excess exp() continues along its tangent line. With the paper's beta = 0.3 and band +-0.15 an action
# in [-1, 1] reaches at most z = 2 / 0.09 ~ 22, so the paper's curve is untouched; narrow ablation bands (z in the
# hundreds) would otherwise overflow float32 to inf and poison the gradients with NaN.
EXP_LINEAR_FROM = 30.0


@dataclasses.dataclass(frozen=True)
class LossSettings:
    """Loss hyperparameters, see ``IntegratedRLConfig`` for their meaning."""

    alpha: float
    beta: float
    eta: float
    lam: float
    band_reduction: str
    critic_penalty: str
    critic_target: str
    num_critic_sets: int = 1
    critic_set_weights: tuple[float, ...] = (1.0,)
    target_noise: float = 0.0
    target_noise_clip: float = 0.5


def _reduce(x: torch.Tensor, reduction: str) -> torch.Tensor:
    return x.sum(dim=-1) if reduction == "sum" else x.mean(dim=-1)


def _exp_linear(z: torch.Tensor) -> torch.Tensor:
    clipped = z.clamp(max=EXP_LINEAR_FROM)
    return torch.exp(clipped) * (1.0 + (z - clipped))


def band_excess(actions: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, beta: float) -> torch.Tensor:
    """``z_j``: distance beyond the nearer band edge in units of ``beta * W_j``; 0 inside (edges included)."""
    return (torch.relu(actions - upper) + torch.relu(lower - actions)) / (beta * (upper - lower))


def band_penalty(
    actions: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, beta: float, reduction: str
) -> torch.Tensor:
    """Paper eq. (5), ``d``: 0 inside ``[l, u]``, ``exp(z_j)`` outside, reduced over dims -> shape ``(B,)``.

    ``d`` jumps from 0 at an edge to ``exp(0) = 1`` just beyond it, as the paper writes. Gradient descent never
    sees the jump; what restrains the actor is the slope ``exp(z_j) / (beta W_j)`` outside the band.
    """
    outside = (actions > upper) | (actions < lower)
    d = torch.where(outside, _exp_linear(band_excess(actions, lower, upper, beta)), torch.zeros_like(actions))
    return _reduce(d, reduction)


def band_factor(
    actions: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, beta: float, reduction: str
) -> torch.Tensor:
    """``phi`` of the later paper version: 1 inside, ``exp(-z)`` outside (continuous at the edge), shape ``(B,)``.

    Per-dimension factors are multiplied (``reduction="sum"``: ``exp(-sum z_j)``) or geometrically averaged
    (``"mean"``: ``exp(-mean z_j)``), mirroring how ``d`` is reduced.
    """
    return torch.exp(-_reduce(band_excess(actions, lower, upper, beta), reduction))


def _per_set(x: torch.Tensor, num_sets: int) -> torch.Tensor:
    """``[q*m, B, 1] -> [q, m, B, 1]`` (a view: set k is members k*m .. k*m + m - 1)."""
    return x.view(num_sets, x.shape[0] // num_sets, *x.shape[1:])


def smoothed_target_actions(
    next_actions: torch.Tensor, noise: float, noise_clip: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``clip(mu'(s') + clip(N(0, noise^2), -noise_clip, noise_clip), -1, 1)``; ``noise = 0`` returns the input.

    The paper names "xi, the exploration noise" next to its actor/critic equations without using it in any written
    equation; read as TD3's target-policy smoothing it perturbs the target action of the critic target.
    """
    if noise <= 0.0:
        return next_actions
    eps = torch.randn(next_actions.shape, generator=generator, device=next_actions.device, dtype=next_actions.dtype)
    return (next_actions + (eps * noise).clamp(-noise_clip, noise_clip)).clamp(-1.0, 1.0)


def td_targets(
    rewards: torch.Tensor,
    terminals: torch.Tensor,
    discounts: torch.Tensor,
    next_q: torch.Tensor,
    next_actions: torch.Tensor,
    next_lower: torch.Tensor,
    next_upper: torch.Tensor,
    settings: LossSettings,
) -> torch.Tensor:
    """Per-critic regression targets ``y_i``, shape ``[q*m, B, 1]``.

    ``next_q[i] = Q'_i(s', mu'(s'))`` from each critic's own target network. ``critic_target`` picks what critic i
    bootstraps from: its own ``Q'_i`` ("independent", the paper's independently trained critics), the mean or the
    min over the critics of its set. ``rewards`` is ``(B, 1)`` for one set or ``(B, q)`` (set k's component in
    column k). The band of ``s'`` then penalises the bootstrap of every set alike:

    - subtractive (paper v4, "a penalty by the deviation"): ``y_i = r + g (1 - T) (Q'_i - alpha d(mu'(s'), c(s')))``
    - multiplicative (later version): ``y_i = r + g (1 - T) phi(mu'(s'), c(s')) Q'_i``
    """
    num_sets = settings.num_critic_sets
    if rewards.shape[-1] != num_sets:
        raise ValueError(f"rewards must have one column per critic set ({num_sets}), got shape {tuple(rewards.shape)}")
    next_q = _per_set(next_q, num_sets)
    if settings.critic_target == "mean":
        boot = next_q.mean(dim=1, keepdim=True).expand_as(next_q)
    elif settings.critic_target == "min":
        boot = next_q.min(dim=1, keepdim=True).values.expand_as(next_q)
    else:
        boot = next_q
    if settings.critic_penalty == "subtractive":
        d = band_penalty(next_actions, next_lower, next_upper, settings.beta, settings.band_reduction)
        boot = boot - settings.alpha * d[:, None]
    else:
        phi = band_factor(next_actions, next_lower, next_upper, settings.beta, settings.band_reduction)
        boot = boot * phi[:, None]
    # (B, q) -> [q, 1, B, 1]: set k's reward column, shared by the m critics of the set.
    set_rewards = rewards.T[:, None, :, None]
    return (set_rewards + discounts * (1.0 - terminals) * boot).flatten(0, 1)


@dataclasses.dataclass(frozen=True)
class CriticObjective:
    critic_loss: torch.Tensor
    q_data_mean: torch.Tensor
    td_target_mean: torch.Tensor


def critic_objective(q_values: torch.Tensor, targets: torch.Tensor) -> CriticObjective:
    """Sum over critics of each critic's mean squared TD error (d3rlpy's ensemble convention: the gradient each
    critic receives does not shrink with m)."""
    loss = ((q_values - targets) ** 2).mean(dim=(1, 2)).sum()
    return CriticObjective(critic_loss=loss, q_data_mean=q_values.detach().mean(), td_target_mean=targets.mean())


@dataclasses.dataclass(frozen=True)
class ActorObjective:
    actor_loss: torch.Tensor
    actor_q_mean: torch.Tensor
    actor_band_penalty: torch.Tensor
    actor_q_std: torch.Tensor
    actor_out_of_band: torch.Tensor


def actor_objective(
    q_values: torch.Tensor,
    actions: torch.Tensor,
    lower: torch.Tensor,
    upper: torch.Tensor,
    settings: LossSettings,
    set_weights: torch.Tensor | None = None,
) -> ActorObjective:
    """Paper eq. (4): ``-mean_i Q_i + eta d(mu(s), c(s)) + lambda std_i Q_i``, each term averaged over the batch.

    ``q_values`` is ``[q*m, B, 1]`` at ``a = mu(s)``; the std is the population std (``1/m``) as in the paper. With
    ``q`` critic sets the value is ``sum_k w_k mean_i Q_ki`` and the uncertainty penalty ``sum_k |w_k| std_i Q_ki``
    (per set: the sets estimate different quantities, so their spreads are not pooled), ``w`` the
    ``critic_set_weights`` (``set_weights``: the same as a ``(q,)`` tensor on the device, made once by the Impl so
    that no step allocates it, nor copies it inside a captured CUDA graph); ``q = 1, w = (1,)`` is eq. (4) exactly.
    """
    per_set = _per_set(q_values, settings.num_critic_sets)
    if set_weights is None:
        set_weights = torch.tensor(settings.critic_set_weights, dtype=q_values.dtype, device=q_values.device)
    weights = set_weights[:, None, None]
    q_mean = (weights * per_set.mean(dim=1)).sum(dim=0)
    # A single critic has std 0, and d sqrt(x)/dx at 0 would turn the gradient into NaN.
    if per_set.shape[1] > 1:
        q_std = (weights.abs() * per_set.std(dim=1, correction=0)).sum(dim=0)
    else:
        q_std = torch.zeros_like(q_mean)
    d = band_penalty(actions, lower, upper, settings.beta, settings.band_reduction)
    loss = -q_mean.mean() + settings.eta * d.mean() + settings.lam * q_std.mean()
    with torch.no_grad():
        out_of_band = ((actions > upper) | (actions < lower)).float().mean()
    return ActorObjective(
        actor_loss=loss,
        actor_q_mean=q_mean.detach().mean(),
        actor_band_penalty=d.detach().mean(),
        actor_q_std=q_std.detach().mean(),
        actor_out_of_band=out_of_band,
    )


@dataclasses.dataclass(frozen=True)
class IntegratedRLModules(Modules):
    policy: Policy
    targ_policy: Policy
    q_funcs: EnsembleQFunction
    targ_q_funcs: EnsembleQFunction
    actor_optim: OptimizerWrapper
    critic_optim: OptimizerWrapper


class IntegratedRLImpl(QLearningAlgoImplBase):
    """One update = critic step, actor step, then every ``target_update_interval`` steps a soft target sync."""

    _modules: IntegratedRLModules

    def __init__(
        self,
        observation_shape: Shape,
        action_size: int,
        modules: IntegratedRLModules,
        gamma: float,
        tau: float,
        target_update_interval: int,
        settings: LossSettings,
        device: str,
        compiled: bool = False,
    ) -> None:
        super().__init__(observation_shape=observation_shape, action_size=action_size, modules=modules, device=device)
        self._gamma = gamma
        self._tau = tau
        self._target_update_interval = target_update_interval
        self._settings = settings
        # d3rlpy's compile_graph path (CUDA only, as in d3rlpy's own algorithms): torch.compile + CUDA-graph replay
        # of each gradient computation; optimizer steps stay outside the graphs, as in d3rlpy's DDPG.
        self._compute_critic_grad: Callable[[BandedTorchMiniBatch], CriticObjective] = (
            CudaGraphWrapper(self.compute_critic_grad) if compiled else self.compute_critic_grad
        )
        self._compute_actor_grad: Callable[[BandedTorchMiniBatch], ActorObjective] = (
            CudaGraphWrapper(self.compute_actor_grad) if compiled else self.compute_actor_grad
        )
        self._set_weights = torch.tensor(settings.critic_set_weights, dtype=torch.float32, device=self.device)
        hard_sync(self._modules.targ_q_funcs, self._modules.q_funcs)
        hard_sync(self._modules.targ_policy, self._modules.policy)

    def compute_critic_loss(self, batch: BandedTorchMiniBatch) -> CriticObjective:
        settings = self._settings
        with torch.no_grad():
            next_actions = smoothed_target_actions(
                self._modules.targ_policy(batch.next_observations).squashed_mu,
                settings.target_noise,
                settings.target_noise_clip,
            )
            next_q = self._modules.targ_q_funcs(batch.next_observations, next_actions)
            rewards = batch.rewards
            if settings.num_critic_sets > 1:
                if batch.reward_components is None:
                    raise ValueError("num_critic_sets > 1 needs a batch with reward_components")
                rewards = batch.reward_components
            targets = td_targets(
                rewards=rewards,
                terminals=batch.terminals,
                discounts=self._gamma**batch.intervals,
                next_q=next_q,
                next_actions=next_actions,
                next_lower=batch.next_band_low_edge,
                next_upper=batch.next_band_high_edge,
                settings=self._settings,
            )
        q_values = self._modules.q_funcs(batch.observations, batch.actions)
        return critic_objective(q_values, targets)

    def compute_actor_loss(self, batch: BandedTorchMiniBatch) -> ActorObjective:
        actions = self._modules.policy(batch.observations).squashed_mu
        # Critic weights are constants here: detaching them skips the weight-gradient matmuls of all m critics and
        # leaves only d loss / d action to backpropagate.
        params = {name: p.detach() for name, p in self._modules.q_funcs.named_parameters()}
        q_values = torch.func.functional_call(self._modules.q_funcs, params, (batch.observations, actions))
        return actor_objective(
            q_values, actions, batch.band_low_edge, batch.band_high_edge, self._settings, set_weights=self._set_weights
        )

    def compute_critic_grad(self, batch: BandedTorchMiniBatch) -> CriticObjective:
        self._modules.critic_optim.zero_grad()
        loss = self.compute_critic_loss(batch)
        loss.critic_loss.backward()
        return loss

    def compute_actor_grad(self, batch: BandedTorchMiniBatch) -> ActorObjective:
        self._modules.actor_optim.zero_grad()
        loss = self.compute_actor_loss(batch)
        loss.actor_loss.backward()
        return loss

    def update_critic(self, batch: BandedTorchMiniBatch) -> dict[str, float]:
        loss = self._compute_critic_grad(batch)
        self._modules.critic_optim.step()
        return asdict_as_float(loss)

    def update_actor(self, batch: BandedTorchMiniBatch) -> dict[str, float]:
        # Like d3rlpy's DDPG: critics in inference mode (no dropout) when they score the actor.
        self._modules.q_funcs.eval()
        loss = self._compute_actor_grad(batch)
        self._modules.actor_optim.step()
        return asdict_as_float(loss)

    def update_targets(self) -> None:
        soft_sync(self._modules.targ_q_funcs, self._modules.q_funcs, self._tau)
        soft_sync(self._modules.targ_policy, self._modules.policy, self._tau)

    def inner_update(self, batch: TorchMiniBatch, grad_step: int) -> dict[str, float]:
        if not isinstance(batch, BandedTorchMiniBatch):
            raise TypeError(f"IntegratedRLImpl needs a BandedTorchMiniBatch, got {type(batch).__name__}")
        metrics = self.update_critic(batch)
        metrics.update(self.update_actor(batch))
        # Paper: soft update rate 0.08 applied with delay L = 15 (every L-th gradient step).
        if (grad_step + 1) % self._target_update_interval == 0:
            self.update_targets()
        return metrics

    def inner_predict_best_action(self, x: TorchObservation) -> torch.Tensor:
        return self._modules.policy(x).squashed_mu

    def inner_sample_action(self, x: TorchObservation) -> torch.Tensor:
        # Deterministic actor; exploration noise belongs to the data collector (bounded-uniform around predict()).
        return self.inner_predict_best_action(x)

    def inner_predict_value(self, x: TorchObservation, action: torch.Tensor) -> torch.Tensor:
        # The value the actor maximises: sum over critic sets of w_k * (set k's mean estimate).
        per_set = _per_set(self._modules.q_funcs(x, action), self._settings.num_critic_sets).mean(dim=1)
        return (self._set_weights[:, None, None] * per_set).sum(dim=0).reshape(-1)

    @property
    def policy(self) -> Policy:
        return self._modules.policy

    @property
    def policy_optim(self) -> Optimizer:
        return self._modules.actor_optim.optim

    @property
    def q_function(self) -> nn.ModuleList:
        return nn.ModuleList([self._modules.q_funcs])

    @property
    def q_function_optim(self) -> Optimizer:
        return self._modules.critic_optim.optim

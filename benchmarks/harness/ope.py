"""Off-policy evaluation by Fitted Q Evaluation (``d3rlpy.ope.FQE``), the second offline estimator beside weighted
GAUC.

FQE fits ``Q^pi(s, a)`` of a fixed policy ``pi`` on logged transitions by regressing on ``r + gamma Q'(s',
pi(s'))``; the policy's value is then the mean of ``Q^pi(s_0, pi(s_0))`` over the logged sessions' first states.
Every agent, whatever library it comes from, is evaluated the same way: d3rlpy's FQE asks the target algorithm's
``impl.predict_best_action(observations)``, and :class:`_AgentAsD3rlpyPolicy` answers with ``agent.act``, so a
d3rlpy, Stable-Baselines3, torch or NumPy agent all go through one path.

With ``gamma = 1`` (the default) the estimate targets the undiscounted session return the A/B test measures; sessions
end by the user leaving (a terminal, no bootstrap) or by the request cap (a truncation, which FQE bootstraps through).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mtf_gym.datasets import TransitionData
    from mtf_gym.policies import BatchPolicy

__all__ = ["FQEEstimate", "fqe_estimate"]


@dataclass(frozen=True)
class FQEEstimate:
    """FQE's value of one policy: the mean over ``num_initial_states`` first states, and its standard error."""

    value: float
    standard_error: float
    num_initial_states: int
    n_steps: int


class _PolicyImpl:
    """The part of a d3rlpy algorithm implementation that FQE calls: the policy's action for a batch of states."""

    def __init__(self, policy: BatchPolicy) -> None:
        self._policy = policy

    def predict_best_action(self, x: Any) -> Any:
        import torch

        actions = self._policy(x.detach().cpu().numpy().astype(np.float32))
        return torch.as_tensor(np.asarray(actions, dtype=np.float32), device=x.device)


class _AgentAsD3rlpyPolicy:
    """A target "algorithm" for ``d3rlpy.ope.FQE``: just an ``impl`` whose best action is the policy's."""

    def __init__(self, policy: BatchPolicy) -> None:
        self.impl = _PolicyImpl(policy)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.impl._policy(x)


def fqe_estimate(policy: BatchPolicy, data: TransitionData, n_steps: int, *, seed: int = 0, gamma: float = 1.0,
                 hidden_units: tuple[int, ...] = (64, 64), batch_size: int = 256, learning_rate: float = 1e-4,
                 device: str = "cpu") -> FQEEstimate:
    """Fit FQE for ``policy`` on ``data`` for ``n_steps`` gradient steps; its value estimate on ``data``'s
    first states. Deterministic for a given ``seed``; writes no ``d3rlpy_logs/``."""
    import d3rlpy
    from d3rlpy.logging import NoopAdapterFactory
    from d3rlpy.models import VectorEncoderFactory
    from d3rlpy.ope import FQE, FQEConfig

    from mtf_agents.base import resolve_device
    from mtf_gym.datasets import to_mdp_dataset

    if n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
    d3rlpy.seed(seed)
    config = FQEConfig(gamma=gamma, batch_size=batch_size, learning_rate=learning_rate,
                       encoder_factory=VectorEncoderFactory(hidden_units=list(hidden_units)))
    fqe = FQE(algo=_AgentAsD3rlpyPolicy(policy), config=config, device=resolve_device(device))
    fqe.fit(to_mdp_dataset(data), n_steps=n_steps, n_steps_per_epoch=n_steps, logger_adapter=NoopAdapterFactory(),
            show_progress=False, experiment_name="fqe", with_timestamp=False)
    first = data.observations[data.episode_starts()[:-1]]
    values = np.asarray(fqe.predict_value(first, np.asarray(policy(first), dtype=np.float32)), dtype=np.float64)
    se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")
    return FQEEstimate(float(values.mean()), se, len(values), int(n_steps))

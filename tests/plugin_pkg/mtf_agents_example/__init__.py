"""An example mtf-gym agent plug-in: ``elite_constant``.

Offline and closed-form: the fusion it plays in every state is the mean logged action of the ``elite_fraction``
best-rewarded requests (a cross-entropy-method step on logged data). It shows the whole plug-in contract: a frozen
config dataclass with checked fields, ``fit``/``act`` through ``_fit``/``_predict``, and save/load of the learned
state next to the ``agent.json`` that ``mtf_agents.base.Agent.save`` writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtf_agents.base import AgentConfig, OfflineAgent, transition_arrays

__all__ = ["EliteConstantAgent", "EliteConstantConfig"]


@dataclass(frozen=True)
class EliteConstantConfig(AgentConfig):
    """Attributes:
    elite_fraction: share of logged requests, by reward, whose actions are averaged.
    """

    elite_fraction: float = 0.2

    def validate(self) -> None:
        self.check_range("elite_fraction", 0.0, 1.0, low_open=True)


class EliteConstantAgent(OfflineAgent):
    """The same fusion in every state: the mean action of the top-rewarded logged requests."""

    name = "elite_constant"
    config_class = EliteConstantConfig
    summary = "mean action of the best-rewarded logged requests (example plug-in)"
    config: EliteConstantConfig

    def __init__(self, config: AgentConfig | None = None) -> None:
        super().__init__(config)
        self._action = np.zeros(0, dtype=np.float32)

    def _fit(self, data: Any, n_steps: int, *, seed: int, show_progress: bool) -> dict[str, float]:
        # Closed form: n_steps, seed and show_progress have nothing to control.
        arrays = transition_arrays(data)
        rewards = arrays["rewards"]
        k = max(1, round(self.config.elite_fraction * len(rewards)))
        elite = np.argsort(rewards, kind="stable")[-k:]
        self._action = arrays["actions"][elite].mean(axis=0)
        return {"elite_mean_reward": float(rewards[elite].mean())}

    def _predict(self, observations: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._action, (len(observations), len(self._action)))

    def _save_payload(self, path: Path) -> None:
        (path / "elite_action.json").write_text(json.dumps([float(v) for v in self._action]))

    def _load_payload(self, path: Path, metadata: dict[str, Any]) -> None:
        self._action = np.asarray(json.loads((path / "elite_action.json").read_text()), dtype=np.float32)

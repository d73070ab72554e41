"""``es``: the paper's deployed baseline, an evolution strategy over a linear fusion policy, trained online.

Policy (``F`` features of the observation, ``A`` action dims, parameters ``W`` ``(A, F)`` and ``b`` ``(A,)``)::

    action = clip(mu_bp + action_scale * tanh(W @ x + b), -1, 1),      x = observation[features]

``mu_bp`` is the baseline fusion (:class:`mtf_gym.BaselinePolicy` of the training env config), so the all-zero
parameters CMA-ES starts from reproduce the production fusion, and ``action_scale`` bounds how far any candidate can
move from it. ``features="profile"`` (default) uses the static user profile (segment one-hot, activity level,
interest concentration), which is what a deployed ES personalises on; ``"all"`` uses every observation feature.

Training: CMA-ES (``cma``) over ``vec(W, b)``. Each generation draws one batch of ``users_per_generation`` user
seeds and evaluates **every candidate on the same users** (common random numbers), so candidates are compared on
identical sessions and the noise in their ranking is only the policy difference. All ``population_size x
users_per_generation`` sessions run as one batch through :class:`mtf_gym.evaluation.SessionRunner` (the project's
one rollout loop, with explicit user seeds; its vector env is built once per ``fit_online``). Fitness = mean
undiscounted session return. The final policy is CMA-ES's distribution mean (``xfavorite``), which is less
optimistic than the best single noisy evaluation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import cma
import numpy as np
from tqdm.auto import tqdm

from mtf_agents.base import AgentConfig, OnlineAgent

if TYPE_CHECKING:
    from mtf_gym.envs.versions import AnyConfig

__all__ = ["PROFILE_FEATURES", "ESAgent", "ESConfig", "feature_indices"]

PARAMS_FILE = "es_policy.npz"
# The static user profile in the observation: what a deployed ES maps to fusion weights. v0 observes the segment
# one-hot, activity and interest concentration; v1 the account age and the long-term history statistics.
PROFILE_FEATURES: tuple[str, ...] = ("activity_level", "interest_concentration", "account_age")
PROFILE_PREFIXES: tuple[str, ...] = ("segment_", "history_")
_SEED_HIGH = 2**31 - 1


def feature_indices(features: str, observation_features: tuple[str, ...] | None = None) -> np.ndarray:
    """Observation columns the linear policy reads: ``"profile"`` (the static user profile) or ``"all"``.

    ``observation_features``: the env version's feature names (default ``MTFSession-v0``'s).
    """
    if observation_features is None:
        from mtf_gym.simulator import OBSERVATION_FEATURES as observation_features

    if features == "all":
        return np.arange(len(observation_features))
    return np.array([i for i, n in enumerate(observation_features)
                     if n.startswith(PROFILE_PREFIXES) or n in PROFILE_FEATURES])


@dataclass(frozen=True)
class ESConfig(AgentConfig):
    """CMA-ES over a linear policy.

    Attributes:
        features: ``"profile"`` (the static user profile: v0's segment one-hot, activity and interest concentration;
            v1's account age and history statistics) or ``"all"`` observation features.
        action_scale: largest move away from the baseline fusion per action dimension (the tanh's scale).
        population_size: candidates per generation (CMA-ES lambda).
        users_per_generation: sessions per candidate per generation, the same users for every candidate.
        sigma0: initial CMA-ES step size in parameter space (tanh pre-activation units).
    """

    shared_settings: ClassVar[tuple[str, ...]] = ()  # no network: none of the shared settings applies

    features: Literal["profile", "all"] = "profile"
    action_scale: float = 0.5
    population_size: int = 16
    users_per_generation: int = 64
    sigma0: float = 0.3

    def validate(self) -> None:
        self.check_range("action_scale", 0.0, 2.0, low_open=True)
        self.check_min("population_size", 2)
        self.check_min("users_per_generation", 1)
        self.check_positive("sigma0")


class ESAgent(OnlineAgent):
    """CMA-ES linear fusion policy; ``fit_online``'s ``n_steps`` is a budget of simulated requests (whole
    generations are run, at least one, so the last generation may overshoot it)."""

    name = "es"
    config_class = ESConfig
    config: ESConfig

    def __init__(self, config: AgentConfig | None = None) -> None:
        super().__init__(config)
        self._weights = np.zeros((0, 0), dtype=np.float32)
        self._bias = np.zeros(0, dtype=np.float32)
        self._baseline = np.zeros(0, dtype=np.float32)
        self._features = np.zeros(0, dtype=np.int64)  # set by fit_online from the env version's features

    def _unpack(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(P, A*(F+1))`` parameter vectors -> ``W (P, A, F)``, ``b (P, A)``."""
        a, f = self.action_dim, len(self._features)
        params = np.asarray(flat, dtype=np.float64).reshape(-1, a, f + 1)
        return params[:, :, :f], params[:, :, f]

    def _actions(self, observations: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """Rows are split into ``P`` equal consecutive blocks, block ``p`` acting with ``(weights[p], bias[p])``."""
        x = observations[:, self._features].reshape(len(weights), -1, len(self._features))
        pre = np.einsum("puf,paf->pua", x, weights) + bias[:, None, :]
        actions = self._baseline + self.config.action_scale * np.tanh(pre)
        return np.clip(actions.reshape(len(observations), -1), -1.0, 1.0).astype(np.float32)

    def _fit_online(self, env_config: AnyConfig, n_steps: int, *, seed: int,
                    show_progress: bool) -> dict[str, float]:
        from mtf_gym.envs.session import observation_features
        from mtf_gym.evaluation import SessionRunner
        from mtf_gym.policies import BaselinePolicy

        cfg = self.config
        self._features = feature_indices(cfg.features, observation_features(env_config))
        self._baseline = BaselinePolicy(env_config).action.astype(np.float32)
        dim = self.action_dim * (len(self._features) + 1)
        # cma reads seed=0 as "seed from the clock", hence the +1.
        es = cma.CMAEvolutionStrategy(np.zeros(dim), cfg.sigma0,
                                      {"popsize": cfg.population_size, "seed": seed + 1, "verbose": -9})
        rng = np.random.default_rng(seed)
        runner = SessionRunner(cfg.population_size * cfg.users_per_generation,
                               dataclasses.replace(env_config, item_logs=False))
        used, history = 0, []
        with tqdm(total=n_steps, desc="es", unit="req", disable=not show_progress) as bar:
            while used < n_steps and not es.stop():
                candidates = np.asarray(es.ask())
                weights, bias = self._unpack(candidates)
                users = rng.integers(0, _SEED_HIGH, size=cfg.users_per_generation)
                seeds = np.tile(users, len(candidates))  # candidate p plays rows p*U .. (p+1)*U - 1
                stats = runner.run(lambda obs, w=weights, b=bias: self._actions(obs, w, b), seeds)
                requests = int(stats.requests.sum())
                fitness = stats.returns.reshape(len(candidates), -1).mean(axis=1)
                es.tell(list(candidates), list(-fitness))  # cma minimises
                history.append(fitness)
                used += requests
                bar.update(min(requests, n_steps - bar.n))
                bar.set_postfix(mean_return=f"{fitness.mean():.2f}")
        weights, bias = self._unpack(es.result.xfavorite)
        self._weights, self._bias = weights[0].astype(np.float32), bias[0].astype(np.float32)
        return {
            "generations": float(len(history)),
            "requests": float(used),
            "first_generation_mean_return": float(history[0].mean()),
            "last_generation_mean_return": float(history[-1].mean()),
            "last_generation_best_return": float(history[-1].max()),
        }

    def _predict(self, observations: np.ndarray) -> np.ndarray:
        return self._actions(observations, self._weights[None], self._bias[None])

    def _save_payload(self, path: Path) -> None:
        np.savez(path / PARAMS_FILE, weights=self._weights, bias=self._bias, baseline=self._baseline,
                 features=self._features)

    def _load_payload(self, path: Path, metadata: dict[str, Any]) -> None:
        with np.load(path / PARAMS_FILE) as params:
            features = params["features"]
            if features.size != params["weights"].shape[1] or (features.size and (
                    features.min() < 0 or features.max() >= int(metadata["observation_dim"]))):
                raise ValueError(f"{path / PARAMS_FILE}: its feature columns {features.tolist()} do not fit its "
                                 f"weights {params['weights'].shape} and observation_dim {metadata['observation_dim']}")
            self._features = features
            self._weights, self._bias = params["weights"], params["bias"]
            self._baseline = params["baseline"]

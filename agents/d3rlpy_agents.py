"""Offline baselines from d3rlpy (BCQ, CQL, IQL, DDPG, TD3+BC) and IntegratedRL, behind one wrapper.

Every agent here is :class:`D3rlpyAgent` with a different config class. A config's fields are named exactly as the
d3rlpy config's, so :meth:`D3rlpyAgentConfig.to_d3rlpy` passes them through generically; ``hidden_units`` becomes a
``VectorEncoderFactory`` for every encoder the algorithm has (actor, critic, imitator, value). Shared defaults make
comparisons fair: 256x256 ReLU MLPs, batch 256, gamma 0.9 (the paper's), ``device="cpu"``; the training budget is
``n_steps`` of ``fit``, the same for every agent of a preset. Algorithm-specific defaults follow each method's
reference (and d3rlpy's reproduction settings); ``docs/agents/d3rlpy_baselines.md`` lists them and the deviations.

Training writes nothing to disk (``NoopAdapterFactory``: no ``d3rlpy_logs/``) and shows d3rlpy's tqdm progress bar
when ``show_progress`` is true. Configs hold only plain values and d3rlpy factories, never Python callables, so a
saved ``.d3`` always reloads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from mtf_agents._quiet import import_gym_quietly

import_gym_quietly()  # before d3rlpy, which imports gym and would print its banner

import d3rlpy
import numpy as np
import torch
from d3rlpy.algos import BCQConfig, CQLConfig, DDPGConfig, IQLConfig, TD3PlusBCConfig
from d3rlpy.base import LearnableConfig
from d3rlpy.logging import NoopAdapterFactory
from d3rlpy.models import VectorEncoderFactory

from mtf_agents.base import Agent, AgentConfig, OfflineAgent, resolve_device
from mtf_agents.integrated_rl import IntegratedRLConfig

if TYPE_CHECKING:
    from mtf_gym.datasets import TransitionData

__all__ = [
    "BCQAgent",
    "BCQAgentConfig",
    "CQLAgent",
    "CQLAgentConfig",
    "D3rlpyAgent",
    "D3rlpyAgentConfig",
    "DDPGAgent",
    "DDPGAgentConfig",
    "IQLAgent",
    "IQLAgentConfig",
    "IntegratedRLAgent",
    "IntegratedRLAgentConfig",
    "TD3PlusBCAgent",
    "TD3PlusBCAgentConfig",
]

MODEL_FILE = "model.d3"
# BCQ samples candidate actions from its VAE at inference time; a fixed seed makes act() a function of its input.
_PREDICT_SEED = 0


@dataclass(frozen=True)
class D3rlpyAgentConfig(AgentConfig):
    """Fields shared by every d3rlpy-based agent (subclasses add the algorithm's own, under d3rlpy's names).

    Attributes:
        hidden_units: widths of every MLP encoder (actor, critics, and imitator/value networks where present).
        batch_size: mini-batch size.
        gamma: discount (paper: 0.9).
        actor_learning_rate, critic_learning_rate: Adam step sizes.
        tau: soft target-update rate.
        n_critics: size of the critic ensemble.
        device: torch device, ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (``mtf_agents.base.resolve_device``: asking
            for CUDA without it is an error, never a silent CPU run).
        compile_graph: d3rlpy's flag: on a CUDA device each update runs as a torch.compile'd CUDA graph (about 4x
            IntegratedRL's updates/s on an H200, ``docs/agents/integrated_rl.md``); ignored on the CPU, as d3rlpy does.
    """

    shared_settings: ClassVar[tuple[str, ...]] = ("hidden_units", "batch_size", "gamma", "device", "compile_graph")

    # The d3rlpy config class the fields are passed to, and whether the data must carry exploration bands.
    d3rlpy_config_class: ClassVar[type[LearnableConfig]]
    banded: ClassVar[bool] = False

    hidden_units: tuple[int, ...] = (256, 256)
    batch_size: int = 256
    gamma: float = 0.9
    actor_learning_rate: float = 3e-4
    critic_learning_rate: float = 3e-4
    tau: float = 0.005
    n_critics: int = 2
    device: str = "cpu"
    compile_graph: bool = False

    def validate(self) -> None:
        self.check_device()
        self.check_layers("hidden_units")
        self.check_min("batch_size", 1)
        self.check_min("n_critics", 1)
        self.check_range("gamma", 0.0, 1.0)
        self.check_range("tau", 0.0, 1.0, low_open=True)
        self.check_positive(*(f.name for f in dataclasses.fields(self) if f.name.endswith("learning_rate")
                         and f.name not in ("temp_learning_rate", "alpha_learning_rate")))
        self.to_d3rlpy()  # the d3rlpy config may reject more (IntegratedRLConfig validates every field)

    def to_d3rlpy(self) -> LearnableConfig:
        """The d3rlpy config: every field by name, plus an MLP encoder factory for each of the algorithm's encoders."""
        kwargs: dict[str, Any] = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        hidden = list(kwargs.pop("hidden_units"))
        kwargs.pop("device")  # an argument of create(), not of the d3rlpy config
        for f in dataclasses.fields(self.d3rlpy_config_class):
            if f.name.endswith("_encoder_factory"):
                kwargs[f.name] = VectorEncoderFactory(hidden_units=hidden)
        return self.d3rlpy_config_class(**kwargs)


@dataclass(frozen=True)
class BCQAgentConfig(D3rlpyAgentConfig):
    """BCQ (Fujimoto et al. 2019) as used by BatchRL-MTF (Zhang et al. 2022). Defaults: the BCQ paper's.

    Attributes:
        imitator_learning_rate: step size of the conditional VAE that models the logged actions.
        lam: weight of the min over the two critics in the clipped double-Q target (0.75).
        n_action_samples: candidate actions drawn from the VAE per state, for the training target and for ``act``
            (the BCQ paper: 10 for the target, 100 at action selection; d3rlpy has one number, and 10 keeps each
            update ~10x cheaper than d3rlpy's default 100).
        action_flexibility: max perturbation of a sampled action (Phi's range, 0.05 in action units).
        beta: KL weight of the VAE loss.
        rl_start_step: gradient steps of VAE-only training before the critics and perturbation start.
        update_actor_interval: critic steps per perturbation-model step.
    """

    d3rlpy_config_class: ClassVar[type[LearnableConfig]] = BCQConfig
    # d3rlpy 2.8.1's BCQ update fails under compile_graph ("Unable to cast 0.5 to Tensor", seen on an H200), so a
    # preset's compile_graph does not reach BCQ, and asking for it directly is an error.
    shared_settings: ClassVar[tuple[str, ...]] = ("hidden_units", "batch_size", "gamma", "device")

    actor_learning_rate: float = 1e-3
    critic_learning_rate: float = 1e-3
    imitator_learning_rate: float = 1e-3
    lam: float = 0.75
    n_action_samples: int = 10
    action_flexibility: float = 0.05
    beta: float = 0.5
    rl_start_step: int = 0
    update_actor_interval: int = 1

    def validate(self) -> None:
        super().validate()
        if self.compile_graph:
            raise ValueError("BCQAgentConfig.compile_graph must be false: d3rlpy 2.8.1's BCQ update fails under "
                             "compile_graph ('Unable to cast 0.5 to Tensor')")
        self.check_range("lam", 0.0, 1.0)
        self.check_min("n_action_samples", 1)
        self.check_positive("action_flexibility", "beta")
        self.check_min("rl_start_step", 0)
        self.check_min("update_actor_interval", 1)


@dataclass(frozen=True)
class CQLAgentConfig(D3rlpyAgentConfig):
    """CQL (Kumar et al. 2020) with a SAC actor ("CQL+SAC" in the paper's tables). Defaults: d3rlpy's (CQL paper).

    Attributes:
        temp_learning_rate: step size of SAC's entropy temperature (0 keeps it fixed).
        alpha_learning_rate: step size of the Lagrangian conservative weight (0 keeps ``initial_alpha`` fixed).
        initial_temperature, initial_alpha: starting values of the two.
        alpha_threshold: target gap of the Lagrangian version (tau in the CQL paper).
        conservative_weight: scale of the conservative loss.
        n_action_samples: actions sampled per state for the log-sum-exp.
        soft_q_backup, max_q_backup: target variants of the CQL paper.
    """

    d3rlpy_config_class: ClassVar[type[LearnableConfig]] = CQLConfig

    actor_learning_rate: float = 1e-4
    temp_learning_rate: float = 1e-4
    alpha_learning_rate: float = 1e-4
    initial_temperature: float = 1.0
    initial_alpha: float = 1.0
    alpha_threshold: float = 10.0
    conservative_weight: float = 5.0
    n_action_samples: int = 10
    soft_q_backup: bool = False
    max_q_backup: bool = False

    def validate(self) -> None:
        super().validate()
        self.check_min("temp_learning_rate", 0.0)
        self.check_min("alpha_learning_rate", 0.0)
        self.check_positive("initial_temperature", "initial_alpha")
        self.check_min("conservative_weight", 0.0)
        self.check_min("n_action_samples", 1)


@dataclass(frozen=True)
class IQLAgentConfig(D3rlpyAgentConfig):
    """IQL (Kostrikov et al. 2021). Defaults: the IQL paper's locomotion settings.

    Attributes:
        expectile: expectile of the value regression (0.5 = SARSA mean, -> 1 = max over the data).
        weight_temp: inverse temperature of advantage-weighted regression for the actor.
        max_weight: clip of the exponentiated advantages.
    """

    d3rlpy_config_class: ClassVar[type[LearnableConfig]] = IQLConfig

    expectile: float = 0.7
    weight_temp: float = 3.0
    max_weight: float = 100.0

    def validate(self) -> None:
        super().validate()
        self.check_range("expectile", 0.0, 1.0, low_open=True, high_open=True)
        self.check_positive("weight_temp", "max_weight")


@dataclass(frozen=True)
class DDPGAgentConfig(D3rlpyAgentConfig):
    """DDPG (Lillicrap et al. 2016) trained on the logged data only, with no behaviour constraint (the paper's
    weakest baseline). One critic, as in the original."""

    d3rlpy_config_class: ClassVar[type[LearnableConfig]] = DDPGConfig

    n_critics: int = 1


@dataclass(frozen=True)
class TD3PlusBCAgentConfig(D3rlpyAgentConfig):
    """TD3+BC (Fujimoto & Gu 2021). Defaults: the TD3+BC paper's.

    Attributes:
        alpha: weight of Q relative to behaviour cloning (lambda = alpha / mean|Q|).
        target_smoothing_sigma, target_smoothing_clip: TD3 target-policy smoothing noise and its clip.
        update_actor_interval: critic steps per actor step (policy delay).
    """

    d3rlpy_config_class: ClassVar[type[LearnableConfig]] = TD3PlusBCConfig

    alpha: float = 2.5
    target_smoothing_sigma: float = 0.2
    target_smoothing_clip: float = 0.5
    update_actor_interval: int = 2

    def validate(self) -> None:
        super().validate()
        self.check_min("alpha", 0.0)
        self.check_min("target_smoothing_sigma", 0.0)
        self.check_min("target_smoothing_clip", 0.0)
        self.check_min("update_actor_interval", 1)


@dataclass(frozen=True)
class IntegratedRLAgentConfig(D3rlpyAgentConfig):
    """IntegratedRL-MTF (arXiv 2404.17589); fields as ``mtf_agents.integrated_rl.IntegratedRLConfig`` (which checks
    them), defaults the paper's (``docs/agents/integrated_rl.md``). Trains on ``to_banded_dataset(data)``."""

    d3rlpy_config_class: ClassVar[type[LearnableConfig]] = IntegratedRLConfig
    banded: ClassVar[bool] = True

    # The paper's defaults live once, on the algorithm's config.
    n_critics: int = IntegratedRLConfig.n_critics
    tau: float = IntegratedRLConfig.tau
    target_update_interval: int = IntegratedRLConfig.target_update_interval
    alpha: float = IntegratedRLConfig.alpha
    beta: float = IntegratedRLConfig.beta
    eta: float = IntegratedRLConfig.eta
    lam: float = IntegratedRLConfig.lam
    band_reduction: Literal["sum", "mean"] = IntegratedRLConfig.band_reduction
    critic_penalty: Literal["subtractive", "multiplicative"] = IntegratedRLConfig.critic_penalty
    critic_target: Literal["independent", "mean", "min"] = IntegratedRLConfig.critic_target
    band_override: tuple[float, float] | None = IntegratedRLConfig.band_override
    # Critic sets per reward component and the paper readings that are options (docs/agents/integrated_rl.md).
    num_critic_sets: int = IntegratedRLConfig.num_critic_sets
    critic_set_weights: tuple[float, ...] | None = IntegratedRLConfig.critic_set_weights
    actor_band_weight: Literal["eta", "alpha"] = IntegratedRLConfig.actor_band_weight
    target_noise: float = IntegratedRLConfig.target_noise
    target_noise_clip: float = IntegratedRLConfig.target_noise_clip
    # Read by the progressive-training driver (mtf_agents.progressive.start_round), not by fit.
    progressive_data: Literal["cumulative", "current_round"] = IntegratedRLConfig.progressive_data
    progressive_init: Literal["scratch", "warm_start"] = IntegratedRLConfig.progressive_init


def _to_d3rlpy_dataset(data: TransitionData, banded: bool) -> Any:
    # Imported here: mtf_gym.datasets is optional-dependency territory and only offline training needs it.
    if banded:
        from mtf_agents.integrated_rl import to_banded_dataset

        return to_banded_dataset(data)
    from mtf_gym.datasets import to_mdp_dataset

    return to_mdp_dataset(data)


class D3rlpyAgent(OfflineAgent):
    """The one wrapper around a d3rlpy algorithm; concrete agents only bind a name to a config class."""

    config_class: ClassVar[type[AgentConfig]] = D3rlpyAgentConfig
    config: D3rlpyAgentConfig
    reports_checkpoints: ClassVar[bool] = True

    def __init__(self, config: AgentConfig | None = None) -> None:
        super().__init__(config)
        self._algo: Any = None
        self._warm_start: Any = None  # the algorithm whose weights the next fit starts from

    def warm_start_from(self, previous: Agent) -> None:
        """The next :meth:`fit` copies ``previous``'s networks after building its own (optimiser state fresh);
        available where the d3rlpy algorithm has ``warm_start_from`` (IntegratedRL)."""
        if not hasattr(self.config.to_d3rlpy().create(), "warm_start_from"):  # an unbuilt algorithm: cheap
            super().warm_start_from(previous)
        if type(previous) is not type(self) or getattr(previous, "_algo", None) is None:
            raise ValueError(f"{self.name} can warm-start only from a fitted {type(self).__name__}, got "
                             f"{type(previous).__name__}{'' if previous.is_fitted else ' (not fitted)'}")
        self._warm_start = previous._algo

    def _fit(self, data: TransitionData, n_steps: int, *, seed: int, show_progress: bool) -> dict[str, float]:
        dataset = _to_d3rlpy_dataset(data, self.config.banded)
        d3rlpy.seed(seed)  # d3rlpy samples mini-batches from the global NumPy/torch generators
        algo = self.config.to_d3rlpy().create(device=resolve_device(self.config.device))
        if self._warm_start is not None:
            algo.build_with_dataset(dataset)  # fit() keeps an algorithm that is already built
            algo.warm_start_from(self._warm_start)
            self._warm_start = None
        self._algo = algo  # a checkpoint callback acts with the algorithm as it trains
        history = algo.fit(
            dataset,
            n_steps=n_steps,
            n_steps_per_epoch=n_steps,  # one epoch: one progress bar, metrics averaged over the whole run
            experiment_name=self.name,
            with_timestamp=False,
            logger_adapter=NoopAdapterFactory(),
            show_progress=show_progress,
            callback=lambda _algo, _epoch, total_step: self._checkpoint(total_step),
        )
        return {key: float(value) for key, value in history[-1][1].items()}

    def _predict(self, observations: np.ndarray) -> np.ndarray:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_PREDICT_SEED)
            return self._algo.predict(observations)

    def _save_payload(self, path: Path) -> None:
        self._algo.save(str(path / MODEL_FILE))

    def _load_payload(self, path: Path, metadata: dict[str, Any]) -> None:
        algo = d3rlpy.load_learnable(str(path / MODEL_FILE), device=resolve_device(self.config.device))
        expected = self.config.d3rlpy_config_class
        if not isinstance(algo.config, expected):
            raise ValueError(f"{path / MODEL_FILE} holds a {type(algo.config).__name__}, expected {expected.__name__}")
        self._algo = algo


class BCQAgent(D3rlpyAgent):
    name = "bcq"
    config_class = BCQAgentConfig


class CQLAgent(D3rlpyAgent):
    name = "cql"
    config_class = CQLAgentConfig


class IQLAgent(D3rlpyAgent):
    name = "iql"
    config_class = IQLAgentConfig


class DDPGAgent(D3rlpyAgent):
    name = "ddpg"
    config_class = DDPGAgentConfig


class TD3PlusBCAgent(D3rlpyAgent):
    name = "td3bc"
    config_class = TD3PlusBCAgentConfig


class IntegratedRLAgent(D3rlpyAgent):
    name = "integrated_rl"
    config_class = IntegratedRLAgentConfig


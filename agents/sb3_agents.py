"""Online reference agents from Stable-Baselines3 (SAC, TD3, PPO), trained in ``MTFSession-v1`` or ``-v0`` (the
env config's version).

They learn from live interaction, which the paper's offline setting cannot afford, so they are an *upper
reference*, not a competitor of the offline agents. One wrapper, :class:`SB3Agent`; each config knows its SB3 class
and turns its fields into SB3 keyword arguments. SB3 refuses Gymnasium ``VectorEnv``s, so training runs on
``make_vec_env(env_id, n_envs)`` (a ``DummyVecEnv`` of ``Monitor``-wrapped single envs), the networks on
the config's ``device`` (CPU by default).
``fit_online``'s ``n_steps`` is SB3's ``total_timesteps`` (requests summed over the parallel envs; PPO always
completes at least one rollout of ``rollout_steps * n_envs``).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mtf_agents._quiet import import_gym_quietly

import_gym_quietly()  # before stable_baselines3, which imports gym when it is installed and would print its banner

import numpy as np
from stable_baselines3 import PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.noise import NormalActionNoise
from tqdm.auto import tqdm

from mtf_agents.base import AgentConfig, OnlineAgent, resolve_device

if TYPE_CHECKING:
    from mtf_gym.envs.versions import AnyConfig

__all__ = ["PPOAgent", "PPOConfig", "SACAgent", "SACConfig", "SB3Agent", "SB3AgentConfig", "TD3Agent", "TD3Config"]

MODEL_FILE = "model.zip"


@dataclass(frozen=True)
class SB3AgentConfig(AgentConfig):
    """Fields shared by the SB3 agents (the others are SB3's own keyword arguments, under SB3's names).

    Attributes:
        hidden_units: widths of the actor and critic MLPs (SB3 ``net_arch``).
        learning_rate: Adam step size.
        gamma: discount (the paper's 0.9, as for the offline agents).
        batch_size: mini-batch size.
        n_envs: parallel simulator sessions feeding the learner.
        device: torch device, ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (``mtf_agents.base.resolve_device``).
    """

    shared_settings: ClassVar[tuple[str, ...]] = ("hidden_units", "batch_size", "gamma", "device")

    algorithm: ClassVar[type[BaseAlgorithm]]

    hidden_units: tuple[int, ...] = (256, 256)
    learning_rate: float = 3e-4
    gamma: float = 0.9
    batch_size: int = 256
    n_envs: int = 1
    device: str = "cpu"

    def validate(self) -> None:
        self.check_device()
        self.check_layers("hidden_units")
        self.check_positive("learning_rate")
        self.check_range("gamma", 0.0, 1.0)
        self.check_min("batch_size", 1)
        self.check_min("n_envs", 1)

    def model_kwargs(self, action_dim: int) -> dict[str, Any]:
        """Keyword arguments of the SB3 constructor (besides policy, env, seed and device)."""
        kwargs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        kwargs["policy_kwargs"] = {"net_arch": list(kwargs.pop("hidden_units"))}
        del kwargs["n_envs"], kwargs["device"]
        return kwargs


@dataclass(frozen=True)
class _OffPolicyConfig(SB3AgentConfig):
    """Replay settings shared by SAC and TD3 (SB3 defaults, except a replay buffer sized for CPU memory).

    Attributes:
        buffer_size: replay capacity (transitions).
        learning_starts: random-action steps before the first update.
        tau: soft target-update rate.
        train_freq: env steps between updates; gradient_steps: updates each time.
    """

    buffer_size: int = 200_000
    learning_starts: int = 1_000
    tau: float = 0.005
    train_freq: int = 1
    gradient_steps: int = 1

    def validate(self) -> None:
        super().validate()
        self.check_min("buffer_size", 1)
        self.check_min("learning_starts", 0)
        self.check_range("tau", 0.0, 1.0, low_open=True)
        self.check_min("train_freq", 1)
        self.check_min("gradient_steps", 1)


@dataclass(frozen=True)
class SACConfig(_OffPolicyConfig):
    """SAC (Haarnoja et al. 2018). ``ent_coef``: ``"auto"`` (learned temperature, SB3 default) or a fixed float."""

    algorithm: ClassVar[type[BaseAlgorithm]] = SAC

    ent_coef: str | float = "auto"

    def validate(self) -> None:
        super().validate()
        if isinstance(self.ent_coef, str) and not self.ent_coef.startswith("auto"):
            raise ValueError(f"SACConfig.ent_coef must be 'auto', 'auto_<init>' or a float, got {self.ent_coef!r}")


@dataclass(frozen=True)
class TD3Config(_OffPolicyConfig):
    """TD3 (Fujimoto et al. 2018), SB3 defaults; ``action_noise_std`` is the Gaussian exploration noise."""

    algorithm: ClassVar[type[BaseAlgorithm]] = TD3

    policy_delay: int = 2
    target_policy_noise: float = 0.2
    target_noise_clip: float = 0.5
    action_noise_std: float = 0.1

    def validate(self) -> None:
        super().validate()
        self.check_min("policy_delay", 1)
        self.check_min("target_policy_noise", 0.0)
        self.check_min("target_noise_clip", 0.0)
        self.check_min("action_noise_std", 0.0)

    def model_kwargs(self, action_dim: int) -> dict[str, Any]:
        kwargs = super().model_kwargs(action_dim)
        std = kwargs.pop("action_noise_std")
        if std > 0:
            kwargs["action_noise"] = NormalActionNoise(np.zeros(action_dim), np.full(action_dim, std))
        return kwargs


@dataclass(frozen=True)
class PPOConfig(SB3AgentConfig):
    """PPO (Schulman et al. 2017), SB3 defaults except shorter rollouts over more envs.

    Attributes:
        rollout_steps: steps per env per update (SB3's ``n_steps``).
        n_epochs, clip_range, gae_lambda, ent_coef, vf_coef, max_grad_norm: SB3's PPO arguments.
        log_std_init: initial log std of the Gaussian policy (0: std 1, i.e. near-random fusions at first).
    """

    algorithm: ClassVar[type[BaseAlgorithm]] = PPO

    batch_size: int = 64
    n_envs: int = 8
    rollout_steps: int = 256
    n_epochs: int = 10
    clip_range: float = 0.2
    gae_lambda: float = 0.95
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    log_std_init: float = 0.0

    def validate(self) -> None:
        super().validate()
        self.check_min("rollout_steps", 2)
        self.check_min("n_epochs", 1)
        self.check_positive("clip_range", "max_grad_norm")
        self.check_range("gae_lambda", 0.0, 1.0)
        if self.rollout_steps * self.n_envs < self.batch_size:
            raise ValueError(f"PPOConfig.batch_size must be <= rollout_steps * n_envs "
                             f"({self.rollout_steps * self.n_envs}), got {self.batch_size}")

    def model_kwargs(self, action_dim: int) -> dict[str, Any]:
        kwargs = super().model_kwargs(action_dim)
        kwargs["n_steps"] = kwargs.pop("rollout_steps")
        kwargs["policy_kwargs"]["log_std_init"] = kwargs.pop("log_std_init")
        return kwargs


class _CheckpointCallback(BaseCallback):
    """Reports the requests done so far to the agent's checkpoint hook when a rollout starts: SB3 trains on a
    rollout after collecting it, so only then are the updates for every request so far done (the final
    checkpoint fires after ``learn`` returns)."""

    def __init__(self, agent: SB3Agent) -> None:
        super().__init__()
        self._agent = agent

    def _on_rollout_start(self) -> None:
        self._agent._checkpoint(self.num_timesteps)

    def _on_step(self) -> bool:
        return True


class _TqdmCallback(BaseCallback):
    """A tqdm bar over ``total_timesteps`` (SB3's own bar needs ``rich``)."""

    def __init__(self, total: int, desc: str) -> None:
        super().__init__()
        self._bar = tqdm(total=total, desc=desc, unit="req")

    def _on_step(self) -> bool:
        self._bar.update(min(self.training_env.num_envs, self._bar.total - self._bar.n))
        return True

    def _on_training_end(self) -> None:
        self._bar.close()


class SB3Agent(OnlineAgent):
    """The one wrapper around an SB3 algorithm; concrete agents only bind a name to a config class."""

    config_class: ClassVar[type[AgentConfig]] = SB3AgentConfig
    config: SB3AgentConfig
    reports_checkpoints: ClassVar[bool] = True

    def __init__(self, config: AgentConfig | None = None) -> None:
        super().__init__(config)
        self._model: BaseAlgorithm | None = None

    def _fit_online(self, env_config: AnyConfig, n_steps: int, *, seed: int,
                    show_progress: bool) -> dict[str, float]:
        import mtf_gym  # noqa: F401  (registers the MTFSession envs with Gymnasium)
        from mtf_gym.envs.versions import env_id_of

        cfg = self.config
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*out of date.*")  # gym's nudge from v0 towards MTFSession-v1
            env = make_vec_env(env_id_of(env_config), n_envs=cfg.n_envs, seed=seed,
                               env_kwargs={"config": dataclasses.replace(env_config, item_logs=False)})
        try:
            model = cfg.algorithm("MlpPolicy", env, seed=seed, device=resolve_device(cfg.device), verbose=0,
                                  **cfg.model_kwargs(self.action_dim))
            self._model = model  # a checkpoint callback acts with the model as it trains
            callbacks: list[BaseCallback] = [_CheckpointCallback(self)]
            if show_progress:
                callbacks.append(_TqdmCallback(n_steps, self.name))
            model.learn(total_timesteps=n_steps, callback=callbacks)
        finally:
            env.close()
        self._model = model
        returns = [info["r"] for info in model.ep_info_buffer]
        return {"episodes_in_buffer": float(len(returns)),
                "recent_episode_return": float(np.mean(returns)) if returns else float("nan")}

    def _predict(self, observations: np.ndarray) -> np.ndarray:
        actions, _ = self._model.predict(observations, deterministic=True)
        return actions

    def _save_payload(self, path: Path) -> None:
        self._model.save(path / MODEL_FILE)

    def _load_payload(self, path: Path, metadata: dict[str, Any]) -> None:
        self._model = self.config.algorithm.load(path / MODEL_FILE, device=resolve_device(self.config.device))


class SACAgent(SB3Agent):
    name = "sac"
    config_class = SACConfig


class TD3Agent(SB3Agent):
    name = "td3"
    config_class = TD3Config


class PPOAgent(SB3Agent):
    name = "ppo"
    config_class = PPOConfig

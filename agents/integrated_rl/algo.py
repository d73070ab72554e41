"""IntegratedRL as a d3rlpy algorithm: ``IntegratedRLConfig(...).create()`` -> ``IntegratedRL``."""

import dataclasses
import math
import numbers
from collections.abc import Callable, Generator
from typing import Any

from d3rlpy.algos.qlearning.base import QLearningAlgoBase
from d3rlpy.base import DeviceArg, LearnableConfig, register_learnable
from d3rlpy.constants import ActionSpace, LoggingStrategy
from d3rlpy.dataset import ReplayBufferBase, TransitionMiniBatch
from d3rlpy.logging import FileAdapterFactory, LoggerAdapterFactory
from d3rlpy.metrics import EvaluatorProtocol
from d3rlpy.models.builders import create_deterministic_policy
from d3rlpy.models.encoders import EncoderFactory, make_encoder_field
from d3rlpy.models.torch import DeterministicPolicy
from d3rlpy.optimizers import OptimizerFactory, make_optimizer_field
from d3rlpy.preprocessing import MultiplyRewardScaler
from d3rlpy.types import Shape

from mtf_agents.progressive import PROGRESSIVE_DATA, PROGRESSIVE_INIT

from .data import BandedTorchMiniBatch, BandedTransitionMiniBatch, require_banded_dataset
from .ensemble import EnsembleQFunction, build_ensemble_q_function
from .impl import (
    BAND_REDUCTIONS,
    CRITIC_PENALTIES,
    CRITIC_TARGETS,
    IntegratedRLImpl,
    IntegratedRLModules,
    LossSettings,
)

__all__ = [
    "ACTOR_BAND_WEIGHTS",
    "PROGRESSIVE_DATA",
    "PROGRESSIVE_INIT",
    "IntegratedRL",
    "IntegratedRLConfig",
]

# Readings of the paper that are config options (docs/agents/integrated_rl.md quotes the text behind each); the
# progressive ones belong to the round driver, mtf_agents.progressive, which defines them.
ACTOR_BAND_WEIGHTS = ("eta", "alpha")


def _invalid(field: str, allowed: str, value: object) -> ValueError:
    return ValueError(f"IntegratedRLConfig.{field} must be {allowed}, got {value!r}")


@dataclasses.dataclass()
class IntegratedRLConfig(LearnableConfig):
    r"""Config of IntegratedRL (Liu et al., arXiv 2404.17589; "UnifiedRL" in later versions).

    Deterministic actor ``mu`` with target ``mu'``; ``q`` sets of ``m`` independent critics ``Q_ki`` (set ``k`` per
    reward component), each with its own target ``Q'_ki``, run as one batched ensemble of ``q * m``. Every
    transition carries its exploration centre ``c = mu_bp(s)`` and
    band ``[c + lower, c + upper]`` (see ``make_banded_dataset``). With ``W = upper - lower`` and per dimension

    .. math::

        d_j = 0 \text{ inside}, \quad e^{(a_j - (c_j + upper_j)) / (\beta W_j)} \text{ above}, \quad
              e^{((c_j + lower_j) - a_j) / (\beta W_j)} \text{ below},

    the actor minimises ``-mean_i Q_i(s, mu(s)) + eta * d(mu(s)) + lam * std_i Q_i(s, mu(s))`` and critic ``i``
    regresses on ``r + gamma (1 - T) (Q'_i(s', mu'(s')) - alpha * d(mu'(s'); c(s')))`` (``critic_penalty=
    "subtractive"``) or ``r + gamma (1 - T) phi(mu'(s'); c(s')) Q'_i(s', mu'(s'))`` (``"multiplicative"``).

    Args:
        observation_scaler, action_scaler, reward_scaler: d3rlpy preprocessors (band edges follow the action scaler).
        actor_learning_rate, critic_learning_rate: Adam step sizes (paper: Adam, rates not given).
        actor_optim_factory, critic_optim_factory: d3rlpy optimizer factories (default Adam).
        actor_encoder_factory, critic_encoder_factory: d3rlpy encoder factories (default 256x256 ReLU MLP). The
            critic factory must build vector encoders ('vector' or 'default'), which are vectorised over critics.
        batch_size: mini-batch size (paper: 256).
        gamma: discount (paper: 0.9).
        n_critics: independent critics m per critic set (paper: 24, with one set).
        num_critic_sets: critic sets q (later version: one per reward component). 1 (default): one set on the
            scalar reward, the first version's method. ``q > 1`` needs a dataset with ``q`` reward components
            (``make_banded_dataset(..., reward_components=...)``); set ``k`` regresses on component ``k``.
        critic_set_weights: ``w_k`` combining the sets in the actor, ``sum_k w_k mean_i Q_ki`` (and the std penalty
            ``sum_k |w_k| std_i Q_ki``). ``None`` (default): all 1, right when the components are already weighted
            parts of the reward (mtf-gym's datasets). Must have ``q`` entries.
        tau: soft target-update rate (paper: 0.08).
        target_update_interval: apply the soft update every L gradient steps (paper: delay L = 15).
        alpha: weight of the band penalty of the next action in the subtractive critic target (paper: 1.2; the
            actor loss eq. 4 has no alpha, the critic target eq. 6 is the only place with an unnamed weight).
            Unused by ``critic_penalty="multiplicative"``.
        beta: band-penalty temperature (paper: 0.3); the penalty grows e-fold every ``beta * W`` beyond the band.
        eta: weight of the band penalty in the actor loss (not given by the paper; 1.0, see the docs).
        actor_band_weight: ``"eta"`` (default: the actor's band weight is ``eta``) or ``"alpha"`` (the reading
            alpha == eta: the paper lists one unnamed-placement weight alpha = 1.2, used by actor and critic).
        lam: weight of the critics' std in the actor loss (paper's lambda: 0.2).
        band_reduction: ``"sum"`` or ``"mean"`` of the per-dimension penalties.
        critic_penalty: ``"multiplicative"`` (later version, default: the bootstrap is scaled by phi in (0, 1], so
            targets stay at reward scale) or ``"subtractive"`` (paper v4: subtracts ``alpha * d``, which with the
            paper's beta reaches ~1e9 for a target action far outside its band; see the docs).
        critic_target: ``"independent"`` (each critic bootstraps from its own target, default), ``"mean"`` or
            ``"min"`` over the target ensemble.
        band_override: ``(lower, upper)`` offsets replacing the recorded bands (ablation of the band width).
        target_noise: std of Gaussian noise on the target action ``mu'(s')`` of the critic target (the paper's
            "xi, the exploration noise" read as target-policy smoothing); 0 (default) disables it.
        target_noise_clip: the noise is clipped to ``[-target_noise_clip, target_noise_clip]`` (TD3: 0.5).
        progressive_data: what each progressive round trains on: ``"cumulative"`` (default, every round so far) or
            ``"current_round"`` (the newest round's data only). Read by the progressive-training driver
            (``mtf_agents.progressive``: ``mtf-collect progressive`` and the benchmark harness); ``fit`` never uses it.
        progressive_init: ``"scratch"`` (default: each round trains a new model) or ``"warm_start"`` (start from
            the previous round's weights, :meth:`IntegratedRL.warm_start_from`). Read by the driver, like
            ``progressive_data``.
        compile_graph: d3rlpy's flag: on a CUDA device the critic and actor gradient computations run as
            ``torch.compile`` + CUDA-graph replays (d3rlpy's ``CudaGraphWrapper``); ignored on CPU, as by d3rlpy's
            own algorithms.
    """

    batch_size: int = 256
    gamma: float = 0.9
    actor_learning_rate: float = 3e-4
    critic_learning_rate: float = 3e-4
    # d3rlpy's make_*_field() return dataclasses.field(default_factory=...) objects, not shared default values.
    actor_optim_factory: OptimizerFactory = make_optimizer_field()  # noqa: RUF009
    critic_optim_factory: OptimizerFactory = make_optimizer_field()  # noqa: RUF009
    actor_encoder_factory: EncoderFactory = make_encoder_field()  # noqa: RUF009
    critic_encoder_factory: EncoderFactory = make_encoder_field()  # noqa: RUF009
    n_critics: int = 24
    tau: float = 0.08
    target_update_interval: int = 15
    alpha: float = 1.2
    beta: float = 0.3
    eta: float = 1.0
    lam: float = 0.2
    band_reduction: str = "sum"
    critic_penalty: str = "multiplicative"
    critic_target: str = "independent"
    band_override: tuple[float, float] | None = None
    num_critic_sets: int = 1
    critic_set_weights: tuple[float, ...] | None = None
    actor_band_weight: str = "eta"
    target_noise: float = 0.0
    target_noise_clip: float = 0.5
    progressive_data: str = "cumulative"
    progressive_init: str = "scratch"

    def __post_init__(self) -> None:
        # (field, integer?, predicate on the value, allowed values as shown in the error)
        numeric: tuple[tuple[str, bool, Callable[[float], bool], str], ...] = (
            ("batch_size", True, lambda v: v >= 1, "an integer >= 1"),
            ("gamma", False, lambda v: 0.0 <= v <= 1.0, "a float in [0, 1]"),
            ("actor_learning_rate", False, lambda v: v > 0.0, "a float > 0"),
            ("critic_learning_rate", False, lambda v: v > 0.0, "a float > 0"),
            ("n_critics", True, lambda v: v >= 1, "an integer >= 1"),
            ("tau", False, lambda v: 0.0 < v <= 1.0, "a float in (0, 1]"),
            ("target_update_interval", True, lambda v: v >= 1, "an integer >= 1"),
            ("alpha", False, lambda v: v >= 0.0, "a float >= 0 (0 disables the term)"),
            ("beta", False, lambda v: v > 0.0, "a float > 0 (it divides the band excess)"),
            ("eta", False, lambda v: v >= 0.0, "a float >= 0 (0 disables the term)"),
            ("lam", False, lambda v: v >= 0.0, "a float >= 0 (0 disables the term)"),
            ("num_critic_sets", True, lambda v: v >= 1, "an integer >= 1"),
            ("target_noise", False, lambda v: v >= 0.0, "a float >= 0 (0 disables target-action noise)"),
            ("target_noise_clip", False, lambda v: v > 0.0, "a float > 0"),
        )
        for name, integer, ok, allowed in numeric:
            value = getattr(self, name)
            kind = numbers.Integral if integer else numbers.Real
            if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or not ok(value):
                raise _invalid(name, allowed, value)
            # Plain Python numbers keep the config JSON-serialisable (numpy scalars are not).
            setattr(self, name, int(value) if integer else float(value))
        for name, choices in (
            ("band_reduction", BAND_REDUCTIONS),
            ("critic_penalty", CRITIC_PENALTIES),
            ("critic_target", CRITIC_TARGETS),
            ("actor_band_weight", ACTOR_BAND_WEIGHTS),
            ("progressive_data", PROGRESSIVE_DATA),
            ("progressive_init", PROGRESSIVE_INIT),
        ):
            if getattr(self, name) not in choices:
                raise _invalid(name, f"one of {choices}", getattr(self, name))
        if self.band_override is not None:
            override = self.band_override
            if (
                not isinstance(override, (tuple, list))
                or len(override) != 2
                or not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in override)
                or not override[0] < override[1]
            ):
                raise _invalid(
                    "band_override", "None or a pair (lower, upper) of finite floats with lower < upper", override
                )
            self.band_override = (float(override[0]), float(override[1]))
        if self.critic_set_weights is not None:
            weights = self.critic_set_weights
            if (
                not isinstance(weights, (tuple, list))
                or len(weights) != self.num_critic_sets
                or not all(
                    isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in weights
                )
            ):
                raise _invalid(
                    "critic_set_weights", f"None or {self.num_critic_sets} finite floats (one per critic set)", weights
                )
            self.critic_set_weights = tuple(float(v) for v in weights)
        if (
            self.num_critic_sets > 1
            and self.reward_scaler is not None
            and not isinstance(self.reward_scaler, MultiplyRewardScaler)
        ):
            # A shift (standard / min-max scaling) applied to every component would shift their sum q times.
            raise _invalid(
                "reward_scaler",
                "None or a MultiplyRewardScaler when num_critic_sets > 1 (it scales every reward component)",
                self.reward_scaler,
            )

    @property
    def set_weights(self) -> tuple[float, ...]:
        """``critic_set_weights`` with ``None`` resolved to one 1.0 per critic set."""
        return self.critic_set_weights or (1.0,) * self.num_critic_sets

    @property
    def actor_eta(self) -> float:
        """The weight of the actor's band penalty: ``eta``, or ``alpha`` under ``actor_band_weight="alpha"``."""
        return self.alpha if self.actor_band_weight == "alpha" else self.eta

    def create(self, device: DeviceArg = False, enable_ddp: bool = False) -> "IntegratedRL":
        return IntegratedRL(self, device, enable_ddp)

    @staticmethod
    def get_type() -> str:
        return "integrated_rl"


class IntegratedRL(QLearningAlgoBase[IntegratedRLImpl, IntegratedRLConfig]):
    """IntegratedRL-MTF. Train with ``fit`` on a ``make_banded_dataset`` dataset; act with ``predict``."""

    def inner_create_impl(self, observation_shape: Shape, action_size: int) -> None:
        if self._enable_ddp:
            raise ValueError("IntegratedRL does not support enable_ddp=True")
        cfg = self._config

        def policy() -> DeterministicPolicy:
            return create_deterministic_policy(
                observation_shape, action_size, cfg.actor_encoder_factory, device=self._device, enable_ddp=False
            )

        def critics() -> EnsembleQFunction:
            # All q * m critics in one batched ensemble; set k is members k*m .. k*m + m - 1.
            return build_ensemble_q_function(
                observation_shape,
                action_size,
                cfg.critic_encoder_factory,
                cfg.n_critics * cfg.num_critic_sets,
                device=self._device,
            )

        actor, q_funcs = policy(), critics()
        modules = IntegratedRLModules(
            policy=actor,
            targ_policy=policy(),
            q_funcs=q_funcs,
            targ_q_funcs=critics(),
            actor_optim=cfg.actor_optim_factory.create(
                actor.named_modules(), lr=cfg.actor_learning_rate, compiled=self.compiled
            ),
            critic_optim=cfg.critic_optim_factory.create(
                q_funcs.named_modules(), lr=cfg.critic_learning_rate, compiled=self.compiled
            ),
        )
        self._impl = IntegratedRLImpl(
            observation_shape=observation_shape,
            action_size=action_size,
            modules=modules,
            gamma=cfg.gamma,
            tau=cfg.tau,
            target_update_interval=cfg.target_update_interval,
            settings=LossSettings(
                alpha=cfg.alpha,
                beta=cfg.beta,
                eta=cfg.actor_eta,
                lam=cfg.lam,
                band_reduction=cfg.band_reduction,
                critic_penalty=cfg.critic_penalty,
                critic_target=cfg.critic_target,
                num_critic_sets=cfg.num_critic_sets,
                critic_set_weights=cfg.set_weights,
                target_noise=cfg.target_noise,
                target_noise_clip=cfg.target_noise_clip,
            ),
            device=self._device,
            compiled=self.compiled,
        )

    def get_action_type(self) -> ActionSpace:
        return ActionSpace.CONTINUOUS

    def update(self, batch: TransitionMiniBatch) -> dict[str, float]:
        """One gradient step on a ``BandedTransitionMiniBatch`` (``BandedReplayBuffer.sample_transition_batch``)."""
        if self._impl is None:
            raise RuntimeError("call build_with_dataset() or fit() before update()")
        if not isinstance(batch, BandedTransitionMiniBatch):
            raise TypeError(
                f"IntegratedRL.update needs a BandedTransitionMiniBatch carrying exploration centres and bands, got "
                f"{type(batch).__name__}; sample it from a dataset built with make_banded_dataset()"
            )
        torch_batch = BandedTorchMiniBatch.from_banded_batch(
            batch,
            gamma=self._config.gamma,
            device=self._device,
            observation_scaler=self._config.observation_scaler,
            action_scaler=self._config.action_scaler,
            reward_scaler=self._config.reward_scaler,
            band_override=self._config.band_override,
            with_reward_components=self._config.num_critic_sets > 1,
        )
        loss = self._impl.update(torch_batch, self._grad_step)
        self._grad_step += 1
        return loss

    def fitter(
        self,
        dataset: ReplayBufferBase,
        n_steps: int,
        n_steps_per_epoch: int = 10000,
        logging_steps: int = 500,
        logging_strategy: LoggingStrategy = LoggingStrategy.EPOCH,
        experiment_name: str | None = None,
        with_timestamp: bool = True,
        logger_adapter: LoggerAdapterFactory = FileAdapterFactory(),  # noqa: B008 (d3rlpy's default)
        show_progress: bool = True,
        save_interval: int = 1,
        evaluators: dict[str, EvaluatorProtocol] | None = None,
        callback: Callable[["IntegratedRL", int, int], None] | None = None,
        epoch_callback: Callable[["IntegratedRL", int, int], None] | None = None,
    ) -> Generator[tuple[int, dict[str, float]], None, None]:
        """d3rlpy's ``fitter``, refusing datasets without bands before any model, scaler or log directory is made."""
        require_banded_dataset(dataset, self._config.num_critic_sets)
        return super().fitter(
            dataset=dataset,
            n_steps=n_steps,
            n_steps_per_epoch=n_steps_per_epoch,
            logging_steps=logging_steps,
            logging_strategy=logging_strategy,
            experiment_name=experiment_name,
            with_timestamp=with_timestamp,
            logger_adapter=logger_adapter,
            show_progress=show_progress,
            save_interval=save_interval,
            evaluators=evaluators,
            callback=callback,
            epoch_callback=epoch_callback,
        )

    def warm_start_from(self, previous: "IntegratedRL") -> None:
        """Copy the networks (actor, critics and their targets) of ``previous``, e.g. the last progressive round's
        model (``progressive_init="warm_start"``). Optimiser state starts fresh. Build this algorithm first
        (``build_with_dataset``); both must have the same shapes, ``n_critics`` and ``num_critic_sets``."""
        if self._impl is None or previous.impl is None:
            raise RuntimeError("both algorithms must be built (build_with_dataset or fit) before warm_start_from()")
        mine, theirs = self._impl.modules, previous.impl.modules
        for name in ("policy", "targ_policy", "q_funcs", "targ_q_funcs"):
            getattr(mine, name).load_state_dict(getattr(theirs, name).state_dict())

    def fit_online(self, *args: Any, **kwargs: Any) -> None:
        """Not available: the losses need the exploration band of every transition, which online replay lacks."""
        raise NotImplementedError(
            "IntegratedRL trains offline on banded datasets (make_banded_dataset); collect sessions with a "
            "bounded-uniform explorer around predict() and call fit() (progressive training)"
        )


register_learnable(IntegratedRLConfig)

"""The agent interface every member of the zoo (and every plug-in) implements.

An agent is built from a **typed, frozen config dataclass** (a subclass of :class:`AgentConfig`), learns either
offline from logged requests (:class:`OfflineAgent.fit`) or online in the simulator (:class:`OnlineAgent.fit_online`),
and then acts deterministically on a batch of observations: ``act((N, obs_dim)) -> (N, A)`` float32 in ``[-1, 1]``.

Saved agents are directories::

    path/
      agent.json     name, kind, config, observation/action sizes (the sidecar ``load_agent`` reads first)
      <payload>      whatever the agent writes in ``_save_payload`` (a d3rlpy ``.d3``, a torch state dict, ...)

``mtf_agents.registry.load_agent(path)`` rebuilds any registered agent from such a directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, TypeVar

import numpy as np

from mtf_gym.validation import check_int, must_be

if TYPE_CHECKING:
    from mtf_gym.datasets import TransitionData
    from mtf_gym.envs.versions import AnyConfig

__all__ = [
    "KINDS",
    "METADATA_FILE",
    "SHARED_SETTING_NAMES",
    "Agent",
    "AgentConfig",
    "CheckpointCallback",
    "Kind",
    "OfflineAgent",
    "OnlineAgent",
    "SharedSettings",
    "config_error",
    "read_agent_metadata",
    "resolve_device",
    "transition_arrays",
]

Kind = Literal["offline", "online"]
KINDS: tuple[str, ...] = ("offline", "online")
METADATA_FILE = "agent.json"
_FORMAT_VERSION = 1


DEVICE_FIX = "pass --device cpu (or --device auto: CUDA when torch sees a GPU, else the CPU)"
# Called by training code at each checkpoint of a run: (steps or requests done so far, the agent as it is then).
CheckpointCallback = Callable[[int, "Agent"], None]
T = TypeVar("T")


def resolve_device(device: str) -> str:
    """The torch device an agent's ``device`` field names: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.

    ``auto`` is ``cuda:0`` when torch sees a CUDA GPU, else ``cpu``. Asking for CUDA where torch has none is an
    error naming the fix, never a silent CPU run (a "GPU" benchmark that ran on the CPU would mislabel its timings).
    """
    if not isinstance(device, str) or not _DEVICE_PATTERN.fullmatch(device):
        raise ValueError(f"device must be 'cpu', 'auto', 'cuda' or 'cuda:N', got {device!r}")
    if device == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if device == "auto":
        return "cuda:0" if available else "cpu"
    if not available:
        raise ValueError(f"device={device!r} asks for a CUDA GPU, but torch sees none here "
                         f"(torch {torch.__version__}, torch.cuda.is_available() is False): {DEVICE_FIX}")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r}: torch sees {torch.cuda.device_count()} CUDA device(s) "
                         f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1}); {DEVICE_FIX}")
    return f"cuda:{index}"


_DEVICE_PATTERN = re.compile(r"cpu|auto|cuda(:\d+)?")


def config_error(config: type | object, name: str, allowed: str, value: object) -> ValueError:
    """The one error message shape for bad config values: ``ESConfig.sigma0 must be a float > 0, got -1``."""
    return must_be(name, allowed, value, owner=config)


def _type_ok(value: object, hint: Any) -> tuple[bool, str]:
    """Whether ``value`` matches the annotation ``hint``; returns ``(ok, description of the allowed values)``."""
    origin = typing.get_origin(hint)
    if hint is bool:
        return isinstance(value, bool), "a bool"
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), "an integer"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return ok, "a finite float"
    if hint is str:
        return isinstance(value, str), "a string"
    if origin is Literal:
        return value in typing.get_args(hint), f"one of {typing.get_args(hint)}"
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False, "a tuple"
        if len(args) == 2 and args[1] is Ellipsis:
            checks = [_type_ok(v, args[0]) for v in value]
            return all(ok for ok, _ in checks), f"a tuple of {_type_ok(None, args[0])[1]} values"
        if len(args) != len(value):
            return False, f"a tuple of {len(args)} values"
        return all(_type_ok(v, a)[0] for v, a in zip(value, args)), f"a tuple matching {hint}"
    if origin in (typing.Union, types.UnionType):
        checks = [_type_ok(value, a) for a in typing.get_args(hint)]
        return any(ok for ok, _ in checks), " or ".join(d for _, d in checks)
    if hint is type(None):
        return value is None, "None"
    return True, str(hint)  # anything else (nested dataclasses, ...) is the subclass's to validate


def _from_plain(cls: type[T], data: dict[str, Any], unknown_message: Callable[[list[str], list[str]], str]) -> T:
    """A dataclass from JSON-like values (lists become tuples); unknown keys raise ``ValueError(unknown_message)``."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(unknown_message(unknown, names))
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class SharedSettings:
    """The settings every neural agent shares, set once for a whole comparison (a benchmark preset's ``[agents]``).

    An agent config takes them by declaring the names in :attr:`AgentConfig.shared_settings` (each one a field of
    its own); nothing is matched by name, so an agent that declares none (ES) is told so rather than silently
    skipped. ``None``: keep each agent's default.

    Attributes:
        hidden_units: widths of every MLP.
        batch_size: minibatch size of each gradient step.
        gamma: discount factor.
        device: torch device (``cpu``, ``auto``, ``cuda``, ``cuda:N``).
        compile_graph: d3rlpy's ``compile_graph`` (torch.compile + CUDA-graph replay of each update); d3rlpy uses it
            on CUDA devices only and ignores it on the CPU.
    """

    hidden_units: tuple[int, ...] | None = None
    batch_size: int | None = None
    gamma: float | None = None
    device: str | None = None
    compile_graph: bool | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SharedSettings:
        """From plain values (lists for tuples); an unknown key is an error naming the known ones."""
        return _from_plain(cls, data, lambda unknown, names: f"shared settings {unknown} do not exist; shared "
                                                              f"settings: {names}")

    def given(self) -> dict[str, Any]:
        """The settings that are set (not ``None``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}


SHARED_SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SharedSettings))


@dataclass(frozen=True)
class AgentConfig:
    """Base of every agent's config: frozen, checked on construction, round-trips through JSON.

    Subclasses declare typed fields (``int``, ``float``, ``bool``, ``str``, ``Literal[...]``, ``tuple[int, ...]``,
    optionals of those); every field's type is checked here, so ``batch_size="32"`` fails where it is written.
    Range checks go in :meth:`validate` (call ``super().validate()``), using the ``check_*`` helpers or raising
    :func:`config_error`.
    """

    # The SharedSettings this config takes (each a field of the same name); a neural agent should take all four.
    shared_settings: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def sharing(cls, settings: SharedSettings, **overrides: Any) -> Self:
        """This config with the shared ``settings`` it declares, then ``overrides`` (which win)."""
        taken = {k: v for k, v in settings.given().items() if k in cls.shared_settings}
        return cls(**{**taken, **overrides})

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            ok, allowed = _type_ok(value, hints[f.name])
            if not ok:
                raise config_error(self, f.name, allowed, value)
        self.validate()

    def validate(self) -> None:
        """Range and consistency checks beyond the field types (override in subclasses)."""

    # Range checks for validate(), so every config (plug-ins included) words its errors the same way.
    def check_min(self, name: str, minimum: float) -> None:
        """Field ``name`` must be ``>= minimum``."""
        value = getattr(self, name)
        if value < minimum:
            raise config_error(self, name, f">= {minimum}", value)

    def check_positive(self, *names: str) -> None:
        """Every field in ``names`` must be ``> 0``."""
        for name in names:
            value = getattr(self, name)
            if not value > 0:
                raise config_error(self, name, "> 0", value)

    def check_range(self, name: str, low: float, high: float, *, low_open: bool = False,
                    high_open: bool = False) -> None:
        """Field ``name`` must lie in ``[low, high]`` (either end open on request)."""
        value = getattr(self, name)
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
        if not ok:
            allowed = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            raise config_error(self, name, allowed, value)

    def check_device(self, name: str = "device") -> None:
        """Field ``name`` must name a torch device: ``cpu``, ``auto``, ``cuda`` or ``cuda:N`` (whether CUDA is
        there is checked when the agent trains or loads, by :func:`resolve_device`)."""
        value = getattr(self, name)
        if not isinstance(value, str) or not _DEVICE_PATTERN.fullmatch(value):
            raise config_error(self, name, "'cpu', 'auto', 'cuda' or 'cuda:N'", value)

    def check_layers(self, name: str) -> None:
        """Field ``name`` must be a non-empty tuple of layer widths ``>= 1``."""
        value = getattr(self, name)
        if len(value) == 0 or any(v < 1 for v in value):
            raise config_error(self, name, "a non-empty tuple of layer widths >= 1", value)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (JSON-serialisable; tuples are written as lists and read back by from_dict)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        return _from_plain(cls, data, lambda unknown, names: f"{cls.__name__} has no field(s) {unknown}; fields: "
                                                              f"{names}")


def read_agent_metadata(path: str | Path) -> dict[str, Any]:
    """The ``agent.json`` sidecar of a saved agent directory."""
    meta_path = Path(path) / METADATA_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path} is not a saved agent: {METADATA_FILE} is missing")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != _FORMAT_VERSION:
        raise ValueError(f"{meta_path}: unsupported agent format {meta.get('format')!r} (expected {_FORMAT_VERSION})")
    return meta


class Agent(ABC):
    """An RL-MTF agent. Subclass :class:`OfflineAgent` or :class:`OnlineAgent`, not this class.

    Class attributes every concrete agent declares (the registry reads them):

    * ``name``: registry name (``"bcq"``);
    * ``config_class``: its :class:`AgentConfig` subclass;
    * ``summary``: one line for ``mtf-agents list``.

    Subclasses implement ``_predict`` (raw actions on float32 observations), ``_save_payload`` /
    ``_load_payload``, and the training method of their kind. ``act`` validates inputs, clips to ``[-1, 1]`` and
    casts to float32, so every agent honours the same output contract. An agent is also a
    ``mtf_gym.policies.BatchPolicy``: ``agent(observations)`` is ``agent.act(observations)``.
    """

    name: ClassVar[str]
    kind: ClassVar[Kind]
    config_class: ClassVar[type[AgentConfig]]
    summary: ClassVar[str] = ""
    # True when the training loop calls ``self._checkpoint(done)`` as it goes (learning curves from one run);
    # otherwise ``fit(..., checkpoints=...)`` reports only the final budget.
    reports_checkpoints: ClassVar[bool] = False

    def __init__(self, config: AgentConfig | None = None) -> None:
        config = self.config_class() if config is None else config
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        self.config = config
        self.observation_dim: int | None = None
        self.action_dim: int | None = None
        self._pending_checkpoints: list[int] = []
        self._on_checkpoint: CheckpointCallback | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, config={self.config!r})"

    @property
    def is_fitted(self) -> bool:
        return self.action_dim is not None

    def _set_dims(self, observation_dim: int, action_dim: int) -> None:
        self.observation_dim, self.action_dim = int(observation_dim), int(action_dim)

    def _start_checkpoints(self, checkpoints: Sequence[int], on_checkpoint: CheckpointCallback | None,
                           n_steps: int) -> None:
        bad = [c for c in checkpoints if isinstance(c, bool) or int(c) != c or not 1 <= c <= n_steps]
        if bad:
            raise ValueError(f"checkpoints must be integers in [1, n_steps={n_steps}], got {bad}")
        if checkpoints and on_checkpoint is None:
            raise ValueError("checkpoints need an on_checkpoint callback")
        self._pending_checkpoints = sorted({int(c) for c in checkpoints})
        self._on_checkpoint = on_checkpoint

    def _checkpoint(self, done: int) -> None:
        """Training code calls this with the steps (or requests) done so far; the callback fires once per
        checkpoint reached, with the agent as it is now (it may act)."""
        while self._pending_checkpoints and done >= self._pending_checkpoints[0]:
            self._pending_checkpoints.pop(0)
            if self._on_checkpoint is not None:
                self._on_checkpoint(done, self)

    def _finish_checkpoints(self, done: int) -> None:
        """After training: the checkpoints not reported yet (an agent without checkpoint support, or budget
        overshoot) fire now, once, at the final budget."""
        if self._pending_checkpoints:
            self._pending_checkpoints = self._pending_checkpoints[-1:]
            self._checkpoint(max(done, self._pending_checkpoints[0]))
        self._on_checkpoint = None

    def _checked_observations(self, observations: np.ndarray) -> np.ndarray:
        """``observations`` as float32 ``(N, obs_dim)``, after the checks every agent's ``act`` makes."""
        if not self.is_fitted:
            raise RuntimeError(f"agent {self.name!r} is not trained: call fit/fit_online or load it first")
        obs = np.asarray(observations, dtype=np.float32)
        if obs.ndim != 2 or obs.shape[1] != self.observation_dim:
            raise ValueError(f"observations must have shape (N, {self.observation_dim}), got {obs.shape}")
        if not np.isfinite(obs).all():
            raise ValueError("observations must be finite")
        return obs

    def act(self, observations: np.ndarray) -> np.ndarray:
        """Deterministic actions ``(N, A)`` float32 in ``[-1, 1]`` for observations ``(N, obs_dim)``."""
        obs = self._checked_observations(observations)
        actions = np.asarray(self._predict(obs), dtype=np.float32)
        if actions.shape != (obs.shape[0], self.action_dim):
            raise RuntimeError(f"{self.name}: _predict returned shape {actions.shape}, "
                               f"expected {(obs.shape[0], self.action_dim)}")
        return np.clip(actions, -1.0, 1.0)

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        return self.act(observations)

    @abstractmethod
    def _predict(self, observations: np.ndarray) -> np.ndarray:
        """Actions for validated float32 observations ``(N, obs_dim)``."""

    @abstractmethod
    def _save_payload(self, path: Path) -> None:
        """Write the learned state into the (existing) directory ``path``."""

    @abstractmethod
    def _load_payload(self, path: Path, metadata: dict[str, Any]) -> None:
        """Restore the learned state written by :meth:`_save_payload`."""

    def save(self, path: str | Path) -> Path:
        """Save into directory ``path`` (created if needed): ``agent.json`` plus the agent's payload."""
        if not self.is_fitted:
            raise RuntimeError(f"agent {self.name!r} is not trained: nothing to save")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._save_payload(path)
        meta = {
            "format": _FORMAT_VERSION,
            "name": self.name,
            "kind": self.kind,
            "config": self.config.to_dict(),
            "observation_dim": self.observation_dim,
            "action_dim": self.action_dim,
        }
        # Written last, so a directory with agent.json always has a complete payload.
        (path / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None) -> Self:
        """Load an agent saved by :meth:`save` (``mtf_agents.registry.load_agent`` works without knowing the class).

        ``device``: where a torch agent's networks go (``cpu``, ``auto``, ``cuda``, ``cuda:N``), replacing the saved
        config's ``device``; a model trained on a GPU loads on a CPU-only machine with ``device="cpu"``. Agents
        without a ``device`` field ignore it.
        """
        path = Path(path)
        meta = read_agent_metadata(path)
        if meta["name"] != cls.name:
            raise ValueError(f"{path} holds agent {meta['name']!r}, not {cls.name!r}; use mtf_agents.load_agent(path)")
        config = cls.config_class.from_dict(meta["config"])
        if device is not None and any(f.name == "device" for f in dataclasses.fields(config)):
            config = dataclasses.replace(config, device=device)
        agent = cls(config)
        agent._set_dims(meta["observation_dim"], meta["action_dim"])
        agent._load_payload(path, meta)
        return agent


def _check_steps(n_steps: int) -> None:
    check_int("n_steps", n_steps, minimum=1)


def transition_arrays(data: TransitionData) -> dict[str, np.ndarray]:
    """The core arrays of a ``TransitionData`` as float32/bool, with their shapes checked.

    Returns ``observations (N, obs_dim)``, ``actions (N, A)``, ``rewards (N,)``, ``next_observations (N, obs_dim)``,
    ``terminals (N,)`` (user left: no bootstrap) and ``centres (N, A)`` (exploration centre ``mu_bp(s)``).
    """
    try:
        arrays = {
            "observations": np.asarray(data.observations, dtype=np.float32),
            "actions": np.asarray(data.actions, dtype=np.float32),
            "rewards": np.asarray(data.rewards, dtype=np.float32).reshape(-1),
            "next_observations": np.asarray(data.next_observations, dtype=np.float32),
            "terminals": np.asarray(data.terminals).reshape(-1).astype(bool),
            "centres": np.asarray(data.centres, dtype=np.float32),
        }
    except AttributeError as exc:
        raise TypeError(f"data must be a mtf_gym.datasets.TransitionData: {exc}") from exc
    obs, act = arrays["observations"], arrays["actions"]
    if obs.ndim != 2 or act.ndim != 2 or len(obs) != len(act) or len(obs) == 0:
        raise ValueError(f"data needs observations (N, obs_dim) and actions (N, A), N >= 1; got {obs.shape}, "
                         f"{act.shape}")
    n = len(obs)
    expected = {"rewards": (n,), "next_observations": obs.shape, "terminals": (n,), "centres": act.shape}
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise ValueError(f"data.{key} must have shape {shape}, got {arrays[key].shape}")
    return arrays


class OfflineAgent(Agent):
    """Learns from logged requests only (a ``mtf_gym.datasets.TransitionData``)."""

    kind: ClassVar[Kind] = "offline"

    def fit(self, data: TransitionData, n_steps: int, *, seed: int = 0, show_progress: bool = True,
            checkpoints: Sequence[int] = (), on_checkpoint: CheckpointCallback | None = None) -> dict[str, float]:
        """Train for ``n_steps`` gradient steps on ``data``; returns the final training metrics (losses).

        ``on_checkpoint(step, agent)`` is called once per step count in ``checkpoints`` (learning curves), during
        training if the agent ``reports_checkpoints``, else once at the end.
        """
        _check_steps(n_steps)
        arrays = transition_arrays(data)
        self._set_dims(arrays["observations"].shape[1], arrays["actions"].shape[1])
        self._start_checkpoints(checkpoints, on_checkpoint, int(n_steps))
        metrics = self._fit(data, int(n_steps), seed=int(seed), show_progress=show_progress)
        self._finish_checkpoints(int(n_steps))
        return metrics

    @abstractmethod
    def _fit(self, data: TransitionData, n_steps: int, *, seed: int, show_progress: bool) -> dict[str, float]:
        """Training proper, on validated data (``observation_dim`` / ``action_dim`` already set)."""

    def warm_start_from(self, previous: Agent) -> None:
        """Make the next :meth:`fit` start from ``previous``'s weights instead of a fresh initialisation (a
        progressive round's ``progressive_init="warm_start"``). Agents that cannot raise ``NotImplementedError``."""
        raise NotImplementedError(f"{self.name!r} cannot start training from another model's weights "
                                  "(progressive_init='warm_start' is available for integrated_rl)")

    def fit_online(self, env_config: AnyConfig, n_steps: int, *, seed: int = 0,
                   show_progress: bool = True) -> dict[str, float]:
        raise TypeError(f"{self.name!r} is an offline agent: train it with fit(data, n_steps) on a TransitionData")


class OnlineAgent(Agent):
    """Learns by interacting with ``MTFSession-v1`` or ``-v0`` (the config's type picks the version); ``n_steps``
    counts simulator requests (env steps)."""

    kind: ClassVar[Kind] = "online"

    def fit_online(self, env_config: AnyConfig, n_steps: int, *, seed: int = 0, show_progress: bool = True,
                   checkpoints: Sequence[int] = (),
                   on_checkpoint: CheckpointCallback | None = None) -> dict[str, float]:
        """Train in the simulator for about ``n_steps`` requests; returns final training metrics.

        ``checkpoints`` / ``on_checkpoint``: as for :meth:`OfflineAgent.fit`, counted in requests.
        """
        from mtf_gym.envs.session import observation_features
        from mtf_gym.envs.versions import SESSION_ENV_IDS

        _check_steps(n_steps)
        if type(env_config) not in SESSION_ENV_IDS.values():
            raise TypeError(f"env_config must be one of {[c.__name__ for c in SESSION_ENV_IDS.values()]}, got "
                            f"{type(env_config).__name__}")
        self._set_dims(len(observation_features(env_config)), env_config.action_dim)
        self._start_checkpoints(checkpoints, on_checkpoint, int(n_steps))
        metrics = self._fit_online(env_config, int(n_steps), seed=int(seed), show_progress=show_progress)
        self._finish_checkpoints(int(n_steps))
        return metrics

    @abstractmethod
    def _fit_online(self, env_config: AnyConfig, n_steps: int, *, seed: int,
                    show_progress: bool) -> dict[str, float]:
        """Training proper (``observation_dim`` / ``action_dim`` already set)."""

    def fit(self, data: TransitionData, n_steps: int, *, seed: int = 0, show_progress: bool = True) -> dict[str, float]:
        raise TypeError(f"{self.name!r} is an online agent: train it with fit_online(env_config, n_steps)")

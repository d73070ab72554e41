"""Name -> agent registry: the built-in zoo plus third-party plug-ins (entry-point group ``mtf_gym.agents``).

The registry is the only thing a harness needs::

    from mtf_agents.registry import get_registry, build_agent, load_agent
    for spec in get_registry():            # every agent, built-in and plug-in, with kind and source
        agent = build_agent(spec.name)      # or build_agent(spec.name, hidden_units=(64, 64))
        ...                                 # offline: agent.fit(data, n_steps); online: agent.fit_online(cfg, n_steps)
    agent = load_agent("runs/bcq")          # any saved agent

Built-in agents are referenced by import path and imported on first use, so listing the registry does not import
torch, d3rlpy or Stable-Baselines3. A plug-in is a distribution declaring, in group ``mtf_gym.agents``, either an
:class:`~mtf_agents.base.Agent` subclass (with class attributes ``name``, ``config_class``, ``kind``) or a callable
returning an :class:`AgentSpec`, an agent class, or a list of those. A plug-in that fails to load is reported
(``RuntimeWarning`` and ``get_registry().failed_plugins``) and skipped. See ``docs/plugins.md``.
"""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from mtf_agents.base import KINDS, Agent, AgentConfig, Kind, read_agent_metadata

__all__ = [
    "BUILTIN_AGENTS",
    "DEFAULT_ENV",
    "ENTRY_POINT_GROUP",
    "FUSION_ENV",
    "SLATE_ENV",
    "AgentRegistry",
    "AgentSpec",
    "FailedPlugin",
    "build_agent",
    "discover",
    "env_family",
    "get_registry",
    "load_agent",
]

ENTRY_POINT_GROUP = "mtf_gym.agents"
# Fusion agents play every MTFSession version (the action layout, 2T fusion weights in [-1, 1], is the same in
# each); slate agents play MTFSlate-v0. An agent class declares one of these as ``env_id``.
FUSION_ENV = "MTFSession"
DEFAULT_ENV = FUSION_ENV
SLATE_ENV = "MTFSlate-v0"


def env_family(env_id: str) -> str:
    """What an agent playing ``env_id`` plays: ``"MTFSession"`` for any ``MTFSession-vN`` (and for the family name
    itself), ``env_id`` otherwise."""
    return FUSION_ENV if env_id == FUSION_ENV or env_id.startswith(FUSION_ENV + "-v") else env_id
BUILTIN_SOURCE = "builtin"


@dataclass(frozen=True)
class AgentSpec:
    """One registry entry.

    Attributes:
        name: registry name, used by ``build_agent`` and stored in saved agents.
        kind: ``"offline"`` (``fit(data, n_steps)``) or ``"online"`` (``fit_online(env_config, n_steps)``).
        source: ``"builtin"`` or the plug-in's distribution name.
        summary: one line for ``mtf-agents list``.
        target: the agent class, or its import path ``"module:Class"`` (resolved on first use).
        env: what the agent plays: ``"MTFSession"`` (fusion weights, every ``MTFSession`` version; the default)
            or ``"MTFSlate-v0"`` (pages of item ids; the slate agents of ``mtf_agents.slate``). An agent class declares
            it as ``env_id`` (absent: ``"MTFSession"``; a versioned id such as ``"MTFSession-v0"`` means the same).
    """

    name: str
    kind: Kind
    source: str
    summary: str
    target: str | type[Agent]
    env: str = DEFAULT_ENV

    def plays(self, env_id: str) -> bool:
        """Whether the agent acts in ``env_id`` (a fusion agent plays every ``MTFSession`` version)."""
        return env_family(self.env) == env_family(env_id)

    @property
    def agent_class(self) -> type[Agent]:
        cls = self.target
        if isinstance(cls, str):
            module_name, _, attr = cls.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise ImportError(
                    f"agent {self.name!r} needs {exc.name or module_name!r}, which is not installed "
                    "(pip install 'mtf-gym[agents]')"
                ) from exc
            cls = getattr(module, attr)
        _check_agent_class(cls, self.name, self.kind)
        if env_family(getattr(cls, "env_id", DEFAULT_ENV)) != env_family(self.env):
            raise TypeError(f"agent {self.name!r}: registered for env {self.env!r} but {cls.__qualname__} plays "
                            f"{getattr(cls, 'env_id', DEFAULT_ENV)!r}")
        return cls

    @property
    def config_class(self) -> type[AgentConfig]:
        return self.agent_class.config_class

    @classmethod
    def from_agent_class(cls, agent_class: type[Agent], source: str) -> AgentSpec:
        """Spec of an agent class that declares ``name``, ``kind``, ``config_class`` (and optionally ``summary``)."""
        if not (isinstance(agent_class, type) and issubclass(agent_class, Agent)):
            raise TypeError(f"expected a subclass of mtf_agents.base.Agent, got {agent_class!r}")
        name = getattr(agent_class, "name", None)
        if not isinstance(name, str):
            raise TypeError(f"{agent_class.__qualname__} must declare a class attribute name: str")
        kind = getattr(agent_class, "kind", None)
        _check_agent_class(agent_class, name, kind)
        return cls(name=name, kind=kind, source=source, summary=agent_class.summary, target=agent_class,
                   env=getattr(agent_class, "env_id", DEFAULT_ENV))


def _check_agent_class(cls: object, name: str, kind: object) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise TypeError(f"agent {name!r}: {cls!r} is not a subclass of mtf_agents.base.Agent")
    if getattr(cls, "name", None) != name:  # saved agents record cls.name; load_agent looks it up
        raise TypeError(f"agent {name!r}: {cls.__qualname__}.name must be {name!r}, got {getattr(cls, 'name', None)!r}")
    if getattr(cls, "__abstractmethods__", None):
        raise TypeError(f"agent {name!r}: {cls.__qualname__} leaves {sorted(cls.__abstractmethods__)} unimplemented")
    if kind not in KINDS or cls.kind != kind:
        raise TypeError(f"agent {name!r}: kind must be one of {KINDS} and match {cls.__qualname__}.kind, "
                        f"got {kind!r} / {getattr(cls, 'kind', None)!r}")
    config_class = getattr(cls, "config_class", None)
    if not (isinstance(config_class, type) and issubclass(config_class, AgentConfig)
            and dataclasses.is_dataclass(config_class) and config_class.__dataclass_params__.frozen):
        raise TypeError(f"agent {name!r}: {cls.__qualname__}.config_class must be a frozen dataclass subclassing "
                        f"mtf_agents.base.AgentConfig, got {config_class!r}")


def _builtin(name: str, kind: Kind, target: str, summary: str, env: str = DEFAULT_ENV) -> AgentSpec:
    return AgentSpec(name=name, kind=kind, source=BUILTIN_SOURCE, summary=summary, target=target, env=env)


BUILTIN_AGENTS: tuple[AgentSpec, ...] = (
    _builtin("bcq", "offline", "mtf_agents.d3rlpy_agents:BCQAgent", "BCQ (d3rlpy): the paper's BatchRL-MTF baseline"),
    _builtin("cql", "offline", "mtf_agents.d3rlpy_agents:CQLAgent", "CQL with a SAC actor (d3rlpy)"),
    _builtin("iql", "offline", "mtf_agents.d3rlpy_agents:IQLAgent", "Implicit Q-learning (d3rlpy)"),
    _builtin("ddpg", "offline", "mtf_agents.d3rlpy_agents:DDPGAgent", "DDPG trained offline (d3rlpy)"),
    _builtin("td3bc", "offline", "mtf_agents.d3rlpy_agents:TD3PlusBCAgent", "TD3+BC (d3rlpy)"),
    _builtin("integrated_rl", "offline", "mtf_agents.d3rlpy_agents:IntegratedRLAgent",
             "IntegratedRL-MTF (arXiv 2404.17589) on banded datasets"),
    _builtin("ddpg_va", "offline", "mtf_agents.ddpg_va:DDPGVAAgent",
             "Meituan's DDPG with V(s)+A(s,a) critic and shared state encoder"),
    _builtin("es", "online", "mtf_agents.es:ESAgent",
             "CMA-ES over a linear profile->fusion policy (deployed baseline)"),
    _builtin("sac", "online", "mtf_agents.sb3_agents:SACAgent", "SAC in the simulator (Stable-Baselines3)"),
    _builtin("td3", "online", "mtf_agents.sb3_agents:TD3Agent", "TD3 in the simulator (Stable-Baselines3)"),
    _builtin("ppo", "online", "mtf_agents.sb3_agents:PPOAgent", "PPO in the simulator (Stable-Baselines3)"),
    # Slate agents: they play MTFSlate-v0 (pages of item ids), fit_online(env or env id, n_steps).
    _builtin("wolpertinger", "online", "mtf_agents.slate.wolpertinger:WolpertingerAgent",
             "Wolpertinger: DDPG proto-action + kNN over item embeddings (slate)", env=SLATE_ENV),
    _builtin("fcpo", "online", "mtf_agents.slate.fcpo:FCPOAgent",
             "Matrix reconstruction (FCPO): K x d Gaussian against the item embeddings (slate)", env=SLATE_ENV),
    _builtin("tpgr", "online", "mtf_agents.slate.tpgr:TPGRAgent",
             "TPGR: softmax policies on a balanced clustering tree of items (slate)", env=SLATE_ENV),
)


@dataclass(frozen=True)
class FailedPlugin:
    """A plug-in entry point that could not be registered, and why."""

    entry_point: str  # "name = module:attr"
    distribution: str
    error: str


def _specs_from_entry_point(ep: metadata.EntryPoint, source: str) -> list[AgentSpec]:
    obj = ep.load()
    if isinstance(obj, type):
        produced: Any = obj
    elif callable(obj):
        produced = obj()
    else:
        raise TypeError(f"entry point value must be an Agent subclass or a callable, got {type(obj).__name__}")
    items = list(produced) if isinstance(produced, (list, tuple)) else [produced]
    specs = []
    for item in items:
        if isinstance(item, AgentSpec):
            _check_agent_class(item.agent_class, item.name, item.kind)
            specs.append(dataclasses.replace(item, source=source))
        else:
            specs.append(AgentSpec.from_agent_class(item, source))
    return specs


class AgentRegistry:
    """An immutable view of the registered agents (iterate for :class:`AgentSpec` in name order)."""

    def __init__(self, specs: Iterable[AgentSpec], failed_plugins: Iterable[FailedPlugin] = ()) -> None:
        self._specs: dict[str, AgentSpec] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"agent name {spec.name!r} registered twice")
            self._specs[spec.name] = spec
        self.failed_plugins: tuple[FailedPlugin, ...] = tuple(failed_plugins)

    def names(self, env: str | None = None) -> list[str]:
        """Registered names, sorted; with ``env``, only the agents that play that environment id."""
        return sorted(n for n, spec in self._specs.items() if env is None or spec.plays(env))

    def __iter__(self) -> Iterator[AgentSpec]:
        return (self._specs[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def get(self, name: str) -> AgentSpec:
        """The spec of ``name``; an unknown name raises ``ValueError`` listing the known ones."""
        try:
            return self._specs[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(self.names())}") from None

    __getitem__ = get

    def make_config(self, name: str, **overrides: Any) -> AgentConfig:
        """``name``'s config with ``overrides``; an unknown field or a bad value raises ``ValueError`` naming it."""
        config_class = self.get(name).config_class
        fields = [f.name for f in dataclasses.fields(config_class)]
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise ValueError(f"agent {name!r} ({config_class.__name__}) has no config field(s) {unknown}; "
                             f"fields: {fields}")
        return config_class(**overrides)

    def build(self, name: str, **overrides: Any) -> Agent:
        """A fresh, untrained agent ``name`` with config ``overrides``."""
        config = self.make_config(name, **overrides)
        return self.get(name).agent_class(config)

    def load(self, path: str | Path, *, device: str | None = None) -> Agent:
        """Rebuild a saved agent from its directory, whatever its class (``device``: see ``Agent.load``)."""
        name = read_agent_metadata(path)["name"]
        return self.get(name).agent_class.load(path, device=device)


def discover(group: str = ENTRY_POINT_GROUP) -> AgentRegistry:
    """Build a registry from the built-ins and the entry points currently visible in ``group``."""
    specs = list(BUILTIN_AGENTS)
    taken = {spec.name: spec.source for spec in specs}
    failed = []
    for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
        source = ep.dist.name if ep.dist is not None else "unknown"
        label = f"{ep.name} = {ep.value}"
        try:
            new = _specs_from_entry_point(ep, source)
            for spec in new:
                if spec.name in taken:
                    raise ValueError(f"agent name {spec.name!r} is already registered by {taken[spec.name]!r}")
        except Exception as exc:  # a broken plug-in must not take the zoo down with it
            failed.append(FailedPlugin(entry_point=label, distribution=source, error=f"{type(exc).__name__}: {exc}"))
            warnings.warn(f"mtf_gym.agents plug-in {label!r} from {source!r} skipped: {type(exc).__name__}: {exc}",
                          RuntimeWarning, stacklevel=2)
            continue
        for spec in new:
            taken[spec.name] = source
        specs.extend(new)
    return AgentRegistry(specs, failed)


_REGISTRY: AgentRegistry | None = None


def get_registry(*, refresh: bool = False) -> AgentRegistry:
    """The process-wide registry, discovered once (``refresh=True`` re-reads the installed plug-ins)."""
    global _REGISTRY
    if _REGISTRY is None or refresh:
        _REGISTRY = discover()
    return _REGISTRY


def build_agent(name: str, **config_overrides: Any) -> Agent:
    """``get_registry().build(name, **config_overrides)``."""
    return get_registry().build(name, **config_overrides)


def load_agent(path: str | Path, *, device: str | None = None) -> Agent:
    """``get_registry().load(path)``: any saved agent, built-in or plug-in (``device`` replaces the saved one, e.g.
    ``"cpu"`` for a model trained on a GPU)."""
    return get_registry().load(path, device=device)


def __getattr__(name: str) -> Any:
    # ``mtf_agents.registry.failed_plugins``: the current registry's failures, without a stale module-level copy.
    if name == "failed_plugins":
        return get_registry().failed_plugins
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

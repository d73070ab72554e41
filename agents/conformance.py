"""The agent conformance checker: run it on your agent before you publish a plug-in (as Gymnasium's
``gymnasium.utils.env_checker.check_env`` is run on an env).

    from mtf_agents.conformance import check_agent
    check_agent("elite_constant", bad_value=("elite_fraction", 0.0))

:func:`check_agent` builds the registered agent, trains it briefly (offline on a few hundred logged requests, or a
few online requests), and checks what the harness relies on:

* the registry entry and the agent agree (name, kind, a typed frozen ``AgentConfig``);
* an untrained agent refuses to act; the wrong kind of training (``fit`` on an online agent, ``fit_online`` on an
  offline one) raises ``TypeError``; ``fit`` returns a dict of floats;
* ``act`` returns float32 actions of shape ``(N, action_dim)`` in ``[-1, 1]``, deterministically, equal to
  ``agent(obs)`` (an agent is a batch policy), and rejects observations of the wrong width with ``ValueError``;
* ``save`` -> ``load_agent`` rebuilds the same class and config, acting identically;
* nothing is written to the working directory (e.g. d3rlpy's ``d3rlpy_logs/``);
* an unknown config field, a wrongly typed value for each field, and (if given) an out-of-range value raise
  ``ValueError`` naming the field (``"<Config>.<field> must be ..."``).

A failed check raises :class:`ConformanceError` saying which check and why. The repository's own tests run the same
function on every built-in agent and on the example plug-in (``tests/test_agents.py``, ``tests/test_plugins.py``).
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mtf_agents.base import SHARED_SETTING_NAMES, AgentConfig, SharedSettings
from mtf_agents.registry import DEFAULT_ENV, build_agent, env_family, get_registry, load_agent

if TYPE_CHECKING:
    from mtf_gym.datasets import TransitionData
    from mtf_gym.envs.versions import AnyConfig

__all__ = ["ConformanceError", "check_agent", "check_config_errors", "tiny_dataset"]

OFFLINE_STEPS = 20
ONLINE_STEPS = 64


class ConformanceError(AssertionError):
    """An agent does not meet the agent interface; the message names the check."""


def tiny_dataset(env_config: AnyConfig | None = None, sessions: int = 64) -> TransitionData:
    """A few hundred logged requests: ``sessions`` sessions of the baseline fusion with the paper's +-0.15 uniform
    exploration (seed 0), in ``env_config``'s version (default ``MTFSession-v1``)."""
    from mtf_gym.datasets import RecipeConfig, collect_recipe
    from mtf_gym.envs.versions import DEFAULT_SESSION_ENV_ID, make_env_config

    config = RecipeConfig("uniform", sessions=sessions, seed=0, num_envs=sessions,
                          env=env_config or make_env_config(DEFAULT_SESSION_ENV_ID))
    return collect_recipe(config, progress=False)


def _check_shared_settings(config_class: type[AgentConfig]) -> None:
    """Every shared setting a config declares is a :class:`SharedSettings` name and a field of the config, and the
    config builds with each of them set to a typical value."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    for name in config_class.shared_settings:
        if name not in SHARED_SETTING_NAMES:
            raise _fail("shared settings", f"{config_class.__name__}.shared_settings names {name!r}, which is not "
                                           f"a shared setting ({list(SHARED_SETTING_NAMES)})")
        if name not in fields:
            raise _fail("shared settings", f"{config_class.__name__}.shared_settings names {name!r}, which is not "
                                           "a field of the config")
    typical = SharedSettings(hidden_units=(32, 32), batch_size=32, gamma=0.95, device="cpu", compile_graph=True)
    config = config_class.sharing(typical)
    for name in config_class.shared_settings:
        if getattr(config, name) != getattr(typical, name):
            raise _fail("shared settings", f"{config_class.__name__}.sharing did not set {name!r}")


def _fail(check: str, why: str) -> ConformanceError:
    return ConformanceError(f"{check}: {why}")


def _expect(error: type[BaseException], pattern: str, call: Callable[[], Any], check: str) -> None:
    try:
        call()
    except error as exc:
        if not re.search(pattern, str(exc)):
            raise _fail(check, f"raised {type(exc).__name__}({str(exc)!r}), whose message does not match "
                               f"{pattern!r}") from exc
        return
    except Exception as exc:
        raise _fail(check, f"expected {error.__name__}, got {type(exc).__name__}: {exc}") from exc
    raise _fail(check, f"expected {error.__name__}, nothing was raised")


def check_config_errors(name: str, bad_value: tuple[str, Any] | None = None) -> None:
    """Unknown fields, wrongly typed values and (optionally) one out-of-range value raise ``ValueError`` naming the
    field."""
    _expect(ValueError, "no_such_field", lambda: build_agent(name, no_such_field=1), "unknown config field")
    config_class = get_registry().get(name).config_class
    for f in dataclasses.fields(config_class):
        # No config field type accepts a bare object.
        _expect(ValueError, rf"\.{f.name} must be", lambda f=f: build_agent(name, **{f.name: object()}),
                f"wrongly typed config field {f.name!r}")
    if bad_value is not None:
        field_name, value = bad_value
        _expect(ValueError, rf"\.{field_name} must be", lambda: build_agent(name, **{field_name: value}),
                f"out-of-range config field {field_name!r}={value!r}")


def check_agent(
    name: str,
    overrides: dict[str, Any] | None = None,
    *,
    data: TransitionData | None = None,
    env_config: AnyConfig | None = None,
    bad_value: tuple[str, Any] | None = None,
) -> None:
    """Check the registered agent ``name`` against the agent interface (see the module docstring).

    Args:
        name: a name in ``mtf_agents.registry.get_registry()`` (install your plug-in first) of an agent that plays
            ``MTFSession-v0`` (``ValueError`` for another env, e.g. the slate agents of ``MTFSlate-v0``).
        overrides: config overrides for a small, fast build (e.g. ``{"hidden_units": (32, 32)}``).
        data: offline training data (default :func:`tiny_dataset`); its observations are also used to act.
        env_config: the env of online training (default: the data's env version and config with
            ``max_requests=8``, short sessions); it must be the version ``data`` was collected in.
        bad_value: one out-of-range ``(field, value)`` the config must reject, if the config has range checks.

    Raises:
        ConformanceError: naming the failed check.
    """
    spec = get_registry().get(name)
    if env_family(spec.env) != DEFAULT_ENV:
        raise ValueError(f"check_agent checks agents of {DEFAULT_ENV} (fusion weights); {name!r} plays {spec.env!r} "
                         "(the slate agents' conformance test is tests/test_slate_agents.py)")
    agent = build_agent(name, **(overrides or {}))
    if agent.name != name or agent.kind != spec.kind or not isinstance(agent.config, AgentConfig):
        raise _fail("registry entry", f"built {type(agent).__name__} with name {agent.name!r}, kind {agent.kind!r}, "
                                      f"config {type(agent.config).__name__}; the registry says {name!r}, "
                                      f"{spec.kind!r}, an AgentConfig")
    if agent.is_fitted:
        raise _fail("untrained agent", "is_fitted is True before fit")
    _check_shared_settings(type(agent.config))
    data = data if data is not None else tiny_dataset()
    from mtf_gym.envs.session import observation_features

    online_env = env_config or dataclasses.replace(data.env_config(), max_requests=8)
    if len(observation_features(online_env)) != data.obs_dim:
        raise ValueError(f"env_config ({type(online_env).__name__}) observes {len(observation_features(online_env))} "
                         f"features but data has {data.obs_dim}: give both of one env version")
    obs = np.asarray(data.observations[:64], dtype=np.float32)
    _expect(RuntimeError, "not trained", lambda: agent.act(obs[:2]), "act before training")

    cwd_before = {p.name for p in Path.cwd().iterdir()}
    if spec.kind == "offline":
        _expect(TypeError, "offline", lambda: agent.fit_online(online_env, ONLINE_STEPS), "fit_online on offline")
        metrics = agent.fit(data, n_steps=OFFLINE_STEPS, seed=0, show_progress=False)
    else:
        _expect(TypeError, "online", lambda: agent.fit(data, OFFLINE_STEPS), "fit on online")
        metrics = agent.fit_online(online_env, n_steps=ONLINE_STEPS, seed=0, show_progress=False)
    if not isinstance(metrics, dict) or not all(isinstance(v, float) for v in metrics.values()):
        raise _fail("training metrics", f"fit must return a dict of floats, got {metrics!r}")

    actions = agent.act(obs)
    if actions.shape != (len(obs), data.action_dim) or actions.dtype != np.float32:
        raise _fail("act", f"expected float32 actions of shape {(len(obs), data.action_dim)}, got "
                           f"{actions.dtype} {actions.shape}")
    if not (np.isfinite(actions).all() and (np.abs(actions) <= 1.0).all()):
        raise _fail("act", "actions must be finite and in [-1, 1]")
    if not np.array_equal(agent.act(obs), actions):
        raise _fail("act", "not deterministic: the same observations gave different actions")
    if not np.array_equal(agent(obs), actions):
        raise _fail("batch policy", "agent(obs) differs from agent.act(obs)")
    _expect(ValueError, "shape", lambda: agent.act(obs[:, :-1]), "act on observations of the wrong width")

    with tempfile.TemporaryDirectory(prefix="mtf-conformance-") as tmp:
        try:
            saved = agent.save(Path(tmp) / name)  # a temporary directory, removed afterwards
            loaded = load_agent(saved)
            loaded_actions = loaded.act(obs)
        except Exception as exc:
            raise _fail("save/load", f"{type(exc).__name__}: {exc}") from exc
        if type(loaded) is not type(agent) or loaded.config != agent.config:
            raise _fail("save/load", f"loaded {type(loaded).__name__} with {loaded.config}, saved "
                                     f"{type(agent).__name__} with {agent.config}")
        if not np.array_equal(loaded_actions, actions):
            raise _fail("save/load", "the loaded agent acts differently")
    written = sorted({p.name for p in Path.cwd().iterdir()} - cwd_before)
    if written:
        raise _fail("working directory", f"the agent wrote {written} into the working directory")

    check_config_errors(name, bad_value)

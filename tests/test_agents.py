"""Conformance of every registered agent (built-in and plug-in) to the agent interface, plus registry and CLI checks.

One shared test, :func:`check_agent_conformance`, runs per agent: build, train briefly (offline on a few hundred
logged requests, or a few online steps), act (shape, range, dtype, determinism), save -> load (identical actions),
and reject bad configs with errors naming the field. Networks and budgets are tiny so the file stays fast on CPU.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.base import AgentConfig
from agents.registry import BUILTIN_AGENTS, DEFAULT_ENV, build_agent, get_registry, load_agent
from mtf_gym import BaselinePolicy, MTFSessionConfig
from mtf_gym.datasets import RecipeConfig, TransitionData, collect_recipe

ENV_CONFIG = MTFSessionConfig()
ONLINE_ENV_CONFIG = MTFSessionConfig(max_requests=8)  # short sessions keep online smoke training fast
OFFLINE_STEPS = 20
ONLINE_STEPS = 64
TINY_NET = {"hidden_units": (32, 32), "batch_size": 32}
# Smallest settings that still exercise every code path of each built-in.
TINY: dict[str, dict[str, Any]] = {
    "bcq": {**TINY_NET, "n_action_samples": 4},
    "cql": {**TINY_NET, "n_action_samples": 4},
    "iql": TINY_NET,
    "ddpg": TINY_NET,
    "td3bc": TINY_NET,
    "integrated_rl": {**TINY_NET, "n_critics": 3},
    "ddpg_va": {**TINY_NET, "head_units": 16, "pretrain_steps": 5},
    "es": {"population_size": 4, "users_per_generation": 4},
    "sac": {**TINY_NET, "learning_starts": 16, "buffer_size": 1_000},
    "td3": {**TINY_NET, "learning_starts": 16, "buffer_size": 1_000},
    "ppo": {"hidden_units": (32, 32), "batch_size": 16, "n_envs": 2, "rollout_steps": 16, "n_epochs": 2},
}
# One out-of-range value per built-in (type errors are checked generically for every field of every agent).
BAD_VALUES: dict[str, tuple[str, Any]] = {
    "bcq": ("batch_size", 0),
    "cql": ("conservative_weight", -1.0),
    "iql": ("expectile", 1.0),
    "ddpg": ("gamma", 1.5),
    "td3bc": ("tau", 0.0),
    "integrated_rl": ("beta", 0.0),
    "ddpg_va": ("max_deviation", 0.0),
    "es": ("population_size", 1),
    "sac": ("ent_coef", "sometimes"),
    "td3": ("policy_delay", 0),
    "ppo": ("rollout_steps", 1),
}


def collect_tiny_data() -> TransitionData:
    """A few hundred logged requests: 64 sessions of the baseline fusion with the paper's +-0.15 uniform noise."""
    return collect_recipe(RecipeConfig("uniform", sessions=64, seed=0, num_envs=64, env=ENV_CONFIG), progress=False)


@pytest.fixture(scope="module")
def tiny_data() -> TransitionData:
    return collect_tiny_data()


# ----------------------------------------------------------------------------------------------------------------------
# The shared conformance check
# ----------------------------------------------------------------------------------------------------------------------
def _wrong_type_value() -> object:
    return object()  # no config field type accepts a bare object


def check_config_errors(name: str, bad_value: tuple[str, Any] | None = None) -> None:
    """Unknown fields, wrongly typed values and (optionally) one out-of-range value all raise ValueError naming it."""
    with pytest.raises(ValueError, match="no_such_field"):
        build_agent(name, no_such_field=1)
    config_class = get_registry().get(name).config_class
    for f in dataclasses.fields(config_class):
        with pytest.raises(ValueError, match=rf"\.{f.name} must be"):
            build_agent(name, **{f.name: _wrong_type_value()})
    if bad_value is not None:
        field_name, value = bad_value
        with pytest.raises(ValueError, match=rf"\.{field_name} must be"):
            build_agent(name, **{field_name: value})


def check_agent_conformance(name: str, overrides: dict[str, Any], data: TransitionData, tmp_path: Path,
                            bad_value: tuple[str, Any] | None = None) -> None:
    spec = get_registry().get(name)
    agent = build_agent(name, **overrides)
    assert agent.name == name and agent.kind == spec.kind and isinstance(agent.config, AgentConfig)
    assert not agent.is_fitted
    with pytest.raises(RuntimeError, match="not trained"):
        agent.act(data.observations[:2])

    if spec.kind == "offline":
        with pytest.raises(TypeError, match="offline"):
            agent.fit_online(ONLINE_ENV_CONFIG, ONLINE_STEPS)
        metrics = agent.fit(data, n_steps=OFFLINE_STEPS, seed=0, show_progress=False)
    else:
        with pytest.raises(TypeError, match="online"):
            agent.fit(data, OFFLINE_STEPS)
        metrics = agent.fit_online(ONLINE_ENV_CONFIG, n_steps=ONLINE_STEPS, seed=0, show_progress=False)
    assert isinstance(metrics, dict) and all(isinstance(v, float) for v in metrics.values())

    obs = data.observations[:64]
    actions = agent.act(obs)
    assert actions.shape == (len(obs), ENV_CONFIG.action_dim)
    assert actions.dtype == np.float32
    assert np.isfinite(actions).all() and (np.abs(actions) <= 1.0).all()
    np.testing.assert_array_equal(agent.act(obs), actions)  # deterministic
    np.testing.assert_array_equal(agent(obs), actions)  # an agent is a BatchPolicy
    with pytest.raises(ValueError, match="shape"):
        agent.act(obs[:, :-1])

    saved = agent.save(tmp_path / name)
    loaded = load_agent(saved)
    assert type(loaded) is type(agent) and loaded.config == agent.config
    np.testing.assert_array_equal(loaded.act(obs), actions)
    assert not (Path.cwd() / "d3rlpy_logs").exists()

    check_config_errors(name, bad_value)


# Agents of MTFSession-v0; the slate agents (MTFSlate-v0) have their conformance test in test_slate_agents.py.
@pytest.mark.parametrize("name", get_registry().names(env=DEFAULT_ENV))
def test_agent_conformance(name: str, tiny_data: TransitionData, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything an agent writes to the working directory would show up here
    check_agent_conformance(name, TINY.get(name, {}), tiny_data, tmp_path, BAD_VALUES.get(name))
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


# ----------------------------------------------------------------------------------------------------------------------
# Registry, behaviour-specific and CLI checks
# ----------------------------------------------------------------------------------------------------------------------
def test_registry_lists_builtins_without_importing_heavy_libraries() -> None:
    import subprocess

    code = ("import sys; from agents.registry import get_registry; r = get_registry(); "
            "print(sorted(r.names())); print(sorted(m for m in ('torch', 'd3rlpy', 'stable_baselines3', 'cma') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.splitlines()
    assert set(eval(out[0])) >= {spec.name for spec in BUILTIN_AGENTS}
    assert out[1] == "[]"
    assert {spec.name for spec in BUILTIN_AGENTS if spec.env == DEFAULT_ENV} == set(TINY) == set(BAD_VALUES)


def test_unknown_agent_lists_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown agent 'nope'; known agents: .*bcq.*integrated_rl"):
        build_agent("nope")


def test_registry_specs_match_classes() -> None:
    for spec in BUILTIN_AGENTS:
        cls = spec.agent_class
        assert cls.name == spec.name and cls.kind == spec.kind and spec.config_class is cls.config_class
        assert dataclasses.is_dataclass(cls.config_class) and cls.config_class.__dataclass_params__.frozen


def test_shared_defaults_are_fair() -> None:
    """Every neural agent defaults to 256x256 and gamma 0.9; d3rlpy agents also share batch 256."""
    for spec in BUILTIN_AGENTS:
        config = spec.config_class()
        if hasattr(config, "hidden_units"):
            assert config.hidden_units == (256, 256), spec.name
        if hasattr(config, "gamma"):
            assert config.gamma == 0.9, spec.name
        if spec.target.startswith("agents.d3rlpy_agents"):
            assert config.batch_size == 256 and config.to_d3rlpy().gamma == 0.9, spec.name


def test_ddpg_va_untrained_actor_is_the_baseline(tiny_data: TransitionData) -> None:
    agent = build_agent("ddpg_va", **{**TINY["ddpg_va"], "pretrain_steps": 0, "value_warmup_fraction": 0.99})
    agent.fit(tiny_data, n_steps=OFFLINE_STEPS, show_progress=False)  # warm-up only: the actor never moves
    expected = np.broadcast_to(BaselinePolicy(ENV_CONFIG).action, (10, ENV_CONFIG.action_dim))
    np.testing.assert_allclose(agent.act(tiny_data.observations[:10]), expected, atol=1e-6)


def test_es_stays_within_action_scale_of_baseline() -> None:
    agent = build_agent("es", **{**TINY["es"], "action_scale": 1e-3})
    agent.fit_online(ONLINE_ENV_CONFIG, n_steps=1, show_progress=False)  # one generation
    obs = np.random.default_rng(0).uniform(0, 1, size=(16, 18)).astype(np.float32)
    baseline = BaselinePolicy(ONLINE_ENV_CONFIG)(obs)
    assert np.abs(agent.act(obs) - baseline).max() <= 1e-3 + 1e-6


def test_es_generation_uses_common_random_numbers() -> None:
    from agents.es import session_returns

    policy = BaselinePolicy(ONLINE_ENV_CONFIG)
    first, requests = session_returns(policy, ONLINE_ENV_CONFIG, np.array([5, 6, 7]))
    again, _ = session_returns(policy, ONLINE_ENV_CONFIG, np.array([7, 5, 7]))
    np.testing.assert_array_equal(again, first[[2, 0, 2]])
    assert 3 <= requests <= 3 * ONLINE_ENV_CONFIG.max_requests


def test_cli_lists_agents(capsys: pytest.CaptureFixture[str]) -> None:
    from agents.cli import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for spec in BUILTIN_AGENTS:
        assert spec.name in out
    assert "offline" in out and "online" in out and "builtin" in out
    assert main(["show", "es"]) == 0
    assert "population_size" in capsys.readouterr().out

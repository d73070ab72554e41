"""Conformance of every registered agent (built-in and plug-in) to the agent interface, plus registry and CLI checks.

One shared check runs per agent, :func:`mtf_agents.conformance.check_agent` (the installed checker that plug-in authors
run too): build, train briefly (offline on a few hundred logged requests, or a few online steps), act (shape, range,
dtype, determinism), save -> load (identical actions), and reject bad configs with errors naming the field. Networks
and budgets are tiny so the file stays fast on CPU.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mtf_agents.conformance import ConformanceError, check_agent, tiny_dataset
from mtf_agents.registry import BUILTIN_AGENTS, DEFAULT_ENV, build_agent, get_registry
from mtf_gym import BaselinePolicy, MTFSessionConfig, MTFSessionV1Config
from mtf_gym.datasets import TransitionData
from mtf_gym.envs.session import observation_features

# MTFSession-v1, the default version; test_agents_play_v0_too checks the first version.
ENV_CONFIG = MTFSessionV1Config()
ONLINE_ENV_CONFIG = MTFSessionV1Config(max_requests=8)  # short sessions keep online smoke training fast
OFFLINE_STEPS = 20
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
    return tiny_dataset(ENV_CONFIG)


@pytest.fixture(scope="module")
def tiny_data() -> TransitionData:
    return collect_tiny_data()


# ----------------------------------------------------------------------------------------------------------------------
# The shared conformance check: mtf_agents.conformance.check_agent, the checker plug-in authors run too
# ----------------------------------------------------------------------------------------------------------------------
# Agents of MTFSession-v0; the slate agents (MTFSlate-v0) have their conformance test in test_slate_agents.py.
@pytest.mark.parametrize("name", get_registry().names(env=DEFAULT_ENV))
def test_agent_conformance(name: str, tiny_data: TransitionData, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything an agent writes to the working directory would show up here
    check_agent(name, TINY.get(name, {}), data=tiny_data, env_config=ONLINE_ENV_CONFIG,
                bad_value=BAD_VALUES.get(name))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["iql", "es", "sac"])
def test_agents_play_v0_too(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Agents are version-agnostic: the same conformance check on MTFSession-v0 data and env (18 features).
    monkeypatch.chdir(tmp_path)
    data = tiny_dataset(MTFSessionConfig(), sessions=32)
    assert data.obs_dim == 18 and data.env_id == "MTFSession-v0"
    check_agent(name, TINY[name], data=data, env_config=MTFSessionConfig(max_requests=8))
    with pytest.raises(ValueError, match="observes 19 features but data has 18"):
        check_agent(name, TINY[name], data=data, env_config=ONLINE_ENV_CONFIG)


def test_conformance_checker_catches_a_broken_agent(tiny_data: TransitionData, monkeypatch: pytest.MonkeyPatch) -> None:
    # The checker must be able to fail: an agent whose actions change from call to call, and one whose loaded copy
    # acts differently, are both reported with the check's name.
    from mtf_agents.d3rlpy_agents import TD3PlusBCAgent

    calls = iter(range(1_000_000))
    original = TD3PlusBCAgent._predict
    monkeypatch.setattr(TD3PlusBCAgent, "_predict", lambda self, obs: original(self, obs) * (0.5 if next(calls) % 2
                                                                                              else 1.0))
    with pytest.raises(ConformanceError, match="not deterministic"):
        check_agent("td3bc", TINY["td3bc"], data=tiny_data)
    monkeypatch.setattr(TD3PlusBCAgent, "_predict", original)
    monkeypatch.setattr(TD3PlusBCAgent, "_load_payload", lambda self, path, metadata: None)
    with pytest.raises(ConformanceError, match="save/load"):
        check_agent("td3bc", TINY["td3bc"], data=tiny_data)


# ----------------------------------------------------------------------------------------------------------------------
# Registry, behaviour-specific and CLI checks
# ----------------------------------------------------------------------------------------------------------------------
def test_registry_lists_builtins_without_importing_heavy_libraries() -> None:
    import subprocess

    code = ("import sys; from mtf_agents.registry import get_registry; r = get_registry(); "
            "print(sorted(r.names())); print(sorted(m for m in ('torch', 'd3rlpy', 'stable_baselines3', 'cma') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.splitlines()
    assert set(eval(out[0])) >= {spec.name for spec in BUILTIN_AGENTS}
    assert out[1] == "[]"
    assert {spec.name for spec in BUILTIN_AGENTS if spec.plays(DEFAULT_ENV)} == set(TINY) == set(BAD_VALUES)


def test_fusion_agents_play_every_session_version_and_slate_agents_the_slate_env() -> None:
    from mtf_agents.registry import SLATE_ENV, get_registry

    registry = get_registry()
    fusion = set(TINY)
    assert set(registry.names(env="MTFSession-v1")) >= fusion
    versions = ("MTFSession-v1", "MTFSession-v0", "MTFSession")
    assert len({tuple(registry.names(env=v)) for v in versions}) == 1
    assert set(registry.names(env=SLATE_ENV)) == {"wolpertinger", "fcpo", "tpgr"}
    assert not fusion & set(registry.names(env=SLATE_ENV))


def test_shared_settings_are_declared_not_matched_by_name() -> None:
    from mtf_agents.base import SharedSettings
    from mtf_agents.conformance import _check_shared_settings
    from mtf_agents.registry import get_registry
    from mtf_bench.harness.jobs import build_agent_for

    registry = get_registry()
    for name in registry.names():
        config_class = registry.get(name).config_class
        _check_shared_settings(config_class)  # every declared name is a shared setting and a field, and it is set
        if name != "es":  # every neural agent takes at least the network size and the discount
            assert {"hidden_units", "gamma"} <= set(config_class.shared_settings), name
    shared = SharedSettings(hidden_units=(16,), batch_size=64, gamma=0.8, device="cpu")
    iql = registry.get("iql").config_class.sharing(shared, batch_size=32)  # overrides win
    assert (iql.hidden_units, iql.batch_size, iql.gamma, iql.device) == ((16,), 32, 0.8, "cpu")
    notes: list[str] = []
    es = build_agent_for("es", {}, {"hidden_units": [16], "device": "cpu"}, notes.append)
    assert es.name == "es" and notes == ["note: es takes the shared settings []; ['device', 'hidden_units'] do not "
                                         "apply to it"]
    with pytest.raises(ValueError, match=r"shared settings \['hidden'\] do not exist; shared settings: "):
        build_agent_for("iql", {}, {"hidden": [16]})


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
        if spec.target.startswith("mtf_agents.d3rlpy_agents"):
            assert config.batch_size == 256 and config.to_d3rlpy().gamma == 0.9, spec.name


def test_ddpg_va_untrained_actor_is_the_baseline(tiny_data: TransitionData) -> None:
    agent = build_agent("ddpg_va", **{**TINY["ddpg_va"], "pretrain_steps": 0, "value_warmup_fraction": 0.99})
    agent.fit(tiny_data, n_steps=OFFLINE_STEPS, show_progress=False)  # warm-up only: the actor never moves
    expected = np.broadcast_to(BaselinePolicy(ENV_CONFIG).action, (10, ENV_CONFIG.action_dim))
    np.testing.assert_allclose(agent.act(tiny_data.observations[:10]), expected, atol=1e-6)


@pytest.mark.parametrize("env", [ONLINE_ENV_CONFIG, MTFSessionConfig(max_requests=8)], ids=["v1", "v0"])
def test_es_stays_within_action_scale_of_baseline(env: MTFSessionConfig | MTFSessionV1Config) -> None:
    agent = build_agent("es", **{**TINY["es"], "action_scale": 1e-3})
    agent.fit_online(env, n_steps=1, show_progress=False)  # one generation
    features = observation_features(env)
    assert agent.observation_dim == len(features)
    obs = np.random.default_rng(0).uniform(0, 1, size=(16, len(features))).astype(np.float32)
    baseline = BaselinePolicy(env)(obs)
    assert np.abs(agent.act(obs) - baseline).max() <= 1e-3 + 1e-6


def test_es_profile_features_are_the_static_user_profile() -> None:
    from mtf_agents.es import feature_indices
    from mtf_gym import OBSERVATION_FEATURES, OBSERVATION_FEATURES_V1

    v0 = [OBSERVATION_FEATURES[i] for i in feature_indices("profile", OBSERVATION_FEATURES)]
    assert v0 == ["segment_casual", "segment_lean_back", "segment_social", "segment_quality_seeker",
                  "activity_level", "interest_concentration"]
    v1 = [OBSERVATION_FEATURES_V1[i] for i in feature_indices("profile", OBSERVATION_FEATURES_V1)]
    assert v1 == ["account_age", "history_valid_view_rate", "history_long_view_rate", "history_like_rate",
                  "history_follow_rate", "history_interest_concentration"]
    assert feature_indices("all", OBSERVATION_FEATURES_V1).tolist() == list(range(19))


def test_es_generation_uses_common_random_numbers() -> None:
    # ES evaluates a generation through SessionRunner with explicit user seeds: a user's session is the same
    # whichever row (candidate block) it is played in.
    from mtf_gym.evaluation import SessionRunner

    policy = BaselinePolicy(ONLINE_ENV_CONFIG)
    runner = SessionRunner(3, ONLINE_ENV_CONFIG)
    first = runner.run(policy, np.array([5, 6, 7]))
    again = runner.run(policy, np.array([7, 5, 7]))
    np.testing.assert_array_equal(again.returns, first.returns[[2, 0, 2]])
    assert 3 <= int(first.requests.sum()) <= 3 * ONLINE_ENV_CONFIG.max_requests


def test_cli_lists_agents(capsys: pytest.CaptureFixture[str]) -> None:
    from mtf_agents.cli import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for spec in BUILTIN_AGENTS:
        assert spec.name in out
    assert "offline" in out and "online" in out and "builtin" in out
    assert main(["show", "es"]) == 0
    assert "population_size" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["list"], ["show", "integrated_rl"], ["show", "ppo"]])  # d3rlpy and SB3 paths
def test_cli_output_has_no_gym_banner(argv: list[str]) -> None:
    # d3rlpy imports the old gym package, which prints a deprecation banner; the agents filter it where they import
    # d3rlpy. A fresh interpreter, as a user's shell would start it.
    import subprocess

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "mtf_agents.cli", *argv], cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Gym has been unmaintained" not in proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0].startswith("NAME" if argv == ["list"] else argv[1])


def test_banner_filter_keeps_other_output() -> None:
    from mtf_agents._quiet import _without_banner

    banner = ("Gym has been unmaintained since 2022 and does not support NumPy 2.0.\nPlease upgrade to Gymnasium.\n"
              "See the migration guide.\n\n")
    assert _without_banner("before\n" + banner + "after\n") == "before\nafter\n"
    assert _without_banner("nothing to drop\n") == "nothing to drop\n"


def test_collect_cli_trains_progressive_rounds_with_a_registry_agent(tmp_path: Path) -> None:
    from mtf_agents.collect_cli import main
    from mtf_gym.datasets import load_dataset, progressive_train_seed

    assert main(["progressive", "--agent", "td3bc", "--rounds", "2", "--train-steps", "2", "--sessions", "6",
                 "--out", str(tmp_path), "--num-envs", "4", "--env", "max_requests=3", "--no-progress"]) == 0
    data = load_dataset("mtf/progressive-seed0-v0", tmp_path)
    rounds = data.metadata["rounds"]
    assert [r["round"] for r in rounds] == [0, 1] and rounds[1]["behaviour"]["centre_policy"] == "td3bc"
    assert progressive_train_seed(0, 1) != progressive_train_seed(0, 2) != progressive_train_seed(1, 1)
    with pytest.raises(SystemExit, match="'es' is online"):
        main(["progressive", "--agent", "es", "--out", str(tmp_path), "--sessions", "10"])
    with pytest.raises(SystemExit, match="no_such_agent"):
        main(["progressive", "--agent", "no_such_agent", "--out", str(tmp_path), "--sessions", "10"])


def test_collect_cli_agent_set_reaches_every_round_and_bad_fields_fail_before_collection(tmp_path: Path) -> None:
    from mtf_agents.collect_cli import main
    from mtf_agents.progressive import registry_trainer
    from mtf_gym.datasets import RecipeConfig, load_dataset

    args = ["progressive", "--agent", "integrated_rl", "--rounds", "3", "--train-steps", "2", "--sessions", "9",
            "--num-envs", "3", "--env", "max_requests=3", "--no-progress", "--agent-set", "n_critics=2",
            "--agent-set", "progressive_data=current_round", "--agent-set", "progressive_init=warm_start"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    data = load_dataset("mtf/progressive-seed0-v0", tmp_path)
    assert [r["round"] for r in data.metadata["rounds"]] == [0, 1, 2]
    # The trainer the CLI builds trains agents with the overrides (current round only, warm start from round 1).
    train_fn = registry_trainer("integrated_rl", RecipeConfig("progressive", sessions=9, rounds=3), 2, False,
                                {"n_critics": 2, "progressive_data": "current_round",
                                 "progressive_init": "warm_start"})
    agent = train_fn(data, 1)
    assert (agent.config.n_critics, agent.config.progressive_data, agent.config.progressive_init) == (
        2, "current_round", "warm_start")
    # Bad overrides stop the command before any session is collected (nothing written).
    for bad, match in ((["--agent-set", "progressive_data=newest"], "progressive_data"),
                       (["--agent-set", "no_such_field=1"], "no_such_field")):
        with pytest.raises(SystemExit, match=match):
            main([*args, *bad, "--out", str(tmp_path / "bad")])
        assert not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit, match="pass --agent"):
        main(["uniform", "--agent-set", "n_critics=2", "--out", str(tmp_path / "bad"), "--sessions", "3"])

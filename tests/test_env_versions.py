"""The env id -> config class map (``mtf_gym.envs.versions``) and the dataset tools on both MTFSession versions:
collection, datasheets, the Minari round trip, old datasheets without an env id, and ``mtf-collect --env-id``."""

from __future__ import annotations

import dataclasses
import warnings

import gymnasium as gym
import numpy as np
import pytest

import mtf_gym
from mtf_gym import (
    OBSERVATION_FEATURES,
    OBSERVATION_FEATURES_V1,
    MTFSessionConfig,
    MTFSessionV1Config,
    config_class_for,
    env_id_of,
    make_env_config,
)
from mtf_gym.datasets import (
    RecipeConfig,
    TransitionData,
    cli,
    collect_recipe,
    env_config_of,
    load_dataset,
    save_dataset,
)
from mtf_gym.datasets.working_copy import load_working_copy, save_working_copy
from mtf_gym.envs.versions import DEFAULT_SESSION_ENV_ID, SESSION_ENV_IDS

VERSIONS = [(mtf_gym.ENV_ID, MTFSessionV1Config, OBSERVATION_FEATURES_V1),
            (mtf_gym.ENV_ID_V0, MTFSessionConfig, OBSERVATION_FEATURES)]


# ------------------------------------------------------------------------------------------------ the map
def test_ids_match_the_registered_versions() -> None:
    assert DEFAULT_SESSION_ENV_ID == mtf_gym.ENV_ID
    assert set(SESSION_ENV_IDS) == {mtf_gym.ENV_ID, mtf_gym.ENV_ID_V0}
    for env_id, cls, _ in VERSIONS:
        assert config_class_for(env_id) is cls
        assert env_id_of(cls()) == env_id
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # gym's "out of date" nudge for v0
            env = gym.make(env_id)  # the env made from that id runs that version
        assert type(env.unwrapped.config) is cls
        env.close()


@pytest.mark.parametrize(("env_id", "cls", "features"), VERSIONS)
def test_make_env_config_merges_overrides_and_round_trips(env_id: str, cls: type, features: tuple) -> None:
    config = make_env_config(env_id, {"max_requests": 7, "reward": {"like": 3.0}})
    assert type(config) is cls and config.max_requests == 7 and config.reward.like == 3.0
    assert config.reward.follow == cls().reward.follow  # a nested table merges, it does not replace
    assert make_env_config(env_id, config.to_dict()) == config  # a datasheet's env_config rebuilds it exactly
    assert make_env_config(env_id) == cls()


def test_make_env_config_errors_name_the_field_and_the_allowed_names() -> None:
    with pytest.raises(ValueError, match=r"unknown MTFSession-v1 config field\(s\) \['user'\].*allowed names: "
                                         r"\['catalogue', 'dynamics'"):
        make_env_config("MTFSession-v1", {"user": {}})  # a v0 table on v1
    with pytest.raises(ValueError, match=r"\['dynamics.leave_bia'\].*allowed names in dynamics: .*'leave_bias'"):
        make_env_config("MTFSession-v1", {"dynamics": {"leave_bia": 1.0}})
    with pytest.raises(ValueError, match=r"unknown MTFSession-v0 config field\(s\) \['population'\]"):
        make_env_config("MTFSession-v0", {"population": {}})
    with pytest.raises(ValueError, match=r"env_id must be one of \['MTFSession-v0', 'MTFSession-v1'\], got 'X-v3'"):
        make_env_config("X-v3")
    with pytest.raises(ValueError, match="max_requests"):
        make_env_config("MTFSession-v1", {"max_requests": 0})  # a bad value: the config's own check
    with pytest.raises(TypeError, match="config must be one of"):
        env_id_of(object())  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ datasets
def _collect(env: MTFSessionConfig | MTFSessionV1Config, sessions: int = 12) -> TransitionData:
    return collect_recipe(RecipeConfig("uniform", sessions=sessions, seed=3, num_envs=4, env=env), progress=False)


def test_default_recipe_is_v1() -> None:
    assert type(RecipeConfig("uniform").env) is MTFSessionV1Config


@pytest.mark.parametrize(("env_id", "cls", "features"), VERSIONS)
def test_dataset_records_its_version_and_loads_back_with_it(env_id: str, cls: type, features: tuple,
                                                            tmp_path, monkeypatch) -> None:
    env = make_env_config(env_id, {"max_requests": 5})
    data = _collect(env)
    assert data.env_id == env_id and data.metadata["env_id"] == env_id
    assert data.obs_dim == len(features) == data.metadata["obs_dim"]
    assert data.metadata["observation_features"] == list(features)
    assert data.env_config() == env
    # The exploration centre is that version's tuned control.
    np.testing.assert_allclose(data.centres[0], mtf_gym.BaselinePolicy(env).action, atol=1e-6)
    # Fast working copy and Minari both keep the version.
    save_working_copy(data, tmp_path / "wc")
    copy = load_working_copy(tmp_path / "wc", data.content_hash())
    assert copy.env_id == env_id and copy.env_config() == env
    save_dataset(data, tmp_path / "minari", "mtf/uniform-seed3-v0")
    loaded = load_dataset("mtf/uniform-seed3-v0", tmp_path / "minari")
    assert loaded.env_config() == env and loaded.obs_dim == len(features)
    assert loaded.content_hash() == data.content_hash()
    import minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    spec = minari.load_dataset("mtf/uniform-seed3-v0").spec.env_spec
    assert spec.id == env_id and spec.kwargs == {"max_requests": 5}


def test_datasheet_without_env_id_loads_as_v0() -> None:
    v0 = make_env_config("MTFSession-v0", {"max_requests": 9})
    old_sheet = {"env_config": v0.to_dict()}  # written before the datasheet recorded the version
    assert env_config_of(old_sheet) == v0
    assert env_config_of({}) == MTFSessionConfig()
    data = _collect(make_env_config("MTFSession-v0", {"max_requests": 3}), sessions=4)
    legacy = dataclasses.replace(data, metadata={k: v for k, v in data.metadata.items() if k != "env_id"})
    assert legacy.env_id == "MTFSession-v0" and type(legacy.env_config()) is MTFSessionConfig


def test_recipe_rejects_a_foreign_env_config() -> None:
    with pytest.raises(ValueError, match=r"RecipeConfig.env must be one of \['MTFSessionConfig', "
                                         r"'MTFSessionV1Config'\]"):
        RecipeConfig("uniform", env={"max_requests": 3})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ mtf-collect
@pytest.mark.parametrize(("args", "env_id", "dim"), [
    ([], "MTFSession-v1", len(OBSERVATION_FEATURES_V1)),
    (["--env-id", "MTFSession-v0"], "MTFSession-v0", len(OBSERVATION_FEATURES)),
])
def test_collect_cli_env_id(args: list[str], env_id: str, dim: int, tmp_path, capsys) -> None:
    assert cli.main(["uniform", "--sessions", "4", "--out", str(tmp_path), "--num-envs", "4", "--env",
                     "max_requests=3", "--env", "reward.like=2.5", "--no-progress", *args]) == 0
    assert f"env {env_id}" in capsys.readouterr().out
    data = load_dataset("mtf/uniform-seed0-v0", tmp_path)
    config = data.env_config()
    assert data.env_id == env_id and data.obs_dim == dim
    assert config.max_requests == 3 and config.reward.like == 2.5


def test_collect_cli_env_errors(tmp_path) -> None:
    with pytest.raises(SystemExit, match=r"unknown MTFSession-v0 config field\(s\) \['dynamics'\]"):
        cli.main(["uniform", "--out", str(tmp_path), "--env-id", "MTFSession-v0", "--env", "dynamics.leave_bias=1"])
    with pytest.raises(SystemExit):
        cli.main(["uniform", "--out", str(tmp_path), "--env-id", "MTFSession-v7"])

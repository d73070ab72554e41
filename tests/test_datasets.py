"""Dataset collection, recipes, Minari storage, d3rlpy conversion, corruption handling, CLI and analysis."""

import dataclasses
import json
import os
from pathlib import Path

import gymnasium as gym
import h5py
import minari
import numpy as np
import pytest

from mtf_gym import BaselinePolicy, ConstantPolicy, MTFSessionConfig
from mtf_gym.datasets import (
    DatasetError,
    RecipeConfig,
    TransitionData,
    analysis,
    child_seed,
    cli,
    collect,
    collect_recipe,
    from_minari,
    load_dataset,
    save_dataset,
    storage,
    to_mdp_dataset,
)
from mtf_gym.exploration import BoundedUniform

# max_requests=4 makes sessions end both ways (user left / request cap) within a few steps.
ENV = MTFSessionConfig(max_requests=4)
MAX_REQUESTS = ENV.max_requests


def _recipe(recipe: str, sessions: int = 60, seed: int = 0, **kw) -> TransitionData:
    return collect_recipe(RecipeConfig(recipe, sessions=sessions, seed=seed, num_envs=16, env=ENV, **kw),
                          progress=False)


@pytest.fixture(scope="module")
def uniform() -> TransitionData:
    return _recipe("uniform")


@pytest.fixture(scope="module")
def gaussian() -> TransitionData:
    return _recipe("gaussian", sessions=400)


@pytest.fixture
def saved(tmp_path, uniform):
    path = save_dataset(uniform, tmp_path, "mtf/uniform-seed0-v0")
    return tmp_path, path / "data"


# ------------------------------------------------------------------------------------------------ collection
def test_exact_sessions_complete_episodes_and_no_autoreset_rows(uniform):
    d = uniform
    assert d.num_episodes == 60 and d.metadata["num_episodes"] == 60 and len(d) == d.metadata["num_transitions"]
    lengths = d.episode_lengths()
    assert lengths.min() >= 1 and lengths.max() <= MAX_REQUESTS
    ends = d.terminals | d.truncations
    assert ends.sum() == 60 and d.terminals.any() and d.truncations.any()
    assert (lengths[d.truncations[ends]] == MAX_REQUESTS).all()  # truncation = request cap
    # request_progress (feature 6) = requests so far / max_requests: s_t has t requests behind it, s_{t+1} has t+1.
    # A recorded autoreset step would show a new session's first observation (progress 0) as next state.
    np.testing.assert_allclose(d.observations[:, 6], d.step_ids / MAX_REQUESTS, atol=1e-6)
    np.testing.assert_allclose(d.next_observations[:, 6], (d.step_ids + 1) / MAX_REQUESTS, atol=1e-6)
    assert [s.start for s in d.episode_slices()][:3] == [0, lengths[0], lengths[0] + lengths[1]]
    np.testing.assert_allclose(d.episode_returns(), [d.rewards[s].sum() for s in d.episode_slices()], rtol=1e-6)
    assert d.has_item_logs and d.item_ids.shape == (len(d), ENV.page_size)
    assert d.predictions.shape == (len(d), 6, 5) and d.responses.shape == (len(d), 6, 9)
    np.testing.assert_allclose(d.item_rewards.sum(axis=1), d.rewards, rtol=1e-5, atol=1e-5)


def test_recorded_sessions_replay_exactly_in_the_single_env(uniform):
    """Episode e < num_envs is slot e's first session: the single env with that slot's seed reproduces it."""
    seeds = child_seed(0, 0).generate_state(16, np.uint64)
    env = gym.make("MTFSession-v0", config=ENV)
    for e in (0, 5, 15):
        rows = uniform.episode_slices()[e]
        obs, _ = env.reset(seed=int(seeds[e]))
        for t in range(rows.start, rows.stop):
            np.testing.assert_array_equal(obs, uniform.observations[t])
            obs, reward, terminated, truncated, info = env.step(uniform.actions[t])
            np.testing.assert_array_equal(obs, uniform.next_observations[t])
            assert reward == uniform.rewards[t] and terminated == uniform.terminals[t]
            assert truncated == uniform.truncations[t]
            np.testing.assert_array_equal(info["item_ids"], uniform.item_ids[t])


def test_same_seed_identical_different_seed_different():
    a, b = _recipe("gaussian", sessions=30, seed=5), _recipe("gaussian", sessions=30, seed=5)
    c = _recipe("gaussian", sessions=30, seed=6)
    assert a.content_hash() == b.content_hash() and a.metadata == b.metadata
    assert a.content_hash() != c.content_hash()
    # The noise seed is derived from the dataset seed: the behaviour's own generator is ignored.
    behaviour = BoundedUniform(BaselinePolicy(ENV), rng=np.random.default_rng(123))
    x = collect(behaviour, sessions=20, seed=1, config=ENV, num_envs=8, progress=False)
    y = collect(behaviour.with_rng(np.random.default_rng(999)), sessions=20, seed=1, config=ENV, num_envs=8,
                progress=False)
    assert x.content_hash() == y.content_hash()


def test_uniform_actions_inside_recorded_band(uniform):
    off = uniform.actions.astype(np.float64) - uniform.centres.astype(np.float64)
    assert (off >= uniform.lower).all() and (off <= uniform.upper).all()
    assert np.abs(uniform.actions).max() <= 1.0
    np.testing.assert_array_equal(uniform.centres, BaselinePolicy(ENV)(uniform.observations))


def test_gaussian_offsets_have_configured_std(gaussian):
    centre = BaselinePolicy(ENV).action
    far = np.flatnonzero(np.abs(centre) <= 0.4)  # clipping at +-1 needs a >= 3-sigma draw there
    assert far.size >= 3
    off = gaussian.offsets[:, far]
    np.testing.assert_allclose(off.std(axis=0), 0.2, rtol=0.06)
    np.testing.assert_allclose(off.std(), 0.2, rtol=0.03)
    np.testing.assert_array_equal(gaussian.lower, np.float32(-0.15))  # nominal band recorded
    assert gaussian.metadata["behaviour"]["sigma"] == 0.2


def test_transition_budget_is_exact_and_cut_sessions_are_marked():
    d = collect(BaselinePolicy(ENV), transitions=101, seed=0, config=ENV, num_envs=16, progress=False)
    assert len(d) == 101 and d.metadata["budget"] == {"transitions": 101}
    cut = d.metadata["budget_cut_episodes"]
    assert cut and all(d.truncations[d.episode_slices()[e].stop - 1] for e in cut)
    assert d.metadata["behaviour"]["kind"] == "none"


def test_item_logs_off_gives_zero_width_arrays():
    d = collect(BaselinePolicy(), sessions=10, seed=0, config=dataclasses.replace(ENV, item_logs=False),
                num_envs=4, progress=False)
    assert not d.has_item_logs and d.item_ids.shape == (len(d), 0) and d.predictions.shape == (len(d), 0, 5)


def test_collect_bad_arguments():
    with pytest.raises(ValueError, match="exactly one of sessions= or transitions="):
        collect(BaselinePolicy(), seed=0)
    with pytest.raises(ValueError, match="sessions must be an integer >= 1"):
        collect(BaselinePolicy(), sessions=0)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        collect(BaselinePolicy(), sessions=1, seed=-1)
    with pytest.raises(ValueError, match="num_envs"):
        collect(BaselinePolicy(), sessions=1, num_envs=0)


def test_transition_data_validates_structure(uniform):
    arrays = uniform.arrays()
    bad = dict(arrays, episode_ids=arrays["episode_ids"][::-1].copy())
    with pytest.raises(ValueError, match="episode_ids"):
        TransitionData(**bad)
    bad = dict(arrays, next_observations=np.roll(arrays["next_observations"], 1, axis=0))
    with pytest.raises(ValueError, match="next_observations"):
        TransitionData(**bad)
    with pytest.raises(ValueError, match="actions must be a 2-D float32"):
        TransitionData(**dict(arrays, actions=arrays["actions"].astype(np.float64)))


# ------------------------------------------------------------------------------------------------ recipes
def test_recipes_share_the_session_budget_and_record_the_recipe(uniform, gaussian):
    base = _recipe("baseline")
    assert base.num_episodes == uniform.num_episodes == 60
    np.testing.assert_array_equal(base.actions, base.centres)
    assert uniform.metadata["recipe"] == "uniform" and base.metadata["recipe_config"]["sessions"] == 60
    assert RecipeConfig("uniform", seed=3).dataset_id == "mtf/uniform-seed3-v0"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"recipe": "greedy"}, "RecipeConfig.recipe must be one of"),
        ({"sessions": 0}, "RecipeConfig.sessions"),
        ({"sigma": 0.0}, "RecipeConfig.sigma"),
        ({"lower": 0.2}, "RecipeConfig.lower must be < RecipeConfig.upper"),
        ({"upper": 3.0}, r"RecipeConfig.upper must lie in \[-2, 2\]"),
        ({"rounds": 0}, "RecipeConfig.rounds"),
        ({"recipe": "progressive", "rounds": 11, "sessions": 10}, "rounds must be <= sessions"),
        ({"seed": -1}, "RecipeConfig.seed"),
    ],
)
def test_recipe_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RecipeConfig(**{"recipe": "uniform", **kwargs})


def test_progressive_rounds_explore_around_the_latest_trained_policy():
    calls = []

    def train_fn(data, round_index):
        calls.append((round_index, data.num_episodes))
        # A stand-in "trainer": the mean action of the data so far (any callable centre policy works).
        return ConstantPolicy(np.clip(data.actions.mean(axis=0) + 0.1 * round_index, -1, 1))

    d = collect_recipe(RecipeConfig("progressive", sessions=23, rounds=3, num_envs=8, env=ENV), train_fn=train_fn,
                       progress=False)
    assert calls == [(1, 8), (2, 16)]
    rounds = d.metadata["rounds"]
    assert [r["sessions"] for r in rounds] == [8, 8, 7] and d.num_episodes == 23
    starts = d.episode_starts()
    first = starts[rounds[1]["first_episode"]]
    np.testing.assert_array_equal(d.centres[:first], BaselinePolicy(ENV)(d.observations[:first]))
    assert np.ptp(d.centres[first:starts[rounds[2]["first_episode"]]], axis=0).max() == 0  # one constant centre
    assert rounds[1]["behaviour"]["centre_policy"] == "ConstantPolicy"
    assert rounds[0]["centre"]["source"] == "baseline" and rounds[1]["centre"] == {
        "policy": "ConstantPolicy", "source": "train_fn", "varies_across_states": False}
    assert d.metadata["centre"] == rounds[0]["centre"]
    off = d.offsets
    assert (off >= -0.15).all() and (off <= 0.15).all()
    with pytest.raises(ValueError, match="progressive collection needs a trainer"):
        collect_recipe(RecipeConfig("progressive", sessions=10, env=ENV), progress=False)


# ------------------------------------------------------------------------------------------------ storage
def test_round_trip_through_minari_and_d3rlpy_aligned(saved, uniform, monkeypatch):
    root, data_dir = saved
    assert sorted(os.listdir(data_dir)) == ["main_data.hdf5", "metadata.json", "mtf_item_logs.npz"]
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    ds = minari.load_dataset("mtf/uniform-seed0-v0")
    assert ds.total_episodes == 60 and ds.total_steps == len(uniform)
    sheet = ds.storage.metadata
    assert sheet["mtf_metadata"]["seed"] == 0 and sheet["mtf_metadata"]["behaviour"]["kind"] == "uniform"
    assert ds.spec.env_spec.kwargs == {"max_requests": MAX_REQUESTS}
    assert ds.recover_environment().unwrapped.config.max_requests == MAX_REQUESTS
    back = from_minari(ds)
    assert back.content_hash() == uniform.content_hash() and back.metadata == uniform.metadata

    from d3rlpy.dataset import BasicTransitionPicker

    mdp = to_mdp_dataset(back)
    assert len(mdp.episodes) == 60
    picker = BasicTransitionPicker()
    truncated_checked = 0
    for episode, rows in zip(mdp.episodes, uniform.episode_slices()):
        np.testing.assert_array_equal(episode.observations, uniform.observations[rows])
        np.testing.assert_array_equal(episode.actions, uniform.actions[rows])
        np.testing.assert_array_equal(episode.rewards[:, 0], uniform.rewards[rows])
        assert episode.terminated == bool(uniform.terminals[rows.stop - 1])
        for t in range(episode.transition_count):
            tr = picker(episode, t)
            np.testing.assert_array_equal(tr.observation, uniform.observations[rows.start + t])
            if not tr.terminal:
                np.testing.assert_array_equal(tr.next_observation, uniform.next_observations[rows.start + t])
        truncated_checked += bool(uniform.truncations[rows.stop - 1]) and rows.stop - rows.start > 1
    assert truncated_checked > 0  # truncated multi-step episodes were compared too


def test_load_dataset_and_banded_conversion(saved, uniform):
    root, _ = saved
    back = load_dataset("mtf/uniform-seed0-v0", root)
    assert back.content_hash() == uniform.content_hash()
    for name, arr in uniform.arrays().items():
        np.testing.assert_array_equal(getattr(back, name), arr, err_msg=name)
    from mtf_agents.integrated_rl import to_banded_dataset

    banded = to_banded_dataset(back)
    assert type(banded).__name__ == "BandedReplayBuffer" and len(banded.episodes) == 60
    np.testing.assert_array_equal(banded.episodes[0].centres, uniform.centres[uniform.episode_slices()[0]])


@pytest.mark.parametrize("compact", [True, False])
def test_item_logs_off_round_trip_in_both_hdf5_layouts(tmp_path, compact):
    d = collect(BaselinePolicy(), sessions=6, seed=0, config=dataclasses.replace(ENV, item_logs=False),
                num_envs=4, progress=False)
    path = save_dataset(d, tmp_path, "mtf/nologs-v0", compact=compact)
    assert not (path / "data" / storage.SIDECAR_NAME).exists()
    with h5py.File(path / "data" / "main_data.hdf5", "r") as f:
        assert (f["episode_0/observations"].chunks is None) == compact
        assert f["episode_0"].attrs["total_steps"] == d.episode_lengths()[0]
    assert load_dataset("mtf/nologs-v0", tmp_path).content_hash() == d.content_hash()


def test_existing_dataset_is_not_overwritten_unless_asked(saved, uniform):
    root, _ = saved
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_dataset(uniform, root, "mtf/uniform-seed0-v0")
    small = _recipe("baseline", sessions=5)
    save_dataset(small, root, "mtf/uniform-seed0-v0", overwrite=True)
    assert load_dataset("mtf/uniform-seed0-v0", root).num_episodes == 5
    assert not [p for p in (root / "mtf").iterdir() if p.name.startswith(".mtf-")]


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_interrupted_write_leaves_no_dataset(tmp_path, uniform, monkeypatch, exc):
    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(storage.np, "savez", boom)  # fails after Minari wrote the HDF5, mid-dataset
    with pytest.raises(type(exc)):
        save_dataset(uniform, tmp_path, "mtf/uniform-seed0-v0")
    assert not (tmp_path / "mtf" / "uniform-seed0-v0").exists()
    assert not [p for p in (tmp_path / "mtf").iterdir() if p.name.startswith(".mtf-")]
    assert os.environ.get("MINARI_DATASETS_PATH") != str(tmp_path)


def test_interrupted_overwrite_keeps_the_old_dataset(saved, monkeypatch):
    root, _ = saved
    before = load_dataset("mtf/uniform-seed0-v0", root).content_hash()
    monkeypatch.setattr(storage.np, "savez", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        save_dataset(_recipe("baseline", sessions=5), root, "mtf/uniform-seed0-v0", overwrite=True)
    assert load_dataset("mtf/uniform-seed0-v0", root).content_hash() == before


# ------------------------------------------------------------------------------------------------ corruption
def _edit_metadata(data_dir: Path, fn) -> None:
    meta_file = data_dir / "metadata.json"
    meta = json.loads(meta_file.read_text())
    fn(meta)
    meta_file.write_text(json.dumps(meta))


def test_truncated_hdf5_raises_dataset_error(saved):
    root, data_dir = saved
    h5 = data_dir / "main_data.hdf5"
    h5.write_bytes(h5.read_bytes()[: h5.stat().st_size // 2])
    with pytest.raises(DatasetError, match=r"main_data\.hdf5"):
        load_dataset("mtf/uniform-seed0-v0", root)


def test_obs_dim_mismatch_raises_dataset_error(saved):
    root, data_dir = saved
    _edit_metadata(data_dir, lambda m: m["mtf_storage"].update(obs_dim=17))
    with pytest.raises(DatasetError, match=r"metadata\.json.*obs_dim 17"):
        load_dataset("mtf/uniform-seed0-v0", root)


def test_sidecar_checksum_mismatch_and_missing_sidecar(saved):
    root, data_dir = saved
    sidecar = data_dir / storage.SIDECAR_NAME
    raw = bytearray(sidecar.read_bytes())
    raw[-100] ^= 0xFF
    sidecar.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=r"mtf_item_logs\.npz: checksum mismatch"):
        load_dataset("mtf/uniform-seed0-v0", root)
    sidecar.unlink()
    with pytest.raises(DatasetError, match=r"mtf_item_logs\.npz: item-log sidecar missing"):
        load_dataset("mtf/uniform-seed0-v0", root)


def test_modified_hdf5_values_fail_the_content_checksum(saved):
    root, data_dir = saved
    with h5py.File(data_dir / "main_data.hdf5", "a") as f:
        # Actions: a changed reward would already break the rewards == sum of reward_components check.
        f["episode_3/actions"][0, 0] += 0.01
    with pytest.raises(DatasetError, match="content checksum mismatch"):
        load_dataset("mtf/uniform-seed0-v0", root)
    assert load_dataset("mtf/uniform-seed0-v0", root, verify=False).rewards.shape[0] > 0


def test_missing_and_foreign_datasets(saved, tmp_path):
    root, data_dir = saved
    with pytest.raises(DatasetError, match="no dataset 'mtf/absent-v0'"):
        load_dataset("mtf/absent-v0", root)
    _edit_metadata(data_dir, lambda m: m.pop("mtf_storage"))
    with pytest.raises(DatasetError, match="not an mtf-gym dataset"):
        load_dataset("mtf/uniform-seed0-v0", root)
    (data_dir / "metadata.json").write_text("{not json")
    with pytest.raises(DatasetError, match="unreadable metadata"):
        load_dataset("mtf/uniform-seed0-v0", root)
    assert issubclass(DatasetError, ValueError)
    with pytest.raises(ValueError, match="dataset_id must look like"):
        load_dataset("mtf/no-version", root)


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_collects_and_reports(tmp_path, capsys):
    assert cli.main(["uniform", "--sessions", "12", "--seed", "2", "--out", str(tmp_path), "--num-envs", "4",
                     "--env", "max_requests=3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "mtf/uniform-seed2-v0 written to" in out and "12 sessions" in out and "bytes/transition" in out
    d = load_dataset("mtf/uniform-seed2-v0", tmp_path)
    assert d.num_episodes == 12 and d.metadata["env_config"]["max_requests"] == 3


def test_cli_collects_into_a_relative_directory(tmp_path, monkeypatch, capsys):
    # `mtf-collect uniform --out ds` from one working directory; Minari reads it from another.
    workdir, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    workdir.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(workdir)
    assert cli.main(["uniform", "--sessions", "5", "--out", "ds", "--num-envs", "4", "--env", "max_requests=3",
                     "--no-progress"]) == 0
    assert "written to" in capsys.readouterr().out
    assert load_dataset("mtf/uniform-seed0-v0", "ds").num_episodes == 5  # relative root, read back
    # Fewer sessions than the (progressive-only) default of 5 rounds is fine for the other recipes.
    assert cli.main(["gaussian", "--sessions", "3", "--out", "ds", "--num-envs", "4", "--env", "max_requests=3",
                     "--no-progress"]) == 0
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(workdir / "ds"))
    dataset = minari.load_dataset("mtf/uniform-seed0-v0")
    assert dataset.total_episodes == 5
    assert load_dataset("mtf/uniform-seed0-v0", workdir / "ds").num_episodes == 5


def test_cli_progressive_trains_the_registry_agent_it_is_given(tmp_path, capsys):
    # The dataset CLI gets its trainer from the agent layer (agents/collect_cli.py), never by importing agents.
    calls = []

    def make_trainer(agent, config, steps, progress, overrides):
        def train_fn(data, round_index):
            calls.append((agent, steps, round_index, data.num_episodes, overrides))
            return ConstantPolicy(np.zeros(data.action_dim, dtype=np.float32))
        return train_fn

    assert cli.main(["progressive", "--agent", "my_agent", "--rounds", "2", "--train-steps", "7", "--sessions", "6",
                     "--out", str(tmp_path), "--num-envs", "4", "--env", "max_requests=3", "--no-progress",
                     "--agent-set", "width=[4, 4]", "--agent-set", "mode=fast"],
                    make_trainer=make_trainer) == 0
    assert calls == [("my_agent", 7, 1, 3, {"width": (4, 4), "mode": "fast"})]
    with pytest.raises(SystemExit, match="needs the agent zoo"):
        cli.main(["progressive", "--agent", "iql", "--out", str(tmp_path), "--sessions", "10"])


def test_cli_help_and_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--sessions", "--seed", "--out", "--sigma", "--lower", "--upper", "--rounds", "--agent",
                   "--train-steps", "--num-envs", "--env", "--env-id", "--overwrite", "--no-progress", "--dataset-id",
                   "--no-compact"):
        assert option in text
    with pytest.raises(SystemExit, match="progressive collection needs a trainer"):
        cli.main(["progressive", "--out", str(tmp_path), "--sessions", "10"])
    with pytest.raises(SystemExit, match=r"RecipeConfig\.sigma"):
        cli.main(["gaussian", "--out", str(tmp_path), "--sigma", "-1"])
    with pytest.raises(SystemExit, match=r"unknown MTFSession-v1 config field\(s\) \['speed'\]"):
        cli.main(["uniform", "--out", str(tmp_path), "--env", "speed=3"])


# ------------------------------------------------------------------------------------------------ analysis
def test_band_coverage_and_efficiency(uniform, gaussian):
    cov = analysis.band_coverage(uniform)
    assert cov.joint == 1.0 and (cov.per_dim == 1.0).all()
    report = analysis.exploration_efficiency(uniform, gaussian)
    assert report.analytic.efficiency_ratio == pytest.approx(418.6, rel=0.01)
    # Clipping at the action box keeps some Gaussian offsets in the band (the baseline's -0.96 biases), so the
    # measured per-dimension coverage is at least the analytic one.
    assert (report.gaussian.per_dim >= report.analytic.per_dim_probability - 0.06).all()
    assert report.empirical_ratio > 20 and report.empirical_ratio_ci[0] <= report.empirical_ratio
    json.dumps(report.to_dict())


def test_exploration_cost_and_plot(uniform, tmp_path):
    base = _recipe("baseline")
    cost = analysis.exploration_cost(uniform, base, rng=np.random.default_rng(0), num_resamples=200)
    assert cost.baseline_return.low <= cost.baseline_return.estimate <= cost.baseline_return.high
    assert cost.relative_change_ci[0] <= cost.relative_change <= cost.relative_change_ci[1]
    written = analysis.plot_offsets({"uniform": uniform, "baseline": base}, tmp_path / "offsets")
    assert [p.suffix for p in written] == [".png", ".svg"] and all(p.stat().st_size > 10_000 for p in written)


def test_analysis_cli_report(saved, gaussian, tmp_path, capsys):
    root, _ = saved
    save_dataset(gaussian, root, "mtf/gaussian-seed0-v0")
    save_dataset(_recipe("baseline"), root, "mtf/baseline-seed0-v0")
    out_json = tmp_path / "report.json"
    assert analysis.main(["--root", str(root), "--uniform", "mtf/uniform-seed0-v0", "--gaussian",
                          "mtf/gaussian-seed0-v0", "--baseline", "mtf/baseline-seed0-v0", "--json",
                          str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "efficiency ratio: empirical" in text and "analytic 418.9 without clipping" in text
    report = json.loads(out_json.read_text())
    assert report["efficiency"]["bounded"]["joint"] == 1.0 and set(report["cost"]) == {"uniform", "gaussian"}


# ------------------------------------------------------------------------------------- per-group rewards, centres
def test_reward_components_are_the_groups_weighted_responses(uniform):
    from mtf_gym.config import RESPONSE_FIELDS
    from mtf_gym.datasets.collect import REWARD_GROUPS

    assert uniform.num_reward_components == 3
    assert uniform.reward_component_names() == ["consumption", "interaction", "negative"]
    assert uniform.metadata["reward_components"] == {k: list(v) for k, v in REWARD_GROUPS.items()}
    w = ENV.reward.as_vector().astype(np.float64)
    per_field = uniform.responses.astype(np.float64).sum(axis=1) * w  # (N, R): each field's weighted sum over items
    for g, fields in enumerate(REWARD_GROUPS.values()):
        cols = [RESPONSE_FIELDS.index(f) for f in fields]
        np.testing.assert_allclose(uniform.reward_components[:, g], per_field[:, cols].sum(1), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(uniform.reward_components.sum(1), uniform.rewards, rtol=1e-5, atol=1e-5)
    assert (uniform.reward_components[:, 1] != 0).any()  # the interaction group is not trivially empty


def test_reward_components_must_sum_to_the_reward(uniform):
    bad = uniform.reward_components.copy()
    bad[0, 0] += 1.0
    with pytest.raises(ValueError, match="rewards must equal the row sums of reward_components"):
        dataclasses.replace(uniform, reward_components=bad)


def test_dataset_without_reward_components_loads_as_one_component(tmp_path, uniform):
    from mtf_agents.integrated_rl import to_banded_dataset

    # The format before per-group rewards: no infos/reward_components, the same content hash as then.
    old = dataclasses.replace(uniform, reward_components=None)
    assert old.num_reward_components == 1 and old.reward_component_names() == ["total"]
    path = save_dataset(old, tmp_path, "mtf/old-v0")
    with h5py.File(path / "data" / "main_data.hdf5", "r") as f:
        assert "reward_components" not in f["episode_0/infos"]
    back = load_dataset("mtf/old-v0", tmp_path)
    assert back.num_reward_components == 1 and back.content_hash() == old.content_hash()
    np.testing.assert_array_equal(back.reward_components[:, 0], uniform.rewards)
    assert to_banded_dataset(back).num_reward_components == 0
    assert to_banded_dataset(uniform).num_reward_components == 3


def test_working_copy_keeps_reward_components_and_reads_copies_without_them(tmp_path, uniform):
    from mtf_gym.datasets import load_working_copy, save_working_copy
    from mtf_gym.datasets.working_copy import DATA_FILE

    digest = save_working_copy(uniform, tmp_path / "new")
    back = load_working_copy(tmp_path / "new", digest)
    assert back.num_reward_components == 3
    np.testing.assert_array_equal(back.reward_components, uniform.reward_components)
    # A copy written before per-group rewards existed: data.npz without the reward_components array.
    old = dataclasses.replace(uniform, reward_components=None)
    old_digest = save_working_copy(old, tmp_path / "old")
    arrays = dict(np.load(tmp_path / "old" / DATA_FILE))
    del arrays["reward_components"]
    np.savez(tmp_path / "old" / DATA_FILE, **arrays)
    loaded = load_working_copy(tmp_path / "old", old_digest)  # same content hash as when it was written
    assert loaded.num_reward_components == 1 and loaded.reward_component_names() == ["total"]
    del arrays["rewards"]
    np.savez(tmp_path / "old" / DATA_FILE, **arrays)
    with pytest.raises(ValueError, match="missing \\['rewards'\\]"):
        load_working_copy(tmp_path / "old")


def test_datasheet_records_constant_or_personalised_centre():
    class ProfileLinear:
        """A state-dependent centre: fusion weights linear in the observation (like the ES agent's policy)."""

        name = "profile_linear"

        def __call__(self, obs):
            return np.clip(obs[:, :1] - 0.5, -1, 1) * np.ones((1, ENV.action_dim), dtype=np.float32)

    base = _recipe("uniform", sessions=8)
    assert base.metadata["centre"] == {"policy": "BaselinePolicy", "source": "baseline",
                                       "varies_across_states": False}
    personal = collect_recipe(RecipeConfig("uniform", sessions=8, num_envs=4, env=ENV),
                              centre_policy=ProfileLinear(), progress=False)
    assert personal.metadata["centre"] == {"policy": "profile_linear", "source": "given",
                                           "varies_across_states": True}
    assert personal.metadata["behaviour"]["centre_policy"] == "profile_linear"
    assert (np.ptp(personal.centres, axis=0) > 0).any()
    assert np.all(np.abs(personal.offsets) <= 0.15 + 1e-6)  # the band follows each state's own centre

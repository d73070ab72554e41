"""MTFSession-v1 and MTFSlate-v0: conformance, native vector == SyncVectorEnv, determinism, bad input, v0 frozen."""

from __future__ import annotations

import hashlib
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence

import mtf_gym
from mtf_gym import MTFSessionV1Config, TraitPopulation, UserDynamicsV1
from mtf_gym.envs.slate import MTFSlateConfig
from mtf_gym.sim.funnel import expected_watch, sample_watch, survival
from mtf_gym.sim.layout import OBSERVATION_FEATURES_V1, STATE_NAMES, TRAIT_NAMES
from mtf_gym.slate import FusionPipelineEnv, MostPopularPolicy, OraclePolicy, PipelinePolicy, RandomSlatePolicy

SMALL_SLATE = {"num_items": 2000}


def _fusion_actions(rng, shape):
    return rng.uniform(-1.3, 1.3, shape).astype(np.float32)


def _pages(rng, n, num_items, k):
    return np.stack([rng.choice(num_items, k, replace=False) for _ in range(n)]).astype(np.int64)


def test_registered_default_version_and_makeable():
    assert mtf_gym.ENV_ID == "MTFSession-v1"
    env = gym.make("MTFSession-v1")
    assert isinstance(env.unwrapped, mtf_gym.MTFSessionV1Env)
    assert env.observation_space.shape == (len(OBSERVATION_FEATURES_V1),)
    assert gym.make("MTFSession-v1", page_size=4).unwrapped.config.page_size == 4
    venv = gym.make_vec("MTFSession-v1", num_envs=3)
    assert isinstance(venv, mtf_gym.MTFSessionV1VectorEnv) and venv.num_envs == 3
    slate = gym.make("MTFSlate-v0", **SMALL_SLATE)
    assert isinstance(slate.action_space, gym.spaces.MultiDiscrete)
    assert np.array_equal(slate.action_space.nvec, [2000] * 6)
    # Every sample is a page the env accepts (distinct items), and a repeated item is not in the space.
    slate.action_space.seed(0)
    assert all(len(set(slate.action_space.sample().tolist())) == 6 for _ in range(2000))
    assert not slate.action_space.contains(np.array([1, 1, 2, 3, 4, 5]))
    assert slate.unwrapped.item_embeddings.shape == (2000, 32)


@pytest.mark.parametrize("env_id, kwargs", [("MTFSession-v1", {}), ("MTFSlate-v0", SMALL_SLATE)])
def test_gymnasium_and_sb3_check_env_no_warnings(env_id, kwargs):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(env_id, **kwargs).unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env)
        sb3_check_env(gym.make(env_id, **kwargs).unwrapped, warn=True)


def _assert_vector_matches_sync(env_id, kwargs, n, steps, act):
    native = gym.make_vec(env_id, num_envs=n, **kwargs)
    sync = gym.vector.SyncVectorEnv([lambda: gym.make(env_id, **kwargs).unwrapped for _ in range(n)])
    assert native.single_observation_space == sync.single_observation_space
    assert native.single_action_space == sync.single_action_space
    a, b = native.reset(seed=7), sync.reset(seed=7)
    assert data_equivalence(a, b, exact=True), "reset differs"
    rng = np.random.default_rng(0)
    autoresets = 0
    for t in range(steps):
        actions = act(rng, n)
        a, b = native.step(actions), sync.step(actions)
        for name, x, y in zip(("obs", "reward", "terminated", "truncated"), a[:4], b[:4]):
            assert x.dtype == y.dtype and np.array_equal(x, y), f"step {t}: {name} differs"
        assert sorted(a[4]) == sorted(b[4]), f"step {t}: info keys {sorted(a[4])} vs {sorted(b[4])}"
        for key in b[4]:
            assert a[4][key].dtype == b[4][key].dtype, f"step {t}: info[{key!r}] dtype"
            assert np.array_equal(a[4][key], b[4][key]), f"step {t}: info[{key!r}] differs"
        autoresets += int((a[2] | a[3]).sum())
    assert autoresets > 0, "the comparison must cover autoreset steps"


@pytest.mark.parametrize("env_id", ["MTFSession-v0", "MTFSession-v1"])
def test_native_vector_env_matches_sync_vector_env(env_id):
    warnings.filterwarnings("ignore", message=".*out of date.*")
    _assert_vector_matches_sync(env_id, {"max_requests": 4}, 5, 14, lambda rng, n: _fusion_actions(rng, (n, 10)))


def test_slate_vector_env_matches_sync_vector_env():
    kwargs = {**SMALL_SLATE, "max_requests": 4}
    _assert_vector_matches_sync("MTFSlate-v0", kwargs, 4, 12, lambda rng, n: _pages(rng, n, 2000, 6))


def _trajectory_hash(env, seeds, act):
    h = hashlib.sha256()
    rng = np.random.default_rng(1)
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        h.update(obs.tobytes())
        done = False
        while not done:
            obs, r, te, tr, info = env.step(act(rng))
            h.update(obs.tobytes() + np.float64(r).tobytes() + info["item_ids"].tobytes())
            done = te or tr
    return h.hexdigest()


def test_same_seed_same_trajectory_and_different_seed_differs():
    act = lambda rng: _fusion_actions(rng, (10,))  # noqa: E731
    first = _trajectory_hash(gym.make("MTFSession-v1").unwrapped, range(5), act)
    assert first == _trajectory_hash(gym.make("MTFSession-v1").unwrapped, range(5), act)
    assert first != _trajectory_hash(gym.make("MTFSession-v1").unwrapped, range(5, 10), act)
    slate = lambda rng: rng.choice(2000, 6, replace=False)  # noqa: E731
    assert (_trajectory_hash(gym.make("MTFSlate-v0", **SMALL_SLATE).unwrapped, range(3), slate)
            == _trajectory_hash(gym.make("MTFSlate-v0", **SMALL_SLATE).unwrapped, range(3), slate))


def test_v0_is_bit_identical_to_its_release():
    """A checksum of v0 rollouts taken before v1 existed: v0's dynamics, observations and logs are frozen."""
    warnings.filterwarnings("ignore", message=".*out of date.*")
    h = hashlib.sha256()
    env = gym.make("MTFSession-v0").unwrapped
    rng = np.random.default_rng(0)
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        h.update(obs.tobytes())
        done = False
        while not done:
            obs, r, te, tr, info = env.step(rng.uniform(-1.2, 1.2, 10).astype(np.float32))
            for part in (obs, np.float64(r), info["item_ids"], info["responses"], info["predictions"]):
                h.update(part.tobytes())
            done = te or tr
    assert h.hexdigest() == "bc2938f6eba4ae99b140df0804dc3dfae3d8d90c17c02648e1bbc6beb929ac42"


@pytest.mark.parametrize("action, match", [
    (np.zeros(9, np.float32), r"shape \(10,\)"),
    (np.array([np.nan] + [0] * 9, np.float32), "NaN or inf"),
    (np.array([0] * 9 + [np.inf], np.float32), "NaN or inf"),
])
def test_v1_bad_actions_raise_clear_errors(action, match):
    env = gym.make("MTFSession-v1").unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


@pytest.mark.parametrize("action, match", [
    (np.array([1, 1, 2, 3, 4, 5]), "repeats an item"),
    (np.array([0, 1, 2, 3, 4, 2000]), r"in \[0, 2000\)"),
    (np.array([-1, 1, 2, 3, 4, 5]), r"in \[0, 2000\)"),
    (np.array([0, 1, 2, 3, 4]), r"shape \(6,\)"),
    (np.array([0, 1, 2, 3, 4, np.nan]), "NaN or inf"),
    (np.array([0, 1, 2, 3, 4, 5.5]), "integer item ids"),
])
def test_slate_bad_actions_raise_clear_errors(action, match):
    env = gym.make("MTFSlate-v0", **SMALL_SLATE).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_slate_allows_an_item_again_in_a_later_request():
    env = gym.make("MTFSlate-v0", **SMALL_SLATE).unwrapped
    env.reset(seed=3)
    page = np.arange(6)
    env.step(page)
    _, _, _, _, info = env.step(page)
    assert np.array_equal(info["item_ids"], page)


@pytest.mark.parametrize("build, match", [
    (lambda: MTFSessionV1Config(page_size=0), "page_size"),
    (lambda: MTFSessionV1Config(max_requests=0), "max_requests"),
    (lambda: TraitPopulation(watch_drive=(0.5, 1.2, 0.5, 0.5)), "watch_drive"),
    (lambda: UserDynamicsV1(boredom_decay=1.0), "boredom_decay"),
    (lambda: UserDynamicsV1(leave_bias=math.nan), "leave_bias"),
    (lambda: MTFSlateConfig.from_kwargs(None, {"num_items": 1001}), "num_items"),
])
def test_invalid_config_names_the_parameter(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_unknown_parameter_is_a_type_error():
    with pytest.raises(TypeError, match="unknown"):
        gym.make("MTFSession-v1", no_such_field=1)


def test_observation_holds_no_latent_and_no_leave_logit_term():
    """Every observation column against every latent trait, state variable and leave-logit term: none is an exact
    (affine) copy, |corr| < 0.98, over users mid-session under the control."""
    env = gym.make_vec("MTFSession-v1", num_envs=2048)
    obs, _ = env.reset(seed=0)
    policy = mtf_gym.BaselinePolicy(env.config)
    for _ in range(3):
        obs, *_ = env.step(policy(obs))
    sim = env.sim
    latents = {**sim.traits(), **sim.latent_state()}
    del latents["log_account_age"]  # account age is an observed attribute (a feature log has it), not a parameter
    traits = sim.users.traits
    latents["leave_boredom_term"] = (traits[:, TRAIT_NAMES.index("boredom_sensitivity")]
                                     * sim.users.state[:, STATE_NAMES.index("top_boredom")])
    assert env.single_observation_space.contains(obs[0])
    for j, feature in enumerate(OBSERVATION_FEATURES_V1):
        x = obs[:, j].astype(np.float64)
        if x.std() == 0:
            continue
        for name, z in latents.items():
            z = z.astype(np.float64)
            if z.std() == 0:
                continue
            corr = abs(np.corrcoef(x, z)[0, 1])
            assert corr < 0.98, f"observation {feature!r} is a copy of latent {name!r} (|corr| = {corr:.3f})"


def test_pipeline_wrapper_on_the_slate_env_reproduces_mtfsession_v1():
    """One user model: a fusion agent acting in MTFSlate-v0 through the pipeline sees exactly MTFSession-v1."""
    slate = FusionPipelineEnv(gym.make("MTFSlate-v0", items_per_topic=150).unwrapped)
    session = gym.make("MTFSession-v1").unwrapped
    rng = np.random.default_rng(0)
    steps = 0
    for seed in range(4):
        a, _ = slate.reset(seed=seed)
        b, _ = session.reset(seed=seed)
        assert np.array_equal(a, b)
        done = False
        while not done:
            action = _fusion_actions(rng, (10,))
            ra, rb = slate.step(action), session.step(action)
            assert np.array_equal(ra[0], rb[0]) and ra[1:4] == rb[1:4]
            assert np.array_equal(ra[4]["item_ids"], rb[4]["item_ids"])
            done = ra[2] or ra[3]
            steps += 1
    assert steps > 8


def test_reference_slate_policies_give_valid_pages_and_order():
    env = gym.make("MTFSlate-v0", **SMALL_SLATE).unwrapped
    policies = {"random": RandomSlatePolicy(2000, 6, np.random.default_rng(0)), "popular": MostPopularPolicy(env),
                "pipeline": PipelinePolicy(env), "oracle": OraclePolicy(env)}
    returns = {}
    for name, policy in policies.items():
        total = 0.0
        for seed in range(40):
            obs, info = env.reset(seed=seed)
            done = False
            while not done:
                page = policy(obs, info)
                assert page.shape == (6,) and len(set(page.tolist())) == 6
                obs, r, te, tr, info = env.step(page)
                total += r
                done = te or tr
        returns[name] = total / 40
    assert returns["oracle"] > returns["pipeline"] > returns["random"]
    assert returns["pipeline"] > returns["popular"]


def test_embeddings_are_stable_read_only_and_informative():
    a = gym.make("MTFSlate-v0", **SMALL_SLATE).unwrapped.item_embeddings
    b = gym.make("MTFSlate-v0", **SMALL_SLATE).unwrapped.item_embeddings
    c = gym.make("MTFSlate-v0", num_items=2000, catalogue_seed=1).unwrapped.item_embeddings
    assert a.dtype == np.float32 and np.array_equal(a, b) and not np.array_equal(a, c)
    assert not a.flags.writeable
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    # Items of one topic are closer to each other than to other topics' items.
    per_topic = 100
    same = (a[:per_topic] @ a[:per_topic].T).mean()
    other = (a[:per_topic] @ a[per_topic:2 * per_topic].T).mean()
    assert same > other + 0.2


def test_funnel_formulas_by_hand():
    theta, inv = np.float32(12.0), np.float32(1 / 12.0)
    assert math.isclose(survival(np.float32(6.0), inv), math.exp(-0.25), rel_tol=1e-6)
    # E[min(W, d)] = integral_0^d exp(-(t/theta)^2) dt, checked by the trapezoid rule; hook 1 and 0.
    d = 20.0
    t = np.linspace(0.0, d, 200_001)
    integral = np.trapezoid(np.exp(-(t / 12.0) ** 2), t)
    assert math.isclose(expected_watch(np.float32(1.0), theta, np.float32(d), np.float32(1.8)), integral,
                        rel_tol=1e-5)
    assert math.isclose(expected_watch(np.float32(0.0), theta, np.float32(d), np.float32(1.8)), 1.8, rel_tol=1e-6)
    # Sampling inverts the survival function: P(W >= sample(u)) = 1 - u.
    for u in (0.1, 0.5, 0.9):
        w = sample_watch(theta, np.float32(u))
        assert math.isclose(survival(w, inv), 1 - u, rel_tol=1e-5)


def test_copy_rows_carries_a_session_and_rejects_bad_input():
    """A copied row with its own key steps exactly like its source; with a new key it draws another future; the
    arguments are checked by name."""
    from mtf_gym.rng import seed_keys
    from mtf_gym.sim.config import MTFSessionV1Config
    from mtf_gym.sim.simulator import UserSimulator

    config = MTFSessionV1Config(item_logs=False)
    source = UserSimulator(config, 64)
    source.start_sessions(np.arange(64), seed_keys(range(64)))
    action = np.full((64, config.action_dim), 0.1, np.float32)
    source.step(action)
    copy = UserSimulator(config, 128, catalogue=source.catalogue)
    copy.copy_rows(np.arange(64), source, np.arange(64))
    copy.copy_rows(np.arange(64, 128), source, np.arange(64), keys=np.arange(64, dtype=np.uint64) + np.uint64(99))
    assert np.array_equal(copy.request_index, np.ones(128))
    theirs, mine = source.step(action), copy.step(np.concatenate([action, action]))
    np.testing.assert_array_equal(mine.rewards[:64], theirs.rewards)
    np.testing.assert_array_equal(mine.observations[:64], theirs.observations)
    assert not np.array_equal(mine.rewards[64:], theirs.rewards)
    with pytest.raises(ValueError, match="share this simulator's config and catalogue"):
        UserSimulator(config, 4).copy_rows(np.arange(4), source, np.arange(4))
    with pytest.raises(ValueError, match=r"source_rows must lie in \[0, 64\)"):
        copy.copy_rows(np.arange(2), source, np.array([0, 64]))
    with pytest.raises(ValueError, match="rows and source_rows must be 1-D of one length"):
        copy.copy_rows(np.arange(2), source, np.arange(3))
    with pytest.raises(ValueError, match="keys must be uint64"):
        copy.copy_rows(np.arange(2), source, np.arange(2), keys=np.arange(2))
    with pytest.raises(TypeError, match="source must be a UserSimulator"):
        copy.copy_rows(np.arange(2), object(), np.arange(2))

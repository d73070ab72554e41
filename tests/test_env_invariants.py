"""Property-based invariants of MTFSession-v0 for arbitrary (also out-of-range) actions and seeds (fast)."""

from __future__ import annotations

import dataclasses

import numpy as np
from gymnasium.utils import seeding
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mtf_gym import RESPONSE_FIELDS, MTFSessionConfig, MTFSessionEnv, MTFSessionVectorEnv, UserModelConfig
from mtf_gym.catalogue import ItemCatalogue
from mtf_gym.simulator import SessionSimulator

ACTION_DIM = MTFSessionConfig().action_dim
COL = {name: i for i, name in enumerate(RESPONSE_FIELDS)}
ENGAGEMENTS = [COL[name] for name in ("like", "comment", "follow", "share")]
FAST = settings(max_examples=50, deadline=None)

seeds = st.integers(0, 2**32 - 1)
# Finite actions well outside [-1, 1]: the env must clip them, never produce NaN or leave its spaces.
actions = arrays(np.float32, ACTION_DIM, elements=st.floats(-4.0, 4.0, width=32))
action_plans = st.lists(actions, min_size=1, max_size=6)


def check_page(obs: np.ndarray, responses: np.ndarray, item_ids: np.ndarray, catalogue: ItemCatalogue) -> None:
    """The funnel per shown item, and the observation's last-page rates recomputed from the item logs."""
    r = responses
    assert set(np.unique(np.delete(r, COL["watch_time_s"], axis=1))) <= {0.0, 1.0}
    valid, long_view = r[:, COL["valid_view"]], r[:, COL["long_view"]]
    watch = r[:, COL["watch_time_s"]]
    # Watch time never exceeds the video; valid/long views are exactly the watch-time thresholds.
    cat = catalogue
    assert np.all((watch >= 0) & (watch <= cat.duration_s[item_ids]))
    np.testing.assert_array_equal(valid, watch >= cat.valid_view_time_s[item_ids])
    np.testing.assert_array_equal(long_view, watch >= cat.long_view_time_s[item_ids])
    assert np.all(long_view <= valid)
    assert np.all(r[:, ENGAGEMENTS] <= valid[:, None])
    assert np.all(r[:, COL["hate"]] * valid == 0) and np.all(r[:, COL["quick_skip"]] * valid == 0)
    page = r.mean(axis=0)
    expected = [
        page[COL["valid_view"]],
        page[COL["long_view"]],
        min(page[ENGAGEMENTS].sum(), 1.0),
        page[COL["quick_skip"]],
        min(page[COL["watch_time_s"]] / 60.0, 1.0),
    ]
    np.testing.assert_allclose(obs[7:12], expected, atol=1e-6)
    assert np.all((obs[7:17] >= 0.0) & (obs[7:17] <= 1.0))


@FAST
@given(seed=seeds, plan=action_plans)
def test_single_env_observations_rewards_and_funnel(seed: int, plan: list[np.ndarray]) -> None:
    env = MTFSessionEnv()
    obs, info = env.reset(seed=seed)
    assert env.observation_space.contains(obs) and info["request_index"] == 0
    for t in range(1, env.config.max_requests + 1):
        action = plan[t % len(plan)]
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs), obs
        assert np.isfinite(reward)
        assert info["request_index"] == t and np.isclose(obs[6], t / env.config.max_requests)
        assert info["action_clipped"] == int(np.count_nonzero(np.abs(action) > 1.0))
        np.testing.assert_allclose(info["item_rewards"].sum(), reward, rtol=1e-5, atol=1e-5)
        check_page(obs, info["responses"], info["item_ids"], env.sim.catalogue)
        assert not (terminated and truncated)
        assert truncated == (t == env.config.max_requests and not terminated)
        if terminated or truncated:
            break


@FAST
@given(seed=seeds, plan=action_plans, num_envs=st.integers(1, 5))
def test_vector_env_observations_stay_in_space_across_autoreset(seed: int, plan: list[np.ndarray],
                                                                 num_envs: int) -> None:
    env = MTFSessionVectorEnv(num_envs=num_envs)
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    for t in range(40):
        batch = np.stack([plan[(t + i) % len(plan)] for i in range(num_envs)])
        obs, rewards, terminated, truncated, _ = env.step(batch)
        assert env.observation_space.contains(obs)
        assert np.isfinite(rewards).all() and not np.any(terminated & truncated)


@FAST
@given(seed=seeds, max_requests=st.integers(1, 12), action=actions)
def test_truncation_exactly_at_max_requests_when_user_never_leaves(seed: int, max_requests: int,
                                                                   action: np.ndarray) -> None:
    # exp(1000) overflows float32, so the leave probability is exactly 0, not merely tiny.
    never_leave = UserModelConfig(leave_bias=-1000.0, leave_per_request=0.0)
    env = MTFSessionEnv(config=MTFSessionConfig(max_requests=max_requests, user=never_leave))
    env.reset(seed=seed)
    with np.errstate(over="ignore"):
        for t in range(1, max_requests + 1):
            _, _, terminated, truncated, info = env.step(action)
            assert not terminated and info["request_index"] == t
            assert truncated == (t == max_requests)


@FAST
@given(seed=seeds, plan=action_plans)
def test_single_env_equals_batch_of_one_simulator(seed: int, plan: list[np.ndarray]) -> None:
    config = MTFSessionConfig()
    env = MTFSessionEnv(config=config)
    obs, _ = env.reset(seed=seed)
    sim = SessionSimulator(config, 1)
    # The env's only entropy: one key per session from its np_random (mtf_gym/rng.py).
    key = seeding.np_random(seed)[0].bit_generator.random_raw()
    sim.start_sessions(np.zeros(1, np.int64), np.array([key], np.uint64))
    np.testing.assert_array_equal(sim.observations()[0], obs)
    for t in range(config.max_requests):
        action = plan[t % len(plan)]
        obs, reward, terminated, truncated, info = env.step(action)
        out = sim.step(np.asarray(action, np.float32)[None, :])
        np.testing.assert_array_equal(out.observations[0], obs)
        assert out.rewards[0] == np.float32(reward)
        assert (bool(out.terminated[0]), bool(out.truncated[0])) == (terminated, truncated)
        np.testing.assert_array_equal(out.responses[0], info["responses"])
        if terminated or truncated:
            break


@FAST
@given(keys=st.lists(st.integers(0, 2**64 - 1), min_size=2, max_size=5), action=actions)
def test_batch_row_equals_batch_of_one(keys: list[int], action: np.ndarray) -> None:
    """Counter-based randomness: a user's trajectory does not depend on who else shares the batch."""
    config = dataclasses.replace(MTFSessionConfig(), max_requests=8)
    batch = SessionSimulator(config, len(keys))
    batch.start_sessions(np.arange(len(keys)), np.array(keys, np.uint64))
    singles = [SessionSimulator(config, 1) for _ in keys]
    for sim, key in zip(singles, keys):
        sim.start_sessions(np.zeros(1, np.int64), np.array([key], np.uint64))
    for _ in range(config.max_requests):
        out = batch.step(np.tile(action, (len(keys), 1)))
        for i, sim in enumerate(singles):
            one = sim.step(action[None, :])
            np.testing.assert_array_equal(out.observations[i], one.observations[0])
            np.testing.assert_array_equal(out.responses[i], one.responses[0])
            assert out.rewards[i] == one.rewards[0]

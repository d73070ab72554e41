"""Tests for mtf_gym.evaluation: hand-computed offline weighted GAUC, the simulated A/B with common random numbers."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

from mtf_gym import RESPONSE_FIELDS, BaselinePolicy, MTFSessionConfig, RandomFusionPolicy
from mtf_gym.evaluation import (
    LoggedItems,
    SessionOutcomes,
    action_deviation,
    gauc_online_agreement,
    lift_ci,
    offline_weighted_gauc,
    online_ab,
    simulate_sessions,
)

SMALL = MTFSessionConfig(max_requests=6)


# ----------------------------------------------------------------------------------------------------------------------
# Offline weighted GAUC, end to end through offline_weighted_gauc
# ----------------------------------------------------------------------------------------------------------------------
def _sign_policy(observations: np.ndarray) -> np.ndarray:
    """T = 1 task. obs[0] == 0: power +1 (score ~ log pred); obs[0] == 1: power -1 (score ~ -log pred).

    With the default FusionRanges (power in [-2, 2]): action 0.5 -> power 1, -0.5 -> power -1; action -1 -> the
    smallest bias, the same for every item, so each user's order is that of the predictions (or its reverse).
    """
    obs = np.asarray(observations)
    power = np.where(obs[:, 0] == 0, 0.5, -0.5)
    return np.stack([power, np.full(len(obs), -1.0)], axis=1).astype(np.float32)


def _hand_example() -> LoggedItems:
    # (user, observation flag, [(pred, valid view, item reward), (pred, valid view, item reward)]) per request.
    requests = [
        (0, 0, [(0.9, 1, 2.0), (0.5, 0, 0.0)]),
        (0, 0, [(0.5, 1, 1.0), (0.2, 0, -3.0)]),  # reward -3 -> weight max(-3 + 1, 0) = 0
        (1, 1, [(0.8, 0, 0.5), (0.3, 1, 1.5)]),
        (1, 1, [(0.6, 1, 0.0), (0.1, 0, 1.0)]),
        (2, 0, [(0.4, 0, 0.0), (0.7, 0, 1.0)]),  # a single class: skipped
    ]
    return LoggedItems(
        observations=np.array([[flag, 0.0] for _, flag, _ in requests], dtype=np.float32),
        predictions=np.array([[[p] for p, _, _ in items] for _, _, items in requests], dtype=np.float32),
        valid_view=np.array([[v for _, v, _ in items] for _, _, items in requests], dtype=np.float32),
        item_rewards=np.array([[r for _, _, r in items] for _, _, items in requests]),
        user_ids=np.array([u for u, _, _ in requests]),
    )


def test_offline_weighted_gauc_hand_computed() -> None:
    """Three users: policy-dependent ordering, a tie, a zero-weight item, a single-class user.

    User 0 (power +1, score ~ pred): positives 0.9 (w 3), 0.5 (w 2); negatives 0.5 (w 1), 0.2 (w 0).
        pairs: 0.9 > 0.5 -> 3*1; 0.5 = 0.5 (tie) -> 0.5*2*1; any pair with the w=0 item -> 0
        AUC_0 = (3 + 1) / (5 * 1) = 0.8, W_0 = 3 + 1 + 2 + 0 = 6
    User 1 (power -1, score ~ -log pred: lower prediction ranks higher): positives 0.3 (w 2.5), 0.6 (w 1);
        negatives 0.8 (w 1.5), 0.1 (w 2). 0.3 and 0.6 beat 0.8, lose to 0.1:
        AUC_1 = (2.5*1.5 + 1*1.5) / (3.5 * 3.5) = 5.25 / 12.25 = 3/7, W_1 = 7
    User 2: no valid view -> skipped (W_2 = 3 does not enter the average).
    GAUC = (6 * 0.8 + 7 * 3/7) / (6 + 7) = 7.8 / 13 = 0.6
    """
    config = MTFSessionConfig(ranker_tasks=("valid_view",))
    result = offline_weighted_gauc(_sign_policy, _hand_example(), config.fusion)
    assert result.value == pytest.approx(0.6, abs=1e-9)
    assert result.num_users_used == 2
    assert result.num_users_skipped == 1
    np.testing.assert_allclose(result.per_user_auc[:2], [0.8, 3 / 7], atol=1e-9)
    assert math.isnan(result.per_user_auc[2])
    np.testing.assert_allclose(result.per_user_weight, [6.0, 7.0, 3.0])


def test_offline_weighted_gauc_depends_on_the_policy() -> None:
    """The same logs re-scored by the opposite policy reverse each user's ranking (AUC -> 1 - AUC, ties kept)."""
    logs = _hand_example()
    flipped = LoggedItems(logs.observations.copy(), logs.predictions, logs.valid_view, logs.item_rewards,
                          logs.user_ids)
    flipped.observations[:, 0] = 1.0 - flipped.observations[:, 0]
    config = MTFSessionConfig(ranker_tasks=("valid_view",))
    result = offline_weighted_gauc(_sign_policy, flipped, config.fusion)
    np.testing.assert_allclose(result.per_user_auc[:2], [1 - 0.8, 1 - 3 / 7], atol=1e-9)
    assert result.value == pytest.approx((6 * 0.2 + 7 * 4 / 7) / 13, abs=1e-9)


def test_logged_items_from_transitions_reads_the_valid_view_column() -> None:
    class Data:
        observations = np.zeros((2, 3), np.float32)
        predictions = np.full((2, 4, 5), 0.5, np.float32)
        responses = np.zeros((2, 4, len(RESPONSE_FIELDS)), np.float32)
        item_rewards = np.ones((2, 4), np.float32)
        episode_ids = np.array([0, 0])

    Data.responses[0, 1, RESPONSE_FIELDS.index("valid_view")] = 1.0
    logs = LoggedItems.from_transitions(Data())
    assert logs.valid_view.tolist() == [[0, 1, 0, 0], [0, 0, 0, 0]]
    assert logs.user_ids.tolist() == [0, 0]

    Data.responses = np.zeros((2, 0, len(RESPONSE_FIELDS)), np.float32)
    with pytest.raises(ValueError, match="no item logs"):
        LoggedItems.from_transitions(Data())


def test_logged_items_checks_shapes() -> None:
    logs = _hand_example()
    with pytest.raises(ValueError, match="user_ids"):
        LoggedItems(logs.observations, logs.predictions, logs.valid_view, logs.item_rewards, logs.user_ids[:-1])
    with pytest.raises(ValueError, match="valid_view"):
        LoggedItems(logs.observations, logs.predictions, logs.valid_view[:, :1], logs.item_rewards, logs.user_ids)


# ----------------------------------------------------------------------------------------------------------------------
# Online: simulated sessions and A/B
# ----------------------------------------------------------------------------------------------------------------------
def test_simulate_sessions_matches_the_shared_runners_and_ignores_batching() -> None:
    """Session i is the user of seed user_seed + i, whatever the batch size; totals match independent runners."""
    from mtf_bench._sessions import run_sessions

    policy = BaselinePolicy(SMALL)
    out = simulate_sessions(policy, 40, 123, SMALL)
    assert out.num_sessions == 40 and out.user_seed == 123
    batched = simulate_sessions(policy, 40, 123, SMALL, batch_size=7)
    for name in ("returns", "valid_views", "watch_time_min", "requests"):
        np.testing.assert_allclose(getattr(batched, name), getattr(out, name))
    env = gym.make("MTFSession-v0", config=SMALL)
    for i in (0, 17, 39):  # the single env, seeded with user_seed + i, is the same user
        obs, _ = env.reset(seed=123 + i)
        total, requests, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total, requests, done = total + reward, requests + 1, terminated or truncated
        assert total == pytest.approx(out.returns[i], rel=1e-6)
        assert requests == out.requests[i]
    stats = run_sessions(policy, 40, 123, SMALL)
    np.testing.assert_allclose(out.valid_views, stats.per_session("valid_view"))
    np.testing.assert_allclose(out.watch_time_min, stats.per_session("watch_time_s") / 60.0, rtol=1e-6)


def test_online_ab_common_random_numbers_and_lifts() -> None:
    config = SMALL
    policies = {
        "baseline": BaselinePolicy(config),
        "same": BaselinePolicy(config),
        "random": RandomFusionPolicy(config.action_dim, np.random.default_rng(0)),
    }
    ab = online_ab(policies, control="baseline", num_sessions=300, user_seed=7, config=config,
                   rng=np.random.default_rng(1), num_resamples=500)
    assert [a.name for a in ab.arms] == ["baseline", "same", "random"]
    assert ab.arm("baseline").lifts is None
    # The same policy on the same users: identical sessions, lift exactly 0 with a degenerate interval.
    same = ab.arm("same").lifts["return"]
    assert same.estimate == 0.0 and same.low == 0.0 and same.high == 0.0
    # Random fusion is clearly worse than the baseline on every metric (property P5 of
    # docs/design.md#required-properties-of-the-environment).
    for metric in ("return", "valid_views", "watch_time_min"):
        assert ab.arm("random").lifts[metric].high < 0
    with pytest.raises(ValueError, match="control"):
        online_ab(policies, control="nope", num_sessions=2, user_seed=0, config=config, rng=np.random.default_rng(0))


def test_lift_ci_over_training_seeds() -> None:
    n = 200
    rng = np.random.default_rng(0)
    control = SessionOutcomes(*(rng.uniform(1, 2, n) for _ in range(4)), user_seed=5)
    runs = [SessionOutcomes(control.returns * f, control.valid_views, control.watch_time_min, control.requests,
                            user_seed=5) for f in (1.05, 1.10, 1.15)]
    ci = lift_ci(runs, control, "return", rng=np.random.default_rng(1), num_resamples=2000)
    assert ci.estimate == pytest.approx(0.10)
    # Seeds differ by +-5%: the interval reflects that spread (resampling seeds), not just user noise.
    assert 0.05 <= ci.low < 0.10 < ci.high <= 0.15
    assert ci.n == n
    with pytest.raises(ValueError, match="common random numbers"):
        lift_ci(SessionOutcomes(control.returns, control.valid_views, control.watch_time_min, control.requests,
                                user_seed=6), control, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="metric"):
        lift_ci(runs, control, "clicks", rng=np.random.default_rng(0))


def test_session_outcomes_round_trip() -> None:
    out = simulate_sessions(BaselinePolicy(SMALL), 5, 0, SMALL)
    back = SessionOutcomes.from_arrays(out.to_arrays())
    assert back.user_seed == 0
    np.testing.assert_array_equal(back.returns, out.returns)
    assert set(out.means()) == {"return", "valid_views", "watch_time_min", "requests"}


def test_one_record_for_every_rollout() -> None:
    """SessionRunner and simulate_sessions return the same record; what a run did not measure is a clear error;
    batches concatenate into the record of the whole run."""
    from mtf_gym.evaluation import SessionRunner

    config = MTFSessionConfig(max_requests=6, item_logs=False)
    run = SessionRunner(8, config).run(BaselinePolicy(config), 40)
    assert isinstance(run, SessionOutcomes) and run.user_seed == 40 and run.valid_views is None
    with pytest.raises(ValueError, match="valid_views was not measured: it needs a run with item logs"):
        run.metric("valid_views")
    with pytest.raises(ValueError, match="name must be one of"):
        SessionRunner(2, SMALL).run(BaselinePolicy(SMALL), 0).per_session("clicks")
    logged = SessionRunner(8, SMALL).run(BaselinePolicy(SMALL), 40)
    np.testing.assert_array_equal(logged.returns, run.returns)  # item logs change what is recorded, not the users
    whole = simulate_sessions(BaselinePolicy(SMALL), 8, 40, SMALL, batch_size=3)
    np.testing.assert_array_equal(whole.returns, logged.returns)
    np.testing.assert_array_equal(whole.valid_views, logged.per_session("valid_view"))
    assert whole.first_rewards is not None and whole.segments is not None
    np.testing.assert_array_equal(whole.segments, logged.segments)
    per_user = SessionRunner(3, config).run(BaselinePolicy(config), [41, 40, 41])
    assert per_user.user_seed is None
    np.testing.assert_array_equal(per_user.returns, run.returns[[1, 0, 1]])


def test_the_runner_plays_the_slate_env_like_a_hand_loop() -> None:
    from mtf_gym.evaluation import SessionRunner
    from mtf_gym.slate import RandomSlatePolicy

    env = gym.make_vec("MTFSlate-v0", num_envs=4, vectorization_mode="vector_entry_point", num_items=1000,
                       expose_candidates=False)
    policy = RandomSlatePolicy(1000, 6, np.random.default_rng(3))
    run = SessionRunner.on(env).run_with_context(lambda obs, info, live: policy(obs, info), 7)
    policy.rng = np.random.default_rng(3)
    obs, info = env.reset(seed=7)
    returns, done = np.zeros(4), np.zeros(4, bool)
    while not done.all():
        obs, reward, terminated, truncated, info = env.step(policy(obs, info))
        returns += np.where(done, 0.0, reward)
        done |= terminated | truncated
    np.testing.assert_array_equal(run.returns, returns)


def test_action_deviation_and_agreement() -> None:
    obs = np.zeros((4, 18), np.float32)
    base = BaselinePolicy(SMALL)
    np.testing.assert_array_equal(action_deviation(base, base, obs), np.zeros(SMALL.action_dim))
    shifted = action_deviation(lambda o: base(o) + 0.25, base, obs)
    np.testing.assert_allclose(shifted, 0.25, rtol=1e-6)
    agreement = gauc_online_agreement({"a": 0.1, "b": 0.2, "c": 0.3, "x": 9.0}, {"a": 1.0, "b": 2.0, "c": 3.0})
    assert agreement.n == 3 and agreement.spearman_rho == pytest.approx(1.0)


def test_session_seed_plays_the_same_users_in_other_sessions() -> None:
    """``session_seed`` keeps the users of ``seed`` (segment, traits, first observation) and redraws their sessions,
    the starting satisfaction included (that of the session seed's own user); ``session_seed == seed`` is the plain
    run, bit for bit; a row past its session's start cannot be reseeded."""
    from mtf_gym.evaluation import SessionRunner
    from mtf_gym.rng import seed_keys
    from mtf_gym.sim.config import MTFSessionV1Config

    config = MTFSessionV1Config(max_requests=8)
    runner = SessionRunner(32, config)
    policy = BaselinePolicy(config)
    traits: list[np.ndarray] = []
    first_obs: list[np.ndarray] = []
    start_satisfaction: list[np.ndarray] = []

    def record(obs: np.ndarray) -> np.ndarray:
        if runner.env.unwrapped.sim.request_index.max() == 0:
            traits.append(runner.env.unwrapped.sim.users.traits.copy())
            first_obs.append(np.array(obs, copy=True))
            start_satisfaction.append(runner.env.unwrapped.sim.satisfaction.copy())
        return policy(obs)

    own = runner.run(record, 100)
    same = runner.run(record, 100, session_seed=100)
    other = runner.run(record, 100, session_seed=5000)
    others_users = runner.run(record, 5000)
    np.testing.assert_array_equal(start_satisfaction[2], start_satisfaction[3])
    assert not np.array_equal(start_satisfaction[0], start_satisfaction[2])
    np.testing.assert_array_equal(own.returns, same.returns)
    np.testing.assert_array_equal(own.segments, other.segments)
    np.testing.assert_array_equal(traits[0], traits[2])
    np.testing.assert_array_equal(first_obs[0], first_obs[2])
    assert not np.array_equal(own.returns, other.returns)
    assert not np.array_equal(own.segments, others_users.segments)
    # The session of user 100 + i under session seed 5000 + i draws from seed 5000 + i's key.
    sim = runner.env.unwrapped.sim
    runner.env.reset(seed=100)
    sim.reseed_sessions(np.arange(32), seed_keys(range(5000, 5032)))
    np.testing.assert_array_equal(sim.keys, seed_keys(range(5000, 5032)))
    runner.env.step(np.broadcast_to(policy.action, (32, config.action_dim)).copy())
    with pytest.raises(ValueError, match="past their session's start"):
        sim.reseed_sessions(np.arange(32), seed_keys(range(5000, 5032)))
    with pytest.raises(ValueError, match="session_seed must be an int or 32 seeds"):
        runner.run(policy, 100, session_seed=[1, 2])
    with pytest.raises(ValueError, match="session_seed needs the project's user simulator"):
        SessionRunner(4, SMALL).run(BaselinePolicy(SMALL), 0, session_seed=1)

"""MTFSession-v0: Gymnasium/SB3 conformance, determinism, single == vector, bad input, rendering."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mtf_gym
from mtf_gym import MTFSessionConfig, MTFSessionEnv, MTFSessionVectorEnv, RewardWeights, UserModelConfig


def _rollout(env, seed, steps, action_seed=0):
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
        trace += [obs, np.float64(reward), terminated, truncated, info["item_ids"], info["responses"]]
        if terminated or truncated:
            obs, _ = env.reset()
            trace.append(obs)
    return trace


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_registered_and_makeable():
    env = gym.make("MTFSession-v0")
    assert isinstance(env.unwrapped, MTFSessionEnv)
    env2 = gym.make("mtf_gym:MTFSession-v0", page_size=4)
    assert env2.unwrapped.config.page_size == 4
    venv = gym.make_vec("MTFSession-v0", num_envs=3)
    assert isinstance(venv, MTFSessionVectorEnv) and venv.num_envs == 3


def test_gymnasium_check_env_no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*out of date.*")  # gym's nudge: MTFSession-v1 is the default
        check_env(gym.make("MTFSession-v0").unwrapped)


def test_sb3_check_env_no_warnings():
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(MTFSessionEnv(), warn=True)


def test_ppo_learns_the_value_of_a_session():
    # 2048 steps are too few to improve the return measurably, but enough for PPO's critic to learn the session
    # returns it was trained on, better than the best constant guess (so it reads the observation). If training
    # breaks (no gradient steps) or the observation stops carrying what the return depends on, this fails.
    import copy

    import torch
    from stable_baselines3 import PPO

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks: faster, and the same numbers on every machine
    try:
        env = MTFSessionEnv()
        model = PPO("MlpPolicy", env, n_steps=512, batch_size=128, n_epochs=10, learning_rate=1e-3, seed=0,
                    device="cpu")
        untrained = copy.deepcopy(model.policy)
        model.learn(total_timesteps=2048)
        buffer = model.rollout_buffer  # the last rollout, with its discounted returns
        obs = torch.as_tensor(buffer.observations.reshape(-1, *env.observation_space.shape))
        returns = buffer.returns.reshape(-1)
        with torch.no_grad():
            error = {name: float(np.mean((policy.predict_values(obs).numpy().ravel() - returns) ** 2))
                     for name, policy in (("before", untrained), ("after", model.policy))}
    finally:
        torch.set_num_threads(threads)
    assert error["after"] < 0.6 * error["before"], error
    assert error["after"] < 0.9 * float(np.var(returns)), (error, float(np.var(returns)))
    action, _ = model.predict(MTFSessionEnv().reset(seed=1)[0], deterministic=True)
    assert action.shape == env.action_space.shape


def test_same_seed_same_rollout_and_different_seed_differs():
    a = _rollout(MTFSessionEnv(), seed=7, steps=40)
    b = _rollout(MTFSessionEnv(), seed=7, steps=40)
    c = _rollout(MTFSessionEnv(), seed=8, steps=40)
    assert _same(a, b)
    assert not _same(a, c)


def test_vector_equals_single_envs_across_autoreset():
    n, seed, steps = 6, 11, 50
    venv = MTFSessionVectorEnv(num_envs=n)
    envs = [MTFSessionEnv() for _ in range(n)]
    obs, _ = venv.reset(seed=seed)
    np.testing.assert_array_equal(obs, np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(envs)]))
    rng = np.random.default_rng(0)
    ended = np.zeros(n, dtype=bool)
    resets = 0
    for _ in range(steps):
        actions = rng.uniform(-1, 1, (n, 10)).astype(np.float32)
        obs, rewards, terminated, truncated, info = venv.step(actions)
        for i, env in enumerate(envs):
            if ended[i]:
                single_obs, _ = env.reset()
                assert rewards[i] == 0 and not terminated[i] and not truncated[i] and not info["_item_ids"][i]
                resets += 1
                ended[i] = False
            else:
                single_obs, r, te, tr, single_info = env.step(actions[i])
                assert rewards[i] == np.float32(r) and terminated[i] == te and truncated[i] == tr
                np.testing.assert_array_equal(info["item_ids"][i], single_info["item_ids"])
                np.testing.assert_array_equal(info["responses"][i], single_info["responses"])
                ended[i] = te or tr
            np.testing.assert_array_equal(obs[i], single_obs)
    assert resets > 0, "the test must cross at least one autoreset"


def test_vector_env_deterministic():
    def run():
        venv = MTFSessionVectorEnv(num_envs=16)
        obs, _ = venv.reset(seed=5)
        out = [obs]
        actions = np.zeros((16, 10), np.float32)
        for _ in range(20):
            obs, r, te, tr, _ = venv.step(actions)
            out += [obs, r, te, tr]
        return out

    assert _same(run(), run())


def test_item_logs_shapes_and_consistency():
    env = MTFSessionEnv()
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.zeros(10, np.float32))
    k, t = env.config.page_size, env.config.num_tasks
    assert info["item_ids"].shape == (k,) and len(set(info["item_ids"].tolist())) == k
    assert info["predictions"].shape == (k, t)
    assert np.all((info["predictions"] >= 0) & (info["predictions"] <= 1))
    assert info["responses"].shape == (k, len(mtf_gym.RESPONSE_FIELDS))
    np.testing.assert_allclose(info["item_rewards"].sum(), reward, rtol=1e-5)
    np.testing.assert_allclose(info["responses"] @ env.config.reward.as_vector(), info["item_rewards"], rtol=1e-5)
    # The funnel: long view implies valid view; engagement implies valid view; hate excludes valid view.
    col = {name: i for i, name in enumerate(mtf_gym.RESPONSE_FIELDS)}
    env.reset(seed=1)
    for _ in range(30):
        _, _, te, tr, info = env.step(np.zeros(10, np.float32))
        r = info["responses"]
        assert np.all(r[:, col["long_view"]] <= r[:, col["valid_view"]])
        for name in ("like", "comment", "follow", "share"):
            assert np.all(r[:, col[name]] <= r[:, col["valid_view"]])
        assert np.all(r[:, col["hate"]] * r[:, col["valid_view"]] == 0)
        if te or tr:
            env.reset()


def test_item_logs_can_be_disabled():
    env = MTFSessionEnv(item_logs=False)
    env.reset(seed=0)
    info = env.step(np.zeros(10, np.float32))[4]
    assert "item_ids" not in info


def test_out_of_range_actions_are_clipped_and_counted():
    env_a, env_b = MTFSessionEnv(), MTFSessionEnv()
    env_a.reset(seed=3)
    env_b.reset(seed=3)
    wild = np.array([5, -3, 0.5, 0, 0, 2, 0, 0, -1.5, 0], np.float32)
    out_a = env_a.step(wild)
    out_b = env_b.step(np.clip(wild, -1, 1))
    assert out_a[4]["action_clipped"] == 4 and out_b[4]["action_clipped"] == 0
    np.testing.assert_array_equal(out_a[0], out_b[0])
    assert out_a[1] == out_b[1]


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (np.zeros(9, np.float32), r"shape \(10,\)"),
        (np.zeros((1, 10), np.float32), r"shape \(10,\)"),
        (np.array([np.nan] + [0] * 9, np.float32), "NaN or inf"),
        (np.array([0] * 9 + [np.inf], np.float32), "NaN or inf"),
    ],
)
def test_bad_actions_raise(action, match):
    env = MTFSessionEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_bad_vector_actions_raise():
    venv = MTFSessionVectorEnv(num_envs=3)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(3, 10\)"):
        venv.step(np.zeros((2, 10), np.float32))
    with pytest.raises(ValueError, match="NaN or inf"):
        venv.step(np.full((3, 10), np.nan, np.float32))


def test_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        MTFSessionEnv().step(np.zeros(10, np.float32))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MTFSessionConfig(page_size=0), "page_size must be an integer >= 1"),
        (lambda: MTFSessionConfig(num_candidates=3), "num_candidates must be an integer >= page_size"),
        (lambda: MTFSessionConfig(ranker_tasks=("valid_view", "clicks")), "ranker_tasks must be"),
        (lambda: MTFSessionConfig(clickbait_share=1.5), r"clickbait_share must be in \[0, 1\]"),
        (lambda: MTFSessionConfig(max_requests=0), "max_requests must be an integer >= 1"),
        (lambda: MTFSessionConfig(num_topics=40_000), r"num_topics must be an integer in \[2, 32767\]"),
        (lambda: UserModelConfig(boredom_decay=1.0), r"boredom_decay must be in \[0, 1\)"),
        (lambda: UserModelConfig(quick_skip_s=20.0), "quick_skip_s must be in"),
        (lambda: RewardWeights(like=float("inf")), "like must be finite"),
        (lambda: MTFSessionEnv(bogus=1), "unknown MTFSession parameter"),
        (lambda: MTFSessionEnv(render_mode="human"), "render_mode must be one of"),
        (lambda: MTFSessionVectorEnv(num_envs=0), "num_envs must be an integer >= 1"),
    ],
)
def test_bad_config_raises(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_config_round_trips_through_dict():
    cfg = MTFSessionConfig(page_size=4, ranker_tasks=("valid_view", "like"))
    assert MTFSessionConfig.from_dict(cfg.to_dict()) == cfg


def test_fewer_tasks_changes_action_dim():
    env = MTFSessionEnv(ranker_tasks=("valid_view", "watch_time", "like"))
    assert env.action_space.shape == (6,)
    env.reset(seed=0)
    assert env.step(np.zeros(6, np.float32))[4]["predictions"].shape == (6, 3)


def test_render_modes():
    env = MTFSessionEnv(render_mode="ansi")
    env.reset(seed=0)
    assert "no page shown yet" in env.render()
    env.step(np.zeros(10, np.float32))
    text = env.render()
    assert "page reward" in text and "fusion:" in text and len(text.splitlines()) >= 9
    env = MTFSessionEnv(render_mode="rgb_array")
    env.reset(seed=0)
    env.step(np.zeros(10, np.float32))
    img = env.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.min() < 255

"""Slate agents (Wolpertinger, FCPO, TPGR) and their parts: kNN backends, balanced trees, returns, conformance,
learning on a catalogue whose best item is known.

The agents play ``MTFSlate-v0``'s interface; these tests use :mod:`mtf_agents.slate.testing`'s ``KnownBestItemEnv``
(same interface, known optimum), so they do not depend on the slate simulator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mtf_agents.conformance import check_config_errors
from mtf_agents.registry import SLATE_ENV, build_agent, get_registry, load_agent
from mtf_agents.slate.common import VecStepper, decision_latency, discounted_returns
from mtf_agents.slate.fcpo import masked_sequential_argmax
from mtf_agents.slate.knn import ExactKNN, faiss_available, make_knn, recall_at_k
from mtf_agents.slate.testing import KnownBestItemEnv, KnownBestItemVectorEnv, mean_episode_return
from mtf_agents.slate.tree import branching_factor, build_balanced_tree

SLATE_AGENTS = ("fcpo", "tpgr", "wolpertinger")
SMALL_NET = {"hidden_units": (32, 32), "n_envs": 4}
TINY: dict[str, dict[str, Any]] = {
    "wolpertinger": {**SMALL_NET, "learning_starts": 16, "batch_size": 16, "knn_fraction": 0.2},
    "fcpo": {**SMALL_NET, "rollout_steps": 4},
    "tpgr": {**SMALL_NET, "rollout_steps": 4},
}
BAD_VALUES: dict[str, tuple[str, Any]] = {
    "wolpertinger": ("knn_fraction", 0.0),
    "fcpo": ("log_std_min", 2.0),
    "tpgr": ("tree_depth", 0),
}


@pytest.fixture(autouse=True)
def one_torch_thread():
    # Small networks: one thread is faster than two contending ones, and keeps timings stable on shared CPUs.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------------------------------------------------
# kNN
# ----------------------------------------------------------------------------------------------------------------------
def _brute_force(items: np.ndarray, queries: np.ndarray, k: int, metric: str) -> np.ndarray:
    if metric == "ip":
        scores = queries @ items.T
    else:
        scores = -((queries[:, None, :] - items[None, :, :]) ** 2).sum(-1)
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("use_faiss", [True, False])
def test_exact_knn_equals_brute_force(metric: str, use_faiss: bool) -> None:
    if use_faiss and not faiss_available():
        pytest.skip("faiss not installed")
    rng = np.random.default_rng(0)
    items = rng.normal(size=(500, 16)).astype(np.float32)
    queries = rng.normal(size=(40, 16)).astype(np.float32)
    index = ExactKNN(items, metric, use_faiss=use_faiss)
    assert index.uses_faiss == use_faiss and index.recall is None
    scores, ids = index.search(queries, 7)
    np.testing.assert_array_equal(ids, _brute_force(items, queries, 7, metric))
    expected = queries @ items.T if metric == "ip" else -((queries[:, None] - items[None]) ** 2).sum(-1)
    np.testing.assert_allclose(scores, np.take_along_axis(expected, ids, 1), rtol=1e-4, atol=1e-3)
    assert index.recall_at_k(queries, 7) == 1.0


@pytest.mark.parametrize("backend", ["hnsw", "ivf"])
def test_approximate_knn_reports_recall(backend: str) -> None:
    if not faiss_available():
        pytest.skip("faiss not installed")
    rng = np.random.default_rng(1)
    items = rng.normal(size=(2000, 16)).astype(np.float32)
    index = make_knn(items, backend=backend, metric="l2", recall_k=10, recall_queries=64)
    assert index.recall is not None and index.recall.backend == backend
    assert index.recall.k == 10 and index.recall.queries == 64
    assert 0.8 <= index.recall.recall <= 1.0  # default search effort finds most true neighbours at this size
    queries = rng.normal(size=(32, 16)).astype(np.float32)
    assert index.search(queries, 10)[1].shape == (32, 10)
    assert index.recall_at_k(queries, 10) == pytest.approx(
        recall_at_k(index.search(queries, 10)[1], _brute_force(items, queries, 10, "l2")))


def test_recall_at_k_by_hand() -> None:
    found = np.array([[1, 2, 3], [4, 5, -1]])
    exact = np.array([[3, 2, 9], [4, 5, 6]])
    assert recall_at_k(found, exact) == pytest.approx((2 + 2) / 6)


def test_knn_rejects_bad_input() -> None:
    items = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match="metric must be one of"):
        ExactKNN(items, "cosine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend must be one of"):
        make_knn(items, backend="annoy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 4\]"):
        ExactKNN(items).search(items, 5)
    with pytest.raises(ValueError, match=r"queries must have shape \(B, 4\)"):
        ExactKNN(items).search(items[:, :3], 1)


# ----------------------------------------------------------------------------------------------------------------------
# Balanced tree
# ----------------------------------------------------------------------------------------------------------------------
def test_branching_factor_is_exact() -> None:
    assert branching_factor(1, 3) == 1
    assert branching_factor(8, 3) == 2 and branching_factor(9, 3) == 3
    assert branching_factor(1000, 3) == 10 and branching_factor(1001, 3) == 11
    assert branching_factor(10**6, 2) == 1000 and branching_factor(10**6 + 1, 2) == 1001
    assert branching_factor(125, 3) == 5  # 125 ** (1/3) is 4.999... in floating point
    with pytest.raises(ValueError, match="must be >= 1"):
        branching_factor(0, 2)


def _check_tree(tree, n_items: int, depth: int) -> None:
    c = tree.branching
    assert tree.depth == depth and c == branching_factor(n_items, depth)
    assert c ** (depth - 1) < n_items <= c ** depth or (n_items == 1 and c == 1)
    # every item exactly one leaf
    filled = tree.leaf_item[tree.leaf_item >= 0]
    assert len(tree.leaf_item) == c ** depth
    np.testing.assert_array_equal(np.sort(filled), np.arange(n_items))
    np.testing.assert_array_equal(tree.leaf_item[tree.item_leaf], np.arange(n_items))
    # sizes add up and siblings differ by at most one
    assert tree.node_size[0].tolist() == [n_items]
    for level in range(depth):
        children = tree.node_size[level + 1].reshape(c ** level, c)
        np.testing.assert_array_equal(children.sum(1), tree.node_size[level])
        assert (children.max(1) - children.min(1) <= 1).all()
    assert tree.num_internal_nodes == sum(c ** level for level in range(depth))
    # the path of an item leads to its leaf
    for item in range(0, n_items, max(1, n_items // 7)):
        slot = 0
        for digit in tree.item_path(item):
            slot = slot * c + int(digit)
        assert tree.leaf_item[slot] == item


@pytest.mark.parametrize("method", ["pca", "kmeans"])
@pytest.mark.parametrize("depth,c", [(1, 5), (2, 3), (3, 3)])
def test_balanced_tree_on_awkward_sizes(method: str, depth: int, c: int) -> None:
    rng = np.random.default_rng(0)
    for n_items in (1, c ** depth, c ** depth + 1):
        items = rng.normal(size=(n_items, 4))
        tree = build_balanced_tree(items, depth, method=method, seed=0)
        _check_tree(tree, n_items, depth)
        if n_items == c ** depth:
            assert tree.branching == c and (tree.node_size[depth] == 1).all()  # a full tree
        if n_items == c ** depth + 1:
            assert tree.branching == c + 1


def test_pca_tree_groups_similar_items() -> None:
    # Two well-separated blobs of 8 items, depth 2 -> c = 4: the root's split along the first principal component
    # follows the blobs, so each blob lies under exactly two of the four root children.
    rng = np.random.default_rng(0)
    items = np.concatenate([rng.normal(-10, 1, size=(8, 3)), rng.normal(10, 1, size=(8, 3))])
    tree = build_balanced_tree(items, 2, method="pca")
    root_child = tree.item_leaf // tree.branching
    assert set(root_child[:8]).isdisjoint(set(root_child[8:]))


def test_tree_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        build_balanced_tree(np.eye(3), 2, method="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty"):
        build_balanced_tree(np.zeros((0, 3)), 2)


# ----------------------------------------------------------------------------------------------------------------------
# Returns, reward shaping, masking
# ----------------------------------------------------------------------------------------------------------------------
def test_discounted_returns_by_hand() -> None:
    g = 0.5
    rewards = np.array([[1.0], [2.0], [0.0], [4.0], [8.0]])
    terminated = np.array([[False], [True], [False], [False], [False]])
    truncated = np.array([[False], [False], [False], [True], [False]])
    valid = np.array([[True], [True], [False], [True], [True]])  # step 2 is a next-step autoreset
    next_values = np.array([[10.0], [10.0], [10.0], [6.0], [3.0]])
    out = discounted_returns(rewards, terminated, truncated, valid, next_values, g)
    expected = [1 + g * 2, 2.0, 0.0, 4 + g * 6, 8 + g * 3]
    np.testing.assert_allclose(out[:, 0], expected)


def test_reward_shaping_counts_streaks() -> None:
    envs = KnownBestItemVectorEnv(1, num_items=6, num_user_types=1, max_requests=6, page_size=1)
    rewards = envs.envs[0].unwrapped.item_rewards[0]
    pos, neg = int(np.argmax(rewards)), int(np.argmin(rewards))
    assert rewards[pos] > 0 > rewards[neg]
    stepper = VecStepper(envs, seed=0, shaping_alpha=0.1)
    plan = [pos, pos, neg, pos, neg, neg]
    shaped = [stepper.step(np.array([[item]]))["shaped"][0] for item in plan]
    c_p = [0, 1, 2, 0, 1, 0]
    c_n = [0, 0, 0, 1, 0, 1]
    expected = [rewards[item] + 0.1 * (p - n) for item, p, n in zip(plan, c_p, c_n)]
    np.testing.assert_allclose(shaped, expected)
    out = stepper.step(np.array([[pos]]))  # the session ended at the cap: this is the autoreset step
    assert not out["valid"][0] and stepper.finished_returns == [pytest.approx(rewards[plan].sum())]


def test_masked_sequential_argmax_by_hand() -> None:
    scores = torch.tensor([[[5.0, 4.0, 3.0, 0.0], [9.0, 1.0, 8.0, 0.0], [9.0, 9.5, 8.0, 0.0]]])
    assert masked_sequential_argmax(scores, None).tolist() == [[0, 2, 1]]
    assert masked_sequential_argmax(scores, np.array([[0, -1]])).tolist() == [[1, 2, 3]]


# ----------------------------------------------------------------------------------------------------------------------
# Registry and conformance
# ----------------------------------------------------------------------------------------------------------------------
def test_slate_agents_are_registered_for_the_slate_env() -> None:
    registry = get_registry()
    assert set(registry.names(env=SLATE_ENV)) >= set(SLATE_AGENTS)
    assert not set(SLATE_AGENTS) & set(registry.names(env="MTFSession-v0"))
    for name in SLATE_AGENTS:
        spec = registry.get(name)
        assert spec.kind == "online" and spec.agent_class.env_id == SLATE_ENV
        config = spec.config_class()
        assert config.hidden_units == (256, 256) and config.gamma == 0.9  # the zoo's shared defaults


@pytest.mark.parametrize("name", SLATE_AGENTS)
def test_slate_agent_conformance(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mtf_gym import MTFSessionConfig

    monkeypatch.chdir(tmp_path)
    agent = build_agent(name, **TINY[name])
    assert agent.name == name and not agent.is_fitted
    obs = np.zeros((3, 12), dtype=np.float32)
    with pytest.raises(RuntimeError, match="not trained"):
        agent.act(obs)
    with pytest.raises(TypeError, match="fit_online"):
        agent.fit(None, 10)
    with pytest.raises(TypeError, match="slate agent"):
        agent.fit_online(MTFSessionConfig(), 10)
    envs = KnownBestItemVectorEnv(4, num_items=30, page_size=3, leave_prob=0.2)
    metrics = agent.fit_online(envs, n_steps=64, seed=0, show_progress=False)
    assert isinstance(metrics, dict) and all(isinstance(v, float) for v in metrics.values())
    assert np.isfinite(metrics["mean_return"])

    obs = np.asarray(envs.reset(seed=5)[0])
    obs = np.concatenate([obs, np.random.default_rng(0).normal(size=(60, obs.shape[1])).astype(np.float32)])
    pages = agent.act(obs)
    assert pages.shape == (len(obs), 3) and pages.dtype == np.int64
    assert (pages >= 0).all() and (pages < 30).all()
    assert all(len(set(row)) == 3 for row in pages.tolist())  # no repeated item on a page
    np.testing.assert_array_equal(agent.act(obs), pages)  # deterministic
    np.testing.assert_array_equal(agent(obs), pages)
    exclude = pages[:, :2]
    excluded_pages = agent.act(obs, exclude=exclude)
    assert not (excluded_pages[:, :, None] == exclude[:, None, :]).any()
    with pytest.raises(ValueError, match="shape"):
        agent.act(obs[:, :-1])
    with pytest.raises(ValueError, match="exclude"):
        agent.act(obs, exclude=np.full((len(obs), 1), 30))

    saved = agent.save(tmp_path / name)
    loaded = load_agent(saved)
    assert type(loaded) is type(agent) and loaded.config == agent.config
    np.testing.assert_array_equal(loaded.act(obs), pages)
    np.testing.assert_array_equal(loaded.act(obs, exclude=exclude), excluded_pages)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]

    assert decision_latency(loaded, obs[:8], repeats=2) > 0 and loaded.decision_latency(obs[:8], repeats=2) > 0
    check_config_errors(name, BAD_VALUES[name])


@pytest.mark.parametrize("name", SLATE_AGENTS)
def test_slate_agent_plays_mtf_slate_v0(name: str) -> None:
    # The agents' own env: a few training steps on MTFSlate-v0, then pages the env accepts.
    import gymnasium as gym

    import mtf_gym  # noqa: F401  (registers MTFSlate-v0)

    envs = gym.make_vec("MTFSlate-v0", num_envs=4, num_items=2000)
    try:
        agent = build_agent(name, **TINY[name])
        metrics = agent.fit_online(envs, n_steps=64, seed=0, show_progress=False)
        assert np.isfinite(metrics["mean_return"])
        obs, _ = envs.reset(seed=1)
        pages = agent.act(obs)
        page_size = envs.unwrapped.page_size
        assert pages.shape == (4, page_size) and pages.dtype == np.int64
        assert ((pages >= 0) & (pages < 2000)).all()
        assert all(len(set(row)) == page_size for row in pages.tolist())  # distinct ids on every page
        envs.step(pages)  # the env validates pages (ValueError on a repeated or out-of-range id)
    finally:
        envs.close()


def test_session_conformance_checker_refuses_slate_agents() -> None:
    from mtf_agents.conformance import check_agent

    with pytest.raises(ValueError, match="MTFSlate-v0"):
        check_agent("tpgr")


def test_training_is_reproducible() -> None:
    pages = []
    for _ in range(2):
        agent = build_agent("tpgr", **TINY["tpgr"])
        agent.fit_online(KnownBestItemVectorEnv(4, num_items=30, page_size=2), n_steps=64, seed=3,
                         show_progress=False)
        pages.append(agent.act(np.eye(4, 12, dtype=np.float32)))
    np.testing.assert_array_equal(*pages)


def test_tpgr_fills_a_page_with_the_whole_catalogue() -> None:
    # K = N: the masking must route every walk to a still-free leaf, so the page is a permutation of the catalogue.
    agent = build_agent("tpgr", hidden_units=(8,), tree_depth=2)
    env = KnownBestItemEnv(num_items=7, page_size=7, num_user_types=2)
    agent.initialise(env.observation_space.shape[0], env.item_embeddings, 7)
    pages = agent.act(np.random.default_rng(0).normal(size=(5, 10)))
    assert (np.sort(pages, axis=1) == np.arange(7)).all()


def test_wolpertinger_with_all_neighbours_is_the_critics_top_k() -> None:
    agent = build_agent("wolpertinger", hidden_units=(16,), knn_fraction=1.0)
    env = KnownBestItemEnv(num_items=20, page_size=3)
    agent.initialise(env.observation_space.shape[0], env.item_embeddings, 3)
    obs = np.random.default_rng(0).normal(size=(6, env.observation_space.shape[0])).astype(np.float32)
    with torch.no_grad():
        q = agent._q_items(agent.critic, torch.from_numpy(obs), torch.arange(20).repeat(6, 1)).numpy()
    expected = np.argsort(-q, axis=1)[:, :3]
    np.testing.assert_array_equal(agent.act(obs), expected)


def test_wolpertinger_reports_approximate_recall() -> None:
    if not faiss_available():
        pytest.skip("faiss not installed")
    agent = build_agent("wolpertinger", **{**TINY["wolpertinger"], "knn_backend": "hnsw"})
    metrics = agent.fit_online(KnownBestItemVectorEnv(4, num_items=40), n_steps=32, seed=0, show_progress=False)
    assert 0.0 <= metrics["knn_recall_at_k"] <= 1.0 and metrics["knn_k"] == agent.k
    assert agent.knn_report() is not None


# ----------------------------------------------------------------------------------------------------------------------
# Learning: the best item is known
# ----------------------------------------------------------------------------------------------------------------------
LEARN: dict[str, tuple[dict[str, Any], int]] = {
    "wolpertinger": ({"hidden_units": (64, 64), "learning_starts": 200, "batch_size": 64, "learning_rate": 1e-3,
                      "knn_fraction": 0.2}, 3000),
    "fcpo": ({"hidden_units": (64, 64), "learning_rate": 3e-3, "rollout_steps": 8, "normalize_advantages": True}, 6000),
    # Raw advantages, as this test was calibrated (standardised ones, the default now, find 2 of the 4 best items at
    # this seed, normalised return still >= MARGIN).
    "tpgr": ({"hidden_units": (64, 64), "learning_rate": 1e-3, "rollout_steps": 4, "entropy_coef": 0.05,
              "normalize_advantages": False}, 12000),
}
LEARN_ENV = {"num_items": 50, "page_size": 1, "num_user_types": 4, "max_requests": 5}
MARGIN = 0.7  # normalised return: 0 = random pages, 1 = the best item every time
# Best item found for at least 3 of the 4 user types. On this catalogue one item is good for several types (a hub);
# policy-gradient agents can settle on it for a type whose best item is elsewhere, hence not 4 of 4.
MIN_BEST_FOUND = 3


@pytest.mark.parametrize("name", SLATE_AGENTS)
def test_agent_learns_the_best_item(name: str) -> None:
    """Fixed seed; a few seconds per agent on CPU."""
    overrides, steps = LEARN[name]
    agent = build_agent(name, n_envs=8, **overrides)
    agent.fit_online(KnownBestItemVectorEnv(8, **LEARN_ENV), n_steps=steps, seed=0, show_progress=False)
    env = KnownBestItemEnv(**LEARN_ENV)
    types = range(LEARN_ENV["num_user_types"])
    oracle = np.mean([env.oracle_page_reward(z) for z in types]) * LEARN_ENV["max_requests"]
    random = np.mean([env.random_page_reward(z) for z in types]) * LEARN_ENV["max_requests"]
    achieved = mean_episode_return(agent.act, KnownBestItemVectorEnv(8, **LEARN_ENV), episodes=400, seed=123)
    normalised = (achieved - random) / (oracle - random)
    first_obs = np.eye(LEARN_ENV["num_user_types"], env.observation_space.shape[0], dtype=np.float32)
    best_found = (agent.act(first_obs)[:, 0] == env.best_items).sum()
    assert normalised >= MARGIN, f"{name}: normalised return {normalised:.3f} < {MARGIN}"
    assert best_found >= MIN_BEST_FOUND, f"{name}: best item for {best_found} of 4 user types"


def test_tpgr_numpy_serving_path_matches_torch_walk() -> None:
    agent = build_agent("tpgr", hidden_units=(16,), tree_depth=3)
    env = KnownBestItemEnv(num_items=60, page_size=4)
    agent.initialise(env.observation_space.shape[0], env.item_embeddings, 4)
    obs_dim = env.observation_space.shape[0]
    obs = torch.from_numpy(np.random.default_rng(0).normal(size=(32, obs_dim)).astype(np.float32))
    exclude = np.random.default_rng(1).integers(-1, 60, size=(32, 5))
    with torch.no_grad():
        fast = agent._select(obs, exclude, explore=False)[0]
    with torch.enable_grad():
        walked = agent._select(obs, exclude, explore=False)[0]  # the torch walk (used in training)
    np.testing.assert_array_equal(fast, walked)


VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("tpgr", {"node_policy": "shared"}),
    ("tpgr", {"tree_method": "kmeans", "tree_depth": 3, "shaping_alpha": 0.1}),
    ("fcpo", {"value_baseline": False, "normalize_advantages": True}),
    ("wolpertinger", {"knn_metric": "ip", "knn_backend": "ivf", "max_neighbours": 8}),
    ("wolpertinger", {"knn_backend": "hnsw"}),
]


@pytest.mark.parametrize("name,overrides", VARIANTS)
def test_variants_train_act_and_round_trip(name: str, overrides: dict[str, Any], tmp_path: Path) -> None:
    if overrides.get("knn_backend") in ("ivf", "hnsw") and not faiss_available():
        pytest.skip("faiss not installed")
    agent = build_agent(name, **{**TINY[name], **overrides})
    agent.fit_online(KnownBestItemVectorEnv(4, num_items=40, page_size=3), n_steps=48, seed=1, show_progress=False)
    obs = np.random.default_rng(2).normal(size=(20, 12)).astype(np.float32)
    pages = agent.act(obs)
    assert all(len(set(row)) == 3 for row in pages.tolist()) and pages.max() < 40
    loaded = load_agent(agent.save(tmp_path / "saved"))
    np.testing.assert_array_equal(loaded.act(obs), pages)
    if name == "tpgr":
        np.testing.assert_array_equal(loaded.tree.leaf_item, agent.tree.leaf_item)  # the saved tree, not a rebuild


def test_tree_from_leaf_items_checks_its_input() -> None:
    tree = build_balanced_tree(np.random.default_rng(0).normal(size=(10, 3)), 2)
    again = type(tree).from_leaf_items(tree.leaf_item, 2)
    np.testing.assert_array_equal(again.item_leaf, tree.item_leaf)
    with pytest.raises(ValueError, match="c \\*\\* depth"):
        type(tree).from_leaf_items(tree.leaf_item[:-1], 2)
    broken = tree.leaf_item.copy()
    broken[broken == 3] = 4
    with pytest.raises(ValueError, match="exactly once"):
        type(tree).from_leaf_items(broken, 2)


def test_fit_online_accepts_a_single_env_and_leaves_it_open() -> None:
    env = KnownBestItemEnv(num_items=20, page_size=2)
    agent = build_agent("fcpo", **TINY["fcpo"])
    agent.fit_online(env, n_steps=16, seed=0, show_progress=False)
    obs, _ = env.reset(seed=0)  # still usable
    page = agent.act(obs[None])[0]
    env.step(page)
    with pytest.raises(TypeError, match="env id"):
        agent.fit_online(42, n_steps=16)

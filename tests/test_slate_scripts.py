"""Smoke tests of the MTFSlate-v0 scripts (``benchmarks/perf_slate.py``, ``benchmarks/slate_properties.py``): tiny
settings, in-process; the parsed outputs are checked, not the speed."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest

import mtf_gym  # noqa: F401
from mtf_bench import perf_slate, slate_properties
from mtf_gym.slate import OraclePolicy, RandomSlatePolicy

REFERENCE_ROWS = ["random", "most popular", "pipeline (control)", "oracle"]
PROPERTY_ROWS = [*REFERENCE_ROWS, "oracle over the candidates", "linear over embeddings (catalogue)",
                 "linear over embeddings (candidates)"]


def test_top_k_pages_orders_descending_and_breaks_ties_by_lower_index():
    scores = np.array([[1.0, 3.0, 3.0, 2.0], [0.0, -1.0, 5.0, 5.0]], np.float32)
    assert slate_properties.top_k_pages(scores, 3).tolist() == [[1, 2, 3], [2, 3, 0]]


def test_oracle_pages_equal_oracle_policy_on_live_rows():
    env = gym.make_vec("MTFSlate-v0", num_envs=6, num_items=1000, expose_candidates=False)
    obs, _ = env.reset(seed=5)
    oracle = OraclePolicy(env)
    random_pages = RandomSlatePolicy(1000, 6, np.random.default_rng(0))
    for _ in range(3):  # also in later states (boredom, fatigue, satisfaction have moved)
        expected = oracle(obs)
        rows = np.array([0, 2, 5])
        got = slate_properties.oracle_pages(env.unwrapped.sim, rows, 6)
        np.testing.assert_array_equal(got, expected[rows])
        obs, *_ = env.step(random_pages(obs))


def test_expected_rewards_per_row_items_equal_shared_items():
    env = gym.make_vec("MTFSlate-v0", num_envs=3, num_items=1000, expose_candidates=False)
    env.reset(seed=1)
    sim, rows, items = env.unwrapped.sim, np.array([2, 0]), np.array([5, 999, 17])
    shared = slate_properties.expected_rewards(sim, rows, items)
    per_row = slate_properties.expected_rewards(sim, rows, np.stack([items, items[::-1]]))
    np.testing.assert_array_equal(per_row[0], shared[0])
    np.testing.assert_array_equal(per_row[1], shared[1][::-1])
    assert (shared[0] != shared[1]).any()  # different users value the same items differently


def test_slate_properties_smoke(tmp_path, capsys):
    out = tmp_path / "props.json"
    payload = slate_properties.main(["--users", "24", "--train-users", "8", "--num-items", "1000",
                                     "--items-per-request", "64", "--resamples", "200", "--out", str(out)])
    printed = capsys.readouterr().out
    assert json.loads(out.read_text()) == json.loads(json.dumps(payload))
    assert list(payload["policies"]) == PROPERTY_ROWS
    for name in PROPERTY_ROWS:
        assert any(line.startswith(name) for line in printed.splitlines()), name
        ci = payload["policies"][name]["mean_return"]
        assert math.isfinite(ci["estimate"]) and ci["low"] <= ci["estimate"] <= ci["high"] and ci["n"] == 24
    policies = payload["policies"]
    assert policies["random"]["lift_over_random"] is None and policies["oracle"]["normalised"] is None
    # The oracle knows the truth: it beats random on the same users by a wide margin.
    assert policies["oracle"]["mean_return"]["estimate"] > 2 * policies["random"]["mean_return"]["estimate"]
    for name in ("pipeline (control)", "linear over embeddings (catalogue)"):
        assert math.isfinite(policies[name]["normalised"]["estimate"])
    assert 0.0 < payload["linear_model"]["train_r2"] <= 1.0
    assert payload["linear_model"]["weights"] == (19 + 32 + 1) * (32 + 1)


def test_slate_properties_same_seed_same_numbers():
    args = ["--users", "8", "--train-users", "4", "--num-items", "1000", "--items-per-request", "32",
            "--resamples", "50"]
    first, second = slate_properties.main(args), slate_properties.main(args)
    for name in PROPERTY_ROWS:
        assert first["policies"][name]["mean_return"] == second["policies"][name]["mean_return"]


def test_slate_properties_rejects_bad_users():
    with pytest.raises(SystemExit):
        slate_properties.main(["--users", "1"])


def test_perf_slate_smoke(tmp_path, capsys):
    sizes = [1000, 2000]
    payload = perf_slate.main(["--sizes", *map(str, sizes), "--users", "8", "--seconds", "0.02", "--rounds", "1",
                               "--repeats", "1", "--agents", "tpgr", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    saved = json.loads((tmp_path / "perf_slate.json").read_text())
    assert saved["sizes"] == sizes
    assert (tmp_path / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name, rate in payload["rates"].items():
        assert math.isfinite(rate["median"]) and rate["median"] > 0, name
    for key in ("slate_vs_fusion", "slate_vs_fusion_same_catalogue", "scale_ratio", "scale_ratio_small_working_set"):
        assert math.isfinite(payload[key]) and payload[key] > 0, key
    assert "slate vector (expose_candidates=False) / fusion vector" in printed
    # Memory: embeddings are exactly N x 32 float32; the catalogue grows with N, the per-user state does not.
    m1, m2 = payload["memory"]["1000"], payload["memory"]["2000"]
    assert m1["embeddings"] == 1000 * 32 * 4 and m2["embeddings"] == 2000 * 32 * 4
    assert m2["catalogue_kernel"] == 2 * m1["catalogue_kernel"]
    assert m2["per_user"] == m1["per_user"] and m1["tracemalloc_peak"] > 0
    rows = {(r["N"], r["name"]) for r in payload["latency"]}
    assert rows == {(n, name) for n in sizes for name in [*REFERENCE_ROWS, "tpgr"]}
    for row in payload["latency"]:
        assert 0 < row["seconds"] < 10 and row["repeats"] >= 1
    assert next(r for r in payload["latency"] if r["name"] == "tpgr")["torch_bytes"] > 0


def test_perf_slate_agent_list_is_the_registry_slate_agents():
    names = perf_slate.slate_agent_names()
    assert {"wolpertinger", "fcpo", "tpgr"} <= set(names)
    from mtf_agents.registry import get_registry

    assert all(get_registry().get(name).env == "MTFSlate-v0" for name in names)


def test_env_buffer_bytes_counts_the_candidate_buffers_per_user():
    with_c = gym.make_vec("MTFSlate-v0", num_envs=4, num_items=1000, expose_candidates=True)
    without = gym.make_vec("MTFSlate-v0", num_envs=4, num_items=1000, expose_candidates=False)
    a, b = perf_slate.env_buffer_bytes(with_c), perf_slate.env_buffer_bytes(without)
    c, t = with_c.unwrapped.candidates.shape[1], with_c.unwrapped.candidate_predictions.shape[2]
    assert a["per_user"] - b["per_user"] == 4 * c * 8 + 4 * c * t * 4
    assert a["embeddings"] == b["embeddings"]


def test_small_catalogue_pool_keeps_the_small_catalogues_topic_layout():
    env = gym.make_vec("MTFSlate-v0", num_envs=2, num_items=2000, expose_candidates=False)  # 100 items per topic
    pool = perf_slate.small_catalogue_pool(env, 1000)  # 50 per topic, as a 1,000-item catalogue
    assert pool.shape == (1000,) and len(np.unique(pool)) == 1000
    assert pool[:3].tolist() == [0, 1, 2] and pool[49] == 49 and pool[50] == 100 and pool[-1] == 19 * 100 + 49
    np.testing.assert_array_equal(pool // 100, np.arange(1000) // 50)

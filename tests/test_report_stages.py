"""The report's stages on small fixtures with hand-checkable numbers: rliable statistics, learning-curve checkpoints
and the convergence rule, saturation, offline-estimator agreement, every claim rule, and the device check."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtf_bench.harness import claims, stats
from mtf_bench.harness.curves import checkpoint_schedule, convergence, seed_mean_curve
from mtf_bench.harness.jobs import at_band_edge, saturation
from mtf_bench.harness.plots import Estimate


# ----------------------------------------------------------------------------------------------------------------------
# rliable statistics
# ----------------------------------------------------------------------------------------------------------------------
def test_normalise_random_is_0_reference_is_100() -> None:
    np.testing.assert_allclose(stats.normalise([5.0, 15.0, 25.0, 35.0], 5.0, 25.0), [0.0, 50.0, 100.0, 150.0])
    with pytest.raises(ValueError, match="must exceed random_return"):
        stats.normalise([1.0], 5.0, 5.0)


def test_iqm_is_the_25_percent_trimmed_mean_with_a_bootstrap_interval() -> None:
    # Four seeds 0, 10, 20, 30: the middle half is {10, 20}, so the IQM is 15.
    out = stats.iqm({"a": np.array([0.0, 10.0, 20.0, 30.0]), "b": np.array([7.0, 7.0])}, reps=500)
    assert out["a"].value == pytest.approx(15.0)
    assert 0.0 <= out["a"].low <= 15.0 <= out["a"].high <= 30.0
    assert (out["b"].value, out["b"].low, out["b"].high) == (7.0, 7.0, 7.0)  # no spread, no interval
    again = stats.iqm({"a": np.array([0.0, 10.0, 20.0, 30.0])}, reps=500)
    assert again["a"] == out["a"]  # seeded: reproducible


def test_probability_of_improvement_counts_pairs() -> None:
    # x = {1, 2}, y = {0, 3}: x beats y in 2 of 4 pairs -> 0.5; ties count half.
    assert stats.probability_of_improvement(np.array([1.0, 2.0]), np.array([0.0, 3.0]), reps=200).value == 0.5
    assert stats.probability_of_improvement(np.array([3.0, 4.0]), np.array([1.0, 2.0]), reps=200).value == 1.0
    assert stats.probability_of_improvement(np.array([1.0]), np.array([1.0]), reps=50).value == 0.5


def test_performance_profile_is_the_share_of_runs_above_tau() -> None:
    point, low, high = stats.performance_profiles({"a": np.array([0.0, 10.0, 20.0, 30.0])}, [5.0, 25.0, 40.0],
                                                  reps=200)["a"]
    np.testing.assert_allclose(point, [0.75, 0.25, 0.0])
    assert (low <= point).all() and (point <= high).all()


def test_profile_thresholds_span_the_runs_and_the_reference() -> None:
    from mtf_bench.harness.aggregate import profile_thresholds

    taus = profile_thresholds({"a": np.array([[94.3], [95.7]]), "b": np.array([[88.2]])}, points=15)
    assert (taus[0], taus[-1], len(taus)) == (87.0, 101.0, 15)  # floor(88.2) - 1 .. max(ceil(95.7) + 1, 100 + 1)
    assert profile_thresholds({"a": np.array([40.0, 119.5, np.nan])}, points=3) == (39.0, 80.0, 121.0)


def test_spearman_with_interval_and_selection_regret() -> None:
    online = np.arange(10.0)
    perfect = stats.spearman_with_ci(online * 2 + 1, online, reps=300)
    assert perfect.rho == pytest.approx(1.0) and perfect.low > 0.5 and perfect.n == 10
    reversed_ = stats.spearman_with_ci(-online, online, reps=300)
    assert reversed_.rho == pytest.approx(-1.0) and reversed_.high < 0
    assert math.isnan(stats.spearman_with_ci([1.0, 2.0], [1.0, 2.0]).rho)  # too few policies
    # The estimator ranks policy 0 first (offline 3), whose online return 5 is 5 below the best (10): regret 50%.
    assert stats.offline_selection_regret([3.0, 1.0, 2.0], [5.0, 10.0, 7.0]) == (0, 5.0, 0.5)


# ----------------------------------------------------------------------------------------------------------------------
# Learning curves
# ----------------------------------------------------------------------------------------------------------------------
def test_checkpoint_schedule_is_log_spaced_and_ends_at_the_budget() -> None:
    assert checkpoint_schedule(1500, 8) == (12, 23, 47, 94, 187, 375, 750, 1500)
    assert checkpoint_schedule(20, 3) == (5, 10, 20)
    assert checkpoint_schedule(300_000, 8)[-1] == 300_000 and len(checkpoint_schedule(300_000, 8)) == 8
    assert checkpoint_schedule(5, 8) == (1, 2, 3, 4, 5)  # tiny budgets: fewer, distinct points
    assert checkpoint_schedule(77, 1) == (77,)
    with pytest.raises(ValueError, match="integers >= 1"):
        checkpoint_schedule(0, 8)


def test_convergence_rule() -> None:
    rng = np.random.default_rng(0)
    users = rng.uniform(10.0, 30.0, size=400)
    noise = rng.normal(0.0, 0.5, size=400)
    steps = (10, 20, 40)
    flat = np.stack([users * 0.8, users, users + noise])
    assert convergence(steps, flat, rng=np.random.default_rng(1)).status == "converged"
    rising = np.stack([users * 0.8, users, users * 1.1 + noise])
    result = convergence(steps, rising, rng=np.random.default_rng(1))
    assert result.status == "still improving" and result.change.low > 0 and result.steps == (20, 40)
    assert result.change.estimate == pytest.approx(rising[2].mean() / rising[1].mean() - 1)
    falling = np.stack([users, users, users * 0.9 + noise])
    assert convergence(steps, falling, rng=np.random.default_rng(1)).status == "declining"
    assert convergence((40,), users[None], rng=np.random.default_rng(1)).status == "one checkpoint"
    # Seeds are averaged per user before the rule is applied.
    curve_steps, mean = seed_mean_curve([(steps, flat), (steps, flat + 2.0)])
    assert curve_steps == steps and np.allclose(mean, flat + 1.0)
    with pytest.raises(ValueError, match="share one schedule"):
        seed_mean_curve([(steps, flat), ((1, 2, 3), flat)])


# ----------------------------------------------------------------------------------------------------------------------
# Saturation
# ----------------------------------------------------------------------------------------------------------------------
def test_saturation_shares() -> None:
    centres = np.zeros((2, 3))
    actions = np.array([[1.0, 0.15, 0.0], [-0.5, -0.2, 0.1]])
    out = saturation(actions, centres, band=0.15)
    assert out["action_edge"] == pytest.approx(1 / 6)  # only the 1.0 entry
    assert out["band_edge"] == pytest.approx(4 / 6)  # 1.0, 0.15, -0.5, -0.2 (0.1 and 0.0 are inside)
    assert out["band_edge_per_dim"] == pytest.approx([1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="one shape"):
        saturation(actions, np.zeros((2, 2)), band=0.15)


def test_band_edge_uses_each_rows_own_centre_and_offsets() -> None:
    # Row 0 explored around 0.5 in [-0.1, +0.2], row 1 around -0.3 in [-0.15, +0.15] (recorded per transition).
    centres = np.array([[0.5, 0.5], [-0.3, -0.3]])
    lower = np.array([[-0.1, -0.1], [-0.15, -0.15]])
    upper = np.array([[0.2, 0.2], [0.15, 0.15]])
    actions = np.array([[0.7, 0.45], [-0.45, -0.2]])  # +0.2 (upper edge), -0.05 (inside), -0.15 (lower edge), +0.1
    np.testing.assert_array_equal(at_band_edge(actions, centres, lower, upper), [[True, False], [True, False]])
    # A scalar band is the symmetric case saturation() uses.
    np.testing.assert_array_equal(at_band_edge(actions, centres, -0.15, 0.15), [[True, False], [True, False]])
    np.testing.assert_array_equal(at_band_edge(actions, np.zeros((2, 2)), -0.15, 0.15), [[True, True], [True, True]])


# ----------------------------------------------------------------------------------------------------------------------
# Claim rules
# ----------------------------------------------------------------------------------------------------------------------
def E(value: float, low: float | None = None, high: float | None = None) -> Estimate:
    return Estimate(value, value if low is None else low, value if high is None else high)


def test_order_rule() -> None:
    assert claims.check_order([("a", E(1, 0.9, 1.1)), ("b", E(2, 1.9, 2.1))])[0] == "reproduces"
    assert claims.check_order([("a", E(1, 0, 3)), ("b", E(2, 1, 4))])[0] \
        == "reproduces (order only; no pair separated by its 95% CIs)"
    assert claims.check_order([("a", E(1, 0, 1.5)), ("b", E(2, 1.8, 4)), ("c", E(3, 2.5, 5))])[0] \
        == "reproduces (order only; 1 of 2 pairs separated by their 95% CIs)"
    assert claims.check_order([("a", E(1)), ("b", E(3)), ("c", E(2)), ("d", E(4))])[0] == "partially reproduces"
    assert claims.check_order([("a", E(3)), ("b", E(2)), ("c", E(1))])[0] == "does not reproduce"
    verdict, detail = claims.check_order([("a", E(1)), ("b", None)])
    assert verdict == "not tested" and "missing: b" in detail


def test_reward_and_gauc_order_claims() -> None:
    lifts = {(a, d): E(0.01 * i) for i, (_, a, d) in enumerate(claims.REWARD_ORDER)}
    assert claims.claim_reward_order(lifts).verdict == "reproduces"
    assert claims.claim_reward_order({}).verdict == "not tested"
    gauc = {(a, d): E(0.8 - 0.01 * i) for i, (_, a, d) in enumerate(claims.GAUC_ORDER)}
    assert claims.claim_gauc_order(gauc).verdict == "does not reproduce"


def test_uniform_vs_gaussian_claim() -> None:
    assert claims.claim_uniform_vs_gaussian({"integrated_rl": E(0.02), "iql": E(0.01), "cql": E(-0.01)}).verdict \
        == "reproduces"
    assert claims.claim_uniform_vs_gaussian({"integrated_rl": E(-0.02), "iql": E(0.01), "cql": E(0.01)}).verdict \
        == "partially reproduces"
    # IntegratedRL not run: its half of the rule is unknown, so a majority alone is 'partially'.
    without = claims.claim_uniform_vs_gaussian({"iql": E(0.01), "cql": E(0.01), "bcq": E(-0.01)})
    assert without.verdict == "partially reproduces" and "IntegratedRL not run" in without.measured
    assert claims.claim_uniform_vs_gaussian({"integrated_rl": E(-0.02), "iql": E(-0.01)}).verdict \
        == "does not reproduce"
    assert claims.claim_uniform_vs_gaussian({}).verdict == "not tested"
    # Point estimates above 0 whose intervals contain 0 are no evidence: inconclusive, not 'reproduces'.
    spread = {"integrated_rl": E(0.0002, -0.0056, 0.0054), "iql": E(0.0018, -0.0024, 0.0062),
              "cql": E(0.0007, -0.0030, 0.0044), "bcq": E(-0.0022, -0.0084, 0.0028)}
    claim = claims.claim_uniform_vs_gaussian(spread)
    assert claim.verdict == "inconclusive" and "0/4 agents better on uniform data, 0 worse" in claim.measured
    # One agent separated above 0 of four is no majority; IntegratedRL's CI above 0 alone is 'partially'.
    assert claims.claim_uniform_vs_gaussian({**spread, "iql": E(0.01, 0.002, 0.02)}).verdict == "inconclusive"
    assert claims.claim_uniform_vs_gaussian({**spread, "integrated_rl": E(0.01, 0.002, 0.02)}).verdict \
        == "partially reproduces"


def test_online_vs_es_claim_needs_a_converged_es() -> None:
    good = {"DDPG": {"valid_views": E(0.01), "watch_time_min": E(0.005)},
            "IQL": {"valid_views": E(0.02), "watch_time_min": E(0.01)},
            "IntegratedRL": {"valid_views": E(0.04, 0.03, 0.05), "watch_time_min": E(0.02, 0.01, 0.03)}}
    assert claims.claim_online_vs_es(good, "converged").verdict == "reproduces"
    unconverged = claims.claim_online_vs_es(good, "still improving")
    assert unconverged.verdict.startswith("not tested: the ES control has not converged")
    assert "agents.es_steps" in unconverged.verdict
    assert claims.claim_online_vs_es({}, None).verdict == "not tested"
    weak = {**good, "IntegratedRL": {"valid_views": E(0.01, -0.01, 0.03), "watch_time_min": E(0.001, -0.01, 0.01)}}
    assert claims.claim_online_vs_es(weak, "converged").verdict == "partially reproduces"
    worse = {**good, "IntegratedRL": {"valid_views": E(-0.01), "watch_time_min": E(0.01)}}
    assert claims.claim_online_vs_es(worse, "converged").verdict == "does not reproduce"


def test_pair_and_baseline_claims() -> None:
    assert claims.claim_ptm(E(0.02, 0.01, 0.03)).verdict == "reproduces"
    assert claims.claim_ptm(E(0.0, -0.01, 0.01)).verdict == "inconclusive"
    assert claims.claim_ptm(E(-0.02, -0.03, -0.01)).verdict == "does not reproduce"
    assert claims.claim_ptm(None).verdict == "not tested"
    assert claims.claim_vs_baseline({"uniform": E(0.02, 0.01, 0.03), "progressive": E(0.03, 0.02, 0.04)}).verdict \
        == "reproduces"
    assert claims.claim_vs_baseline({"uniform": E(0.02, 0.01, 0.03), "progressive": E(0, -1, 1)}).verdict \
        == "partially reproduces"
    assert claims.claim_vs_baseline({"uniform": None}).verdict == "not tested"
    # The published case: one CI below 0, one containing it -> inconclusive; both below -> does not reproduce.
    assert claims.claim_vs_baseline({"uniform": E(-0.007, -0.014, 0.0001), "progressive": E(-0.012, -0.019, -0.005)
                                     }).verdict == "inconclusive"
    assert claims.claim_vs_baseline({"uniform": E(-0.01, -0.02, -0.001), "progressive": E(-0.012, -0.019, -0.005)
                                     }).verdict == "does not reproduce"


def test_agreement_claim() -> None:
    assert claims.claim_agreement("FQE", 0.8, 0.5, 0.95, 20, 0.01).verdict == "agrees"
    assert claims.claim_agreement("FQE", -0.8, -0.95, -0.5, 20, None).verdict == "disagrees"
    assert claims.claim_agreement("FQE", 0.2, -0.3, 0.6, 20, 0.05).verdict == "no significant agreement"
    assert claims.claim_agreement("FQE", float("nan"), float("nan"), float("nan"), 2, None).verdict == "not tested"
    assert "5.00% below the best" in claims.claim_agreement("GAUC", 0.2, -0.3, 0.6, 20, 0.05).measured


# ----------------------------------------------------------------------------------------------------------------------
# Device
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised where torch has no CUDA")
def test_cli_refuses_cuda_without_cuda(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from mtf_bench.harness import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["smoke", "--device", "cuda:0", "--results-dir", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "torch sees none here" in err and "--device cpu" in err and "--device auto" in err
    assert not any(tmp_path.iterdir())  # nothing ran
    with pytest.raises(SystemExit):
        cli.main(["smoke", "--device", "gpu", "--results-dir", str(tmp_path)])
    assert "preset.device must be 'cpu', 'auto', 'cuda' or 'cuda:N'" in capsys.readouterr().err


def test_the_slate_section_becomes_a_section_of_the_report(tmp_path) -> None:
    """slate/slate.md goes into the report one heading level down, with its figures copied into plots/ under names
    that cannot collide with the report's own (publish then carries them)."""
    from mtf_bench.harness.report import _slate_section

    assert _slate_section(tmp_path) == []  # no slate section run: nothing
    (tmp_path / "slate").mkdir()
    (tmp_path / "slate" / "latency.png").write_bytes(b"png")
    (tmp_path / "slate" / "slate_normalised.png").write_bytes(b"png2")
    (tmp_path / "slate" / "slate.md").write_text("# Slate section\n\n![a](slate_normalised.png)\n## Latency\n"
                                                 "![b](latency.png)\n")
    lines = _slate_section(tmp_path)
    assert lines == ["", "## Slate section", "", "![a](plots/slate_section_normalised.png)", "### Latency",
                     "![b](plots/slate_section_latency.png)"]
    assert (tmp_path / "plots" / "slate_section_latency.png").read_bytes() == b"png"
    assert (tmp_path / "plots" / "slate_section_normalised.png").read_bytes() == b"png2"


def test_compact_step_labels_for_log_axes() -> None:
    from mtf_bench.harness.plots import compact_count

    assert [compact_count(v) for v in (39, 469, 1250, 7500, 14336, 160000, 200704, 1600000)] == [
        "39", "469", "1.25k", "7.5k", "14k", "160k", "201k", "1.6M"]

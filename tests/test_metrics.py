"""Tests for mtf_gym.metrics: hand-computed GAUC, brute-force AUC, invariances, bootstrap CIs, efficiency."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtf_gym.metrics import (
    ConfidenceInterval,
    GaucResult,
    bootstrap_ci,
    exploration_efficiency_analytic,
    fraction_inside_band,
    normalise_scores,
    paired_lift_ci,
    rank_agreement,
    weighted_auc,
    weighted_gauc,
)

FAST = settings(max_examples=60, deadline=None)


# ----------------------------------------------------------------------------------------------------------------------
# Reference implementations (O(n^2), written as plainly as possible)
# ----------------------------------------------------------------------------------------------------------------------
def brute_force_auc(labels, scores, weights) -> float:
    num = 0.0
    w_pos = w_neg = 0.0
    for yi, _si, wi in zip(labels, scores, weights):
        if yi == 1:
            w_pos += wi
        else:
            w_neg += wi
    for yi, si, wi in zip(labels, scores, weights):
        if yi != 1:
            continue
        for yj, sj, wj in zip(labels, scores, weights):
            if yj != 0:
                continue
            if si > sj:
                num += wi * wj
            elif si == sj:
                num += 0.5 * wi * wj
    return num / (w_pos * w_neg) if w_pos * w_neg > 0 else float("nan")


def brute_force_gauc(users, labels, scores, weights) -> float:
    total = 0.0
    total_w = 0.0
    for u in sorted(set(users)):
        idx = [i for i, v in enumerate(users) if v == u]
        auc = brute_force_auc([labels[i] for i in idx], [scores[i] for i in idx], [weights[i] for i in idx])
        if not math.isnan(auc):
            w_u = sum(weights[i] for i in idx)
            total += w_u * auc
            total_w += w_u
    return total / total_w if total_w > 0 else float("nan")


# A small pool of score values so that hypothesis produces many ties.
scores_strategy = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5000001, 0.75, 1.0, -3.0])
weights_strategy = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.7])


@st.composite
def samples(draw, max_users: int = 1, max_size: int = 30):
    n = draw(st.integers(min_value=0, max_value=max_size))
    labels = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    scores = draw(st.lists(scores_strategy, min_size=n, max_size=n))
    weights = draw(st.lists(weights_strategy, min_size=n, max_size=n))
    users = draw(st.lists(st.integers(0, max_users - 1), min_size=n, max_size=n))
    return users, labels, scores, weights


# ----------------------------------------------------------------------------------------------------------------------
# Weighted AUC / GAUC
# ----------------------------------------------------------------------------------------------------------------------
def test_weighted_gauc_hand_computed():
    # (user, label, score, weight)
    rows = [
        # User A: W_pos = 2 + 1 + 0 = 3, W_neg = 1 + 3 = 4, total W_A = 7.
        ("A", 1, 0.9, 2.0),  # a1
        ("A", 0, 0.5, 1.0),  # a2
        ("A", 1, 0.5, 1.0),  # a3 (ties with a2)
        ("A", 0, 0.1, 3.0),  # a4
        ("A", 1, 0.2, 0.0),  # a5: zero weight, would lose to a2 and beat a4, but contributes nothing
        # pairs: a1>a2: 2*1 = 2;  a1>a4: 2*3 = 6;  a3=a2 (tie): 0.5*1*1 = 0.5;  a3>a4: 1*3 = 3;  a5: 0*... = 0
        # AUC_A = (2 + 6 + 0.5 + 3) / (3 * 4) = 11.5 / 12 = 23/24
        # User B: W_pos = 1, W_neg = 2 + 1 = 3, total W_B = 4.
        ("B", 1, 0.3, 1.0),  # b1
        ("B", 0, 0.7, 2.0),  # b2
        ("B", 0, 0.3, 1.0),  # b3 (ties with b1)
        # pairs: b1<b2: 0;  b1=b3 (tie): 0.5*1*1 = 0.5.   AUC_B = 0.5 / (1 * 3) = 1/6
        # User C: positives only -> single class -> skipped (W_C = 6 must not enter the average).
        ("C", 1, 0.4, 5.0),
        ("C", 1, 0.6, 1.0),
        # User D: has a negative label, but its only negative has weight 0 -> W_neg = 0 -> skipped.
        ("D", 1, 0.5, 2.0),
        ("D", 0, 0.8, 0.0),
    ]
    # GAUC = (W_A * AUC_A + W_B * AUC_B) / (W_A + W_B) = (7 * 23/24 + 4 * 1/6) / 11
    #      = (161/24 + 16/24) / 11 = 177 / 264
    expected = 177.0 / 264.0
    perm = np.random.default_rng(3).permutation(len(rows))  # input order must not matter
    users, labels, scores, weights = (np.array([rows[i][k] for i in perm]) for k in range(4))
    result = weighted_gauc(users, labels.astype(int), scores.astype(float), weights.astype(float))
    assert isinstance(result, GaucResult)
    assert result.value == pytest.approx(expected, abs=1e-12)
    assert result.num_users_used == 2
    assert result.num_users_skipped == 2
    assert result.users.tolist() == ["A", "B", "C", "D"]
    np.testing.assert_allclose(result.per_user_auc[:2], [23 / 24, 1 / 6], atol=1e-12)
    assert np.isnan(result.per_user_auc[2:]).all()
    np.testing.assert_allclose(result.per_user_weight, [7.0, 4.0, 6.0, 2.0])
    # The same number by brute force.
    assert brute_force_gauc(*(list(a) for a in (users, labels.astype(int), scores.astype(float),
                                                 weights.astype(float)))) == pytest.approx(expected)
    # Single-user AUC agrees with weighted_auc.
    mask = users == "A"
    assert weighted_auc(labels[mask].astype(int), scores[mask].astype(float), weights[mask].astype(float)) == (
        pytest.approx(23 / 24)
    )
    # min_weight skips user B (W_B = 4) -> only user A remains.
    only_a = weighted_gauc(users, labels.astype(int), scores.astype(float), weights.astype(float), min_weight=5.0)
    assert only_a.value == pytest.approx(23 / 24)
    assert (only_a.num_users_used, only_a.num_users_skipped) == (1, 3)


def test_weighted_auc_simple_cases():
    assert weighted_auc([0, 1], [0.1, 0.9], [1, 1]) == 1.0
    assert weighted_auc([1, 0], [0.1, 0.9], [1, 1]) == 0.0
    assert weighted_auc([1, 0], [0.5, 0.5], [1, 1]) == 0.5
    assert weighted_auc([True, False, True], [3, 1, 0], None) == pytest.approx(0.5)
    assert math.isnan(weighted_auc([1, 1], [0.1, 0.2], [1, 1]))
    assert math.isnan(weighted_auc([], [], []))
    assert math.isnan(weighted_auc([1, 0], [0.1, 0.2], [1, 0]))


@FAST
@given(samples())
def test_weighted_auc_matches_brute_force(data):
    _, labels, scores, weights = data
    expected = brute_force_auc(labels, scores, weights)
    got = weighted_auc(labels, scores, weights)
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, abs=1e-12)


@FAST
@given(samples(max_users=5, max_size=40))
def test_weighted_gauc_matches_brute_force(data):
    users, labels, scores, weights = data
    expected = brute_force_gauc(users, labels, scores, weights)
    got = weighted_gauc(users, labels, scores, weights).value
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, abs=1e-12)


@FAST
@given(
    samples(max_users=4, max_size=40),
    st.lists(st.tuples(st.integers(1, 7), st.integers(-5, 5), st.booleans()), min_size=4, max_size=4),
)
def test_weighted_gauc_invariant_to_per_user_monotone_transforms(data, transforms):
    users, labels, scores, weights = data
    users_arr = np.array(users, dtype=int)
    s = np.array(scores, dtype=float)
    # A different strictly increasing map per user: s -> a*s + b, optionally followed by exp.
    scale = np.array([t[0] for t in transforms], dtype=float)[users_arr]
    shift = np.array([t[1] for t in transforms], dtype=float)[users_arr]
    use_exp = np.array([t[2] for t in transforms], dtype=bool)[users_arr]
    transformed = scale * s + shift
    transformed = np.where(use_exp, np.exp(transformed), transformed)
    base = weighted_gauc(users, labels, s, weights)
    moved = weighted_gauc(users, labels, transformed, weights)
    normed = weighted_gauc(users, labels, normalise_scores(s, users), weights)
    for other in (moved, normed):
        assert (other.num_users_used, other.num_users_skipped) == (base.num_users_used, base.num_users_skipped)
        if math.isnan(base.value):
            assert math.isnan(other.value)
        else:
            assert other.value == pytest.approx(base.value, abs=1e-12)


def test_weighted_gauc_many_users_with_ties_matches_the_reference():
    # Many users at once: the segmented sums must restart at every user and tie block (speed is measured by
    # benchmarks/, not here). Every user's AUC and the average are checked against the O(n^2) reference.
    rng = np.random.default_rng(0)
    n, num_users = 60_000, 1_500
    users = rng.integers(0, num_users, n)
    labels = (rng.random(n) < 0.4).astype(int)
    scores = np.round(rng.random(n) + 0.3 * labels, 2)  # rounded -> plenty of ties
    weights = rng.exponential(1.0, n) + 1.0
    result = weighted_gauc(users, labels, scores, weights)
    order = np.argsort(users, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(users[order])) + 1)
    expected_auc = np.array([brute_force_auc(labels[g].tolist(), scores[g].tolist(), weights[g].tolist())
                             for g in groups])
    np.testing.assert_allclose(result.per_user_auc, expected_auc, rtol=0, atol=1e-12)
    used = ~np.isnan(expected_auc)
    user_weight = np.array([weights[g].sum() for g in groups])
    expected = float(np.sum(user_weight[used] * expected_auc[used]) / np.sum(user_weight[used]))
    assert result.value == pytest.approx(expected, abs=1e-12) and 0.6 < result.value < 0.8


def test_weighted_gauc_no_qualifying_user_gives_nan():
    r = weighted_gauc([1, 1, 2], [1, 1, 0], [0.1, 0.2, 0.3], [1, 1, 1])
    assert math.isnan(r.value)
    assert (r.num_users_used, r.num_users_skipped) == (0, 2)
    empty = weighted_gauc([], [], [], [])
    assert math.isnan(empty.value) and empty.num_users_used == 0


def test_normalise_scores():
    np.testing.assert_allclose(normalise_scores([2.0, 4.0, 3.0]), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(normalise_scores([7.0, 7.0]), [0.5, 0.5])
    np.testing.assert_allclose(
        normalise_scores([1.0, 3.0, 10.0, 10.0, -1.0, 1.0], user_ids=["x", "x", "y", "y", "z", "z"]),
        [0.0, 1.0, 0.5, 0.5, 0.0, 1.0],
    )
    assert normalise_scores([]).shape == (0,)


# ----------------------------------------------------------------------------------------------------------------------
# Bootstrap CIs
# ----------------------------------------------------------------------------------------------------------------------
def test_bootstrap_ci_contains_true_mean_and_shrinks_with_n():
    # A single fixed-seed draw (a 95% CI misses 1 time in 20; coverage itself is checked in the next test).
    data_rng = np.random.default_rng(2024)
    true_mean = 5.0
    widths = []
    for n in (20, 200, 2000):
        values = data_rng.normal(true_mean, 2.0, size=n)
        ci = bootstrap_ci(values, rng=np.random.default_rng(n), num_resamples=2000)
        assert isinstance(ci, ConfidenceInterval)
        assert ci.low <= ci.estimate <= ci.high
        assert ci.contains(true_mean)
        assert ci.estimate == pytest.approx(values.mean())
        assert ci.n == n and ci.confidence == 0.95
        widths.append(ci.high - ci.low)
    assert widths[0] > widths[1] > widths[2]
    # width ~ 2 * 1.96 * sigma / sqrt(n)
    assert widths[2] == pytest.approx(2 * 1.96 * 2.0 / np.sqrt(2000), rel=0.2)


def test_bootstrap_ci_coverage_is_near_nominal():
    rng = np.random.default_rng(7)
    hits = 0
    reps = 200
    for _ in range(reps):
        values = rng.exponential(1.0, size=40)
        hits += bootstrap_ci(values, rng=rng, num_resamples=1000).contains(1.0)
    assert 0.85 <= hits / reps <= 0.99


def test_bootstrap_ci_reproducible_chunked_and_degenerate():
    values = np.arange(50.0)
    a = bootstrap_ci(values, rng=np.random.default_rng(1), num_resamples=3000)
    b = bootstrap_ci(values, rng=np.random.default_rng(1), num_resamples=3000)
    assert a == b
    med = bootstrap_ci(values, rng=np.random.default_rng(1), statistic="median", confidence=0.9)
    assert med.estimate == 24.5 and med.confidence == 0.9 and med.low < 24.5 < med.high
    one = bootstrap_ci([3.0], rng=np.random.default_rng(0))
    assert (one.estimate, one.low, one.high, one.n) == (3.0, 3.0, 3.0, 1)
    interval = ConfidenceInterval(estimate=0.02, low=-0.01, high=0.05, confidence=0.95, n=10)
    assert interval.as_dict() == {"estimate": 0.02, "low": -0.01, "high": 0.05}
    assert interval.as_dict(100.0) == {"estimate": 2.0, "low": -1.0, "high": 5.0}
    # Large n forces several chunks; the result must still be sensible.
    big = bootstrap_ci(np.random.default_rng(2).normal(size=5000), rng=np.random.default_rng(3), num_resamples=2000)
    assert big.low < 0.05 and big.high > -0.05 and big.high - big.low < 0.15


def test_paired_lift_ci():
    rng = np.random.default_rng(0)
    control = rng.lognormal(3.0, 1.0, size=300)  # very heterogeneous seeds
    treatment = control * 1.05 + rng.normal(0.0, 0.2, size=300)
    ci = paired_lift_ci(treatment, control, rng=np.random.default_rng(1), num_resamples=4000)
    assert ci.estimate == pytest.approx(treatment.mean() / control.mean() - 1.0, abs=1e-15)
    assert ci.low <= ci.estimate <= ci.high
    assert ci.contains(0.05) and not ci.contains(0.0)
    # Pairing matters: resampling the arms independently gives a much wider interval.
    t_ci = bootstrap_ci(treatment, rng=np.random.default_rng(2), num_resamples=4000)
    assert ci.high - ci.low < 0.2 * (t_ci.high - t_ci.low) / control.mean()
    one = paired_lift_ci([2.0], [1.0], rng=np.random.default_rng(0))
    assert (one.estimate, one.low, one.high) == (1.0, 1.0, 1.0)


def test_paired_lift_ci_over_several_treatment_runs():
    rng = np.random.default_rng(0)
    control = rng.lognormal(3.0, 1.0, size=300)
    # Three training seeds of one policy: lifts of +1%, +5% and +9% on the same users.
    runs = np.stack([control * (1.0 + lift) + rng.normal(0.0, 0.2, size=300) for lift in (0.01, 0.05, 0.09)])
    ci = paired_lift_ci(runs, control, rng=np.random.default_rng(1), num_resamples=4000)
    assert ci.estimate == pytest.approx(runs.mean() / control.mean() - 1.0, abs=1e-15) and ci.n == 300
    # Resampling the runs carries their spread: far wider than the interval of their pooled mean.
    pooled = paired_lift_ci(runs.mean(axis=0), control, rng=np.random.default_rng(1), num_resamples=4000)
    assert ci.low < 0.03 and ci.high > 0.07 and pooled.high - pooled.low < 0.3 * (ci.high - ci.low)
    # One run is the 1-D interval exactly.
    single = paired_lift_ci(runs[:1], control, rng=np.random.default_rng(2), num_resamples=500)
    assert single == paired_lift_ci(runs[0], control, rng=np.random.default_rng(2), num_resamples=500)
    with pytest.raises(ValueError, match="treatment must have one column per control value"):
        paired_lift_ci(runs[:, :10], control, rng=np.random.default_rng(0))


# ----------------------------------------------------------------------------------------------------------------------
# Rank agreement
# ----------------------------------------------------------------------------------------------------------------------
def test_rank_agreement():
    r = rank_agreement([0.78, 0.79, 0.794, 0.795], [51.6, 52.4, 53.8, 53.96])
    assert r.spearman_rho == pytest.approx(1.0) and r.kendall_tau == pytest.approx(1.0)
    assert r.n == 4 and r.reason is None
    inv = rank_agreement([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])
    assert inv.spearman_rho == pytest.approx(-1.0) and inv.kendall_tau == pytest.approx(-1.0)
    with_nan = rank_agreement([1, 2, np.nan, 3, 4], [1, 2, 3, np.nan, 4])
    assert with_nan.n == 3 and with_nan.spearman_rho == pytest.approx(1.0)
    short = rank_agreement([1, 2, np.nan], [1, 2, 3])
    assert short.n == 2 and math.isnan(short.spearman_rho) and math.isnan(short.kendall_pvalue)
    assert "at least 3" in short.reason
    const = rank_agreement([1, 1, 1, 1], [1, 2, 3, 4])
    assert math.isnan(const.kendall_tau) and "constant" in const.reason


# ----------------------------------------------------------------------------------------------------------------------
# Exploration efficiency
# ----------------------------------------------------------------------------------------------------------------------
def test_exploration_efficiency_matches_design_numbers():
    eff = exploration_efficiency_analytic(0.2, -0.15, 0.15, 10)
    assert eff.per_dim_probability.shape == (10,)
    assert round(float(eff.per_dim_probability[0]), 3) == 0.547
    assert round(eff.efficiency_ratio) == 419
    assert eff.joint_probability == pytest.approx(0.5467453 ** 10, rel=1e-6)
    assert eff.action_dim == 10
    # Band entirely inside -> probability 1-ish; band to the right of 0 uses the accurate upper tail.
    wide = exploration_efficiency_analytic([0.2] * 3, -10.0, 10.0, 3)
    assert wide.efficiency_ratio == pytest.approx(1.0)
    tail = exploration_efficiency_analytic(1.0, 9.0, 10.0, 1)
    assert tail.per_dim_probability[0] == pytest.approx(1.1285884e-19, rel=1e-6)


def test_fraction_inside_band_agrees_with_analytic():
    rng = np.random.default_rng(0)
    offsets = rng.normal(0.0, 0.2, size=(200_000, 10))
    per_dim, joint = fraction_inside_band(offsets, -0.15, 0.15)
    assert per_dim.shape == (10,)
    np.testing.assert_allclose(per_dim, 0.5467, atol=0.005)
    assert joint == pytest.approx(0.5467 ** 10, rel=0.15)
    # Bounded-uniform offsets are all inside, even exactly on the bounds.
    uniform = rng.uniform(-0.15, 0.15, size=(1000, 10))
    uniform[0] = 0.15
    per_dim_u, joint_u = fraction_inside_band(uniform, np.full(10, -0.15), np.full(10, 0.15))
    assert joint_u == 1.0 and (per_dim_u == 1.0).all()


def test_fraction_inside_band_per_sample_bounds():
    offsets = np.array([[0.0, 0.5], [0.2, -0.1], [-0.3, 0.0]])
    lower = np.array([[-0.1, 0.0], [-0.1, -0.2], [-0.5, -0.1]])
    upper = np.array([[0.1, 0.4], [0.3, 0.0], [-0.2, 0.1]])
    per_dim, joint = fraction_inside_band(offsets, lower, upper)
    # inside: row0 [T, F], row1 [T, T], row2 [T, T]
    np.testing.assert_allclose(per_dim, [1.0, 2 / 3])
    assert joint == pytest.approx(2 / 3)


# ----------------------------------------------------------------------------------------------------------------------
# Bad inputs raise ValueError naming the argument
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: weighted_auc([0, 1], [0.1], [1, 1]), "scores"),
        (lambda: weighted_auc([0, 1], [0.1, 0.2], [1]), "weights"),
        (lambda: weighted_auc([0, 2], [0.1, 0.2], [1, 1]), "labels"),
        (lambda: weighted_auc([0, np.nan], [0.1, 0.2], [1, 1]), "labels"),
        (lambda: weighted_auc([0, 1], [0.1, np.nan], [1, 1]), "scores"),
        (lambda: weighted_auc([0, 1], [0.1, 0.2], [1, -1]), "weights"),
        (lambda: weighted_auc([0, 1], [0.1, 0.2], [1, np.inf]), "weights"),
        (lambda: weighted_gauc([1], [0, 1], [0.1, 0.2], [1, 1]), "labels"),
        (lambda: weighted_gauc([1, 2], [0, 1], [0.1, 0.2], [1, 1], min_weight=-1), "min_weight"),
        (lambda: weighted_gauc(np.array(["a", 1], dtype=object), [0, 1], [0.1, 0.2], [1, 1]), "user_ids"),
        (lambda: normalise_scores([1.0, np.nan]), "scores"),
        (lambda: normalise_scores([1.0, 2.0], user_ids=[1]), "user_ids"),
        (lambda: bootstrap_ci([], rng=np.random.default_rng(0)), "values"),
        (lambda: bootstrap_ci([1.0, np.nan], rng=np.random.default_rng(0)), "values"),
        (lambda: bootstrap_ci([1.0, 2.0], rng=np.random.default_rng(0), confidence=1.0), "confidence"),
        (lambda: bootstrap_ci([1.0, 2.0], rng=np.random.default_rng(0), num_resamples=0), "num_resamples"),
        (lambda: bootstrap_ci([1.0, 2.0], rng=np.random.default_rng(0), statistic="max"), "statistic"),
        (lambda: paired_lift_ci([1.0, 2.0], [1.0], rng=np.random.default_rng(0)), "control"),
        (lambda: paired_lift_ci([1.0, 2.0], [1.0, -1.0], rng=np.random.default_rng(0)), "control"),
        (lambda: rank_agreement([1, 2, 3], [1, 2]), "y"),
        (lambda: exploration_efficiency_analytic(0.0, -0.15, 0.15, 10), "sigma"),
        (lambda: exploration_efficiency_analytic(0.2, 0.15, -0.15, 10), "lower"),
        (lambda: exploration_efficiency_analytic(0.2, -0.15, [0.15] * 3, 10), "upper"),
        (lambda: exploration_efficiency_analytic(0.2, -0.15, 0.15, 0), "action_dim"),
        (lambda: fraction_inside_band(np.zeros(3), -0.1, 0.1), "offsets"),
        (lambda: fraction_inside_band(np.zeros((2, 3)), np.zeros(2), 0.1), "lower"),
        (lambda: fraction_inside_band(np.zeros((2, 3)), -0.1, 0.1, atol=-1.0), "atol"),
    ],
)
def test_bad_inputs_raise_value_error_naming_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()


def test_bootstrap_requires_explicit_generator():
    with pytest.raises(TypeError, match="rng"):
        bootstrap_ci([1.0, 2.0], rng=np.random.RandomState(0))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="rng"):
        paired_lift_ci([1.0, 2.0], [1.0, 2.0], rng=None)  # type: ignore[arg-type]

"""Exploration policies: noise statistics, band guarantees, recorded centres/bands, validation, determinism."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtf_gym import BaselinePolicy, ConstantPolicy
from mtf_gym.exploration import (
    NOMINAL_LOWER,
    NOMINAL_UPPER,
    BoundedUniform,
    ExplorationPolicy,
    ExplorationSample,
    GaussianNoise,
    NoExploration,
    as_exploration_policy,
)
from mtf_gym.metrics import exploration_efficiency_analytic, fraction_inside_band

A = 10


def _obs(n: int) -> np.ndarray:
    return np.zeros((n, 18), np.float32)


class _TableCentre:
    """Centre policy returning preset per-row centres (tests the band at arbitrary centres, also near +-1)."""

    def __init__(self, centres: np.ndarray) -> None:
        self.centres = centres.astype(np.float32)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.centres[: obs.shape[0]]


def test_gaussian_offsets_have_configured_std_and_zero_mean():
    policy = GaussianNoise(ConstantPolicy(np.zeros(A)), sigma=0.2, rng=np.random.default_rng(0))
    sample = policy.sample(_obs(40_000))
    offsets = sample.actions.astype(np.float64) - sample.centres
    # Centre 0: clipping at +-1 is a 5-sigma event, so the offsets are N(0, 0.2^2) per dimension.
    np.testing.assert_allclose(offsets.std(axis=0), 0.2, rtol=0.02)
    np.testing.assert_allclose(offsets.mean(axis=0), 0.0, atol=0.005)
    assert abs(np.corrcoef(offsets[:, 0], offsets[:, 1])[0, 1]) < 0.03  # independent dimensions


def test_gaussian_per_dimension_sigma_and_clipping():
    sigma = np.linspace(0.05, 0.25, A)
    policy = GaussianNoise(ConstantPolicy(np.zeros(A)), sigma=sigma, rng=np.random.default_rng(1))
    sample = policy.sample(_obs(30_000))
    assert sample.actions.dtype == np.float32 and sample.actions.shape == (30_000, A)
    np.testing.assert_allclose(sample.actions.std(axis=0), sigma, rtol=0.03)
    # Near the action box the executed action is clipped: P(0.9 + N(0, 0.05^2) > 1) = P(Z > 2) = 0.0228.
    near = GaussianNoise(ConstantPolicy(np.full(A, 0.9)), sigma=0.05, rng=np.random.default_rng(2))
    actions = near.sample(_obs(30_000)).actions
    assert actions.max() == 1.0 and actions.min() >= -1.0
    assert abs((actions == 1.0).mean() - 0.0228) < 0.003


def test_gaussian_inside_band_matches_analytic_probability():
    policy = GaussianNoise(ConstantPolicy(np.zeros(A)), rng=np.random.default_rng(2))
    sample = policy.sample(_obs(50_000))
    per_dim, _ = fraction_inside_band(sample.actions - sample.centres, NOMINAL_LOWER, NOMINAL_UPPER)
    analytic = exploration_efficiency_analytic(0.2, NOMINAL_LOWER, NOMINAL_UPPER, A)
    np.testing.assert_allclose(per_dim, analytic.per_dim_probability, atol=0.01)  # 0.547 per dimension


def test_uniform_actions_always_inside_band_even_near_action_box():
    rng = np.random.default_rng(3)
    centres = rng.uniform(-1, 1, size=(20_000, A))
    centres[:100] = 1.0
    centres[100:200] = -1.0
    centres[200:300] = 0.99999994  # float32 just below 1
    policy = BoundedUniform(_TableCentre(centres), rng=np.random.default_rng(4))
    sample = policy.sample(_obs(len(centres)))
    offsets = sample.actions.astype(np.float64) - sample.centres.astype(np.float64)
    assert (offsets >= NOMINAL_LOWER).all() and (offsets <= NOMINAL_UPPER).all()  # exact, no tolerance
    assert sample.actions.min() >= -1.0 and sample.actions.max() <= 1.0
    np.testing.assert_array_equal(sample.lower, np.float32(NOMINAL_LOWER))
    np.testing.assert_array_equal(sample.upper, np.float32(NOMINAL_UPPER))
    # Away from the box the offsets are uniform on the band.
    free = (np.abs(centres) < 0.8).all(axis=1)
    np.testing.assert_allclose(offsets[free].std(), 0.3 / np.sqrt(12), rtol=0.02)


@settings(max_examples=40, deadline=None)
@given(
    centre=st.floats(-1, 1, width=32),
    lower=st.floats(-2, 0),
    upper=st.floats(0, 2),
    seed=st.integers(0, 2**32 - 1),
)
def test_uniform_band_property(centre, lower, upper, seed):
    # The guarantee holds for bands that contain their centre (clipping to [-1, 1] then only moves inwards).
    if lower == upper:
        upper = 0.001
    policy = BoundedUniform(ConstantPolicy(np.full(A, centre)), lower=lower, upper=upper,
                            rng=np.random.default_rng(seed))
    sample = policy.sample(_obs(64))
    offsets = sample.actions.astype(np.float64) - np.float64(np.float32(centre))
    assert (offsets >= np.float64(np.float32(lower))).all() and (offsets <= np.float64(np.float32(upper))).all()
    assert np.abs(sample.actions).max() <= 1.0


def test_asymmetric_per_dimension_bounds_recorded():
    lower = -np.linspace(0.05, 0.3, A)
    upper = np.linspace(0.01, 0.1, A)
    policy = BoundedUniform(ConstantPolicy(np.zeros(A)), lower=lower, upper=upper, rng=np.random.default_rng(5))
    sample = policy.sample(_obs(5000))
    np.testing.assert_array_equal(sample.lower[0], lower.astype(np.float32))
    np.testing.assert_array_equal(sample.upper[3], upper.astype(np.float32))
    off = sample.actions.astype(np.float64) - sample.centres
    assert (off >= sample.lower).all() and (off <= sample.upper).all()
    np.testing.assert_allclose(off.mean(axis=0), (lower + upper) / 2, atol=0.01)


def test_sample_records_centres_and_nominal_band_for_every_policy():
    base = BaselinePolicy()
    for policy in (
        GaussianNoise(base, rng=np.random.default_rng(0)),
        BoundedUniform(base, rng=np.random.default_rng(0)),
        NoExploration(base),
    ):
        sample = policy.sample(_obs(7))
        assert isinstance(sample, ExplorationSample) and isinstance(policy, ExplorationPolicy)
        _, centres, lower, upper = sample
        np.testing.assert_array_equal(centres, base(_obs(7)))
        for arr in sample:
            assert arr.shape == (7, A) and arr.dtype == np.float32
        np.testing.assert_array_equal(lower, np.float32(-0.15))
        np.testing.assert_array_equal(upper, np.float32(0.15))
    np.testing.assert_array_equal(NoExploration(base).sample(_obs(3)).actions, base(_obs(3)))


def test_gaussian_recorded_band_is_configurable():
    policy = GaussianNoise(BaselinePolicy(), rng=np.random.default_rng(0), band_lower=-0.1, band_upper=0.2)
    sample = policy.sample(_obs(2))
    assert sample.lower[0, 0] == np.float32(-0.1) and sample.upper[0, 0] == np.float32(0.2)
    assert policy.describe()["recorded_band"] == {"lower": -0.1, "upper": 0.2}
    assert policy.describe()["sigma"] == 0.2 and policy.describe()["kind"] == "gaussian"


def test_single_observation_and_determinism():
    make = lambda seed: GaussianNoise(BaselinePolicy(), rng=np.random.default_rng(seed))  # noqa: E731
    one = make(0)(np.zeros(18, np.float32))
    assert one.shape == (A,)
    np.testing.assert_array_equal(make(7)(_obs(5)), make(7)(_obs(5)))
    assert not np.array_equal(make(7)(_obs(5)), make(8)(_obs(5)))
    policy = make(1)
    clone = policy.with_rng(np.random.default_rng(9))
    assert clone is not policy and policy.rng is not clone.rng
    np.testing.assert_array_equal(clone(_obs(4)), make(9)(_obs(4)))


def test_no_global_rng_used():
    np.random.seed(0)  # noqa: NPY002 - the point is to watch the legacy global state
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    GaussianNoise(BaselinePolicy(), rng=np.random.default_rng(0)).sample(_obs(100))
    BoundedUniform(BaselinePolicy(), rng=np.random.default_rng(0)).sample(_obs(100))
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": -0.2}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"sigma": float("inf")}, "sigma"),
        ({"sigma": [[0.2]]}, "sigma"),
        ({"sigma": "wide"}, "sigma"),
        ({"band_lower": 0.2, "band_upper": 0.1}, "band_lower must be < band_upper"),
        ({"band_lower": -3.0}, r"band_lower must lie in \[-2, 2\]"),
    ],
)
def test_gaussian_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianNoise(BaselinePolicy(), rng=np.random.default_rng(0), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lower": 0.15, "upper": 0.15}, "lower must be < upper"),
        ({"lower": 0.2, "upper": -0.2}, "lower must be < upper"),
        ({"lower": -2.5}, r"lower must lie in \[-2, 2\]"),
        ({"upper": 2.01}, r"upper must lie in \[-2, 2\]"),
        ({"lower": [-0.1, -0.2], "upper": [0.1, 0.2, 0.3]}, "same length"),
        ({"upper": float("nan")}, "upper must be finite"),
    ],
)
def test_uniform_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BoundedUniform(BaselinePolicy(), rng=np.random.default_rng(0), **kwargs)


def test_per_dimension_length_mismatch_and_bad_centre_policy():
    policy = GaussianNoise(BaselinePolicy(), sigma=[0.1, 0.2, 0.3], rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="sigma has 3 values but the centre policy returns 10-dim actions"):
        policy.sample(_obs(2))
    bad = BoundedUniform(lambda obs: np.zeros((1, A)), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="centre_policy must return actions of shape"):
        bad.sample(_obs(3))
    nan = NoExploration(lambda obs: np.full((len(obs), A), np.nan))
    with pytest.raises(ValueError, match="NaN"):
        nan.sample(_obs(2))
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        GaussianNoise(BaselinePolicy(), rng=np.random.RandomState(0))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="centre_policy must be callable"):
        BoundedUniform("baseline", rng=np.random.default_rng(0))  # type: ignore[arg-type]


def test_as_exploration_policy_wraps_plain_callables():
    wrapped = as_exploration_policy(BaselinePolicy())
    assert isinstance(wrapped, NoExploration) and wrapped.describe()["centre_policy"] == "BaselinePolicy"
    uniform = BoundedUniform(BaselinePolicy(), rng=np.random.default_rng(0))
    assert as_exploration_policy(uniform) is uniform

"""The fusion formula and the action <-> (powers, biases) mapping, against hand-computed values."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mtf_gym.fusion import (
    FusionRanges,
    action_to_fusion_params,
    fused_log_scores,
    fused_scores,
    fusion_params_to_action,
    validate_actions,
)


def test_action_mapping_by_hand():
    ranges = FusionRanges(power_low=-2.0, power_high=2.0, bias_low=0.0, bias_high=1.0, bias_scale="linear")
    # T = 2: powers from a[:2], biases from a[2:]; -1 -> low, 0 -> middle, 1 -> high.
    powers, biases = action_to_fusion_params(np.array([-1.0, 0.5, 0.0, 1.0]), ranges)
    np.testing.assert_allclose(powers, [-2.0, 1.0])
    np.testing.assert_allclose(biases, [0.5, 1.0])
    # Out-of-range entries are clipped before mapping.
    powers, biases = action_to_fusion_params(np.array([3.0, -7.0, -1.5, 2.0]), ranges)
    np.testing.assert_allclose(powers, [2.0, -2.0])
    np.testing.assert_allclose(biases, [0.0, 1.0])


def test_log_bias_mapping_by_hand():
    ranges = FusionRanges(bias_low=1e-3, bias_high=1.0, bias_scale="log")
    # log10(bias) runs uniformly over [-3, 0]: a = -1 -> 0.001, a = 0 -> 10^-1.5, a = 1/3 -> 0.1, a = 1 -> 1.
    _, biases = action_to_fusion_params(np.array([0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 1.0 / 3.0, 1.0]), ranges)
    np.testing.assert_allclose(biases, [1e-3, 10**-1.5, 0.1, 1.0], rtol=1e-5)
    np.testing.assert_allclose(fusion_params_to_action(np.zeros(4), biases, ranges)[4:], [-1, 0, 1 / 3, 1], atol=1e-6)


def test_fused_score_by_hand():
    # Two candidates, two tasks: (0.5 + 0.1)^2 * (0.2 + 0.0)^1 = 0.072 and (0.3 + 0.1)^2 * (0.4)^1 = 0.064.
    preds = np.array([[[0.5, 0.2], [0.3, 0.4]]], dtype=np.float32)
    powers = np.array([[2.0, 1.0]], dtype=np.float32)
    biases = np.array([[0.1, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(fused_scores(preds, powers, biases), [[0.072, 0.064]], rtol=1e-6)
    np.testing.assert_allclose(fused_log_scores(preds, powers, biases), np.log([[0.072, 0.064]]), rtol=1e-5)


@settings(max_examples=60, deadline=None)
@given(
    preds=arrays(np.float32, (3, 7, 4), elements=st.floats(0.0, 1.0, width=32)),
    action=arrays(np.float32, (3, 8), elements=st.floats(-1.0, 1.0, width=32)),
)
def test_log_scores_rank_like_the_product(preds, action):
    powers, biases = action_to_fusion_params(action)
    log_scores = fused_log_scores(preds, powers, biases)
    product = fused_scores(preds, powers, biases)
    assert np.all(np.isfinite(log_scores))
    np.testing.assert_allclose(log_scores, np.log(product), rtol=1e-4, atol=1e-3)


@settings(max_examples=60, deadline=None)
@given(action=arrays(np.float32, (5, 10), elements=st.floats(-1.0, 1.0, width=32)))
def test_mapping_round_trip(action):
    powers, biases = action_to_fusion_params(action)
    ranges = FusionRanges()
    assert np.all((powers >= ranges.power_low) & (powers <= ranges.power_high))
    assert np.all((biases >= ranges.bias_low) & (biases <= ranges.bias_high))
    np.testing.assert_allclose(fusion_params_to_action(powers, biases), action, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"power_low": 1.0, "power_high": 1.0}, "power_low < power_high"),
        ({"bias_low": 0.5, "bias_high": 0.2}, "bias_low < bias_high"),
        ({"bias_low": -0.1}, "0 <= bias_low"),
        ({"bias_low": 0.0}, "bias_low > 0"),
        ({"bias_scale": "cubic"}, "bias_scale must be"),
        ({"power_high": float("nan")}, "power_high must be finite"),
    ],
)
def test_bad_ranges(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FusionRanges(**kwargs)


def test_validate_actions_errors():
    with pytest.raises(ValueError, match=r"action must have shape \(10,\)"):
        validate_actions(np.zeros(9), 10, batch=False)
    with pytest.raises(ValueError, match=r"actions must have shape \(num_envs, 10\)"):
        validate_actions(np.zeros(10), 10, batch=True, name="actions")
    with pytest.raises(ValueError, match="NaN or inf"):
        validate_actions(np.array([np.nan] + [0.0] * 9), 10, batch=False)
    with pytest.raises(ValueError, match="NaN or inf"):
        validate_actions(np.array([np.inf] + [0.0] * 9), 10, batch=False)
    with pytest.raises(ValueError, match="outside"):
        fusion_params_to_action(np.array([5.0]), np.array([0.5]))

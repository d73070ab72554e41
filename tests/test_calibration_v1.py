"""MTFSession-v1 is calibrated: per-exposure rates under the control within 10% of KuaiRand-Pure, and the ranker
mean-calibrated (mean prediction / mean truth over retrieved candidates in [0.9, 1.1] per task and per segment)."""

from __future__ import annotations

import pytest

from mtf_bench.calibration import TARGETS_V1, TOLERANCE, measure_v1
from mtf_gym import MTFSessionV1Config


@pytest.mark.slow
def test_v1_rates_within_ten_percent_and_ranker_calibrated():
    run = measure_v1(MTFSessionV1Config(), 32768, 0)
    for name, target in TARGETS_V1.items():
        assert abs(run.rates[name] / target - 1.0) <= TOLERANCE, (name, run.rates[name], target)
    assert run.cap_share < 0.01
    for segment, ratios in run.ratio_by_segment.items():
        for task, ratio in ratios.items():
            assert 0.9 <= ratio <= 1.1, (segment, task, ratio)
    # The documented biases cost ranking quality: the true probabilities rank outcomes better than the predictions.
    for task, auc in run.auc_prediction.items():
        assert auc < run.auc_truth[task], task

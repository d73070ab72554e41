"""Link functions the v1 kernels share (float32, inlined into each caller): one definition for the user draw and the
response model."""

from __future__ import annotations

import math

import numpy as np

from mtf_gym.sim.memory import kernel_jit

__all__ = ["sigmoid"]

_F1 = np.float32(1.0)


@kernel_jit(inline="always")
def sigmoid(x):
    """The logistic function in float32: a logit to a probability."""
    return _F1 / (_F1 + np.float32(math.exp(-x)))

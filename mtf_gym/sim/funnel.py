"""The watch-time law of a hooked viewer, in one place (the user's responses, the ranker and the truth share it).

v1 uses a Rayleigh stopping time (Weibull of shape 2) with scale ``theta`` (the user's patience for this item):
``P(W >= t) = exp(-(t / theta)^2)``. Its hazard grows with time watched (a viewer tires of a clip), unlike v0's
memoryless exponential; this is what lets valid views be common while only ~72% of them become long views, as in
KuaiRand-Pure (``docs/user_model.md``, v1 section 4).
"""

from __future__ import annotations

import math

import numpy as np

from mtf_gym.sim.memory import kernel_jit

__all__ = ["expected_watch", "sample_watch", "survival"]

_F1 = np.float32(1.0)
_HALF_SQRT_PI = np.float32(math.sqrt(math.pi) / 2.0)


@kernel_jit(inline="always")
def survival(t, inv_theta):
    """``P(W >= t)`` for scale ``1 / inv_theta``."""
    x = t * inv_theta
    return np.float32(math.exp(-x * x))


@kernel_jit(inline="always")
def expected_watch(hook, theta, duration, glance_mean):
    """``E[min(W, duration)]`` for a hooked viewer with probability ``hook``, else a glance of mean ``glance_mean``:
    ``hook * theta * sqrt(pi)/2 * erf(duration / theta) + (1 - hook) * glance_mean``."""
    return (hook * theta * _HALF_SQRT_PI * np.float32(math.erf(duration / theta))
            + (_F1 - hook) * glance_mean)


@kernel_jit(inline="always")
def sample_watch(theta, u):
    """A stopping time from a uniform ``u`` in [0, 1): ``theta * sqrt(-log(1 - u))``."""
    return theta * np.float32(math.sqrt(-math.log1p(-u)))

"""Counter-based random numbers: the reason a batch of N users equals N single environments, exactly.

Each user slot draws one 64-bit *key* from its own ``np_random`` when a session starts (so Gymnasium's seeding
stays the only source of entropy). Every random number the session then needs is a pure function of
``(key, counter, lane)``: a SplitMix64 hash (:func:`counter_uniform`). A user's randomness therefore does not
depend on which other users share the batch, nor on the order rows are processed in (the idea behind
Philox/JAX-style counter-based generators). The simulator's compiled kernels call :func:`counter_uniform`
directly; :func:`counter_uniforms` is the same function over a batch, for tests and analysis.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from numba import njit

__all__ = ["PROFILE_STREAM", "counter_normals", "counter_uniform", "counter_uniforms", "seed_keys"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_STEP = np.uint64(0xD1B54A32D192ED03)
_S30, _S27, _S31, _S40 = (np.uint64(s) for s in (30, 27, 31, 40))
_ONE = np.uint64(1)
_TO_UNIT = np.float32(1.0 / (1 << 24))

# Counter value reserved for sampling a new user's profile (request indices are far below it).
PROFILE_STREAM = 1 << 40


@njit(cache=True, inline="always")
def counter_uniform(key: np.uint64, counter: np.uint64, lane: np.uint64) -> np.float32:
    """One uniform in ``[0, 1)`` (float32, 24-bit resolution) for ``(key, counter, lane)``."""
    state = (key ^ (counter * _STEP)) + (lane + _ONE) * _GOLDEN
    # SplitMix64 finaliser: a bijective avalanche mix of the 64-bit counter state.
    state ^= state >> _S30
    state *= _MIX1
    state ^= state >> _S27
    state *= _MIX2
    state ^= state >> _S31
    return np.float32(state >> _S40) * _TO_UNIT


_TWO_PI = np.float32(2.0 * np.pi)


@njit(cache=True, inline="always")
def counter_normals(key: np.uint64, counter: np.uint64, normals: np.ndarray) -> None:
    """Fill ``normals`` (an even length ``2h``) with standard normals from lanes ``1 .. 2h`` of ``(key, counter)``:
    Box-Muller on the uniform pairs ``(lane 1 + j, lane 1 + h + j)`` (lane 0 is left to the caller)."""
    half = normals.shape[0] // 2
    for h in range(half):
        radius = np.float32(math.sqrt(np.float32(-2.0) * np.float32(math.log1p(-counter_uniform(
            key, counter, np.uint64(1 + h))))))
        angle = _TWO_PI * counter_uniform(key, counter, np.uint64(1 + half + h))
        normals[h] = radius * np.float32(math.cos(angle))
        normals[half + h] = radius * np.float32(math.sin(angle))


@njit(cache=True)
def _fill_uniforms(keys: np.ndarray, counters: np.ndarray, out: np.ndarray) -> None:
    for i in range(out.shape[0]):
        for lane in range(out.shape[1]):
            out[i, lane] = counter_uniform(keys[i], counters[i], np.uint64(lane))


def counter_uniforms(keys: np.ndarray, counters: np.ndarray, width: int) -> np.ndarray:
    """``(len(keys), width)`` uniforms: row ``i``, column ``j`` is ``counter_uniform(keys[i], counters[i], j)``."""
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    counters = np.ascontiguousarray(np.broadcast_to(np.asarray(counters, dtype=np.uint64), keys.shape))
    out = np.empty((keys.shape[0], int(width)), dtype=np.float32)
    _fill_uniforms(keys, counters, out)
    return out


def seed_keys(seeds: Iterable[int]) -> np.ndarray:
    """The session key ``reset(seed=s)`` gives a (sub-)env for each seed: the first 64-bit draw of Gymnasium's
    ``np_random(s)`` (so a batch of keys is the users of those seeds, for common random numbers with the envs)."""
    from gymnasium.utils import seeding

    return np.array([seeding.np_random(int(s))[0].bit_generator.random_raw() for s in seeds], dtype=np.uint64)

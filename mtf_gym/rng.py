"""Counter-based random numbers: the reason a batch of N users equals N single environments, exactly.

Each user slot draws one 64-bit *key* from its own ``np_random`` when a session starts (so Gymnasium's seeding
stays the only source of entropy). Every random number the session then needs is a pure function of
``(key, request index, position)``: a SplitMix64 hash, evaluated for the whole batch in a handful of vectorised
NumPy operations. A user's randomness therefore does not depend on which other users share the batch, and the
simulator needs no Python loop over users (the idea behind Philox/JAX-style counter-based generators).
"""

from __future__ import annotations

import numpy as np

__all__ = ["PROFILE_STREAM", "CounterStreams"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_STEP = np.uint64(0xD1B54A32D192ED03)
_S30, _S27, _S31, _S40 = (np.uint64(s) for s in (30, 27, 31, 40))
_TO_UNIT = np.float32(1.0 / (1 << 24))

# Counter value reserved for sampling a new user's profile (request indices are far below it).
PROFILE_STREAM = 1 << 40


class CounterStreams:
    """Vectorised uniforms ``U[0, 1)`` (float32, 24-bit resolution) from per-row keys and counters.

    One instance owns its scratch buffers for a fixed ``(rows, width)``, so a step allocates nothing.
    """

    def __init__(self, rows: int, width: int) -> None:
        self.rows, self.width = rows, width
        self._lanes = np.arange(1, width + 1, dtype=np.uint64) * _GOLDEN
        self._state = np.empty((rows, width), dtype=np.uint64)
        self._tmp = np.empty((rows, width), dtype=np.uint64)
        self._out = np.empty((rows, width), dtype=np.float32)

    def uniforms(self, keys: np.ndarray, counters: np.ndarray, rows: int | None = None) -> np.ndarray:
        """Uniforms of shape ``(rows, width)`` for ``keys[i]`` at ``counters[i]``; returned array is reused."""
        n = self.rows if rows is None else rows
        state, tmp, out = self._state[:n], self._tmp[:n], self._out[:n]
        with np.errstate(over="ignore"):
            base = keys.astype(np.uint64, copy=False) ^ (counters.astype(np.uint64, copy=False) * _STEP)
            np.add(base[:, None], self._lanes, out=state)
            # SplitMix64 finaliser: a bijective avalanche mix of the 64-bit counter state.
            np.right_shift(state, _S30, out=tmp)
            state ^= tmp
            state *= _MIX1
            np.right_shift(state, _S27, out=tmp)
            state ^= tmp
            state *= _MIX2
            np.right_shift(state, _S31, out=tmp)
            state ^= tmp
        np.right_shift(state, _S40, out=tmp)
        np.multiply(tmp, _TO_UNIT, out=out, casting="unsafe")
        return out

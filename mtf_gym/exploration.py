"""Exploration policies around a centre policy: Gaussian action noise vs the paper's bounded-uniform noise.

docs/design.md#exploration / paper Sec. 4. Each behaviour policy wraps a *centre policy* ``mu`` (any callable
``policy(obs_batch) -> actions_batch``, e.g. :class:`mtf_gym.BaselinePolicy` or a trained agent's ``predict``) and
adds per-dimension noise:

* :class:`GaussianNoise`: ``a = clip(mu(s) + N(0, sigma^2), -1, 1)``;
* :class:`BoundedUniform`: ``a = clip(mu(s) + U(lower, upper), -1, 1)``; the action always lies in the band
  ``[mu(s) + lower, mu(s) + upper]`` (clipping to the action box only moves it further inside when the band
  contains the centre);
* :class:`NoExploration`: ``a = mu(s)`` (the paper's baseline/test data).

The centre may be the constant control (``BaselinePolicy``: the same fusion in every state, so every user gets the
same box) or state-dependent (a trained agent's ``predict``, e.g. a previous round's IntegratedRL or the ES agent's
profile-linear policy): the paper's arrangement, in which each user's band is personalised around the baseline *RL*
policy ``mu_bp(s)``. ``describe()`` names the centre policy; recipes also record whether it varied across states.

All are vectorised over a batch of states. :meth:`~ExplorationPolicy.sample` returns the executed actions together
with the centres and the band offsets that a dataset records for every transition, so IntegratedRL can train from
the dataset alone, without the behaviour policy object. The *recorded* band of Gaussian and noise-free data is a
nominal band (default the uniform recipe's +-0.15) that the noise does not respect; it tells IntegratedRL where the
trusted region is (``docs/datasets.md`` explains the choice).

Randomness comes only from the explicit ``numpy.random.Generator`` passed in (never NumPy's global state).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "BAND_LIMIT",
    "DEFAULT_SIGMA",
    "NOMINAL_LOWER",
    "NOMINAL_UPPER",
    "BoundedUniform",
    "CentrePolicy",
    "ExplorationPolicy",
    "ExplorationSample",
    "GaussianNoise",
    "NoExploration",
    "as_exploration_policy",
    "check_band",
    "check_sigma",
]

# Paper defaults (Sec. 4): Gaussian sigma 0.2; bounded-uniform band +-0.15 around the centre.
DEFAULT_SIGMA = 0.2
NOMINAL_LOWER = -0.15
NOMINAL_UPPER = 0.15
# Offsets are relative to a centre in [-1, 1], so |offset| > 2 could never be reached by a clipped action.
BAND_LIMIT = 2.0

CentrePolicy = Callable[[np.ndarray], np.ndarray]


class ExplorationSample(NamedTuple):
    """One batch of behaviour decisions; every array is ``(B, A)`` float32.

    Attributes:
        actions: the actions executed (after clipping to ``[-1, 1]``).
        centres: the centre policy's actions ``mu(s)`` (the exploration centre).
        lower, upper: recorded band offsets relative to the centre (e.g. -0.15 / +0.15).
    """

    actions: np.ndarray
    centres: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


@runtime_checkable
class ExplorationPolicy(Protocol):
    """What the collector needs from a behaviour policy."""

    def sample(self, observations: np.ndarray) -> ExplorationSample: ...

    def __call__(self, observations: np.ndarray) -> np.ndarray: ...

    def with_rng(self, rng: np.random.Generator) -> ExplorationPolicy: ...

    def describe(self) -> dict[str, Any]: ...


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)), got {type(rng).__name__}"
        )
    return rng


def _param(value: ArrayLike, name: str) -> np.ndarray:
    """A scalar or per-dimension 1-D float64 parameter, finite."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number or a 1-D array of numbers (one per action dimension), "
                         f"got {value!r}") from exc
    if arr.ndim > 1 or arr.size == 0:
        raise ValueError(f"{name} must be a scalar or a non-empty 1-D array (one value per action dimension), "
                         f"got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    return arr


def check_sigma(sigma: ArrayLike, name: str = "sigma") -> np.ndarray:
    """``sigma`` as float64 (scalar or per-dimension); ``ValueError`` unless finite and > 0 everywhere."""
    sig = _param(sigma, name)
    if not (sig > 0).all():
        raise ValueError(f"{name} must be > 0 and finite in every dimension, got {sig.tolist()}")
    return sig


def check_band(lower: ArrayLike, upper: ArrayLike, lower_name: str = "lower",
               upper_name: str = "upper") -> tuple[np.ndarray, np.ndarray]:
    """Band offsets as float64 (scalars or per-dimension); ``ValueError`` unless finite, in [-2, 2], lower < upper."""
    lo, hi = _param(lower, lower_name), _param(upper, upper_name)
    for arr, name in ((lo, lower_name), (hi, upper_name)):
        if (np.abs(arr) > BAND_LIMIT).any():
            raise ValueError(f"{name} must lie in [-{BAND_LIMIT:g}, {BAND_LIMIT:g}] (offsets relative to a centre in "
                             f"[-1, 1]), got {arr.tolist()}")
    if lo.ndim == 1 and hi.ndim == 1 and lo.shape != hi.shape:
        raise ValueError(f"{lower_name} and {upper_name} must have the same length, got {lo.shape} and {hi.shape}")
    if not (lo < hi).all():
        raise ValueError(f"{lower_name} must be < {upper_name} in every dimension, got {lower_name}={lo.tolist()}, "
                         f"{upper_name}={hi.tolist()}")
    return lo, hi


def _per_dim(arr: np.ndarray, name: str, action_dim: int) -> np.ndarray:
    if arr.ndim == 1 and arr.shape[0] != action_dim:
        raise ValueError(f"{name} has {arr.shape[0]} values but the centre policy returns {action_dim}-dim actions")
    return np.broadcast_to(arr, (action_dim,))


def _jsonable(arr: np.ndarray) -> float | list[float]:
    return float(arr) if arr.ndim == 0 else [float(v) for v in arr]


class _Exploration:
    """Shared machinery: centre evaluation, clipping, the recorded band and 1-D/2-D input handling."""

    kind = "none"

    def __init__(self, centre_policy: CentrePolicy, rng: np.random.Generator, band_lower: ArrayLike,
                 band_upper: ArrayLike, band_names: tuple[str, str]) -> None:
        if not callable(centre_policy):
            raise TypeError(f"centre_policy must be callable (obs_batch -> actions_batch), got {centre_policy!r}")
        self.centre_policy = centre_policy
        self.rng = _check_rng(rng)
        self.band_lower, self.band_upper = check_band(band_lower, band_upper, *band_names)
        self._band_names = band_names

    # -- noise, overridden by subclasses: float64 offsets of shape (B, A)
    def _noise(self, batch: int, action_dim: int) -> np.ndarray:
        return np.zeros((batch, action_dim))

    def _params(self) -> dict[str, Any]:
        return {}

    def centres(self, observations: np.ndarray) -> np.ndarray:
        """``mu(s)`` for a batch ``(B, obs_dim)``: the centre policy's ``(B, A)`` float32 actions, validated."""
        obs = np.asarray(observations, dtype=np.float32)
        if obs.ndim != 2:
            raise ValueError(f"observations must have shape (B, obs_dim), got shape {obs.shape}")
        # Always a fresh array: the collector keeps every step's centres, and a policy may reuse its output buffer.
        out = np.array(self.centre_policy(obs), dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != obs.shape[0]:
            raise ValueError(f"centre_policy must return actions of shape ({obs.shape[0]}, A) for {obs.shape[0]} "
                             f"observations, got shape {out.shape}")
        if not np.isfinite(out).all():
            raise ValueError("centre_policy returned NaN or inf actions")
        return out

    def sample(self, observations: np.ndarray) -> ExplorationSample:
        """Actions for a batch of states, with the centres and recorded band offsets (all ``(B, A)`` float32)."""
        centres = self.centres(observations)
        batch, action_dim = centres.shape
        lower = _per_dim(self.band_lower, self._band_names[0], action_dim).astype(np.float32)
        upper = _per_dim(self.band_upper, self._band_names[1], action_dim).astype(np.float32)
        actions = self._actions(centres, self._noise(batch, action_dim), lower, upper)
        np.clip(actions, -1.0, 1.0, out=actions)
        # Read-only broadcast views: a constant band costs no memory per row.
        return ExplorationSample(actions, centres, np.broadcast_to(lower, centres.shape),
                                 np.broadcast_to(upper, centres.shape))

    def _actions(self, centres: np.ndarray, noise: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        return (centres + noise).astype(np.float32)

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        """Executed actions only; accepts one observation ``(obs_dim,)`` or a batch ``(B, obs_dim)``."""
        obs = np.asarray(observations)
        if obs.ndim == 1:
            return self.sample(obs[None, :]).actions[0]
        return self.sample(obs).actions

    def with_rng(self, rng: np.random.Generator) -> _Exploration:
        """A copy drawing its noise from ``rng`` (the collector derives it from the dataset seed)."""
        clone = copy.copy(self)
        clone.rng = _check_rng(rng)
        return clone

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description for dataset datasheets."""
        return {
            "kind": self.kind,
            "centre_policy": _policy_name(self.centre_policy),
            **self._params(),
            "recorded_band": {"lower": _jsonable(self.band_lower), "upper": _jsonable(self.band_upper)},
        }

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self._params().items())
        return f"{type(self).__name__}({_policy_name(self.centre_policy)}{', ' if params else ''}{params})"


def _policy_name(policy: object) -> str:
    return getattr(policy, "name", None) or type(policy).__name__


class NoExploration(_Exploration):
    """``a = mu(s)``: the behaviour policy is the centre itself (the paper's baseline/test data).

    Args:
        centre_policy: ``obs_batch -> actions_batch``.
        rng: unused by the actions (no noise); kept so every behaviour policy has the same interface.
        band_lower, band_upper: the band recorded with each transition (default the nominal +-0.15).
    """

    kind = "none"

    def __init__(self, centre_policy: CentrePolicy, *, rng: np.random.Generator | None = None,
                 band_lower: ArrayLike = NOMINAL_LOWER, band_upper: ArrayLike = NOMINAL_UPPER) -> None:
        super().__init__(centre_policy, rng if rng is not None else np.random.default_rng(0), band_lower,
                         band_upper, ("band_lower", "band_upper"))


class GaussianNoise(_Exploration):
    """``a = clip(mu(s) + N(0, sigma^2), -1, 1)`` per dimension ("action noise", paper Sec. 4).

    Args:
        centre_policy: ``obs_batch -> actions_batch``.
        sigma: noise standard deviation, > 0 and finite; a scalar or one value per action dimension.
        rng: the noise generator.
        band_lower, band_upper: the band *recorded* with each transition for IntegratedRL (the noise ignores it);
            default the uniform recipe's nominal +-0.15, so models trained on Gaussian and uniform data share a band.
    """

    kind = "gaussian"

    def __init__(self, centre_policy: CentrePolicy, sigma: ArrayLike = DEFAULT_SIGMA, *, rng: np.random.Generator,
                 band_lower: ArrayLike = NOMINAL_LOWER, band_upper: ArrayLike = NOMINAL_UPPER) -> None:
        super().__init__(centre_policy, rng, band_lower, band_upper, ("band_lower", "band_upper"))
        self.sigma = check_sigma(sigma)

    def _noise(self, batch: int, action_dim: int) -> np.ndarray:
        return self.rng.standard_normal((batch, action_dim)) * _per_dim(self.sigma, "sigma", action_dim)

    def _params(self) -> dict[str, Any]:
        return {"sigma": _jsonable(self.sigma)}


class BoundedUniform(_Exploration):
    """``a = clip(mu(s) + U(lower, upper), -1, 1)`` per dimension: the paper's bounded exploration policy.

    The band ``[mu(s) + lower, mu(s) + upper]`` is personalised (it moves with the state's centre); the recorded
    band is the sampling band itself. When the band contains the centre (``lower <= 0 <= upper``) and the centre
    lies in ``[-1, 1]``, every executed action is inside it exactly (``action - centre`` in float64 lies in
    ``[lower, upper]``, float32 rounding and clipping included). Near the action box clipping piles actions on
    the box edge, still inside the band.

    Args:
        centre_policy: ``obs_batch -> actions_batch``.
        lower, upper: offsets relative to the centre, ``lower < upper``, inside ``[-2, 2]``; scalars or one value
            per action dimension.
        rng: the noise generator.
    """

    kind = "uniform"

    def __init__(self, centre_policy: CentrePolicy, lower: ArrayLike = NOMINAL_LOWER,
                 upper: ArrayLike = NOMINAL_UPPER, *, rng: np.random.Generator) -> None:
        super().__init__(centre_policy, rng, lower, upper, ("lower", "upper"))

    @property
    def lower(self) -> np.ndarray:
        return self.band_lower

    @property
    def upper(self) -> np.ndarray:
        return self.band_upper

    def _noise(self, batch: int, action_dim: int) -> np.ndarray:
        lo = _per_dim(self.band_lower, "lower", action_dim)
        hi = _per_dim(self.band_upper, "upper", action_dim)
        return self.rng.uniform(lo, hi, size=(batch, action_dim))

    def _actions(self, centres: np.ndarray, noise: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        c64 = centres.astype(np.float64)
        actions = (c64 + noise).astype(np.float32)
        # Rounding to float32 can push an action half an ulp past its band edge; step it back inside, so that
        # ``action - centre`` (exact in float64) always lies in the recorded [lower, upper].
        offset = actions.astype(np.float64) - c64
        np.copyto(actions, np.nextafter(actions, np.float32(-np.inf)), where=offset > upper.astype(np.float64))
        np.copyto(actions, np.nextafter(actions, np.float32(np.inf)), where=offset < lower.astype(np.float64))
        return actions

    def _params(self) -> dict[str, Any]:
        return {"lower": _jsonable(self.band_lower), "upper": _jsonable(self.band_upper)}


def as_exploration_policy(policy: ExplorationPolicy | CentrePolicy) -> ExplorationPolicy:
    """``policy`` itself if it is an exploration policy, else a noise-free :class:`NoExploration` around it."""
    if isinstance(policy, ExplorationPolicy):
        return policy
    if callable(policy):
        return NoExploration(policy)
    raise TypeError(f"expected an exploration policy or a callable centre policy, got {type(policy).__name__}")

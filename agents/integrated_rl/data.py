"""Banded offline datasets: every transition carries the exploration centre and band it was drawn from.

IntegratedRL's losses need, per sampled transition, the exploration centre ``c(s) = mu_bp(s)`` and band offsets of
``s`` (actor penalty) and of ``s'`` (critic-target penalty). d3rlpy's ``TransitionMiniBatch`` / ``TorchMiniBatch``
have no room for them, so this module extends each layer of d3rlpy's data path by subclassing:

- ``Episode`` -> :class:`BandedEpisode`: ``centres``, ``lowers``, ``uppers`` per step (kept by h5 ``dump``/``load``);
- ``Transition`` -> :class:`BandedTransition` and ``TransitionPicker`` -> :class:`BandedTransitionPicker`: the same
  for ``s`` and ``s'``, with ``c(s')`` = the next step's centre in the same episode;
- ``TransitionMiniBatch`` -> :class:`BandedTransitionMiniBatch`: batched arrays;
- ``TorchMiniBatch`` -> :class:`BandedTorchMiniBatch`: absolute band edges as (action-scaled) tensors;
- ``ReplayBuffer`` -> :class:`BandedReplayBuffer`: vectorised sampling of all of the above.

Each layer also carries optional per-component rewards ``reward_components`` ``(…, C)`` (one column per behaviour
group; the reward is their sum), which IntegratedRL's critic sets (``num_critic_sets = C``) regress on. Datasets
without them work as before with one critic set.

Only training sees centres: ``predict`` / ``save_policy`` take plain observations, so a learned policy runs in an
environment that knows nothing about exploration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, BinaryIO

import numpy as np
import torch
from d3rlpy.constants import ActionSpace
from d3rlpy.dataclass_utils import asdict_without_copy
from d3rlpy.dataset import (
    BasicTransitionPicker,
    Episode,
    EpisodeBase,
    InfiniteBuffer,
    ReplayBuffer,
    ReplayBufferBase,
    Transition,
    TransitionMiniBatch,
    TransitionPickerProtocol,
)
from d3rlpy.dataset.io import load as load_episodes
from d3rlpy.preprocessing import ActionScaler, ObservationScaler, RewardScaler
from d3rlpy.torch_utility import TorchMiniBatch, convert_to_torch
from d3rlpy.types import Float32NDArray, NDArray, Observation

__all__ = [
    "BandedEpisode",
    "BandedReplayBuffer",
    "BandedTorchMiniBatch",
    "BandedTransition",
    "BandedTransitionMiniBatch",
    "BandedTransitionPicker",
    "make_banded_dataset",
    "require_banded_dataset",
]


@dataclasses.dataclass(frozen=True)
class BandedEpisode(Episode):
    """d3rlpy ``Episode`` plus, per step ``t``, centre ``c_t`` and offsets: band ``[c_t + lower_t, c_t + upper_t]``.

    Args:
        centres: ``(T, A)`` float32 exploration centres ``mu_bp(s_t)``.
        lowers: ``(T, A)`` float32 lower offsets (e.g. -0.15), relative to the centre.
        uppers: ``(T, A)`` float32 upper offsets (e.g. +0.15), relative to the centre; ``uppers > lowers``.
        reward_components: ``(T, C)`` float32 per-component rewards, or ``None`` (scalar reward only).
    """

    centres: Float32NDArray
    lowers: Float32NDArray
    uppers: Float32NDArray
    reward_components: Float32NDArray | None = None

    def serialize(self) -> dict[str, Any]:
        out = {**super().serialize(), "centres": self.centres, "lowers": self.lowers, "uppers": self.uppers}
        if self.reward_components is not None:  # h5 has no None
            out["reward_components"] = self.reward_components
        return out

    @classmethod
    def deserialize(cls, serializedData: dict[str, Any]) -> BandedEpisode:
        return cls(
            observations=serializedData["observations"],
            actions=serializedData["actions"],
            rewards=serializedData["rewards"],
            terminated=bool(serializedData["terminated"]),
            centres=serializedData["centres"],
            lowers=serializedData["lowers"],
            uppers=serializedData["uppers"],
            reward_components=serializedData.get("reward_components"),
        )


@dataclasses.dataclass(frozen=True)
class BandedTransition(Transition):
    """d3rlpy ``Transition`` plus the centre/offsets of ``s`` and ``s'`` (``s'`` copies ``s`` for terminal steps)."""

    centre: Float32NDArray
    lower: Float32NDArray
    upper: Float32NDArray
    next_centre: Float32NDArray
    next_lower: Float32NDArray
    next_upper: Float32NDArray
    reward_components: Float32NDArray | None = None


class BandedTransitionPicker(TransitionPickerProtocol):
    """``BasicTransitionPicker`` that also returns the band of ``s`` and of ``s'`` (the next step of the episode)."""

    def __init__(self) -> None:
        self._basic = BasicTransitionPicker()

    def __call__(self, episode: EpisodeBase, index: int) -> BandedTransition:
        if not isinstance(episode, BandedEpisode):
            raise TypeError(f"BandedTransitionPicker needs BandedEpisode, got {type(episode).__name__}")
        transition = self._basic(episode, index)
        # A terminal step has no s'; its next band is never used (bootstrap is masked), so repeat the current one.
        nxt = index if transition.terminal else index + 1
        return BandedTransition(
            **asdict_without_copy(transition),
            centre=episode.centres[index],
            lower=episode.lowers[index],
            upper=episode.uppers[index],
            next_centre=episode.centres[nxt],
            next_lower=episode.lowers[nxt],
            next_upper=episode.uppers[nxt],
            reward_components=None if episode.reward_components is None else episode.reward_components[index],
        )


@dataclasses.dataclass(frozen=True)
class BandedTransitionMiniBatch(TransitionMiniBatch):
    """``TransitionMiniBatch`` plus ``(B, A)`` float32 centres/offsets of ``s`` and ``s'`` and, if the dataset has
    them, ``(B, C)`` per-component rewards.

    ``transitions`` is empty: the vectorised sampler never materialises per-sample objects, and IntegratedRL does
    not need returns-to-go (the only d3rlpy consumer of that field).
    """

    centres: Float32NDArray
    lowers: Float32NDArray
    uppers: Float32NDArray
    next_centres: Float32NDArray
    next_lowers: Float32NDArray
    next_uppers: Float32NDArray
    reward_components: Float32NDArray | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class BandedTorchMiniBatch(TorchMiniBatch):
    """``TorchMiniBatch`` plus absolute band edges ``c + lower`` / ``c + upper`` of ``s`` and ``s'``, shape ``(B, A)``.

    Edges are expressed in the algorithm's action space, i.e. after the config's ``action_scaler``.
    ``reward_components`` is ``(B, C)`` (after the ``reward_scaler``) or ``None``.
    """

    band_low_edge: torch.Tensor
    band_high_edge: torch.Tensor
    next_band_low_edge: torch.Tensor
    next_band_high_edge: torch.Tensor
    reward_components: torch.Tensor | None = None

    def copy_(self, src: BandedTorchMiniBatch) -> None:
        """In-place copy (d3rlpy's CUDA-graph wrapper replays a captured batch)."""
        super().copy_(src)
        for name in ("band_low_edge", "band_high_edge", "next_band_low_edge", "next_band_high_edge"):
            getattr(self, name).copy_(getattr(src, name))
        if self.reward_components is not None and src.reward_components is not None:
            self.reward_components.copy_(src.reward_components)

    @classmethod
    def from_banded_batch(
        cls,
        batch: BandedTransitionMiniBatch,
        gamma: float,
        device: str,
        observation_scaler: ObservationScaler | None = None,
        action_scaler: ActionScaler | None = None,
        reward_scaler: RewardScaler | None = None,
        band_override: tuple[float, float] | None = None,
        with_reward_components: bool = False,
    ) -> BandedTorchMiniBatch:
        """Convert like ``TorchMiniBatch.from_batch``; ``band_override`` replaces every recorded offset pair.

        ``with_reward_components`` converts the batch's per-component rewards too (each column through the
        ``reward_scaler``, which must then be linear without shift, e.g. ``MultiplyRewardScaler``).
        """
        base = TorchMiniBatch.from_batch(
            batch=batch,
            gamma=gamma,
            compute_returns_to_go=False,
            device=device,
            observation_scaler=observation_scaler,
            action_scaler=action_scaler,
            reward_scaler=reward_scaler,
        )
        if band_override is None:
            offsets = (batch.lowers, batch.uppers, batch.next_lowers, batch.next_uppers)
        else:
            lo, hi = band_override
            offsets = (lo, hi, lo, hi)
        centres = (batch.centres, batch.centres, batch.next_centres, batch.next_centres)
        edges = []
        for centre, offset in zip(centres, offsets, strict=True):
            edge = convert_to_torch(np.asarray(centre + offset, dtype=np.float32), device)
            edges.append(action_scaler.transform(edge) if action_scaler else edge)
        components = None
        if with_reward_components:
            if batch.reward_components is None:
                raise ValueError("the batch has no reward_components (the dataset carries only the scalar reward)")
            components = convert_to_torch(batch.reward_components, device)
            if reward_scaler:
                components = reward_scaler.transform(components)
        return cls(
            **asdict_without_copy(base),
            band_low_edge=edges[0],
            band_high_edge=edges[1],
            next_band_low_edge=edges[2],
            next_band_high_edge=edges[3],
            reward_components=components,
        )


@dataclasses.dataclass(frozen=True)
class _FlatData:
    """All steps concatenated, plus the step row and next-step row of every sampleable transition."""

    observations: Float32NDArray
    actions: Float32NDArray
    rewards: Float32NDArray
    centres: Float32NDArray
    lowers: Float32NDArray
    uppers: Float32NDArray
    rows: NDArray
    next_rows: NDArray
    terminals: Float32NDArray
    reward_components: Float32NDArray | None

    @classmethod
    def from_episodes(cls, episodes: Sequence[EpisodeBase]) -> _FlatData:
        rows, next_rows, terminals = [], [], []
        start = 0
        for episode in episodes:
            count = episode.transition_count
            ep_rows = np.arange(start, start + count)
            ep_terminals = np.zeros(count, dtype=np.float32)
            ep_next = ep_rows + 1
            if episode.terminated:
                ep_terminals[-1] = 1.0
                ep_next[-1] = ep_rows[-1]
            rows.append(ep_rows)
            next_rows.append(ep_next)
            terminals.append(ep_terminals)
            start += episode.size()

        def cat(name: str) -> Float32NDArray:
            return np.concatenate([getattr(episode, name) for episode in episodes]).astype(np.float32, copy=False)

        return cls(
            observations=cat("observations"),
            actions=cat("actions"),
            rewards=cat("rewards"),
            centres=cat("centres"),
            lowers=cat("lowers"),
            uppers=cat("uppers"),
            rows=np.concatenate(rows),
            next_rows=np.concatenate(next_rows),
            terminals=np.concatenate(terminals)[:, None],
            reward_components=(
                None if any(getattr(e, "reward_components", None) is None for e in episodes)
                else cat("reward_components")
            ),
        )


class BandedReplayBuffer(ReplayBuffer):
    """Offline d3rlpy ``ReplayBuffer`` of :class:`BandedEpisode` with vectorised mini-batch sampling.

    It is a regular d3rlpy dataset (``episodes``, ``dataset_info``, ``dump``, evaluators, scalers all work), but
    ``sample_transition_batch`` returns :class:`BandedTransitionMiniBatch` and gathers the whole batch with NumPy
    fancy indexing instead of d3rlpy's per-sample Python loop. Sampling is uniform over transitions and uses
    ``np.random`` like d3rlpy, so ``d3rlpy.seed`` makes it reproducible.

    Build it with :func:`make_banded_dataset` or :meth:`load`. Single steps cannot be ``append``-ed (they carry no
    centre); whole :class:`BandedEpisode` objects can be added with ``append_episode``.
    """

    def __init__(self, episodes: Sequence[BandedEpisode]) -> None:
        if not any(episode.transition_count > 0 for episode in episodes):
            raise ValueError("a banded dataset needs at least one transition (an episode of >= 2 steps or a terminal)")
        widths = {None if e.reward_components is None else e.reward_components.shape[1] for e in episodes}
        if len(widths) > 1:
            raise ValueError(f"all episodes must carry the same reward components (or none), got widths {widths}")
        self._flat: _FlatData | None = None
        super().__init__(
            InfiniteBuffer(),
            transition_picker=BandedTransitionPicker(),
            episodes=episodes,
            action_space=ActionSpace.CONTINUOUS,
            action_size=int(episodes[0].actions.shape[1]),
        )

    def append(self, observation: Observation, action: int | NDArray, reward: float | NDArray) -> None:
        raise ValueError(
            "BandedReplayBuffer cannot take single steps: every step needs its exploration centre and band; "
            "append a whole BandedEpisode with append_episode() or rebuild with make_banded_dataset()"
        )

    def append_episode(self, episode: EpisodeBase) -> None:
        if not isinstance(episode, BandedEpisode):
            raise TypeError(f"BandedReplayBuffer only holds BandedEpisode, got {type(episode).__name__}")
        super().append_episode(episode)
        self._flat = None

    def sample_transition_batch(self, batch_size: int) -> BandedTransitionMiniBatch:
        if self._flat is None:
            self._flat = _FlatData.from_episodes(self.episodes)
        flat = self._flat
        # The global legacy RNG on purpose: it is what d3rlpy samples with and what d3rlpy.seed() seeds.
        pick = np.random.randint(flat.rows.shape[0], size=batch_size)  # noqa: NPY002
        rows, next_rows, terminals = flat.rows[pick], flat.next_rows[pick], flat.terminals[pick]
        terminal = terminals[:, 0] > 0
        # d3rlpy convention: the next observation/action of a terminal transition is all zeros.
        next_observations = flat.observations[next_rows]
        next_observations[terminal] = 0.0
        next_actions = flat.actions[next_rows]
        next_actions[terminal] = 0.0
        return BandedTransitionMiniBatch(
            observations=flat.observations[rows],
            actions=flat.actions[rows],
            rewards=flat.rewards[rows],
            next_observations=next_observations,
            next_actions=next_actions,
            terminals=terminals,
            intervals=np.ones_like(terminals),
            transitions=(),
            centres=flat.centres[rows],
            lowers=flat.lowers[rows],
            uppers=flat.uppers[rows],
            next_centres=flat.centres[next_rows],
            next_lowers=flat.lowers[next_rows],
            next_uppers=flat.uppers[next_rows],
            reward_components=None if flat.reward_components is None else flat.reward_components[rows],
        )

    @property
    def num_reward_components(self) -> int:
        """Per-component reward columns C of every episode, or 0 when the dataset carries only the scalar reward."""
        first = self.episodes[0]
        components = getattr(first, "reward_components", None)
        return 0 if components is None else int(components.shape[1])

    @classmethod
    def load(cls, f: BinaryIO) -> BandedReplayBuffer:  # type: ignore[override]
        """Rebuild a buffer written by ``dump`` (h5, centres and bands included)."""
        return cls(load_episodes(BandedEpisode, f))


def require_banded_dataset(dataset: ReplayBufferBase, num_critic_sets: int = 1) -> BandedReplayBuffer:
    """Return ``dataset`` if it carries exploration bands (and, for ``num_critic_sets > 1``, that many reward
    components), else raise a ``TypeError`` / ``ValueError`` saying how to build one."""
    if not isinstance(dataset, BandedReplayBuffer):
        raise TypeError(
            f"IntegratedRL needs the exploration centre mu_bp(s) and band of every transition, which a "
            f"{type(dataset).__name__} does not carry. Build the dataset with "
            "mtf_agents.integrated_rl.make_banded_dataset(observations, actions, rewards, terminals, timeouts, "
            "centres, lowers, uppers)."
        )
    if num_critic_sets > 1 and dataset.num_reward_components != num_critic_sets:
        have = dataset.num_reward_components
        raise ValueError(
            f"IntegratedRLConfig.num_critic_sets={num_critic_sets} needs {num_critic_sets} reward components per "
            f"transition, the dataset has {have or 'none (scalar reward only)'}; pass reward_components= to "
            "make_banded_dataset (collect with item logs for per-group rewards) or set num_critic_sets=1"
        )
    return dataset


def _offsets(name: str, value: float | NDArray, n: int, action_size: int) -> Float32NDArray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[:, None]
    if (
        arr.ndim > 2
        or (arr.ndim >= 1 and arr.shape[0] != n)
        or (arr.ndim == 2 and arr.shape[1] not in (1, action_size))
    ):
        raise ValueError(f"{name} must be a float, shape ({n},) or ({n}, {action_size}); got shape {np.shape(value)}")
    return np.ascontiguousarray(np.broadcast_to(arr, (n, action_size)))


def make_banded_dataset(
    observations: NDArray,
    actions: NDArray,
    rewards: NDArray,
    terminals: NDArray,
    timeouts: NDArray,
    centres: NDArray,
    lowers: float | NDArray,
    uppers: float | NDArray,
    reward_components: NDArray | None = None,
) -> BandedReplayBuffer:
    """Build the d3rlpy dataset IntegratedRL trains on, from flat per-step arrays in logging order.

    Row ``t`` is one request: the agent saw ``observations[t]``, explored around ``centres[t]`` inside
    ``[centres[t] + lowers[t], centres[t] + uppers[t]]``, played ``actions[t]`` and got ``rewards[t]``. Rows of one
    episode (session) are consecutive; the next state of row ``t`` is row ``t + 1`` (MDPDataset convention).

    Args:
        observations: ``(N, obs_dim)`` states.
        actions: ``(N, A)`` actions in the algorithm's action space (``[-1, 1]`` unless an ``action_scaler`` is
            configured).
        rewards: ``(N,)`` or ``(N, 1)`` scalar rewards.
        terminals: ``(N,)`` 1 where the episode ended because the user left (no bootstrap after this row).
        timeouts: ``(N,)`` 1 where the episode was cut without a terminal (request cap). Never 1 together with
            ``terminals``; the last row must end an episode.
        centres: ``(N, A)`` exploration centres ``mu_bp(s_t)`` (the baseline/previous policy's action).
        lowers: lower band offsets relative to the centre (e.g. ``-0.15``): a float, ``(N,)`` or ``(N, A)``.
        uppers: upper band offsets relative to the centre (e.g. ``+0.15``); same shapes; ``uppers > lowers``.
        reward_components: optional ``(N, C)`` per-component rewards (one column per behaviour group, e.g.
            consumption / interaction / negative) for ``num_critic_sets = C``; ``rewards`` should be their weighted
            sum with the config's ``critic_set_weights`` (not checked here: the weights belong to the algorithm).

    Returns:
        A :class:`BandedReplayBuffer`; pass it to ``IntegratedRL.fit``. Arrays are stored as float32.

    Episode boundaries follow d3rlpy: the last row of a timed-out episode has no recorded next state, so it is not
    a training transition (its ``s'`` and ``c(s')`` are unknown); every sampled non-terminal transition therefore
    has ``c(s')`` = the centre of the next row of the same episode. A timed-out episode of a single row contributes
    nothing.

    Raises:
        ValueError: on wrong shapes, non-finite values, ``uppers <= lowers``, a row that is both terminal and
            timeout, or trailing rows after the last episode end.
    """
    obs = np.asarray(observations, dtype=np.float32)
    act = np.asarray(actions, dtype=np.float32)
    if obs.ndim != 2 or act.ndim != 2 or obs.shape[0] != act.shape[0]:
        raise ValueError(
            f"observations and actions must be (N, obs_dim) and (N, A) with the same N; got {obs.shape}, {act.shape}"
        )
    n, action_size = act.shape
    rew = np.asarray(rewards, dtype=np.float32)
    if rew.ndim == 1:
        rew = rew[:, None]
    if rew.shape != (n, 1):
        raise ValueError(f"rewards must be ({n},) or ({n}, 1) (scalar rewards); got shape {np.shape(rewards)}")
    term = np.asarray(terminals).reshape(-1).astype(bool)
    tout = np.asarray(timeouts).reshape(-1).astype(bool)
    if term.shape != (n,) or tout.shape != (n,):
        raise ValueError(
            f"terminals and timeouts must have shape ({n},); got {np.shape(terminals)}, {np.shape(timeouts)}"
        )
    cen = np.asarray(centres, dtype=np.float32)
    if cen.shape != (n, action_size):
        raise ValueError(f"centres must have shape ({n}, {action_size}) like actions; got {cen.shape}")
    low = _offsets("lowers", lowers, n, action_size)
    up = _offsets("uppers", uppers, n, action_size)
    comp = None
    if reward_components is not None:
        comp = np.asarray(reward_components, dtype=np.float32)
        if comp.ndim != 2 or comp.shape[0] != n or comp.shape[1] < 1:
            raise ValueError(
                f"reward_components must have shape ({n}, C) with C >= 1; got {np.shape(reward_components)}"
            )
        if not np.all(np.isfinite(comp)):
            raise ValueError("reward_components contains NaN or inf")
    for name, arr in (("observations", obs), ("actions", act), ("rewards", rew), ("centres", cen)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf")
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(up)) and np.all(up > low)):
        raise ValueError("band offsets must be finite with uppers > lowers everywhere (the band width is a divisor)")
    if np.any(term & tout):
        raise ValueError("a row cannot be both terminal and timeout")
    ends = np.flatnonzero(term | tout)
    if ends.size == 0 or ends[-1] != n - 1:
        raise ValueError("the last row must be terminal or timeout (rows after the last episode end would be lost)")

    episodes = []
    start = 0
    for end in ends + 1:
        episodes.append(
            BandedEpisode(
                observations=obs[start:end],
                actions=act[start:end],
                rewards=rew[start:end],
                terminated=bool(term[end - 1]),
                centres=cen[start:end],
                lowers=low[start:end],
                uppers=up[start:end],
                reward_components=None if comp is None else comp[start:end],
            )
        )
        start = end
    return BandedReplayBuffer(episodes)

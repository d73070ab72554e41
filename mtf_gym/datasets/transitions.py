"""``TransitionData``: the in-memory exploration dataset every other component codes against.

One row per recorded request (transition), rows grouped by episode (session), episodes contiguous and numbered
``0..E-1`` in collection order, steps in request order. ``docs/datasets.md`` documents every field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtf_gym.envs.versions import AnyConfig, make_env_config

__all__ = ["ARRAY_FIELDS", "LEGACY_ENV_ID", "REWARD_COMPONENTS_TOLERANCE", "TransitionData", "env_config_of"]

# Datasheets written before MTFSession-v1 existed carry no env id: every one of them is a v0 dataset.
LEGACY_ENV_ID = "MTFSession-v0"

# Every array field and its dtype, in hashing/serialisation order.
ARRAY_FIELDS: dict[str, np.dtype] = {
    "observations": np.dtype(np.float32),
    "actions": np.dtype(np.float32),
    "rewards": np.dtype(np.float32),
    "next_observations": np.dtype(np.float32),
    "terminals": np.dtype(np.bool_),
    "truncations": np.dtype(np.bool_),
    "centres": np.dtype(np.float32),
    "lower": np.dtype(np.float32),
    "upper": np.dtype(np.float32),
    "episode_ids": np.dtype(np.int64),
    "step_ids": np.dtype(np.int64),
    "item_ids": np.dtype(np.int64),
    "predictions": np.dtype(np.float32),
    "responses": np.dtype(np.float32),
    "item_rewards": np.dtype(np.float32),
    "reward_components": np.dtype(np.float32),
}
# The components are summed in a different order than the simulator sums the reward: allow float32 rounding.
REWARD_COMPONENTS_TOLERANCE = 1e-4
_NDIM = {"observations": 2, "actions": 2, "rewards": 1, "next_observations": 2, "terminals": 1, "truncations": 1,
         "centres": 2, "lower": 2, "upper": 2, "episode_ids": 1, "step_ids": 1, "item_ids": 2, "predictions": 3,
         "responses": 3, "item_rewards": 2, "reward_components": 2}


@dataclass(frozen=True, eq=False)
class TransitionData:
    """Transitions of complete sessions, with the exploration centre and band of every action.

    Shapes (``N`` transitions, ``A`` action dims, ``K`` shown items per request, ``T`` ranker tasks, ``R`` response
    fields; ``K = 0`` when the env ran with ``item_logs=False``):

    Attributes:
        observations: ``(N, obs_dim)`` float32, the state ``s_t`` the action was chosen in.
        actions: ``(N, A)`` float32, the executed action (after clipping to ``[-1, 1]``).
        rewards: ``(N,)`` float32.
        next_observations: ``(N, obs_dim)`` float32, ``s_{t+1}`` (the session's final observation on its last row).
        terminals: ``(N,)`` bool, the user left after this request.
        truncations: ``(N,)`` bool, the session was cut without the user leaving (request cap ``max_requests``, or
            a transition budget ran out: ``metadata["budget_cut_episodes"]``).
        centres: ``(N, A)`` float32, exploration centre ``mu_bp(s_t)``.
        lower, upper: ``(N, A)`` float32 band offsets relative to the centre (e.g. -0.15 / +0.15).
        episode_ids: ``(N,)`` int64, ``0..E-1``, non-decreasing (episodes contiguous).
        step_ids: ``(N,)`` int64, request index within the session (``0, 1, ...``).
        item_ids: ``(N, K)`` int64, shown items in position order.
        predictions: ``(N, K, T)`` float32 ranker scores of the shown items.
        responses: ``(N, K, R)`` float32 true responses (columns ``mtf_gym.RESPONSE_FIELDS``).
        item_rewards: ``(N, K)`` float32 per-item reward.
        reward_components: ``(N, C)`` float32 reward per behaviour group (``metadata["reward_components"]`` names
            the groups and their response fields); ``rewards`` is their sum (up to float32 rounding). Omitted
            (``None``) it is the single column ``rewards[:, None]`` named ``"total"``: datasets without item logs
            and datasets written before the field existed.
        metadata: JSON-serialisable datasheet (env config, behaviour policy, seed, sizes; see docs/datasets.md).

    Construction validates dtypes, shapes and the episode structure (``ValueError`` naming the field).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    truncations: np.ndarray
    centres: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    episode_ids: np.ndarray
    step_ids: np.ndarray
    item_ids: np.ndarray
    predictions: np.ndarray
    responses: np.ndarray
    item_rewards: np.ndarray
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    reward_components: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.reward_components is None and isinstance(self.rewards, np.ndarray) and self.rewards.ndim == 1:
            object.__setattr__(self, "reward_components", self.rewards[:, None].copy())
        for name, dtype in ARRAY_FIELDS.items():
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.ndim != _NDIM[name]:
                got = f"{arr.dtype} with shape {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
                raise ValueError(f"TransitionData.{name} must be a {_NDIM[name]}-D {dtype} array, got {got}")
        n = self.observations.shape[0]
        obs_dim = self.observations.shape[1]
        a_dim = self.actions.shape[1]
        k = self.item_ids.shape[1]
        expected = {
            "actions": (n, a_dim), "rewards": (n,), "next_observations": (n, obs_dim), "terminals": (n,),
            "truncations": (n,), "centres": (n, a_dim), "lower": (n, a_dim), "upper": (n, a_dim),
            "episode_ids": (n,), "step_ids": (n,), "item_ids": (n, k),
            "predictions": (n, k, self.predictions.shape[2]), "responses": (n, k, self.responses.shape[2]),
            "item_rewards": (n, k), "reward_components": (n, self.reward_components.shape[1]),
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"TransitionData.{name} must have shape {shape}, got {getattr(self, name).shape}")
        try:
            # Stored as its JSON round trip (tuples -> lists), so a loaded dataset's metadata equals the original.
            object.__setattr__(self, "metadata", json.loads(json.dumps(self.metadata)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"TransitionData.metadata must be JSON-serialisable: {exc}") from exc
        if self.num_reward_components < 1:
            raise ValueError("TransitionData.reward_components must have at least one column")
        if self.num_reward_components > 1 and not np.allclose(
            self.reward_components.astype(np.float64).sum(axis=1), self.rewards, rtol=REWARD_COMPONENTS_TOLERANCE,
            atol=REWARD_COMPONENTS_TOLERANCE,
        ):
            raise ValueError("TransitionData.rewards must equal the row sums of reward_components")
        if not (self.upper > self.lower).all():
            raise ValueError("TransitionData.upper must be > lower in every row and dimension")
        if (self.terminals & self.truncations).any():
            raise ValueError("TransitionData: a transition cannot be both terminal and truncated")
        if n == 0:
            return
        ep, step = self.episode_ids, self.step_ids
        new_episode = np.empty(n, dtype=bool)
        new_episode[0] = True
        new_episode[1:] = ep[1:] != ep[:-1]
        if ep[0] != 0 or (np.diff(ep) < 0).any() or (np.diff(ep) > 1).any():
            raise ValueError("TransitionData.episode_ids must be 0..E-1, non-decreasing (episodes contiguous)")
        starts = np.flatnonzero(new_episode)
        expected_steps = np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))
        if not np.array_equal(step, expected_steps):
            raise ValueError("TransitionData.step_ids must count 0, 1, ... within every episode")
        ends = np.append(new_episode[1:], True)
        done = self.terminals | self.truncations
        if not np.array_equal(done, ends):
            raise ValueError("TransitionData: every episode's last transition (and only it) must be terminal or "
                             "truncated")
        # s_{t+1} of a row is the next row's s_t inside an episode: the alignment offline RL relies on.
        inner = ~ends[:-1]
        if not np.array_equal(self.next_observations[:-1][inner], self.observations[1:][inner]):
            raise ValueError("TransitionData.next_observations must equal the next row's observations within an "
                             "episode")

    # ------------------------------------------------------------------ sizes
    def __len__(self) -> int:
        return int(self.observations.shape[0])

    @property
    def num_transitions(self) -> int:
        return len(self)

    @property
    def num_episodes(self) -> int:
        return 0 if len(self) == 0 else int(self.episode_ids[-1]) + 1

    @property
    def obs_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1])

    @property
    def num_reward_components(self) -> int:
        """Columns of ``reward_components`` (1 when the dataset carries only the total reward)."""
        return int(self.reward_components.shape[1])

    def reward_component_names(self) -> list[str]:
        """Names of the ``reward_components`` columns (``["total"]`` for a single column)."""
        groups = self.metadata.get("reward_components")
        if self.num_reward_components == 1 or not isinstance(groups, dict):
            return ["total"] if self.num_reward_components == 1 else [
                f"component_{i}" for i in range(self.num_reward_components)]
        return list(groups)

    @property
    def env_id(self) -> str:
        """The environment version the data was collected in (datasheet ``env_id``; none recorded: v0)."""
        return str(self.metadata.get("env_id", LEGACY_ENV_ID))

    def env_config(self) -> AnyConfig:
        """The env config the data was collected with, rebuilt from the datasheet (see :func:`env_config_of`)."""
        return env_config_of(self.metadata)

    @property
    def has_item_logs(self) -> bool:
        return self.item_ids.shape[1] > 0

    # ------------------------------------------------------------------ episodes
    def episode_starts(self) -> np.ndarray:
        """``(E + 1,)`` int64 row offsets: episode ``e`` is rows ``starts[e]:starts[e + 1]``."""
        counts = np.bincount(self.episode_ids, minlength=self.num_episodes)
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def episode_lengths(self) -> np.ndarray:
        """``(E,)`` int64 transitions (requests) per episode."""
        return np.diff(self.episode_starts())

    def episode_slices(self) -> list[slice]:
        """Row slice of every episode, in order."""
        starts = self.episode_starts()
        return [slice(int(a), int(b)) for a, b in itertools.pairwise(starts.tolist())]

    def episode_returns(self) -> np.ndarray:
        """``(E,)`` float64 undiscounted return (sum of rewards) of every episode."""
        return np.bincount(self.episode_ids, weights=self.rewards.astype(np.float64), minlength=self.num_episodes)

    @property
    def offsets(self) -> np.ndarray:
        """``(N, A)`` float64 ``actions - centres``: the exploration offsets actually executed."""
        return self.actions.astype(np.float64) - self.centres.astype(np.float64)

    # ------------------------------------------------------------------ identity
    def arrays(self) -> dict[str, np.ndarray]:
        """Every array field by name, in :data:`ARRAY_FIELDS` order."""
        return {name: getattr(self, name) for name in ARRAY_FIELDS}

    def content_hash(self) -> str:
        """SHA-256 (hex) of every array's name, dtype, shape and bytes (the metadata is not included).

        A single ``reward_components`` column is ``rewards`` itself and is left out, so datasets written before the
        field existed keep their hash.
        """
        h = hashlib.sha256()
        for name, arr in self.arrays().items():
            if name == "reward_components" and self.num_reward_components == 1:
                continue
            h.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
            h.update(np.ascontiguousarray(arr).data)
        return h.hexdigest()

    @classmethod
    def concatenate(cls, parts: Sequence[TransitionData], metadata: dict[str, Any]) -> TransitionData:
        """Episodes of ``parts`` in order, renumbered ``0..E-1``; ``metadata`` describes the whole."""
        if not parts:
            raise ValueError("parts must contain at least one TransitionData")
        if len({p.num_reward_components for p in parts}) > 1:
            raise ValueError("parts must have the same number of reward components to be concatenated")
        fields: dict[str, np.ndarray] = {}
        for name in ARRAY_FIELDS:
            fields[name] = np.concatenate([getattr(p, name) for p in parts])
        shift = np.repeat(np.cumsum([0] + [p.num_episodes for p in parts[:-1]]), [len(p) for p in parts])
        fields["episode_ids"] = fields["episode_ids"] + shift.astype(np.int64)
        return cls(**fields, metadata=metadata)


def env_config_of(metadata: dict[str, Any]) -> AnyConfig:
    """The env config of a datasheet: its ``env_id``'s config class (no ``env_id``: a pre-v1 datasheet, so v0) with
    its ``env_config`` (none: that version's defaults)."""
    return make_env_config(str(metadata.get("env_id", LEGACY_ENV_ID)), metadata.get("env_config"))

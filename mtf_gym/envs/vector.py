"""``MTFSessionVectorEnv``: N user sessions in one batched simulator (the ``vector_entry_point`` of MTFSession-v0
and, as :class:`MTFSessionV1VectorEnv`, of MTFSession-v1)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import VectorEnv
from gymnasium.vector.utils import batch_space

from mtf_gym.config import MTFSessionConfig
from mtf_gym.envs.render import render_ansi, render_rgb
from mtf_gym.envs.session import (
    AnyConfig,
    action_space,
    make_config,
    make_simulator,
    observation_space,
    step_info,
)
from mtf_gym.fusion import validate_actions
from mtf_gym.sim.config import MTFSessionV1Config

__all__ = ["MTFSessionV1VectorEnv", "MTFSessionVectorEnv", "batch_step_info"]

# What a single env's reset returns in ``info``: on an autoreset step these are the only keys a sub-env reports.
RESET_INFO_KEYS = ("segment", "request_index", "candidates", "candidate_predictions")


def batch_step_info(info: dict[str, Any], live: np.ndarray) -> dict[str, Any]:
    """Gymnasium's ``_name`` masks for a batched step ``info``, as ``SyncVectorEnv`` would build them: rows being
    autoreset (``~live``) report only their reset info (``segment``, ``request_index``), so every other key is
    masked out (value 0) for them, and a key no row reports is absent."""
    out: dict[str, Any] = {}
    restarted = ~live
    any_live = bool(live.any())
    for key, value in info.items():
        if key in RESET_INFO_KEYS:
            out[key], out[f"_{key}"] = value, np.ones(live.shape[0], dtype=bool)
        elif any_live:
            if restarted.any():
                value = value.copy()
                value[restarted] = 0
            out[key], out[f"_{key}"] = value, live.copy()
    return out


class MTFSessionVectorEnv(VectorEnv):
    """``num_envs`` independent sessions stepped together by one :class:`~mtf_gym.simulator.SessionSimulator`.

    Semantics match ``gymnasium.vector.SyncVectorEnv`` over ``MTFSession-v0`` exactly (tested):

    * ``reset(seed=s)`` seeds sub-env ``i`` with ``s + i`` (or ``seed[i]`` for a list), so sub-env ``i`` follows the
      same trajectory as ``gym.make("MTFSession-v0").reset(seed=s + i)`` under the same actions;
    * autoreset is Gymnasium 1.0's "next step" mode: the step after a sub-env ends returns its new session's first
      observation, reward 0 and ``terminated = truncated = False``;
    * ``info`` holds arrays over sub-envs with Gymnasium's ``_name`` masks; item logs (``item_ids``,
      ``predictions``, ``responses``, ``item_rewards``) are masked out for sub-envs that were autoreset.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "autoreset_mode": "next_step"}
    config_class: type = MTFSessionConfig

    def __init__(
        self,
        num_envs: int = 1,
        config: AnyConfig | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("max_episode_steps", None)  # the request cap is ``max_requests`` in the config
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.config = make_config(self.config_class, config, kwargs)
        self.num_envs = int(num_envs)
        self.render_mode = render_mode
        self.single_observation_space = observation_space(self.config)
        self.single_action_space = action_space(self.config)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.sim = make_simulator(self.config, self.num_envs)
        self._rngs: list[np.random.Generator] = [seeding.np_random()[0] for _ in range(self.num_envs)]
        self._bit_generators = [rng.bit_generator for rng in self._rngs]
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._all_rows = np.arange(self.num_envs)
        self._needs_reset = True

    def _draw_keys(self, rows: np.ndarray) -> np.ndarray:
        # One key per new session, from that sub-env's own generator: the only entropy a session consumes.
        bit_generators = self._bit_generators
        return np.array([bit_generators[i].random_raw() for i in rows], dtype=np.uint64)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, (int, np.integer)) else list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed must be an int or a list of {self.num_envs} seeds, got {len(seeds)} seeds")
            for i, s in enumerate(seeds):
                if s is not None:
                    self._rngs[i] = seeding.np_random(s)[0]
                    self._bit_generators[i] = self._rngs[i].bit_generator
        self.sim.start_sessions(self._all_rows, self._draw_keys(self._all_rows))
        self.sim.last_step = None
        self._autoreset[:] = False
        self._needs_reset = False
        ones = np.ones(self.num_envs, dtype=bool)
        info = {"segment": self.sim.segment.astype(np.int64), "_segment": ones,
                "request_index": np.zeros(self.num_envs, np.int64), "_request_index": ones.copy()}
        return self._first_observation(self.sim.observations()), info

    def step(self, actions: np.ndarray):
        if self._needs_reset:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step()")
        arr = self._validate(actions)
        live = ~self._autoreset
        if self._autoreset.any():
            # Rows whose session ended last step are not stepped: they start a new session and report Gymnasium's
            # autoreset values (zero reward, not done, the new session's first observation).
            restart_keys = np.zeros(self.num_envs, np.uint64)
            rows = np.flatnonzero(self._autoreset)
            restart_keys[rows] = self._draw_keys(rows)
            out = self._advance(arr, self._autoreset, restart_keys)
        else:
            out = self._advance(arr, None, None)
        info = batch_step_info(self._info(out), live)
        self._autoreset = out.terminated | out.truncated
        # float64 rewards, as SyncVectorEnv batches a single env's Python float.
        return self._observation(out, live), out.rewards.astype(np.float64), out.terminated, out.truncated, info

    # Hooks: how the page is chosen and what is observed (the slate env overrides them; the user side is shared).
    def _validate(self, actions: np.ndarray) -> np.ndarray:
        arr = validate_actions(actions, self.config.action_dim, batch=True, name="actions")
        if arr.shape[0] != self.num_envs:
            raise ValueError(f"actions must have shape ({self.num_envs}, {self.config.action_dim}), got {arr.shape}")
        return arr

    def _advance(self, actions: np.ndarray, restart: np.ndarray | None, restart_keys: np.ndarray | None) -> Any:
        return self.sim.step(actions, restart=restart, restart_keys=restart_keys)

    def _first_observation(self, user_obs: np.ndarray) -> np.ndarray:
        return user_obs

    def _observation(self, out: Any, live: np.ndarray) -> np.ndarray:
        return out.observations

    def _info(self, out: Any) -> dict[str, Any]:
        return step_info(out, self.sim, slice(None))

    def render(self):
        if self.render_mode == "ansi":
            return tuple(render_ansi(self.sim, i, None) for i in range(self.num_envs))
        if self.render_mode == "rgb_array":
            return tuple(render_rgb(self.sim, i) for i in range(self.num_envs))
        return None


class MTFSessionV1VectorEnv(MTFSessionVectorEnv):
    """The ``vector_entry_point`` of ``MTFSession-v1``: the same semantics, on the v1 user model."""

    config_class = MTFSessionV1Config

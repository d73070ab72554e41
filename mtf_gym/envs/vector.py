"""``MTFSessionVectorEnv``: N user sessions in one batched simulator (the ``vector_entry_point`` of MTFSession-v0)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import VectorEnv
from gymnasium.vector.utils import batch_space

from mtf_gym.config import MTFSessionConfig, config_from_kwargs
from mtf_gym.envs.render import render_ansi, render_rgb
from mtf_gym.envs.session import action_space, observation_space, step_info
from mtf_gym.fusion import validate_actions
from mtf_gym.simulator import SessionSimulator

__all__ = ["MTFSessionVectorEnv"]


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

    def __init__(
        self,
        num_envs: int = 1,
        config: MTFSessionConfig | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("max_episode_steps", None)  # the request cap is ``max_requests`` in the config
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.config = config_from_kwargs(config, kwargs)
        self.num_envs = int(num_envs)
        self.render_mode = render_mode
        self.single_observation_space = observation_space(self.config)
        self.single_action_space = action_space(self.config)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.sim = SessionSimulator(self.config, self.num_envs)
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
        info = {"segment": self.sim.segment.copy(), "_segment": np.ones(self.num_envs, dtype=bool)}
        return self.sim.observations(), info

    def step(self, actions: np.ndarray):
        if self._needs_reset:
            raise RuntimeError("MTFSessionVectorEnv: call reset() before step()")
        arr = validate_actions(actions, self.config.action_dim, batch=True, name="actions")
        if arr.shape[0] != self.num_envs:
            raise ValueError(f"actions must have shape ({self.num_envs}, {self.config.action_dim}), got {arr.shape}")
        live = ~self._autoreset
        if self._autoreset.any():
            # Rows whose session ended last step are not stepped: they start a new session and report Gymnasium's
            # autoreset values (zero reward, not done, the new session's first observation).
            restart_keys = np.zeros(self.num_envs, np.uint64)
            rows = np.flatnonzero(self._autoreset)
            restart_keys[rows] = self._draw_keys(rows)
            out = self.sim.step(arr, restart=self._autoreset, restart_keys=restart_keys)
        else:
            out = self.sim.step(arr)
        info = step_info(out, self.sim, slice(None))
        for key in list(info):
            info[f"_{key}"] = live if key in ("item_ids", "predictions", "responses", "item_rewards") else (
                np.ones(self.num_envs, dtype=bool)
            )
        self._autoreset = out.terminated | out.truncated
        return out.observations, out.rewards, out.terminated, out.truncated, info

    def render(self):
        if self.render_mode == "ansi":
            return tuple(render_ansi(self.sim, i, None) for i in range(self.num_envs))
        if self.render_mode == "rgb_array":
            return tuple(render_rgb(self.sim, i) for i in range(self.num_envs))
        return None

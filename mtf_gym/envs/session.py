"""``MTFSession-v0``: one user's short-video session, as a Gymnasium environment."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mtf_gym.config import MTFSessionConfig, config_from_kwargs
from mtf_gym.envs.render import render_ansi, render_rgb
from mtf_gym.fusion import validate_actions
from mtf_gym.simulator import OBSERVATION_FEATURES, SessionSimulator, StepOutput

__all__ = ["MTFSessionEnv", "action_space", "observation_space", "step_info"]


def observation_space(config: MTFSessionConfig) -> spaces.Box:
    return spaces.Box(0.0, 1.0, shape=(len(OBSERVATION_FEATURES),), dtype=np.float32)


def action_space(config: MTFSessionConfig) -> spaces.Box:
    return spaces.Box(-1.0, 1.0, shape=(config.action_dim,), dtype=np.float32)


def step_info(out: StepOutput, sim: SessionSimulator, row: int | slice) -> dict[str, Any]:
    """The ``info`` dict of one row (``int``) or of a batch (``slice``); the vector env adds Gymnasium's masks."""
    info: dict[str, Any] = {
        "action_clipped": out.clipped[row],
        "request_index": sim.request_index[row].copy() if isinstance(row, slice) else int(sim.request_index[row]),
        "segment": sim.segment[row].copy() if isinstance(row, slice) else int(sim.segment[row]),
        "satisfaction": sim.satisfaction[row].copy() if isinstance(row, slice) else float(sim.satisfaction[row]),
    }
    if out.item_ids is not None:
        info["item_ids"] = out.item_ids[row]
        info["predictions"] = out.predictions[row]
        info["responses"] = out.responses[row]
        info["item_rewards"] = out.item_rewards[row]
    return info


class MTFSessionEnv(gym.Env[np.ndarray, np.ndarray]):
    """
    ## Description

    A user opens a short-video feed and makes a request every time they reach the end of a page. For each request
    the platform retrieves ``C`` candidate videos, a multi-task ranker predicts ``T`` behaviour scores for each
    (valid view, watch time, long view, like, follow by default), and the **agent chooses the fusion parameters**
    that turn the scores into one: ``final = prod_i (pred_i + bias_i) ** power_i`` (IntegratedRL-MTF, Eq. 1). The
    top ``K`` videos are shown; the simulated user watches, skips, likes, follows or shares them, grows bored of
    repeated topics, loses satisfaction on clickbait, and may leave. The goal is the most reward over the session.

    The ranker's scores are noisy, biased estimates of the user's true behaviour probabilities (noisier for
    cold-start users and rare events, blind to in-session boredom, over-estimating clickbait), so the fusion
    weights matter. See ``docs/environment.md`` and ``docs/user_model.md`` for the full model and calibration.

    ## Action Space

    ``Box(-1, 1, (2T,), float32)``: the first ``T`` entries are powers, the last ``T`` biases, mapped affinely to
    ``FusionRanges`` (default: power in [-2, 2] affinely, bias in [0.001, 1] log-uniformly); see
    ``mtf_gym.action_to_fusion_params``. Entries outside [-1, 1] are clipped and counted in
    ``info["action_clipped"]``; NaN/inf or a wrong shape raise
    ``ValueError``.

    ## Observation Space

    ``Box(0, 1, (18,), float32)``; names in ``mtf_gym.OBSERVATION_FEATURES``:

    | index | feature | meaning |
    |-------|---------|---------|
    | 0-3 | segment_* | one-hot user segment (casual, lean_back, social, quality_seeker) |
    | 4 | activity_level | long-term activity (log-normal, squashed to [0, 1]) |
    | 5 | interest_concentration | share of the user's top topic in their interests |
    | 6 | request_progress | requests so far / ``max_requests`` |
    | 7-11 | last_* | previous page: valid-view, long-view, engagement, quick-skip rates, watch fraction |
    | 12-16 | session_* | the same five, averaged over the session so far |
    | 17 | topic_repetition | largest topic share in the recent exposure (moving average) |

    ## Rewards

    ``r = sum_k w_k * v_k`` over the shown items' behaviours (``RewardWeights``: watch time per minute 1, valid view
    1, long view 0.5, like 2, comment 2, follow 5, share 3, hate -5).

    ## Starting State

    A new user is drawn from four segments with their own interests, patience, engagement propensity, clickbait
    aversion, boredom sensitivity and ranker error; the session history is empty.

    ## Episode End

    * Termination: the user leaves (probability after each request grows with quick skips, boredom and elapsed
      requests, and shrinks with satisfaction).
    * Truncation: ``max_requests`` requests (default 30).

    ## Info

    ``action_clipped``, ``request_index``, ``segment``, ``satisfaction`` (latent, for analysis) and, with
    ``item_logs=True`` (default), item-level logs for offline metrics: ``item_ids`` (K,), ``predictions`` (K, T)
    in position order, ``responses`` (K, 9) with columns ``mtf_gym.RESPONSE_FIELDS`` and ``item_rewards`` (K,).

    ## Arguments

    ``gym.make("MTFSession-v0", config=MTFSessionConfig(...), render_mode=None, **overrides)``; keyword overrides
    are ``MTFSessionConfig`` fields (e.g. ``page_size=4``). Invalid values raise ``ValueError`` naming the field.
    ``gym.make_vec("MTFSession-v0", num_envs=N)`` gives the natively batched ``MTFSessionVectorEnv``.

    ## Version History

    * v0: initial release; later ported to compiled (numba) kernels with the same dynamics (results agree up to
      float32 rounding, ``docs/environment.md``).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(self, config: MTFSessionConfig | None = None, render_mode: str | None = None, **kwargs: Any) -> None:
        self.config = config_from_kwargs(config, kwargs)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self.observation_space = observation_space(self.config)
        self.action_space = action_space(self.config)
        self.sim = SessionSimulator(self.config, 1)
        self._row = np.zeros(1, np.int64)
        self._needs_reset = True
        self._last_action: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        # One key per session from np_random: the only entropy a session consumes (see mtf_gym.rng).
        key = np.array([self.np_random.bit_generator.random_raw()], dtype=np.uint64)
        self.sim.start_sessions(self._row, key)
        self.sim.last_step = None
        self._needs_reset = False
        obs = self.sim.observations()[0]
        return obs, {"segment": int(self.sim.segment[0]), "request_index": 0}

    def step(self, action: np.ndarray):
        if self._needs_reset:
            raise RuntimeError("MTFSession: call reset() before step() (the session has ended or not started)")
        arr = validate_actions(action, self.config.action_dim, batch=False)
        self._last_action = arr
        out = self.sim.step(arr[None, :])
        terminated, truncated = bool(out.terminated[0]), bool(out.truncated[0])
        self._needs_reset = terminated or truncated
        info = step_info(out, self.sim, 0)
        info["action_clipped"] = int(info["action_clipped"])
        return out.observations[0], float(out.rewards[0]), terminated, truncated, info

    def render(self):
        if self.render_mode == "ansi":
            return render_ansi(self.sim, 0, self._last_action)
        if self.render_mode == "rgb_array":
            return render_rgb(self.sim, 0)
        return None


"""``MTFSession-v0`` and ``MTFSession-v1``: one user's short-video session, as a Gymnasium environment.

The version is the config's type: :class:`~mtf_gym.config.MTFSessionConfig` runs the frozen v0 simulator
(:mod:`mtf_gym.simulator`), :class:`~mtf_gym.sim.config.MTFSessionV1Config` the v1 user model (:mod:`mtf_gym.sim`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mtf_gym.config import MTFSessionConfig, config_from_kwargs
from mtf_gym.envs.render import render_ansi, render_rgb
from mtf_gym.fusion import validate_actions
from mtf_gym.sim.config import MTFSessionV1Config
from mtf_gym.sim.layout import OBSERVATION_FEATURES_V1
from mtf_gym.sim.simulator import UserSimulator
from mtf_gym.simulator import OBSERVATION_FEATURES, SessionSimulator

__all__ = ["MTFSessionEnv", "MTFSessionV1Env", "action_space", "make_config", "make_simulator",
           "observation_features", "observation_space", "step_info"]

AnyConfig = MTFSessionConfig | MTFSessionV1Config
ITEM_LOG_KEYS = ("item_ids", "predictions", "responses", "item_rewards")


def make_config(config_class: type, config: AnyConfig | None, kwargs: dict[str, Any]) -> AnyConfig:
    """The env's config from ``gym.make(..., config=..., **kwargs)``; ``config`` picks the version when given."""
    if config is not None and not isinstance(config, (MTFSessionConfig, MTFSessionV1Config)):
        raise TypeError(f"config must be an MTFSessionConfig (v0) or MTFSessionV1Config (v1), got "
                        f"{type(config).__name__}")
    cls = type(config) if config is not None else config_class
    if cls is MTFSessionV1Config:
        return MTFSessionV1Config.from_kwargs(config, kwargs)
    return config_from_kwargs(config, kwargs)


def make_simulator(config: AnyConfig, num_rows: int) -> SessionSimulator | UserSimulator:
    """The simulator of the config's version (one implementation of each version's dynamics)."""
    if isinstance(config, MTFSessionV1Config):
        return UserSimulator(config, num_rows)
    return SessionSimulator(config, num_rows)


def observation_features(config: AnyConfig) -> tuple[str, ...]:
    return OBSERVATION_FEATURES_V1 if isinstance(config, MTFSessionV1Config) else OBSERVATION_FEATURES


def observation_space(config: AnyConfig) -> spaces.Box:
    return spaces.Box(0.0, 1.0, shape=(len(observation_features(config)),), dtype=np.float32)


def action_space(config: AnyConfig) -> spaces.Box:
    return spaces.Box(-1.0, 1.0, shape=(config.action_dim,), dtype=np.float32)


def step_info(out: Any, sim: SessionSimulator | UserSimulator, row: int | slice) -> dict[str, Any]:
    """The ``info`` dict of one row (``int``) or of a batch (``slice``); the vector env adds Gymnasium's masks.

    Batched values have the dtypes Gymnasium's ``SyncVectorEnv`` gives (Python ``int`` -> int64, ``float`` ->
    float64), so the native vector env and a ``SyncVectorEnv`` of single envs return identical infos.
    """
    latent = ["satisfaction"] + (["fatigue"] if isinstance(sim, UserSimulator) else [])
    if isinstance(row, slice):
        info: dict[str, Any] = {
            "action_clipped": out.clipped[row].astype(np.int64),
            "request_index": sim.request_index[row].astype(np.int64),
            "segment": sim.segment[row].astype(np.int64),
            **{name: getattr(sim, name)[row].astype(np.float64) for name in latent},
        }
    else:
        info = {
            "action_clipped": int(out.clipped[row]),
            "request_index": int(sim.request_index[row]),
            "segment": int(sim.segment[row]),
            **{name: float(getattr(sim, name)[row]) for name in latent},
        }
    if out.item_ids is not None and sim.config.item_logs:
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
    config_class: type = MTFSessionConfig

    def __init__(self, config: AnyConfig | None = None, render_mode: str | None = None, **kwargs: Any) -> None:
        self.config = make_config(self.config_class, config, kwargs)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self.observation_space = observation_space(self.config)
        self.action_space = action_space(self.config)
        self.sim = make_simulator(self.config, 1)
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
        obs = self._first_observation(self.sim.observations())[0]
        return obs, {"segment": int(self.sim.segment[0]), "request_index": 0}

    def step(self, action: np.ndarray):
        if self._needs_reset:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step() (the session has ended or not "
                               "started)")
        out = self._advance(action)
        terminated, truncated = bool(out.terminated[0]), bool(out.truncated[0])
        self._needs_reset = terminated or truncated
        info = self._info(out)
        return self._observation(out)[0], float(out.rewards[0]), terminated, truncated, info

    # Hooks: how the page is chosen and what is observed (the slate env overrides them; the user side is shared).
    def _advance(self, action: np.ndarray) -> Any:
        arr = validate_actions(action, self.config.action_dim, batch=False)
        self._last_action = arr
        return self.sim.step(arr[None, :])

    def _first_observation(self, user_obs: np.ndarray) -> np.ndarray:
        return user_obs

    def _observation(self, out: Any) -> np.ndarray:
        return out.observations

    def _info(self, out: Any) -> dict[str, Any]:
        return step_info(out, self.sim, 0)

    def render(self):
        if self.render_mode == "ansi":
            return render_ansi(self.sim, 0, self._last_action)
        if self.render_mode == "rgb_array":
            return render_rgb(self.sim, 0)
        return None



class MTFSessionV1Env(MTFSessionEnv):
    """
    ## Description

    ``MTFSession-v1``: the same task as v0 (choose the fusion weights of a multi-task ranker's scores, request by
    request, to maximise a user's session return) on a user model where the best fusion depends on the user and
    on the moment. Each user has continuous latent traits (what feeds their satisfaction, long watches or content
    they would interact with; clickbait aversion; patience; boredom sensitivity; fatigue rate; account age, which
    sets how accurate the ranker is for them, per task); within a session, fatigue takes the hook away from long
    videos, a bad mood raises the cost of clickbait, and repetition breeds boredom. The ranker is mean-calibrated,
    with documented biases (per-user and per-task noise, blindness to in-session state, clickbait over-estimate).
    The control (``mtf_gym.BaselinePolicy``) is a converged CMA-ES constant fusion, as in production before RL.

    ## Action Space

    ``Box(-1, 1, (2T,), float32)``, as v0: ``T`` powers then ``T`` biases (``mtf_gym.action_to_fusion_params``).

    ## Observation Space

    ``Box(0, 1, (19,), float32)``: what a production feature log holds, never a latent parameter or a term of the
    leave logit (``mtf_gym.OBSERVATION_FEATURES_V1``; ``docs/environment.md`` defines each):

    | index | feature | meaning |
    |-------|---------|---------|
    | 0 | account_age | log account age (days) / log 3650 |
    | 1-4 | history_* | valid-view, long-view, like (x10), follow (x100) rates estimated from a finite history |
    | 5 | history_interest_concentration | top-topic share of the user's history |
    | 6 | request_progress | requests so far / ``max_requests`` |
    | 7-11 | last_* | previous page: valid-view, long-view, engagement, quick-skip rates, watch fraction |
    | 12-16 | session_* | the same five, averaged over the session so far |
    | 17 | session_watch_minutes | minutes watched this session / 30 (capped at 1) |
    | 18 | last_page_topic_share | share of the previous page from its most frequent topic |

    ## Rewards

    As v0: ``r = sum_k w_k * v_k`` over the shown items (``RewardWeights``).

    ## Starting State

    A new user: a segment (a mixture component), continuous traits around the segment's means, topic interests,
    a ranker-error profile, long-term statistics from a history whose length grows with account age.

    ## Episode End

    * Termination: the user leaves; the probability grows with fatigue and (sensitivity-weighted) topic boredom and
      shrinks with satisfaction and the user's activity.
    * Truncation: ``max_requests`` requests (default 40; under the control fewer than 1% of sessions reach it).

    ## Info

    As v0, plus ``fatigue`` (latent, for analysis only, like ``satisfaction``).

    ## Arguments

    ``gym.make("MTFSession-v1", config=MTFSessionV1Config(...), render_mode=None, **overrides)``;
    ``gym.make_vec("MTFSession-v1", num_envs=N)`` gives the natively batched vector env.

    ## Version History

    * v1: users who want different fusions and states that want different fusions, an observation without exact
      latents, a mean-calibrated ranker, calibration to KuaiRand-Pure within 10%, a tuned control. Why: on v0 one
      better constant fusion was ~92% of the headroom, so benchmarks ranked algorithms by how far they moved a
      constant (``docs/environment.md``, "Version history").
    * v0: initial release (kept registered and unchanged).
    """

    config_class = MTFSessionV1Config

"""``UserSimulator``: N v1 user sessions as NumPy state, advanced by the compiled kernels of :mod:`mtf_gym.sim`.

The single env is a simulator of one row, the vector env one of ``N`` rows; ``MTFSession-v1`` pages come from
:meth:`UserSimulator.step` (fusion weights), ``MTFSlate-v0`` pages from :meth:`UserSimulator.step_slate` (item ids).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
from numba import typeof

from mtf_gym.config import PREDICTABLE_TASKS
from mtf_gym.rng import PROFILE_STREAM, counter_normals
from mtf_gym.sim.catalogue import Catalogue
from mtf_gym.sim.config import MTFSessionV1Config, segment_table
from mtf_gym.sim.items import GLANCE_MEAN_FRACTION, build_item_table
from mtf_gym.sim.kernels import fusion_step_chunk, observe_rows, slate_step_chunk, start_rows
from mtf_gym.sim.layout import (
    DYNAMICS_SCALARS,
    HISTORY_COLUMNS,
    NUM_ENGAGEMENT,
    NUM_PROFILE_OBS,
    NUM_RESPONSES,
    OBS_DIM,
    P_SAT_STD,
    PROFILE_SCALARS,
    S_SATISFACTION,
    STATE_NAMES,
    STATE_WIDTH,
    TOPIC_TABLE_SIZE,
    TRAIT_NAMES,
    TRAIT_WIDTH,
    UT_WIDTH,
    Model,
    Outputs,
    Scratch,
    Users,
)
from mtf_gym.sim.users import num_start_normals
from mtf_gym.threads import CHUNKS_PER_THREAD, ROWS_PER_CHUNK, get_num_threads, run_chunks
from mtf_gym.validation import rows_and_keys

__all__ = ["UserSimulator", "build_model"]

_CHUNK_ARGS = (0, 1)  # (chunk, num_chunks): Python ints, as run_chunks passes them


def build_model(config: MTFSessionV1Config, catalogue: Catalogue) -> Model:
    """The read-only parameter structure of the kernels, from a config and its catalogue."""
    f32 = np.float32
    dyn, pop, ranker = config.dynamics, config.population, config.ranker
    scalars = {f.name: getattr(dyn, f.name) for f in dyn.__dataclass_fields__.values()}
    scalars["glance_mean_s"] = GLANCE_MEAN_FRACTION * dyn.quick_skip_s
    scalars["delight_scale"] = dyn.engagement_noise_scale * 0.55  # logistic noise with std ~ scale
    scalars["inverse_watch_time_scale"] = 1.0 / ranker.watch_time_scale_s
    dynamics = np.array([scalars[name] for name in DYNAMICS_SCALARS], f32)
    profile_values = {**scalars, **{f: getattr(pop, f) for f in pop.__dataclass_fields__},
                      **{f: getattr(ranker, f) for f in ranker.__dataclass_fields__},
                      "history_impressions": config.history_impressions,
                      "max_history_impressions": config.max_history_impressions}
    profile = np.array([profile_values[name] for name in PROFILE_SCALARS], f32)
    cat_cfg = config.catalogue
    per_topic = cat_cfg.items_per_topic
    stride = max(1, round(per_topic * 0.618))
    while np.gcd(stride, per_topic) != 1:
        stride += 1
    return Model(
        dims=np.array([config.num_candidates, config.page_size, per_topic, stride, config.max_requests], np.int64),
        tasks=np.array([PREDICTABLE_TASKS.index(t) for t in config.ranker_tasks], np.int64),
        fusion=config.fusion.kernel_params(),
        dynamics=dynamics,
        profile=profile,
        reward=config.reward.as_vector(),
        items=build_item_table(config, catalogue),
        segments=segment_table(pop),
        cum_share=np.cumsum(np.asarray(pop.share, np.float64))[:-1],
        task_noise=np.asarray(ranker.task_noise, f32),
        ranker_offset=np.asarray(ranker.calibration_offset, f32),
    )


def _check_buffer(name: str, value: Any, shape: tuple[int, ...], dtype: type) -> None:
    if not (isinstance(value, np.ndarray) and value.shape == shape and value.dtype == dtype
            and value.flags.c_contiguous and value.flags.writeable):
        raise ValueError(f"{name} must be a writable C-ordered {np.dtype(dtype).name} array of shape {shape}, got "
                         f"{getattr(value, 'dtype', type(value).__name__)} {getattr(value, 'shape', '')}")


class UserSimulator:
    """``num_rows`` v1 user sessions advanced in lock-step; rows are (re)started with :meth:`start_sessions`.

    State, by name: ``users`` (:class:`~mtf_gym.sim.layout.Users`), with views :attr:`segment`,
    :attr:`request_index`, :attr:`satisfaction`, :attr:`fatigue`, :meth:`traits` and :meth:`latent_state`.
    """

    def __init__(self, config: MTFSessionV1Config, num_rows: int, catalogue: Catalogue | None = None) -> None:
        if not isinstance(num_rows, (int, np.integer)) or num_rows < 1:
            raise ValueError(f"num_rows must be an integer >= 1, got {num_rows!r}")
        self.config = config
        self.num_rows = n = int(num_rows)
        self.catalogue = catalogue or Catalogue.generate(config.catalogue, config.ranker.error_rank)
        self.model = build_model(config, self.catalogue)
        c, k, t = config.num_candidates, config.page_size, config.num_tasks
        self.num_candidates, self.page_size, self.num_tasks = c, k, t
        nt, rank = config.catalogue.num_topics, config.ranker.error_rank
        f32 = np.float32
        self.users = Users(
            keys=np.zeros(n, np.uint64),
            segment=np.zeros(n, np.int64),
            request_index=np.zeros(n, np.int64),
            topic_table=np.zeros((n, TOPIC_TABLE_SIZE), np.int16),
            affinity=np.zeros((n, nt), f32),
            user_topic=np.zeros((n, UT_WIDTH, nt), f32),
            traits=np.zeros((n, TRAIT_WIDTH), f32),
            engagement_exp=np.zeros((n, NUM_ENGAGEMENT), f32),
            ranker_error=np.zeros((n, rank, t), f32),
            ranker_scale=np.ones((n, t), f32),
            state=np.zeros((n, STATE_WIDTH), f32),
            boredom=np.zeros((n, nt), f32),
            history=np.zeros((n, HISTORY_COLUMNS), f32),
            profile_obs=np.zeros((n, NUM_PROFILE_OBS), f32),
        )
        chunks = self._max_chunks = max(1, min(n // ROWS_PER_CHUNK, CHUNKS_PER_THREAD * (os.cpu_count() or 1)))
        self.scratch = Scratch(
            candidates=np.empty((chunks, c), np.int64),
            topics=np.empty((chunks, c), np.int64),
            preds=np.empty((chunks, c, t), f32),
            scores=np.empty((chunks, c), f32),
            powers=np.empty((chunks, t), f32),
            biases=np.empty((chunks, t), f32),
            order=np.empty((chunks, k), np.int64),
            page_sum=np.empty((chunks, NUM_RESPONSES + 2), f32),
            page_topics=np.empty((chunks, k), np.int64),
            normals=np.empty((chunks, num_start_normals(nt, rank, len(PREDICTABLE_TASKS))), f32),
        )
        self._no_restart = np.zeros(n, bool)
        self._log_scratch = None if config.item_logs else self._new_item_logs()
        self._entry_points: dict[Any, Any] = {}
        self.last_step: Outputs | None = None

    # ------------------------------------------------------------------ views of the state
    @property
    def segment(self) -> np.ndarray:
        return self.users.segment

    @property
    def request_index(self) -> np.ndarray:
        return self.users.request_index

    @property
    def keys(self) -> np.ndarray:
        return self.users.keys

    @property
    def boredom(self) -> np.ndarray:
        return self.users.boredom

    @property
    def satisfaction(self) -> np.ndarray:
        return self.users.state[:, STATE_NAMES.index("satisfaction")]

    @property
    def fatigue(self) -> np.ndarray:
        return self.users.state[:, STATE_NAMES.index("fatigue")]

    def traits(self) -> dict[str, np.ndarray]:
        """The latent traits of every row, by name (copies; for analysis and oracles, never observed)."""
        return {name: self.users.traits[:, j].copy() for j, name in enumerate(TRAIT_NAMES)}

    def latent_state(self) -> dict[str, np.ndarray]:
        """The latent in-session state of every row, by name (copies)."""
        return {name: self.users.state[:, j].copy() for j, name in enumerate(STATE_NAMES)}

    @property
    def item_embeddings(self) -> np.ndarray:
        """The catalogue's public ``(N, d)`` float32 embeddings (built on first use, held by the catalogue)."""
        return self.catalogue.embeddings

    def _new_item_logs(self) -> tuple[np.ndarray, ...]:
        n, k, t = self.num_rows, self.page_size, self.num_tasks
        return (np.zeros((n, k), np.int64), np.zeros((n, k, t), np.float32),
                np.zeros((n, k, NUM_RESPONSES), np.float32), np.zeros((n, k), np.float32))

    # ------------------------------------------------------------------ session start
    def start_sessions(self, rows: np.ndarray, keys: np.ndarray) -> None:
        """(Re)start the sessions of ``rows`` (int indices) with new users drawn from ``keys`` (uint64)."""
        rows, keys = rows_and_keys(rows, keys, self.num_rows)
        rows = self._rows_array("rows", rows, rows.shape, np.int64)  # writable: the kernel's argument types are fixed
        keys = self._rows_array("keys", keys, keys.shape, np.uint64)
        args = (rows, keys, self.model, self.users, self.scratch.normals[0])
        self._compiled(start_rows, args)(*args)

    def reseed_sessions(self, rows: np.ndarray, keys: np.ndarray) -> None:
        """The sessions of ``rows``, just started, keep their users and draw the rest of the session from ``keys``.

        A user (segment, traits, interests, history statistics, ranker error) is drawn from its key's profile
        counter at the start, with the session's starting satisfaction. The session's draws (retrieval,
        responses, leaving) use the same key at the request counters. This replaces the key and the starting
        satisfaction with those ``keys`` give (the satisfaction the session key's own user would start with), so
        each row plays the same user in another session: "returning users", for per-user oracles that learn from
        other sessions of a user and must not know the starting state of the one they are scored on.
        """
        rows, keys = rows_and_keys(rows, keys, self.num_rows)
        started = self.users.request_index[rows]
        if np.any(started != 0):
            raise ValueError(f"reseed_sessions: rows {rows[started != 0][:5].tolist()} are past their session's "
                             "start (request_index > 0); reseed right after start_sessions")
        normals = np.empty(self.scratch.normals.shape[1], np.float32)
        satisfaction_normal = self.users.boredom.shape[1] + 1  # start_row's draw: normals[num_topics + 1]
        sat_std = self.model.profile[P_SAT_STD]
        for row, key in zip(rows, keys, strict=True):
            counter_normals(key, np.uint64(PROFILE_STREAM), normals)
            self.users.state[row, S_SATISFACTION] = sat_std * normals[satisfaction_normal]
        self.users.keys[rows] = keys

    def copy_rows(self, rows: np.ndarray, source: UserSimulator, source_rows: np.ndarray,
                  keys: np.ndarray | None = None) -> None:
        """Rows ``rows`` take the whole state of ``source``'s rows ``source_rows`` (the user and where its session
        is: traits, interests, history statistics, ranker error, latent state, request index); with ``keys``, the
        rest of each copied session is drawn from those keys instead.

        Every draw after a session's start is counter-based on ``(key, request index, lane)``, so a copy with its own
        key steps exactly like the source row, and a copy with a new key is the same user at the same moment with a
        fresh future: rollouts from a state, for lookahead oracles and planners. ``source`` may be ``self``; it
        must share this simulator's catalogue and dynamics (``item_logs`` may differ)."""
        if not isinstance(source, UserSimulator):
            raise TypeError(f"source must be a UserSimulator, got {type(source).__name__}")
        if source.catalogue is not self.catalogue or (
                dataclasses.replace(source.config, item_logs=self.config.item_logs) != self.config):
            raise ValueError("source must share this simulator's config and catalogue object: build the copy with "
                             "UserSimulator(config, n, catalogue=source.catalogue)")
        rows = np.asarray(rows, np.int64)
        source_rows = np.asarray(source_rows, np.int64)
        if rows.ndim != 1 or rows.shape != source_rows.shape:
            raise ValueError(f"rows and source_rows must be 1-D of one length, got {rows.shape} and "
                             f"{source_rows.shape}")
        for name, value, size in (("rows", rows, self.num_rows), ("source_rows", source_rows, source.num_rows)):
            if value.size and (value.min() < 0 or value.max() >= size):
                raise ValueError(f"{name} must lie in [0, {size}), got values in [{value.min()}, {value.max()}]")
        if keys is not None:
            keys = np.asarray(keys)
            if keys.dtype != np.uint64 or keys.shape != rows.shape:
                raise ValueError(f"keys must be uint64 of shape {rows.shape}, got {keys.dtype} {keys.shape}")
        for mine, theirs in zip(self.users, source.users, strict=True):
            mine[rows] = theirs[source_rows]
        if keys is not None:
            self.users.keys[rows] = keys

    def observations(self) -> np.ndarray:
        obs = np.empty((self.num_rows, OBS_DIM), np.float32)
        args = (self.model, self.users, obs)
        self._compiled(observe_rows, args)(*args)
        return obs

    def _compiled(self, kernel: Any, args: tuple[Any, ...], leading: tuple[int, ...] = ()) -> Any:
        """``kernel``'s compiled entry point for ``(*leading, *args)``, looked up once per kernel.

        numba's dispatcher types every argument on every call, and named tuples of arrays take its slow path: about
        15 us per call, as much as a whole one-user step. Every argument's type is fixed here: the named tuples are
        the simulator's own, and the public methods convert or check each caller array (dtype, dimensions,
        C order) before it gets here, so the entry point typed at the first call fits every later one."""
        entry = self._entry_points.get(kernel)
        if entry is None:
            entry = kernel  # under NUMBA_DISABLE_JIT, the plain Python function
            if hasattr(kernel, "compile"):
                entry = kernel.compile(tuple(typeof(a) for a in (*leading, *args)))
            self._entry_points[kernel] = entry
        return entry

    def __getstate__(self) -> dict[str, Any]:
        # Compiled entry points do not pickle; they are looked up again on first use.
        return {**self.__dict__, "_entry_points": {}}

    def _rows_array(self, name: str, value: np.ndarray, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        """``value`` as a C-ordered, writable ``dtype`` array of ``shape`` (a copy only if it is not one already)."""
        arr = value
        if not (isinstance(arr, np.ndarray) and arr.dtype == dtype and arr.flags.c_contiguous and arr.flags.writeable):
            arr = np.array(value, dtype=dtype, order="C")  # a fresh copy is C-ordered and writable
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
        return arr

    # ------------------------------------------------------------------ one request
    def _outputs(self) -> Outputs:
        n = self.num_rows
        logs = self._new_item_logs() if self._log_scratch is None else self._log_scratch
        return Outputs(np.empty((n, OBS_DIM), np.float32), np.zeros(n, np.float64), np.zeros(n, bool),
                       np.zeros(n, bool), np.zeros(n, np.int64), *logs)

    def _restart_args(self, restart, restart_keys):
        if restart is None:
            return self._no_restart, self.users.keys
        n = self.num_rows
        return (self._rows_array("restart", restart, (n,), bool),
                self._rows_array("restart_keys", restart_keys, (n,), np.uint64))

    def _num_chunks(self) -> int:
        return min(self._max_chunks, CHUNKS_PER_THREAD * get_num_threads())

    def step(self, actions: np.ndarray, restart: np.ndarray | None = None,
             restart_keys: np.ndarray | None = None) -> Outputs:
        """Advance every row by one request whose page is chosen by fusion weights ``actions`` (``(N, 2T)``, finite;
        clipped here). ``restart[i]`` rows start a new session from ``restart_keys[i]`` instead (autoreset)."""
        actions = self._rows_array("actions", actions, (self.num_rows, self.config.action_dim), np.float32)
        restart, restart_keys = self._restart_args(restart, restart_keys)
        out = self._outputs()
        args = (restart, restart_keys, actions, self.model, self.users, self.scratch, out)
        run_chunks(self._compiled(fusion_step_chunk, args, _CHUNK_ARGS), self._num_chunks(), args)
        self.last_step = out
        return out

    def step_slate(self, item_ids: np.ndarray, restart: np.ndarray | None = None,
                   restart_keys: np.ndarray | None = None, candidates: np.ndarray | None = None,
                   candidate_predictions: np.ndarray | None = None,
                   page_embeddings: np.ndarray | None = None) -> Outputs:
        """Advance every row by one request showing ``item_ids`` (``(N, K)`` int64, validated by the caller). With
        ``candidates`` (``(N, C)`` int64) and ``candidate_predictions`` (``(N, C, T)`` float32), also write every
        row's next request's candidates and their predictions. ``page_embeddings`` (``(N, d)`` float32), if given,
        receives each row's mean public item embedding of the page (zeros for restarted rows)."""
        n, c, t = self.num_rows, self.num_candidates, self.num_tasks
        item_ids = self._rows_array("item_ids", item_ids, (n, self.page_size), np.int64)
        restart, restart_keys = self._restart_args(restart, restart_keys)
        out = self._outputs()
        expose = candidates is not None
        if expose:  # written in place: the caller's own buffers, or an error
            _check_buffer("candidates", candidates, (n, c), np.int64)
            _check_buffer("candidate_predictions", candidate_predictions, (n, c, t), np.float32)
        else:
            candidates = np.empty((1, c), np.int64)
            candidate_predictions = np.empty((1, c, t), np.float32)
        if page_embeddings is None:
            page_embeddings = np.empty((n, self.item_embeddings.shape[1]), np.float32)
        _check_buffer("page_embeddings", page_embeddings, (n, self.item_embeddings.shape[1]), np.float32)
        args = (restart, restart_keys, item_ids, self.model, self.users, self.scratch, out, expose, candidates,
                candidate_predictions, self.item_embeddings, page_embeddings)
        run_chunks(self._compiled(slate_step_chunk, args, _CHUNK_ARGS), self._num_chunks(), args)
        self.last_step = out
        return out

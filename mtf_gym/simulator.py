"""The batched session simulator shared by the single env and the vector env (one implementation of the dynamics).

Per request, for every user row at once (``docs/user_model.md`` has the equations):

1. retrieval: ``C`` candidates drawn from the user's topic interests, mixed with uniform exploration;
2. ranker: ``T`` predicted scores per candidate, with a realistic prediction/truth gap;
3. fusion: the action's powers and biases fuse the predictions (:mod:`mtf_gym.fusion`); the top ``K`` are shown;
4. user response: a hook/patience funnel gives watch time, valid view, long view, then likes, comments, follows,
   shares (correlated through a shared per-item "delight"), hates and quick skips;
5. state: topic boredom, satisfaction and the observable history update; the user leaves with a probability that
   depends on what was shown.

All randomness is counter-based (:mod:`mtf_gym.rng`), so row ``i`` of a batch evolves exactly as a batch of one
with the same key.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtf_gym.catalogue import ItemCatalogue
from mtf_gym.config import PREDICTABLE_TASKS, RESPONSE_FIELDS, SEGMENT_NAMES, MTFSessionConfig
from mtf_gym.fusion import action_to_fusion_params, fused_log_scores
from mtf_gym.rng import PROFILE_STREAM, CounterStreams

__all__ = ["OBSERVATION_FEATURES", "SessionSimulator", "StepOutput"]

OBSERVATION_FEATURES: tuple[str, ...] = (
    *(f"segment_{name}" for name in SEGMENT_NAMES),
    "activity_level",
    "interest_concentration",
    "request_progress",
    "last_valid_view_rate",
    "last_long_view_rate",
    "last_engagement_rate",
    "last_quick_skip_rate",
    "last_watch_fraction",
    "session_valid_view_rate",
    "session_long_view_rate",
    "session_engagement_rate",
    "session_quick_skip_rate",
    "session_watch_fraction",
    "topic_repetition",
)
_HISTORY_WIDTH = 5  # valid view, long view, engagement, quick skip, watch fraction (per page)
_NUM_SEGMENTS = len(SEGMENT_NAMES)
_TOPIC_TABLE_SIZE = 256  # interest distribution quantised to 1/256 for O(1) vectorised topic sampling
_QUICK_SKIP_MEAN_FRACTION = 0.6  # mean watch of an unhooked view, as a fraction of quick_skip_s
_ENGAGEMENT_TASKS = ("like", "comment", "follow", "share")
_UNIFORMS_PER_ITEM = 9  # hook, patience, glance, delight, like, comment, follow, share, hate
_COL = {name: i for i, name in enumerate(RESPONSE_FIELDS)}


def _sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    out = np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


@dataclass
class StepOutput:
    """What one simulator step returns, batched over rows. Arrays are owned by the caller (fresh each step)."""

    observations: np.ndarray  # (N, obs_dim)
    rewards: np.ndarray  # (N,)
    terminated: np.ndarray  # (N,) user left
    truncated: np.ndarray  # (N,) request cap reached
    clipped: np.ndarray  # (N,) number of action entries clipped to [-1, 1]
    item_ids: np.ndarray | None = None  # (N, K) shown items, in position order
    predictions: np.ndarray | None = None  # (N, K, T) ranker scores of shown items
    responses: np.ndarray | None = None  # (N, K, len(RESPONSE_FIELDS)) true responses
    item_rewards: np.ndarray | None = None  # (N, K) per-item reward (weighted sum of its responses)


class SessionSimulator:
    """``num_rows`` user sessions advanced in lock-step. Rows are (re)started with :meth:`start_sessions`."""

    def __init__(self, config: MTFSessionConfig, num_rows: int) -> None:
        if num_rows < 1:
            raise ValueError(f"num_rows must be >= 1, got {num_rows}")
        self.config = config
        self.num_rows = n = num_rows
        self.catalogue = cat = ItemCatalogue.generate(config)
        self._user = user = config.user
        seg = user.segments
        c, k, t = config.num_candidates, config.page_size, config.num_tasks
        self.num_candidates, self.page_size, self.num_tasks = c, k, t
        nt, rank = config.num_topics, config.ranker.error_rank
        self.reward_vector = config.reward.as_vector()
        f32 = np.float32

        # Per-segment parameter tables, gathered by each row's segment at session start.
        self._seg_hook_bias = np.asarray(seg.hook_bias, f32)
        self._seg_log_patience = np.log(np.asarray(seg.patience_s, f32))
        self._seg_engagement_bias = np.stack(
            [np.asarray(getattr(seg, f"{name}_bias"), f32) for name in _ENGAGEMENT_TASKS], axis=1
        )  # (segments, 4)
        self._seg_aversion = np.asarray(seg.clickbait_aversion, f32)
        self._seg_boredom = np.asarray(seg.boredom_sensitivity, f32)
        self._seg_concentration = np.asarray(seg.interest_concentration, f32)
        self._seg_cum_share = np.cumsum(np.asarray(seg.share, np.float64))[:-1]
        engagement = np.array([name in _ENGAGEMENT_TASKS for name in PREDICTABLE_TASKS])
        task_noise = np.asarray(config.ranker.task_noise, f32)
        # (segments, 7): per-segment, per-task scale of the ranker's error.
        self._seg_task_noise = (
            np.asarray(seg.ranker_noise, f32)[:, None]
            * np.where(engagement[None, :], np.asarray(seg.engagement_noise, f32)[:, None], 1.0)
            * task_noise[None, :]
        ).astype(f32)
        self._task_columns = np.array([PREDICTABLE_TASKS.index(name) for name in config.ranker_tasks])

        # Item-side terms of every logit, precomputed once (they do not depend on the user).
        q, cb = cat.quality, cat.clickbait
        self._item_hook = (user.hook_quality * q + user.hook_clickbait * cb).astype(f32)
        self._item_hook_ranker = (self._item_hook + config.ranker.clickbait_overestimate * cb).astype(f32)
        self._item_log_patience = (user.patience_quality * q + user.patience_clickbait * cb).astype(f32)
        self._item_engagement = (user.engagement_quality * q + user.engagement_clickbait * cb).astype(f32)
        self._item_hate = (user.hate_bias + user.hate_clickbait * cb).astype(f32)
        self._glance_mean = np.minimum(cat.duration_s, _QUICK_SKIP_MEAN_FRACTION * user.quick_skip_s).astype(f32)

        # Retrieval without duplicates: candidate j of topic tp is item tp*P + (offset + j*stride) mod P with
        # stride coprime to P, so two candidates of the same topic are always different items.
        per_topic = config.items_per_topic
        stride = max(1, round(per_topic * 0.618))
        while np.gcd(stride, per_topic) != 1:
            stride += 1
        self._candidate_steps = (np.arange(c) * stride).astype(np.int64)

        # Uniforms per request: C topic draws, 1 offset, 9 per shown item, 1 leave.
        self._u_offset = c
        self._u_items = c + 1
        self._u_leave = c + 1 + k * _UNIFORMS_PER_ITEM
        self._step_streams = CounterStreams(n, self._u_leave + 1)
        self._num_normals = nt + 2 + rank * len(PREDICTABLE_TASKS)
        self._profile_streams = CounterStreams(n, 1 + 2 * ((self._num_normals + 1) // 2))

        # User profile (set at session start).
        self.keys = np.zeros(n, np.uint64)
        self.segment = np.zeros(n, np.int64)
        self.affinity = np.zeros((n, nt), f32)
        self.topic_table = np.zeros((n, _TOPIC_TABLE_SIZE), np.int64)
        self.log_activity = np.zeros(n, f32)
        self.interest_concentration = np.zeros(n, f32)
        self.ranker_user_error = np.zeros((n, rank, t), f32)  # low-rank error, configured tasks only
        # User x topic terms of the logits (the user side; the item side is added per candidate).
        self._topic_hook = np.zeros((n, nt), f32)
        self._topic_log_patience = np.zeros((n, nt), f32)
        self._topic_engagement = np.zeros((n, nt), f32)
        self._topic_hate = np.zeros((n, nt), f32)
        self._engagement_bias = np.zeros((n, 1, 4), f32)
        self._aversion = np.zeros(n, f32)
        self._boredom_sensitivity = np.zeros((n, 1), f32)
        self._leave_base = np.zeros(n, f32)
        # Dynamic state.
        self.request_index = np.zeros(n, np.int64)
        self.boredom = np.zeros((n, nt), f32)
        self.satisfaction = np.zeros(n, f32)
        self.last_page = np.zeros((n, _HISTORY_WIDTH), f32)
        self.session_sum = np.zeros((n, _HISTORY_WIDTH), f32)
        # Scratch buffers reused every step.
        self._predictions = np.empty((n, c, t), f32)
        self._workspace = np.empty((n, c, t), f32)
        self._scores = np.empty((n, c), f32)
        self._row_topic_offset = (np.arange(n) * nt)[:, None]
        self._row_table_offset = (np.arange(n) * _TOPIC_TABLE_SIZE)[:, None]
        self._row_candidate_offset = (np.arange(n) * c)[:, None]
        self._rows = np.arange(n)[:, None]
        self._topic_ids = np.arange(nt)
        self._segment_ids = np.arange(_NUM_SEGMENTS)
        self._hooked = np.zeros((n, k), bool)
        self.last_step: StepOutput | None = None

    # ------------------------------------------------------------------ session start (profile sampling)
    def start_sessions(self, rows: np.ndarray, keys: np.ndarray) -> None:
        """(Re)start the sessions of ``rows`` (int indices) with new users drawn from ``keys`` (uint64)."""
        rows = np.asarray(rows, dtype=np.int64)
        m = rows.size
        if m == 0:
            return
        cfg, user = self.config, self._user
        nt, rank = cfg.num_topics, cfg.ranker.error_rank
        keys = np.asarray(keys, dtype=np.uint64)
        self.keys[rows] = keys
        u = self._profile_streams.uniforms(keys, np.full(m, PROFILE_STREAM, np.uint64), m)
        # Box-Muller normals from uniform pairs.
        half = (u.shape[1] - 1) // 2
        radius = np.sqrt(-2.0 * np.log1p(-u[:, 1 : 1 + half]))
        angle = np.float32(2.0 * np.pi) * u[:, 1 + half : 1 + 2 * half]
        normals = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        segment = np.searchsorted(self._seg_cum_share, u[:, 0], side="right")
        self.segment[rows] = segment
        affinity = normals[:, :nt]
        self.affinity[rows] = affinity
        # Retrieval distribution: softmax of interests (segment temperature) mixed with uniform exploration,
        # stored as a 256-entry lookup table so a topic draw is one gather.
        logits = affinity * self._seg_concentration[segment][:, None]
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        self.interest_concentration[rows] = probs.max(axis=1)
        eps = user.retrieval_exploration
        cdf = np.cumsum((1.0 - eps) * probs + eps / nt, axis=1, dtype=np.float64)
        # Topic t fills round(cdf_t * 256) - round(cdf_{t-1} * 256) table entries (rows sum to exactly 256).
        bounds = np.rint(cdf * _TOPIC_TABLE_SIZE).astype(np.int64)
        bounds[:, -1] = _TOPIC_TABLE_SIZE
        counts = np.diff(bounds, axis=1, prepend=0)
        self.topic_table[rows] = np.repeat(np.tile(self._topic_ids, m), counts.ravel()).reshape(m, _TOPIC_TABLE_SIZE)
        log_activity = 0.4 * normals[:, nt]
        self.log_activity[rows] = log_activity
        user_error = normals[:, nt + 2 : nt + 2 + rank * len(PREDICTABLE_TASKS)].reshape(m, rank, -1)
        user_error = user_error * self._seg_task_noise[segment][:, None, :]
        self.ranker_user_error[rows] = user_error[:, :, self._task_columns]
        # User x topic logit terms.
        self._topic_hook[rows] = self._seg_hook_bias[segment][:, None] + user.hook_affinity * affinity
        self._topic_log_patience[rows] = (
            self._seg_log_patience[segment][:, None] + 0.5 * log_activity[:, None] + user.patience_affinity * affinity
        )
        self._topic_engagement[rows] = user.engagement_affinity * affinity
        self._topic_hate[rows] = user.hate_affinity * affinity
        self._engagement_bias[rows, 0] = self._seg_engagement_bias[segment]
        self._aversion[rows] = self._seg_aversion[segment]
        self._boredom_sensitivity[rows, 0] = self._seg_boredom[segment]
        self._leave_base[rows] = user.leave_bias - user.leave_activity * log_activity
        # Fresh session state.
        self.request_index[rows] = 0
        self.boredom[rows] = 0.0
        self.satisfaction[rows] = user.initial_satisfaction_std * normals[:, nt + 1]
        self.last_page[rows] = 0.0
        self.session_sum[rows] = 0.0

    # ------------------------------------------------------------------ observation
    def observations(self) -> np.ndarray:
        """``(num_rows, obs_dim)`` float32 observation of every row (documented in ``OBSERVATION_FEATURES``)."""
        obs = np.empty((self.num_rows, len(OBSERVATION_FEATURES)), np.float32)
        np.equal(self.segment[:, None], self._segment_ids, out=obs[:, :_NUM_SEGMENTS], casting="unsafe")
        np.minimum(np.maximum(0.5 + self.log_activity * 0.625, 0.0), 1.0, out=obs[:, 4])
        obs[:, 5] = self.interest_concentration
        steps = self.request_index.astype(np.float32)
        np.multiply(steps, np.float32(1.0 / self.config.max_requests), out=obs[:, 6])
        obs[:, 7:12] = self.last_page
        np.divide(self.session_sum, np.maximum(steps, 1.0)[:, None], out=obs[:, 12:17])
        np.max(self.boredom, axis=1, out=obs[:, 17])
        return obs

    # ------------------------------------------------------------------ one request
    def step(self, actions: np.ndarray) -> StepOutput:
        """Advance every row by one request. ``actions``: ``(num_rows, 2T)`` finite float32 (clipped here)."""
        cfg, user = self.config, self._user
        c, k = self.num_candidates, self.page_size
        clipped = np.count_nonzero(np.abs(actions) > 1.0, axis=1)
        powers, biases = action_to_fusion_params(actions, cfg.fusion)
        u = self._step_streams.uniforms(self.keys, self.request_index.astype(np.uint64))

        # 1. Retrieval: topics by interest, items spread without repeats inside a topic.
        draws = (u[:, :c] * _TOPIC_TABLE_SIZE).astype(np.int64)
        draws += self._row_table_offset
        topics = self.topic_table.ravel()[draws]
        per_topic = cfg.items_per_topic
        offsets = (u[:, self._u_offset] * per_topic).astype(np.int64)
        candidates = topics * per_topic + (offsets[:, None] + self._candidate_steps) % per_topic
        user_topic = topics + self._row_topic_offset  # flat index into the (N, topics) tables

        # 2. Ranker predictions for all candidates; 3. fusion and top-K.
        predictions = self._predict(candidates, user_topic)
        fused_log_scores(predictions, powers, biases, out=self._scores, workspace=self._workspace)
        top = np.argpartition(self._scores, c - k, axis=1)[:, c - k :]
        top += self._row_candidate_offset  # flat indices into (N, C) arrays
        order = np.argsort(self._scores.ravel()[top], axis=1)[:, ::-1]
        shown_flat = top[self._rows, order]  # (N, K) flat candidate positions, best first
        shown = candidates.ravel()[shown_flat]
        shown_topic = user_topic.ravel()[shown_flat]

        # 4. True responses of the shown items.
        uniforms = u[:, self._u_items : self._u_leave].reshape(self.num_rows, k, _UNIFORMS_PER_ITEM)
        responses = self._respond(shown, shown_topic, uniforms)
        item_rewards = responses @ self.reward_vector
        rewards = item_rewards.sum(axis=1)

        # 5. State transition, leave and truncation.
        self._update_state(shown, shown_topic - self._row_topic_offset, responses)
        leave_logit = (
            self._leave_base
            + np.float32(user.leave_per_request) * self.request_index
            - user.leave_satisfaction * self.satisfaction
            + user.leave_quick_skip * self.last_page[:, 3]
            + user.leave_boredom * self.boredom.max(axis=1)
        )
        terminated = u[:, self._u_leave] < _sigmoid(leave_logit.astype(np.float32))
        truncated = (self.request_index >= cfg.max_requests) & ~terminated

        out = StepOutput(self.observations(), rewards, terminated, truncated, clipped)
        if cfg.item_logs:
            out.item_ids = shown
            out.predictions = predictions.reshape(-1, self.num_tasks)[shown_flat]
            out.responses = responses
            out.item_rewards = item_rewards
        self.last_step = out
        return out

    # ------------------------------------------------------------------ the ranker
    def _predict(self, candidates: np.ndarray, user_topic: np.ndarray) -> np.ndarray:
        """``(N, C, T)`` predicted scores in [0, 1] for the configured tasks.

        The ranker computes the user's funnel from the long-term profile and the item (it does not see in-session
        boredom or satisfaction, and over-estimates clickbait's hook), then multiplies each task's probability by
        ``exp(e)`` with ``e`` a low-rank user x item error: ``pred = min(1, p_ranker * exp(e))``.
        """
        cat, cfg = self.catalogue, self.config
        hook = _sigmoid(self._topic_hook.ravel()[user_topic] + self._item_hook_ranker[candidates])
        neg_inv_patience = np.exp(-(self._topic_log_patience.ravel()[user_topic] + self._item_log_patience[candidates]))
        np.negative(neg_inv_patience, out=neg_inv_patience)
        preds = self._predictions
        p_valid = None
        engagement = None
        for col, task in enumerate(cfg.ranker_tasks):
            if task == "watch_time":
                duration = cat.duration_s[candidates]
                expected = hook * -np.expm1(duration * neg_inv_patience) / -neg_inv_patience
                expected += (1.0 - hook) * self._glance_mean[candidates]
                np.multiply(expected, np.float32(1.0 / cfg.ranker.watch_time_scale_s), out=preds[:, :, col])
            elif task == "long_view":
                np.multiply(hook, np.exp(cat.long_view_time_s[candidates] * neg_inv_patience), out=preds[:, :, col])
            else:
                if p_valid is None:
                    p_valid = hook * np.exp(cat.valid_view_time_s[candidates] * neg_inv_patience)
                if task == "valid_view":
                    preds[:, :, col] = p_valid
                    continue
                if engagement is None:
                    engagement = self._topic_engagement.ravel()[user_topic] + self._item_engagement[candidates]
                bias = self._engagement_bias[:, :, _ENGAGEMENT_TASKS.index(task)]
                np.multiply(p_valid, _sigmoid(engagement + bias), out=preds[:, :, col])
        # Low-rank multiplicative error: (N, C, r) @ (N, r, T).
        error = np.matmul(cat.ranker_error_features[candidates], self.ranker_user_error)
        preds *= np.exp(error, out=error)
        np.minimum(preds, 1.0, out=preds)
        return preds

    # ------------------------------------------------------------------ the user's choice model
    def _respond(self, shown: np.ndarray, shown_topic: np.ndarray, u: np.ndarray) -> np.ndarray:
        """True responses ``(N, K, len(RESPONSE_FIELDS))`` from the funnel hook -> watch -> valid/long -> engage.

        ``u``: ``(N, K, 9)`` uniforms: hook, patience, glance, delight, like, comment, follow, share, hate.
        """
        user, cat = self._user, self.catalogue
        n, k = shown.shape
        boredom = self.boredom.ravel()[shown_topic]
        sat = self.satisfaction[:, None]
        hook_logit = self._topic_hook.ravel()[shown_topic] + self._item_hook[shown]
        hook_logit -= self._boredom_sensitivity * boredom
        hook_logit += user.hook_satisfaction * sat
        hooked = np.less(u[:, :, 0], _sigmoid(hook_logit), out=self._hooked)
        log_patience = self._topic_log_patience.ravel()[shown_topic] + self._item_log_patience[shown]
        log_patience += user.patience_boredom * boredom
        log_patience += user.patience_satisfaction * sat
        # Exponential stopping time: watch = min(stop, duration) once hooked; a short glance otherwise.
        stop = np.exp(log_patience) * -np.log1p(-u[:, :, 1])
        glance = (0.2 + 0.8 * u[:, :, 2]) * user.quick_skip_s
        duration = cat.duration_s[shown]
        responses = np.empty((n, k, len(RESPONSE_FIELDS)), np.float32)
        watch = np.minimum(np.where(hooked, stop, glance), duration, out=responses[:, :, _COL["watch_time_s"]])
        valid = watch >= cat.valid_view_time_s[shown]
        responses[:, :, _COL["valid_view"]] = valid
        responses[:, :, _COL["long_view"]] = watch >= cat.long_view_time_s[shown]
        responses[:, :, _COL["quick_skip"]] = (watch < user.quick_skip_s) & (watch < duration)
        # Engagement only on valid views; a shared logistic "delight" term correlates like/comment/follow/share.
        uu = np.minimum(np.maximum(u[:, :, 3], 1e-6), 1.0 - 1e-6)
        base = self._topic_engagement.ravel()[shown_topic] + self._item_engagement[shown]
        base += (user.engagement_noise_scale * 0.55) * np.log(uu / (1.0 - uu))
        engaged = u[:, :, 4:8] < _sigmoid(base[:, :, None] + self._engagement_bias)
        engaged &= valid[:, :, None]
        responses[:, :, _COL["like"] : _COL["share"] + 1] = engaged
        hate_logit = self._topic_hate.ravel()[shown_topic] + self._item_hate[shown]
        responses[:, :, _COL["hate"]] = ~valid & (u[:, :, 8] < _sigmoid(hate_logit))
        return responses

    # ------------------------------------------------------------------ state transition
    def _update_state(self, shown: np.ndarray, shown_topic: np.ndarray, responses: np.ndarray) -> None:
        user, cat = self._user, self.catalogue
        inv_k = np.float32(1.0 / self.page_size)
        # Boredom: exponential moving average of the topic shares of the pages shown.
        shares = (shown_topic[:, :, None] == self._topic_ids).sum(axis=1, dtype=np.float32)
        self.boredom *= user.boredom_decay
        self.boredom += ((1.0 - user.boredom_decay) * inv_k) * shares
        page = np.add.reduce(responses, axis=1)
        page *= inv_k  # per-response page means
        engaged = page[:, _COL["like"] : _COL["share"] + 1].sum(axis=1)
        clickbait_hooked = np.add.reduce(cat.clickbait[shown] * self._hooked, axis=1) * inv_k
        self.satisfaction *= user.satisfaction_decay
        self.satisfaction += (
            user.satisfaction_gain_long_view * page[:, _COL["long_view"]]
            + user.satisfaction_gain_engagement * engaged
            - self._aversion * clickbait_hooked
            - user.satisfaction_loss_quick_skip * page[:, _COL["quick_skip"]]
            - user.satisfaction_loss_hate * page[:, _COL["hate"]]
        )
        last = self.last_page
        last[:, 0] = page[:, _COL["valid_view"]]
        last[:, 1] = page[:, _COL["long_view"]]
        np.minimum(engaged, 1.0, out=last[:, 2])
        last[:, 3] = page[:, _COL["quick_skip"]]
        np.minimum(page[:, _COL["watch_time_s"]] * np.float32(1.0 / 60.0), 1.0, out=last[:, 4])
        self.session_sum += last
        self.request_index += 1

"""How much does a per-user constant fusion gain when it is chosen per user, not as a linear function of traits?

    python -m mtf_bench.per_user_oracle [--users 2048] [--menu 128] [--sessions 16] [--out results/per_user_oracle]
    python -m mtf_bench.per_user_oracle --rollout-from results/per_user_oracle/per_user_oracle.json [--rollouts 128]

The headroom ladder's "oracle per-user" rung (``mtf_bench.headroom``) is *linear* in the user's latent traits, a
lower bound on what knowing the user allows. This probe drops the linear form. Every user picks, from a fixed menu
of constant fusions, the one with the highest mean return over ``--sessions`` *other* sessions of that same user
(``SessionRunner.run(..., session_seed=...)``: same user, other session draws; every menu entry plays the same
selection sessions, common random numbers). The choice is then scored on the user's evaluation session, which the
selection never saw, against the control (``BaselinePolicy``) on the same sessions (paired bootstrap intervals).

* **Users:** the headroom ladder's evaluation users (``reset(seed=i)``, i < ``--users``), so the lifts compare with
  its rungs. Selection sessions use seeds from 10,000,000 on, disjoint from every user population of the repo.
* **Menu:** the control plus ``--menu`` - 1 constants drawn around it (Gaussian steps of 0.15, 0.3 and 0.6 in action
  units, clipped to the action box; fixed seed). Nothing is tuned on the evaluation sessions.
* **Observable-only** (``--observable-sessions``): the same menu, but each user's entry is chosen from what a
  production feature log shows: a quadratic ridge regression of every entry's mean return on the first observation
  (``observable_model``), fitted on the ladder's *training* users' selection sessions, applied to the evaluation
  users. A per-user constant of observables, so a lower bound on observable-only policies. It is fitted at 1, 2,
  4, ... training sessions per user, so the record shows whether more training data would find more.
* **Two-phase oracle** (``--switch-request R``): a state-dependent oracle of the same kind. After its per-user
  choice, each user picks a second menu entry for requests ``R`` onwards on the same selection sessions (keeping
  the first counts as an option), and the pair is scored on the evaluation sessions, also against the per-user
  choice alone: a lower bound on what a policy of the user and the session's progress adds over a per-user constant.
* **Rollout oracle** (``--rollout-from RECORD``): the strongest state-dependent oracle here, and the one with a
  guarantee. Starting from a saved run's per-user choices, at every request of the evaluation session each user
  plays the option (its choice, the first menu entries, or steps around its choice) whose simulated value from the
  user's *current latent state* is highest, the per-user choice being played afterwards in every rollout: one step
  of policy improvement with the true simulator as the model (``UserSimulator.copy_rows``; fresh session keys, so
  it knows the state, not the future). With exact values it can only gain over the per-user choice (the policy
  improvement theorem); a switch must be confirmed on independent rollouts, so the rollouts' noise is not mistaken
  for a gain.
* **What limits it:** the menu (a finite set) and the selection noise (a finite number of sessions per user). The
  curve over the number of selection sessions shows the second: if the lift still rises at the last point, more
  sessions would find more. "best menu constant" (one entry for every user, chosen on all users' selection
  sessions) separates personalisation from a better constant.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from mtf_bench.headroom import FEATURE_SETS
from mtf_gym.atomic import atomic_write_json
from mtf_gym.evaluation import SessionOutcomes, SessionRunner, lift_by_segment
from mtf_gym.policies import BaselinePolicy, ConstantPolicy
from mtf_gym.sim.config import MTFSessionV1Config
from mtf_gym.sim.layout import STATE_NAMES
from mtf_gym.sim.simulator import UserSimulator

__all__ = ["ROLLOUT_SEED", "SELECTION_SEED", "TRIGGERS", "CorrectedChoice", "correction_search", "local_steps",
           "main", "menu_of_constants", "observable_model", "rollout_oracle", "rollout_policy", "rollout_returns",
           "select_and_score", "selection_returns", "trigger_thresholds", "triggered_choices"]

EVAL_SEED = 0  # the headroom ladder's evaluation users
TRAIN_SEED = 1_000_000  # the headroom ladder's training users (the observable-only model learns on them)
SELECTION_SEED = 10_000_000  # other sessions of those users: seeds disjoint from every user population
TRAIN_SELECTION_SEED = 20_000_000
CORRECTION_SEED = 30_000_000  # fresh sessions of the evaluation users for the state correction's search
TRAIN_CORRECTION_SEED = 40_000_000  # fresh sessions of the training users for the observable correction's search
STEP_SIZES = (0.15, 0.3, 0.6)


def menu_of_constants(control: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """``(size, A)``: the control first, then constants around it (Gaussian steps of each size in turn, clipped)."""
    rng = np.random.default_rng(seed)
    steps = np.array([STEP_SIZES[m % len(STEP_SIZES)] for m in range(size - 1)])[:, None]
    others = control[None, :] + steps * rng.standard_normal((size - 1, control.shape[0]))
    return np.clip(np.vstack([control[None, :], others]), -1.0, 1.0).astype(np.float32)


def _constant_rows(actions: np.ndarray):
    """A batch policy playing row ``i`` the fusion ``actions[i]`` at every request."""
    return lambda obs: actions


def doubling_checkpoints(sessions: int) -> list[int]:
    """``1, 2, 4, ...`` up to ``sessions``, which is always the last: the points of a curve over sessions."""
    return sorted({min(2 ** i, sessions) for i in range(sessions.bit_length() + 1)})


def selection_returns(runner: SessionRunner, user_seed: int, session_seed: int, menu: np.ndarray, sessions: int,
                      checkpoints: list[int], *, progress: bool, desc: str) -> dict[int, np.ndarray]:
    """Summed returns ``(M, N)`` of every menu entry over the first ``k`` selection sessions of users ``user_seed +
    i``, for each ``k`` in ``checkpoints`` (session ``k`` of user ``i``: session seed ``session_seed + k N + i``; every
    entry plays the same sessions)."""
    users = runner.num_sessions
    totals = np.zeros((menu.shape[0], users))
    cumulative: dict[int, np.ndarray] = {}
    bar = tqdm(total=sessions * menu.shape[0], unit="run", disable=not progress, desc=desc)
    for k in range(sessions):
        for m, action in enumerate(menu):
            totals[m] += runner.run(ConstantPolicy(action), user_seed, session_seed=session_seed + k * users).returns
            bar.update(1)
        if k + 1 in checkpoints:
            cumulative[k + 1] = totals.copy()
    bar.close()
    return cumulative


def _interval(lift: dict) -> str:
    """``"+2.49% [+1.43%, +3.59%]"``: a recorded lift and its interval, as every table and title prints it."""
    return f"{lift['estimate']:+.2%} [{lift['low']:+.2%}, {lift['high']:+.2%}]"


def _lift(out: SessionOutcomes, control: SessionOutcomes) -> dict:
    return {**lift_by_segment(out, control, rng=np.random.default_rng(0)), "mean_return": float(out.returns.mean())}


def observable_model(observations: np.ndarray, mean_returns: np.ndarray):
    """Each menu entry's mean return as a quadratic function of the first observation (ridge, penalty by
    leave-one-out CV): ``observations`` ``(N, D)``, ``mean_returns`` ``(N, M)``; ``predict(obs) -> (n, M)``."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    model = make_pipeline(StandardScaler(), PolynomialFeatures(2), StandardScaler(),
                          RidgeCV(alphas=np.logspace(-1, 5, 13)))
    return model.fit(observations, mean_returns)


def observable_choice(model, observations: np.ndarray) -> np.ndarray:
    """Each row's menu entry with the highest predicted return (:func:`observable_model`; a one-entry menu's
    model predicts a vector, hence the reshape)."""
    obs = np.asarray(observations, np.float64)
    return np.argmax(model.predict(obs).reshape(len(obs), -1), axis=1)


def _two_phase_rows(runner: SessionRunner, before: np.ndarray, after: np.ndarray, switch_request: int):
    """Row ``i`` plays ``before[i]`` for its first ``switch_request`` requests and ``after[i]`` from then on."""
    sim = runner.env.unwrapped.sim
    return lambda obs: np.where((sim.request_index < switch_request)[:, None], before, after).astype(np.float32)


def second_phase_choices(runner: SessionRunner, menu: np.ndarray, first: np.ndarray, sessions: int,
                         switch_request: int, *, progress: bool) -> np.ndarray:
    """Per user, the menu entry to switch to from request ``switch_request`` on, after its per-user choice
    ``first``: the best mean return over the same selection sessions (the entry ``first[i]`` itself is "no
    switch", so a user switches only when a switch did better on its other sessions)."""
    users = runner.num_sessions
    totals = np.zeros((menu.shape[0], users))
    bar = tqdm(total=sessions * menu.shape[0], unit="run", disable=not progress, desc="second phase")
    policies = [_two_phase_rows(runner, menu[first], np.broadcast_to(action, (users, action.shape[0])),
                                switch_request) for action in menu]
    for k in range(sessions):
        for m, policy in enumerate(policies):
            totals[m] += runner.run(policy, EVAL_SEED, session_seed=SELECTION_SEED + k * users).returns
            bar.update(1)
    bar.close()
    keep = totals[first, np.arange(users)] >= totals.max(axis=0)  # ties (e.g. sessions that end earlier): no switch
    return np.where(keep, first, np.argmax(totals, axis=0))


# Latent-state triggers of the triggered oracle: (state, side). "below" fires when the state is under its threshold.
TRIGGERS = (("satisfaction", "below"), ("fatigue", "above"), ("top_boredom", "above"))


def trigger_thresholds(config: MTFSessionV1Config, action: np.ndarray, users: int) -> np.ndarray:
    """Per trigger of :data:`TRIGGERS`, the median of its latent state over every request (from the second on) of
    the training users' sessions under the fusion ``action``: a trigger fires on about half of those requests."""
    runner = SessionRunner(users, dataclasses.replace(config, item_logs=False))
    sim = runner.env.unwrapped.sim
    seen: list[np.ndarray] = []

    def act(obs: np.ndarray, info: dict, live: np.ndarray) -> np.ndarray:
        rows = live & (sim.request_index > 0)
        seen.append(sim.users.state[rows][:, [STATE_NAMES.index(name) for name, _ in TRIGGERS]])
        return np.broadcast_to(action, (users, action.shape[0]))

    runner.run_with_context(act, TRAIN_SEED)
    return np.median(np.concatenate(seen), axis=0)


def _triggered_rows(runner: SessionRunner, before: np.ndarray, after: np.ndarray, trigger: np.ndarray,
                    thresholds: np.ndarray):
    """Row ``i`` plays ``after[i]`` while its trigger ``trigger[i]`` (an index into :data:`TRIGGERS`, -1: never)
    fires on the latent state, ``before[i]`` otherwise."""
    sim = runner.env.unwrapped.sim
    columns = np.array([STATE_NAMES.index(name) for name, _ in TRIGGERS])
    below = np.array([side == "below" for _, side in TRIGGERS])
    rows = np.arange(len(trigger))
    safe = np.maximum(trigger, 0)

    def act(obs: np.ndarray) -> np.ndarray:
        value = sim.users.state[rows, columns[safe]]
        fires = np.where(below[safe], value < thresholds[safe], value > thresholds[safe]) & (trigger >= 0)
        return np.where(fires[:, None], after, before).astype(np.float32)

    return act


def triggered_choices(runner: SessionRunner, menu: np.ndarray, first: np.ndarray, sessions: int,
                      thresholds: np.ndarray, entries: int, *, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per user, the (trigger, menu entry) with the best mean return over the selection sessions when the entry
    replaces the per-user choice ``first`` while the trigger fires; ``(-1, first)`` (no trigger) wins ties.
    ``entries``: the first so many menu entries are the candidates."""
    users = runner.num_sessions
    best = np.zeros(users)
    for k in range(sessions):  # the per-user choice alone: the value to beat
        best += runner.run(_constant_rows(menu[first]), EVAL_SEED, session_seed=SELECTION_SEED + k * users).returns
    trigger, entry = np.full(users, -1), first.copy()
    bar = tqdm(total=len(TRIGGERS) * entries * sessions, unit="run", disable=not progress, desc="triggered switch")
    for t in range(len(TRIGGERS)):
        rows_trigger = np.full(users, t)
        for m in range(entries):
            total = np.zeros(users)
            after = np.broadcast_to(menu[m], (users, menu.shape[1]))
            policy = _triggered_rows(runner, menu[first], after, rows_trigger, thresholds)
            for k in range(sessions):
                total += runner.run(policy, EVAL_SEED, session_seed=SELECTION_SEED + k * users).returns
                bar.update(1)
            better = total > best
            best = np.where(better, total, best)
            trigger, entry = np.where(better, t, trigger), np.where(better, m, entry)
    bar.close()
    return trigger, entry


@dataclass(frozen=True)
class CorrectedChoice:
    """``a = clip(base[i] + offset + standardise(phi) W, -1, 1)`` for row ``i``: a per-user menu choice ``base``
    ``(N, A)`` moved, at every request, by a linear function of a :data:`mtf_bench.headroom.FEATURE_SETS` entry."""

    features: str
    base: np.ndarray  # (N, A): one row per user
    offset: np.ndarray  # (A,)
    weights: np.ndarray  # (F, A)
    mean: np.ndarray  # (F,)
    std: np.ndarray  # (F,)

    def __call__(self, sim, obs: np.ndarray) -> np.ndarray:
        phi = (FEATURE_SETS[self.features](sim, obs) - self.mean) / self.std
        return np.clip(self.base + self.offset + phi @ self.weights, -1.0, 1.0).astype(np.float32)


def correction_search(config: MTFSessionV1Config, base: np.ndarray, user_seed: int, session_seed: int,
                      features: str, *, generations: int, sessions_per_generation: int = 1, seed: int = 0,
                      sigma0: float = 0.1, progress: bool = True, desc: str = "correction") -> CorrectedChoice:
    """CMA-ES over ``(offset, W)`` of :class:`CorrectedChoice` for users ``user_seed + i`` with per-user choices
    ``base``, maximising their mean return on *fresh* sessions: every generation plays ``sessions_per_generation``
    new sessions per user (session seeds from ``session_seed`` on), every candidate the same ones (common random
    numbers), so the search cannot fit the noise of a fixed sample. The returned policy is CMA-ES's distribution
    mean (less noisy than its best sample), with ``base`` as given (rows: the users)."""
    import cma

    from mtf_bench.headroom import feature_scaling

    users, dim = base.shape
    mean, std = feature_scaling(config, features)
    num_features = mean.shape[0]
    # cma's seed 0 means "seed from the clock": shift by one so every seed is reproducible.
    es = cma.CMAEvolutionStrategy(np.zeros(dim + num_features * dim), sigma0,
                                  {"seed": seed + 1, "verbose": -9, "CMA_diagonal": (1 + num_features) * dim > 60})
    copies = es.popsize * sessions_per_generation
    runner = SessionRunner(copies * users, dataclasses.replace(config, item_logs=False))
    sim = runner.env.unwrapped.sim
    member = np.repeat(np.arange(es.popsize), sessions_per_generation * users)
    rows_base = np.tile(base, (copies, 1))
    user_seeds = np.tile(np.arange(user_seed, user_seed + users), copies)
    bar = tqdm(total=generations, unit="gen", disable=not progress, desc=desc)
    for gen in range(generations):
        candidates = np.asarray(es.ask())
        offsets = candidates[:, :dim][member]
        weights = candidates[:, dim:].reshape(len(candidates), num_features, dim)[member]
        # The same fresh sessions for every candidate: session s of user i in generation g.
        first = session_seed + gen * sessions_per_generation * users
        sessions = np.tile(np.arange(first, first + sessions_per_generation * users), es.popsize)

        def act(obs: np.ndarray, offsets=offsets, weights=weights) -> np.ndarray:
            phi = (FEATURE_SETS[features](sim, obs) - mean) / std
            return np.clip(rows_base + offsets + np.einsum("nf,nfd->nd", phi, weights), -1.0, 1.0).astype(np.float32)

        out = runner.run(act, user_seeds.tolist(), session_seed=sessions.tolist())
        fitness = out.returns.reshape(len(candidates), -1).mean(axis=1)
        es.tell(list(candidates), list(-fitness))
        bar.set_postfix(best=f"{fitness.max():.3f}", mean=f"{fitness.mean():.3f}")
        bar.update(1)
    bar.close()
    final = np.asarray(es.result.xfavorite)
    return CorrectedChoice(features, base.astype(np.float64), final[:dim].copy(),
                           final[dim:].reshape(num_features, dim).copy(), mean, std)


ROLLOUT_SEED = 50_000_000  # base of the rollouts' fresh session keys (never a user population's key)
_MIN_ROLLOUT_ROWS = 64  # the smallest rollout simulator: one chunk of rows


class _RolloutPool:
    """Simulators of power-of-two sizes sharing ``source``'s catalogue, for rollouts copied from its rows (a
    rollout batch starts in one large enough and moves to smaller ones as its sessions end)."""

    def __init__(self, source: UserSimulator) -> None:
        self._config = dataclasses.replace(source.config, item_logs=False)  # rollouts need no item logs
        self._catalogue = source.catalogue
        self._sims: dict[int, UserSimulator] = {}

    def get(self, rows: int) -> UserSimulator:
        size = max(_MIN_ROLLOUT_ROWS, 1 << max(0, int(rows) - 1).bit_length())
        if size not in self._sims:
            self._sims[size] = UserSimulator(self._config, size, catalogue=self._catalogue)
        return self._sims[size]


def rollout_returns(pool: _RolloutPool, source: UserSimulator, source_rows: np.ndarray, keys: np.ndarray,
                    first_actions: np.ndarray, base_actions: np.ndarray) -> np.ndarray:
    """The return of rollout ``j``: row ``source_rows[j]`` of ``source`` copied mid-session with the fresh session
    key ``keys[j]`` (the same user in the same state, with an unseen future), its next request played with
    ``first_actions[j]`` and every later one with ``base_actions[j]``, until the user leaves or the request cap."""
    n = len(source_rows)
    sim = pool.get(n)
    pad = sim.num_rows - n
    sim.copy_rows(np.arange(sim.num_rows), source, np.concatenate([source_rows, np.repeat(source_rows[:1], pad)]),
                  np.concatenate([keys, np.repeat(keys[:1], pad)]))
    owner = np.concatenate([np.arange(n), np.full(pad, -1)])  # rollout of each simulator row; -1: none
    returns = np.zeros(n)
    actions = np.concatenate([first_actions, np.repeat(first_actions[:1], pad, axis=0)]).astype(np.float32, copy=False)
    while True:
        out = sim.step(actions)
        live = owner >= 0
        returns[owner[live]] += out.rewards[live]
        owner = np.where(out.terminated | out.truncated, -1, owner)
        alive = np.flatnonzero(owner >= 0)
        if alive.size == 0:
            return returns
        if alive.size <= sim.num_rows // 4 and sim.num_rows > _MIN_ROLLOUT_ROWS:
            # Move the live sessions to a smaller simulator: ended ones would cost a step each for nothing.
            smaller = pool.get(alive.size)
            fill = smaller.num_rows - alive.size
            smaller.copy_rows(np.arange(smaller.num_rows), sim, np.concatenate([alive, np.repeat(alive[:1], fill)]))
            owner, sim = np.concatenate([owner[alive], np.full(fill, -1)]), smaller
        actions = base_actions[np.maximum(owner, 0)].astype(np.float32, copy=False)


def _rollout_keys(*counters: int, size: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng([ROLLOUT_SEED, *counters])
    return rng.integers(0, np.iinfo(np.uint64).max, size=size, dtype=np.uint64, endpoint=True)


def local_steps(dim: int, count: int, seed: int = 0) -> np.ndarray:
    """``(count, dim)`` Gaussian steps of the menu's sizes (0.15, 0.3, 0.6 in turn, fixed seed): the rollout
    oracle's options around each user's own choice."""
    rng = np.random.default_rng([ROLLOUT_SEED, seed])
    sizes = np.array([STEP_SIZES[m % len(STEP_SIZES)] for m in range(count)])[:, None]
    return sizes * rng.standard_normal((count, dim))


def rollout_policy(runner: SessionRunner, per_user: np.ndarray, options: np.ndarray, rollouts: int, *,
                   confirm_z: float = 1.645, max_rollout_rows: int = 1 << 16, stats: dict | None = None):
    """The rollout oracle (one step of policy improvement over the per-user choice, with the true simulator as
    its model): at every request, for every live user ``i``, the value of each option ``options[i, o]`` for this
    request followed by the user's per-user choice ``per_user[i]`` at every later one is estimated by ``rollouts``
    rollouts from the user's *current latent state* with fresh session keys (the same futures for every option),
    and the best option is played if ``rollouts`` other fresh rollouts confirm that it beats the per-user choice:
    their mean paired gain exceeds ``confirm_z`` standard errors (one-sided; so the selection's winner's curse and
    the rollouts' noise are not mistaken for a gain). ``per_user``: ``(N, A)``; ``options``: ``(N, O, A)``. A context
    policy for :meth:`SessionRunner.run_with_context`; ``stats`` (optional) collects switch counts per request."""
    sim = runner.env.unwrapped.sim
    pool = _RolloutPool(sim)
    per_user = np.asarray(per_user, np.float32)
    choices = np.concatenate([per_user[:, None], np.asarray(options, np.float32)], axis=1)  # option 0: no switch
    width, dim = choices.shape[1], choices.shape[2]
    block = max(1, max_rollout_rows // (width * rollouts))

    def values(rows: np.ndarray, first: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """``(n, W, R)`` returns: option ``first[:, w]`` now, the per-user choice after, future ``keys[:, r]``."""
        n, w = first.shape[:2]
        every = np.broadcast_to(first[:, :, None], (n, w, rollouts, dim)).reshape(-1, dim)
        return rollout_returns(pool, sim, np.repeat(rows, w * rollouts),
                               np.broadcast_to(keys[:, None], (n, w, rollouts)).reshape(-1), every,
                               np.repeat(per_user[rows], w * rollouts, axis=0)).reshape(n, w, rollouts)

    def act(obs: np.ndarray, info: dict, live: np.ndarray) -> np.ndarray:
        actions = per_user.copy()
        live_rows = np.flatnonzero(live)
        request = int(sim.request_index[live_rows].max()) if live_rows.size else 0
        switched = 0
        for start in range(0, live_rows.size, block):
            rows = live_rows[start:start + block]
            n = rows.size
            best = np.argmax(values(rows, choices[rows], _rollout_keys(request, start, 0, size=(n, rollouts)))
                             .mean(axis=2), axis=1)
            # Confirmation on other fresh futures: the winner against the per-user choice, paired.
            pair = np.stack([choices[rows, 0], choices[rows, best]], axis=1)
            gain = np.diff(values(rows, pair, _rollout_keys(request, start, 1, size=(n, rollouts))), axis=1)[:, 0]
            error = gain.std(axis=1, ddof=1) / np.sqrt(rollouts) if rollouts > 1 else np.zeros(n)
            switch = (best > 0) & (gain.mean(axis=1) > confirm_z * error)
            actions[rows[switch]] = pair[switch, 1]
            switched += int(switch.sum())
        if stats is not None:
            stats.setdefault("live", []).append(int(live_rows.size))
            stats.setdefault("switched", []).append(switched)
        return actions

    return act


def rollout_oracle(config: MTFSessionV1Config, record: dict, menu_options: int, local_options: int, rollouts: int,
                   *, confirm_z: float = 1.645, progress: bool = True) -> dict:
    """Scores :func:`rollout_policy` on the evaluation sessions of the users of ``record`` (a saved
    :func:`select_and_score` result: its menu and last per-user choices), against the control and the per-user
    choice, on the same sessions. Options besides the per-user choice: the first ``menu_options`` menu entries and
    ``local_options`` steps around the user's own choice (:func:`local_steps`, clipped to the action box)."""
    menu = np.asarray(record["menu"], np.float32)
    base = np.asarray(record["curve"][-1]["choices"], np.int64)
    users, dim = len(base), menu.shape[1]
    per_user = menu[base]
    options = np.concatenate([np.broadcast_to(menu[:min(menu_options, len(menu))], (users, min(menu_options,
                              len(menu)), dim)),
                              np.clip(per_user[:, None] + local_steps(dim, local_options)[None], -1.0, 1.0)], axis=1)
    runner = SessionRunner(users, config)
    control = runner.run(ConstantPolicy(menu[0]), EVAL_SEED)
    per_user_out = runner.run(_constant_rows(per_user), EVAL_SEED)
    stats: dict = {}
    policy = rollout_policy(runner, per_user, options, rollouts, confirm_z=confirm_z, stats=stats)
    bar = tqdm(total=config.max_requests, unit="request", disable=not progress, desc="rollout oracle")
    out = runner.run_with_context(policy, EVAL_SEED, after_step=lambda rows, info: bar.update(1))
    bar.close()
    live, switched = np.array(stats["live"]), np.array(stats["switched"])
    return {"lift": _lift(out, control), "over_per_user": _lift(out, per_user_out),
            "per_user_lift": _lift(per_user_out, control), "menu_options": int(min(menu_options, len(menu))),
            "local_options": local_options, "rollouts": rollouts, "confirm_z": confirm_z,
            "rollout_seed": ROLLOUT_SEED, "switch_share": float(switched.sum() / max(live.sum(), 1)),
            "switch_share_by_request": (switched / np.maximum(live, 1)).round(4).tolist(),
            "live_by_request": live.tolist(), "base_sessions": record["settings"]["sessions"]}


def _corrected_lift(runner: SessionRunner, policy: CorrectedChoice, choice_only: SessionOutcomes,
                    control: SessionOutcomes) -> dict:
    """Scores a corrected choice on the evaluation sessions, against the control and the uncorrected choice."""
    sim = runner.env.unwrapped.sim
    out = runner.run(lambda obs: policy(sim, obs), EVAL_SEED)
    return {"features": policy.features, "lift": _lift(out, control), "over_choice": _lift(out, choice_only),
            "mean_abs_weight": float(np.abs(policy.weights).mean()), "offset": policy.offset.tolist(),
            "weights": policy.weights.tolist()}


def select_and_score(config: MTFSessionV1Config, users: int, menu: np.ndarray, sessions: int,
                     checkpoints: list[int], *, observable_sessions: int = 0, switch_request: int = 0,
                     correction_generations: int = 0, state_features: str = "state", trigger_entries: int = 0,
                     progress: bool = True) -> dict:
    """Per-user choices from the first ``k`` selection sessions for each ``k`` in ``checkpoints``, each scored on the
    evaluation sessions against the control; the single best menu constant; with ``switch_request``, the two-phase
    oracle (:func:`second_phase_choices`: a second per-user entry from that request on); and, with
    ``observable_sessions``, the observable-only menu policy (:func:`observable_model` fitted on the training users'
    selection sessions), as a curve over the training sessions per user (``observable_curve``: 1, 2, 4, ... up to
    ``observable_sessions``; ``observable`` is its last point). With ``correction_generations``, each choice also
    gets an in-session linear correction (:func:`correction_search`): of the latent session state
    (``state_features``) for the per-user oracle, fitted on fresh sessions of the evaluation users (never their
    evaluation sessions), and of the observation for the observable-only policy, fitted on the training users. With
    ``trigger_entries``, the triggered oracle (:func:`triggered_choices`): per user, one of the first
    ``trigger_entries`` menu entries played while a latent-state trigger fires (satisfaction low, fatigue or
    boredom high)."""
    runner = SessionRunner(users, config)
    cumulative = selection_returns(runner, EVAL_SEED, SELECTION_SEED, menu, sessions, checkpoints,
                                   progress=progress, desc="selection sessions (evaluation users)")
    control = runner.run(ConstantPolicy(menu[0]), EVAL_SEED)

    def score(policy) -> dict:
        return _lift(runner.run(policy, EVAL_SEED), control)

    curve = []
    for k, sums in sorted(cumulative.items()):
        choice = np.argmax(sums, axis=0)
        curve.append({"sessions": k, "lift": score(_constant_rows(menu[choice])),
                      "users_keeping_control": float(np.mean(choice == 0)),
                      "distinct_choices": int(np.unique(choice).size),
                      "mean_step_from_control": float(np.mean(np.abs(menu[choice] - menu[0]).sum(axis=1))),
                      "choices": choice.tolist()})
    totals = cumulative[max(cumulative)]
    best = int(np.argmax(totals.sum(axis=1)))
    result = {"curve": curve, "best_menu_constant": {"index": best, "lift": score(ConstantPolicy(menu[best]))},
              "control_mean_return": float(control.returns.mean())}
    # The per-user choice (last curve point) and its evaluation run: the base of every state-dependent oracle.
    first = np.argmax(totals, axis=0)
    per_user = runner.run(_constant_rows(menu[first]), EVAL_SEED) if (
        switch_request or trigger_entries or correction_generations) else None
    if switch_request:
        second = second_phase_choices(runner, menu, first, sessions, switch_request, progress=progress)
        two_phase = runner.run(_two_phase_rows(runner, menu[first], menu[second], switch_request), EVAL_SEED)
        result["two_phase"] = {"switch_request": switch_request, "lift": _lift(two_phase, control),
                               "over_per_user": _lift(two_phase, per_user),
                               "users_switching": float(np.mean(second != first)), "choices": second.tolist()}
    if trigger_entries:
        thresholds = trigger_thresholds(config, menu[0], users)
        trigger, entry = triggered_choices(runner, menu, first, sessions, thresholds, min(trigger_entries, len(menu)),
                                           progress=progress)
        triggered = runner.run(_triggered_rows(runner, menu[first], menu[entry], trigger, thresholds), EVAL_SEED)
        result["triggered"] = {
            "lift": _lift(triggered, control), "over_per_user": _lift(triggered, per_user),
            "thresholds": {name: float(x) for (name, _), x in zip(TRIGGERS, thresholds)},
            "entries": int(min(trigger_entries, len(menu))), "users_switching": float(np.mean(trigger >= 0)),
            "users_per_trigger": {f"{name} {side}": int(np.sum(trigger == t)) for t, (name, side)
                                  in enumerate(TRIGGERS)}, "triggers": trigger.tolist(), "choices": entry.tolist()}
    if correction_generations:
        correction = correction_search(config, menu[first], EVAL_SEED, CORRECTION_SEED, state_features,
                                       generations=correction_generations, seed=1, progress=progress,
                                       desc=f"correction of the per-user choice by {state_features}")
        result["state_correction"] = {**_corrected_lift(runner, correction, per_user, control),
                                      "generations": correction_generations, "session_seed": CORRECTION_SEED}
    if observable_sessions:
        # One model per power of two of training sessions (the same nested sessions): the curve says whether the
        # observable policy is limited by its training data or by what the observation tells.
        train = selection_returns(runner, TRAIN_SEED, TRAIN_SELECTION_SEED, menu, observable_sessions,
                                  doubling_checkpoints(observable_sessions), progress=progress,
                                  desc="selection sessions (training users)")
        train_obs, _ = runner.env.reset(seed=TRAIN_SEED)
        eval_obs, _ = runner.env.reset(seed=EVAL_SEED)
        result["observable_curve"] = []
        for k, sums in sorted(train.items()):
            model = observable_model(np.asarray(train_obs, np.float64), sums.T / k)
            choice = observable_choice(model, eval_obs)
            choice_only = runner.run(_constant_rows(menu[choice]), EVAL_SEED)
            result["observable_curve"].append({
                "lift": _lift(choice_only, control), "training_sessions": k, "ridge_alpha": float(model[-1].alpha_),
                "users_keeping_control": float(np.mean(choice == 0)), "distinct_choices": int(np.unique(choice).size)})
        result["observable"] = result["observable_curve"][-1]  # the most training data; its model is ``model``
        if correction_generations:
            # Fitted on the training users (their own menu choices), applied to the evaluation users' choices.
            train_choice = observable_choice(model, train_obs)
            fitted = correction_search(config, menu[train_choice], TRAIN_SEED, TRAIN_CORRECTION_SEED, "observation",
                                       generations=correction_generations, seed=2, progress=progress,
                                       desc="correction of the observable choice by the observation")
            policy = dataclasses.replace(fitted, base=menu[choice].astype(np.float64))
            result["observable_correction"] = {**_corrected_lift(runner, policy, choice_only, control),
                                               "generations": correction_generations,
                                               "session_seed": TRAIN_CORRECTION_SEED}
    return result


def _plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.4), gridspec_kw={"width_ratios": [3, 2]})
    ks = [c["sessions"] for c in result["curve"]]
    est = np.array([c["lift"]["estimate"] for c in result["curve"]]) * 100
    low = np.array([c["lift"]["low"] for c in result["curve"]]) * 100
    high = np.array([c["lift"]["high"] for c in result["curve"]]) * 100
    left.fill_between(ks, low, high, alpha=0.25, color="C0")
    left.plot(ks, est, "o-", color="C0", label="per-user choice from the menu")
    best = result["best_menu_constant"]["lift"]
    left.axhline(best["estimate"] * 100, color="C1", ls="--", label=f"best menu constant ({best['estimate']:+.2%})")
    if "observable_curve" in result:
        points = result["observable_curve"]
        xs = [c["training_sessions"] for c in points]
        lifts = {key: np.array([c["lift"][key] for c in points]) * 100 for key in ("estimate", "low", "high")}
        left.fill_between(xs, lifts["low"], lifts["high"], alpha=0.18, color="C2")
        left.plot(xs, lifts["estimate"], "D-.", color="C2", label=f"observable-only menu policy, by training "
                  f"sessions per training user ({points[-1]['lift']['estimate']:+.2%} at {xs[-1]})")
        left.axhline(3.0, color="C2", ls=":", lw=1, label="issue target for observable-only (+3%)")
        ks = sorted({*ks, *xs})
    elif "observable" in result:  # a record from before the curve
        obs = result["observable"]["lift"]
        left.axhline(obs["estimate"] * 100, color="C2", ls="-.",
                     label=f"observable-only menu policy ({obs['estimate']:+.2%})")
    if "observable_correction" in result:
        obs = result["observable_correction"]["lift"]
        left.axhline(obs["estimate"] * 100, color="C2", ls=":",
                     label=f"observable menu policy + correction by the observation ({obs['estimate']:+.2%})")
    for key, colour, what in (("state_correction", "C4", "per-user choice + correction by the latent state"),
                              ("triggered", "C5", "per-user choice + latent-state trigger"),
                              ("two_phase", "C6", "per-user choice + second entry from a request on")):
        if key in result:
            lift = result[key]["lift"]
            left.errorbar([ks[-1] * 1.15], [lift["estimate"] * 100], yerr=[[100 * (lift["estimate"] - lift["low"])],
                          [100 * (lift["high"] - lift["estimate"])]], fmt="s", color=colour, capsize=3,
                          label=f"{what} ({lift['estimate']:+.2%})")
    left.axhline(6.0, color="C3", ls=":", label="issue target for the per-user oracle (+6%)")
    left.axhline(0.0, color="black", lw=0.8)
    left.set_xscale("log", base=2)
    left.set_xticks(ks, [str(k) for k in ks])
    left.set_xlabel("sessions per user (selection: other sessions of the same user; observable: training users')")
    left.set_ylabel("lift vs control on the evaluation sessions (%)")
    left.set_title(f"Per-user constant chosen from {result['settings']['menu']} fusions, "
                   f"{result['settings']['users']} users")
    left.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    # By segment: the per-user choice (last point) and, when measured, the observable-only policy (its last point).
    bars = [(f"per-user choice, {result['curve'][-1]['sessions']} selection sessions",
             result["curve"][-1]["lift"]["per_segment"], "C0")]
    if "per_segment" in result.get("observable", {}).get("lift", {}):
        bars.append((f"observable-only, {result['observable']['training_sessions']} training sessions",
                     result["observable"]["lift"]["per_segment"], "C2"))
    names = list(bars[0][1])
    height = 0.8 / len(bars)
    for b, (label, segments, colour) in enumerate(bars):
        vals = np.array([segments[n]["estimate"] for n in names]) * 100
        errs = np.array([[segments[n]["estimate"] - segments[n]["low"], segments[n]["high"] - segments[n]["estimate"]]
                         for n in names]).T * 100
        right.barh(np.arange(len(names)) + (b - (len(bars) - 1) / 2) * height, vals, height=height, xerr=errs,
                   color=colour, alpha=0.8, label=label)
    right.set_yticks(range(len(names)), names)
    right.axvline(0, color="black", lw=0.8)
    right.set_xlabel("lift vs control (%), 95% CI")
    right.set_title("by segment")
    right.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    right.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")  # the legend sits below the axes
    plt.close(fig)


def _plot_rollout(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    options = result["menu_options"] + result["local_options"] + 1
    arms = [(f"per-user choice\n(menu, {result['base_sessions']} sessions)", result["per_user_lift"], "C0"),
            (f"rollout oracle over it\n(latent state, {options} options)", result["lift"], "C4")]
    for y, (_, lift, colour) in enumerate(arms):
        left.errorbar([lift["estimate"] * 100], [y], xerr=[[100 * (lift["estimate"] - lift["low"])],
                      [100 * (lift["high"] - lift["estimate"])]], fmt="o", color=colour, capsize=4)
        left.annotate(f"{lift['estimate']:+.2%}", (lift["estimate"] * 100, y), xytext=(0, 8),
                      textcoords="offset points", ha="center")
    over = result["over_per_user"]
    base = result["per_user_lift"]["estimate"]
    target = ((1 + base) * 1.02 - 1) * 100  # the target: the per-user oracle + 2%
    left.axvline(target, color="C3", ls=":", label=f"target: per-user choice + 2% ({target:+.2f}%)")
    left.legend(fontsize=8, loc="lower left")
    left.set_yticks(range(len(arms)), [a[0] for a in arms])
    left.set_ylim(-0.6, len(arms) - 0.4)
    left.axvline(0, color="black", lw=0.8)
    left.set_xlabel("lift vs control on the evaluation sessions (%), 95% CI")
    left.set_title(f"rollout oracle over the per-user choice: {_interval(over)}", fontsize=10)
    share = np.array(result["switch_share_by_request"]) * 100
    live = np.array(result["live_by_request"])
    shown = live >= 20  # requests with too few live users say nothing
    right.bar(np.arange(len(share))[shown] + 1, share[shown], color="C4", alpha=0.8)
    right.set_xlabel("request in the session")
    right.set_ylabel("live users switching from their per-user choice (%)")
    right.set_title(f"{result['switch_share']:.1%} of user-requests switch\n({result['rollouts']} rollouts per "
                    f"option, a switch confirmed on {result['rollouts']} more)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _rollout_main(args: argparse.Namespace) -> None:
    import json

    for name, minimum in (("rollout_menu_options", 0), ("rollout_local_options", 0), ("rollouts", 2)):
        if getattr(args, name) < minimum:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= {minimum}, got {getattr(args, name)}")
    if args.rollout_menu_options + args.rollout_local_options < 1:
        raise SystemExit("--rollout-menu-options + --rollout-local-options must be >= 1 (the options to switch to)")
    record = json.loads(args.rollout_from.read_text())
    if record.get("settings", {}).get("eval_seed") != EVAL_SEED or "curve" not in record or "menu" not in record:
        raise SystemExit(f"--rollout-from: {args.rollout_from} is not a per_user_oracle.json of the evaluation users")
    start = time.perf_counter()
    result = rollout_oracle(MTFSessionV1Config(), record, args.rollout_menu_options, args.rollout_local_options,
                            args.rollouts, confirm_z=args.confirm_z, progress=not args.no_progress)
    result["settings"] = {"record": str(args.rollout_from), "users": len(record["curve"][-1]["choices"]),
                          "menu": len(record["menu"]), "eval_seed": EVAL_SEED,
                          "seconds": round(time.perf_counter() - start, 1)}
    lift, over, base = result["lift"], result["over_per_user"], result["per_user_lift"]
    print(f"\nRollout oracle over the per-user choice ({result['settings']['users']} evaluation users, "
          f"{result['menu_options']} menu + {result['local_options']} local options, {args.rollouts} rollouts, "
          f"{result['settings']['seconds']:.0f} s)\n")
    print(f"per-user choice: {_interval(base)} vs control")
    print(f"rollout oracle:  {_interval(lift)} vs control, {_interval(over)} over the per-user choice; "
          f"{result['switch_share']:.1%} of user-requests switch")
    holds = "holds" if over["estimate"] >= 0.02 else "does not hold"
    print(f"target 'oracle state-dependent >= +2% over oracle per-user' (rollout oracle): {holds}")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "per_user_oracle_rollout.json", result)
    _plot_rollout(result, args.out / "per_user_oracle_rollout.png")
    print(f"wrote {args.out / 'per_user_oracle_rollout.json'} and per_user_oracle_rollout.png")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=2048, help="evaluation users (default 2048)")
    parser.add_argument("--menu", type=int, default=128, help="constant fusions in the menu, control included")
    parser.add_argument("--sessions", type=int, default=16, help="selection sessions per user (default 16)")
    parser.add_argument("--observable-sessions", type=int, default=8,
                        help="selection sessions per training user for the observable-only menu policy, fitted "
                             "at 1, 2, 4, ... up to this many (0: skip)")
    parser.add_argument("--switch-request", type=int, default=0,
                        help="also the two-phase oracle: a second per-user menu entry from this request on (0: skip)")
    parser.add_argument("--correction-generations", type=int, default=0,
                        help="also an in-session linear correction of each choice, CMA-ES for this many generations "
                             "(0: skip): by the latent session state (per-user oracle) and by the observation "
                             "(observable-only)")
    parser.add_argument("--trigger-entries", type=int, default=0,
                        help="also the triggered oracle: per user, one of the first N menu entries played while a "
                             "latent-state trigger fires (satisfaction low, fatigue or top boredom high; 0: skip)")
    parser.add_argument("--state-features", default="state", choices=sorted(FEATURE_SETS),
                        help="features of the per-user oracle's correction (default: state, the latent session "
                             "state and progress)")
    parser.add_argument("--rollout-from", type=Path, default=None, metavar="RECORD",
                        help="instead of a selection run: the rollout oracle (one step of policy improvement by "
                             "simulated rollouts from the latent state) over the per-user choices of this saved "
                             "per_user_oracle.json")
    parser.add_argument("--rollout-menu-options", type=int, default=8,
                        help="rollout oracle: the first N menu entries are options besides the per-user choice")
    parser.add_argument("--rollout-local-options", type=int, default=8,
                        help="rollout oracle: N Gaussian steps (0.15/0.3/0.6) around each user's choice are options")
    parser.add_argument("--rollouts", type=int, default=128,
                        help="rollout oracle: fresh futures per option (and as many to confirm a switch)")
    parser.add_argument("--confirm-z", type=float, default=1.645,
                        help="rollout oracle: a switch needs a confirmed paired gain above this many standard errors")
    parser.add_argument("--out", type=Path, default=Path("results/per_user_oracle"), help="output folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--replot", action="store_true", help="redraw per_user_oracle.png from the saved JSON")
    args = parser.parse_args(argv)
    if args.replot:
        import json

        if args.rollout_from is not None:
            path = args.out / "per_user_oracle_rollout.json"
            _plot_rollout(json.loads(path.read_text()), path.with_suffix(".png"))
            print(f"redrew {path.with_suffix('.png')}")
            return
        _plot(json.loads((args.out / "per_user_oracle.json").read_text()), args.out / "per_user_oracle.png")
        print(f"redrew {args.out / 'per_user_oracle.png'}")
        return
    if args.rollout_from is not None:
        _rollout_main(args)
        return
    for name, minimum in (("users", 2), ("menu", 2), ("sessions", 1), ("observable_sessions", 0),
                          ("switch_request", 0), ("correction_generations", 0), ("trigger_entries", 0)):
        if getattr(args, name) < minimum:
            parser.error(f"--{name.replace('_', '-')} must be >= {minimum}, got {getattr(args, name)}")
    config = MTFSessionV1Config()
    menu = menu_of_constants(BaselinePolicy(config).action, args.menu)
    checkpoints = doubling_checkpoints(args.sessions)
    start = time.perf_counter()
    result = select_and_score(config, args.users, menu, args.sessions, checkpoints,
                              observable_sessions=args.observable_sessions, switch_request=args.switch_request,
                              correction_generations=args.correction_generations,
                              state_features=args.state_features, trigger_entries=args.trigger_entries,
                              progress=not args.no_progress)
    result["settings"] = {"users": args.users, "menu": args.menu, "sessions": args.sessions,
                          "observable_sessions": args.observable_sessions, "switch_request": args.switch_request,
                          "correction_generations": args.correction_generations,
                          "state_features": args.state_features, "trigger_entries": args.trigger_entries,
                          "train_seed": TRAIN_SEED,
                          "step_sizes": list(STEP_SIZES), "selection_seed": SELECTION_SEED, "eval_seed": EVAL_SEED,
                          "seconds": round(time.perf_counter() - start, 1)}
    result["menu"] = menu.tolist()
    print(f"\nPer-user constant chosen from a menu of {args.menu} fusions, {args.users} evaluation users, "
          f"MTFSession-v1 ({result['settings']['seconds']:.0f} s)\n")
    print("| selection sessions per user | lift vs control [95% CI] | users keeping the control | distinct choices |")
    print("|---|---|---|---|")
    for c in result["curve"]:
        print(f"| {c['sessions']} | {_interval(c['lift'])} | "
              f"{c['users_keeping_control']:.1%} | {c['distinct_choices']} |")
    best = result["best_menu_constant"]["lift"]
    print(f"\nbest menu constant for everyone: {_interval(best)}")
    if "two_phase" in result:
        two, over = result["two_phase"]["lift"], result["two_phase"]["over_per_user"]
        print(f"two-phase oracle (second per-user entry from request {args.switch_request}): {_interval(two)} vs "
              f"control, {_interval(over)} over the per-user choice; {result['two_phase']['users_switching']:.1%} "
              "switch")
    if "observable" in result:
        print(f"\nobservable-only menu policy (quadratic ridge of the first observation, fitted on {args.users} "
              f"training users):\n")
        print("| training sessions per user | lift vs control [95% CI] | distinct choices |")
        print("|---|---|---|")
        for c in result["observable_curve"]:
            print(f"| {c['training_sessions']} | {_interval(c['lift'])} | {c['distinct_choices']} |")
    if "triggered" in result:
        trig = result["triggered"]
        print(f"triggered oracle (per user: one of {trig['entries']} entries while a latent-state trigger fires): "
              f"{_interval(trig['lift'])} vs control, {_interval(trig['over_per_user'])} over the per-user choice; "
              f"{trig['users_switching']:.1%} of users have a trigger ({trig['users_per_trigger']})")
    for key, what in (("state_correction", f"per-user choice + linear correction by {args.state_features}"),
                      ("observable_correction", "observable menu policy + linear correction by the observation")):
        if key in result:
            lift, over = result[key]["lift"], result[key]["over_choice"]
            print(f"{what} (CMA-ES, {args.correction_generations} generations): {_interval(lift)} vs control, "
                  f"{_interval(over)} over the choice alone")
    last = result["curve"][-1]["lift"]["per_segment"]
    print("by segment (last point): " + ", ".join(f"{n} {_interval(v)}" for n, v in last.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "per_user_oracle.json", result)
    _plot(result, args.out / "per_user_oracle.png")
    print(f"wrote {args.out / 'per_user_oracle.json'} and per_user_oracle.png")


if __name__ == "__main__":
    main()

"""Measured properties of ``MTFSlate-v0``: what random, popular, the production pipeline and the oracle earn, and how
much of the oracle's gain a linear model over the public item embeddings reaches (the numbers of ``docs/slate.md``).

    python -m mtf_bench.slate_properties [--users 2048] [--train-users 1024] [--num-items 20000] [--seed 0]
                                          [--markdown] [--out slate_properties.json]

Every policy plays one session of the *same* evaluation users (common random numbers): sub-env ``i`` of
``gym.make_vec("MTFSlate-v0", num_envs=S).reset(seed=seed)`` is user ``seed + i``. The session return of a user is
the sum of its first episode's rewards. Rows:

* ``random``, ``most popular``, ``pipeline (control)``, ``oracle``: the reference policies of :mod:`mtf_gym.slate`.
  The oracle is computed here over the *live* rows only, with the same expected-reward kernel, and equals
  :class:`mtf_gym.slate.OraclePolicy` page for page (``tests/test_slate_scripts.py``): ``OraclePolicy`` scans
  the catalogue for every row, finished or not, on one thread, which costs minutes at 2,048 users x 20,000 items.
* ``oracle over the candidates``: the oracle's choice restricted to the pipeline's ``C`` retrieved candidates (the
  ceiling of any re-ranker of the production retrieval).
* ``linear over embeddings (catalogue)`` / ``(candidates)``: a bilinear score ``s(u, i) = a_u^T W e~_i`` with
  ``a_u = [observation, 1]`` (user features and the mean embedding of the last page, all public) and
  ``e~_i = [e_i, 1]`` (the public item embedding), fitted by ridge least squares to the oracle's per-item expected
  reward ``E[r | u, i]`` on *training* users (seeds ``seed + 10^6 + j``, disjoint from the evaluation users) in the
  states the production pipeline leads them to, over a fresh random subset of items at every request. It acts
  greedily: the top-K of ``s(u, .)`` over the whole catalogue, or over the pipeline's C retrieved candidates.

Reported: mean session return with a 95% bootstrap interval over users; the relative lift over random with a paired
bootstrap; the normalised score ``100 (R - R_random) / (R_oracle - R_random)`` with a paired bootstrap (the ratio of
mean paired differences, :func:`mtf_gym.metrics.paired_lift_ci` of ``R - R_random`` against
``R_oracle - R_random``, plus one).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from numba import njit

import mtf_gym  # noqa: F401  (registers the envs)
from mtf_gym.atomic import atomic_write_json
from mtf_gym.evaluation import SessionRunner
from mtf_gym.metrics import ConfidenceInterval, bootstrap_ci, paired_lift_ci
from mtf_gym.sim.layout import NUM_RESPONSES
from mtf_gym.sim.response import expected_item
from mtf_gym.slate import MostPopularPolicy, PipelinePolicy, RandomSlatePolicy
from mtf_gym.threads import CHUNKS_PER_THREAD, get_num_threads, run_chunks

__all__ = ["BilinearScorer", "PolicyResult", "expected_rewards", "fit_bilinear", "main", "oracle_pages",
           "oracle_policy", "play_sessions"]

TRAIN_SEED_OFFSET = 1_000_000  # training users are seeds seed + 10^6 + j: disjoint from the evaluation users
_ORACLE_BLOCK = 128  # rows scored against the whole catalogue at once: (128, N) float32


@njit(cache=True, nogil=True)
def _expected_reward_chunk(chunk, num_chunks, rows, items, model, users, out):
    """``out[r, j]``: true expected reward of item ``items[r, j]`` for simulator row ``rows[r]`` in its current state
    (the sum over responses of expectation x reward weight, in float32 as :class:`mtf_gym.slate.OraclePolicy`)."""
    scratch = np.empty(NUM_RESPONSES, np.float32)
    per_topic = model.dims[2]
    n = rows.shape[0]
    for r in range(chunk * n // num_chunks, (chunk + 1) * n // num_chunks):
        i = rows[r]
        for j in range(items.shape[1]):
            item = items[r, j]
            expected_item(i, item, item // per_topic, model, users, scratch)
            value = np.float32(0.0)
            for f in range(NUM_RESPONSES):
                value += scratch[f] * model.reward[f]
            out[r, j] = value


def expected_rewards(sim: Any, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``(len(rows), M)`` float32 true expected rewards for simulator ``rows`` (threaded) of ``items``: ``(M,)``
    item ids shared by every row, or ``(len(rows), M)``, one set per row."""
    rows = np.ascontiguousarray(rows, np.int64)
    items = np.asarray(items, np.int64)
    if items.ndim == 1:
        items = np.broadcast_to(items, (rows.shape[0], items.shape[0]))  # no copy: a zero row stride
    if items.shape[0] != rows.shape[0]:
        raise ValueError(f"items must be (M,) or (len(rows), M) = ({rows.shape[0]}, M), got {items.shape}")
    out = np.empty(items.shape, np.float32)
    if rows.size:
        chunks = max(1, min(rows.shape[0], CHUNKS_PER_THREAD * get_num_threads()))
        run_chunks(_expected_reward_chunk, chunks, (rows, items, sim.model, sim.users, out))
    return out


def top_k_pages(scores: np.ndarray, page_size: int) -> np.ndarray:
    """Column indices of each row's ``page_size`` highest scores, descending, ties to the lower index (as the
    oracle's insertion sort)."""
    top = np.argpartition(-scores, page_size - 1, axis=1)[:, :page_size] if scores.shape[1] > page_size else \
        np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
    top.sort(axis=1)  # lower index first, so the stable sort below breaks ties like the oracle
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1).astype(np.int64)


def oracle_pages(sim: Any, rows: np.ndarray, page_size: int) -> np.ndarray:
    """The oracle's pages (top-K true expected reward over the whole catalogue) for ``rows`` only."""
    all_items = np.arange(sim.model.items.shape[0], dtype=np.int64)
    out = np.empty((len(rows), page_size), np.int64)
    for start in range(0, len(rows), _ORACLE_BLOCK):
        block = rows[start:start + _ORACLE_BLOCK]
        out[start:start + len(block)] = top_k_pages(expected_rewards(sim, block, all_items), page_size)
    return out


# A page policy here: (obs (S, D), info, live rows (S,) bool) -> (S, K) int64.
PagePolicy = Callable[[np.ndarray, dict, np.ndarray], np.ndarray]


def play_sessions(env: gym.vector.VectorEnv, policy: PagePolicy, seed: int) -> np.ndarray:
    """Every sub-env plays one session (user ``seed + i``) through the project's rollout loop; returns the ``(S,)``
    session returns."""
    return SessionRunner.on(env).run_with_context(policy, seed).returns


def _filler(live: np.ndarray, pages: np.ndarray, page_size: int) -> np.ndarray:
    """Full ``(S, K)`` pages: ``pages`` on live rows, items ``0..K-1`` on finished rows (never counted)."""
    out = np.broadcast_to(np.arange(page_size, dtype=np.int64), (live.shape[0], page_size)).copy()
    out[live] = pages
    return out


def oracle_policy(env: gym.vector.VectorEnv) -> PagePolicy:
    """The oracle as a page policy of ``env`` (its live rows only; finished rows get filler pages)."""
    sim, k = env.unwrapped.sim, env.unwrapped.page_size

    def oracle(obs: np.ndarray, info: dict, live: np.ndarray) -> np.ndarray:
        return _filler(live, oracle_pages(sim, np.flatnonzero(live), k), k)

    return oracle


def _public_features(obs: np.ndarray) -> np.ndarray:
    return np.concatenate([obs.astype(np.float64), np.ones((obs.shape[0], 1))], axis=1)


@dataclass(frozen=True)
class BilinearScorer:
    """``s(u, i) = [obs_u, 1]^T W [e_i, 1]``; ``item_side = W [E, 1]^T`` precomputed, ``(obs_dim + 1, N)``."""

    weights: np.ndarray  # (obs_dim + 1, d + 1)
    item_side: np.ndarray  # (obs_dim + 1, N) float32
    train_r2: float
    train_pairs: int

    def scores(self, obs: np.ndarray) -> np.ndarray:
        """``(S, N)`` scores of every catalogue item for observations ``(S, obs_dim)``."""
        return _public_features(obs).astype(np.float32) @ self.item_side

    def candidate_scores(self, obs: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """``(S, C)`` scores of each row's own candidate items ``(S, C)``."""
        user = _public_features(obs).astype(np.float32)
        return np.einsum("sp,psc->sc", user, self.item_side[:, candidates])


def fit_bilinear(env: gym.vector.VectorEnv, behaviour: PagePolicy, seed: int, items_per_request: int,
                 ridge: float, rng: np.random.Generator) -> BilinearScorer:
    """Ridge least squares of the oracle's per-item expected reward on ``a_u (x) e~_i`` over the states that
    ``behaviour`` leads the training users (``env``'s rows, reset with ``seed``) to.

    At every request all live rows share one random item subset ``I``, so with ``A`` the rows' features and ``E``
    the subset's, the normal equations accumulate in closed form: ``X^T X += (A^T A) (x) (E^T E)`` and
    ``X^T y += vec(A^T Y E)`` (``Y``: rows x items expected rewards), never materialising ``X``.
    """
    sim = env.unwrapped.sim
    emb = np.asarray(env.unwrapped.item_embeddings, np.float64)
    num_items = emb.shape[0]
    p, q = env.single_observation_space.shape[0] + 1, emb.shape[1] + 1
    xtx = np.zeros((p * q, p * q))
    xty = np.zeros(p * q)
    sums = {"yty": 0.0, "y": 0.0, "pairs": 0}

    def accumulate_then_act(obs: np.ndarray, info: dict, live_mask: np.ndarray) -> np.ndarray:
        nonlocal xtx, xty
        live = np.flatnonzero(live_mask)
        subset = rng.choice(num_items, size=min(items_per_request, num_items), replace=False)
        targets = expected_rewards(sim, live, subset).astype(np.float64)
        a = _public_features(obs[live])
        e = np.concatenate([emb[subset], np.ones((len(subset), 1))], axis=1)
        xtx += np.kron(a.T @ a, e.T @ e)
        xty += (a.T @ targets @ e).reshape(-1)
        sums["yty"] += float((targets ** 2).sum())
        sums["y"] += float(targets.sum())
        sums["pairs"] += targets.size
        return behaviour(obs, info, live_mask)

    SessionRunner.on(env).run_with_context(accumulate_then_act, seed)
    yty, y_sum, pairs = sums["yty"], sums["y"], sums["pairs"]
    scale = np.trace(xtx) / xtx.shape[0]
    w = np.linalg.solve(xtx + ridge * scale * np.eye(xtx.shape[0]), xty)
    sse = yty - 2.0 * w @ xty + w @ xtx @ w
    sst = yty - y_sum ** 2 / pairs
    weights = w.reshape(p, q)
    item_side = (weights @ np.concatenate([emb, np.ones((num_items, 1))], axis=1).T).astype(np.float32)
    return BilinearScorer(weights, item_side, float(1.0 - sse / sst), pairs)


@dataclass(frozen=True)
class PolicyResult:
    name: str
    mean_return: ConfidenceInterval
    lift_over_random: ConfidenceInterval | None  # relative: mean(R) / mean(R_random) - 1
    normalised: ConfidenceInterval | None  # 100 (R - R_random) / (R_oracle - R_random)
    seconds: float


def _interval_dict(ci: ConfidenceInterval | None) -> dict[str, float] | None:
    return None if ci is None else {**ci.as_dict(), "confidence": ci.confidence, "n": ci.n}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=2048, help="evaluation users (>= 2, default 2048)")
    parser.add_argument("--train-users", type=int, default=1024, help="training users of the linear model")
    parser.add_argument("--num-items", type=int, default=20_000, help="catalogue size N (default 20,000)")
    parser.add_argument("--items-per-request", type=int, default=1024,
                        help="random items scored by the oracle per training request (default 1024)")
    parser.add_argument("--ridge", type=float, default=1e-4, help="ridge penalty, relative to the mean diagonal")
    parser.add_argument("--seed", type=int, default=0, help="first evaluation user seed")
    parser.add_argument("--resamples", type=int, default=5000, help="bootstrap resamples")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--out", help="write every number to this JSON file (atomically)")
    args = parser.parse_args(argv)
    for name in ("users", "train_users", "items_per_request", "resamples"):
        if getattr(args, name) < (2 if name == "users" else 1):
            parser.error(f"--{name.replace('_', '-')} must be >= {2 if name == 'users' else 1}, "
                         f"got {getattr(args, name)}")
    wall = time.perf_counter()
    make = {"num_items": args.num_items, "expose_candidates": True}
    env = gym.make_vec("MTFSlate-v0", num_envs=args.users, **make)
    base = env.unwrapped
    k = base.page_size

    # The linear model, fitted on training users before any evaluation.
    start = time.perf_counter()
    train_env = gym.make_vec("MTFSlate-v0", num_envs=args.train_users, **make)
    train_pipeline = PipelinePolicy(train_env)

    def behaviour(obs: np.ndarray, info: dict, live: np.ndarray) -> np.ndarray:
        return train_pipeline(obs, info)

    scorer = fit_bilinear(train_env, behaviour, args.seed + TRAIN_SEED_OFFSET, args.items_per_request, args.ridge,
                          np.random.default_rng(args.seed + 1))
    fit_seconds = time.perf_counter() - start
    train_env.close()

    random_policy = RandomSlatePolicy(base.num_items, k, np.random.default_rng(args.seed + 2))
    popular = MostPopularPolicy(env)
    pipeline = PipelinePolicy(env)

    oracle = oracle_policy(env)

    def oracle_candidates(obs: np.ndarray, info: dict, live: np.ndarray) -> np.ndarray:
        cand = info["candidates"][live]
        truth = expected_rewards(base.sim, np.flatnonzero(live), cand)
        return _filler(live, np.take_along_axis(cand, top_k_pages(truth, k), axis=1), k)

    def linear_catalogue(obs: np.ndarray, info: dict, live: np.ndarray) -> np.ndarray:
        return _filler(live, top_k_pages(scorer.scores(obs[live]), k), k)

    def linear_candidates(obs: np.ndarray, info: dict, live: np.ndarray) -> np.ndarray:
        cand = info["candidates"][live]
        scores = scorer.candidate_scores(obs[live], cand)
        return _filler(live, np.take_along_axis(cand, top_k_pages(scores, k), axis=1), k)

    policies: dict[str, PagePolicy] = {
        "random": lambda o, i, live: random_policy(o),
        "most popular": lambda o, i, live: popular(o),
        "pipeline (control)": lambda o, i, live: pipeline(o, i),
        "oracle": oracle,
        "oracle over the candidates": oracle_candidates,
        "linear over embeddings (catalogue)": linear_catalogue,
        "linear over embeddings (candidates)": linear_candidates,
    }
    returns: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for name, policy in policies.items():
        start = time.perf_counter()
        returns[name] = play_sessions(env, policy, args.seed)
        seconds[name] = time.perf_counter() - start
        print(f"  played {name}: {seconds[name]:.1f} s", flush=True)

    boot = np.random.default_rng(args.seed + 3)
    rand, orac = returns["random"], returns["oracle"]
    results = []
    for name, r in returns.items():
        mean = bootstrap_ci(r, num_resamples=args.resamples, rng=boot)
        lift = None if name == "random" else paired_lift_ci(r, rand, num_resamples=args.resamples, rng=boot)
        norm = None
        if name not in ("random", "oracle"):
            ratio = paired_lift_ci(r - rand, orac - rand, num_resamples=args.resamples, rng=boot)
            norm = ConfidenceInterval(100 * (1 + ratio.estimate), 100 * (1 + ratio.low), 100 * (1 + ratio.high),
                                      ratio.confidence, ratio.n)
        results.append(PolicyResult(name, mean, lift, norm, seconds[name]))

    md = args.markdown
    print()
    print(f"MTFSlate-v0, N = {base.num_items:,} items, K = {k}, {args.users} evaluation users (seeds {args.seed}.."
          f"{args.seed + args.users - 1}), 95% bootstrap intervals ({args.resamples} resamples)")
    head = ["policy", "mean session return", "over random", "normalised (random 0, oracle 100)"]
    if md:
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    else:
        print(f"{head[0]:<38} {head[1]:>24} {head[2]:>26} {head[3]:>26}")

    def fmt(ci: ConfidenceInterval | None, scale: float = 1.0, suffix: str = "", sign: bool = False) -> str:
        if ci is None:
            return "-"
        spec = "+.1f" if sign else ".1f"
        return f"{scale * ci.estimate:{spec}}{suffix} [{scale * ci.low:{spec}}, {scale * ci.high:{spec}}]"

    for res in results:
        normalised = "0 (by definition)" if res.name == "random" else (
            "100 (by definition)" if res.name == "oracle" else fmt(res.normalised))
        cells = [res.name, fmt(res.mean_return, 1.0), fmt(res.lift_over_random, 100.0, "%", sign=True), normalised]
        print(("| " + " | ".join(cells) + " |") if md else
              f"{cells[0]:<38} {cells[1]:>24} {cells[2]:>26} {cells[3]:>26}")
    print()
    print(f"linear model: {scorer.weights.size} weights, fitted on {args.train_users} training users (seeds "
          f"{args.seed + TRAIN_SEED_OFFSET}..), {scorer.train_pairs:,} (state, item) pairs, R^2 {scorer.train_r2:.3f}"
          f" on them, {fit_seconds:.1f} s")
    print(f"wall time {time.perf_counter() - wall:.1f} s")
    payload = {
        "env": "MTFSlate-v0", "num_items": base.num_items, "page_size": k, "users": args.users,
        "seed": args.seed, "resamples": args.resamples,
        "linear_model": {"weights": int(scorer.weights.size), "train_users": args.train_users,
                         "train_pairs": scorer.train_pairs, "train_r2": scorer.train_r2,
                         "items_per_request": args.items_per_request, "ridge": args.ridge,
                         "fit_seconds": fit_seconds},
        "policies": {res.name: {"mean_return": _interval_dict(res.mean_return),
                                "lift_over_random": _interval_dict(res.lift_over_random),
                                "normalised": _interval_dict(res.normalised), "seconds": res.seconds}
                     for res in results},
        "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version()},
        "wall_seconds": time.perf_counter() - wall,
    }
    if args.out:
        atomic_write_json(args.out, payload)
    return payload


if __name__ == "__main__":
    main()

"""The four scientific properties of MTFSession-v0, measured with 95% bootstrap CIs over users.

The properties are P3-P5 of ``docs/design.md#required-properties-of-the-environment``.

    python -m mtf_bench.env_properties [--quick] [--seeds 8192] [--sessions 4096] [--markdown] [--out props.json]

(a) random fusion is clearly worse than the baseline: paired lifts of session return, valid views, watch time and
    requests per session.
(b) greedy vs long horizon: CMA-ES finds the best constant fusion for the *immediate* reward (reward of a session's
    first request, i.e. gamma = 0) and the best constant fusion for *session return*, both started at the baseline
    action. On fresh users the greedy fusion must win or tie on first-request reward and lose on session return;
    requests per session, clickbait share of shown items and satisfaction say why.
(c) personalisation: CMA-ES over a per-segment table of actions (segment = observation[0:4]), warm-started at the
    best constant fusion of (b), beats that constant *and* the best of its own rows used as a constant for everyone; the
    cross-segment matrix (every segment's users under every segment's action) shows where the gain comes from.
(d) no degenerate exploit: CMA-ES maximising the valid-view rate (and, separately, the like rate) per exposure over
    constant fusions, plus a handful of extreme fusions, stay below documented ceilings; a noise-free ranker ranking
    by its (state-blind) true probabilities is reported as a reference that no fusion of the real ranker reproduces.

Common random numbers: session ``i`` of an evaluation is the user of seed ``EVAL_SEED + base + i`` for every arm, so
lifts are paired. Every search uses users ``SEARCH_SEED + base + i``, disjoint from the evaluation users; the
session-return searches use the same number of users of each segment and weight segments by their population share.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cma
import numpy as np

from mtf_bench._sessions import SessionOutcomes, SessionRunner, user_segments
from mtf_gym import (
    SEGMENT_NAMES,
    BaselinePolicy,
    ConstantPolicy,
    MTFSessionConfig,
    RandomFusionPolicy,
    RankerConfig,
    action_to_fusion_params,
)
from mtf_gym.metrics import ConfidenceInterval, bootstrap_ci, paired_lift_ci
from mtf_gym.policies import BatchPolicy

SEARCH_SEED = 0
EVAL_SEED = 10_000_000  # evaluation users never overlap search users (searches use far fewer than 10M seeds)
# Documented realistic ceilings per exposure (docs/environment.md): a production feed at KuaiRand's ~45% valid
# views and ~1.9% likes; rates beyond these would mean the fusion found a degenerate exploit of the simulator.
VALID_VIEW_CEILING = 0.75
LIKE_CEILING = 0.10

# name -> whether a relative lift is meaningful (the control's mean is a positive amount).
METRICS: dict[str, bool] = {
    "return": True,
    "first_reward": True,
    "valid_views": True,
    "watch_time_min": True,
    "requests": True,
    "clickbait_share": True,
    "satisfaction": False,
}


@dataclass(frozen=True)
class Budget:
    eval_sessions: int  # fresh users per arm in the evaluations of (a)-(c) (the CIs are over these)
    search_sessions: int  # users per fitness evaluation of the session-return searches, split equally by segment
    greedy_sessions: int  # users per fitness evaluation of the first-request search (one step each: cheap)
    rate_sessions: int  # users per fitness evaluation of the rate searches of (d), and per evaluation in (d)
    generations: int  # CMA-ES generations of every search
    popsize: int
    resamples: int  # bootstrap resamples per CI


FULL = Budget(eval_sessions=8192, search_sessions=4096, greedy_sessions=8192, rate_sessions=1024, generations=20,
              popsize=8, resamples=2000)
QUICK = Budget(eval_sessions=2048, search_sessions=1024, greedy_sessions=2048, rate_sessions=512, generations=6,
               popsize=6, resamples=1000)


class SegmentTablePolicy:
    """One action per user segment, looked up from the observation's one-hot segment (features 0-3)."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = np.asarray(table, dtype=np.float32)

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        return self.table[np.argmax(observations[:, : len(SEGMENT_NAMES)], axis=1)]


class SearchUsers:
    """Segment-stratified search users: the same number of users of every segment, rows grouped by segment.

    The population's mean return is the segment-share-weighted mean of the segment means (a stratified estimate:
    lower variance than plain sampling, and the rarest segment's search is as precise as the others').
    """

    def __init__(self, config: MTFSessionConfig, total: int, first_seed: int) -> None:
        num_segments = len(SEGMENT_NAMES)
        self.per_segment = max(total // num_segments, 16)
        pool = int(self.per_segment / min(config.user.segments.share) * 1.5) + 256
        segments = user_segments(first_seed, pool, config)
        chosen = [np.flatnonzero(segments == g)[: self.per_segment] for g in range(num_segments)]
        if min(len(c) for c in chosen) < self.per_segment:
            raise RuntimeError(f"a screening pool of {pool} users holds too few users of some segment")
        self.seeds = (first_seed + np.concatenate(chosen)).tolist()
        self.shares = np.asarray(config.user.segments.share)
        self.runner = SessionRunner(len(self.seeds), dataclasses.replace(config, item_logs=False))

    def segment_returns(self, policy: BatchPolicy) -> np.ndarray:
        """``(segments,)`` mean session return of each segment's search users."""
        returns = self.runner.run(policy, self.seeds).returns
        return returns.reshape(len(SEGMENT_NAMES), self.per_segment).mean(axis=1)

    def population_return(self, policy: BatchPolicy) -> float:
        return float(self.shares @ self.segment_returns(policy))


def metric(stats: SessionOutcomes, name: str) -> np.ndarray:
    """Per-session values of one of :data:`METRICS`."""
    if name == "return":
        return stats.returns
    if name == "first_reward":
        return stats.first_rewards
    if name == "valid_views":
        return stats.per_session("valid_view")
    if name == "watch_time_min":
        return stats.per_session("watch_time_s") / 60.0
    if name == "requests":
        return stats.requests.astype(np.float64)
    if name == "clickbait_share":
        return stats.clickbait_shown / (stats.requests * stats.page_size)
    if name == "satisfaction":
        return stats.satisfaction
    raise ValueError(f"metric must be one of {list(METRICS)}, got {name!r}")


def cma_maximise(
    fitness: Callable[[list[list[np.ndarray]]], np.ndarray],
    starts: Sequence[np.ndarray],
    sigma0: float,
    budget: Budget,
    seed: int,
) -> tuple[list[np.ndarray], list[list[float]]]:
    """Maximise ``P`` problems in lock-step with one CMA-ES each (``P = 1`` for a single problem).

    ``fitness(xs)`` gets ``xs[p][j]``, candidate ``j`` of problem ``p``, and returns ``(popsize, P)`` values, so the
    per-segment problems of (c) share one simulator run per candidate. Returns each problem's final distribution
    mean (``xfavorite``, inside the bounds) and its best value per generation.
    """
    opts = {"bounds": [-1.0, 1.0], "popsize": budget.popsize, "verbose": -9}
    strategies = [cma.CMAEvolutionStrategy(np.asarray(x0, np.float64), sigma0, {**opts, "seed": seed + p})
                  for p, x0 in enumerate(starts)]
    history: list[list[float]] = []
    for _ in range(budget.generations):
        xs = [es.ask() for es in strategies]
        values = np.asarray(fitness(xs), dtype=np.float64).reshape(budget.popsize, len(strategies))
        for p, es in enumerate(strategies):
            es.tell(xs[p], list(-values[:, p]))  # cma minimises
        history.append(values.max(axis=0).tolist())
    best = [np.clip(es.result.xfavorite, -1.0, 1.0).astype(np.float32) for es in strategies]
    return best, history


def single(fitness: Callable[[np.ndarray], float]) -> Callable[[list[list[np.ndarray]]], np.ndarray]:
    """Adapt a one-problem fitness ``f(action) -> value`` to :func:`cma_maximise`."""
    return lambda xs: np.array([[fitness(np.asarray(x, np.float32))] for x in xs[0]])


class Evaluator:
    """Fresh-seed evaluations and CIs; one bootstrap generator for the whole run (reproducible)."""

    def __init__(self, runner: SessionRunner, seed: int, resamples: int) -> None:
        self.runner, self.seed, self.resamples = runner, seed, resamples
        self.rng = np.random.default_rng(seed)

    def run(self, policy: BatchPolicy) -> SessionOutcomes:
        return self.runner.run(policy, self.seed)

    def mean(self, stats: SessionOutcomes, name: str) -> dict[str, float]:
        return _ci(bootstrap_ci(metric(stats, name), rng=self.rng, num_resamples=self.resamples))

    def compare(self, treatment: SessionOutcomes, control: SessionOutcomes, names: Sequence[str]) -> dict[str, Any]:
        """Per metric: both arms' means, the paired difference and (where meaningful) the paired relative lift."""
        out: dict[str, Any] = {}
        for name in names:
            t, c = metric(treatment, name), metric(control, name)
            out[name] = {
                "treatment": self.mean(treatment, name),
                "control": self.mean(control, name),
                "diff": _ci(bootstrap_ci(t - c, rng=self.rng, num_resamples=self.resamples)),
            }
            if METRICS[name]:
                out[name]["lift"] = _ci(paired_lift_ci(t, c, rng=self.rng, num_resamples=self.resamples))
        return out


def _ci(ci: ConfidenceInterval) -> dict[str, float]:
    return {**ci.as_dict(), "n": ci.n}


def fusion_params(action: np.ndarray, config: MTFSessionConfig) -> dict[str, Any]:
    powers, biases = action_to_fusion_params(np.asarray(action, np.float32), config.fusion)
    # Biases span three decades (log-scale by default), so they keep significant digits, not decimals.
    return {"action": np.round(action, 4).tolist(),
            "powers": dict(zip(config.ranker_tasks, np.round(powers, 3).tolist())),
            "biases": {t: float(f"{b:.3g}") for t, b in zip(config.ranker_tasks, biases.tolist())}}


# ----------------------------------------------------------------------------------------------------------------------
# The four properties
# ----------------------------------------------------------------------------------------------------------------------
def property_a(ev: Evaluator, config: MTFSessionConfig, seed: int) -> dict[str, Any]:
    """(a) Baseline vs uniformly random fusion on the same fresh users."""
    base = ev.run(BaselinePolicy(config))
    rand = ev.run(RandomFusionPolicy(config.action_dim, np.random.default_rng(seed + 1)))
    names = ("return", "valid_views", "watch_time_min", "requests")
    cmp = ev.compare(base, rand, names)
    return {"baseline_vs_random": cmp, "pass": all(cmp[m]["lift"]["low"] > 0 for m in names)}


def property_b(ev: Evaluator, config: MTFSessionConfig, budget: Budget, seed: int,
               users: SearchUsers) -> tuple[dict[str, Any], np.ndarray, SessionOutcomes]:
    """(b) Best constant for the first request vs for session return; also returns the latter and its evaluation."""
    x0 = BaselinePolicy(config).action
    greedy_runner = SessionRunner(budget.greedy_sessions, dataclasses.replace(config, item_logs=False))

    def first_reward(action: np.ndarray) -> float:
        return float(greedy_runner.run(ConstantPolicy(action), SEARCH_SEED + seed, max_requests=1).first_rewards.mean())

    (greedy,), greedy_hist = cma_maximise(single(first_reward), [x0], 0.3, budget, seed + 11)
    (long,), long_hist = cma_maximise(single(lambda a: users.population_return(ConstantPolicy(a))), [x0], 0.3,
                                      budget, seed + 23)
    base = ev.run(BaselinePolicy(config))
    g = ev.run(ConstantPolicy(greedy))
    lh = ev.run(ConstantPolicy(long))
    names = tuple(METRICS)
    long_vs_greedy = ev.compare(lh, g, names)
    first, ret = long_vs_greedy["first_reward"], long_vs_greedy["return"]
    result = {
        "greedy": fusion_params(greedy, config),
        "long_horizon": fusion_params(long, config),
        "search_history": {"greedy_first_reward": greedy_hist, "long_session_return": long_hist},
        "long_vs_greedy": long_vs_greedy,
        "greedy_vs_baseline": ev.compare(g, base, names),
        "long_vs_baseline": ev.compare(lh, base, names),
        # Greedy wins or ties on the immediate reward (long's lift over greedy is not significantly > 0), and loses
        # on session return (long's lift over greedy is significantly > 0).
        "pass": first["lift"]["low"] <= 0 and ret["lift"]["low"] > 0,
    }
    return result, long, lh


def property_c(ev: Evaluator, config: MTFSessionConfig, budget: Budget, seed: int, users: SearchUsers,
               best_constant: np.ndarray, const: SessionOutcomes) -> dict[str, Any]:
    """(c) Per-segment table of actions vs the best constant ``best_constant`` (evaluated as ``const``)."""
    num_segments = len(SEGMENT_NAMES)

    def fitness(xs: list[list[np.ndarray]]) -> np.ndarray:
        # Candidate j of every segment's search in one run: a segment's return depends on its own row only.
        return np.stack([users.segment_returns(SegmentTablePolicy(np.stack([x[j] for x in xs])))
                         for j in range(budget.popsize)])

    # Warm start at the best constant: the table can only gain by matching actions to segments or by finding a
    # better constant, and the best-row check below tells the two apart.
    rows, history = cma_maximise(fitness, [best_constant] * num_segments, 0.25, budget, seed + 37)
    table = np.stack(rows)
    personal = ev.run(SegmentTablePolicy(table))
    # Every segment's users under every segment's action: matrix[s][r] = mean return of segment s under row r.
    row_runs = [ev.run(ConstantPolicy(row)) for row in table]
    seg = personal.segments
    matrix = [[float(run.returns[seg == s].mean()) for run in row_runs] for s in range(num_segments)]
    best_row = int(np.argmax([run.returns.mean() for run in row_runs]))
    vs_const = ev.compare(personal, const, ("return", "requests", "valid_views", "watch_time_min"))
    vs_row = ev.compare(personal, row_runs[best_row], ("return",))
    per_seg = {}
    for s, name in enumerate(SEGMENT_NAMES):
        m = seg == s
        t, c = personal.returns[m], const.returns[m]
        per_seg[name] = {
            "users": int(m.sum()),
            "table_return": float(t.mean()),
            "constant_return": float(c.mean()),
            "lift": _ci(paired_lift_ci(t, c, rng=ev.rng, num_resamples=ev.resamples)),
            "fusion": fusion_params(table[s], config),
        }
    distances = np.abs(table[:, None, :] - table[None, :, :]).max(axis=2)
    return {
        "table_vs_best_constant": vs_const,
        "table_vs_best_row_as_constant": {"best_row": SEGMENT_NAMES[best_row], **vs_row},
        "per_segment": per_seg,
        "cross_segment_return_matrix": {"rows_are_users_of": list(SEGMENT_NAMES),
                                        "columns_are_action_of": list(SEGMENT_NAMES), "values": matrix},
        "diagonal_is_row_max": [bool(np.argmax(matrix[s]) == s) for s in range(num_segments)],
        "max_abs_action_difference_between_segments": distances.tolist(),
        "search_history": history,
        "search_users_per_segment": users.per_segment,
        # The table must beat the best constant and every one of its own rows used as a constant.
        "pass": vs_const["return"]["lift"]["low"] > 0 and vs_row["return"]["lift"]["low"] > 0,
    }


def extreme_actions(config: MTFSessionConfig) -> dict[str, np.ndarray]:
    """Single-task rankers (one task at the top power, the others at power 0, minimum biases) and box corners."""
    t = config.num_tasks
    power_zero = -1.0 - 2.0 * config.fusion.power_low / (config.fusion.power_high - config.fusion.power_low)
    out = {}
    for i, task in enumerate(config.ranker_tasks):
        a = np.concatenate([np.full(t, power_zero), -np.ones(t)])
        a[i] = 1.0
        out[f"only {task}^max, min bias"] = a.astype(np.float32)
    out["all +1 (max powers, max biases)"] = np.ones(2 * t, np.float32)
    out["all -1 (min powers, min biases)"] = -np.ones(2 * t, np.float32)
    out["max powers, min biases"] = np.concatenate([np.ones(t), -np.ones(t)]).astype(np.float32)
    return out


def property_d(config: MTFSessionConfig, budget: Budget, seed: int, extra: dict[str, np.ndarray]) -> dict[str, Any]:
    """(d) Highest valid-view and like rates per exposure reachable by constant fusions, vs documented ceilings."""
    runner = SessionRunner(budget.rate_sessions, config)
    # Pooled rates over ~30 exposures per user are precise with fewer users than the per-session lifts need.
    ev = Evaluator(SessionRunner(budget.rate_sessions, config), EVAL_SEED + seed, budget.resamples)
    x0 = BaselinePolicy(config).action

    def rate_of(name: str) -> Callable[[np.ndarray], float]:
        return lambda action: runner.run(ConstantPolicy(action), SEARCH_SEED + seed).rate(name)

    (max_valid,), valid_hist = cma_maximise(single(rate_of("valid_view")), [x0], 0.5, budget, seed + 51)
    (max_like,), like_hist = cma_maximise(single(rate_of("like")), [x0], 0.5, budget, seed + 53)
    candidates = {"baseline": x0, **extra, "CMA-ES max valid-view rate": max_valid, "CMA-ES max like rate": max_like,
                  **extreme_actions(config)}

    def rates(stats: SessionOutcomes) -> dict[str, float]:
        return {"valid_view": stats.rate("valid_view"), "long_view": stats.rate("long_view"),
                "like": stats.rate("like"), "return": float(stats.returns.mean())}

    table = {name: {**rates(ev.run(ConstantPolicy(a))), **fusion_params(a, config)} for name, a in candidates.items()}
    # Reference, unreachable through fusion: a ranker without prediction error (true long-term probabilities, still
    # blind to in-session boredom and satisfaction) ranking by one task alone.
    perfect = dataclasses.replace(config, ranker=RankerConfig(task_noise=(0.0,) * len(RankerConfig().task_noise),
                                                              clickbait_overestimate=0.0))
    oracle_ev = Evaluator(SessionRunner(budget.rate_sessions, perfect), ev.seed, ev.resamples)
    oracle = {}
    for task in ("valid_view", "like"):
        a = extreme_actions(config)[f"only {task}^max, min bias"]
        oracle[f"noise-free ranker, only {task}"] = rates(oracle_ev.run(ConstantPolicy(a)))
    max_valid_rate = max(v["valid_view"] for v in table.values())
    max_like_rate = max(v["like"] for v in table.values())
    return {
        "ceilings": {"valid_view": VALID_VIEW_CEILING, "like": LIKE_CEILING},
        "fusions": table,
        "oracle_reference": oracle,
        "max_valid_view_rate": max_valid_rate,
        "max_like_rate": max_like_rate,
        "search_history": {"valid_view": valid_hist, "like": like_hist},
        "pass": max_valid_rate < VALID_VIEW_CEILING and max_like_rate < LIKE_CEILING,
    }


# ----------------------------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------------------------
_LABEL = {"return": "return/session", "first_reward": "first-request reward", "valid_views": "valid views/session",
          "watch_time_min": "watch min/session", "requests": "requests/session", "clickbait_share": "clickbait share",
          "satisfaction": "mean satisfaction"}


def _fmt(ci: dict[str, float], pct: bool = False) -> str:
    if pct:
        return f"{100 * ci['estimate']:+.1f}% [{100 * ci['low']:+.1f}, {100 * ci['high']:+.1f}]"
    digits = 3 if abs(ci["estimate"]) < 1 else 2
    return f"{ci['estimate']:.{digits}f} [{ci['low']:.{digits}f}, {ci['high']:.{digits}f}]"


def report(results: dict[str, Any], markdown: bool) -> str:
    head = ["property", "treatment vs control", "metric", "treatment [95% CI]", "control [95% CI]",
            "lift or diff [95% CI]"]
    rows: list[list[str]] = []

    def add(prop: str, label: str, cmp: dict[str, Any], names: Sequence[str]) -> None:
        for name in names:
            c = cmp[name]
            change = _fmt(c["lift"], pct=True) if "lift" in c else "diff " + _fmt(c["diff"])
            rows.append([prop, label, _LABEL[name], _fmt(c["treatment"]), _fmt(c["control"]), change])

    a, b, c, d = (results[k] for k in ("a", "b", "c", "d"))
    add("(a)", "baseline vs random fusion", a["baseline_vs_random"],
        ("return", "valid_views", "watch_time_min", "requests"))
    add("(b)", "long-horizon vs greedy", b["long_vs_greedy"], tuple(METRICS))
    add("(b)", "greedy vs baseline", b["greedy_vs_baseline"], ("first_reward", "return"))
    add("(b)", "long-horizon vs baseline", b["long_vs_baseline"], ("first_reward", "return"))
    add("(c)", "per-segment table vs best constant", c["table_vs_best_constant"], ("return", "requests"))
    add("(c)", f"table vs its best row ({c['table_vs_best_row_as_constant']['best_row']}) as constant",
        c["table_vs_best_row_as_constant"], ("return",))
    for name, seg in c["per_segment"].items():
        rows.append(["(c)", f"segment {name} (n={seg['users']})", "return/session", f"{seg['table_return']:.2f}",
                     f"{seg['constant_return']:.2f}", _fmt(seg["lift"], pct=True)])
    lines = [_table(head, rows, markdown), ""]

    seg_head = ["segment users \\ action of", *SEGMENT_NAMES]
    matrix = c["cross_segment_return_matrix"]["values"]
    seg_rows = [[name, *[f"{v:.2f}" for v in matrix[s]]] for s, name in enumerate(SEGMENT_NAMES)]
    # Markdown needs a blank line between a caption and its table.
    lines += ["(c) return/session of each segment's users under each segment's action (fresh users):",
              *([""] if markdown else []), _table(seg_head, seg_rows, markdown), ""]
    fusion_head = ["(c) per-segment fusion", *[f"{t} power/bias" for t in results["config"]["ranker_tasks"]]]
    fusion_rows = []
    for name, seg in c["per_segment"].items():
        fusion_rows.append([name, *[f"{p:+.2f}/{q:.3g}" for p, q in
                                    zip(seg["fusion"]["powers"].values(), seg["fusion"]["biases"].values())]])
    for label, key in (("best constant (b)", "long_horizon"), ("greedy (b)", "greedy")):
        fp = b[key]
        fusion_rows.append([label, *[f"{p:+.2f}/{q:.3g}" for p, q in zip(fp["powers"].values(),
                                                                          fp["biases"].values())]])
    lines += [_table(fusion_head, fusion_rows, markdown), ""]

    d_head = ["(d) constant fusion", "valid-view rate", "long-view rate", "like rate", "return/session"]
    d_rows = [[name, f"{v['valid_view']:.4f}", f"{v['long_view']:.4f}", f"{v['like']:.4f}", f"{v['return']:.2f}"]
              for name, v in d["fusions"].items()]
    d_rows += [[f"{name} (reference, not reachable by fusion)", f"{v['valid_view']:.4f}", f"{v['long_view']:.4f}",
                f"{v['like']:.4f}", f"{v['return']:.2f}"] for name, v in d["oracle_reference"].items()]
    lines += [_table(d_head, d_rows, markdown), ""]
    seen = {k: max(v[0] for v in hist) for k, hist in d["search_history"].items()}
    lines.append(f"(d) max valid-view rate through fusion on fresh users {d['max_valid_view_rate']:.4f} (largest "
                 f"seen by the search, in-sample: {seen['valid_view']:.4f}; ceiling {VALID_VIEW_CEILING}); max like "
                 f"rate {d['max_like_rate']:.4f} (in-sample {seen['like']:.4f}; ceiling {LIKE_CEILING})")
    if markdown:
        lines.append("")
    lines.append("verdicts: " + "; ".join(f"({k}) {'PASS' if results[k]['pass'] else 'FAIL'}" for k in "abcd"))
    return "\n".join(lines)


def _table(head: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(r, widths)) for r in [head, *rows])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller run (under a minute on 2 cores)")
    parser.add_argument("--seeds", type=int, help="fresh users (seeds) per arm in every evaluation; CIs are over them")
    parser.add_argument("--sessions", type=int, help="users per fitness evaluation of the session-return searches")
    parser.add_argument("--generations", type=int, help="CMA-ES generations per search")
    parser.add_argument("--popsize", type=int, help="CMA-ES population size")
    parser.add_argument("--base-seed", type=int, default=0, help="offset of every user seed and search seed")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--out", help="write every number (and the actions found) to this JSON file")
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL
    overrides = {"eval_sessions": args.seeds, "search_sessions": args.sessions, "generations": args.generations,
                 "popsize": args.popsize}
    budget = dataclasses.replace(budget, **{k: v for k, v in overrides.items() if v is not None})
    start = time.perf_counter()
    config = MTFSessionConfig(item_logs=True)
    seed = args.base_seed
    ev = Evaluator(SessionRunner(budget.eval_sessions, config), EVAL_SEED + seed, budget.resamples)
    timings: dict[str, float] = {}
    results: dict[str, Any] = {"command": "python -m mtf_bench.env_properties "
                               + " ".join(sys.argv[1:] if argv is None else argv),
                               "budget": dataclasses.asdict(budget), "config": config.to_dict()}
    t = time.perf_counter()
    results["a"] = property_a(ev, config, seed)
    timings["a"] = time.perf_counter() - t
    t = time.perf_counter()
    users = SearchUsers(config, budget.search_sessions, SEARCH_SEED + seed)
    results["b"], long, long_stats = property_b(ev, config, budget, seed, users)
    timings["b"] = time.perf_counter() - t
    t = time.perf_counter()
    results["c"] = property_c(ev, config, budget, seed, users, long, long_stats)
    timings["c"] = time.perf_counter() - t
    t = time.perf_counter()
    results["d"] = property_d(config, budget, seed, {"best constant for session return (b)": long})
    timings["d"] = time.perf_counter() - t
    results["timings_s"] = {**timings, "total": time.perf_counter() - start}
    print(report(results, args.markdown))
    if args.markdown:
        print()
    print(f"wall time {results['timings_s']['total']:.0f} s (" +
          ", ".join(f"({k}) {v:.0f} s" for k, v in timings.items()) + ")")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)
    return results


if __name__ == "__main__":
    main()

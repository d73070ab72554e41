"""Calibration of the simulator against KuaiRand-Pure feed exposure, and the v1 ranker's calibration and AUC.

    python -m mtf_bench.calibration [--sessions 8192] [--seed 0] [--markdown] [--version v1|v0] [--fit]

Rates are per shown item under the control policy (``BaselinePolicy``; for v1 the tuned production control). For
v1 it also prints the ranker's mean prediction / mean truth over every retrieved candidate, per task and per
segment, and the AUC of its predictions vs the AUC of the true probabilities over shown items. ``--fit`` adjusts
the v1 intercepts (hook bias, patience, engagement and hate biases) to the targets by damped fixed-point steps on
training users and prints the values to store in ``mtf_gym/sim/config.py``; ``--fit-ranker`` does the same for
the ranker's per-task calibration offsets.
"""

from __future__ import annotations

import argparse
import dataclasses
import math

import numpy as np

from mtf_gym import BaselinePolicy, MTFSessionConfig, RandomFusionPolicy
from mtf_gym.config import PREDICTABLE_TASKS, RESPONSE_FIELDS, SEGMENT_NAMES
from mtf_gym.evaluation import SessionRunner
from mtf_gym.sim.config import MTFSessionV1Config

__all__ = ["TARGETS", "TARGETS_V1", "CalibrationRun", "main", "measure_v1"]

# v0's per-exposure targets (baseline, random exposure), kept for the v0 table.
TARGETS: dict[str, tuple[float, float | None]] = {
    "valid_view": (0.45, 0.16),
    "long_view": (0.33, 0.08),
    "like": (0.0185, 0.0047),
    "comment": (0.0026, None),
    "follow": (0.00125, None),
    "share": (0.0009, None),
    "hate": (0.0005, None),
}
# KuaiRand-Pure feed exposure, per shown item ("forward" is the simulator's share). v1 must land within 10%.
TARGETS_V1: dict[str, float] = {
    "valid_view": 0.4597,
    "long_view": 0.3318,
    "like": 0.01848,
    "comment": 0.00255,
    "follow": 0.00107,
    "share": 0.00096,
    "hate": 0.00049,
    "long/valid": 0.72,
}
TOLERANCE = 0.10
FIT_SEED = 3_000_000  # --fit uses these users, never the evaluation users


@dataclasses.dataclass(frozen=True)
class CalibrationRun:
    """Per-exposure rates of one policy (``rates``, TARGETS_V1 keys) and the ranker diagnostics."""

    rates: dict[str, float]
    requests_mean: float
    cap_share: float
    ratio_by_task: dict[str, float]  # mean prediction / mean truth over candidates
    ratio_by_segment: dict[str, dict[str, float]]
    auc_prediction: dict[str, float]
    auc_truth: dict[str, float]


def measure_v1(config: MTFSessionV1Config, sessions: int, seed: int, *, ranker: bool = True) -> CalibrationRun:
    """Run ``sessions`` control sessions (users ``seed + i``) and measure rates and ranker diagnostics."""
    from mtf_gym.metrics import weighted_auc
    from mtf_gym.sim.diagnostics import candidate_truth

    config = dataclasses.replace(config, item_logs=True)
    runner = SessionRunner(sessions, config)
    sim = runner.env.sim
    t = config.num_tasks
    pred_sum = np.zeros((4, t))
    true_sum = np.zeros((4, t))
    shown_pred, shown_true, shown_outcome = [], [], []
    task_outcome = {"valid_view": "valid_view", "long_view": "long_view", "like": "like", "follow": "follow",
                    "comment": "comment", "share": "share"}
    step_candidates: dict[str, np.ndarray] = {}

    def before_step(rows: np.ndarray) -> None:
        # The ranker's candidates with predictions and true probabilities, in the state the step starts from.
        candidates, preds, truths = candidate_truth(sim, rows)
        step_candidates.update(candidates=candidates, preds=preds, truths=truths)
        seg = sim.segment[rows]
        for g in range(4):
            mask = seg == g
            pred_sum[g] += preds[mask].sum(axis=(0, 1))
            true_sum[g] += truths[mask].sum(axis=(0, 1))

    def after_step(rows: np.ndarray, info: dict) -> None:
        # Shown items are candidates: match them to get their true probabilities (state before the step).
        candidates, preds, truths = (step_candidates[k] for k in ("candidates", "preds", "truths"))
        shown = info["item_ids"][rows]
        position = np.argmax(candidates[:, None, :] == shown[:, :, None], axis=2)
        shown_pred.append(np.take_along_axis(preds, position[:, :, None], axis=1).reshape(-1, t))
        shown_true.append(np.take_along_axis(truths, position[:, :, None], axis=1).reshape(-1, t))
        shown_outcome.append(info["responses"][rows].reshape(-1, len(RESPONSE_FIELDS)))

    run = runner.run(BaselinePolicy(config), seed, before_step=before_step if ranker else None,
                     after_step=after_step if ranker else None)
    totals, exposures, requests = run.response_totals, run.exposures, run.requests
    rates = {name: float(totals[RESPONSE_FIELDS.index(name)] / exposures)
             for name in TARGETS_V1 if name != "long/valid"}
    rates["long/valid"] = rates["long_view"] / rates["valid_view"]
    tasks = config.ranker_tasks
    ratio_by_task, ratio_by_segment, auc_pred, auc_true = {}, {}, {}, {}
    if ranker:
        ratio_by_task = {task: float(pred_sum[:, k].sum() / true_sum[:, k].sum()) for k, task in enumerate(tasks)}
        ratio_by_segment = {SEGMENT_NAMES[g]: {task: float(pred_sum[g, k] / true_sum[g, k])
                                               for k, task in enumerate(tasks)} for g in range(4)}
        p, q, o = np.concatenate(shown_pred), np.concatenate(shown_true), np.concatenate(shown_outcome)
        for k, task in enumerate(tasks):
            if task in task_outcome:
                y = o[:, RESPONSE_FIELDS.index(task_outcome[task])]
                auc_pred[task] = float(weighted_auc(y, p[:, k]))
                auc_true[task] = float(weighted_auc(y, q[:, k]))
    return CalibrationRun(rates, float(requests.mean()), float((requests >= config.max_requests).mean()),
                          ratio_by_task, ratio_by_segment, auc_pred, auc_true)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def fit_intercepts(config: MTFSessionV1Config, sessions: int, iterations: int = 6) -> MTFSessionV1Config:
    """Damped fixed-point fit of the v1 intercepts to :data:`TARGETS_V1` under the control, on users of
    :data:`FIT_SEED` (the control itself stays fixed)."""
    cfg = config
    for it in range(iterations):
        run = measure_v1(cfg, sessions, FIT_SEED, ranker=False)
        r = run.rates
        pop, dyn = cfg.population, cfg.dynamics
        d_hook = 0.9 * (_logit(TARGETS_V1["valid_view"]) - _logit(r["valid_view"]))
        d_patience = 0.8 * (_logit(TARGETS_V1["long/valid"]) - _logit(r["long/valid"]))
        pop = dataclasses.replace(pop, hook_bias=tuple(h + d_hook for h in pop.hook_bias),
                                  patience_s=tuple(p * math.exp(d_patience) for p in pop.patience_s))
        dyn = dataclasses.replace(dyn, **{f"{name}_bias": getattr(dyn, f"{name}_bias")
                                          + 0.9 * math.log(TARGETS_V1[name] / r[name])
                                          for name in ("like", "comment", "follow", "share", "hate")})
        cfg = dataclasses.replace(cfg, population=pop, dynamics=dyn)
        print(f"fit {it + 1}/{iterations}: " + ", ".join(f"{k} {v:.5f}" for k, v in r.items()), flush=True)
    return cfg


def fit_ranker(config: MTFSessionV1Config, sessions: int, iterations: int = 3) -> MTFSessionV1Config:
    """Per-segment, per-task log calibration offsets so that mean prediction / mean truth over candidates is 1
    (tasks outside ``ranker_tasks`` keep their offsets)."""
    cfg = config
    for _ in range(iterations):
        run = measure_v1(cfg, sessions, FIT_SEED)
        offsets = [list(row) for row in cfg.ranker.calibration_offset]
        for g, name in enumerate(SEGMENT_NAMES):
            for task, ratio in run.ratio_by_segment[name].items():
                offsets[g][PREDICTABLE_TASKS.index(task)] -= math.log(ratio)
        cfg = dataclasses.replace(cfg, ranker=dataclasses.replace(cfg.ranker, calibration_offset=tuple(
            tuple(row) for row in offsets)))
        print("ranker ratios:", {k: round(v, 4) for k, v in run.ratio_by_task.items()}, flush=True)
    return cfg


def print_v1(run: CalibrationRun, markdown: bool) -> None:
    print("| behaviour (per exposure) | control | KuaiRand-Pure | relative error | within 10% |")
    print("|---|---|---|---|---|")
    for name, target in TARGETS_V1.items():
        value = run.rates[name]
        err = value / target - 1.0
        print(f"| {name} | {value:.5f} | {target:.5f} | {err:+.1%} | {'yes' if abs(err) <= TOLERANCE else 'NO'} |")
    print(f"\nrequests per session {run.requests_mean:.2f}; sessions reaching the request cap {run.cap_share:.2%}")
    if run.ratio_by_task:
        tasks = list(run.ratio_by_task)
        print("\nRanker: mean prediction / mean truth over every retrieved candidate\n")
        print("| segment | " + " | ".join(tasks) + " |")
        print("|---" * (len(tasks) + 1) + "|")
        print("| all | " + " | ".join(f"{run.ratio_by_task[t]:.3f}" for t in tasks) + " |")
        for seg, ratios in run.ratio_by_segment.items():
            print(f"| {seg} | " + " | ".join(f"{ratios[t]:.3f}" for t in tasks) + " |")
        print("\nAUC over shown items: the ranker's prediction vs the user's true probability\n")
        print("| task | AUC of prediction | AUC of true probability |")
        print("|---|---|---|")
        for task in run.auc_prediction:
            print(f"| {task} | {run.auc_prediction[task]:.4f} | {run.auc_truth[task]:.4f} |")


def _print_v0(sessions: int, seed: int, markdown: bool) -> None:
    config = MTFSessionConfig()
    base = SessionRunner(sessions, config).run(BaselinePolicy(config), seed)
    rand = SessionRunner(sessions, config).run(RandomFusionPolicy(config.action_dim, np.random.default_rng(seed)),
                                               seed)
    print("| behaviour (per exposure) | baseline | KuaiRand | random fusion | KuaiRand random |")
    print("|---|---|---|---|---|")
    for name, (target_base, target_rand) in TARGETS.items():
        tr = "-" if target_rand is None else f"{target_rand:.4f}"
        print(f"| {name} | {base.rate(name):.4f} | {target_base:.4f} | {rand.rate(name):.4f} | {tr} |")
    print(f"\nreturn per session: baseline {base.returns.mean():.2f}; random fusion {rand.returns.mean():.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=8192, help="sessions (users) per policy (default 8192)")
    parser.add_argument("--seed", type=int, default=0, help="first user seed (default 0)")
    parser.add_argument("--markdown", action="store_true", help="Markdown tables (the default output is Markdown too)")
    parser.add_argument("--version", choices=("v1", "v0"), default="v1", help="environment version (default v1)")
    parser.add_argument("--fit", action="store_true", help="fit the v1 intercepts and print them")
    parser.add_argument("--fit-ranker", action="store_true", help="fit the v1 ranker calibration offsets")
    parser.add_argument("--fit-iterations", type=int, default=6, help="fixed-point steps of --fit (default 6)")
    args = parser.parse_args(argv)
    if args.sessions < 1:
        parser.error(f"--sessions must be >= 1, got {args.sessions}")
    if args.version == "v0":
        _print_v0(args.sessions, args.seed, args.markdown)
        return
    config = MTFSessionV1Config()
    if args.fit:
        config = fit_intercepts(config, args.sessions, args.fit_iterations)
        print("population.hook_bias =", tuple(round(v, 3) for v in config.population.hook_bias))
        print("population.patience_s =", tuple(round(v, 2) for v in config.population.patience_s))
        print({f"{n}_bias": round(getattr(config.dynamics, f"{n}_bias"), 3)
               for n in ("like", "comment", "follow", "share", "hate")})
    if args.fit_ranker:
        config = fit_ranker(config, args.sessions, args.fit_iterations)
        print("ranker.calibration_offset =", tuple(tuple(round(v, 4) for v in row)
                                                   for row in config.ranker.calibration_offset))
    print_v1(measure_v1(config, args.sessions, args.seed), args.markdown)


if __name__ == "__main__":
    main()

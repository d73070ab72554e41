"""Ablation of IntegratedRL's critic sets q and critics per set m (and of paper readings): cost and online return.

The later paper version trains q sets of m independent critics, one set per reward component, and leaves the
trade-off between q, m and cost open ("the number of sets (q) and the number of critics per set (m) need to balance
performance and cost"). This script measures it in the simulator, in one process:

1. collect one bounded-uniform dataset (+-0.15 around the baseline policy) with per-group rewards
   (consumption / interaction / negative, ``mtf_gym.datasets.REWARD_GROUPS``);
2. for every (q, m) in ``--sets`` x ``--critics`` train IntegratedRL (paper defaults otherwise) for ``--steps``
   gradient steps on that dataset, timing wall clock and this process's CPU time (``updates/s`` per CPU second is
   robust to other jobs on a shared machine when ``--threads 1``);
3. score every learned policy and the baseline policy on the same ``--eval-sessions`` fresh users (common random
   numbers) and report the return lift over the baseline.

Every (q, m) cell is repeated for each seed in ``--seeds`` (dataset and training seeded alike). ``--variant
NAME:KEY=VALUE,...`` adds config variants (e.g. ``noise:target_noise=0.2``, ``alpha_eta:actor_band_weight=alpha``,
``subtractive:critic_penalty=subtractive``) run in every cell next to the defaults; values are parsed as JSON, else
kept as strings. Results go to ``--out`` as JSON (written atomically) and are printed as a Markdown table with the
budget in its caption (lift: mean over seeds, [min, max] across seeds).

Usage (from the repository root; the defaults are a small CPU budget, the paper's sizes are
``--hidden 256 256 --steps 300000``)::

    python -m benchmarks.ablation_integrated_rl_sets [--sets 1 3] [--critics 2 8 24] [--steps 300] [--sessions 600]
        [--eval-sessions 400] [--hidden 64 64] [--seeds 0] [--threads N] [--variant NAME:KEY=VALUE,...]
        [--out results/irl_sets.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import d3rlpy
import numpy as np
import structlog
import torch
from d3rlpy.logging import NoopAdapterFactory
from d3rlpy.models import VectorEncoderFactory

from agents.integrated_rl import IntegratedRLConfig, to_banded_dataset
from mtf_gym.config import MTFSessionConfig
from mtf_gym.datasets import RecipeConfig, collect_recipe
from mtf_gym.evaluation import simulate_sessions
from mtf_gym.policies import BaselinePolicy

EVAL_USER_SEED = 10_000_000  # disjoint from the collection's users


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``"name:key=value,key=value"`` -> (name, overrides); values as JSON where they parse, else strings."""
    name, _, body = text.partition(":")
    overrides: dict[str, Any] = {}
    for item in filter(None, body.split(",")):
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"--variant items must be KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    if not name:
        raise argparse.ArgumentTypeError(f"--variant needs NAME:KEY=VALUE,..., got {text!r}")
    try:
        IntegratedRLConfig(**overrides)  # fail on a bad field before any training
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"--variant {name}: {exc}") from exc
    return name, overrides


def run_cell(
    dataset: Any, q: int, m: int, steps: int, hidden: list[int], seed: int, config: MTFSessionConfig,
    eval_sessions: int, baseline_return: float, variant: tuple[str, dict[str, Any]],
) -> dict[str, Any]:
    encoder = VectorEncoderFactory(hidden_units=hidden)
    d3rlpy.seed(seed)
    algo = IntegratedRLConfig(
        n_critics=m, num_critic_sets=q, actor_encoder_factory=encoder, critic_encoder_factory=encoder, **variant[1]
    ).create(device="cpu:0")
    start, cpu_start = time.perf_counter(), time.process_time()
    algo.fit(dataset, n_steps=steps, n_steps_per_epoch=steps, logger_adapter=NoopAdapterFactory(),
             show_progress=False)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    scores = simulate_sessions(algo.predict, eval_sessions, EVAL_USER_SEED, config).means()
    return {
        "variant": variant[0], "overrides": variant[1], "q": q, "m": m, "critics": q * m, "seed": seed,
        "steps": steps, "train_wall_s": wall, "train_cpu_s": cpu,
        "updates_per_s": steps / wall, "updates_per_cpu_s": steps / cpu, "return": scores["return"],
        "return_lift_pct": 100.0 * (scores["return"] / baseline_return - 1.0),
    }


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f, indent=1)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=int, nargs="+", default=[1, 3], help="values of q (3 = one set per group)")
    parser.add_argument("--critics", type=int, nargs="+", default=[2, 8, 24], help="values of m (critics per set)")
    parser.add_argument("--steps", type=int, default=300, help="gradient steps per cell")
    parser.add_argument("--sessions", type=int, default=600, help="sessions in the training dataset")
    parser.add_argument("--eval-sessions", type=int, default=400, help="fresh users per evaluated policy")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64], help="MLP widths (paper: 256 256)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--variant", type=parse_variant, action="append", default=[],
                        help="config variant NAME:KEY=VALUE,... (repeatable); the defaults always run")
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    args = parser.parse_args(argv)
    variants = [("default", {}), *args.variant]
    # d3rlpy logs every fit's parameters and metrics at INFO through structlog; keep the output readable.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if any(q not in (1, 3) for q in args.sets):
        parser.error("--sets takes 1 (scalar reward) or 3 (one set per reward group: consumption, interaction, "
                     "negative)")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = MTFSessionConfig()
    baseline_return = simulate_sessions(BaselinePolicy(config), args.eval_sessions, EVAL_USER_SEED, config).means()[
        "return"]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for seed in args.seeds:
        data = collect_recipe(RecipeConfig("uniform", sessions=args.sessions, seed=seed, env=config), progress=False)
        dataset = to_banded_dataset(data)
        for q in args.sets:
            for m in args.critics:
                for variant in variants:
                    rows.append(run_cell(dataset, q, m, args.steps, args.hidden, seed, config, args.eval_sessions,
                                         baseline_return, variant))
                    r = rows[-1]
                    print(f"seed {seed} q={q} m={m} {variant[0]}: {r['train_wall_s']:.1f} s wall, "
                          f"{r['updates_per_cpu_s']:.1f} updates/CPU-s, return lift {r['return_lift_pct']:+.2f}%",
                          flush=True)
    budget = {
        "sessions": args.sessions, "steps": args.steps, "hidden": args.hidden, "eval_sessions": args.eval_sessions,
        "seeds": args.seeds, "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "total_wall_s": time.perf_counter() - started, "baseline_return": baseline_return,
    }
    if args.out:
        write_json_atomic(args.out, {"budget": budget, "cells": rows})
    print(f"\nBudget: {args.sessions} training sessions (bounded-uniform +-0.15), {args.steps} gradient steps, "
          f"{'x'.join(map(str, args.hidden))} MLPs, batch 256, {args.eval_sessions} evaluation users, seeds "
          f"{args.seeds}, {budget['torch_threads']} torch threads; total {budget['total_wall_s']:.0f} s wall")
    print("| variant | q | m | critics | train wall s | updates/s (wall) | updates/CPU-s | return lift vs baseline "
          "[min, max over seeds] |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for q in args.sets:
        for m in args.critics:
            for name, _ in variants:
                cell = [r for r in rows if r["q"] == q and r["m"] == m and r["variant"] == name]
                lifts = [r["return_lift_pct"] for r in cell]
                print(f"| {name} | {q} | {m} | {q * m} | {np.mean([r['train_wall_s'] for r in cell]):.1f} | "
                      f"{np.mean([r['updates_per_s'] for r in cell]):.1f} | "
                      f"{np.mean([r['updates_per_cpu_s'] for r in cell]):.1f} | "
                      f"{np.mean(lifts):+.2f}% [{min(lifts):+.2f}, {max(lifts):+.2f}] |")


if __name__ == "__main__":
    main()

"""Tune the MTFSession-v1 production control: a converged CMA-ES constant fusion on training users.

    python -m benchmarks.tune_control [--train-users 1024] [--generations 120] [--eval-users 8192]

Runs CMA-ES (``cma``) over the constant action on the session return of training users (seeds from
``benchmarks.headroom.TRAIN_SEED``), then an independent fresh search on other training users
(``SECOND_TRAIN_SEED``), and evaluates both on the evaluation users with a paired bootstrap. It prints the
``CONTROL_FUSION_V1`` block to store in ``mtf_gym/policies.py`` and whether the fresh search beats the tuned
constant by more than 1% (upper end of the 95% interval): the acceptance check of a converged control.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.headroom import (
    EVAL_SEED,
    SECOND_TRAIN_SEED,
    TRAIN_SEED,
    cma_search,
    constant_actor,
    rollout,
    user_keys,
)
from mtf_gym import BaselinePolicy
from mtf_gym.fusion import action_to_fusion_params
from mtf_gym.metrics import paired_lift_ci
from mtf_gym.sim.config import MTFSessionV1Config
from mtf_gym.sim.simulator import UserSimulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-users", type=int, default=1024)
    parser.add_argument("--generations", type=int, default=120)
    parser.add_argument("--eval-users", type=int, default=8192)
    parser.add_argument("--out", type=Path, default=Path("results/tune_control.json"))
    args = parser.parse_args(argv)
    config = MTFSessionV1Config()
    start = BaselinePolicy(config).action.astype(np.float64)

    def log(line: str) -> None:
        print(line, flush=True)

    tuned = cma_search(config, "constant", train_users=args.train_users, generations=args.generations, seed=11,
                       base=start, first_seed=TRAIN_SEED, log=log)
    fresh = cma_search(config, "constant", train_users=args.train_users, generations=args.generations, seed=12,
                       base=np.zeros(config.action_dim), first_seed=SECOND_TRAIN_SEED, sigma0=0.5, log=log)
    tuned_action = np.clip(tuned.base, -1, 1)
    fresh_action = np.clip(fresh.base, -1, 1)
    sim = UserSimulator(config, args.eval_users)
    keys = user_keys(EVAL_SEED, args.eval_users)
    r_tuned = rollout(sim, keys, constant_actor(tuned_action)).returns
    r_fresh = rollout(sim, keys, constant_actor(fresh_action)).returns
    r_current = rollout(sim, keys, constant_actor(start)).returns
    rng = np.random.default_rng(0)
    fresh_vs_tuned = paired_lift_ci(r_fresh, r_tuned, rng=rng)
    tuned_vs_current = paired_lift_ci(r_tuned, r_current, rng=rng)
    powers, biases = action_to_fusion_params(tuned_action, config.fusion)
    print("\nCONTROL_FUSION_V1: dict[str, tuple[float, float]] = {")
    for task, p, b in zip(config.ranker_tasks, powers, biases):
        print(f'    "{task}": ({float(p):.4g}, {float(b):.4g}),')
    print("}")
    print(f"tuned vs the current control: {tuned_vs_current.estimate:+.2%} "
          f"[{tuned_vs_current.low:+.2%}, {tuned_vs_current.high:+.2%}]")
    print(f"independent fresh search vs tuned: {fresh_vs_tuned.estimate:+.2%} "
          f"[{fresh_vs_tuned.low:+.2%}, {fresh_vs_tuned.high:+.2%}] -> "
          f"{'PASS' if fresh_vs_tuned.high <= 0.01 else 'FAIL'} (upper end <= +1%)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"tuned_action": tuned_action.tolist(), "fresh_action": fresh_action.tolist(),
                               "fresh_vs_tuned": fresh_vs_tuned.__dict__, "tuned_vs_current": tuned_vs_current.__dict__,
                               "train_users": args.train_users, "generations": args.generations}, indent=2))
    tmp.replace(args.out)


if __name__ == "__main__":
    main()

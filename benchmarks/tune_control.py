"""Tune the MTFSession-v1 production control: a converged CMA-ES constant fusion on training users.

    python -m mtf_bench.tune_control [--train-users 1024] [--generations 80] [--restarts 3]

The session return over constant fusions has several local optima, so the search restarts: one CMA-ES run
warm-started at the current ``CONTROL_FUSION_V1`` (step 0.3) and ``--restarts - 1`` runs from the centre of the box
(step 0.5), each on the training users (seeds from ``mtf_bench.headroom.TRAIN_SEED``). The winner is chosen on
separate validation users (``VALIDATION_SEED``), never on the evaluation users. The script prints the
``CONTROL_FUSION_V1`` block to store in ``mtf_gym/policies.py``. The independent check that the control is converged
(a fresh search on other users does not beat it by more than 1%) is the "best constant" rung of
``python -m mtf_bench.headroom``, on the evaluation users.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mtf_bench.headroom import TRAIN_SEED, cma_search, constant_actor, rollout
from mtf_gym import BaselinePolicy
from mtf_gym.evaluation import SessionRunner
from mtf_gym.fusion import action_to_fusion_params
from mtf_gym.metrics import paired_lift_ci
from mtf_gym.sim.config import MTFSessionV1Config

VALIDATION_SEED = 4_000_000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-users", type=int, default=1024)
    parser.add_argument("--generations", type=int, default=80)
    parser.add_argument("--restarts", type=int, default=3, help="CMA-ES runs (the first warm-started)")
    parser.add_argument("--validation-users", type=int, default=8192)
    parser.add_argument("--out", type=Path, default=Path("results/tune_control.json"))
    args = parser.parse_args(argv)
    for name in ("train_users", "generations", "restarts", "validation_users"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    config = MTFSessionV1Config()
    current = BaselinePolicy(config).action.astype(np.float64)

    def log(line: str) -> None:
        print(line, flush=True)

    candidates = {"current control": current}
    for r in range(args.restarts):
        start, sigma = (current, 0.3) if r == 0 else (np.zeros(config.action_dim), 0.5)
        found = cma_search(config, "constant", train_users=args.train_users, generations=args.generations,
                           seed=11 + r, base=start, first_seed=TRAIN_SEED, sigma0=sigma, log=log)
        candidates[f"restart {r} ({'warm' if r == 0 else 'centre'})"] = np.clip(found.base, -1, 1)
    runner = SessionRunner(args.validation_users, config)
    returns = {name: rollout(runner, VALIDATION_SEED, constant_actor(a)).returns for name, a in candidates.items()}
    winner = max(returns, key=lambda name: returns[name].mean())
    print(f"\nvalidation users (seeds {VALIDATION_SEED}..): mean session return")
    for name, r in returns.items():
        print(f"  {name}: {r.mean():.3f}{'  <- winner' if name == winner else ''}")
    lift = paired_lift_ci(returns[winner], returns["current control"], rng=np.random.default_rng(0))
    powers, biases = action_to_fusion_params(candidates[winner], config.fusion)
    print("\nCONTROL_FUSION_V1: dict[str, tuple[float, float]] = {")
    for task, p, b in zip(config.ranker_tasks, powers, biases):
        print(f'    "{task}": ({float(p):.4g}, {float(b):.4g}),')
    print("}")
    print(f"winner vs the current control (validation users): {lift.estimate:+.2%} [{lift.low:+.2%}, "
          f"{lift.high:+.2%}]")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"winner": winner, "actions": {k: v.tolist() for k, v in candidates.items()},
                               "validation_means": {k: float(v.mean()) for k, v in returns.items()},
                               "winner_vs_current": lift.__dict__, "train_users": args.train_users,
                               "generations": args.generations, "restarts": args.restarts}, indent=2))
    tmp.replace(args.out)


if __name__ == "__main__":
    main()

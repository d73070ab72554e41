"""Does every registered agent beat random fusion online? Train each at a small budget, then A/B it in the simulator.

    python -m mtf_bench.agents_vs_random [--agents bcq,es] [--sessions 3000] [--offline-steps 1000]
        [--online-steps 10000] [--hidden 64 64] [--eval-sessions 2000] [--out results.json]

Offline agents train on one bounded-uniform dataset (the paper's +-0.15 around the baseline fusion); online agents
train in the simulator for ``--online-steps`` requests. Every policy (random fusion, the baseline, each agent) is then
evaluated on the same ``--eval-sessions`` users (common random numbers, ``mtf_gym.evaluation.simulate_sessions``);
the lift in session return vs random fusion gets a paired bootstrap 95% CI (``mtf_gym.evaluation.lift_ci``). An
agent "beats random" when that CI lies above 0. Plug-ins in the registry are included automatically; the shared
settings (``hidden_units``, ``batch_size``: :class:`mtf_agents.base.SharedSettings`) go to every agent whose config
declares them.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch

import mtf_gym
from mtf_agents._quiet import d3rlpy_logs_quiet
from mtf_agents.base import SharedSettings
from mtf_agents.registry import get_registry
from mtf_gym import BaselinePolicy, RandomFusionPolicy
from mtf_gym.datasets import RecipeConfig, collect_recipe
from mtf_gym.envs.versions import SESSION_ENV_IDS, make_env_config
from mtf_gym.evaluation import SessionOutcomes, lift_ci, simulate_sessions
from mtf_gym.metrics import ConfidenceInterval, bootstrap_ci

# Evaluation users are far from the collection seeds' users (which derive from seed 0 via SeedSequence).
EVAL_USER_SEED = 10_000_000


def _verdict(ci: ConfidenceInterval) -> str:
    if ci.low > 0:
        return "beats"
    if ci.high < 0:
        return "worse"
    return "tie"


def _lift(ci: ConfidenceInterval) -> str:
    return f"{100 * ci.estimate:+.1f}% [{100 * ci.low:+.1f}, {100 * ci.high:+.1f}]"


def _value(ci: ConfidenceInterval) -> str:
    return f"{ci.estimate:.2f} [{ci.low:.2f}, {ci.high:.2f}]"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", default="", help="comma-separated registry names (default: every agent)")
    parser.add_argument("--sessions", type=int, default=3000, help="sessions in the offline dataset")
    parser.add_argument("--offline-steps", type=int, default=1000, help="gradient steps per offline agent")
    parser.add_argument("--online-steps", type=int, default=10000, help="simulator requests per online agent")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64], help="hidden_units of every network")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--eval-sessions", type=int, default=2000, help="evaluation users (same for every arm)")
    parser.add_argument("--seed", type=int, default=0, help="dataset and training seed")
    parser.add_argument("--env-id", default=mtf_gym.ENV_ID, choices=sorted(SESSION_ENV_IDS),
                        help=f"environment version (default {mtf_gym.ENV_ID})")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--out", default="", help="write the results as JSON here")
    args = parser.parse_args(argv)
    # d3rlpy logs every epoch's parameters and metrics at INFO through structlog; keep the table readable.
    with d3rlpy_logs_quiet():
        return _run(args)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    # Small networks gain nothing from intra-op threads, and on a shared small machine spinning threads cost ~5x.
    torch.set_num_threads(args.threads)

    registry = get_registry()
    # Every fusion agent by default (slate agents play MTFSlate-v0: not a fusion policy).
    names = [n.strip() for n in args.agents.split(",") if n.strip()] or registry.names(env=args.env_id)
    env = make_env_config(args.env_id)
    rng = np.random.default_rng(args.seed)
    print(f"collecting {args.sessions} bounded-uniform sessions ...", flush=True)
    data = collect_recipe(RecipeConfig("uniform", sessions=args.sessions, seed=args.seed, env=env), progress=False)
    print(f"  {len(data)} transitions, mean logged return {data.episode_returns().mean():.2f}", flush=True)

    def evaluate(policy: Any) -> SessionOutcomes:
        return simulate_sessions(policy, args.eval_sessions, EVAL_USER_SEED, env)

    random_arm = evaluate(RandomFusionPolicy(env.action_dim, np.random.default_rng(args.seed + 1)))
    arms: dict[str, SessionOutcomes] = {"baseline": evaluate(BaselinePolicy(env))}
    train_info: dict[str, dict[str, Any]] = {}
    for name in names:
        spec = registry.get(name)
        shared = SharedSettings(hidden_units=tuple(args.hidden), batch_size=args.batch_size)
        agent = spec.agent_class(spec.config_class.sharing(shared))
        steps = args.offline_steps if spec.kind == "offline" else args.online_steps
        print(f"training {name} ({spec.kind}, {steps} steps) ...", flush=True)
        start = time.perf_counter()
        if spec.kind == "offline":
            metrics = agent.fit(data, steps, seed=args.seed, show_progress=False)
        else:
            metrics = agent.fit_online(env, steps, seed=args.seed, show_progress=False)
        train_info[name] = {"kind": spec.kind, "source": spec.source, "steps": steps,
                            "train_s": time.perf_counter() - start, "metrics": metrics}
        arms[name] = evaluate(agent)

    results: dict[str, Any] = {
        "random_return": bootstrap_ci(random_arm.returns, rng=rng).as_dict(), "arms": {},
        "settings": vars(args), "dataset_transitions": len(data),
    }
    header = f"{'policy':<14} {'kind':<8} {'train s':>8}  {'return [95% CI]':<22} {'lift vs random':<26} " \
             f"{'verdict':<7} {'lift vs baseline':<26}"
    print("\n" + header + "\n" + "-" * len(header))
    print(f"{'random':<14} {'':<8} {'':>8}  {_value(bootstrap_ci(random_arm.returns, rng=rng)):<22}")
    for name, outcome in arms.items():
        ret = bootstrap_ci(outcome.returns, rng=rng)
        vs_random = lift_ci(outcome, random_arm, rng=rng)
        vs_base = lift_ci(outcome, arms["baseline"], rng=rng) if name != "baseline" else None
        info = train_info.get(name, {"kind": "", "train_s": None})
        train_s = "" if info["train_s"] is None else f"{info['train_s']:.0f}"
        print(f"{name:<14} {info['kind']:<8} {train_s:>8}  {_value(ret):<22} "
              f"{_lift(vs_random):<26} {_verdict(vs_random):<7} {_lift(vs_base) if vs_base else '':<26}", flush=True)
        results["arms"][name] = {**info, "return": ret.as_dict(), "lift_vs_random": vs_random.as_dict(),
                                 "beats_random": vs_random.low > 0,
                                 "lift_vs_baseline": vs_base.as_dict() if vs_base else None}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2, default=float)
    return results


if __name__ == "__main__":
    main()

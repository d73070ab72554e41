"""Settings of a slate agent checked on *validation* users, never the slate section's evaluation users.

    python -m mtf_bench.slate_validation tpgr --steps 20000 --seeds 0 1 --set learning_rate=3e-4 --set rollout_steps=32

Trains the agent (registry name, config overrides ``--set FIELD=VALUE`` in Python literal syntax) online on
``MTFSlate-v0`` exactly as the slate section of ``mtf-bench`` does (``mtf_bench.harness.slate``: same catalogue
size, ``hidden_units``, training seeds = the users of ``reset(seed=s)``), then plays one session of each validation
user: users ``VALIDATION_USER_SEED + i`` (5 * 10^8 + i), disjoint from the training users (seeds 0.. ) and from the
section's evaluation users (10^9 + i). Prints the mean session return of random pages and of the agent per seed, the
agent's lift over random, and how much its pages depend on the observation: the share of distinct pages among the
users' pages at a request, averaged over requests (1.0: every user gets their own page; 1 / users: one page for
all). This is how the on-policy defaults of ``fcpo`` / ``tpgr`` and the section's budgets
were chosen (docs/agents/slate.md, "Budgets and defaults").
"""

from __future__ import annotations

import argparse
import ast
import time
from collections.abc import Sequence

import numpy as np

VALIDATION_USER_SEED = 500_000_000


def validation_returns(agent_name: str, steps: int, seed: int, overrides: dict, *, num_items: int = 2000,
                       hidden_units: tuple[int, ...] = (64, 64), users: int = 300) -> tuple[np.ndarray, float, float]:
    """``(per-user session returns on the validation users, training seconds, distinct-page share)`` of one
    trained agent."""
    import gymnasium as gym
    import torch

    import mtf_gym  # noqa: F401  (registers the envs)
    from mtf_agents.registry import get_registry
    from mtf_bench.slate_properties import play_sessions

    torch.set_num_threads(1)
    agent = get_registry().build(agent_name, **{"hidden_units": hidden_units, **overrides})
    env = gym.make_vec("MTFSlate-v0", num_envs=agent.config.n_envs, num_items=num_items, expose_candidates=False)
    start = time.perf_counter()
    agent.fit_online(env, steps, seed=seed, show_progress=False)
    seconds = time.perf_counter() - start
    env.close()
    val = gym.make_vec("MTFSlate-v0", num_envs=users, num_items=num_items, expose_candidates=False)
    distinct: list[float] = []

    def policy(obs: np.ndarray, info: dict, live: np.ndarray) -> np.ndarray:
        pages = agent.act(obs)
        if live.sum() > 1:
            distinct.append(len(np.unique(np.sort(pages[live], axis=1), axis=0)) / live.sum())
        return pages

    returns = play_sessions(val, policy, VALIDATION_USER_SEED)
    val.close()
    return returns, seconds, float(np.mean(distinct)) if distinct else float("nan")


def random_returns(*, num_items: int = 2000, users: int = 300) -> np.ndarray:
    import gymnasium as gym

    import mtf_gym  # noqa: F401
    from mtf_bench.slate_properties import play_sessions
    from mtf_gym.slate import RandomSlatePolicy

    env = gym.make_vec("MTFSlate-v0", num_envs=users, num_items=num_items, expose_candidates=False)
    policy = RandomSlatePolicy(num_items, env.unwrapped.page_size, np.random.default_rng(VALIDATION_USER_SEED))
    returns = play_sessions(env, lambda obs, info, live: policy(obs), VALIDATION_USER_SEED)
    env.close()
    return returns


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtf_bench.slate_validation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("agent", help="registry name of an MTFSlate-v0 agent")
    parser.add_argument("--steps", type=int, default=2000, help="training requests (default 2000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default 0)")
    parser.add_argument("--num-items", type=int, default=2000)
    parser.add_argument("--users", type=int, default=300, help="validation users (default 300)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="assignments",
                        help="config override (Python literal), repeatable")
    args = parser.parse_args(argv)
    overrides = {}
    for expr in args.assignments:
        key, sep, value = expr.partition("=")
        if not sep:
            parser.error(f"--set expects FIELD=VALUE, got {expr!r}")
        try:
            overrides[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            overrides[key.strip()] = value.strip()  # a bare string, e.g. tree_method=kmeans
    rand = random_returns(num_items=args.num_items, users=args.users).mean()
    print(f"random: {rand:.2f} (validation users {VALIDATION_USER_SEED}..{VALIDATION_USER_SEED + args.users - 1})")
    for seed in args.seeds:
        returns, seconds, distinct = validation_returns(args.agent, args.steps, seed, overrides,
                                                        num_items=args.num_items, users=args.users)
        print(f"{args.agent} seed {seed}, {args.steps} requests {overrides}: return {returns.mean():.2f}, "
              f"lift over random {100 * (returns.mean() / rand - 1):+.0f}%, distinct pages {distinct:.2f}, "
              f"train {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

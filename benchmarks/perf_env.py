"""Speed and memory of MTFSession-v1 and v0 side by side, measured (a report, not a timed test).

    python -m mtf_bench.perf_env [--seconds 1] [--rounds 5] [--quick] [--markdown] [--out perf.json]

* single env: steps/s of ``gym.make("MTFSession-v0")`` (with and without ``item_logs``) as a ratio to
  ``gym.make("CartPole-v1")`` made the same way in the same process (both keep Gymnasium's default wrappers),
  random actions drawn up front, reset on episode end;
* vector env: user-steps/s (``num_envs * steps / s``) of ``gym.make_vec("MTFSession-v0", num_envs=N)`` with the
  baseline policy's actions, autoreset included;
* memory of a 1024-user vector env: the ``nbytes`` of every NumPy buffer the simulator holds, and the tracemalloc
  peak while constructing it, resetting it and stepping it a few times.

Each rate is the median of ``--rounds`` timed rounds of about ``--seconds`` each; the rounds of all measurements are
interleaved, so a slow drift of a shared machine affects every row alike, and the min-max column shows the noise.
Targets (2 CPU cores): single >= 10,000 steps/s, vector >= 300,000 user-steps/s; v1 at least 0.9x v0's rate
(single env and vector env at N = 1024), printed as ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

import mtf_gym
from mtf_gym import BaselinePolicy
from mtf_gym.sim.simulator import UserSimulator
from mtf_gym.simulator import SessionSimulator

SINGLE_TARGET = 10_000.0
VECTOR_TARGET = 300_000.0
_ACTION_BUFFER = 4096  # random actions drawn before timing, cycled through


Round = Callable[[float], float]  # run for about ``budget`` seconds, return the rate


def single_env_round(env_id: str, **kwargs: Any) -> Round:
    """Steps/s of one ``gym.make(env_id, **kwargs)`` env under random actions, resetting on episode end."""
    env = gym.make(env_id, **kwargs)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(_ACTION_BUFFER)]
    env.reset(seed=0)

    def run_round(budget: float) -> float:
        steps, start = 0, time.perf_counter()
        while True:
            # Check the clock every 256 steps so timing overhead stays out of the rate.
            for _ in range(256):
                _, _, terminated, truncated, _ = env.step(actions[steps % _ACTION_BUFFER])
                steps += 1
                if terminated or truncated:
                    env.reset()
            elapsed = time.perf_counter() - start
            if elapsed >= budget:
                return steps / elapsed

    return run_round


def vector_env_round(num_envs: int, item_logs: bool, env_id: str = mtf_gym.ENV_ID) -> Round:
    """User-steps/s of ``gym.make_vec(env_id, num_envs)`` driven by the control (``BaselinePolicy``)."""
    env = gym.make_vec(env_id, num_envs=num_envs, item_logs=item_logs)
    policy = BaselinePolicy(env.unwrapped.config)
    obs, _ = env.reset(seed=0)

    def run_round(budget: float) -> float:
        nonlocal obs
        steps, start = 0, time.perf_counter()
        while True:
            obs, *_ = env.step(policy(obs))
            steps += 1
            elapsed = time.perf_counter() - start
            if elapsed >= budget:
                return num_envs * steps / elapsed

    return run_round


def interleaved_rates(rounds_by_name: dict[str, Round], seconds: float, rounds: int) -> dict[str, list[float]]:
    """Every measurement once per round, ``rounds`` times: slow drifts of a shared machine hit all of them alike."""
    for run_round in rounds_by_name.values():
        run_round(min(seconds, 0.2))  # warm-up: caches, lazy imports, first reset
    samples: dict[str, list[float]] = {name: [] for name in rounds_by_name}
    for _ in range(rounds):
        for name, run_round in rounds_by_name.items():
            samples[name].append(run_round(seconds))
    return samples


def simulator_buffer_bytes(sim: SessionSimulator | UserSimulator) -> dict[str, int]:
    """``nbytes`` of the NumPy arrays a simulator holds: per-user state, scratch and item tables; the catalogue."""
    def arrays_of(obj: object) -> int:
        values = list(vars(obj).values())
        for v in list(values):
            if isinstance(v, tuple):  # the v1 simulator's named-tuple structures
                values.extend(v)
        return sum(v.nbytes for v in values if isinstance(v, np.ndarray))

    return {"simulator": arrays_of(sim), "catalogue": arrays_of(sim.catalogue)}


def vector_env_memory(num_envs: int, steps: int = 5, env_id: str = mtf_gym.ENV_ID) -> dict[str, int]:
    """tracemalloc peak of building, resetting and stepping a vector env, plus its buffers' ``nbytes``."""
    tracemalloc.start()
    try:
        env = gym.make_vec(env_id, num_envs=num_envs)
        policy = BaselinePolicy(env.unwrapped.config)
        obs, _ = env.reset(seed=0)
        for _ in range(steps):
            obs, *_ = env.step(policy(obs))
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {"tracemalloc_peak": peak, "tracemalloc_current": current, **simulator_buffer_bytes(env.unwrapped.sim)}


def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one timed round (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds; median reported (default 5)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 1024, 4096], help="vector env sizes")
    parser.add_argument("--quick", action="store_true", help="0.3 s rounds, two rounds each")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--out", help="write every number to this JSON file")
    args = parser.parse_args(argv)
    seconds, rounds = (0.3, 2) if args.quick else (args.seconds, args.rounds)
    wall = time.perf_counter()

    versions = (mtf_gym.ENV_ID, mtf_gym.ENV_ID_V0)
    single_names = {"CartPole-v1": ("CartPole-v1", {})}
    for env_id in versions:
        for logs in (True, False):
            single_names[f"{env_id} (item_logs={logs})"] = (env_id, {"item_logs": logs})
    vector_keys = [(env_id, n, logs) for env_id in versions for n in args.sizes for logs in (True, False)]
    runs: dict[str, Round] = {name: single_env_round(env_id, **kw) for name, (env_id, kw) in single_names.items()}
    runs.update({f"{env_id} N={n}, item_logs={logs}": vector_env_round(n, logs, env_id)
                 for env_id, n, logs in vector_keys})
    samples = interleaved_rates(runs, seconds, rounds)
    rate = {name: statistics.median(values) for name, values in samples.items()}
    single = {name: rate[name] for name in single_names}
    vector = {key: rate[f"{key[0]} N={key[1]}, item_logs={key[2]}"] for key in vector_keys}
    memory = {env_id: vector_env_memory(1024, env_id=env_id) for env_id in versions}

    md = args.markdown
    sep = " | " if md else "  "

    def row(cells: list[str]) -> str:
        return ("| " + sep.join(cells) + " |") if md else sep.join(f"{c:>32}" if i == 0 else f"{c:>16}"
                                                                  for i, c in enumerate(cells))

    def header(cells: list[str]) -> None:
        print(row(cells))
        if md:
            print("|" + "---|" * len(cells))

    def spread(name: str) -> str:
        return f"{_fmt_rate(min(samples[name]))}-{_fmt_rate(max(samples[name]))}"

    cartpole = single["CartPole-v1"]
    header(["single env (gym.make)", "steps/s (median)", "min-max over rounds", "vs CartPole-v1", "vs target 10k"])
    for name, r in single.items():
        print(row([name, _fmt_rate(r), spread(name), f"{r / cartpole:.3f}x", f"{r / SINGLE_TARGET:.2f}x"]))
    print()
    header(["vector env (gym.make_vec)", "user-steps/s (median)", "min-max over rounds", "env steps/s",
            "vs target 300k"])
    for (env_id, n, logs), r in vector.items():
        name = f"{env_id} N={n}, item_logs={logs}"
        print(row([name, _fmt_rate(r), spread(name), _fmt_rate(r / n), f"{r / VECTOR_TARGET:.2f}x"]))
    print()
    mib = 1 << 20
    header(["memory, 1024-user vector env", "MiB"])
    for env_id, parts in memory.items():
        for name, value in parts.items():
            print(row([f"{env_id} {name}", f"{value / mib:.1f}"]))
    print()
    header(["v1 / v0 (same run)", "item_logs=True", "item_logs=False", "must be >= 0.9x"])
    new, old = versions
    ratios = {"single env": [single[f"{new} (item_logs={lg})"] / single[f"{old} (item_logs={lg})"]
                             for lg in (True, False)]}
    if 1024 in args.sizes:
        ratios["vector env N=1024"] = [vector[(new, 1024, lg)] / vector[(old, 1024, lg)] for lg in (True, False)]
    for name, (with_logs, without) in ratios.items():
        ok = min(with_logs, without) >= 0.9
        print(row([name, f"{with_logs:.3f}x", f"{without:.3f}x", "met" if ok else "NOT met"]))
    best_single = max(v for k, v in single.items() if k.startswith("MTF"))
    best_vector = max(vector.values())
    print()
    print(f"single-env target (>= {SINGLE_TARGET:,.0f} steps/s): {'met' if best_single >= SINGLE_TARGET else 'NOT met'}"
          f" (best {best_single:,.0f}); vector target (>= {VECTOR_TARGET:,.0f} user-steps/s): "
          f"{'met' if best_vector >= VECTOR_TARGET else 'NOT met'} (best {best_vector:,.0f})")
    if md:
        print()
    machine = {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gymnasium": gym.__version__,
        "mtf_gym": mtf_gym.__version__,
    }
    print(f"machine: {machine}; wall time {time.perf_counter() - wall:.1f} s")
    if args.out:
        result = {
            "machine": machine,
            "seconds_per_round": seconds,
            "rounds": rounds,
            "single_steps_per_s": single,
            "vector_user_steps_per_s": [
                {"env_id": env_id, "num_envs": n, "item_logs": logs, "rate": r}
                for (env_id, n, logs), r in vector.items()
            ],
            "v1_over_v0": ratios,
            "samples_per_round": samples,
            "memory_bytes_1024_users": memory,
            "targets": {"single": SINGLE_TARGET, "vector": VECTOR_TARGET},
        }
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()

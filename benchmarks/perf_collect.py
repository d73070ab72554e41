"""Collection throughput and on-disk size of exploration datasets.

Reports, for the baseline policy with item logs on and off:

- ``tr/s``: transitions recorded per second by :func:`mtf_gym.datasets.collect` for an exact session budget (best
  of ``--repeats``);
- the time spent inside ``MTFSessionVectorEnv.step`` during that collection (timed in the same run), the env's
  rows/s, and ``rows/tr``: env rows stepped per recorded transition (autoreset steps, and the tail where finished
  slots idle while the last admitted sessions end); ``overhead`` is the share of the time outside ``env.step``
  (behaviour policy, bookkeeping, final gather, validation);
- the raw ``MTFSessionVectorEnv`` rate (user-steps/s) with constant baseline actions;

and, for a ``--disk-sessions`` bounded-uniform dataset saved with :func:`mtf_gym.datasets.save_dataset`: bytes per
transition (HDF5, sidecar, total), save and load time, with item logs on/off and with the default contiguous HDF5
rewrite (``compact=True``) vs Minari's chunked layout (``compact=False``).

Usage: ``python benchmarks/perf_collect.py [--sessions 60000] [--num-envs 1024] [--repeats 3]
[--disk-sessions 5000] [--json PATH]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere in the checkout

from mtf_gym import BaselinePolicy, MTFSessionConfig, MTFSessionVectorEnv
from mtf_gym.datasets import collect, load_dataset, save_dataset
from mtf_gym.exploration import BoundedUniform


def env_rate(config: MTFSessionConfig, num_envs: int, steps: int) -> float:
    """Raw vector-env user-steps per second under constant baseline actions."""
    env = MTFSessionVectorEnv(num_envs, config=config)
    env.reset(seed=0)
    actions = BaselinePolicy(config)(np.zeros((num_envs, 18), np.float32))
    for _ in range(3):
        env.step(actions)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(actions)
    return num_envs * steps / (time.perf_counter() - start)


class _EnvClock:
    """Times ``MTFSessionVectorEnv.step`` inside a collection, so env time and collector overhead come from the
    same run (on a shared machine, separate runs see different loads)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._step = MTFSessionVectorEnv.step

    def __enter__(self) -> _EnvClock:
        clock, step = self, self._step

        def timed(env: MTFSessionVectorEnv, actions: np.ndarray):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return step(env, actions)
            finally:
                clock.seconds += time.perf_counter() - start

        MTFSessionVectorEnv.step = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        MTFSessionVectorEnv.step = self._step  # type: ignore[method-assign]


def collect_rate(config: MTFSessionConfig, sessions: int, num_envs: int, repeats: int, behaviour: str) -> dict:
    best: dict = {}
    for r in range(repeats):
        policy = BaselinePolicy(config)
        if behaviour == "uniform":
            policy = BoundedUniform(policy, rng=np.random.default_rng(r))
        with _EnvClock() as clock:
            start = time.perf_counter()
            data = collect(policy, sessions=sessions, seed=r, config=config, num_envs=num_envs, progress=False)
            seconds = time.perf_counter() - start
        if not best or seconds < best["seconds"]:
            n, steps = len(data), data.metadata["env_steps"]
            rows = steps * min(num_envs, sessions)
            best = {"transitions": n, "seconds": seconds, "rate": n / seconds, "env_steps": steps,
                    "env_rows_per_transition": rows / n, "env_seconds": clock.seconds,
                    "env_rows_per_s": rows / clock.seconds, "overhead_share": 1 - clock.seconds / seconds}
    return best


def disk_usage(config: MTFSessionConfig, sessions: int, num_envs: int, compact: bool) -> dict:
    data = collect(BoundedUniform(BaselinePolicy(config), rng=np.random.default_rng(0)), sessions=sessions, seed=0,
                   config=config, num_envs=num_envs, progress=False)
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        path = save_dataset(data, root, "mtf/perf-v0", compact=compact)
        save_s = time.perf_counter() - start
        start = time.perf_counter()
        back = load_dataset("mtf/perf-v0", root)
        load_s = time.perf_counter() - start
        assert back.content_hash() == data.content_hash()
        sizes = {f.name: f.stat().st_size for f in (path / "data").iterdir()}
    total = sum(sizes.values())
    raw = sum(arr.nbytes for arr in data.arrays().values())
    n = len(data)
    return {"sessions": sessions, "transitions": n, "bytes": sizes, "bytes_per_transition": total / n,
            "hdf5_bytes_per_transition": sizes["main_data.hdf5"] / n,
            "sidecar_bytes_per_transition": sizes.get("mtf_item_logs.npz", 0) / n,
            "in_memory_bytes_per_transition": raw / n, "save_s": save_s, "load_s": load_s,
            "save_ms_per_session": 1e3 * save_s / sessions, "load_ms_per_session": 1e3 * load_s / sessions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=60_000, help="session budget per timed collection")
    parser.add_argument("--num-envs", type=int, default=1024, help="sessions stepped in parallel")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (best is reported)")
    parser.add_argument("--disk-sessions", type=int, default=5000, help="sessions of the dataset saved to disk")
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args(argv)

    load = os.getloadavg()
    print(f"cpus {os.cpu_count()}, load average {load[0]:.2f} (other processes share these cores)")
    results: dict = {"args": vars(args), "load_average": load, "cpu_count": os.cpu_count()}
    for logs in (True, False):
        config = dataclasses.replace(MTFSessionConfig(), item_logs=logs)
        for behaviour in ("baseline", "uniform"):
            c = collect_rate(config, args.sessions, args.num_envs, args.repeats, behaviour)
            key = f"{behaviour}_item_logs_{'on' if logs else 'off'}"
            results[key] = c
            print(f"{key:24s} {c['rate']:8,.0f} tr/s ({c['transitions']:,} tr in {c['seconds']:.2f} s); env.step "
                  f"{c['env_seconds']:.2f} s = {c['env_rows_per_s']:,.0f} rows/s, {c['env_rows_per_transition']:.3f} "
                  f"rows/tr; collector overhead {100 * c['overhead_share']:.0f}%")
        rate = env_rate(config, args.num_envs, steps=100)
        results[f"env_item_logs_{'on' if logs else 'off'}"] = {"rows_per_s": rate}
        print(f"{'raw vector env':24s} {rate:8,.0f} user-steps/s (constant actions, no autoreset bookkeeping)")
    for logs, compact in ((True, True), (False, True), (True, False)):
        config = dataclasses.replace(MTFSessionConfig(), item_logs=logs)
        d = disk_usage(config, args.disk_sessions, args.num_envs, compact)
        key = f"disk_item_logs_{'on' if logs else 'off'}_{'compact' if compact else 'minari_chunked'}"
        results[key] = d
        print(f"{key:38s} {d['bytes_per_transition']:7.0f} B/transition on disk "
              f"(HDF5 {d['hdf5_bytes_per_transition']:.0f}, sidecar {d['sidecar_bytes_per_transition']:.0f}; "
              f"in memory {d['in_memory_bytes_per_transition']:.0f}); save {d['save_ms_per_session']:.2f} ms/session, "
              f"load {d['load_ms_per_session']:.2f} ms/session ({d['transitions']:,} transitions)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Speed, scale and decision latency of ``MTFSlate-v0``, measured (a report, not a timed test).

    python -m mtf_bench.perf_slate [--quick] [--sizes 1000 10000 100000 1000000] [--out DIR]

(a) **Env speed.** User-steps/s of ``gym.make_vec("MTFSlate-v0", num_envs=1024)`` (``expose_candidates`` off and
    on) against ``gym.make_vec("MTFSession-v1", num_envs=1024)`` in the same process (with its default catalogue,
    and with the slate env's 20,000-item catalogue), and single-env steps/s of both. Slate pages come from
    :class:`mtf_gym.slate.RandomSlatePolicy` and fusion actions from the action space, all drawn before timing and
    cycled, so the rates are the envs' own. Issue target: slate >= fusion (ratio >= 1).
(b) **Scale.** The slate vector env's rate (1024 users, ``expose_candidates=False``, random pages) at every
    catalogue size ``N``, as a ratio to the smallest; issue target: rate at 10^6 within 20% of the rate at 10^3. A
    diagnostic row steps the largest catalogue with pages drawn from as many items as the smallest catalogue has,
    with its topic layout (the first ``N_min / 20`` items of every topic): the same work on a small working set, so
    the gap between the two rows is memory locality, not work growing with N.
    Memory at each ``N``: ``nbytes`` of the NumPy buffers (per-user state and scratch vs the catalogue: the
    kernels' item table, the ranker's item error features, the latent attributes and the public embeddings) and the
    tracemalloc peak of building, resetting and stepping the env.
(c) **Decision latency.** Seconds per request (batch 1, median of ``--repeats`` calls after one warm-up) of each
    reference policy of :mod:`mtf_gym.slate` (random, most popular, pipeline with the control fusion, oracle; the
    oracle scans the catalogue, so its repeats are capped at large ``N``) and of every registered item-level agent
    (``mtf_agents.registry``, env ``MTFSlate-v0``; untrained, via ``initialise``) at every ``N``, with its memory
    (tracemalloc peak of construction and first call, plus the bytes of its torch parameters and buffers) and
    construction time. A log-log plot (``latency.png``) shows latency against ``N`` with dashed reference slopes
    O(N), O(N^(1/2)) and O(N^(1/3)).

Rates are medians of ``--rounds`` rounds of about ``--seconds`` each, rounds of all measurements interleaved (so a
slow drift of a shared machine hits every row alike; the min-max column shows the noise). ``--out DIR`` receives
``perf_slate.json`` and ``latency.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

import mtf_gym  # noqa: F401  (registers the envs)
from mtf_bench.perf_env import Round, interleaved_rates, single_env_round
from mtf_gym.atomic import atomic_path, atomic_write_json
from mtf_gym.envs.slate import MTFSlateConfig
from mtf_gym.slate import MostPopularPolicy, OraclePolicy, PipelinePolicy, RandomSlatePolicy

__all__ = ["NumpyBuffers", "env_buffer_bytes", "main", "policy_latencies", "slate_vector_round"]

VECTOR_USERS = 1024
FUSION_ENV = "MTFSession-v1"
SLATE_ENV = "MTFSlate-v0"
SCALE_TOLERANCE = 0.20  # issue: rate at the largest N within 20% of the rate at the smallest
_PAGE_BATCHES = 16  # vector-env action batches drawn up front, cycled
_LOCAL = "largest N, pages from the smallest N's items"
_FUSION_SAME = f"{FUSION_ENV}, vector, slate's default catalogue"
_ORACLE_SCAN_CAP = 2_000_000  # oracle repeats capped so that repeats x N <= this (at least 1)


# ---------------------------------------------------------------------------------------------------- env speed
def _random_pages(num_items: int, page_size: int, rows: int, count: int, seed: int) -> list[np.ndarray]:
    policy = RandomSlatePolicy(num_items, page_size, np.random.default_rng(seed))
    dummy = np.zeros((rows, 1), np.float32)
    return [policy(dummy) for _ in range(count)]


def _vector_round(env: gym.vector.VectorEnv, actions: list[np.ndarray]) -> Round:
    env.reset(seed=0)
    n = env.num_envs

    def run_round(budget: float) -> float:
        steps, start = 0, time.perf_counter()
        while True:
            env.step(actions[steps % len(actions)])
            steps += 1
            elapsed = time.perf_counter() - start
            if elapsed >= budget:
                return n * steps / elapsed

    return run_round


def slate_vector_round(env: gym.vector.VectorEnv, item_pool: np.ndarray | None = None) -> Round:
    """User-steps/s of a slate vector env under random pages drawn up front, from the whole catalogue or from the
    item ids of ``item_pool`` only."""
    base = env.unwrapped
    if item_pool is None:
        return _vector_round(env, _random_pages(base.num_items, base.page_size, env.num_envs, _PAGE_BATCHES, 0))
    pages = _random_pages(len(item_pool), base.page_size, env.num_envs, _PAGE_BATCHES, 0)
    return _vector_round(env, [item_pool[p] for p in pages])


def small_catalogue_pool(env: gym.vector.VectorEnv, small_n: int) -> np.ndarray:
    """``small_n`` item ids of ``env``'s catalogue with the topic layout of a ``small_n``-item catalogue: the first
    ``small_n / topics`` items of every topic (stepping with them is the small catalogue's work, on rows scattered
    over the large tables only as far as the topics are apart)."""
    per_topic_big = env.unwrapped.slate_config.session.catalogue.items_per_topic
    topics = env.unwrapped.slate_config.session.catalogue.num_topics
    per_topic_small = small_n // topics
    ids = np.arange(topics * per_topic_small)
    return (ids // per_topic_small) * per_topic_big + ids % per_topic_small


def fusion_vector_round(num_envs: int, **kwargs: Any) -> Round:
    """User-steps/s of ``MTFSession-v1``'s vector env under random fusion actions drawn up front."""
    env = gym.make_vec(FUSION_ENV, num_envs=num_envs, **kwargs)
    env.action_space.seed(0)
    return _vector_round(env, [env.action_space.sample() for _ in range(_PAGE_BATCHES)])


def slate_single_round(**kwargs: Any) -> Round:
    """Steps/s of one ``gym.make("MTFSlate-v0")`` env under random pages drawn up front, resetting on episode end
    (``perf_env``'s single-env round: the slate env's ``PageSpace`` samples valid pages)."""
    return single_env_round(SLATE_ENV, **kwargs)


# ---------------------------------------------------------------------------------------------------- memory
NumpyBuffers = dict[str, int]


def _arrays_bytes(obj: Any) -> int:
    fields = obj._asdict().values() if hasattr(obj, "_asdict") else vars(obj).values()
    return sum(v.nbytes for v in fields if isinstance(v, np.ndarray))


def env_buffer_bytes(env: gym.Env | gym.vector.VectorEnv) -> NumpyBuffers:
    """``nbytes`` of a slate env's NumPy buffers by role: what grows with the users and what grows with ``N``.

    * ``per_user``: user state (``sim.users``), kernel scratch, the simulator's own arrays and the env's candidate
      buffers;
    * ``catalogue_kernel``: the kernels' item table (``sim.model.items``: item attributes and the ranker's item error
      features, one cache line per item);
    * ``catalogue_attributes``: the latent attributes the catalogue was generated with (``sim.catalogue``'s fields);
    * ``embeddings``: the public ``(N, d)`` float32 embeddings (counted once, here).
    """
    base = env.unwrapped
    sim = base.sim
    env_arrays = sum(a.nbytes for a in (base.candidates, base.candidate_predictions, base._page_embeddings)
                     if a is not None)
    model = sim.model
    attributes = (getattr(sim.catalogue, f.name) for f in dataclasses.fields(sim.catalogue))
    return {
        "per_user": _arrays_bytes(sim.users) + _arrays_bytes(sim.scratch) + _arrays_bytes(sim) + env_arrays,
        "catalogue_kernel": model.items.nbytes,
        "model_other": _arrays_bytes(model) - model.items.nbytes,
        "catalogue_attributes": sum(a.nbytes for a in attributes if isinstance(a, np.ndarray)),
        "embeddings": base.item_embeddings.nbytes,
    }


def build_with_memory(make: Callable[[], Any], steps: Callable[[Any], None]) -> tuple[Any, int, float]:
    """``make()`` and ``steps(obj)`` under tracemalloc: the object, the peak traced bytes and the seconds ``make()``
    took (traced, so somewhat slower than untraced)."""
    gc.collect()
    tracemalloc.start()
    try:
        start = time.perf_counter()
        obj = make()
        seconds = time.perf_counter() - start
        steps(obj)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return obj, peak, seconds


def _exercise_vector(env: gym.vector.VectorEnv) -> None:
    env.reset(seed=0)
    base = env.unwrapped
    for pages in _random_pages(base.num_items, base.page_size, env.num_envs, 3, 1):
        env.step(pages)


# ---------------------------------------------------------------------------------------------------- latency
def _median_seconds(call: Callable[[], Any], repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _torch_bytes(obj: Any) -> int:
    """Bytes of the torch parameters and buffers reachable from ``obj``'s attributes (one level of containers)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return 0
    seen: set[int] = set()
    total = 0

    def visit(value: Any) -> None:
        nonlocal total
        if isinstance(value, torch.nn.Module):
            for t in list(value.parameters()) + list(value.buffers()):
                if id(t) not in seen:
                    seen.add(id(t))
                    total += t.numel() * t.element_size()
        elif isinstance(value, torch.Tensor) and id(value) not in seen:
            seen.add(id(value))
            total += value.numel() * value.element_size()

    for value in vars(obj).values():
        if isinstance(value, (list, tuple)):
            for v in value:
                visit(v)
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)
        else:
            visit(value)
    return total


def slate_agent_names() -> list[str]:
    from mtf_agents.registry import get_registry

    return get_registry().names(env=SLATE_ENV)


def policy_latencies(num_items: int, repeats: int, agents: Sequence[str], seed: int = 0) -> list[dict[str, Any]]:
    """One row per reference policy and agent at catalogue size ``num_items``: seconds per request (batch 1),
    construction seconds, tracemalloc peak and torch bytes."""
    env = gym.make(SLATE_ENV, num_items=num_items, expose_candidates=True)
    obs, info = env.reset(seed=seed)
    k = env.unwrapped.page_size
    rows: list[dict[str, Any]] = []
    oracle_repeats = max(1, min(repeats, _ORACLE_SCAN_CAP // num_items))

    def record(name: str, kind: str, obj: Any, seconds: float, reps: int, peak: int, build_s: float) -> None:
        rows.append({"N": num_items, "name": name, "kind": kind, "seconds": seconds, "repeats": reps,
                     "build_seconds": build_s, "tracemalloc_peak": peak, "torch_bytes": _torch_bytes(obj)})
        print(f"{num_items:>9}  {name:<22} {seconds * 1e3:>12.3f} {reps:>4} {build_s:>9.2f} "
              f"{peak / 2 ** 20:>10.1f} {rows[-1]['torch_bytes'] / 2 ** 20:>9.1f}", flush=True)

    def measure(name: str, make: Callable[[], Any], call: Callable[[Any], Any], reps: int) -> None:
        obj, peak, build_s = build_with_memory(make, call)
        record(name, "reference", obj, _median_seconds(lambda: call(obj), reps), reps, peak, build_s)

    measure("random", lambda: RandomSlatePolicy(num_items, k, np.random.default_rng(seed)), lambda p: p(obs), repeats)
    measure("most popular", lambda: MostPopularPolicy(env), lambda p: p(obs), repeats)
    measure("pipeline (control)", lambda: PipelinePolicy(env), lambda p: p(obs, info), repeats)
    measure("oracle", lambda: OraclePolicy(env), lambda p: p(obs), oracle_repeats)
    if agents:
        from mtf_agents.registry import build_agent
        from mtf_agents.slate.common import decision_latency

        emb = env.unwrapped.item_embeddings
        batch = obs[None].astype(np.float32)
        for name in agents:
            def make(name: str = name) -> Any:
                agent = build_agent(name)
                agent.initialise(batch.shape[1], emb, k, seed=seed)
                return agent

            agent, peak, build_s = build_with_memory(make, lambda a: a.act(batch))
            # The agents' own latency helper (median of ``repeats`` act() calls after a warm-up), as their docs use.
            record(name, "agent", agent, decision_latency(agent, batch, repeats=repeats), repeats, peak, build_s)
            del agent
            gc.collect()
    env.close()
    return rows


def plot_latency(rows: list[dict[str, Any]], path: str) -> None:
    """Log-log latency vs ``N``, one line per policy/agent, with dashed O(N), O(N^(1/2)), O(N^(1/3)) slopes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["name"] for r in rows))
    sizes = sorted({r["N"] for r in rows})
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    markers = "osD^vP*Xh"
    for j, name in enumerate(names):
        pts = sorted((r["N"], r["seconds"]) for r in rows if r["name"] == name)
        ax.plot([p[0] for p in pts], [p[1] * 1e3 for p in pts], marker=markers[j % len(markers)], label=name)
    if len(sizes) > 1:
        grid = np.geomspace(sizes[0], sizes[-1], 20)
        first = {r["name"]: r["seconds"] * 1e3 for r in rows if r["N"] == sizes[0]}
        anchor_linear = first.get("oracle", max(first.values()))
        anchor_root = first.get("tpgr", min(first.values()))
        for label, slope, anchor in ((r"$O(N)$", 1.0, anchor_linear), (r"$O(N^{1/2})$", 0.5, anchor_root),
                                     (r"$O(N^{1/3})$", 1 / 3, anchor_root)):
            ax.plot(grid, anchor * (grid / sizes[0]) ** slope, "--", color="grey",
                    alpha=0.9 if slope == 1.0 else 0.6, linewidth=1)
            ax.annotate(label, (grid[-1], anchor * (grid[-1] / sizes[0]) ** slope), fontsize=8, color="dimgrey",
                        xytext=(3, 0), textcoords="offset points", va="center")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(sizes[0] / 1.3, sizes[-1] * (1.3 if len(sizes) == 1 else (sizes[-1] / sizes[0]) ** 0.12))
    ax.set_xlabel("catalogue size N (items)")
    ax.set_ylabel("decision latency per request, batch 1 (ms)")
    ax.set_title("MTFSlate-v0: decision latency vs catalogue size (untrained agents, CPU)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="catalogue sizes N (multiples of the 20 topics, >= 1000; default 10^3 10^4 10^5 10^6, "
                             "with --quick 10^3 10^4 10^5)")
    parser.add_argument("--users", type=int, default=VECTOR_USERS, help="vector env users (default 1024)")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one timed round (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds; median reported")
    parser.add_argument("--repeats", type=int, default=5, help="latency repeats (median)")
    parser.add_argument("--agents", nargs="*", default=None,
                        help="item-level agents to time (default: every registered MTFSlate-v0 agent)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads for the agents (default 1)")
    parser.add_argument("--quick", action="store_true",
                        help="sizes 10^3..10^5, 0.3 s rounds, two rounds, three latency repeats")
    parser.add_argument("--out", default="runs/perf_slate", help="folder for perf_slate.json and latency.png")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds, args.repeats = 0.3, 2, 3
    if args.sizes is None:
        args.sizes = [1_000, 10_000, 100_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000]
    for name in ("users", "rounds", "repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.seconds <= 0:
        parser.error(f"--seconds must be > 0, got {args.seconds}")
    sizes = sorted(set(args.sizes))
    agents = slate_agent_names() if args.agents is None else list(args.agents)
    if agents:
        import torch

        torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    wall = time.perf_counter()
    mib = 2 ** 20

    # (a) + (b): every rate measured in one interleaved set of rounds.
    runs: dict[str, Round] = {
        f"{SLATE_ENV} single": slate_single_round(expose_candidates=False),
        f"{FUSION_ENV} single": single_env_round(FUSION_ENV),
        f"{SLATE_ENV} x{args.users}, expose_candidates=False": slate_vector_round(
            gym.make_vec(SLATE_ENV, num_envs=args.users, expose_candidates=False)),
        f"{SLATE_ENV} x{args.users}, expose_candidates=True": slate_vector_round(
            gym.make_vec(SLATE_ENV, num_envs=args.users, expose_candidates=True)),
        f"{FUSION_ENV} x{args.users}": fusion_vector_round(args.users),
        _FUSION_SAME: fusion_vector_round(args.users, catalogue=MTFSlateConfig().session.catalogue),
    }
    memory: dict[int, dict[str, int]] = {}
    for n in sizes:
        env, peak, _ = build_with_memory(
            lambda n=n: gym.make_vec(SLATE_ENV, num_envs=args.users, num_items=n, expose_candidates=False),
            _exercise_vector)
        memory[n] = {**env_buffer_bytes(env), "tracemalloc_peak": peak}
        runs[f"{SLATE_ENV} x{args.users}, N={n}"] = slate_vector_round(env)
        if n == sizes[-1] and len(sizes) > 1:
            # Same catalogue, pages confined to a small catalogue's worth of items with the same topic layout:
            # separates memory locality (item rows scattered over large tables) from work that would grow with N.
            runs[_LOCAL] = slate_vector_round(env, small_catalogue_pool(env, sizes[0]))
    samples = interleaved_rates(runs, args.seconds, args.rounds)
    rate = {name: statistics.median(v) for name, v in samples.items()}

    def spread(name: str) -> str:
        return f"{min(samples[name]):,.0f}-{max(samples[name]):,.0f}"

    fusion_vec = rate[f"{FUSION_ENV} x{args.users}"]
    fusion_single = rate[f"{FUSION_ENV} single"]
    print(f"(a) env speed, {args.users} users (vector) and one user (single); random pages / actions drawn up front")
    print(f"{'env':<48} {'steps/s (median)':>17} {'min-max':>23} {'vs fusion':>10}")
    for name in list(runs)[:6]:
        ref = fusion_single if name.endswith("single") else fusion_vec
        print(f"{name:<48} {rate[name]:>17,.0f} {spread(name):>23} {rate[name] / ref:>9.2f}x")
    default_n = gym.make(SLATE_ENV).unwrapped.num_items
    fusion_n = gym.make(FUSION_ENV).unwrapped.config.num_items
    print(f"  (default catalogues: {SLATE_ENV} N = {default_n:,} items, {FUSION_ENV} N = {fusion_n:,})")
    slate_vs_fusion = rate[f"{SLATE_ENV} x{args.users}, expose_candidates=False"] / fusion_vec
    print()
    print(f"(b) scale: {SLATE_ENV} vector env, {args.users} users, expose_candidates=False, random pages")
    print(f"{'N':>9} {'user-steps/s':>14} {'min-max':>23} {'vs N=' + str(sizes[0]):>10} {'per-user MiB':>13} "
          f"{'catalogue MiB':>14} {'embeddings MiB':>15} {'tracemalloc peak MiB':>21}")
    base_rate = rate[f"{SLATE_ENV} x{args.users}, N={sizes[0]}"]
    for n in sizes:
        name = f"{SLATE_ENV} x{args.users}, N={n}"
        m = memory[n]
        catalogue = m["catalogue_kernel"] + m["catalogue_attributes"]
        print(f"{n:>9} {rate[name]:>14,.0f} {spread(name):>23} {rate[name] / base_rate:>9.2f}x "
              f"{m['per_user'] / mib:>13.1f} {catalogue / mib:>14.1f} {m['embeddings'] / mib:>15.1f} "
              f"{m['tracemalloc_peak'] / mib:>21.1f}")
    if _LOCAL in rate:
        print(f"{sizes[-1]:>9} {rate[_LOCAL]:>14,.0f} {spread(_LOCAL):>23} {rate[_LOCAL] / base_rate:>9.2f}x   "
              f"(pages from {sizes[0]:,} items laid out by topic as N = {sizes[0]:,}: same work, small working set)")
    scale_ratio = rate[f"{SLATE_ENV} x{args.users}, N={sizes[-1]}"] / base_rate
    largest = memory[sizes[-1]]
    catalogue_share = (largest["catalogue_kernel"] + largest["catalogue_attributes"] + largest["embeddings"]) / sum(
        v for k, v in largest.items() if k != "tracemalloc_peak")
    print()
    print(f"slate vector (expose_candidates=False) / fusion vector ({args.users} users, default catalogues): "
          f"{slate_vs_fusion:.2f}x "
          f"(target >= 1: {'met' if slate_vs_fusion >= 1 else 'NOT met'})")
    print(f"rate at N = {sizes[-1]:,} / rate at N = {sizes[0]:,}: {scale_ratio:.2f} (target >= "
          f"{1 - SCALE_TOLERANCE:.2f}: {'met' if scale_ratio >= 1 - SCALE_TOLERANCE else 'NOT met'})")
    print(f"memory at N = {sizes[-1]:,}: catalogue arrays and embeddings {catalogue_share:.1%} of the NumPy buffers; "
          f"per-user state {largest['per_user'] / mib:.1f} MiB for {args.users} users (no per-user catalogue copy)")
    del runs
    gc.collect()

    # (c) decision latency.
    print()
    print(f"(c) decision latency per request (batch 1, median), memory; torch threads {args.threads}")
    print(f"{'N':>9}  {'policy / agent':<22} {'ms/request':>12} {'reps':>4} {'build s':>9} {'peak MiB':>10} "
          f"{'torch MiB':>9}")
    latency_rows: list[dict[str, Any]] = []
    for n in sizes:
        latency_rows += policy_latencies(n, args.repeats, agents)
        gc.collect()
    print()
    print("latency at the largest N as a ratio to the smallest (an O(N) method gives "
          f"{sizes[-1] / sizes[0]:,.0f}x):")
    for name in dict.fromkeys(r["name"] for r in latency_rows):
        by_n = {r["N"]: r["seconds"] for r in latency_rows if r["name"] == name}
        print(f"  {name:<22} {by_n[sizes[-1]] / by_n[sizes[0]]:>10.1f}x")
    png = os.path.join(args.out, "latency.png")
    plot_latency(latency_rows, png)
    payload = {
        "users": args.users, "sizes": sizes, "seconds": args.seconds, "rounds": args.rounds,
        "rates": {name: {"median": rate[name], "samples": samples[name]} for name in samples},
        "slate_vs_fusion": slate_vs_fusion, "scale_ratio": scale_ratio,
        "slate_vs_fusion_same_catalogue": rate[f"{SLATE_ENV} x{args.users}, expose_candidates=False"]
        / rate[_FUSION_SAME],
        "scale_ratio_small_working_set": rate[_LOCAL] / base_rate if _LOCAL in rate else None,
        "memory": {str(n): m for n, m in memory.items()},
        "latency": latency_rows,
        "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None},
        "wall_seconds": time.perf_counter() - wall,
    }
    atomic_write_json(os.path.join(args.out, "perf_slate.json"), payload)
    print(f"\nwrote {os.path.join(args.out, 'perf_slate.json')} and {png}; wall time {payload['wall_seconds']:.1f} s")
    return payload


if __name__ == "__main__":
    main()

"""Decision latency of the slate agents vs catalogue size, against a full scan by the same scoring network.

    python -m mtf_bench.perf_slate_agents [--sizes 1000 10000 100000 1000000] [--batch 1] [--repeats 5]

For each catalogue size ``N`` (random unit-norm public embeddings ``(N, d)``), every agent is initialised untrained
(latency does not depend on the weights) and timed on ``agent.act(obs)`` for a batch of ``--batch`` requests
(``mtf_agents.slate.common.decision_latency``: median over ``--repeats``, per request). The reference, in the same
process, is a **full scan**: TPGR's own state encoder ``h(s)`` followed by one linear score per item
(``N x node_head_units``, the flat softmax policy TPGR replaces) and a top-K, i.e. "score every item with the same
network". Rows:

* ``full_scan``   O(N * H) per request;
* ``tpgr d=2/3``  per-node softmax policies on a PCA tree, O(K * d * c * H), c = ceil(N^(1/d));
* ``fcpo``        K x d matrix against all N embeddings, O(K * N * d);
* ``wolpertinger exact k=10%N``  exact kNN (faiss flat) + the critic on k = N/10 neighbours (the chapter's advice);
* ``wolpertinger exact k=100`` / ``ivf k=100``  a capped neighbourhood, exact and approximate (IVF, recall@k against
  exact search printed next to its latency).

``ratio`` is the row's latency divided by the full scan's (lower is faster). Runs single-threaded by default
(``--threads``), so shared machines give stable numbers.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Sequence

import numpy as np
import torch

from mtf_agents.registry import build_agent
from mtf_agents.slate.common import decision_latency

__all__ = ["main"]


def _catalogue(n: int, dim: int, seed: int) -> np.ndarray:
    emb = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb


def _full_scan_latency(trunk: torch.nn.Module, n: int, units: int, page_size: int, obs: np.ndarray,
                       repeats: int) -> float:
    """Seconds per request of scoring all ``n`` items with ``trunk`` + a linear head, then top-K."""
    weight = torch.randn(n, units) / units ** 0.5
    bias = torch.zeros(n)
    obs_t = torch.from_numpy(obs)

    def scan() -> np.ndarray:
        with torch.no_grad():
            scores = torch.addmm(bias, trunk(obs_t), weight.T)
            return torch.topk(scores, page_size, dim=1).indices.numpy()

    scan()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        scan()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / len(obs)


def _report(rows: list, n: int, full: float | None, name: str, seconds: float, note: str = "") -> None:
    ratio = seconds / full if full else 1.0
    rows.append((n, name, seconds, ratio, note))
    print(f"{n:>9}  {name:<30} {seconds * 1e3:>11.3f} {ratio:>8.3f}  {note}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="perf_slate_agents", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--batch", type=int, default=1, help="requests per act() call")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--page-size", type=int, default=6)
    parser.add_argument("--dim", type=int, default=32, help="public embedding dimension d")
    parser.add_argument("--user-features", type=int, default=16, help="observation = user features + d")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--skip-wolpertinger-10pct", action="store_true",
                        help="skip the k = N/10 Wolpertinger row (the slowest)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    obs_dim = args.user_features + args.dim
    rows: list[tuple[int, str, float, float, str]] = []
    print(f"batch {args.batch}, K {args.page_size}, d {args.dim}, obs_dim {obs_dim}, torch threads {args.threads}")
    print(f"{'N':>9}  {'agent':<30} {'ms/request':>11} {'ratio':>8}  notes")
    for n in args.sizes:
        emb = _catalogue(n, args.dim, seed=n)
        obs = np.random.default_rng(0).normal(size=(args.batch, obs_dim)).astype(np.float32)
        k_req = args.repeats
        full = None

        for depth in (2, 3):
            start = time.perf_counter()
            tpgr = build_agent("tpgr", tree_depth=depth)
            tpgr.initialise(obs_dim, emb, args.page_size)
            build_s = time.perf_counter() - start
            if full is None:
                full = _full_scan_latency(tpgr.trunk, n, tpgr.config.node_head_units, args.page_size, obs, k_req)
                _report(rows, n, full, "full_scan", full,
                        f"N x H = {n} x {tpgr.config.node_head_units} scores + top-{args.page_size}")
            _report(rows, n, full, f"tpgr d={depth}", decision_latency(tpgr, obs, repeats=k_req),
                   f"c = {tpgr.tree.branching}, K*d*c = {args.page_size * depth * tpgr.tree.branching}, "
                   f"tree + init {build_s:.1f}s")
            del tpgr
            gc.collect()
        fcpo = build_agent("fcpo")
        fcpo.initialise(obs_dim, emb, args.page_size)
        _report(rows, n, full, "fcpo", decision_latency(fcpo, obs, repeats=k_req),
                f"K*N*d = {args.page_size * n * args.dim:.2e}")
        del fcpo
        variants: list[tuple[str, dict]] = []
        if not args.skip_wolpertinger_10pct:
            variants.append(("wolpertinger exact k=10%N", {"knn_fraction": 0.1}))
        variants += [("wolpertinger exact k=100", {"max_neighbours": 100}),
                     ("wolpertinger ivf k=100", {"max_neighbours": 100, "knn_backend": "ivf"})]
        for name, overrides in variants:
            start = time.perf_counter()
            wolp = build_agent("wolpertinger", **overrides)
            wolp.initialise(obs_dim, emb, args.page_size)
            build_s = time.perf_counter() - start
            repeats = k_req if wolp.k <= 10_000 else max(1, k_req // 3)
            note = f"k = {wolp.k}, index {build_s:.1f}s"
            recall = wolp.knn_report()
            if recall is not None:
                note += f", recall@{recall.k} {recall.recall:.3f} ({recall.queries} queries)"
            _report(rows, n, full, name, decision_latency(wolp, obs, repeats=repeats), note)
            del wolp
            gc.collect()
    tpgr_big = [r for r in rows if r[1].startswith("tpgr") and r[0] == max(args.sizes)]
    if tpgr_big:
        best = min(tpgr_big, key=lambda r: r[3])
        print(f"\nTPGR at N = {best[0]}: {best[3]:.4f} of a full scan ({best[1]}); target <= 1/50 = 0.02: "
              f"{'met' if best[3] <= 0.02 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

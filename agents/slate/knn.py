"""k-nearest-neighbour search over the public item embeddings, behind one small interface.

Backends (pick with :func:`make_knn`):

* ``"exact"``: brute force. faiss ``IndexFlatIP`` / ``IndexFlatL2`` when faiss is installed, else a torch
  ``matmul`` + ``topk`` (identical neighbours up to ties).
* ``"hnsw"``: faiss ``IndexHNSWFlat`` (graph search, approximate).
* ``"ivf"``: faiss ``IndexIVFFlat`` (inverted lists over k-means cells, approximate; ``nprobe`` cells searched).

Metrics: ``"ip"`` (largest inner product ``<q, v>``) or ``"l2"`` (smallest squared distance ``|q - v|^2``).
Every backend returns ``(scores, ids)`` of shape ``(B, k)``, best first; scores are inner products for ``"ip"`` and
*negated* squared distances for ``"l2"``, so "larger is nearer" holds for both.

An approximate backend is only useful with its recall known: :meth:`KNNIndex.recall_at_k` measures recall@k against
exact search on given queries, and :func:`make_knn` measures it on sample queries whenever it builds an approximate
index (``index.recall``), so callers can report it next to every latency figure.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["BACKENDS", "METRICS", "ApproximateKNN", "ExactKNN", "KNNIndex", "RecallReport", "faiss_available",
           "make_knn", "recall_at_k"]

Backend = Literal["exact", "hnsw", "ivf"]
Metric = Literal["ip", "l2"]
BACKENDS: tuple[str, ...] = ("exact", "hnsw", "ivf")
METRICS: tuple[str, ...] = ("ip", "l2")


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _as_matrix(x: np.ndarray, dim: int, what: str) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"{what} must have shape (B, {dim}), got {arr.shape}")
    return arr


@dataclass(frozen=True)
class RecallReport:
    """recall@k of an approximate index against exact search, on ``queries`` sample queries."""

    backend: str
    k: int
    queries: int
    recall: float


class KNNIndex(ABC):
    """Nearest items of query vectors among ``N`` fixed item vectors ``(N, d)``."""

    backend: str

    def __init__(self, items: np.ndarray, metric: Metric) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        items = np.ascontiguousarray(np.asarray(items, dtype=np.float32))
        if items.ndim != 2 or len(items) == 0:
            raise ValueError(f"items must be a non-empty (N, d) matrix, got shape {items.shape}")
        self.items = items
        self.metric = metric
        self.recall: RecallReport | None = None  # set by make_knn for approximate backends

    @property
    def num_items(self) -> int:
        return self.items.shape[0]

    @property
    def dim(self) -> int:
        return self.items.shape[1]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)`` ``(B, k)`` of the ``k`` nearest items of each query, best first (``k <= N``)."""
        if not (isinstance(k, (int, np.integer)) and 1 <= k <= self.num_items):
            raise ValueError(f"k must be an integer in [1, {self.num_items}], got {k!r}")
        q = _as_matrix(queries, self.dim, "queries")
        return self._search(q, int(k))

    @abstractmethod
    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def recall_at_k(self, queries: np.ndarray, k: int) -> float:
        """Mean fraction of the exact ``k`` nearest items this index returns (1.0 for an exact index)."""
        return recall_at_k(self.search(queries, k)[1], ExactKNN(self.items, self.metric).search(queries, k)[1])


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean over rows of ``|found_row & exact_row| / k`` (ids; ``-1`` padding in ``found`` never matches)."""
    found, exact = np.asarray(found), np.asarray(exact)
    if found.shape != exact.shape or found.ndim != 2:
        raise ValueError(f"found and exact must be (B, k) of equal shape, got {found.shape} and {exact.shape}")
    hits = sum(len(np.intersect1d(f[f >= 0], e)) for f, e in zip(found, exact))
    return hits / exact.size


class ExactKNN(KNNIndex):
    """Brute force: faiss flat index when available (``use_faiss=None`` decides), else torch matmul + topk."""

    backend = "exact"

    def __init__(self, items: np.ndarray, metric: Metric = "ip", *, use_faiss: bool | None = None) -> None:
        super().__init__(items, metric)
        if use_faiss is None:
            use_faiss = faiss_available()
        self.uses_faiss = bool(use_faiss)
        if self.uses_faiss:
            import faiss

            self._index = faiss.IndexFlatIP(self.dim) if metric == "ip" else faiss.IndexFlatL2(self.dim)
            self._index.add(self.items)
        else:
            import torch

            self._items_t = torch.from_numpy(self.items)
            self._sq_norms = (self._items_t ** 2).sum(1)

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.uses_faiss:
            scores, ids = self._index.search(queries, k)
            return (scores if self.metric == "ip" else -scores), ids.astype(np.int64)
        import torch

        q = torch.from_numpy(queries)
        scores = q @ self._items_t.T
        if self.metric == "l2":  # -|q - v|^2 = 2<q, v> - |v|^2 - |q|^2
            scores = 2 * scores - self._sq_norms[None, :] - (q ** 2).sum(1, keepdim=True)
        top = torch.topk(scores, k, dim=1)
        return top.values.numpy(), top.indices.numpy().astype(np.int64)


class ApproximateKNN(KNNIndex):
    """faiss HNSW (``"hnsw"``: ``hnsw_m`` links, ``ef_search``) or IVF (``"ivf"``: ``nlist`` cells, ``nprobe``)."""

    def __init__(self, items: np.ndarray, metric: Metric = "ip", *, backend: Literal["hnsw", "ivf"] = "hnsw",
                 hnsw_m: int = 32, ef_search: int = 128, nlist: int | None = None, nprobe: int = 32,
                 seed: int = 0, serialized: np.ndarray | None = None) -> None:
        super().__init__(items, metric)
        if not faiss_available():
            raise ImportError(f"knn backend {backend!r} needs faiss (pip install faiss-cpu); use backend='exact'")
        import faiss

        faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
        self.backend = backend
        if serialized is not None:  # an index saved with serialize(): the same graph / cells as when it was saved
            if backend not in ("hnsw", "ivf"):
                raise ValueError(f"backend must be 'hnsw' or 'ivf' for an approximate index, got {backend!r}")
            self._index = faiss.deserialize_index(np.asarray(serialized, dtype=np.uint8))
            if self._index.ntotal != self.num_items or self._index.d != self.dim:
                raise ValueError("serialized index does not match the items")
            if backend == "hnsw":
                self._ef_search = self._index.hnsw.efSearch
        elif backend == "hnsw":
            self._index = faiss.IndexHNSWFlat(self.dim, hnsw_m, faiss_metric)
            self._index.hnsw.efSearch = ef_search
            self._index.add(self.items)
            self._ef_search = ef_search
        elif backend == "ivf":
            nlist = nlist or max(1, round(float(np.sqrt(self.num_items))))
            nlist = min(nlist, self.num_items)
            quantizer = faiss.IndexFlatIP(self.dim) if metric == "ip" else faiss.IndexFlatL2(self.dim)
            self._index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss_metric)
            self._index.cp.seed = seed
            self._index.train(self.items)
            self._index.add(self.items)
            self._index.nprobe = min(nprobe, nlist)
            self._quantizer = quantizer  # faiss does not own it from Python: keep it alive
        else:
            raise ValueError(f"backend must be 'hnsw' or 'ivf' for an approximate index, got {backend!r}")

    def serialize(self) -> np.ndarray:
        """The faiss index as bytes (``uint8`` array), for ``ApproximateKNN(..., serialized=...)``."""
        import faiss

        return faiss.serialize_index(self._index)

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.backend == "hnsw" and k > self._index.hnsw.efSearch:
            self._index.hnsw.efSearch = k  # HNSW returns at most efSearch results
        scores, ids = self._index.search(queries, k)
        if self.backend == "hnsw":
            self._index.hnsw.efSearch = self._ef_search
        ids = ids.astype(np.int64)
        # An approximate index may return fewer than k hits (-1): pad with the best hit so shapes stay (B, k);
        # callers that need k *distinct* items deduplicate anyway.
        missing = ids < 0
        if missing.any():
            ids = np.where(missing, ids[:, :1], ids)
            scores = np.where(missing, scores[:, :1], scores)
        return (scores if self.metric == "ip" else -scores), ids


def make_knn(items: np.ndarray, *, backend: Backend = "exact", metric: Metric = "ip", recall_k: int = 10,
             recall_queries: int = 256, seed: int = 0, serialized: np.ndarray | None = None,
             **options: int) -> KNNIndex:
    """A kNN index over ``items``; an approximate one gets ``index.recall`` measured on ``recall_queries`` queries.

    The sample queries are item vectors plus Gaussian noise of the items' own per-dimension scale (the proto-actions
    an actor proposes lie near, not on, the items), drawn from ``seed``. ``serialized``: restore an approximate index
    saved with :meth:`ApproximateKNN.serialize` instead of building one (its recall is measured again).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "exact":
        return ExactKNN(items, metric)
    index = ApproximateKNN(items, metric, backend=backend, seed=seed, serialized=serialized,
                           **options)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, index.num_items, size=recall_queries)
    queries = index.items[rows] + rng.normal(size=(recall_queries, index.dim)).astype(np.float32) * index.items.std(0)
    k = min(recall_k, index.num_items)
    index.recall = RecallReport(backend, k, recall_queries, index.recall_at_k(queries, k))
    return index

"""The balanced clustering tree TPGR walks: every item is one leaf, every non-leaf node has ``c`` child slots.

Given ``N`` items and a depth ``d``, the branching factor is the smallest ``c`` with ``c^d >= N`` (the chapter's
``c = ceil(N^(1/d))``, computed in integers so float rounding cannot make ``c^d < N``). The tree is stored as a
*complete* ``c``-ary tree of depth ``d``: node ``i`` of level ``l`` (``0 <= i < c^l``) has children
``i*c .. i*c + c - 1`` on level ``l + 1``, and the ``c^d`` level-``d`` slots hold item ids or ``-1`` (empty). That
makes a root-to-leaf walk ``d`` gathers on flat arrays, batched over requests.

Construction splits a node's items into ``c`` groups whose sizes differ by at most one (``n // c`` or
``n // c + 1``; some groups are empty when ``n < c``), recursively, so every leaf sits at depth exactly ``d`` (a
stronger balance than the chapter's "subtree heights differ by at most one"). A group of ``ceil(n / c)`` items fits
the ``c^(L-1)`` slots below a child whenever ``n <= c^L``. Split methods, both deterministic given ``seed``:

* ``"pca"``: project the node's items on their first principal component and cut the sorted order into the balanced
  group sizes (fast: one ``d x d`` eigenproblem per node; fine at ``N = 10^6``).
* ``"kmeans"``: balanced k-means (``k_means_constrained.KMeansConstrained`` with cluster sizes bounded to
  ``[n // c, ceil(n / c)]``). Minimum-cost-flow assignment: practical up to ``N ~ 10^4`` per node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["SPLIT_METHODS", "BalancedTree", "branching_factor", "build_balanced_tree"]

SplitMethod = Literal["pca", "kmeans"]
SPLIT_METHODS: tuple[str, ...] = ("pca", "kmeans")


def branching_factor(num_items: int, depth: int) -> int:
    """Smallest ``c >= 1`` with ``c ** depth >= num_items`` (= ``ceil(num_items ** (1 / depth))``, exactly)."""
    if num_items < 1 or depth < 1:
        raise ValueError(f"num_items and depth must be >= 1, got {num_items} and {depth}")
    c = max(1, int(np.ceil(num_items ** (1.0 / depth))))
    while c ** depth < num_items:
        c += 1
    while c > 1 and (c - 1) ** depth >= num_items:
        c -= 1
    return c


@dataclass(frozen=True, eq=False)
class BalancedTree:
    """A built tree. ``leaf_item[slot]`` is the item at level-``d`` slot ``slot`` (``-1``: empty);
    ``item_leaf[item]`` its slot; ``node_size[l][i]`` the number of items under node ``i`` of level ``l``."""

    depth: int
    branching: int
    leaf_item: np.ndarray  # (c^d,) int64
    item_leaf: np.ndarray  # (N,) int64
    node_size: tuple[np.ndarray, ...]  # d + 1 arrays, level l has c^l entries

    @property
    def num_items(self) -> int:
        return len(self.item_leaf)

    @property
    def num_internal_nodes(self) -> int:
        """Non-leaf nodes of the complete tree, ``(c^d - 1) / (c - 1)`` (the chapter's count of policies)."""
        return sum(self.branching ** level for level in range(self.depth))

    @classmethod
    def from_leaf_items(cls, leaf_item: np.ndarray, depth: int) -> BalancedTree:
        """The tree whose level-``depth`` slots hold ``leaf_item`` (e.g. a saved ``tree.leaf_item``)."""
        leaf_item = np.asarray(leaf_item, dtype=np.int64)
        c = round(len(leaf_item) ** (1.0 / depth))
        if c ** depth != len(leaf_item):
            raise ValueError(f"leaf_item must have c ** depth entries, got {len(leaf_item)} for depth {depth}")
        filled = np.flatnonzero(leaf_item >= 0)
        n_items = len(filled)
        if not np.array_equal(np.sort(leaf_item[filled]), np.arange(n_items)):
            raise ValueError("leaf_item must hold every item id 0..N-1 exactly once (-1 for empty slots)")
        item_leaf = np.empty(n_items, dtype=np.int64)
        item_leaf[leaf_item[filled]] = filled
        sizes = [(leaf_item >= 0).astype(np.int64)]
        for level in range(depth - 1, -1, -1):
            sizes.append(sizes[-1].reshape(c ** level, c).sum(1))
        return cls(depth=depth, branching=c, leaf_item=leaf_item, item_leaf=item_leaf, node_size=tuple(sizes[::-1]))

    def item_path(self, item: int) -> np.ndarray:
        """Child slot (``0..c-1``) taken at each level on the way from the root to ``item``'s leaf, ``(d,)``."""
        slot = int(self.item_leaf[item])
        digits = []
        for _ in range(self.depth):
            slot, digit = divmod(slot, self.branching)
            digits.append(digit)
        return np.array(digits[::-1], dtype=np.int64)

    def node_means(self, item_vectors: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per level ``l < d``, the mean vector of the items under each node ``(c^l, dim)`` (zeros if empty)."""
        dim = item_vectors.shape[1]
        leaf_vec = np.zeros((len(self.leaf_item), dim), dtype=np.float64)
        filled = self.leaf_item >= 0
        leaf_vec[filled] = item_vectors[self.leaf_item[filled]]
        out = []
        sums = leaf_vec
        for level in range(self.depth - 1, -1, -1):
            sums = sums.reshape(self.branching ** level, self.branching, dim).sum(1)
            sizes = self.node_size[level][:, None]
            out.append((sums / np.maximum(sizes, 1)).astype(np.float32))
        return tuple(out[::-1])


def _balanced_sizes(n: int, c: int) -> np.ndarray:
    return n // c + (np.arange(c) < n % c)


def _first_component(cov: np.ndarray, iterations: int = 25) -> np.ndarray:
    """Leading eigenvector of a (dim x dim) covariance by power iteration, sign fixed (largest entry positive).

    A LAPACK ``eigh`` per node costs milliseconds when BLAS threads contend; thousands of nodes make that minutes.
    """
    v = np.sqrt(np.diag(cov)) + 1e-12  # start along the spread of each dimension: never orthogonal to the answer
    v /= np.linalg.norm(v)
    scale = np.abs(cov).max()
    if scale == 0.0:
        return v
    cov2 = cov / scale
    cov2 = cov2 @ cov2
    cov4 = cov2 @ cov2  # iterating with cov^4: four power steps per product
    for _ in range(iterations):
        w = cov4 @ v
        norm = np.linalg.norm(w)
        if norm == 0.0:
            break
        w /= norm
        if np.abs(w - v).max() < 1e-7:
            v = w
            break
        v = w
    return v * (1.0 if v[np.argmax(np.abs(v))] >= 0 else -1.0)


def _split_pca(x: np.ndarray, c: int) -> np.ndarray:
    """Group label per row: cut the order along the first principal component into balanced sizes."""
    n = len(x)
    centred = x - x.mean(0)
    if n > 1 and np.any(centred):
        pc = _first_component(centred.T @ centred)
        order = np.argsort(centred @ pc, kind="stable")
    else:
        order = np.arange(n)
    labels = np.empty(n, dtype=np.int64)
    labels[order] = np.repeat(np.arange(c), _balanced_sizes(n, c))
    return labels


def _split_kmeans(x: np.ndarray, c: int, seed: int) -> np.ndarray:
    n = len(x)
    if n <= c:
        return np.arange(n, dtype=np.int64)  # one item per child, the rest of the children empty
    from k_means_constrained import KMeansConstrained

    km = KMeansConstrained(n_clusters=c, size_min=n // c, size_max=-(-n // c), random_state=seed, n_init=3)
    labels = np.asarray(km.fit_predict(x.astype(np.float64)), dtype=np.int64)
    # Order the clusters by size (largest first), then label: the balanced sizes land on fixed child slots.
    sizes = np.bincount(labels, minlength=c)
    rank = np.argsort(-sizes, kind="stable")
    remap = np.empty(c, dtype=np.int64)
    remap[rank] = np.arange(c)
    return remap[labels]


def build_balanced_tree(item_vectors: np.ndarray, depth: int, *, method: SplitMethod = "pca",
                        seed: int = 0) -> BalancedTree:
    """Balanced tree of depth ``depth`` over the rows of ``item_vectors`` ``(N, dim)`` by ``method`` splits."""
    x = np.asarray(item_vectors, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"item_vectors must be a non-empty (N, dim) matrix, got shape {x.shape}")
    if method not in SPLIT_METHODS:
        raise ValueError(f"method must be one of {SPLIT_METHODS}, got {method!r}")
    n_items = len(x)
    c = branching_factor(n_items, depth)
    leaf_item = np.full(c ** depth, -1, dtype=np.int64)
    # Work list of (level, node index, item ids): split each node into c balanced children.
    stack = [(0, 0, np.arange(n_items))]
    while stack:
        level, node, items = stack.pop()
        if level == depth:
            assert len(items) <= 1
            if len(items):
                leaf_item[node] = items[0]
            continue
        if len(items) == 0:
            continue
        if method == "pca":
            labels = _split_pca(x[items], c)
        else:
            labels = _split_kmeans(x[items], c, seed)
        groups = np.split(items[np.argsort(labels, kind="stable")], np.cumsum(np.bincount(labels, minlength=c))[:-1])
        for child, group in enumerate(groups):
            stack.append((level + 1, node * c + child, group))
    tree = BalancedTree.from_leaf_items(leaf_item, depth)
    assert tree.branching == c
    return tree

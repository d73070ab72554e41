"""``tpgr``: Tree-structured Policy Gradient Recommendation (Chen et al., AAAI 2019).

The catalogue is organised in a balanced clustering tree of depth ``d`` over the public item embeddings
(:mod:`mtf_agents.slate.tree`: PCA or balanced k-means splits, ``c = ceil(N^(1/d))`` children per node, sibling sizes
differing by at most one, every item exactly one leaf). Choosing an item walks from the root to a leaf: at each
non-leaf node ``v`` a softmax policy ``pi_v(. | s)`` over ``v``'s ``c`` children picks the next node, so one decision
costs ``O(d * c) = O(d * N^(1/d))`` instead of the ``O(N)`` of scoring every item (the chapter's eq. 7-17).

Policies (``node_policy``):

* ``"per_node"`` (the paper's): one softmax layer per non-leaf node, ``logits = W_v h(s) + b_v``, on a shared state
  encoder ``h(s)`` (``hidden_units`` MLP, then a ``node_head_units`` projection). The ``(c^d - 1)/(c - 1)`` heads hold
  ``O(N * node_head_units)`` parameters, the chapter's ``O(|I|)`` space.
* ``"shared"``: one network for every node, conditioned on it: ``logits = MLP([h(s), mean embedding of the node's
  items, one-hot level])`` with ``c`` outputs. ``O(c)`` parameters; generalises across nodes.

Pages of ``K`` items: ``K`` walks in turn; a child whose subtree holds only items already on the page (or in
``exclude``) is masked out, so a walk always ends on a free item and a page never repeats one. Acting is greedy
(argmax at every node); training samples.

Training: REINFORCE on the discounted return (the chapter's eqs. 7-13 and 7-15) with a learned value baseline, via
:mod:`mtf_agents.slate.onpolicy`; a page's log-probability is the sum of the log-probabilities of all ``K x d`` node
choices. Optional reward shaping (eq. 7-14): ``r + shaping_alpha * (c_p - c_n)``, ``c_p`` / ``c_n`` the numbers of
consecutive positive / negative page rewards just before this request in the session (``shaping_alpha=0``: off).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from mtf_agents.slate.common import SlateAgent, SlateAgentConfig, mlp
from mtf_agents.slate.onpolicy import OnPolicyConfigMixin, train_on_policy
from mtf_agents.slate.tree import BalancedTree, build_balanced_tree

__all__ = ["TPGRAgent", "TPGRConfig"]


@dataclass(frozen=True)
class TPGRConfig(OnPolicyConfigMixin, SlateAgentConfig):
    """TPGR. ``tree_depth`` d; ``c = ceil(N^(1/d))`` follows from the catalogue."""

    tree_depth: int = 2
    tree_method: Literal["pca", "kmeans"] = "pca"
    node_policy: Literal["per_node", "shared"] = "per_node"
    node_head_units: int = 32
    shaping_alpha: float = 0.0

    def validate(self) -> None:
        super().validate()
        self.check_range("tree_depth", 1, 8)
        self.check_min("node_head_units", 1)
        self.check_min("shaping_alpha", 0.0)


class _PerNodeHeads(nn.Module):
    """Level ``l``: weights ``(c^l, c, H)`` and biases ``(c^l, c)``; row ``i`` is node ``i``'s softmax layer."""

    def __init__(self, depth: int, branching: int, units: int) -> None:
        super().__init__()
        # Small random weights (not zeros): with zero heads the state encoder gets no gradient at first, and the
        # state-independent biases win the race (the policy collapses onto one popular item for every user).
        self.weight = nn.ParameterList([nn.Parameter(torch.randn(branching ** lvl, branching, units) / units ** 0.5)
                                        for lvl in range(depth)])
        self.bias = nn.ParameterList([nn.Parameter(torch.zeros(branching ** lvl, branching)) for lvl in range(depth)])

    def forward(self, level: int, nodes: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        # nodes (...,), h (..., H) -> logits (..., c)
        return torch.einsum("...ch,...h->...c", self.weight[level][nodes], h) + self.bias[level][nodes]


class _SharedNodePolicy(nn.Module):
    """One network for every node: ``MLP([h, node mean embedding, one-hot level]) -> c`` logits."""

    def __init__(self, node_means: tuple[np.ndarray, ...], branching: int, units: int) -> None:
        super().__init__()
        depth = len(node_means)
        dim = node_means[0].shape[1]
        for lvl, means in enumerate(node_means):
            feats = np.concatenate([means, np.tile(np.eye(depth, dtype=np.float32)[lvl], (len(means), 1))], 1)
            self.register_buffer(f"features_{lvl}", torch.from_numpy(feats), persistent=False)
        self.net = mlp(units + dim + depth, (units,), branching)

    def forward(self, level: int, nodes: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        feats = getattr(self, f"features_{level}")[nodes]
        return self.net(torch.cat([h, feats], dim=-1))


class TPGRAgent(SlateAgent):
    name = "tpgr"
    config_class = TPGRConfig
    summary = "TPGR (MTFSlate-v0): balanced clustering tree, a softmax policy per node, REINFORCE"
    config: TPGRConfig

    def _build(self, seed: int) -> None:
        cfg = self.config
        assert self.item_embeddings is not None and self.observation_dim is not None
        saved = self._saved_structure.get("tree_leaf_item")
        if saved is not None:  # a loaded agent walks the tree it was trained on
            self.tree: BalancedTree = BalancedTree.from_leaf_items(saved, cfg.tree_depth)
        else:
            self.tree = build_balanced_tree(self.item_embeddings, cfg.tree_depth, method=cfg.tree_method, seed=seed)
        t = self.tree
        self._leaf_item = torch.from_numpy(t.leaf_item)
        self._item_leaf = t.item_leaf
        self._sizes = [torch.from_numpy(s) for s in t.node_size]
        self._child_offsets = torch.arange(t.branching)
        self.trunk = mlp(self.observation_dim, cfg.hidden_units, cfg.node_head_units)
        if cfg.node_policy == "per_node":
            self.heads: nn.Module = _PerNodeHeads(t.depth, t.branching, cfg.node_head_units)
        else:
            self.heads = _SharedNodePolicy(t.node_means(self.item_embeddings), t.branching, cfg.node_head_units)
        self.value = mlp(self.observation_dim, cfg.hidden_units, 1)
        self.policy_parameters = [*self.trunk.parameters(), *self.heads.parameters()]

    def _modules(self) -> dict[str, nn.Module]:
        return {"trunk": self.trunk, "heads": self.heads, "value": self.value}

    def _structure_arrays(self) -> dict[str, np.ndarray]:
        return {"tree_leaf_item": self.tree.leaf_item}

    def _available(self, level: int, children: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:
        """Children ``(..., c)`` on level ``level + 1`` that still hold an item not in ``blocked`` ``(..., M)``."""
        span = self.tree.branching ** (self.tree.depth - level - 1)
        size = self._sizes[level + 1][children]
        if blocked.shape[-1] == 0:
            return size > 0
        blocked_child = torch.where(blocked >= 0, torch.div(blocked, span, rounding_mode="floor"), -1)
        taken = (blocked_child.unsqueeze(-1) == children.unsqueeze(-2)).sum(-2)
        return size - taken > 0

    def _greedy_pages(self, h: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
        """Greedy walks of the per-node policies in numpy: the same pages as the torch path with ``explore=False``,
        without torch's per-operation overhead (a decision is ``K * d`` small steps; this is the serving path)."""
        t, c = self.tree, self.tree.branching
        b = len(h)
        weights = [w.detach().numpy() for w in self.heads.weight]
        biases = [bias.detach().numpy() for bias in self.heads.bias]
        sizes = self.tree.node_size
        blocked = (np.where(exclude >= 0, self._item_leaf[np.maximum(exclude, 0)], -1) if exclude is not None
                   else np.empty((b, 0), dtype=np.int64))
        rows, offsets = np.arange(b), np.arange(c)
        pages = np.empty((b, self.page_size), dtype=np.int64)
        # A node's logits depend on the state only: later walks mostly revisit the same nodes, so keep the last
        # logits computed per level and row and recompute only the rows that moved to another node.
        cached_node = [np.full(b, -1, dtype=np.int64) for _ in range(t.depth)]
        cached_logits = [np.empty((b, c), dtype=np.float32) for _ in range(t.depth)]
        for k in range(self.page_size):
            node = np.zeros(b, dtype=np.int64)
            for level in range(t.depth):
                children = node[:, None] * c + offsets
                free = sizes[level + 1][children]
                if blocked.shape[1]:
                    span = c ** (t.depth - level - 1)
                    blocked_child = np.where(blocked >= 0, blocked // span, -1)
                    free = free - (blocked_child[:, :, None] == children[:, None, :]).sum(1)
                moved = np.flatnonzero(cached_node[level] != node)
                if len(moved):
                    at = node[moved]
                    cached_logits[level][moved] = (np.einsum("bch,bh->bc", weights[level][at], h[moved])
                                                   + biases[level][at])
                    cached_node[level][moved] = at
                logits = cached_logits[level].copy()
                logits[free <= 0] = -np.inf
                node = children[rows, logits.argmax(1)]
            pages[:, k] = t.leaf_item[node]
            blocked = np.concatenate([blocked, node[:, None]], axis=1)
        return pages

    def _select(self, obs: torch.Tensor, exclude: np.ndarray | None, *, explore: bool,
                generator: torch.Generator | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        t = self.tree
        b = obs.shape[0]
        h = self.trunk(obs)
        if not explore and self.config.node_policy == "per_node" and not torch.is_grad_enabled():
            return self._greedy_pages(h.numpy(), exclude), {}
        if exclude is None:
            blocked = torch.empty(b, 0, dtype=torch.int64)
        else:
            leaves = np.where(exclude >= 0, self._item_leaf[np.maximum(exclude, 0)], -1)
            blocked = torch.from_numpy(leaves)
        rows = torch.arange(b)
        choices = torch.empty(b, self.page_size, t.depth, dtype=torch.int64)
        avail_all = torch.empty(b, self.page_size, t.depth, t.branching, dtype=torch.bool)
        pages = torch.empty(b, self.page_size, dtype=torch.int64)
        for k in range(self.page_size):
            node = torch.zeros(b, dtype=torch.int64)
            for level in range(t.depth):
                children = node.unsqueeze(1) * t.branching + self._child_offsets
                avail = self._available(level, children, blocked)
                logits = self.heads(level, node, h).masked_fill(~avail, float("-inf"))
                if explore:
                    probs = torch.softmax(logits, dim=1)
                    choice = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                else:
                    choice = logits.argmax(1)
                choices[:, k, level], avail_all[:, k, level] = choice, avail
                node = children[rows, choice]
            pages[:, k] = self._leaf_item[node]
            blocked = torch.cat([blocked, node.unsqueeze(1)], dim=1)
        return pages.numpy(), {"choices": choices.numpy(), "available": avail_all.numpy()}

    def _log_prob_entropy(self, obs: torch.Tensor, pages: torch.Tensor,
                          extra: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.tree
        choices, avail = extra["choices"], extra["available"]  # (B, K, d), (B, K, d, c)
        h = self.trunk(obs).unsqueeze(1).expand(-1, self.page_size, -1)  # (B, K, H)
        node = torch.zeros(choices.shape[:2], dtype=torch.int64)
        log_prob = torch.zeros(obs.shape[0])
        entropy = torch.zeros(obs.shape[0])
        for level in range(t.depth):
            logits = self.heads(level, node, h).masked_fill(~avail[:, :, level], float("-inf"))
            # Masked children: log-prob set to 0 (not -inf) so that 0 * log 0 cannot turn the gradients into NaN.
            logp = torch.log_softmax(logits, dim=-1).masked_fill(~avail[:, :, level], 0.0)
            choice = choices[:, :, level]
            log_prob = log_prob + logp.gather(-1, choice.unsqueeze(-1)).squeeze(-1).sum(1)
            entropy = entropy - (logp.exp().masked_fill(~avail[:, :, level], 0.0) * logp).sum((-1, -2))
            node = node * t.branching + choice
        return log_prob, entropy

    def _train(self, envs: gym.vector.VectorEnv, n_steps: int, *, seed: int, show_progress: bool) -> dict[str, float]:
        return train_on_policy(self, envs, n_steps, seed=seed, show_progress=show_progress)

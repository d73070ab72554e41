"""Large-discrete-action agents for slate recommendation (``MTFSlate-v0``): Wolpertinger, FCPO, TPGR.

Each picks pages of ``K`` distinct items out of ``N`` without scoring every item with a big network per decision:

* :mod:`mtf_agents.slate.wolpertinger`: DDPG proto-action in item-embedding space, kNN, the critic's top-K;
* :mod:`mtf_agents.slate.fcpo`: matrix reconstruction, a ``K x d`` Gaussian matrix against the embedding matrix;
* :mod:`mtf_agents.slate.tpgr`: a softmax policy per node of a balanced clustering tree.

"The chapter" in these modules is chapter 7 (large discrete action spaces) of Liu, Shi and Shang, *Reinforcement
Learning and Large Models in Recommender Systems*; equation numbers are the book's.

Shared parts: :mod:`~mtf_agents.slate.common` (agent base, stepper, returns, latency), :mod:`~mtf_agents.slate.knn`
(pluggable exact / approximate kNN), :mod:`~mtf_agents.slate.tree` (balanced trees), :mod:`~mtf_agents.slate.testing`
(a small env whose best item is known). See ``docs/agents/slate.md``.
"""

"""Progressive training (the paper's PTM), implemented once: each round of a ``progressive`` dataset explores
around an offline agent trained from scratch on every earlier round.

:func:`progressive_trainer` builds the ``train_fn`` that :func:`mtf_gym.datasets.collect_recipe` calls between
rounds. It lives in the agent layer because it builds agents; the dataset layer (``mtf_gym.datasets``) only calls
the function it is given. Both callers use it: ``mtf-collect progressive --agent NAME`` (through
:func:`registry_trainer`) and the benchmark harness's dataset jobs. Round ``r`` trains with
:func:`mtf_gym.datasets.progressive_train_seed` ``(dataset seed, r)``, the one seed rule.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agents.base import Agent

if TYPE_CHECKING:
    from mtf_gym.datasets import RecipeConfig, TrainFn, TransitionData

__all__ = ["ProgressiveRound", "progressive_trainer", "registry_trainer"]


@dataclass(frozen=True)
class ProgressiveRound:
    """One trained round, as reported to ``on_round``.

    Attributes:
        index: the round about to be collected around ``agent`` (1..R-1; round 0 explores around the baseline).
        agent: the fitted agent, the round's exploration centre.
        transitions: transitions it was trained on (every earlier round).
        seed: the training seed (``progressive_train_seed(dataset seed, index)``).
        train_seconds: wall time of ``agent.fit``.
    """

    index: int
    agent: Agent
    transitions: int
    seed: int
    train_seconds: float


def progressive_trainer(
    build: Callable[[], Agent],
    train_steps: int,
    dataset_seed: int,
    *,
    show_progress: bool = False,
    on_round: Callable[[ProgressiveRound], None] | None = None,
) -> TrainFn:
    """``train_fn(data_so_far, round_index) -> centre policy`` for :func:`mtf_gym.datasets.collect_recipe`.

    Args:
        build: returns a fresh, untrained offline agent (called once per round: each round trains from scratch).
        train_steps: gradient steps per round, >= 1.
        dataset_seed: the progressive dataset's seed (``RecipeConfig.seed``); round ``r`` trains with
            ``progressive_train_seed(dataset_seed, r)``.
        show_progress: the agent's progress bar.
        on_round: called after each round's training (e.g. to score the new centre online and log it).
    """
    from mtf_gym.datasets import progressive_train_seed
    from mtf_gym.validation import check_int

    check_int("train_steps", train_steps, minimum=1)

    def train_fn(data: TransitionData, round_index: int) -> Agent:
        agent = build()
        if agent.kind != "offline":
            raise ValueError(f"progressive training needs an offline agent (it learns from the collected rounds); "
                             f"{agent.name!r} is {agent.kind}")
        seed = progressive_train_seed(dataset_seed, round_index)
        start = time.perf_counter()
        agent.fit(data, train_steps, seed=seed, show_progress=show_progress)
        if on_round is not None:
            on_round(ProgressiveRound(round_index, agent, len(data), seed, time.perf_counter() - start))
        return agent

    return train_fn


def registry_trainer(agent: str, config: RecipeConfig, train_steps: int, progress: bool) -> TrainFn:
    """:func:`progressive_trainer` of the registry agent ``agent`` with its default config (``mtf-collect
    --agent``). Raises ``ValueError`` naming the agent when it is unknown or not an offline agent."""
    from agents.registry import get_registry

    registry = get_registry()
    spec = registry.get(agent)  # ValueError listing the known names
    if spec.kind != "offline":
        raise ValueError(f"agent {agent!r} is {spec.kind}; progressive collection needs an offline agent (it learns "
                         "from the collected rounds)")
    return progressive_trainer(lambda: registry.build(agent), train_steps, config.seed, show_progress=progress)

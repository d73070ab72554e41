"""Progressive training (the paper's PTM), implemented once: each round of a ``progressive`` dataset explores
around an offline agent trained on the earlier rounds.

:func:`progressive_trainer` builds the ``train_fn`` that :func:`mtf_gym.datasets.collect_recipe` calls between
rounds. It lives in the agent layer because it builds agents; the dataset layer (``mtf_gym.datasets``) only calls
the function it is given. Both callers use it: ``mtf-collect progressive --agent NAME`` (through
:func:`registry_trainer`) and the benchmark harness's dataset jobs; the harness's final training job on a
progressive dataset (the model after the last round) goes through :func:`start_round` too.

How a round trains is the agent config's choice (IntegratedRL's paper readings, ``docs/agents/integrated_rl.md``):

* ``progressive_data``: ``"cumulative"`` (every round so far, the default) or ``"current_round"`` (the newest
  round only: the paper's "current exploration data" read literally);
* ``progressive_init``: ``"scratch"`` (a new model each round, the default) or ``"warm_start"`` (start from the
  previous round's model; optimiser state fresh). Round 1 has no previous model (round 0 explored around the
  baseline), so it always starts from scratch.

An agent whose config has neither field trains cumulatively from scratch. The one seed rule: round ``r`` trains with
:func:`mtf_gym.datasets.progressive_train_seed` ``(dataset seed, r)`` whatever the two options (a warm start
copies the previous weights over the seeded initialisation; the seed still drives mini-batch sampling).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mtf_agents.base import Agent

if TYPE_CHECKING:
    from mtf_gym.datasets import RecipeConfig, TrainFn, TransitionData

__all__ = [
    "PROGRESSIVE_DATA",
    "PROGRESSIVE_INIT",
    "ProgressiveRound",
    "progressive_options",
    "progressive_trainer",
    "progressive_training_episodes",
    "registry_trainer",
    "round_training_data",
    "start_round",
]

# The readings of "each round trains on the current exploration data" (agent config fields of the same names).
PROGRESSIVE_DATA = ("cumulative", "current_round")
PROGRESSIVE_INIT = ("scratch", "warm_start")


@dataclass(frozen=True)
class ProgressiveRound:
    """One trained round, as reported to ``on_round``.

    Attributes:
        index: the round about to be collected around ``agent`` (1..R-1; round 0 explores around the baseline).
        agent: the fitted agent, the round's exploration centre.
        transitions: transitions it was trained on (every earlier round, or only the newest one).
        seed: the training seed (``progressive_train_seed(dataset seed, index)``).
        train_seconds: wall time of ``agent.fit``.
        warm_started: whether it started from the previous round's model.
    """

    index: int
    agent: Agent
    transitions: int
    seed: int
    train_seconds: float
    warm_started: bool = False


def progressive_options(agent: Agent) -> tuple[str, str]:
    """``(progressive_data, progressive_init)`` of ``agent``'s config (``("cumulative", "scratch")`` when its
    config has no such fields); a value outside :data:`PROGRESSIVE_DATA` / :data:`PROGRESSIVE_INIT` is an error."""
    data = getattr(agent.config, "progressive_data", PROGRESSIVE_DATA[0])
    init = getattr(agent.config, "progressive_init", PROGRESSIVE_INIT[0])
    if data not in PROGRESSIVE_DATA:
        raise ValueError(f"{agent.name} config progressive_data must be one of {PROGRESSIVE_DATA}, got {data!r}")
    if init not in PROGRESSIVE_INIT:
        raise ValueError(f"{agent.name} config progressive_init must be one of {PROGRESSIVE_INIT}, got {init!r}")
    return data, init


def progressive_training_episodes(progressive_data: str, rounds: Sequence[Mapping[str, Any]]) -> range:
    """Episodes a progressive round trains on, from the finished rounds' records.

    ``rounds`` are the records of the rounds collected so far, in order, each with ``first_episode`` and
    ``sessions`` (as ``mtf_gym.datasets.collect_recipe`` writes them to ``metadata["rounds"]``). Returns every
    episode of those rounds (``"cumulative"``) or the newest round's (``"current_round"``).
    """
    if progressive_data not in PROGRESSIVE_DATA:
        raise ValueError(f"progressive_data must be one of {PROGRESSIVE_DATA}, got {progressive_data!r}")
    if not rounds:
        raise ValueError("rounds must hold at least one finished round")
    last = rounds[-1]
    end = int(last["first_episode"]) + int(last["sessions"])
    first = rounds[-1] if progressive_data == "current_round" else rounds[0]
    return range(int(first["first_episode"]), end)


def round_training_data(data: TransitionData, progressive_data: str) -> TransitionData:
    """``data`` (the rounds of a progressive dataset so far) restricted as ``progressive_data`` says. Cumulative
    training returns ``data`` itself; data without round records (not progressive) is returned unchanged."""
    rounds = data.metadata.get("rounds")
    episodes = progressive_training_episodes(progressive_data, rounds) if rounds else None
    if episodes is None or (episodes.start == 0 and episodes.stop == data.num_episodes):
        return data
    if not 0 <= episodes.start < episodes.stop <= data.num_episodes:
        raise ValueError(f"the round records cover episodes {episodes.start}..{episodes.stop - 1}, but the data has "
                         f"{data.num_episodes} episodes")
    starts = data.episode_starts()
    rows = slice(int(starts[episodes.start]), int(starts[episodes.stop]))
    fields = {name: np.asarray(array[rows]) for name, array in data.arrays().items()}
    fields["episode_ids"] = fields["episode_ids"] - episodes.start
    kept = [r for r in rounds if int(r["first_episode"]) >= episodes.start]
    kept = [{**r, "first_episode": int(r["first_episode"]) - episodes.start} for r in kept]
    metadata = {**data.metadata, "rounds": kept, "num_episodes": len(episodes),
                "num_transitions": rows.stop - rows.start, "training_rounds": progressive_data}
    return dataclasses.replace(data, **fields, metadata=metadata)


def start_round(agent: Agent, data: TransitionData, previous: Agent | None) -> tuple[TransitionData, bool]:
    """Prepare ``agent`` (fresh, untrained) for a progressive round: the data it trains on and its initialisation.

    Returns ``(training data, warm_started)``: ``round_training_data(data, progressive_data)``, and whether the agent
    now starts from ``previous`` (``progressive_init="warm_start"`` and a previous model exists).
    """
    progressive_data, progressive_init = progressive_options(agent)
    warm = progressive_init == "warm_start" and previous is not None
    if warm:
        agent.warm_start_from(previous)
    return round_training_data(data, progressive_data), warm


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
        build: returns a fresh, untrained offline agent (called once per round); its config's ``progressive_data``
            and ``progressive_init`` say what the round trains on and whether it starts from the previous round's
            model (module docstring).
        train_steps: gradient steps per round, >= 1.
        dataset_seed: the progressive dataset's seed (``RecipeConfig.seed``); round ``r`` trains with
            ``progressive_train_seed(dataset_seed, r)``.
        show_progress: the agent's progress bar.
        on_round: called after each round's training (e.g. to score the new centre online and log it).
    """
    from mtf_gym.datasets import progressive_train_seed
    from mtf_gym.validation import check_int

    check_int("train_steps", train_steps, minimum=1)
    previous: list[Agent] = []  # the last round's model (a warm start's source)

    def train_fn(data: TransitionData, round_index: int) -> Agent:
        agent = build()
        if agent.kind != "offline":
            raise ValueError(f"progressive training needs an offline agent (it learns from the collected rounds); "
                             f"{agent.name!r} is {agent.kind}")
        train, warm = start_round(agent, data, previous[-1] if previous else None)
        seed = progressive_train_seed(dataset_seed, round_index)
        start = time.perf_counter()
        agent.fit(train, train_steps, seed=seed, show_progress=show_progress)
        previous[:] = [agent]
        if on_round is not None:
            on_round(ProgressiveRound(round_index, agent, len(train), seed, time.perf_counter() - start, warm))
        return agent

    return train_fn


def registry_trainer(agent: str, config: RecipeConfig, train_steps: int, progress: bool,
                     overrides: Mapping[str, Any] | None = None) -> TrainFn:
    """:func:`progressive_trainer` of the registry agent ``agent`` with its default config and ``overrides`` (config
    fields: ``mtf-collect --agent NAME --agent-set KEY=VALUE``). Raises ``ValueError`` naming the agent when it is
    unknown or not an offline agent, and naming the field when an override is unknown or invalid (checked before any
    round is collected)."""
    from mtf_agents.registry import get_registry

    registry = get_registry()
    spec = registry.get(agent)  # ValueError listing the known names
    if spec.kind != "offline":
        raise ValueError(f"agent {agent!r} is {spec.kind}; progressive collection needs an offline agent (it learns "
                         "from the collected rounds)")
    fields = dict(overrides or {})
    progressive_options(registry.build(agent, **fields))  # bad fields / values fail now, not after round 0
    return progressive_trainer(lambda: registry.build(agent, **fields), train_steps, config.seed,
                               show_progress=progress)

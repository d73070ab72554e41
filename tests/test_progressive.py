"""Progressive training (mtf_agents.progressive): the rounds honour the agent config's ``progressive_data`` and
``progressive_init`` (IntegratedRL's paper readings), with one seed rule."""

from __future__ import annotations

import numpy as np
import pytest

from mtf_agents.progressive import (
    ProgressiveRound,
    progressive_trainer,
    progressive_training_episodes,
    round_training_data,
)
from mtf_agents.registry import build_agent
from mtf_gym import MTFSessionV1Config
from mtf_gym.datasets import RecipeConfig, collect_recipe, progressive_train_seed

ENV = MTFSessionV1Config(max_requests=4)
TINY = {"hidden_units": (16, 16), "batch_size": 16, "n_critics": 2}


def _collect(rounds_log: list[ProgressiveRound], *, steps: int = 3, lr: float = 3e-4, **options: str):
    def build():
        return build_agent("integrated_rl", **TINY, actor_learning_rate=lr, critic_learning_rate=lr, **options)

    config = RecipeConfig("progressive", sessions=12, seed=5, rounds=3, num_envs=4, env=ENV)
    train_fn = progressive_trainer(build, steps, config.seed, on_round=rounds_log.append)
    return collect_recipe(config, train_fn=train_fn, progress=False)


def test_episode_rule() -> None:
    rounds = [{"first_episode": 0, "sessions": 10}, {"first_episode": 10, "sessions": 12}]
    assert progressive_training_episodes("cumulative", rounds) == range(0, 22)
    assert progressive_training_episodes("current_round", rounds) == range(10, 22)
    with pytest.raises(ValueError, match="progressive_data must be one of"):
        progressive_training_episodes("all", rounds)


def test_current_round_trains_on_the_newest_round_only() -> None:
    cumulative: list[ProgressiveRound] = []
    current: list[ProgressiveRound] = []
    data = _collect(cumulative)
    data_current = _collect(current, progressive_data="current_round")
    sizes = [r["transitions"] for r in data.metadata["rounds"]]
    sizes_current = [r["transitions"] for r in data_current.metadata["rounds"]]
    # Round 1 trains on round 0 either way (same data, same seed: the same centre, hence the same round 1 data).
    assert [r.transitions for r in cumulative] == [sizes[0], sizes[0] + sizes[1]]
    assert [r.transitions for r in current] == [sizes_current[0], sizes_current[1]]
    assert sizes_current[:2] == sizes[:2]
    assert [r.seed for r in current] == [r.seed for r in cumulative] == [progressive_train_seed(5, r) for r in (1, 2)]
    # The selected rows are exactly the newest round's, renumbered from episode 0.
    newest = round_training_data(data_current, "current_round")
    first = data_current.metadata["rounds"][-1]["first_episode"]
    assert newest.num_episodes == data_current.num_episodes - first
    np.testing.assert_array_equal(newest.observations, data_current.observations[-len(newest):])
    assert newest.episode_ids[0] == 0 and round_training_data(data_current, "cumulative") is data_current


def test_warm_start_starts_from_the_previous_rounds_model() -> None:
    # A learning rate of ~0 makes the trained model its initialisation: a warm-started round 2 acts like round 1,
    # a round 2 from scratch (another seed, another initialisation) does not.
    warm: list[ProgressiveRound] = []
    scratch: list[ProgressiveRound] = []
    data = _collect(warm, steps=1, lr=1e-12, progressive_init="warm_start")
    _collect(scratch, steps=1, lr=1e-12)
    obs = data.observations[:16]
    assert [r.warm_started for r in warm] == [False, True] and not any(r.warm_started for r in scratch)
    np.testing.assert_allclose(warm[1].agent.act(obs), warm[0].agent.act(obs), atol=1e-5)
    assert not np.allclose(scratch[1].agent.act(obs), scratch[0].agent.act(obs), atol=1e-3)
    # Round 1 is the same model either way (no previous round to start from).
    np.testing.assert_array_equal(warm[0].agent.act(obs), scratch[0].agent.act(obs))


def test_warm_start_is_refused_by_agents_that_cannot() -> None:
    previous = build_agent("td3bc", hidden_units=(8,), batch_size=8)
    with pytest.raises(NotImplementedError, match="cannot start training from another model"):
        build_agent("iql", hidden_units=(8,), batch_size=8).warm_start_from(previous)

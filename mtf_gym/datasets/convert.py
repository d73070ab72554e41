"""Conversion of :class:`TransitionData` into the d3rlpy ``MDPDataset`` the d3rlpy agents train on.

IntegratedRL's banded dataset is built in ``agents/integrated_rl/convert.py`` (``mtf_gym`` imports no agent).

d3rlpy 2.8's ``get_minari`` concatenates every Minari episode's full ``observations`` (``T + 1`` rows, the final
observation included) next to its ``T`` actions, so from the second episode on each observation is paired with the
wrong action (shifted by one row per preceding episode). This builds the d3rlpy dataset from the flat
per-transition rows of :class:`TransitionData` instead (row ``t`` = the state the action was taken in; episodes
end at ``terminals | truncations``), which :func:`~mtf_gym.datasets.from_minari` aligned per episode
(``observations = obs[:-1]``, ``next_observations = obs[1:]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .transitions import TransitionData

__all__ = ["to_mdp_dataset"]


def to_mdp_dataset(data: TransitionData) -> Any:
    """A ``d3rlpy.dataset.MDPDataset`` with one d3rlpy episode per session.

    ``terminals`` are the user-left flags, ``timeouts`` the truncations (request cap), so d3rlpy bootstraps after a
    truncation and not after a termination. d3rlpy keeps no ``s'`` for an episode's last step: a truncated
    session's final transition is not sampled for TD learning (d3rlpy's convention).
    """
    from d3rlpy.constants import ActionSpace
    from d3rlpy.dataset import MDPDataset

    return MDPDataset(
        observations=data.observations,
        actions=data.actions,
        rewards=data.rewards[:, None],
        terminals=data.terminals.astype(np.float32),
        timeouts=data.truncations.astype(np.float32),
        action_space=ActionSpace.CONTINUOUS,
        action_size=data.action_dim,
    )

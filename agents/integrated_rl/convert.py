"""IntegratedRL's training data from an exploration dataset: :class:`~mtf_gym.datasets.TransitionData` ->
:class:`~mtf_agents.integrated_rl.data.BandedReplayBuffer`.

The conversion lives with IntegratedRL (not in ``mtf_gym.datasets``) because the layers point one way:
``mtf_gym`` <- ``agents`` <- ``benchmarks``. Episodes are cut from the flat per-transition rows of
``TransitionData`` (not from d3rlpy's ``get_minari``, which misaligns observations after the first episode; see
:func:`mtf_gym.datasets.to_mdp_dataset`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .data import BandedReplayBuffer, make_banded_dataset

if TYPE_CHECKING:
    from mtf_gym.datasets import TransitionData

__all__ = ["to_banded_dataset"]


def to_banded_dataset(data: TransitionData) -> BandedReplayBuffer:
    """A ``BandedReplayBuffer`` with one episode per session, the band recorded with every transition and, when
    the data has more than one, the per-group rewards (``reward_components``, one critic set each).

    ``terminals`` are the user-left flags and ``timeouts`` the truncations (request cap), as in
    :func:`mtf_gym.datasets.to_mdp_dataset`; ``centres``, ``lower`` and ``upper`` are the exploration centre
    ``mu(s)`` and the band offsets around it that the behaviour policy logged.
    """
    return make_banded_dataset(
        observations=data.observations,
        actions=data.actions,
        rewards=data.rewards,
        terminals=data.terminals,
        timeouts=data.truncations,
        centres=data.centres,
        lowers=data.lower,
        uppers=data.upper,
        reward_components=data.reward_components if data.num_reward_components > 1 else None,
    )

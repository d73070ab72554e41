"""IntegratedRL (arXiv 2404.17589) as a d3rlpy algorithm.

Importing this package registers ``IntegratedRLConfig`` with d3rlpy, so ``d3rlpy.load_learnable`` can rebuild saved
models (import it before loading, as with any d3rlpy plug-in).
"""

from mtf_agents._quiet import import_gym_quietly

import_gym_quietly()  # before d3rlpy (imported by .algo), which imports gym and would print its banner

from .algo import IntegratedRL, IntegratedRLConfig
from .convert import to_banded_dataset
from .data import (
    BandedEpisode,
    BandedReplayBuffer,
    BandedTorchMiniBatch,
    BandedTransition,
    BandedTransitionMiniBatch,
    BandedTransitionPicker,
    make_banded_dataset,
    require_banded_dataset,
)
from .ensemble import EnsembleQFunction, VectorizedLayerNorm, VectorizedLinear, build_ensemble_q_function
from .impl import (
    actor_objective,
    band_factor,
    band_penalty,
    critic_objective,
    smoothed_target_actions,
    td_targets,
)

__all__ = [
    "BandedEpisode",
    "BandedReplayBuffer",
    "BandedTorchMiniBatch",
    "BandedTransition",
    "BandedTransitionMiniBatch",
    "BandedTransitionPicker",
    "EnsembleQFunction",
    "IntegratedRL",
    "IntegratedRLConfig",
    "VectorizedLayerNorm",
    "VectorizedLinear",
    "actor_objective",
    "band_factor",
    "band_penalty",
    "build_ensemble_q_function",
    "critic_objective",
    "make_banded_dataset",
    "require_banded_dataset",
    "smoothed_target_actions",
    "td_targets",
    "to_banded_dataset",
]

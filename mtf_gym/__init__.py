"""mtf-gym: an open testbed for reinforcement-learning multi-task fusion (RL-MTF) in recommender feeds.

``import mtf_gym`` registers ``MTFSession-v0`` with Gymnasium (single env and natively batched vector env).
"""

from gymnasium.envs.registration import register, registry

# First: clears a stale numba kernel cache before any kernel module is imported (see the module).
from mtf_gym import _kernel_cache  # noqa: F401
from mtf_gym.config import (
    PREDICTABLE_TASKS,
    RESPONSE_FIELDS,
    SEGMENT_NAMES,
    MTFSessionConfig,
    RankerConfig,
    RewardWeights,
    SegmentParams,
    UserModelConfig,
)
from mtf_gym.envs import MTFSessionEnv, MTFSessionVectorEnv
from mtf_gym.fusion import (
    FusionRanges,
    action_to_fusion_params,
    fused_log_scores,
    fused_scores,
    fusion_params_to_action,
)
from mtf_gym.policies import BaselineFusion, BaselinePolicy, ConstantPolicy, RandomFusionPolicy
from mtf_gym.simulator import OBSERVATION_FEATURES, SessionSimulator
from mtf_gym.threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

ENV_ID = "MTFSession-v0"

if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="mtf_gym.envs.session:MTFSessionEnv",
        vector_entry_point="mtf_gym.envs.vector:MTFSessionVectorEnv",
        # The request cap lives in the config (``max_requests``) so the single and vector envs share it.
        max_episode_steps=None,
    )

__all__ = [
    "ENV_ID",
    "OBSERVATION_FEATURES",
    "PREDICTABLE_TASKS",
    "RESPONSE_FIELDS",
    "SEGMENT_NAMES",
    "BaselineFusion",
    "BaselinePolicy",
    "ConstantPolicy",
    "FusionRanges",
    "MTFSessionConfig",
    "MTFSessionEnv",
    "MTFSessionVectorEnv",
    "RandomFusionPolicy",
    "RankerConfig",
    "RewardWeights",
    "SegmentParams",
    "SessionSimulator",
    "UserModelConfig",
    "action_to_fusion_params",
    "fused_log_scores",
    "fused_scores",
    "fusion_params_to_action",
    "get_num_threads",
    "set_num_threads",
]

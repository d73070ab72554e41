"""mtf-gym: an open testbed for reinforcement-learning multi-task fusion (RL-MTF) in recommender feeds.

``import mtf_gym`` registers with Gymnasium (each with a natively batched vector env):

* ``MTFSession-v1`` (the default version): fusion weights per request, on users who want different fusions;
* ``MTFSession-v0``: the first version, kept unchanged;
* ``MTFSlate-v0``: the same v1 users, but the agent picks the page's items from a large catalogue.
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
from mtf_gym.envs import (
    MTFSessionEnv,
    MTFSessionV1Env,
    MTFSessionV1VectorEnv,
    MTFSessionVectorEnv,
    config_class_for,
    env_id_of,
    make_env_config,
)
from mtf_gym.fusion import (
    FusionRanges,
    action_to_fusion_params,
    fused_log_scores,
    fused_scores,
    fusion_params_to_action,
)
from mtf_gym.policies import BaselineFusion, BaselinePolicy, ConstantPolicy, RandomFusionPolicy
from mtf_gym.sim.config import (
    CatalogueConfig,
    MTFSessionV1Config,
    RankerV1Config,
    TraitPopulation,
    UserDynamicsV1,
)
from mtf_gym.sim.layout import OBSERVATION_FEATURES_V1
from mtf_gym.sim.simulator import UserSimulator
from mtf_gym.simulator import OBSERVATION_FEATURES, SessionSimulator
from mtf_gym.threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

ENV_ID = "MTFSession-v1"  # the default version everywhere (benchmarks, docs)
ENV_ID_V0 = "MTFSession-v0"
SLATE_ENV_ID = "MTFSlate-v0"

_ENVS = {
    ENV_ID_V0: ("mtf_gym.envs.session:MTFSessionEnv", "mtf_gym.envs.vector:MTFSessionVectorEnv"),
    ENV_ID: ("mtf_gym.envs.session:MTFSessionV1Env", "mtf_gym.envs.vector:MTFSessionV1VectorEnv"),
    SLATE_ENV_ID: ("mtf_gym.envs.slate:MTFSlateEnv", "mtf_gym.envs.slate:MTFSlateVectorEnv"),
}
for _env_id, (_entry, _vector_entry) in _ENVS.items():
    if _env_id not in registry:
        # The request cap lives in the config (``max_requests``) so the single and vector envs share it.
        register(id=_env_id, entry_point=_entry, vector_entry_point=_vector_entry, max_episode_steps=None)

__all__ = [
    "ENV_ID",
    "ENV_ID_V0",
    "OBSERVATION_FEATURES",
    "OBSERVATION_FEATURES_V1",
    "PREDICTABLE_TASKS",
    "RESPONSE_FIELDS",
    "SEGMENT_NAMES",
    "SLATE_ENV_ID",
    "BaselineFusion",
    "BaselinePolicy",
    "CatalogueConfig",
    "ConstantPolicy",
    "FusionRanges",
    "MTFSessionConfig",
    "MTFSessionEnv",
    "MTFSessionV1Config",
    "MTFSessionV1Env",
    "MTFSessionV1VectorEnv",
    "MTFSessionVectorEnv",
    "RandomFusionPolicy",
    "RankerConfig",
    "RankerV1Config",
    "RewardWeights",
    "SegmentParams",
    "SessionSimulator",
    "TraitPopulation",
    "UserDynamicsV1",
    "UserModelConfig",
    "UserSimulator",
    "action_to_fusion_params",
    "config_class_for",
    "env_id_of",
    "fused_log_scores",
    "fused_scores",
    "fusion_params_to_action",
    "get_num_threads",
    "make_env_config",
    "set_num_threads",
]

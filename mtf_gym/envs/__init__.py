"""Gymnasium environments of mtf-gym."""

from mtf_gym.envs.session import MTFSessionEnv, MTFSessionV1Env
from mtf_gym.envs.vector import MTFSessionV1VectorEnv, MTFSessionVectorEnv
from mtf_gym.envs.versions import config_class_for, env_id_of, make_env_config

__all__ = ["MTFSessionEnv", "MTFSessionV1Env", "MTFSessionV1VectorEnv", "MTFSessionVectorEnv", "config_class_for",
           "env_id_of", "make_env_config"]

"""Gymnasium environments of mtf-gym."""

from mtf_gym.envs.session import MTFSessionEnv, MTFSessionV1Env
from mtf_gym.envs.vector import MTFSessionV1VectorEnv, MTFSessionVectorEnv

__all__ = ["MTFSessionEnv", "MTFSessionV1Env", "MTFSessionV1VectorEnv", "MTFSessionVectorEnv"]

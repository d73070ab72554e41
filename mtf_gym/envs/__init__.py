"""Gymnasium environments of mtf-gym."""

from mtf_gym.envs.session import MTFSessionEnv
from mtf_gym.envs.vector import MTFSessionVectorEnv

__all__ = ["MTFSessionEnv", "MTFSessionVectorEnv"]

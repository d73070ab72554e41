"""Exploration datasets for MTFSession-v1 (and v0; the datasheet records the version): collection, the paper's
recipes, Minari storage (and a fast ``.npz`` working copy), d3rlpy conversion.

Typical use::

    from mtf_gym.datasets import RecipeConfig, collect_recipe, save_dataset, load_dataset, to_mdp_dataset

    data = collect_recipe(RecipeConfig("uniform", sessions=10_000, seed=0))
    save_dataset(data, "datasets", "mtf/uniform-seed0-v0")
    data = load_dataset("mtf/uniform-seed0-v0", "datasets")
    mdp = to_mdp_dataset(data)            # d3rlpy MDPDataset, observations aligned

Storage needs the ``datasets`` extra (Minari + h5py), conversion needs ``d3rlpy``; both are imported lazily.
``docs/datasets.md`` documents the recipes, the format and the datasheet.
"""

from .collect import REWARD_GROUPS, action_names, child_seed, collect, reward_group_matrix
from .convert import to_mdp_dataset
from .recipes import RECIPES, RecipeConfig, TrainFn, behaviour_policy, collect_recipe, progressive_train_seed
from .storage import SIDECAR_NAME, DatasetError, dataset_path, from_minari, load_dataset, save_dataset
from .transitions import ARRAY_FIELDS, TransitionData, env_config_of
from .working_copy import load_working_copy, save_working_copy

__all__ = [
    "ARRAY_FIELDS",
    "RECIPES",
    "REWARD_GROUPS",
    "SIDECAR_NAME",
    "DatasetError",
    "RecipeConfig",
    "TrainFn",
    "TransitionData",
    "action_names",
    "behaviour_policy",
    "child_seed",
    "collect",
    "collect_recipe",
    "dataset_path",
    "env_config_of",
    "from_minari",
    "load_dataset",
    "load_working_copy",
    "progressive_train_seed",
    "reward_group_matrix",
    "save_dataset",
    "save_working_copy",
    "to_mdp_dataset",
]

"""The paper's exploration datasets (Sec. 4, docs/design.md#exploration) as recipes with one shared session budget.

* ``baseline``: the baseline policy ``mu_bp``, no noise (the test set / A-B control data);
* ``gaussian``: ``clip(mu_bp(s) + N(0, sigma^2))``, sigma 0.2;
* ``uniform``: ``clip(mu_bp(s) + U(lower, upper))``, +-0.15 (the paper's bounded exploration);
* ``progressive`` (PTM): ``rounds`` rounds (default 5) of ``sessions / rounds`` sessions each, bounded-uniform
  around the latest policy: round 0 around ``mu_bp``, round ``r`` around ``train_fn(data of rounds < r, r)``.

Every recipe records the band ``[lower, upper]`` with each transition (for Gaussian and baseline data it is the
nominal band, not the noise's support; ``docs/datasets.md``).

The exploration centre is the constant control ``BaselinePolicy`` unless ``collect_recipe(centre_policy=...)`` passes
a state-dependent one, as the paper does ("personalised upper and lower bounds per user" around the baseline *RL*
policy ``mu_bp(s)``): e.g. a trained agent (``mtf_agents.load_agent(path)``, an IntegratedRL of a previous round, or the
ES agent's profile-linear policy). The datasheet's ``metadata["centre"]`` records which centre was used and whether
it varied across states in the data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtf_gym.envs.versions import SESSION_ENV_IDS, AnyConfig, make_env_config
from mtf_gym.exploration import (
    DEFAULT_SIGMA,
    NOMINAL_LOWER,
    NOMINAL_UPPER,
    BoundedUniform,
    CentrePolicy,
    ExplorationPolicy,
    GaussianNoise,
    NoExploration,
    check_band,
    check_sigma,
)
from mtf_gym.policies import BaselinePolicy
from mtf_gym.validation import check, check_int

from .collect import child_seed, collect, seed_to_json
from .transitions import TransitionData

__all__ = ["RECIPES", "RecipeConfig", "TrainFn", "behaviour_policy", "centre_record", "collect_recipe",
           "progressive_train_seed"]

RECIPES: tuple[str, ...] = ("baseline", "gaussian", "uniform", "progressive")

# Trains the next exploration centre from the data of the finished rounds; ``round`` is the round about to start.
TrainFn = Callable[[TransitionData, int], CentrePolicy]

Param = float | tuple[float, ...]
# SeedSequence path of the training seeds: round r trains with child (PROGRESSIVE_TRAIN_PATH, r) of the dataset seed,
# apart from round r's collection seeds (child (r,)).
PROGRESSIVE_TRAIN_PATH = 1000


def progressive_train_seed(seed: int | np.random.SeedSequence, round_index: int) -> int:
    """The seed that trains round ``round_index``'s exploration centre of a progressive dataset of seed ``seed``.

    The one seed rule of progressive training (the ``mtf-collect`` CLI and the benchmark harness both train
    through ``mtf_agents.progressive.progressive_trainer``, which uses it): derived from the dataset seed like
    every other seed of a collection, so one dataset seed fixes the whole progressive dataset.
    """
    return int(child_seed(seed, PROGRESSIVE_TRAIN_PATH, round_index).generate_state(1)[0])


def _count(value: object, name: str, minimum: int = 1) -> None:
    check_int(name, value, minimum=minimum, owner="RecipeConfig")


@dataclass(frozen=True)
class RecipeConfig:
    """A dataset recipe: what to collect, how much, and from which seed.

    Attributes:
        recipe: one of :data:`RECIPES`.
        sessions: session budget (complete episodes), the same for every recipe of a comparison.
        seed: the one seed users and exploration noise derive from.
        sigma: Gaussian noise std (``gaussian``), scalar or one value per action dimension.
        lower, upper: band offsets around the centre: the uniform noise's support (``uniform``, ``progressive``)
            and the band recorded with every transition (all recipes).
        rounds: progressive rounds R (``progressive``); round r gets ``sessions // R`` sessions, the first
            ``sessions % R`` rounds one more.
        num_envs: sessions stepped in parallel.
        env: the environment config; its type is the version (``MTFSessionV1Config``: ``MTFSession-v1``, the
            default; ``MTFSessionConfig``: ``MTFSession-v0``).
    """

    recipe: str
    sessions: int = 10_000
    seed: int = 0
    sigma: Param = DEFAULT_SIGMA
    lower: Param = NOMINAL_LOWER
    upper: Param = NOMINAL_UPPER
    rounds: int = 5
    num_envs: int = 1024
    env: AnyConfig = field(default_factory=lambda: make_env_config("MTFSession-v1"))

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"RecipeConfig.recipe must be one of {RECIPES}, got {self.recipe!r}")
        _count(self.sessions, "sessions")
        _count(self.seed, "seed", minimum=0)
        _count(self.rounds, "rounds")
        _count(self.num_envs, "num_envs")
        # Only the progressive recipe has rounds; the others ignore the field (its default is 5).
        check(self.recipe != "progressive" or self.rounds <= self.sessions, "rounds", f"<= sessions ({self.sessions})",
              self.rounds, owner="RecipeConfig")
        check_sigma(self.sigma, "RecipeConfig.sigma")
        check_band(self.lower, self.upper, "RecipeConfig.lower", "RecipeConfig.upper")
        if type(self.env) not in SESSION_ENV_IDS.values():
            raise ValueError(f"RecipeConfig.env must be one of {[c.__name__ for c in SESSION_ENV_IDS.values()]} "
                             f"(MTFSession-v0, -v1), got {type(self.env).__name__}")
        for name in ("sigma", "lower", "upper"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)):  # lists/arrays -> tuples: the config stays hashable
                object.__setattr__(self, name, tuple(float(v) for v in np.asarray(value, dtype=np.float64)))

    @property
    def dataset_id(self) -> str:
        """Default Minari id, ``mtf/<recipe>-seed<seed>-v0``."""
        return f"mtf/{self.recipe}-seed{self.seed}-v0"

    def round_sizes(self) -> list[int]:
        """Sessions per progressive round (a single entry for the other recipes)."""
        rounds = self.rounds if self.recipe == "progressive" else 1
        base, extra = divmod(self.sessions, rounds)
        return [base + (r < extra) for r in range(rounds)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for datasheets)."""
        out = dataclasses.asdict(self)
        out["env"] = self.env.to_dict()
        return out


def behaviour_policy(config: RecipeConfig, centre: CentrePolicy, rng: np.random.Generator) -> ExplorationPolicy:
    """The recipe's behaviour policy around ``centre``."""
    if config.recipe == "baseline":
        return NoExploration(centre, rng=rng, band_lower=config.lower, band_upper=config.upper)
    if config.recipe == "gaussian":
        return GaussianNoise(centre, config.sigma, rng=rng, band_lower=config.lower, band_upper=config.upper)
    return BoundedUniform(centre, config.lower, config.upper, rng=rng)


def centre_record(centre: CentrePolicy, source: str, data: TransitionData) -> dict[str, Any]:
    """Datasheet entry for an exploration centre: its name, where it came from, and whether it was personalised.

    ``varies_across_states`` is measured on the collected centres (any action dimension not constant), so a
    state-dependent policy that happened to act constantly is reported as it behaved.
    """
    varies = bool(len(data) > 0 and (np.ptp(data.centres, axis=0) > 0).any())
    name = getattr(centre, "name", None) or type(centre).__name__
    return {"policy": str(name), "source": source, "varies_across_states": varies}


def collect_recipe(
    config: RecipeConfig,
    *,
    centre_policy: CentrePolicy | None = None,
    train_fn: TrainFn | None = None,
    progress: bool = True,
) -> TransitionData:
    """Collect the dataset of ``config``.

    Args:
        config: the recipe.
        centre_policy: exploration centre ``obs_batch -> actions_batch`` of the first (only) round; default the
            constant control ``BaselinePolicy(config.env)``. A state-dependent policy (a trained agent, e.g.
            IntegratedRL or ES) gives every user a personalised band, the paper's arrangement.
        train_fn: ``progressive`` only (required there): ``train_fn(data_so_far, round) -> centre_policy`` trains
            the centre of round ``round`` (1..R-1) on the transitions of rounds ``0..round-1``.
        progress: tqdm progress bars.

    Returns:
        :class:`TransitionData` whose metadata holds the recipe (``metadata["recipe"]``, ``["recipe_config"]``),
        the centre (``metadata["centre"]``: policy name, ``source`` ``"baseline"`` or ``"given"``, and
        ``varies_across_states``) and, for ``progressive``, each round's episode range and centre
        (``metadata["rounds"][r]["centre"]``, source ``"train_fn"`` from round 1 on).
    """
    if not isinstance(config, RecipeConfig):
        raise TypeError(f"config must be a RecipeConfig, got {type(config).__name__}")
    if config.recipe == "progressive" and config.rounds > 1 and train_fn is None:
        raise ValueError("progressive collection needs a trainer: pass train_fn(data_so_far, round) -> "
                         "centre_policy (e.g. one that fits IntegratedRL on data_so_far)")
    if config.recipe != "progressive" and train_fn is not None:
        raise ValueError(f"train_fn is only used by the progressive recipe, not {config.recipe!r}")
    centre = centre_policy if centre_policy is not None else BaselinePolicy(config.env)
    source = "given" if centre_policy is not None else "baseline"
    # The env config is already in the datasheet's "env_config"; do not repeat it.
    extra = {"recipe": config.recipe, "recipe_config": {k: v for k, v in config.to_dict().items() if k != "env"}}
    # The behaviour's generator is replaced by collect() with one derived from the seed.
    placeholder = np.random.default_rng(0)
    if config.recipe != "progressive":
        data = collect(behaviour_policy(config, centre, placeholder), sessions=config.sessions, seed=config.seed,
                       config=config.env, num_envs=config.num_envs, progress=progress, metadata=extra)
        return dataclasses.replace(data, metadata={**data.metadata, "centre": centre_record(centre, source, data)})

    parts: list[TransitionData] = []
    rounds: list[dict[str, Any]] = []
    first_episode = 0
    for r, size in enumerate(config.round_sizes()):
        if r > 0:
            assert train_fn is not None
            centre = train_fn(_merge(parts, rounds, config, extra), r)
            if not callable(centre):
                raise TypeError(f"train_fn must return a callable centre policy, got {type(centre).__name__}")
        seed = child_seed(config.seed, r)
        part = collect(behaviour_policy(config, centre, placeholder), sessions=size, seed=seed, config=config.env,
                       num_envs=config.num_envs, progress=progress)
        parts.append(part)
        rounds.append({"round": r, "sessions": size, "first_episode": first_episode, "transitions": len(part),
                       "env_steps": part.metadata["env_steps"],
                       "centre": centre_record(centre, source if r == 0 else "train_fn", part),
                       "behaviour": part.metadata["behaviour"], "seed": seed_to_json(seed)})
        first_episode += part.num_episodes
    return _merge(parts, rounds, config, extra)


def _merge(parts: list[TransitionData], rounds: list[dict[str, Any]], config: RecipeConfig,
           extra: dict[str, Any]) -> TransitionData:
    """The rounds so far as one dataset; its datasheet describes the progressive behaviour as a whole."""
    meta = dict(parts[0].metadata)
    for key in ("behaviour", "num_envs"):
        meta.pop(key, None)
    sessions = sum(p.num_episodes for p in parts)
    meta.update(extra)
    meta.update({
        "behaviour": {"kind": "progressive", "lower": rounds[0]["behaviour"]["lower"],
                      "upper": rounds[0]["behaviour"]["upper"], "rounds_planned": config.rounds},
        "seed": config.seed,
        "seed_derivation": "round r collects with SeedSequence(seed) child (r,), which derives its env seeds "
                           "(r, 0) and exploration noise (r, 1); round r's centre trains with seed "
                           "progressive_train_seed(seed, r) (child (1000, r))",
        "num_envs": config.num_envs,
        "env_steps": sum(p.metadata["env_steps"] for p in parts),
        "budget": {"sessions": sessions},
        "num_episodes": sessions,
        "num_transitions": sum(len(p) for p in parts),
        "rounds": rounds,
        "centre": rounds[0]["centre"],
    })
    return TransitionData.concatenate(parts, meta)

"""Benchmark presets: typed, frozen, validated; loaded from TOML and overridable from the command line.

A :class:`Preset` describes a whole benchmark run: the seeds, the datasets to collect, the agents and their budgets,
the evaluation and the ablations. The shipped presets are TOML files in ``benchmarks/presets/`` (``smoke``,
``quick``, ``paper``); every field has a typed default here, so a preset file only lists what it changes. The same
loader applies ``--config my.toml`` and ``--set section.field=value`` on top of a preset, and every value is checked
against the field's type and range, so a typo fails before any job starts, with the key and the allowed values.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mtf_bench.harness.slate import SlateSection  # the [slate] table (its own module: issue 12's slate section)
from mtf_gym.envs.versions import DEFAULT_SESSION_ENV_ID, SESSION_ENV_IDS, AnyConfig, make_env_config
from mtf_gym.validation import merge_nested, must_be, parse_key_value, parse_value

__all__ = [
    "ALL_RECIPES",
    "PRESET_DIR",
    "AblationSettings",
    "AgentSettings",
    "CollectionSettings",
    "EvaluationSettings",
    "Preset",
    "PresetError",
    "ReportSettings",
    "TuningSettings",
    "apply_overrides",
    "available_presets",
    "load_preset",
    "parse_assignment",
    "preset_to_dict",
]

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout: a relative ladder_record is also looked up here
# Exploration recipes of the grid (docs/design.md#exploration); the baseline test set is always collected as well.
ALL_RECIPES: tuple[str, ...] = ("gaussian", "uniform", "progressive")
ZOO: tuple[str, ...] = ("bcq", "cql", "iql", "ddpg", "td3bc", "integrated_rl", "ddpg_va", "es", "sac", "td3", "ppo")


class PresetError(ValueError):
    """A bad preset name, TOML file or override; the message names the key and what is allowed."""


# The ES agent's registry name: the control of every "vs ES" verdict, with a budget of its own (``es_steps``).
ES = "es"


def _fail(owner: str, name: str, allowed: str, value: object) -> PresetError:
    return must_be(name, allowed, value, owner=owner, error=PresetError)


@dataclass(frozen=True)
class CollectionSettings:
    """Exploration datasets, collected once per seed and shared by every agent (docs/design.md#exploration).

    Attributes:
        sessions: complete sessions per exploration dataset (the same budget for every recipe).
        test_sessions: sessions of the baseline test set (no noise), used for weighted GAUC.
        recipes: exploration recipes to collect, from ``gaussian``, ``uniform``, ``progressive``.
        sigma: Gaussian noise std (paper 0.2).
        band: half-width of the bounded-uniform band (paper 0.15).
        progressive_rounds: PTM rounds R; each collects ``sessions / R`` around the latest learned policy.
        progressive_steps: IntegratedRL gradient steps trained after every progressive round.
        progressive_eval_sessions: sessions used to score each round's policy (the progressive-training curve).
        minari: also export every dataset as a Minari dataset (``datasets/seed<k>/<name>/minari/``); off by
            default because Minari's writer takes ~30 s per 1000 sessions (the grid itself reads a fast .npz copy).
    """

    sessions: int = 1000
    test_sessions: int = 1000
    recipes: tuple[str, ...] = ALL_RECIPES
    sigma: float = 0.2
    band: float = 0.15
    progressive_rounds: int = 5
    progressive_steps: int = 500
    progressive_eval_sessions: int = 500
    minari: bool = False

    def __post_init__(self) -> None:
        for name in ("sessions", "test_sessions", "progressive_rounds", "progressive_steps",
                     "progressive_eval_sessions"):
            if getattr(self, name) < 1:
                raise _fail("collection", name, "an integer >= 1", getattr(self, name))
        bad = [r for r in self.recipes if r not in ALL_RECIPES]
        if bad or len(set(self.recipes)) != len(self.recipes):
            raise _fail("collection", "recipes", f"distinct names from {ALL_RECIPES}", self.recipes)
        if not self.sigma > 0:
            raise _fail("collection", "sigma", "> 0", self.sigma)
        if not 0 < self.band <= 1:
            raise _fail("collection", "band", "in (0, 1]", self.band)
        if "progressive" in self.recipes and self.sessions < self.progressive_rounds:
            raise _fail("collection", "sessions", f">= progressive_rounds ({self.progressive_rounds})", self.sessions)


CHECKPOINT_SELECTIONS = ("last", "validation")


@dataclass(frozen=True)
class AgentSettings:
    """The agents trained on every (dataset, seed), and their budgets.

    Attributes:
        names: registry names (``mtf_agents.registry``); offline agents train on every dataset, online agents once per
            seed in the simulator.
        n_steps: gradient steps of every offline agent (the same budget for all: a fair comparison).
        online_steps: simulator requests of every online agent except ES.
        es_steps: simulator requests of ES, the control every "vs ES" verdict uses; it must be large enough for
            ES's learning curve to plateau (0: ``online_steps``).
        agent_steps: per-agent budgets replacing ``n_steps`` (offline) or ``online_steps`` (online) for the named
            agents, ``{agent: steps}``, for agents whose curves plateau later than the rest (``--set
            agents.agent_steps.ddpg_va=15000``); ES's budget is ``es_steps``.
        checkpoints: learning-curve points per training run, log-spaced and including the last (1: the final
            policy only); each is evaluated on the same ``evaluation.curve_sessions`` users.
        hidden_units: MLP widths, applied to every agent whose config has ``hidden_units``.
        batch_size: applied to every agent whose config has ``batch_size``.
        compile_graph: d3rlpy's ``compile_graph`` for every agent whose config has it (the d3rlpy agents and
            IntegratedRL): each update runs as a torch.compile'd CUDA graph on a CUDA device (``paper``); ignored on
            the CPU.
        overrides: per-agent config overrides, ``{agent: {field: value}}`` (``--set
            agents.overrides.integrated_rl.n_critics=8``); they win over the common settings above.
        select_checkpoint: which policy of a training run is published (A/B test, FQE, GAUC, saturation):
            ``last`` (the policy at the full budget) or ``validation`` (the checkpoint with the highest mean return
            on the validation users, ``tuning.user_seed``/``tuning.sessions``, disjoint from the A/B users: the
            training budget chosen on validation users, early stopping). The curve on the evaluation users is
            recorded either way.
    """

    names: tuple[str, ...] = ZOO
    n_steps: int = 2000
    online_steps: int = 5000
    es_steps: int = 0
    agent_steps: dict[str, int] = field(default_factory=dict)
    checkpoints: int = 8
    hidden_units: tuple[int, ...] = (64, 64)
    batch_size: int = 256
    compile_graph: bool = False
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    select_checkpoint: str = "last"

    def __post_init__(self) -> None:
        if not isinstance(self.compile_graph, bool):
            raise _fail("agents", "compile_graph", "true or false", self.compile_graph)
        if self.select_checkpoint not in CHECKPOINT_SELECTIONS:
            raise _fail("agents", "select_checkpoint", f"one of {CHECKPOINT_SELECTIONS}", self.select_checkpoint)
        if self.select_checkpoint == "validation" and self.checkpoints < 2:
            raise _fail("agents", "checkpoints", ">= 2 with select_checkpoint = 'validation' (nothing to select "
                        "from)", self.checkpoints)
        if not self.names or len(set(self.names)) != len(self.names):
            raise _fail("agents", "names", "a non-empty tuple of distinct agent names", self.names)
        for name in ("n_steps", "online_steps", "batch_size", "checkpoints"):
            if getattr(self, name) < 1:
                raise _fail("agents", name, "an integer >= 1", getattr(self, name))
        if self.es_steps < 0:
            raise _fail("agents", "es_steps", ">= 0 (0: online_steps)", self.es_steps)
        if not self.hidden_units or any(h < 1 for h in self.hidden_units):
            raise _fail("agents", "hidden_units", "a non-empty tuple of widths >= 1", self.hidden_units)
        for agent, values in self.overrides.items():
            if not isinstance(values, dict):
                raise _fail("agents", f"overrides.{agent}", "a table {field: value}", values)
        for agent, steps in self.agent_steps.items():
            if agent == ES:
                raise _fail("agents", f"agent_steps.{ES}", "absent (ES's budget is agents.es_steps)", steps)
            if agent not in self.names:
                raise _fail("agents", f"agent_steps.{agent}", f"an agent of agents.names {list(self.names)}", steps)
            if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
                raise _fail("agents", f"agent_steps.{agent}", "an integer >= 1", steps)


@dataclass(frozen=True)
class EvaluationSettings:
    """The simulated A/B test and the bootstrap.

    Attributes:
        sessions: users per A/B arm; every arm of the whole grid meets the same users (common random numbers).
        user_seed: seed of the first A/B user; far from the collection seeds, so no policy is scored on the users
            its training data came from.
        bootstrap: bootstrap resamples of every confidence interval.
        confidence: nominal coverage of the intervals.
        curve_sessions: users of every learning-curve checkpoint: the first ``curve_sessions`` A/B users, the same
            for every checkpoint and agent (common random numbers).
        reference_return: session return scored 100 by the normalised score (the random policy scores 0): the
            environment's best known fusion (best constant or oracle). 0: not given, the control arm (the
            environment's ``BaselinePolicy``) is used as 100 and the report says so.
        fqe_steps: FQE gradient steps per trained policy (0: no FQE). FQE propagates value one request per target
            update (every 100 steps), so sessions of ~5-30 requests need a few thousand steps; at 500 steps its
            values are still far below the returns (its ranking may already be useful).
        fqe_dataset: the recipe whose dataset (of the run's seed) FQE is fitted on, the same for every policy.
        fqe_gamma: FQE's discount (1: undiscounted session return, what the A/B test measures).
    """

    sessions: int = 2000
    user_seed: int = 1_000_000_000
    bootstrap: int = 2000
    confidence: float = 0.95
    curve_sessions: int = 500
    reference_return: float = 0.0
    fqe_steps: int = 1000
    fqe_dataset: str = "uniform"
    fqe_gamma: float = 1.0

    def __post_init__(self) -> None:
        if not 2 <= self.curve_sessions <= self.sessions:
            raise _fail("evaluation", "curve_sessions", f"an integer in [2, sessions={self.sessions}]",
                        self.curve_sessions)
        if self.reference_return < 0:
            raise _fail("evaluation", "reference_return", ">= 0 (0: the control arm)", self.reference_return)
        if self.fqe_steps < 0:
            raise _fail("evaluation", "fqe_steps", ">= 0 (0: no FQE)", self.fqe_steps)
        if self.fqe_dataset not in ALL_RECIPES:
            raise _fail("evaluation", "fqe_dataset", f"one of {ALL_RECIPES}", self.fqe_dataset)
        if not 0 <= self.fqe_gamma <= 1:
            raise _fail("evaluation", "fqe_gamma", "in [0, 1]", self.fqe_gamma)
        if self.sessions < 2:
            raise _fail("evaluation", "sessions", "an integer >= 2", self.sessions)
        if self.user_seed < 0:
            raise _fail("evaluation", "user_seed", ">= 0", self.user_seed)
        if self.bootstrap < 1:
            raise _fail("evaluation", "bootstrap", "an integer >= 1", self.bootstrap)
        if not 0 < self.confidence < 1:
            raise _fail("evaluation", "confidence", "in (0, 1)", self.confidence)


@dataclass(frozen=True)
class AblationSettings:
    """Extra IntegratedRL jobs: exploration band width, critic count, critic sets and the paper readings
    (``docs/agents/integrated_rl.md``). Each group lists the settings it compares; an empty list leaves the group
    out. A setting equal to the main IntegratedRL config (the reference) reuses the job that already has it.

    Attributes:
        enabled: add the ablation jobs to the grid.
        band_widths: half-widths of bounded-uniform datasets collected for the band ablation (the main ``band``
            reuses the main dataset); IntegratedRL's penalty band follows each dataset's recorded band.
        critic_counts: IntegratedRL ensemble sizes (the main run's count reuses the main job); also the critics per
            set m of the ``critic_sets`` group.
        critic_sets: critic sets q crossed with ``critic_counts`` (q x m critics in all): 1 (one set on the total
            reward) or the number of reward components of the datasets (mtf-gym: 3, one set per behaviour group).
        target_noise: std of the noise on the critic target's action (the paper's "xi"; 0: off).
        actor_band_weights: ``eta`` (the actor's band weight is its own eta) and/or ``alpha`` (alpha == eta).
        critic_penalties: ``multiplicative`` and/or ``subtractive`` (the v4 paper's eq. 6).
        progressive_data: ``cumulative`` and/or ``current_round``: what each progressive round trains on; a
            setting other than the main config's collects its own progressive dataset (``progressive_<setting>``).
        progressive_init: ``scratch`` and/or ``warm_start`` (from the previous round's model), likewise.
        exploration_centres: ``baseline`` (the constant control: the main bounded-uniform dataset) and/or ``es``
            (a bounded-uniform dataset of its own explored around the ES control trained in the grid, same seed: a
            state-dependent centre from the first round, the paper's personalised bands; needs ``es`` among the
            agents, else the setting is left out).
        n_steps: gradient steps of the ablation jobs (0: ``agents.n_steps``).
        seeds: seeds of the ablation jobs (empty: every seed of the preset); seeds not in the preset are dropped,
            and if none is left the preset's first seed is used (so ``--seeds 4`` keeps the ablation running).
    """

    enabled: bool = True
    band_widths: tuple[float, ...] = (0.10, 0.15, 0.20)
    critic_counts: tuple[int, ...] = (2, 8, 24)
    n_steps: int = 0
    seeds: tuple[int, ...] = ()
    critic_sets: tuple[int, ...] = ()
    target_noise: tuple[float, ...] = ()
    actor_band_weights: tuple[Literal["eta", "alpha"], ...] = ()
    critic_penalties: tuple[Literal["multiplicative", "subtractive"], ...] = ()
    progressive_data: tuple[Literal["cumulative", "current_round"], ...] = ()
    progressive_init: tuple[Literal["scratch", "warm_start"], ...] = ()
    exploration_centres: tuple[Literal["baseline", "es"], ...] = ()

    def __post_init__(self) -> None:
        from mtf_gym.datasets.collect import REWARD_GROUPS

        if any(not 0 < w <= 1 for w in self.band_widths):
            raise _fail("ablation", "band_widths", "half-widths in (0, 1]", self.band_widths)
        if any(c < 1 for c in self.critic_counts):
            raise _fail("ablation", "critic_counts", "integers >= 1", self.critic_counts)
        if self.n_steps < 0:
            raise _fail("ablation", "n_steps", ">= 0 (0: agents.n_steps)", self.n_steps)
        if any(q not in (1, len(REWARD_GROUPS)) for q in self.critic_sets):
            raise _fail("ablation", "critic_sets", f"values from (1, {len(REWARD_GROUPS)}): one set, or one per reward "
                        f"component {tuple(REWARD_GROUPS)}", self.critic_sets)
        if any(not (math.isfinite(v) and v >= 0) for v in self.target_noise):
            raise _fail("ablation", "target_noise", "finite stds >= 0 (0: off)", self.target_noise)
        for name in ("critic_sets", "target_noise", "actor_band_weights", "critic_penalties", "progressive_data",
                     "progressive_init", "exploration_centres"):
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise _fail("ablation", name, "distinct values", getattr(self, name))


@dataclass(frozen=True)
class ReportSettings:
    """What the report computes beyond the jobs' outputs. No job's identity includes it: changing it rebuilds the
    report (``--report-only``), never a job.

    Attributes:
        reference: the 100 of the normalised score (random fusion scores 0). ``"ladder"``: the best oracle rung of
            the headroom ladder (``python -m mtf_bench.headroom``), its saved policy rerun on the A/B users; it
            applies to ``MTFSession-v1`` with the default config (the ladder's), and any other run falls back to
            ``"control"`` and says why. ``"control"``: the control arm (``BaselinePolicy``).
            ``evaluation.reference_return``, a fixed return, is the third way; it cannot be combined with
            ``"ladder"``.
        ladder_record: the ladder's JSON record: a path relative to the working directory or, if not there, to the
            project's checkout.
    """

    reference: Literal["control", "ladder"] = "ladder"
    ladder_record: str = "docs/results/headroom_v1.json"

    def __post_init__(self) -> None:
        if self.reference not in ("control", "ladder"):
            raise _fail("report", "reference", "'ladder' or 'control'", self.reference)
        if self.reference == "ladder" and not self.ladder_record:
            raise _fail("report", "ladder_record", "a path to the headroom ladder's JSON record", self.ladder_record)

    def ladder_path(self) -> Path | None:
        """Where ``ladder_record`` is (the working directory first, then the checkout); ``None`` if in neither."""
        path = Path(self.ladder_record)
        for candidate in (path, PROJECT_ROOT / path) if not path.is_absolute() else (path,):
            if candidate.is_file():
                return candidate
        return None


@dataclass(frozen=True)
class TuningSettings:
    """The equal hyperparameter search every learning agent gets before the grid (``mtf_bench.harness.tuning``).

    Each agent's search space has the same number of configurations (``tuning.SEARCH_SPACES``); optuna tries all
    of them, training on a validation dataset collected with its own seed and scoring on validation users, both
    disjoint from the training seeds and the A/B users. The winner's settings become the agent's overrides in the
    grid (``--set`` overrides still win).

    Attributes:
        enabled: run the search (``mtf-bench PRESET --tune`` reruns it).
        seed: collection and training seed of the search; must not be one of the preset's seeds.
        sessions: validation users per trial.
        user_seed: seed of the first validation user; the range must not overlap the A/B users.
        n_steps: gradient steps (offline) per trial (0: ``agents.n_steps``).
        online_steps: simulator requests (online) per trial (0: ``agents.online_steps``, ``es_steps`` for ES).
        agent_steps: per-agent trial budgets replacing ``n_steps``/``online_steps`` for the named agents,
            ``{agent: steps}`` (ES included): for agents whose grid budget is far above the common one (raised so
            their curves plateau), a search at the common budget would rank configurations by noise.
    """

    enabled: bool = False
    seed: int = 900
    sessions: int = 500
    user_seed: int = 2_000_000_000
    n_steps: int = 0
    online_steps: int = 0
    agent_steps: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise _fail("tuning", "seed", ">= 0", self.seed)
        for agent, steps in self.agent_steps.items():
            if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
                raise _fail("tuning", f"agent_steps.{agent}", "an integer >= 1", steps)
        if self.sessions < 2:
            raise _fail("tuning", "sessions", "an integer >= 2", self.sessions)
        for name in ("user_seed", "n_steps", "online_steps"):
            if getattr(self, name) < 0:
                raise _fail("tuning", name, ">= 0", getattr(self, name))


@dataclass(frozen=True)
class Preset:
    """One benchmark run.

    Attributes:
        name: the preset's name; results go to ``<results_dir>/<name>/`` (``<name>-v0/`` for ``MTFSession-v0``).
        description: one line for ``--help`` and the report.
        seeds: training/collection seeds; every (agent, dataset) runs once per seed.
        env: overrides of the ``env_id`` version's config fields (``MTFSessionV1Config`` for ``MTFSession-v1``,
            ``MTFSessionConfig`` for ``MTFSession-v0``), e.g. ``max_requests = 20``; nested tables
            (``[env.dynamics]``) merge. A key that is not a field of that version's config stops the run.
        results_dir: parent of the run's directory.
        records_dir: where the run keeps its records (``mtf_bench.harness.records``; empty: nowhere): imported
            before the run, and each job's record is written there as the job finishes, so a machine that is lost
            mid-run loses at most the jobs in flight. Not part of any job's identity.
        workers: parallel jobs (0: run jobs in this process, for debugging).
        executor: ``local`` (a process pool) or ``ray`` (a Ray cluster: ``pip install 'mtf-gym[ray]'``).
        ray_address: Ray cluster address (empty: start or join a local instance).
        device: torch device of every agent whose config has a ``device`` field: ``cpu``, ``auto``, ``cuda`` or
            ``cuda:N``; asking for CUDA where torch has none stops the run before any job (never a silent CPU run).
        env_id: the environment version benchmarked, ``MTFSession-v1`` (the default) or ``MTFSession-v0``
            (``--set env_id=MTFSession-v0``); it picks the config class ``env`` applies to, the datasets' env and
            the online agents' env, and is recorded in every job's identity.
    """

    name: str = "custom"
    description: str = ""
    seeds: tuple[int, ...] = (0, 1, 2)
    env: dict[str, Any] = field(default_factory=dict)
    collection: CollectionSettings = field(default_factory=CollectionSettings)
    agents: AgentSettings = field(default_factory=AgentSettings)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    ablation: AblationSettings = field(default_factory=AblationSettings)
    tuning: TuningSettings = field(default_factory=TuningSettings)
    slate: SlateSection = field(default_factory=SlateSection)  # MTFSlate-v0 agents; off unless the preset enables it
    report: ReportSettings = field(default_factory=ReportSettings)
    results_dir: str = "results"
    records_dir: str = ""
    workers: int = 2
    executor: Literal["local", "ray"] = "local"
    ray_address: str = ""
    device: str = "cpu"
    env_id: str = DEFAULT_SESSION_ENV_ID

    def __post_init__(self) -> None:
        if not re.fullmatch(r"cpu|auto|cuda(:\d+)?", self.device):
            raise _fail("preset", "device", "'cpu', 'auto', 'cuda' or 'cuda:N'", self.device)
        if self.env_id not in SESSION_ENV_IDS:
            raise _fail("preset", "env_id", f"one of {sorted(SESSION_ENV_IDS)}", self.env_id)
        if self.tuning.enabled and self.tuning.seed in self.seeds:
            raise _fail("tuning", "seed", f"a seed not in the preset's seeds {self.seeds}", self.tuning.seed)
        ev, tu = self.evaluation, self.tuning
        if self.report.reference == "ladder" and ev.reference_return > 0:
            raise _fail("report", "reference", "'control' when evaluation.reference_return is set (one reference)",
                        self.report.reference)
        for agent, steps in tu.agent_steps.items():
            if agent not in self.agents.names:
                raise _fail("tuning", f"agent_steps.{agent}", f"an agent of agents.names {list(self.agents.names)}",
                            steps)
        validation_used = tu.enabled or self.agents.select_checkpoint == "validation"
        if validation_used and tu.user_seed < ev.user_seed + ev.sessions and ev.user_seed < tu.user_seed + tu.sessions:
            raise _fail("tuning", "user_seed", f"a range disjoint from the A/B users [{ev.user_seed}, "
                        f"{ev.user_seed + ev.sessions})", tu.user_seed)
        if not self.name or any(c in self.name for c in "/\\ "):
            raise _fail("preset", "name", "a non-empty name without slashes or spaces", self.name)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            raise _fail("preset", "seeds", "a non-empty tuple of distinct integers >= 0", self.seeds)
        if self.workers < 0:
            raise _fail("preset", "workers", ">= 0 (0: run in this process)", self.workers)
        try:
            self.env_config()
        except (TypeError, ValueError) as exc:
            raise PresetError(f"env: {exc}") from exc

    @property
    def es_steps(self) -> int:
        """ES's budget: ``agents.es_steps``, or ``agents.online_steps`` when that is 0."""
        return self.agents.es_steps or self.agents.online_steps

    def train_steps(self, agent: str, online: bool) -> int:
        """The grid's budget of ``agent``: ``es_steps`` for ES, else ``agents.agent_steps[agent]``, else
        ``agents.online_steps`` (online) or ``agents.n_steps`` (offline)."""
        ag = self.agents
        return self.es_steps if agent == ES else ag.agent_steps.get(agent, ag.online_steps if online else ag.n_steps)

    @property
    def run_dir(self) -> Path:
        """``<results_dir>/<name>/`` for the default env version, ``<results_dir>/<name>-v0/`` for MTFSession-v0:
        the two versions' runs never share (and overwrite) a directory."""
        suffix = "" if self.env_id == DEFAULT_SESSION_ENV_ID else "-" + self.env_id.rsplit("-", 1)[-1]
        return Path(self.results_dir) / f"{self.name}{suffix}"

    def env_config(self) -> AnyConfig:
        """The ``env_id`` version's config: its defaults with ``env`` merged in (nested tables such as
        ``env.reward`` merge)."""
        return make_env_config(self.env_id, self.env)


_SECTIONS: dict[str, type] = {
    "collection": CollectionSettings,
    "agents": AgentSettings,
    "evaluation": EvaluationSettings,
    "ablation": AblationSettings,
    "tuning": TuningSettings,
    "slate": SlateSection,
}


# ----------------------------------------------------------------------------------------------------------------------
# Coercion of TOML / command-line values to the declared field types
# ----------------------------------------------------------------------------------------------------------------------
def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return f"one of {typing.get_args(hint)}"
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(hint)[0])} values"
    if origin is dict:
        return "a table"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` converted to ``hint`` (int, float, bool, str, Literal, tuple[X, ...], dict), or PresetError."""
    origin = typing.get_origin(hint)
    ok = True
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    elif origin is Literal:
        ok = value in typing.get_args(hint)
    elif origin is tuple:
        item = typing.get_args(hint)[0]
        if isinstance(value, str):  # ``--set agents.names=iql,cql`` without TOML brackets
            value = [v.strip() for v in value.split(",") if v.strip()]
            if item is not str:
                value = [parse_value(v) for v in value]
        if isinstance(value, (list, tuple)):
            return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
        ok = False
    elif origin is dict:
        ok = isinstance(value, dict)
        value = {str(k): (dict(v) if isinstance(v, dict) else v) for k, v in value.items()} if ok else value
    elif origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported preset field type {hint}")  # keep the schema simple: no optional fields
    if not ok:
        raise must_be(where, _describe(hint), value, error=PresetError)
    return value


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass ``cls`` from a (partial) mapping, coercing and checking every key."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise PresetError(f"unknown key(s) {[prefix + u for u in unknown]}; valid keys in "
                          f"{where or 'the top level'}: {names}")
    kwargs = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(hints[name]):
            if not isinstance(value, dict):
                raise PresetError(f"{key} must be a table, got {value!r}")
            kwargs[name] = _build(hints[name], value, key)
        else:
            kwargs[name] = _coerce(value, hints[name], key)
    try:
        return cls(**kwargs)
    except PresetError:
        raise
    except (TypeError, ValueError) as exc:
        raise PresetError(f"{where or 'preset'}: {exc}") from exc


def preset_to_dict(preset: Preset) -> dict[str, Any]:
    """Plain nested dict (tuples as lists): what ``config.json`` stores and ``--show`` prints."""
    return dataclasses.asdict(preset)


def apply_overrides(preset: Preset, overrides: dict[str, Any]) -> Preset:
    """``preset`` with a nested mapping of overrides merged in (tables merge; values replace), re-validated.

    Overrides that choose the agents (``agents.names``, e.g. ``--agents td3``) drop the preset's per-agent budgets
    (``agents.agent_steps``, ``tuning.agent_steps``) of the agents they leave out, so a subset of a preset runs
    with the preset's budgets for the agents it keeps; budgets named by the overrides themselves are still checked.
    """
    base = preset_to_dict(preset)
    names = overrides.get("agents", {}).get("names") if isinstance(overrides.get("agents"), dict) else None
    if isinstance(names, (list, tuple)):
        for table in ("agents", "tuning"):
            base[table]["agent_steps"] = {a: v for a, v in base[table]["agent_steps"].items() if a in names}
    return _build(Preset, merge_nested(base, overrides), "")


def parse_assignment(expr: str) -> dict[str, Any]:
    """``"agents.n_steps=500"`` -> ``{"agents": {"n_steps": 500}}`` (values parsed as TOML, else strings)."""
    hint = "with a dotted key, e.g. agents.n_steps=500"
    key, value = parse_key_value(expr, option="--set", hint=hint, error=PresetError)
    if any(not part for part in key.split(".")):
        raise PresetError(f"--set expects KEY=VALUE ({hint}), got {expr!r}")
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise PresetError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"{path} is not valid TOML: {exc}") from exc


def load_preset(
    name: str, *, config_files: tuple[str | Path, ...] = (), assignments: tuple[str, ...] = ()
) -> Preset:
    """Preset ``name`` from ``benchmarks/presets/<name>.toml``, then each TOML file, then each ``KEY=VALUE``."""
    path = PRESET_DIR / f"{name}.toml"
    if not path.is_file():
        raise PresetError(f"unknown preset {name!r}; available presets: {', '.join(available_presets())}")
    preset = _build(Preset, {"name": name, **_read_toml(path)}, "")
    for file in config_files:
        preset = apply_overrides(preset, _read_toml(Path(file)))
    for expr in assignments:
        preset = apply_overrides(preset, parse_assignment(expr))
    return preset

"""The benchmark grid: which datasets to collect and which (agent, dataset, seed) runs to train, with their directories.

Layout of a run directory ``<results_dir>/<preset>/``::

    datasets/seed<k>/<dataset>/     one collected dataset (config.json, log.txt, result.json, the data)
    jobs/<agent>__<dataset>__seed<k>/   one training run (config.json, log.txt, result.json, model/, sessions.npz,
                                        curve.npz)
    tuning/<agent>/                 one agent's hyperparameter search (with ``tuning.enabled``; its validation
                                    dataset is datasets/seed<tuning.seed>/uniform/)

Datasets are collected once per seed and shared by every agent. Online agents use no dataset: they run once per seed
as ``<agent>__online__seed<k>``. Ablation runs of IntegratedRL carry their variant in the agent label
(``integrated_rl+critics2``, ``integrated_rl+sets3x8``, ``integrated_rl+critic_penalty_subtractive``) and, where the
variant needs data of its own, in the dataset name (``uniform_w0.10``: a bounded-uniform dataset of half-width 0.10;
``progressive_warm_start``: progressive rounds trained with that setting). Ablation jobs are appended after the jobs
that existed before them, and a setting equal to the main config reuses an existing job, so adding an ablation group
to a preset adds jobs without changing any other job's id or identity (a resumed run runs only the new ones).

Every job's identity is a hash of everything that determines its output (its spec, the env, the evaluation settings
and, for training, the hashes of its datasets), so a rerun skips a finished job only if nothing it depends on changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mtf_bench.harness.presets import ES, Preset
from mtf_gym.envs.versions import DEFAULT_SESSION_ENV_ID

__all__ = [
    "CENTRE_GROUP",
    "ES",
    "ONLINE",
    "READING_GROUPS",
    "TEST_DATASET",
    "AblationPoint",
    "DatasetJob",
    "Grid",
    "TrainJob",
    "TuneJob",
    "band_dataset_name",
    "build_grid",
    "centre_dataset_name",
    "progressive_dataset_name",
    "tuning_jobs",
]

TEST_DATASET = "test"
ONLINE = "online"


def band_dataset_name(width: float) -> str:
    return f"uniform_w{width:.2f}"


def _hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


class _JobIdentity:
    """What a job's result depends on, and its hash: a finished job is reused only if the hash still matches."""

    job_kind: ClassVar[str]  # "dataset" or "train"

    @property
    def config_hash(self) -> str:
        return _hash(self.identity())

    def identity(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)  # type: ignore[call-overload]
        data.pop("run_dir")
        # Stored under the names these fields had before they were renamed (``kind``, ``kind_``), so the hashes of
        # jobs finished earlier still match and a resumed run reuses them.
        if "agent_kind" in data:
            data["kind_"] = data.pop("agent_kind")
        # Datasets recorded no env id while every run was v0: a v0 dataset keeps its earlier hash.
        if self.job_kind == "dataset" and data.get("env_id") == "MTFSession-v0":
            data.pop("env_id")
        return {"kind": self.job_kind, **data}


@dataclass(frozen=True)
class DatasetJob(_JobIdentity):
    """Collect one dataset for one seed.

    Attributes:
        name: ``test`` (baseline, no noise), ``gaussian``, ``uniform``, ``progressive`` or ``uniform_w<width>``.
        recipe: the exploration recipe: ``baseline``, ``gaussian``, ``uniform`` or ``progressive``.
        seed: collection seed.
        params: recipe parameters (sessions, sigma, band, rounds, ...).
        env: the simulator config (``to_dict()`` of the ``env_id`` version's config).
        run_dir: the run's directory.
        evaluation: A/B settings used to score the progressive rounds' policies.
        env_id: the environment version (``MTFSession-v1`` or ``MTFSession-v0``), which ``env`` configures.
    """

    name: str
    recipe: str
    seed: int
    params: dict[str, Any]
    env: dict[str, Any]
    run_dir: str
    evaluation: dict[str, Any] = field(default_factory=dict)
    env_id: str = DEFAULT_SESSION_ENV_ID

    job_kind: ClassVar[str] = "dataset"

    @property
    def job_id(self) -> str:
        return f"{self.name}__seed{self.seed}"

    @property
    def directory(self) -> Path:
        return Path(self.run_dir) / "datasets" / f"seed{self.seed}" / self.name

    @property
    def needs(self) -> tuple[str, ...]:
        """The training job whose saved policy is this dataset's exploration centre (``params["centre_job"]``;
        none for a constant or progressive centre)."""
        return (str(self.params["centre_job"]),) if "centre_job" in self.params else ()



@dataclass(frozen=True)
class TrainJob(_JobIdentity):
    """Train one agent on one dataset (or online) for one seed, then evaluate it.

    Attributes:
        agent: registry name.
        label: name in the results (``agent`` or an ablation variant such as ``integrated_rl+critics2``).
        dataset: dataset name, or ``online``.
        seed: training seed.
        agent_kind: the agent's kind, ``offline`` or ``online`` (the registry's ``AgentSpec.kind``).
        n_steps: gradient steps (offline) or simulator requests (online).
        overrides: the agent's own config overrides (every key must be a field of its config).
        common: the preset's shared settings (``hidden_units``, ``batch_size``, ``device``: fields of
            ``mtf_agents.base.SharedSettings``), given to the agent when its config declares them.
        env: the simulator config.
        evaluation: A/B settings.
        run_dir: the run's directory.
        dataset_hashes: config hashes of the datasets it reads (filled by :func:`build_grid`).
        device: torch device requested by the preset.
        checkpoints: learning-curve points (log-spaced, the last at ``n_steps``; 1: the final policy only).
        band: half-width of the exploration band around the baseline fusion (the saturation diagnostic's band edge).
        env_id: the Gymnasium id of the environment version.
    """

    agent: str
    label: str
    dataset: str
    seed: int
    agent_kind: str
    n_steps: int
    overrides: dict[str, Any]
    common: dict[str, Any]
    env: dict[str, Any]
    evaluation: dict[str, Any]
    run_dir: str
    dataset_hashes: dict[str, str] = field(default_factory=dict)
    device: str = "cpu"
    checkpoints: int = 1
    band: float = 0.15
    env_id: str = DEFAULT_SESSION_ENV_ID

    job_kind: ClassVar[str] = "train"

    @property
    def job_id(self) -> str:
        return f"{self.label}__{self.dataset}__seed{self.seed}"

    @property
    def directory(self) -> Path:
        return Path(self.run_dir) / "jobs" / self.job_id

    @property
    def needs(self) -> tuple[str, ...]:
        """Dataset job ids this job reads: its training set (offline), the baseline test set (weighted GAUC) and,
        with FQE on, FQE's dataset."""
        names = [TEST_DATASET] if self.dataset == ONLINE else [self.dataset, TEST_DATASET]
        if self.fqe_dataset and self.fqe_dataset not in names:
            names.append(self.fqe_dataset)
        return tuple(f"{name}__seed{self.seed}" for name in names)

    @property
    def fqe_dataset(self) -> str | None:
        """The dataset FQE is fitted on (None when FQE is off)."""
        return self.evaluation.get("fqe_dataset") if int(self.evaluation.get("fqe_steps", 0)) > 0 else None



@dataclass(frozen=True)
class TuneJob(_JobIdentity):
    """The hyperparameter search of one agent (``mtf_bench.harness.tuning``): every configuration of ``space``
    trained on the validation dataset of ``seed`` (offline) or in the simulator (online), scored on validation users.

    Attributes:
        agent: registry name.
        agent_kind: ``offline`` or ``online``.
        seed: the search's collection and training seed (not one of the preset's seeds).
        n_steps: gradient steps (offline) or simulator requests (online) of every trial.
        space: ``{parameter: values}``, the agent's search space.
        overrides: the preset's own overrides of the agent (applied to every trial).
        common: the preset's shared settings.
        env: the simulator config.
        sessions: validation users per trial; user_seed: the first of them.
        run_dir: the run's directory.
        dataset_hashes: config hashes of the datasets it reads.
        env_id: the Gymnasium id of the environment version.
    """

    agent: str
    agent_kind: str
    seed: int
    n_steps: int
    space: dict[str, tuple[Any, ...]]
    overrides: dict[str, Any]
    common: dict[str, Any]
    env: dict[str, Any]
    sessions: int
    user_seed: int
    run_dir: str
    dataset_hashes: dict[str, str] = field(default_factory=dict)
    env_id: str = DEFAULT_SESSION_ENV_ID

    job_kind: ClassVar[str] = "tune"

    @property
    def job_id(self) -> str:
        return f"tune__{self.agent}"

    @property
    def directory(self) -> Path:
        return Path(self.run_dir) / "tuning" / self.agent

    @property
    def needs(self) -> tuple[str, ...]:
        return () if self.agent_kind == "online" else (f"uniform__seed{self.seed}",)


# Ablation groups of IntegratedRL's paper readings: group -> (config field, the training data's recipe).
READING_GROUPS: dict[str, tuple[str, str]] = {
    "target_noise": ("target_noise", "uniform"),
    "actor_band_weight": ("actor_band_weight", "uniform"),
    "critic_penalty": ("critic_penalty", "uniform"),
    "progressive_data": ("progressive_data", "progressive"),
    "progressive_init": ("progressive_init", "progressive"),
}


# The exploration-centre ablation: the constant control (the main datasets) or a state-dependent policy trained in
# the grid, here the ES control of the same seed (CMA-ES over a linear policy of the observation).
CENTRE_GROUP = "exploration_centre"
CENTRE_AGENTS = {"es": ES}


def centre_dataset_name(setting: str) -> str:
    """The bounded-uniform dataset explored around the policy of ``setting`` (``uniform_centre_es``)."""
    return f"uniform_centre_{setting}"


def progressive_dataset_name(setting: str) -> str:
    """The progressive dataset collected with a round setting other than the main config's
    (``progressive_current_round``, ``progressive_warm_start``)."""
    return f"progressive_{setting}"


@dataclass(frozen=True)
class AblationPoint:
    """One ablation setting of IntegratedRL and the training jobs (one per seed) that measure it.

    Attributes:
        group: ``band`` (exploration half-width of the training data), ``critics`` (ensemble size),
            ``critic_sets`` (q sets x m critics) or a paper reading (:data:`READING_GROUPS`).
        value: the half-width, the critic count (m for ``critic_sets``), or the reading's value as a number where it
            is one (target noise std; otherwise the setting's position in the preset's list).
        job_ids: the training jobs, one per ablation seed.
        setting: the setting as shown in the report (``"0.15"``, ``"subtractive"``, ``"q=3, m=8"``).
        reference: whether this is the main IntegratedRL config's setting (the group's point of comparison).
        series: the line a point belongs to in a two-way group (``"q=3"`` for ``critic_sets``).
        dataset: the training data of the jobs.
    """

    group: str
    value: float
    job_ids: tuple[str, ...]
    setting: str = ""
    reference: bool = False
    series: str = ""
    dataset: str = "uniform"


@dataclass(frozen=True)
class Grid:
    """All jobs of a preset: datasets first (other jobs depend on them), then training runs, and the ablations."""

    datasets: tuple[DatasetJob, ...]
    trains: tuple[TrainJob, ...]
    ablations: tuple[AblationPoint, ...] = ()

    def dataset(self, job_id: str) -> DatasetJob:
        for job in self.datasets:
            if job.job_id == job_id:
                return job
        raise KeyError(job_id)


def _common(preset: Preset) -> dict[str, Any]:
    ag = preset.agents
    common: dict[str, Any] = {"hidden_units": list(ag.hidden_units), "batch_size": ag.batch_size,
                              "device": preset.device}
    # Only when on: runs finished before the setting existed (all with it off) keep their hashes.
    if ag.compile_graph:
        common["compile_graph"] = True
    return common


def tuning_jobs(preset: Preset, agent_kinds: dict[str, str]) -> tuple[tuple[DatasetJob, ...], tuple[TuneJob, ...]]:
    """The hyperparameter search of every agent with a search space, and the validation dataset it trains on
    (none when ``tuning.enabled`` is false)."""
    from mtf_agents.registry import get_registry
    from mtf_bench.harness.tuning import SEARCH_SPACES

    tu, col, ag = preset.tuning, preset.collection, preset.agents
    if not tu.enabled:
        return (), ()
    env = preset.env_config().to_dict()
    run_dir = str(preset.run_dir)
    validation = DatasetJob("uniform", "uniform", tu.seed, {"sessions": col.sessions, "minari": col.minari,
                                                            "band": col.band}, env, run_dir,
                            env_id=preset.env_id)
    jobs = []
    # The progressive recipe trains IntegratedRL with its tuned settings, so a grid with progressive data depends on
    # IntegratedRL's search even when the agents run are a subset without it (e.g. ``--agents td3``): otherwise
    # the subset would collect progressive data of another identity than the whole preset's.
    searched = [*ag.names, *(["integrated_rl"] if "progressive" in col.recipes and "integrated_rl" not in ag.names
                            else [])]
    for agent in searched:
        if agent not in SEARCH_SPACES:
            continue
        kind = agent_kinds.get(agent) or get_registry().get(agent).kind
        budget = tu.agent_steps.get(agent) or (tu.n_steps if kind == "offline" else tu.online_steps) or \
            preset.train_steps(agent, kind == "online")
        job = TuneJob(agent, kind, tu.seed, budget, SEARCH_SPACES[agent], dict(ag.overrides.get(agent, {})),
                      _common(preset), env, tu.sessions, tu.user_seed, run_dir, env_id=preset.env_id)
        if kind == "offline":
            job = dataclasses.replace(job, dataset_hashes={validation.job_id: validation.config_hash})
        jobs.append(job)
    return ((validation,) if any(j.agent_kind == "offline" for j in jobs) else ()), tuple(jobs)


def build_grid(preset: Preset, agent_kinds: dict[str, str],
               tuned: dict[str, dict[str, Any]] | None = None) -> Grid:
    """The jobs of ``preset``; ``agent_kinds`` maps each agent name to ``offline``/``online`` (from the registry);
    ``tuned`` holds the winning overrides of the hyperparameter search per agent (the preset's overrides win)."""
    tuned = tuned or {}
    env = preset.env_config().to_dict()
    run_dir = str(preset.run_dir)
    col, ag, ab = preset.collection, preset.agents, preset.ablation
    evaluation = dataclasses.asdict(preset.evaluation)
    if evaluation["fqe_dataset"] not in col.recipes:
        evaluation["fqe_steps"] = 0  # FQE's dataset is not collected: no FQE (the report says so)
    common = {"sessions": col.sessions, "minari": col.minari}

    def overrides_for(agent: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {**tuned.get(agent, {}), **ag.overrides.get(agent, {}), **(extra or {})}

    def dataset_jobs(seed: int) -> list[DatasetJob]:
        jobs = [DatasetJob(TEST_DATASET, "baseline", seed, {"sessions": col.test_sessions, "minari": col.minari},
                           env, run_dir, env_id=preset.env_id)]
        for recipe in col.recipes:
            params: dict[str, Any] = dict(common)
            if recipe == "gaussian":
                params.update(sigma=col.sigma, band=col.band)
            elif recipe == "uniform":
                params.update(band=col.band)
            else:
                params.update(band=col.band, rounds=col.progressive_rounds, steps=col.progressive_steps,
                              eval_sessions=col.progressive_eval_sessions, hidden_units=list(ag.hidden_units),
                              batch_size=ag.batch_size, overrides=overrides_for("integrated_rl"))
            jobs.append(DatasetJob(recipe, recipe, seed, params, env, run_dir,
                                   evaluation if recipe == "progressive" else {}, env_id=preset.env_id))
        return jobs

    ablation_seeds = ([s for s in ab.seeds if s in preset.seeds] or [preset.seeds[0]]) if ab.seeds else preset.seeds
    band_widths = [w for w in ab.band_widths if abs(w - col.band) > 1e-9] if ab.enabled else []
    readings = _reading_variants(preset, overrides_for("integrated_rl")) if "integrated_rl" in ag.names else []
    datasets: list[DatasetJob] = []
    for seed in preset.seeds:
        datasets.extend(dataset_jobs(seed))
        if seed in ablation_seeds and "integrated_rl" in ag.names:
            for width in band_widths:
                datasets.append(DatasetJob(band_dataset_name(width), "uniform", seed, {**common, "band": width},
                                           env, run_dir, env_id=preset.env_id))
            # Progressive rounds trained with another reading: a progressive dataset of their own (same seed, so
            # round 0 is the main progressive dataset's round 0).
            main_progressive = next((d for d in datasets[::-1] if d.name == "progressive" and d.seed == seed), None)
            for _, _, dataset, extra, _ in readings:
                if dataset != "progressive" and dataset.startswith("progressive") and main_progressive is not None:
                    params = {**main_progressive.params,
                              "overrides": {**main_progressive.params["overrides"], **extra}}
                    datasets.append(dataclasses.replace(main_progressive, name=dataset, params=params))

    common = _common(preset)
    train_evaluation = dict(evaluation)
    if ag.select_checkpoint != "last":
        # Only then in the jobs' identity: runs that publish their last policy keep their hashes.
        tu = preset.tuning
        train_evaluation.update(select_checkpoint=ag.select_checkpoint, validation_sessions=tu.sessions,
                                validation_user_seed=tu.user_seed)

    def train(agent: str, label: str, dataset: str, seed: int, n_steps: int,
              extra: dict[str, Any] | None = None) -> TrainJob:
        kind = agent_kinds[agent]
        job = TrainJob(agent, label, dataset, seed, kind, n_steps, overrides_for(agent, extra), common, env,
                       train_evaluation, run_dir, device=preset.device, checkpoints=ag.checkpoints, band=col.band,
                       env_id=preset.env_id)
        by_id = {d.job_id: d.config_hash for d in datasets}
        return dataclasses.replace(job, dataset_hashes={need: by_id[need] for need in job.needs})

    trains: list[TrainJob] = []
    offline_datasets = list(col.recipes)
    for seed in preset.seeds:
        for agent in ag.names:
            if agent_kinds[agent] == "online":
                trains.append(train(agent, agent, ONLINE, seed, preset.train_steps(agent, True)))
            else:
                trains.extend(train(agent, agent, ds, seed, preset.train_steps(agent, False))
                              for ds in offline_datasets)

    # Ablation variants all get the ablation budget; a variant identical to an existing job reuses it.
    points: list[AblationPoint] = []
    main_irl_steps = preset.train_steps("integrated_rl", False)
    if ab.enabled and "integrated_rl" in ag.names and "uniform" in col.recipes:
        steps = ab.n_steps or main_irl_steps
        main_critics = int(overrides_for("integrated_rl").get("n_critics", -1))
        variants: list[tuple[str, float, str, dict[str, Any]]] = []
        for width in ab.band_widths:
            dataset = "uniform" if abs(width - col.band) <= 1e-9 else band_dataset_name(width)
            variants.append(("band", width, dataset, {}))
        for count in ab.critic_counts:
            variants.append(("critics", float(count), "uniform", {} if count == main_critics else
                             {"n_critics": count}))
        index = {(j.dataset, j.seed, j.n_steps, json.dumps(j.overrides, sort_keys=True)): j for j in trains}
        for group, value, dataset, extra in variants:
            label = "integrated_rl" if not extra and steps == main_irl_steps else (
                f"integrated_rl+{group}{value:.2f}" if group == "band" else f"integrated_rl+critics{int(value)}")
            ids = []
            for seed in ablation_seeds:
                job = train("integrated_rl", label, dataset, seed, steps, extra)
                key = (job.dataset, job.seed, job.n_steps, json.dumps(job.overrides, sort_keys=True))
                if key not in index:
                    index[key] = job
                    trains.append(job)
                ids.append(index[key].job_id)
            points.append(AblationPoint(group, value, tuple(ids), setting=f"{value:g}",
                                        reference=dataset == "uniform" and not extra, dataset=dataset))

    # Critic sets q x m and the paper readings (appended after every job above: those keep their ids and hashes).
    # A setting equal to the main config reuses whichever job already trains it at the ablation budget.
    if ab.enabled and "integrated_rl" in ag.names:
        steps = ab.n_steps or main_irl_steps
        main_critics = int(overrides_for("integrated_rl").get("n_critics", -1))
        variants2: list[tuple[AblationPoint, dict[str, Any]]] = []
        if "uniform" in col.recipes:
            for q in ab.critic_sets:
                for m in ab.critic_counts:
                    # q = 1 is the critics group's job (same overrides, so it is reused).
                    extra = ({} if m == main_critics else {"n_critics": m}) | ({"num_critic_sets": q} if q > 1 else {})
                    variants2.append((AblationPoint("critic_sets", float(m), (), f"q={q}, m={m}", not extra,
                                                    f"q={q}", "uniform"), extra))
        names = {d.name for d in datasets}
        for group, value, dataset, extra, setting in readings:
            if dataset in names:
                variants2.append((AblationPoint(group, value, (), setting, not extra, "", dataset), extra))
        index = {(j.dataset, j.seed, j.n_steps, json.dumps(j.overrides, sort_keys=True)): j for j in trains}
        for point, extra in variants2:
            label = ("integrated_rl" if steps == main_irl_steps else "integrated_rl+reference") if not extra else (
                "integrated_rl+" + _variant_slug(point, extra))
            ids = []
            for seed in ablation_seeds:
                job = train("integrated_rl", label, point.dataset, seed, steps, extra)
                key = (job.dataset, job.seed, job.n_steps, json.dumps(job.overrides, sort_keys=True))
                if key not in index:
                    index[key] = job
                    trains.append(job)
                ids.append(index[key].job_id)
            points.append(dataclasses.replace(point, job_ids=tuple(ids)))

    # Exploration centre (appended last: every job above keeps its id and hash). The paper explores around a
    # state-dependent baseline RL policy from the first round; "es" collects a bounded-uniform dataset per ablation
    # seed around the ES control trained in this grid (same seed) and trains IntegratedRL on it. A setting whose
    # policy is not in the grid (``--agents`` without es) is left out.
    if ab.enabled and "integrated_rl" in ag.names and "uniform" in col.recipes and ab.exploration_centres:
        steps = ab.n_steps or main_irl_steps
        policies = {(j.agent, j.seed): j for j in trains if j.dataset == ONLINE and j.label == j.agent}
        index = {(j.dataset, j.seed, j.n_steps, json.dumps(j.overrides, sort_keys=True)): j for j in trains}
        for position, setting in enumerate(ab.exploration_centres):
            dataset = "uniform" if setting == "baseline" else centre_dataset_name(setting)
            ids = []
            for seed in ablation_seeds:
                if setting != "baseline":
                    centre = policies.get((CENTRE_AGENTS[setting], seed))
                    if centre is None:
                        continue
                    if not any(d.name == dataset and d.seed == seed for d in datasets):
                        datasets.append(DatasetJob(
                            dataset, "uniform", seed, {"sessions": col.sessions, "minari": col.minari,
                                                       "band": col.band, "centre_job": centre.job_id,
                                                       "centre_hash": centre.config_hash},
                            env, run_dir, env_id=preset.env_id))
                label = ("integrated_rl" if steps == main_irl_steps else "integrated_rl+reference") \
                    if setting == "baseline" else f"integrated_rl+centre_{setting}"
                job = train("integrated_rl", label, dataset, seed, steps)
                key = (job.dataset, job.seed, job.n_steps, json.dumps(job.overrides, sort_keys=True))
                if key not in index:
                    index[key] = job
                    trains.append(job)
                ids.append(index[key].job_id)
            if ids:
                points.append(AblationPoint(CENTRE_GROUP, float(position), tuple(ids), setting,
                                            setting == "baseline", "", dataset))
    return Grid(tuple(datasets), tuple(trains), tuple(points))


def _variant_slug(point: AblationPoint, extra: dict[str, Any]) -> str:
    """The agent label's suffix of an ablation variant: ``sets3x8``, ``critics24``, ``target_noise0.20``,
    ``critic_penalty_subtractive``, ..."""
    if point.group == "critic_sets":
        q = int(extra.get("num_critic_sets", 1))
        return f"sets{q}x{int(point.value)}" if q > 1 else f"critics{int(point.value)}"
    if point.group == "target_noise":
        return f"target_noise{point.value:.2f}"
    return f"{point.group}_{point.setting}"


def _reading_variants(preset: Preset, base: dict[str, Any]) -> list[tuple[str, float, str, dict[str, Any], str]]:
    """``(group, value, training dataset, config change, setting)`` of every paper-reading ablation setting: the
    change is empty for the main config's setting (resolved from ``base``, the main IntegratedRL overrides, and
    the agent's defaults); a progressive setting other than the main config's trains on its own dataset."""
    from mtf_agents.registry import get_registry

    ab, recipes = preset.ablation, preset.collection.recipes
    if not ab.enabled:
        return []
    defaults = {f.name: f.default for f in dataclasses.fields(get_registry().get("integrated_rl").config_class)}
    lists: dict[str, tuple[Any, ...]] = {
        "target_noise": ab.target_noise, "actor_band_weight": ab.actor_band_weights,
        "critic_penalty": ab.critic_penalties, "progressive_data": ab.progressive_data,
        "progressive_init": ab.progressive_init,
    }
    out = []
    for group, (field_name, recipe) in READING_GROUPS.items():
        if recipe not in recipes:
            continue
        current = base.get(field_name, defaults[field_name])
        for position, setting in enumerate(lists[group]):
            same = setting == current
            extra = {} if same else {field_name: setting}
            dataset = recipe if same or recipe != "progressive" else progressive_dataset_name(str(setting))
            value = float(setting) if group == "target_noise" else float(position)
            shown = ("off" if setting == 0 else f"{setting:g}") if group == "target_noise" else str(setting)
            out.append((group, value, dataset, extra, shown))
    return out

"""Report stage 2, aggregation: from loaded results to every number the claims, tables and figures use.

:func:`aggregate` takes the preset, its grid and the loaded results and returns one frozen :class:`Aggregates`;
the only simulations here are the two reference arms on the A/B users (the control, ``BaselinePolicy``, and the
uniformly random fusion, the 0 of the normalised score). Everything else is arithmetic on the jobs' outputs:

* per (agent, training data) cell: mean online metrics, paired lifts vs the control with bootstrap CIs over seeds and
  users (common random numbers), weighted GAUC and FQE, saturation, and the learning curve with its convergence;
* rliable statistics over seeds (:mod:`mtf_bench.harness.stats`): IQM of the normalised return, probability of
  improvement of IntegratedRL over every other arm, performance profiles;
* the offline estimators' rank agreement with online return and the regret of the policy each would select;
* the exploration analysis and the ablations; the inputs of every claim rule (:class:`ClaimInputs`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mtf_bench.harness import stats
from mtf_bench.harness.curves import Convergence, convergence, seed_mean_curve
from mtf_bench.harness.grid import ES, ONLINE, TEST_DATASET, Grid
from mtf_bench.harness.plots import Estimate
from mtf_bench.harness.presets import Preset
from mtf_bench.harness.results import LoadedResults, Run
from mtf_gym.atomic import read_json
from mtf_gym.envs.versions import DEFAULT_SESSION_ENV_ID
from mtf_gym.evaluation import ONLINE_METRICS, SessionOutcomes, SessionRunner, lift_ci, simulate_sessions
from mtf_gym.metrics import ConfidenceInterval, bootstrap_ci, paired_lift_ci

if TYPE_CHECKING:
    from mtf_gym.datasets.analysis import ExplorationCost

__all__ = ["Aggregates", "Cell", "CellCurve", "ClaimInputs", "Normalisation", "OfflineAgreement", "SeedStats",
           "aggregate", "comparison_rng", "exploration_centres", "main_runs", "updates_per_second"]

# Seed of the report's bootstrap resamples and of the random reference arm (fixed: a report is reproducible).
REPORT_SEED = 20240426


def _estimate(ci: ConfidenceInterval) -> Estimate:
    return Estimate(ci.estimate, ci.low, ci.high)


@dataclass(frozen=True)
class CellCurve:
    """A cell's learning curve: lift vs the control on the curve users at each checkpoint, and its convergence."""

    steps: tuple[int, ...]
    lifts: tuple[Estimate, ...]
    convergence: Convergence
    unit: str  # "gradient steps" or "requests"
    # The published checkpoint of each seed's run when it was chosen on validation users (empty: the last).
    selected_steps: tuple[int, ...] = ()
    # Those published checkpoints vs the last ones on the curve users (seed means, paired; None: no selection).
    published_vs_last: Estimate | None = None

    @property
    def highest(self) -> int:
        """Index of the checkpoint with the highest lift (a diagnostic: measured on evaluation users)."""
        return int(np.argmax([e.value for e in self.lifts]))


@dataclass(frozen=True)
class Cell:
    """One (agent, training data) cell of the main grid, aggregated over its seeds."""

    agent: str
    dataset: str
    runs: tuple[Run, ...]
    means: dict[str, float] | None
    lifts: dict[str, Estimate | None]
    gauc: Estimate | None
    fqe: Estimate | None
    fit_s: float
    saturation: dict[str, Any] | None
    curve: CellCurve | None

    @property
    def ok(self) -> tuple[Run, ...]:
        return tuple(r for r in self.runs if r.ok)

    @property
    def label(self) -> str:
        return f"{self.agent}/{self.dataset}"


@dataclass(frozen=True)
class Normalisation:
    """The two ends of the normalised score (random fusion = 0, reference = 100) and where the 100 comes from."""

    random_return: float
    reference_return: float
    reference: str


@dataclass(frozen=True)
class SeedStats:
    """rliable statistics over training seeds of every arm's normalised return (arm: ``agent/dataset``)."""

    scores: dict[str, np.ndarray]
    iqm: dict[str, stats.IntervalEstimate]
    improvement: dict[tuple[str, str], stats.IntervalEstimate]
    profiles: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    thresholds: tuple[float, ...]


@dataclass(frozen=True)
class OfflineAgreement:
    """An offline estimator vs online return over every trained policy."""

    estimator: str
    spearman: stats.SpearmanEstimate
    regret: float | None
    selected: str | None
    points: tuple[tuple[str, float, float], ...]  # (label, offline estimate, online return)


@dataclass(frozen=True)
class ClaimInputs:
    """Exactly what the claim rules of :mod:`mtf_bench.harness.claims` judge."""

    return_lifts: dict[tuple[str, str], Estimate | None]
    gauc: dict[tuple[str, str], Estimate | None]
    uniform_vs_gaussian: dict[str, Estimate]
    vs_es: dict[str, dict[str, Estimate | None]]
    es_status: str | None
    ptm_lift: Estimate | None


@dataclass(frozen=True)
class Aggregates:
    baseline: SessionOutcomes
    random: SessionOutcomes
    baseline_gauc: float
    normalisation: Normalisation
    cells: dict[tuple[str, str], Cell]
    seed_stats: SeedStats
    agreements: dict[str, OfflineAgreement]
    efficiency: Any | None
    exploration_costs: dict[str, ExplorationCost]  # per recipe, vs the baseline (test) data, seeds pooled
    ablation: dict[str, list[dict[str, Any]]]
    centres: dict[str, dict[str, Any]]
    claim_inputs: ClaimInputs


def main_runs(preset: Preset, runs: Sequence[Run], label: str, dataset: str) -> list[Run]:
    """The runs of ``label`` on ``dataset`` at the main budget (ablation variants at other budgets excluded)."""
    steps = preset.train_steps(label, dataset == ONLINE)
    return [r for r in runs if r.job.label == label and r.job.dataset == dataset and r.job.n_steps == steps]


def comparison_rng(*key: object) -> np.random.Generator:
    """The bootstrap generator of one comparison, seeded by :data:`REPORT_SEED` and what is compared (``key``: job
    ids, metric, the control's data), not by its place in the report: adding, removing or rerunning other agents
    leaves every other interval bit-identical."""
    digest = zlib.crc32(repr(key).encode())
    return np.random.default_rng([REPORT_SEED, digest])


def _arm_key(runs: Sequence[Run]) -> tuple[str, ...]:
    return tuple(sorted(r.job.job_id for r in runs))


def _outcomes_key(outcomes: SessionOutcomes) -> int:
    return zlib.crc32(np.ascontiguousarray(outcomes.returns, dtype=np.float64).tobytes())


class _Bootstrap:
    """The report's resampling settings; every interval draws from a generator of its own
    (:func:`comparison_rng`), so the report is reproducible and one arm's intervals do not depend on the others."""

    def __init__(self, preset: Preset) -> None:
        self.confidence = preset.evaluation.confidence
        self.reps = preset.evaluation.bootstrap

    def lift(self, runs: Sequence[Run], metric: str, control: SessionOutcomes) -> Estimate | None:
        ok = [r for r in runs if r.ok]
        if not ok:
            return None
        rng = comparison_rng("lift", metric, _arm_key(ok), _outcomes_key(control))
        return _estimate(lift_ci([r.sessions for r in ok], control, metric, rng=rng, confidence=self.confidence,
                                 num_resamples=self.reps))

    def mean(self, values: Sequence[float | None], *key: object) -> Estimate | None:
        vals = [v for v in values if v is not None and math.isfinite(v)]
        if not vals:
            return None
        return _estimate(bootstrap_ci(vals, confidence=self.confidence, num_resamples=self.reps,
                                      rng=comparison_rng("mean", *key)))


def mean_outcomes(runs: Sequence[SessionOutcomes]) -> SessionOutcomes:
    """Per-user average over several runs on the same users (a seed-averaged control arm)."""
    fields = {_METRIC_FIELDS[m]: np.mean([r.metric(m) for r in runs], axis=0) for m in ONLINE_METRICS}
    return SessionOutcomes(**fields, user_seed=runs[0].user_seed)


_METRIC_FIELDS = {"return": "returns", "valid_views": "valid_views", "watch_time_min": "watch_time_min",
                  "requests": "requests"}


def _cell_curve(runs: Sequence[Run], baseline: SessionOutcomes, boot: _Bootstrap, unit: str) -> CellCurve | None:
    curves = [(r.curve.steps, r.curve.returns) for r in runs if r.ok and r.curve is not None]
    if not curves:
        return None
    try:
        steps, returns = seed_mean_curve(curves)
    except ValueError:
        return None
    control = baseline.returns[: returns.shape[1]]
    arm = _arm_key([r for r in runs if r.ok and r.curve is not None])
    lifts = tuple(_estimate(paired_lift_ci(row, control, confidence=boot.confidence, num_resamples=boot.reps,
                                           rng=comparison_rng("curve", arm, step)))
                  for step, row in zip(steps, returns))
    conv = convergence(steps, returns, rng=comparison_rng("convergence", arm), confidence=boot.confidence,
                       num_resamples=boot.reps)
    selected = tuple(int(r.result["selection"]["selected_step"]) for r in runs
                     if r.ok and r.curve is not None and r.result.get("selection"))
    published_vs_last = None
    if selected and len(selected) == len(curves):
        # The curve users take no part in the selection (validation users do): an unbiased view of what it changed.
        published = np.mean([np.asarray(r, dtype=np.float64)[steps.index(step)]
                             for (_, r), step in zip(curves, selected, strict=True)], axis=0)
        published_vs_last = _estimate(paired_lift_ci(published, returns[-1], confidence=boot.confidence,
                                                     num_resamples=boot.reps, rng=comparison_rng("selection", arm)))
    return CellCurve(steps, lifts, conv, unit, selected, published_vs_last)


def _saturation(runs: Sequence[Run]) -> dict[str, Any] | None:
    sats = [r.result["saturation"] for r in runs if r.ok and r.result.get("saturation")]
    if not sats:
        return None
    own = [r.training_saturation for r in runs if r.ok and r.training_saturation]
    return {"action_edge": float(np.mean([s["action_edge"] for s in sats])),
            "band_edge": float(np.mean([s["band_edge"] for s in sats])),
            "band_edge_per_dim": np.mean([s["band_edge_per_dim"] for s in sats], axis=0).tolist(),
            "band": sats[0]["band"],
            # Progressive data only: around each training transition's own centre (the previous round's policy).
            "training_band_edge": float(np.mean([s["band_edge"] for s in own])) if own else None,
            "training_band_edge_per_dim": (np.mean([s["band_edge_per_dim"] for s in own], axis=0).tolist()
                                           if own else None)}


def _fqe_value(run: Run) -> float | None:
    fqe = (run.result or {}).get("fqe")
    return None if not fqe else fqe.get("value")


def _cells(preset: Preset, runs: Sequence[Run], baseline: SessionOutcomes, boot: _Bootstrap) -> dict:
    cells: dict[tuple[str, str], Cell] = {}
    for agent in preset.agents.names:
        for ds in (*preset.collection.recipes, ONLINE):
            group = main_runs(preset, runs, agent, ds)
            if not group:
                continue
            ok = [r for r in group if r.ok]
            means = ({m: float(np.mean([r.result["online"][m] for r in ok])) for m in ONLINE_METRICS}
                     if ok else None)
            cells[(agent, ds)] = Cell(
                agent, ds, tuple(group), means,
                {m: boot.lift(ok, m, baseline) for m in ONLINE_METRICS} if ok else {},
                boot.mean([r.result["gauc"] for r in ok], "gauc", _arm_key(ok)),
                boot.mean([_fqe_value(r) for r in ok], "fqe", _arm_key(ok)),
                float(np.mean([r.result["timings"].get("fit_s", np.nan) for r in ok])) if ok else float("nan"),
                _saturation(ok), _cell_curve(ok, baseline, boot, "requests" if ds == ONLINE else "gradient steps"))
    return cells


def _normalisation(preset: Preset, baseline: SessionOutcomes, random: SessionOutcomes) -> Normalisation:
    ref = preset.evaluation.reference_return
    if ref > 0:
        return Normalisation(float(random.returns.mean()), ref, "evaluation.reference_return (the environment's "
                             "best known fusion)")
    why_control = "report.reference = 'control'"
    if preset.report.reference == "ladder":
        from mtf_bench.headroom import ladder_oracle, rollout

        path = preset.report.ladder_path()
        record = read_json(path) if path is not None else None
        name, policy, problem = "", None, ""
        try:
            if isinstance(record, dict):
                name, policy = ladder_oracle(record)
        except (KeyError, TypeError, ValueError) as exc:
            problem = f" (unusable record: {exc})"
        if preset.env_id != DEFAULT_SESSION_ENV_ID or preset.env:
            why_control = (f"report.reference = 'ladder' does not apply: the headroom ladder is measured on "
                           f"{DEFAULT_SESSION_ENV_ID} with its default config, this run is {preset.env_id}"
                           + (f" with env overrides {sorted(preset.env)}" if preset.env else ""))
        elif policy is None:
            why_control = (f"report.reference = 'ladder' does not apply: {preset.report.ladder_record!r} is not a "
                           f"readable headroom ladder record{problem}")
        else:
            ev = preset.evaluation
            # The ladder's policy on this report's A/B users (user i: seed user_seed + i, as every arm).
            oracle = float(rollout(SessionRunner(ev.sessions, preset.env_config()), ev.user_seed, policy)
                           .returns.mean())
            over = oracle / float(baseline.returns.mean()) - 1.0
            return Normalisation(float(random.returns.mean()), oracle,
                                 f"the headroom ladder's best oracle, '{name}' ({preset.report.ladder_record}), "
                                 f"rerun on the A/B users ({over:+.2%} over the control)")
    return Normalisation(float(random.returns.mean()), float(baseline.returns.mean()),
                         f"the control arm (BaselinePolicy): {why_control}")


def _seed_stats(preset: Preset, cells: dict[tuple[str, str], Cell], baseline: SessionOutcomes,
                norm: Normalisation) -> SeedStats:
    ev = preset.evaluation
    scores = {c.label: stats.normalise(np.array([r.result["online"]["return"] for r in c.ok]), norm.random_return,
                                       norm.reference_return) for c in cells.values() if c.ok}
    scores["control (BaselinePolicy)"] = stats.normalise(np.array([baseline.returns.mean()]), norm.random_return,
                                                         norm.reference_return)
    reps = min(ev.bootstrap, 2000)
    iqm = stats.iqm(scores, reps=reps, confidence=ev.confidence, seed=REPORT_SEED) if scores else {}
    improvement = {}
    # IntegratedRL on each training dataset over every baseline trained on the same data, the online agents
    # (ES among them) and the control: "IntegratedRL over each baseline", without cross-dataset pairs.
    for x in [k for k in scores if k.startswith("integrated_rl/")]:
        dataset = x.split("/", 1)[1]
        for y in scores:
            agent, _, y_dataset = y.partition("/")
            if agent != "integrated_rl" and (y_dataset in (dataset, ONLINE) or not y_dataset):
                improvement[(x, y)] = stats.probability_of_improvement(scores[x], scores[y], reps=reps,
                                                                       confidence=ev.confidence, seed=REPORT_SEED)
    thresholds = profile_thresholds(scores)
    profiles = stats.performance_profiles(scores, thresholds, reps=reps, confidence=ev.confidence,
                                          seed=REPORT_SEED) if scores else {}
    return SeedStats(scores, iqm, improvement, profiles, thresholds)


def profile_thresholds(scores: dict[str, np.ndarray], points: int = 161) -> tuple[float, ...]:
    """The performance profiles' tau grid: from just under the lowest run's score to just over the highest or 100
    (the reference), so the profiles' steps are visible where the runs are (all runs often lie within a few
    points of each other) and the reference is on the axis."""
    values = np.concatenate([np.ravel(s) for s in scores.values()]) if scores else np.array([0.0, 100.0])
    values = values[np.isfinite(values)]
    low = math.floor(values.min()) - 1.0 if values.size else 0.0
    high = max(math.ceil(values.max()) + 1.0, 101.0) if values.size else 101.0
    return tuple(float(t) for t in np.linspace(low, high, points))


def _agreement(name: str, key: Any, runs: Sequence[Run], ev: Any) -> OfflineAgreement:
    rows = [(r.job.job_id, r.job.label, key(r), float(r.result["online"]["return"])) for r in runs if r.ok]
    rows = [row for row in rows if row[2] is not None and math.isfinite(row[2])]
    offline = [row[2] for row in rows]
    online = [row[3] for row in rows]
    rho = stats.spearman_with_ci(offline, online, confidence=ev.confidence, reps=min(ev.bootstrap, 2000),
                                 seed=REPORT_SEED)
    regret = selected = None
    if rows:
        index, _, relative = stats.offline_selection_regret(offline, online)
        regret, selected = relative, rows[index][0]
    return OfflineAgreement(name, rho, regret, selected, tuple((row[1], row[2], row[3]) for row in rows))


def _exploration(preset: Preset, datasets: dict[tuple[str, int], Any], boot: _Bootstrap) -> tuple[Any, dict]:
    """Gaussian vs uniform efficiency (pooled over seeds) and the cost of exploring per recipe."""
    from mtf_gym.datasets import TransitionData
    from mtf_gym.datasets.analysis import exploration_cost, exploration_efficiency

    col = preset.collection
    pairs = [(datasets[("uniform", s)], datasets[("gaussian", s)]) for s in preset.seeds
             if ("uniform", s) in datasets and ("gaussian", s) in datasets]
    efficiency = None
    if pairs:
        efficiency = exploration_efficiency(TransitionData.concatenate([u for u, _ in pairs], {}),
                                            TransitionData.concatenate([g for _, g in pairs], {}),
                                            lower=-col.band, upper=col.band, sigma=col.sigma,
                                            confidence=boot.confidence)
    # Pooled over the seeds that have both datasets; the baseline (test) data's users are other users than the
    # recipe's, so the interval is for independent samples (exploration_cost's delta method), not paired.
    costs: dict[str, ExplorationCost] = {}
    for name in col.recipes:
        seeds = [s for s in preset.seeds if (name, s) in datasets and (TEST_DATASET, s) in datasets]
        if seeds:
            costs[name] = exploration_cost(
                TransitionData.concatenate([datasets[(name, s)] for s in seeds], {}),
                TransitionData.concatenate([datasets[(TEST_DATASET, s)] for s in seeds], {}),
                rng=comparison_rng("exploration", name, tuple(seeds)), confidence=boot.confidence,
                num_resamples=boot.reps)
    return efficiency, costs


def updates_per_second(run: Run, clock: str = "fit_s") -> float | None:
    """Gradient steps per second of training time, learning-curve evaluation excluded: wall time (``fit_s``) or
    the job's CPU time (``fit_cpu_s``, recorded by jobs run since it existed; one torch thread per job)."""
    seconds = ((run.result or {}).get("timings") or {}).get(clock)
    return run.job.n_steps / seconds if seconds and seconds > 0 and run.job.dataset != ONLINE else None


def _ablation(grid: Grid, runs: Sequence[Run], baseline: SessionOutcomes, boot: _Bootstrap) -> dict:
    """Per ablation group, one entry per setting (in the grid's order): the return lift vs the control, the lift vs
    the group's reference setting (paired on the same users), weighted GAUC, training wall time and updates/s."""
    by_id = {r.job.job_id: r for r in runs}
    out: dict[str, list[dict[str, Any]]] = {}
    references: dict[str, list[Run]] = {}
    entries: list[dict[str, Any]] = []  # one per point of grid.ablations, in its order
    for point in grid.ablations:
        if point.reference:
            references.setdefault(point.group, [by_id[j] for j in point.job_ids if j in by_id and by_id[j].ok])
    for point in grid.ablations:
        group = [by_id[j] for j in point.job_ids if j in by_id and by_id[j].ok]
        reference = references.get(point.group)
        speeds = [u for u in (updates_per_second(r) for r in group) if u is not None]
        cpu_speeds = [u for u in (updates_per_second(r, "fit_cpu_s") for r in group) if u is not None]
        entries.append({
            "setting": point.setting or f"{point.value:g}", "value": point.value, "series": point.series,
            "reference": point.reference, "dataset": point.dataset, "n": len(group),
            "lift": boot.lift(group, "return", baseline) if group else None,
            "vs_reference": (boot.lift(group, "return", mean_outcomes([r.sessions for r in reference]))
                             if group and reference and not point.reference else None),
            "gauc": boot.mean([r.result["gauc"] for r in group], "gauc", _arm_key(group)) if group else None,
            "steps": group[0].job.n_steps if group else None,
            "fit_s": float(np.mean([r.result["timings"]["fit_s"] for r in group])) if speeds else None,
            "updates_per_s": float(np.mean(speeds)) if speeds else None,
            "updates_per_cpu_s": float(np.mean(cpu_speeds)) if cpu_speeds else None,
            "vs_reference_simultaneous": None})
        out.setdefault(point.group, []).append(entries[-1])
    _simultaneous_intervals(grid, by_id, references, entries, boot)
    return out


def simultaneous_confidence(confidence: float, comparisons: int) -> float:
    """Bonferroni: each of ``comparisons`` intervals at ``1 - (1 - confidence) / comparisons``, so that all of them
    cover their true values together with probability >= ``confidence``."""
    if comparisons < 1:
        raise ValueError(f"comparisons must be an integer >= 1, got {comparisons!r}")
    return 1.0 - (1.0 - confidence) / comparisons


def _simultaneous_intervals(grid: Grid, by_id: dict[str, Run], references: dict[str, list[Run]],
                            entries: list[dict[str, Any]], boot: _Bootstrap) -> None:
    """Each ablation setting vs its group's reference again, at a Bonferroni-corrected level over the ablation's
    distinct comparisons (``entries`` follow ``grid.ablations``; a setting shared by two groups, e.g. ``critics`` and
    ``critic_sets`` at q = 1, counts once): the interval that decides whether the evidence favours a setting over
    the default."""
    comparisons: dict[tuple[tuple[str, ...], tuple[str, ...]], list[tuple[Any, dict[str, Any]]]] = {}
    for point, entry in zip(grid.ablations, entries):
        if entry["vs_reference"] is not None:
            key = (tuple(sorted(point.job_ids)), tuple(sorted(r.job.job_id for r in references[point.group])))
            comparisons.setdefault(key, []).append((point, entry))
    if not comparisons:
        return
    confidence = simultaneous_confidence(boot.confidence, len(comparisons))
    reps = max(boot.reps, math.ceil(40 / (1.0 - confidence)))  # ~20 resamples beyond each interval end
    for key, shared in comparisons.items():
        point = shared[0][0]
        group = [by_id[j] for j in point.job_ids if j in by_id and by_id[j].ok]
        control = mean_outcomes([r.sessions for r in references[point.group]])
        estimate = _estimate(lift_ci([r.sessions for r in group], control, "return",
                                     rng=comparison_rng("simultaneous", key), confidence=confidence,
                                     num_resamples=reps))
        for _, entry in shared:
            entry.update(vs_reference_simultaneous=estimate, simultaneous_confidence=confidence,
                         comparisons=len(comparisons))


def _centre_text(record: dict[str, Any] | None) -> str:
    if not record:
        return "not recorded"
    kind = "state-dependent" if record.get("varies_across_states") else "constant"
    return f"{record.get('policy')} ({kind})"


def exploration_centres(grid: Grid, loaded: LoadedResults) -> dict[str, dict[str, Any]]:
    """Per training dataset of the grid: the exploration centre(s) its data was collected around, from the dataset
    jobs' records (``centre``, ``round_centres``), else from its recipe (results written before they were recorded).

    ``arrangement`` is one line for the report; ``state_dependent_from_round_0`` tells whether every user had a
    personalised band from the first collected session on (the paper's arrangement: bands around a state-dependent
    baseline RL policy); ``state_dependent_rounds`` lists the rounds collected around a state-dependent centre.
    """
    out: dict[str, dict[str, Any]] = {}
    for job in grid.datasets:
        if job.name == TEST_DATASET or job.name in out:
            continue
        results = [res for (name, _), res in loaded.datasets.items() if name == job.name and res]
        recorded = [res for res in results if res.get("centre")]
        if recorded:
            res = recorded[0]
            rounds = res.get("round_centres") or [res["centre"]]
            varying = [i for i, c in enumerate(rounds) if c and c.get("varies_across_states")]
            parts = [f"round {i}: {_centre_text(c)}" for i, c in enumerate(rounds)] if len(rounds) > 1 else [
                _centre_text(rounds[0])]
            source = "recorded by the dataset job"
        elif job.recipe == "progressive":
            rounds_planned = int(job.params.get("rounds", 1))
            varying = list(range(1, rounds_planned))
            parts = ["round 0: BaselinePolicy (constant)"] + (
                [f"rounds 1-{rounds_planned - 1}: the previous round's IntegratedRL (state-dependent)"]
                if rounds_planned > 1 else [])
            source = "from the recipe (not recorded by this run's dataset jobs)"
        else:
            varying, parts = [], ["BaselinePolicy (constant: one band for every user)"]
            source = "from the recipe (not recorded by this run's dataset jobs)"
        out[job.name] = {"recipe": job.recipe, "arrangement": "; ".join(parts), "source": source,
                         "state_dependent_rounds": varying, "state_dependent_from_round_0": 0 in varying}
    return out


def _claim_inputs(preset: Preset, runs: Sequence[Run], cells: dict[tuple[str, str], Cell],
                  boot: _Bootstrap) -> ClaimInputs:
    def ok(agent: str, ds: str) -> list[Run]:
        return [r for r in main_runs(preset, runs, agent, ds) if r.ok]

    uniform_vs_gaussian = {}
    for agent in preset.agents.names:
        u, g = ok(agent, "uniform"), ok(agent, "gaussian")
        if u and g:
            uniform_vs_gaussian[agent] = boot.lift(u, "return", mean_outcomes([r.sessions for r in g]))
    es_runs = ok(ES, ONLINE)
    vs_es: dict[str, dict[str, Estimate | None]] = {}
    es_status = None
    if es_runs:
        control = mean_outcomes([r.sessions for r in es_runs])
        es_cell = cells.get((ES, ONLINE))
        es_status = es_cell.curve.convergence.status if es_cell and es_cell.curve else "no learning curve"
        for label, agent, ds in (("DDPG", "ddpg", "uniform"), ("IQL", "iql", "uniform"),
                                 ("IntegratedRL", "integrated_rl", "progressive")):
            group = ok(agent, ds)
            vs_es[label] = {m: boot.lift(group, m, control) if group else None
                            for m in ("valid_views", "watch_time_min")}
    prog, unif = ok("integrated_rl", "progressive"), ok("integrated_rl", "uniform")
    ptm = boot.lift(prog, "return", mean_outcomes([r.sessions for r in unif])) if prog and unif else None
    return ClaimInputs(
        return_lifts={k: c.lifts.get("return") for k, c in cells.items()},
        gauc={k: c.gauc for k, c in cells.items()},
        uniform_vs_gaussian=uniform_vs_gaussian, vs_es=vs_es, es_status=es_status, ptm_lift=ptm)


def aggregate(preset: Preset, grid: Grid, loaded: LoadedResults, datasets: dict[tuple[str, int], Any]) -> Aggregates:
    """Every aggregate of the run (see the module docstring); ``datasets`` are the loaded collected datasets."""
    from mtf_gym.policies import BaselinePolicy, RandomFusionPolicy

    env, ev = preset.env_config(), preset.evaluation
    boot = _Bootstrap(preset)
    baseline = simulate_sessions(BaselinePolicy(env), ev.sessions, ev.user_seed, env)
    random = simulate_sessions(RandomFusionPolicy(env.action_dim, np.random.default_rng(REPORT_SEED)), ev.sessions,
                               ev.user_seed, env)
    runs = loaded.runs
    cells = _cells(preset, runs, baseline, boot)
    norm = _normalisation(preset, baseline, random)
    gauc_values = [(loaded.datasets.get((TEST_DATASET, s)) or {}).get("baseline_gauc") for s in preset.seeds]
    gauc_values = [v for v in gauc_values if v is not None]
    efficiency, costs = _exploration(preset, datasets, boot)
    agreements = {"weighted GAUC": _agreement("weighted GAUC", lambda r: r.result.get("gauc"), runs, ev),
                  "FQE": _agreement("FQE", _fqe_value, runs, ev)}
    return Aggregates(
        baseline=baseline, random=random, baseline_gauc=float(np.mean(gauc_values)) if gauc_values else float("nan"),
        normalisation=norm, cells=cells, seed_stats=_seed_stats(preset, cells, baseline, norm),
        agreements=agreements, efficiency=efficiency, exploration_costs=costs,
        ablation=_ablation(grid, runs, baseline, boot), centres=exploration_centres(grid, loaded),
        claim_inputs=_claim_inputs(preset, runs, cells, boot))

"""Report stage 4b, rendering: the per-run table (``runs.csv`` / ``runs.json``), ``summary.json`` and ``report.md``
from the aggregates, the claims and the figures. Pure formatting: no number is computed here that the aggregates
do not hold, apart from per-run lifts in the run table."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtf_bench.harness import stats
from mtf_bench.harness.aggregate import Aggregates, comparison_rng, updates_per_second
from mtf_bench.harness.claims import Claim, fmt_ci
from mtf_bench.harness.curves import CONVERGED_RULE
from mtf_bench.harness.grid import TEST_DATASET, Grid
from mtf_bench.harness.plots import Estimate
from mtf_bench.harness.presets import Preset
from mtf_bench.harness.results import TRAINING_SATURATION_ROWS, LoadedResults
from mtf_gym.atomic import jsonable
from mtf_gym.evaluation import ONLINE_METRICS, lift_ci

__all__ = ["PLOTS_DIR", "markdown", "rows_to_csv", "run_rows", "summary"]

PLOTS_DIR = "plots"


def run_rows(preset: Preset, loaded: LoadedResults, agg: Aggregates) -> list[dict[str, Any]]:
    """One row per training run: per-seed raw scores (online metrics), the normalised return, the paired lift
    vs the control, the offline estimates, saturation and timings."""
    ev, norm = preset.evaluation, agg.normalisation
    rows = []
    for r in loaded.runs:
        res = r.result or {}
        online = res.get("online", {})
        timings = res.get("timings", {})
        lift = None
        if r.ok:
            ci = lift_ci(r.sessions, agg.baseline, "return", rng=comparison_rng("run lift", r.job.job_id),
                         confidence=ev.confidence, num_resamples=ev.bootstrap)
            lift = Estimate(ci.estimate, ci.low, ci.high)
        sat = res.get("saturation") or {}
        curve = res.get("curve") or {}
        rows.append({
            "job_id": r.job.job_id, "status": "ok" if r.ok else "failed", "agent": r.job.agent,
            "label": r.job.label, "kind": r.job.agent_kind, "dataset": r.job.dataset, "seed": r.job.seed,
            "n_steps": r.job.n_steps, "env_id": r.job.env_id,
            **{m: online.get(m) for m in ONLINE_METRICS},
            "normalised_return": (float(stats.normalise(online["return"], norm.random_return, norm.reference_return))
                                  if "return" in online else None),
            "lift_return": None if lift is None else lift.value,
            "lift_return_low": None if lift is None else lift.low,
            "lift_return_high": None if lift is None else lift.high,
            "gauc": res.get("gauc"), "gauc_users": res.get("gauc_users_used"),
            "fqe": (res.get("fqe") or {}).get("value"),
            "action_edge_share": sat.get("action_edge"), "band_edge_share": sat.get("band_edge"),
            "training_band_edge_share": (r.training_saturation or {}).get("band_edge"),
            "curve_steps": " ".join(str(s) for s in curve.get("steps", [])),
            "curve_returns": " ".join(f"{v:.4f}" for v in curve.get("mean_returns", [])),
            "fit_s": timings.get("fit_s"), "updates_per_s": updates_per_second(r),
            "updates_per_cpu_s": updates_per_second(r, "fit_cpu_s"), "curve_eval_s": timings.get("curve_eval_s"),
            "eval_s": timings.get("eval_s"), "fqe_s": timings.get("fqe_s"), "total_s": timings.get("total_s"),
            "error": r.error,
        })
    return rows


def rows_to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["job_id"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def summary(preset: Preset, agg: Aggregates, claims: Sequence[Claim], timings: Mapping[str, Any]) -> dict[str, Any]:
    """``summary.json``: the claims and every cell's aggregates, machine-readable."""
    def est(e: Any) -> Any:
        return None if e is None else dataclasses.asdict(e)

    return jsonable({
        "preset": preset.name, "env_id": preset.env_id,
        "claims": [dataclasses.asdict(c) for c in claims],
        "normalisation": dataclasses.asdict(agg.normalisation),
        "cells": [{"agent": c.agent, "dataset": c.dataset, "n_ok": len(c.ok), "means": c.means,
                   "lifts": {m: est(e) for m, e in c.lifts.items()}, "gauc": est(c.gauc), "fqe": est(c.fqe),
                   "saturation": c.saturation,
                   "iqm": est(agg.seed_stats.iqm.get(c.label)),
                   "curve": None if c.curve is None else {
                       "steps": c.curve.steps, "lifts": [est(e) for e in c.curve.lifts],
                       "status": c.curve.convergence.status, "change": est(c.curve.convergence.change)}}
                  for c in agg.cells.values()],
        "probability_of_improvement": [{"x": x, "y": y, **dataclasses.asdict(e)}
                                       for (x, y), e in agg.seed_stats.improvement.items()],
        "baseline": agg.baseline.means(), "random": agg.random.means(), "baseline_gauc": agg.baseline_gauc,
        "agreement": {name: {"spearman": dataclasses.asdict(a.spearman), "regret": a.regret, "selected": a.selected}
                      for name, a in agg.agreements.items()},
        "ablation": {g: [{k: est(x) if isinstance(x, Estimate) else x for k, x in e.items()} for e in entries]
                     for g, entries in agg.ablation.items()},
        "exploration_centres": agg.centres,
        "timings": timings,
    })


def _figure(figures: Mapping[str, list[Path]], key: str, title: str) -> list[str]:
    files = figures.get(key)
    if not files:
        return []
    png = next(f for f in files if f.suffix == ".png")
    return ["", f"### {title}", "", f"![{title}]({PLOTS_DIR}/{png.name}) ([SVG]({PLOTS_DIR}/{png.stem}.svg))"]


def _claims_md(preset: Preset, claims: Sequence[Claim]) -> list[str]:
    p = preset
    lines = ["## The paper's claims, checked", "",
             f"Verdicts describe this run at its budgets ({p.agents.n_steps} gradient steps, MLP "
             f"{list(p.agents.hidden_units)}, {len(p.seeds)} seed(s)); the paper trains 300k steps with 24 critics "
             "(preset `paper`). They are computed from the numbers by the rules listed below the table.",
             "", "| claim | source | measured in the simulator | verdict |", "|---|---|---|---|"]
    lines += [f"| {c.statement} | {c.source} | {c.measured} | **{c.verdict}** |" for c in claims]
    lines += ["", "Verdict rules:", ""]
    lines += [f"- *{c.statement[:60]}{'…' if len(c.statement) > 60 else ''}*: {c.rule}." for c in claims]
    return lines


def _main_md(preset: Preset, agg: Aggregates, figures: Mapping[str, list[Path]]) -> list[str]:
    lines = ["", "## Main results", "",
             "Mean over seeds; lifts are relative to the baseline policy on the same users, 95% bootstrap CI over "
             "training seeds and users. Weighted GAUC and FQE: mean over seeds [95% CI].", "",
             "| agent | training data | runs | return | lift: return | lift: valid views | lift: watch time "
             "| weighted GAUC | FQE | fit time (s) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in agg.cells.values():
        if not c.ok:
            lines.append(f"| {c.agent} | {c.dataset} | 0/{len(c.runs)} | – | – | – | – | – | – | – |")
            continue
        lines.append(f"| {c.agent} | {c.dataset} | {len(c.ok)}/{len(c.runs)} | {c.means['return']:.3f} | "
                     f"{fmt_ci(c.lifts['return'], True)} | {fmt_ci(c.lifts['valid_views'], True)} | "
                     f"{fmt_ci(c.lifts['watch_time_min'], True)} | {fmt_ci(c.gauc, digits=4)} | "
                     f"{fmt_ci(c.fqe, digits=2)} | {c.fit_s:.1f} |")
    columns = [ds for ds in (*preset.collection.recipes, "online") if any(d == ds for _, d in agg.cells)]
    lines += ["", "Lift of session return vs the baseline policy, by training data:", "",
              "| agent | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for agent in dict.fromkeys(a for a, _ in agg.cells):
        row = []
        for ds in columns:
            cell = agg.cells.get((agent, ds))
            row.append(fmt_ci(cell.lifts.get("return"), pct=True) if cell and cell.lifts else "")
        lines.append(f"| {agent} | " + " | ".join(row) + " |")
    lines += _figure(figures, "lifts", "Online lift per agent and training data")
    lines += _figure(figures, "gauc", "Weighted GAUC per agent and training data")
    return lines


def _stats_md(agg: Aggregates, figures: Mapping[str, list[Path]]) -> list[str]:
    norm, st = agg.normalisation, agg.seed_stats
    lines = ["", "## Aggregate statistics over seeds (rliable)", "",
             f"Normalised return = 100 × (R − R_random) / (R_reference − R_random), with R_random = "
             f"{norm.random_return:.3f} (uniformly random fusion on the A/B users) and R_reference = "
             f"{norm.reference_return:.3f} from {norm.reference}. IQM: interquartile mean over training seeds with a "
             "95% stratified-bootstrap CI (rliable's estimator; with fewer than 4 seeds it is close to the mean). "
             "Probability of improvement P(X > Y): a random seed of X beats a random seed of Y.", "",
             "| arm | seeds | normalised return per seed | IQM [95% CI] |", "|---|---|---|---|"]
    for name, scores in st.scores.items():
        e = st.iqm.get(name)
        lines.append(f"| {name} | {len(scores)} | {' '.join(f'{s:.1f}' for s in scores)} | "
                     f"{'–' if e is None else f'{e.value:.1f} [{e.low:.1f}, {e.high:.1f}]'} |")
    if st.improvement:
        lines += ["", "| X | Y | P(X > Y) [95% CI] |", "|---|---|---|"]
        lines += [f"| {x} | {y} | {e.value:.2f} [{e.low:.2f}, {e.high:.2f}] |" for (x, y), e in st.improvement.items()]
    lines += _figure(figures, "iqm", "IQM of normalised return")
    lines += _figure(figures, "improvement", "Probability of improvement of IntegratedRL")
    lines += _figure(figures, "profiles", "Performance profiles")
    return lines


def _curves_md(preset: Preset, agg: Aggregates, figures: Mapping[str, list[Path]]) -> list[str]:
    cells = [c for c in agg.cells.values() if c.curve is not None]
    if not cells:
        return []
    selecting = preset.agents.select_checkpoint == "validation"
    lines = ["", "## Learning curves and convergence", "",
             f"Every run is evaluated at log-spaced checkpoints on the same users. Converged: {CONVERGED_RULE}.",
             "The highest checkpoint is a diagnostic only (it is measured on evaluation users, so no budget or "
             "policy is chosen by it): a peak before the last checkpoint with a 'declining' verdict is a curve that "
             "levelled off and then lost return with more training."]
    if selecting:
        lines += ["", f"**Published policies are chosen on validation users** (`agents.select_checkpoint = "
                  f"\"validation\"`): every checkpoint of a run is also scored on the {preset.tuning.sessions:,} "
                  f"validation users of the hyperparameter search (seeds from {preset.tuning.user_seed:,}, disjoint "
                  "from the A/B and curve users), and the run's published policy (A/B test, FQE, weighted GAUC, "
                  "saturation) is the checkpoint with the highest validation return: the training budget is chosen "
                  "on validation users, as the hyperparameters are. The curves below are the evaluation users' "
                  "view of every checkpoint; the last columns list each seed's published checkpoint and the "
                  "return of the published policies vs the last ones on the curve users (seed means, paired "
                  "interval), which take no part in the selection."]
    header = ("| agent | training data | checkpoints | lift at the last checkpoint | change from the second-last "
              "| verdict | highest checkpoint (its lift) |")
    lines += ["", header + (" published checkpoint per seed (validation-selected) | published vs last checkpoint |"
                            if selecting else ""),
              "|---|---|---|---|---|---|---|" + ("---|---|" if selecting else "")]
    counts = Counter(c.curve.convergence.status for c in cells)
    for c in cells:
        conv = c.curve.convergence
        change = fmt_ci(Estimate(conv.change.estimate, conv.change.low, conv.change.high), pct=True) if conv.change \
            else "–"
        peak = c.curve.highest
        row = (f"| {c.agent} | {c.dataset} | {', '.join(str(s) for s in c.curve.steps)} {c.curve.unit} | "
               f"{fmt_ci(c.curve.lifts[-1], pct=True)} | {change} | **{conv.status}** | "
               f"{c.curve.steps[peak]} ({100 * c.curve.lifts[peak].value:+.2f}%) |")
        if selecting:
            last = c.curve.steps[-1]
            row += f" {', '.join('last' if s == last else str(s) for s in c.curve.selected_steps) or '–'} |"
            gain = c.curve.published_vs_last
            row += f" {fmt_ci(gain, pct=True) if gain is not None else '–'} |"
        lines.append(row)
    confidence = preset.evaluation.confidence
    tested = sum(n for status, n in counts.items() if status in ("converged", "still improving", "declining"))
    lines += ["", "Verdicts: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) +
              f". Each verdict is a separate test at {100 * confidence:g}%: if every one of the {tested} curves "
              f"had levelled off, about {tested * (1 - confidence):.1f} would still be called improving or "
              "declining by chance."]
    lines += _figure(figures, "curves", "Learning curves")
    return lines


def _saturation_md(agg: Aggregates, figures: Mapping[str, list[Path]]) -> list[str]:
    cells = [c for c in agg.cells.values() if c.saturation]
    if not cells:
        return []
    lines = ["", "## Saturation", "",
             "Share of action entries (test-set states x action dimensions) at the action-space edge (|a| ≥ 0.999) "
             "and at or beyond the exploration band's edge around the baseline fusion (|a − baseline| ≥ band − "
             "0.001). A policy with most entries at a boundary is bang-bang. For progressive training data the "
             "baseline is only round 0's centre: rounds ≥ 1 explore around the previous round's policy, so the last "
             "column measures the band each training transition was actually explored in (its recorded centre and "
             f"offsets; up to {TRAINING_SATURATION_ROWS:,} of the transitions the final model trained on) — the "
             "band the IntegratedRL actor's penalty measures.", "",
             "| agent | training data | at the action edge | at the band edge around the baseline (± band) | "
             "at the band edge of its own training transitions |", "|---|---|---|---|---|"]
    lines += [f"| {c.agent} | {c.dataset} | {100 * c.saturation['action_edge']:.1f}% | "
              f"{100 * c.saturation['band_edge']:.1f}% (±{c.saturation['band']:g}) | "
              + (f"{100 * c.saturation['training_band_edge']:.1f}% |"
                 if c.saturation.get("training_band_edge") is not None else "– |") for c in cells]
    lines += _figure(figures, "saturation", "Saturation per agent")
    return lines


def _exploration_md(preset: Preset, agg: Aggregates, loaded: LoadedResults,
                    figures: Mapping[str, list[Path]]) -> list[str]:
    lines = ["", "## Exploration datasets", "",
             "| dataset | seeds | sessions | transitions / seed | return / session (behaviour) | "
             "actions inside the recorded band (joint) | return vs baseline data [95% CI] |",
             "|---|---|---|---|---|---|---|"]
    for name in (TEST_DATASET, *preset.collection.recipes):
        res = [loaded.datasets[(name, s)] for s in preset.seeds if (name, s) in loaded.datasets]
        if not res:
            continue
        cost = agg.exploration_costs.get(name)
        cost_text = "–" if cost is None else fmt_ci(Estimate(cost.relative_change, *cost.relative_change_ci), pct=True)
        lines.append(f"| {name} | {len(res)} | {res[0]['num_episodes']} | "
                     f"{np.mean([r['num_transitions'] for r in res]):.0f} | "
                     f"{np.mean([r['mean_return'] for r in res]):.3f} | "
                     f"{np.mean([r['coverage']['joint'] for r in res]):.4f} | "
                     f"{cost_text} |")
    eff = agg.efficiency
    if eff is not None:
        lines += ["", f"Exploration efficiency (pooled over seeds, band ±{preset.collection.band:g}, "
                  f"σ = {preset.collection.sigma:g}, {len(eff.analytic.per_dim_probability)} dims): "
                  f"Gaussian actions inside the band per dimension {np.round(eff.gaussian.per_dim, 3).tolist()} "
                  f"(analytic {np.round(eff.analytic.per_dim_probability, 3).tolist()}); jointly "
                  f"{eff.gaussian.joint:.5f} vs uniform {eff.bounded.joint:.4f}: ratio {eff.empirical_ratio:.0f} "
                  f"(95% CI {eff.empirical_ratio_ci[0]:.0f}–{eff.empirical_ratio_ci[1]:.0f}), analytic "
                  f"{eff.analytic.efficiency_ratio:.0f} (with clipping at the data's centres "
                  f"{eff.analytic_clipped_ratio:.0f}), paper 'about 2^10' = 1024."]
    lines += _figure(figures, "offsets", "Exploration offsets, Gaussian vs bounded-uniform (paper Fig. 3)")
    lines += _figure(figures, "progressive", "Progressive training: return of each round's exploration centre")
    lines += _figure(figures, "deviation", "Learned vs baseline fusion parameters (paper Fig. 2)")
    return lines


# What each ablation group compares, for the report (docs/agents/integrated_rl.md quotes the paper behind each).
ABLATION_TITLES: dict[str, str] = {
    "band": "exploration half-width of the training data (bounded-uniform datasets of their own)",
    "critics": "number of critics m (one set)",
    "critic_sets": "critic sets q x critics per set m (q = 3: one set per reward component)",
    "target_noise": "noise on the critic target's action (the paper's xi), std",
    "actor_band_weight": "actor band weight: eta (separate) or alpha (alpha == eta)",
    "critic_penalty": "critic-target penalty: multiplicative (later version) or subtractive (v4 eq. 6)",
    "progressive_data": "progressive rounds train on all rounds so far (cumulative) or the newest round only",
    "progressive_init": "progressive rounds start from scratch or from the previous round's model (warm start)",
    "exploration_centre": "exploration centre of the bounded-uniform training data: the constant control (baseline) "
                          "or the ES control's state-dependent policy of the same seed (es: the paper's personalised "
                          "bands from the first round; same users and noise)",
}


def _ablation_md(agg: Aggregates, figures: Mapping[str, list[Path]]) -> list[str]:
    if not agg.ablation:
        return []
    lines = ["", "## Ablations of IntegratedRL", "",
             "Each group varies one setting of IntegratedRL at the ablation budget; every other setting is the main "
             "run's. Lift: session return vs the baseline policy; vs reference: session return vs the group's "
             "reference setting (the main config's, marked *), paired on the same A/B users; 95% bootstrap CIs over "
             "seeds and users. Wall time: training only (`fit_s`, learning-curve evaluation excluded), mean per run; "
             "updates/s = gradient steps / wall time (jobs share the machine's cores, so compare within a run); "
             "updates/CPU-s = gradient steps / the job's CPU time (one torch thread per job: robust to other jobs). "
             "Progressive settings other than the main one collect their own progressive dataset (same seed: "
             "round 0 is shared) and train the final model the same way.", "", *_simultaneous_md(agg)]
    for group, entries in agg.ablation.items():
        timed = group in ("critics", "critic_sets")
        lines += ["", f"**{group}**: {ABLATION_TITLES.get(group, group)}", "",
                  "| setting | training data | runs | steps | lift: return | vs reference | vs reference, "
                  "simultaneous | weighted GAUC"
                  + (" | wall time (s) | updates/s | updates/CPU-s |" if timed else " |"),
                  "|---|---|---|---|---|---|---|---|" + ("---|---|---|" if timed else "")]
        order = entries if group not in ("band", "critics") else sorted(entries, key=lambda e: e["value"])
        for e in order:
            row = (f"| {e['setting']}{' *' if e['reference'] else ''} | {e['dataset']} | {e['n']} | "
                   f"{e['steps'] or '–'} | {fmt_ci(e['lift'], True)} | "
                   f"{'reference' if e['reference'] else fmt_ci(e['vs_reference'], True)} | "
                   f"{'reference' if e['reference'] else fmt_ci(e.get('vs_reference_simultaneous'), True)} | "
                   f"{fmt_ci(e['gauc'], digits=4)} |")
            if timed:
                row += "".join(f" {'–' if e[k] is None else f'{e[k]:.1f}'} |"
                               for k in ("fit_s", "updates_per_s", "updates_per_cpu_s"))
            lines.append(row)
    lines += _figure(figures, "ablation", "Ablations: band width and critic count")
    lines += _figure(figures, "ablation_readings", "Ablations: the paper readings")
    lines += _figure(figures, "ablation_critic_sets", "Ablation: critic sets q x critics per set m")
    return lines


def _simultaneous_md(agg: Aggregates) -> list[str]:
    """The decision rule for defaults, with the settings it favours (the "simultaneous" column)."""
    compared = [(g, e) for g, es in agg.ablation.items() for e in es if e.get("vs_reference_simultaneous")]
    if not compared:
        return []
    _, first = compared[0]
    k, level = first["comparisons"], 100 * first["simultaneous_confidence"]
    better = sorted({f"{g} = {e['setting']}" for g, e in compared if e["vs_reference_simultaneous"].low > 0})
    worse = sorted({f"{g} = {e['setting']}" for g, e in compared if e["vs_reference_simultaneous"].high < 0})
    return ["**Which setting does the evidence favour?** Many settings are compared with their group's reference "
            f"at once ({k} distinct comparisons), so about one 95% interval in 20 excludes 0 by chance. The "
            f"'simultaneous' column is each comparison's interval at the Bonferroni level {level:.2f}% "
            f"(= 1 − 0.05/{k}; all {k} cover their true values together with probability ≥ 95%): a setting is "
            "favoured over the main config's only if it lies above 0. "
            f"Favoured: {', '.join(better) if better else 'none'}; worse than the reference: "
            f"{', '.join(worse) if worse else 'none'}.", ""]


def _centres_md(agg: Aggregates) -> list[str]:
    if not agg.centres:
        return []
    lines = ["", "## Exploration centres (which arrangement each result used)", "",
             "The paper explores in bands around a state-dependent baseline RL policy mu_bp(s), so every user has "
             "a personalised band (its Eq. 3). Each training dataset of this run, and the centre its data was "
             "collected around (every result on that dataset used this arrangement):", "",
             "| training data | recipe | exploration centre | personalised band from round 0 | source |",
             "|---|---|---|---|---|"]
    for name, c in agg.centres.items():
        lines.append(f"| {name} | {c['recipe']} | {c['arrangement']} | "
                     f"{'yes' if c['state_dependent_from_round_0'] else 'no'} | {c['source']} |")
    personalised = sorted(name for name, c in agg.centres.items() if c["state_dependent_from_round_0"])
    if personalised:
        lines += ["", f"The paper's arrangement from the first round (a personalised band around a state-dependent "
                  f"policy): {', '.join(f'`{n}`' for n in personalised)}; the ablation group `exploration_centre` "
                  "compares IntegratedRL trained on it with IntegratedRL trained on the constant-centre `uniform` "
                  "data (same users and exploration noise)."]
    else:
        lines += ["", "**No result of this run used the paper's arrangement from the start**: no dataset was "
                  "collected around a state-dependent centre from round 0 (only progressive rounds >= 1 centre on "
                  "the previous round's IntegratedRL). `ablation.exploration_centres = [\"baseline\", \"es\"]` "
                  "adds such a dataset (bands around the ES control's policy) and IntegratedRL trained on it."]
    return lines


def _agreement_md(preset: Preset, agg: Aggregates, figures: Mapping[str, list[Path]]) -> list[str]:
    ev = preset.evaluation
    lines = ["", "## Offline vs online agreement", "",
             f"Two offline estimators score every trained policy: weighted GAUC on the baseline test set, and Fitted Q "
             f"Evaluation (`d3rlpy.ope.FQE`, {ev.fqe_steps} steps, γ = {ev.fqe_gamma:g}, fitted on the "
             f"`{ev.fqe_dataset}` dataset of the run's seed; value = mean Q over the first states). Regret: how far "
             "the "
             "policy each estimator ranks first falls below the best policy's online return.", "",
             "| estimator | policies | Spearman ρ [95% CI] | p | regret of the offline-selected policy |",
             "|---|---|---|---|---|"]
    for name, a in agg.agreements.items():
        sp = a.spearman
        interval = f" [{sp.low:+.2f}, {sp.high:+.2f}]" if math.isfinite(sp.low) and math.isfinite(sp.high) else ""
        rho = "–" if not math.isfinite(sp.rho) else f"{sp.rho:+.3f}{interval}"
        pval = "–" if not math.isfinite(sp.pvalue) else f"{sp.pvalue:.3g}"
        regret = "–" if a.regret is None else f"{100 * a.regret:.2f}% (`{a.selected}`)"
        lines.append(f"| {name} | {sp.n} | {rho} | {pval} | {regret} |")
    lines += _figure(figures, "agreement", "Weighted GAUC vs online return")
    lines += _figure(figures, "agreement_fqe", "FQE vs online return")
    return lines


def _timings_md(preset: Preset, grid: Grid, loaded: LoadedResults, wall: Mapping[str, float],
                stage: Mapping[str, float]) -> list[str]:
    datasets = [(d, loaded.datasets.get((d.name, d.seed))) for d in grid.datasets]
    lines = ["", "## Wall time per stage", "",
             "Worker time is summed over jobs (jobs run in parallel, so it exceeds wall time). Timings of jobs "
             "finished by an earlier invocation are kept from that invocation. The hyperparameter search's time "
             "per agent is the last column of its section, the slate section's per agent and seed its 'train "
             "s/seed' column.", "",
             "| stage | jobs | worker time (s) | mean per job (s) |", "|---|---|---|---|"]

    def row(label: str, values: Sequence[float | None]) -> str:
        vals = [v for v in values if v is not None]
        return (f"| {label} | {len(vals)} | {sum(vals):.1f} | {np.mean(vals):.1f} |" if vals else
                f"| {label} | 0 | – | – |")

    names = (TEST_DATASET, *preset.collection.recipes)
    for name in names:
        lines.append(row(f"collection: {name}", [r["timings"]["total_s"] for d, r in datasets if r and d.name == name]))
    extra = [r["timings"]["total_s"] for d, r in datasets if r and d.name not in names]
    if extra:
        lines.append(row("collection: ablation datasets", extra))
    ok = [r for r in loaded.runs if r.ok]
    for label in sorted({r.job.label for r in loaded.runs},
                        key=lambda s: (s.split("+")[0] not in preset.agents.names, s)):
        lines.append(row(f"training: {label}", [r.result["timings"].get("fit_s") for r in ok if r.job.label == label]))
    for key, label in (("curve_eval_s", "learning-curve evaluation"), ("eval_s", "evaluation inside jobs (A/B "
                       "sessions + GAUC + saturation)"), ("fqe_s", "FQE")):
        lines.append(row(label, [r.result["timings"].get(key) for r in ok]))
    lines += ["", "| this invocation | wall time (s) |", "|---|---|"]
    lines += [f"| {k.replace('_', ' ').removesuffix(' s')} | {v:.1f} |" for k, v in wall.items()]
    lines += [f"| report: {k.replace('_', ' ').removesuffix(' s')} | {v:.1f} |" for k, v in stage.items()]
    return lines


def _protocol_md(preset: Preset, agg: Aggregates) -> list[str]:
    p, ev = preset, preset.evaluation
    tuned = ("every learning agent first gets the same hyperparameter search (see below)" if p.tuning.enabled else
             "no hyperparameter search in this preset (`tuning.enabled = false`): agents run their documented "
             "defaults")
    overrides = (f"with the preset's `[env]` overrides {json.dumps(p.env, sort_keys=True)}" if p.env else
                 "with its default config")
    other = "MTFSession-v0" if p.env_id != "MTFSession-v0" else "MTFSession-v1"
    compiled = ", compile_graph on (d3rlpy agents but BCQ; used on CUDA only)" if p.agents.compile_graph else ""
    return ["## Protocol", "",
            f"- **Environment.** `{p.env_id}` {overrides}; every dataset, A/B test and online agent uses it. "
            f"`mtf-bench {p.name} --env-id {other}` runs the same protocol on `{other}` (`--set env_id=...`; each "
            "version's run has its own directory).",
            f"- **Seeds and users.** {len(p.seeds)} training seed(s); every arm is scored on the same "
            f"{ev.sessions} A/B users (common random numbers), users no training data came from. Intervals are 95% "
            "bootstrap CIs over training seeds and users; aggregate statistics over seeds use rliable's IQM, "
            "probability of improvement and performance profiles on the normalised return (random fusion = 0, "
            f"reference = 100: {agg.normalisation.reference}).",
            "- **Controls.** The production fusion (`BaselinePolicy`) is the control arm of every lift; ES (CMA-ES "
            f"over a linear fusion policy, {p.es_steps} requests) is the paper's deployed policy, and a 'vs ES' "
            "verdict is given only if ES's learning curve has converged.",
            f"- **Budgets and curves.** Every run is evaluated at {p.agents.checkpoints} log-spaced checkpoints on the "
            f"first {ev.curve_sessions} A/B users; the report states per agent whether the last two agree "
            "(converged). A verdict from runs that did not converge describes the budget, not the method.",
            f"- **Tuning.** {tuned}.",
            "- **Offline estimators.** Weighted GAUC and FQE for every trained policy, with their rank agreement with "
            "online return and the regret of the policy each would select.",
            f"- **Device.** `{p.device}`{compiled}; asking for CUDA where torch has none stops the run. GPU "
            "throughput (IntegratedRL at the paper's sizes, one H200): "
            "`docs/agents/integrated_rl.md`, section \"GPU\".", ""]


def _agent_steps_text(p: Preset) -> str:
    """The budgets that differ per agent (``agents.agent_steps``), as the report's budgets line names them."""
    if not p.agents.agent_steps:
        return ""
    return "; per agent: " + ", ".join(f"{a} {s}" for a, s in sorted(p.agents.agent_steps.items()))


def markdown(preset: Preset, grid: Grid, loaded: LoadedResults, agg: Aggregates, claims: Sequence[Claim],
             figures: Mapping[str, list[Path]], *, command: str, wall: Mapping[str, float],
             stage: Mapping[str, float], tuning: Sequence[str] = (), slate: Sequence[str] = ()) -> str:
    """The whole ``report.md``; ``tuning`` and ``slate`` hold the rendered hyperparameter-search and slate sections
    (either may be empty)."""
    p = preset
    ok = sum(r.ok for r in loaded.runs)
    base = agg.baseline.means()
    lines = [f"# mtf-gym benchmark report: `{p.name}`", "", p.description, "",
             f"- command: `{command}`",
             f"- environment: `{p.env_id}`; generated {time.strftime('%Y-%m-%d %H:%M:%S')}; seeds {list(p.seeds)}; "
             f"{ok}/{len(loaded.runs)} training runs finished; device `{p.device}`",
             f"- budgets: offline {p.agents.n_steps} gradient steps, online {p.agents.online_steps} simulator "
             f"requests, ES {p.es_steps} requests{_agent_steps_text(p)}, MLP {list(p.agents.hidden_units)}, batch "
             f"{p.agents.batch_size}; "
             f"datasets {p.collection.sessions} sessions each (test set {p.collection.test_sessions}); A/B "
             f"{p.evaluation.sessions} users per arm (common random numbers), learning curves on the first "
             f"{p.evaluation.curve_sessions}; {p.evaluation.bootstrap} bootstrap resamples",
             f"- controls: the production fusion (`BaselinePolicy`): return {base['return']:.3f}, valid views "
             f"{base['valid_views']:.3f}, watch time {base['watch_time_min']:.3f} min, requests "
             f"{base['requests']:.3f} per session, weighted GAUC {agg.baseline_gauc:.4f}; and ES (CMA-ES, the "
             f"paper's deployed policy), whose convergence is checked before any 'vs ES' verdict "
             f"({agg.claim_inputs.es_status or 'not run'}); uniformly random fusion: return "
             f"{agg.random.means()['return']:.3f}", ""]
    lines += _protocol_md(p, agg)
    lines += _claims_md(p, claims)
    lines += _main_md(p, agg, figures)
    lines += _stats_md(agg, figures)
    lines += _curves_md(preset, agg, figures)
    lines += list(tuning)
    lines += _saturation_md(agg, figures)
    lines += _exploration_md(p, agg, loaded, figures)
    lines += _centres_md(agg)
    lines += _ablation_md(agg, figures)
    lines += _agreement_md(p, agg, figures)
    lines += list(slate)
    lines += _timings_md(p, grid, loaded, wall, stage)
    failed = [r for r in loaded.runs if not r.ok]
    if failed:
        lines += ["", "## Runs that did not finish", "", "| job | reason |", "|---|---|"]
        lines += [f"| {r.job.job_id} | {(r.error or '').replace('|', '/')} |" for r in failed]
    lines += ["", "## Files", "",
              "`runs.csv` / `runs.json`: one row per run (per-seed raw online metrics, normalised return, lift with "
              "CI, GAUC, FQE, saturation, learning curve, timings); `summary.json`: claims and aggregates; "
              "`jobs/<agent>__<dataset>__seed<k>/`: each run's config, log, result, model, per-user A/B outcomes "
              "(`sessions.npz`) and learning curve (`curve.npz`); `datasets/seed<k>/<name>/`: the datasets; "
              "`plots/`: every figure as PNG and SVG.", ""]
    return "\n".join(lines)

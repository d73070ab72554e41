"""Report stage 4a, figures: every plot of the report drawn from the aggregates (:mod:`mtf_bench.harness.plots`
does the drawing; this module only picks the numbers). Returns ``{figure key: written files}``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mtf_bench.harness import plots
from mtf_bench.harness.aggregate import Aggregates
from mtf_bench.harness.grid import CENTRE_GROUP, ONLINE, READING_GROUPS
from mtf_bench.harness.plots import Estimate
from mtf_bench.harness.presets import Preset
from mtf_bench.harness.results import LoadedResults

__all__ = ["draw_figures"]


def _offsets(preset: Preset, datasets: dict[tuple[str, int], Any], plots_dir: Path) -> list[Path]:
    from mtf_gym.datasets.analysis import plot_offsets

    seed, col = preset.seeds[0], preset.collection
    labels = {"gaussian": f"Gaussian σ={col.sigma:g}", "uniform": f"bounded-uniform ±{col.band:g}",
              "progressive": f"progressive (uniform ±{col.band:g} around learned centres)"}
    data = {labels[n]: datasets[(n, seed)] for n in col.recipes if (n, seed) in datasets}
    if not data:
        return []
    # plot_offsets writes directly to its path: render into a temporary directory, then move atomically.
    plots_dir.mkdir(parents=True, exist_ok=True)
    final = []
    with tempfile.TemporaryDirectory(prefix=".tmp-offsets-", dir=plots_dir) as tmp:
        for path in plot_offsets(data, Path(tmp) / "exploration_offsets"):
            os.replace(path, plots_dir / path.name)
            final.append(plots_dir / path.name)
    return final


def _deviation(preset: Preset, agg: Aggregates, plots_dir: Path) -> list[Path]:
    from mtf_gym.datasets import action_names

    dataset = "uniform" if "uniform" in preset.collection.recipes else preset.collection.recipes[0]
    deviation = {}
    for (agent, ds), cell in agg.cells.items():
        if ds in (dataset, ONLINE) and cell.ok:
            devs = [np.asarray(r.result["action_deviation"]) for r in cell.ok]
            deviation[agent if ds == dataset else f"{agent} (online)"] = np.mean(devs, axis=0)
    if not deviation:
        return []
    return plots.plot_action_deviation(deviation, action_names(preset.env_config()), plots_dir / "action_deviation",
                                       dataset=dataset)


def draw_figures(preset: Preset, agg: Aggregates, loaded: LoadedResults, datasets: dict[tuple[str, int], Any],
                 plots_dir: Path) -> dict[str, list[Path]]:
    figures: dict[str, list[Path]] = {}
    agents = list(dict.fromkeys(a for a, _ in agg.cells))
    columns = [*preset.collection.recipes, ONLINE]
    lifts = {m: {k: c.lifts[m] for k, c in agg.cells.items() if c.lifts.get(m)}
             for m in ("return", "valid_views", "watch_time_min", "requests")}
    figures["lifts"] = plots.plot_lifts(lifts, agents, columns, plots_dir / "online_lift")
    gauc = {k: c.gauc for k, c in agg.cells.items() if c.gauc}
    figures["gauc"] = plots.plot_gauc(gauc, agents, columns, agg.baseline_gauc, plots_dir / "weighted_gauc")
    curves = {c.label: (c.curve.steps, c.curve.lifts, c.curve.unit, c.curve.convergence.status,
                        c.curve.selected_steps) for c in agg.cells.values() if c.curve is not None}
    if curves:
        figures["curves"] = plots.plot_learning_curves(curves, plots_dir / "learning_curves")
    stats = agg.seed_stats
    if stats.iqm:
        figures["iqm"] = plots.plot_interval_estimates(
            {k: Estimate(v.value, v.low, v.high) for k, v in stats.iqm.items()}, plots_dir / "iqm_normalised_return",
            xlabel="IQM of normalised return (random fusion = 0, reference = 100)",
            title="Interquartile mean over seeds, 95% stratified-bootstrap CI")
        figures["profiles"] = plots.plot_performance_profiles(stats.profiles, stats.thresholds,
                                                              plots_dir / "performance_profiles")
    if stats.improvement:
        figures["improvement"] = plots.plot_improvement(
            {k: Estimate(v.value, v.low, v.high) for k, v in stats.improvement.items()},
            plots_dir / "probability_of_improvement")
    saturation = {c.label: (c.saturation["action_edge"], c.saturation["band_edge"],
                            c.saturation.get("training_band_edge")) for c in agg.cells.values() if c.saturation}
    if saturation:
        figures["saturation"] = plots.plot_saturation(saturation, plots_dir / "saturation")
    rounds = {s: [(int(r["round"]), float(r["return"])) for r in res.get("progressive_rounds", [])]
              for (name, s), res in loaded.datasets.items() if name == "progressive" and res}
    if rounds:
        figures["progressive"] = plots.plot_progressive(rounds, plots_dir / "progressive_rounds")
    offsets = _offsets(preset, datasets, plots_dir)
    if offsets:
        figures["offsets"] = offsets
    deviation = _deviation(preset, agg, plots_dir)
    if deviation:
        figures["deviation"] = deviation
    metric = "lift of session return vs baseline (%)"
    panels = {g: {e["value"]: e["lift"] for e in agg.ablation.get(g, []) if e["lift"]} for g in ("band", "critics")}
    panels = {k: v for k, v in panels.items() if v}
    if panels:
        figures["ablation"] = plots.plot_ablation(
            panels, {"band": "exploration half-width of the training data (± action units)",
                     "critics": "number of critics m"},
            plots_dir / "ablations", metric_label=metric)
    readings = {g: [(e["setting"], e["lift"], e["reference"]) for e in entries if e["lift"]]
                for g, entries in agg.ablation.items() if g in READING_GROUPS or g == CENTRE_GROUP}
    readings = {g: v for g, v in readings.items() if v}
    if readings:
        figures["ablation_readings"] = plots.plot_ablation_settings(readings, plots_dir / "ablation_readings",
                                                                    metric_label=metric)
    sets = agg.ablation.get("critic_sets", [])
    lifts: dict[str, dict[float, Estimate]] = {}
    speeds: dict[str, dict[float, float]] = {}
    # Updates per CPU second where every job recorded it (robust to other jobs on the cores), else wall clock.
    cpu = bool(sets) and all(e["updates_per_cpu_s"] for e in sets if e["updates_per_s"])
    speed_key = "updates_per_cpu_s" if cpu else "updates_per_s"
    for e in sets:
        if e["lift"]:
            lifts.setdefault(e["series"], {})[e["value"]] = e["lift"]
        if e[speed_key]:
            speeds.setdefault(e["series"], {})[e["value"]] = e[speed_key]
    if lifts:
        figures["ablation_critic_sets"] = plots.plot_critic_sets(
            lifts, speeds, plots_dir / "ablation_critic_sets", metric_label=metric,
            speed_label="training updates / CPU second (one thread)" if cpu else "training updates / s (wall clock)")
    reference = {"weighted GAUC": (agg.baseline_gauc, float(agg.baseline.returns.mean()))}
    for name, ag in agg.agreements.items():
        if ag.points:
            key = "agreement" if name == "weighted GAUC" else "agreement_fqe"
            file = "gauc_vs_online" if name == "weighted GAUC" else "fqe_vs_online"
            figures[key] = plots.plot_offline_vs_online(ag.points, name, ag.spearman.rho, ag.spearman.low,
                                                        ag.spearman.high, plots_dir / file,
                                                        reference=reference.get(name))
    return figures

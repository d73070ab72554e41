"""The benchmark's figures (matplotlib, Agg backend), each written atomically as PNG and SVG.

Every function takes plain numbers (already aggregated by :mod:`mtf_bench.harness.aggregate`) and an output path
without suffix, and returns the written files. Intervals are the report's 95% bootstrap CIs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI; must precede pyplot
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np

from mtf_gym.atomic import atomic_path

__all__ = [
    "Estimate",
    "plot_ablation",
    "plot_ablation_settings",
    "plot_action_deviation",
    "plot_critic_sets",
    "plot_gauc",
    "plot_improvement",
    "plot_interval_estimates",
    "plot_learning_curves",
    "plot_lifts",
    "plot_offline_vs_online",
    "plot_performance_profiles",
    "plot_progressive",
    "plot_saturation",
    "save_figure",
]

DATASET_COLORS = {"gaussian": "#1f77b4", "uniform": "#ff7f0e", "progressive": "#2ca02c", "online": "#7f7f7f"}
METRIC_LABELS = {
    "return": "session return",
    "valid_views": "valid views / session",
    "watch_time_min": "watch time / session (min)",
    "requests": "requests / session",
}


# Ten clearly distinct colours; beyond ten series, markers/hatches tell them apart.
_MARKERS = ("o", "s", "^", "D")


def _color(index: int) -> tuple[float, ...]:
    return plt.get_cmap("tab10")(index % 10)


@dataclass(frozen=True)
class Estimate:
    """A value with its interval (``low``/``high`` may equal ``value`` when there is no spread to show)."""

    value: float
    low: float
    high: float


def save_figure(fig: plt.Figure, path: str | Path) -> list[Path]:
    """Write ``fig`` to ``path.png`` (150 dpi) and ``path.svg`` atomically, then close it."""
    base = Path(path)
    written = []
    for suffix in (".png", ".svg"):
        target = base.with_suffix(suffix)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=150, bbox_inches="tight")
        written.append(target)
    plt.close(fig)
    return written


def _yerr(estimates: Sequence[Estimate]) -> np.ndarray:
    values = np.array([e.value for e in estimates])
    low = np.array([e.low for e in estimates])
    high = np.array([e.high for e in estimates])
    return np.nan_to_num(np.vstack([values - low, high - values]).clip(min=0))


def _grouped_bars(ax: plt.Axes, agents: Sequence[str], datasets: Sequence[str],
                  values: Mapping[tuple[str, str], Estimate], scale: float = 1.0) -> None:
    """Bars at ``x = agent``, one per dataset the agent has (centred on its tick), with CI whiskers."""
    width = 0.8 / max(1, len(datasets))
    series: dict[str, tuple[list[float], list[Estimate]]] = {ds: ([], []) for ds in datasets}
    for i, agent in enumerate(agents):
        present = [ds for ds in datasets if (agent, ds) in values]
        for j, ds in enumerate(present):
            e = values[(agent, ds)]
            series[ds][0].append(i + (j - (len(present) - 1) / 2) * width)
            series[ds][1].append(Estimate(e.value * scale, e.low * scale, e.high * scale))
    for ds, (xs, est) in series.items():
        if xs:
            ax.bar(xs, [e.value for e in est], width=width * 0.95, yerr=_yerr(est), capsize=2,
                   color=DATASET_COLORS.get(ds, None), label=ds, error_kw={"linewidth": 0.8})
    ax.set_xticks(range(len(agents)))
    ax.set_xticklabels(agents, rotation=30, ha="right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def plot_lifts(lifts: Mapping[str, Mapping[tuple[str, str], Estimate]], agents: Sequence[str],
               datasets: Sequence[str], path: str | Path, *, control: str = "baseline policy") -> list[Path]:
    """Online lift (%) vs the control per agent x dataset, one panel per metric, with 95% CIs."""
    metrics = list(lifts)
    cols = 1 if len(agents) > 6 else 2  # many agents: one metric per row keeps bars wide enough to read
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(9.0, 0.85 * len(agents) * cols), 3.2 * rows),
                             squeeze=False, sharex=cols == 1)
    for k, metric in enumerate(metrics):
        ax = axes[k // cols][k % cols]
        _grouped_bars(ax, agents, datasets, lifts[metric], scale=100.0)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_ylabel(f"lift of {METRIC_LABELS.get(metric, metric)} (%)", fontsize=8)
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=10)
    for k in range(len(metrics), rows * cols):
        axes[k // cols][k % cols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if labels:
        fig.legend(handles, labels, title="training data", loc="lower center", ncol=len(labels), fontsize=8,
                   title_fontsize=8, frameon=False)
    fig.suptitle(f"Simulated A/B: lift vs the {control} (same users for every arm; 95% bootstrap CI over "
                 "training seeds and users)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    return save_figure(fig, path)


def plot_gauc(gauc: Mapping[tuple[str, str], Estimate], agents: Sequence[str], datasets: Sequence[str],
              baseline_gauc: float, path: str | Path) -> list[Path]:
    """Weighted GAUC on the baseline test set per agent x dataset (mean over seeds, 95% CI), baseline as a line."""
    fig, ax = plt.subplots(figsize=(max(8.0, 0.8 * len(agents)), 4.2))
    _grouped_bars(ax, agents, datasets, gauc)
    if np.isfinite(baseline_gauc):
        ax.axhline(baseline_gauc, color="black", linestyle="--", linewidth=1.0,
                   label=f"baseline policy ({baseline_gauc:.4f})")
    values = [e for e in gauc.values() if np.isfinite(e.value)]
    if values:
        lo = min(min(e.low for e in values), baseline_gauc if np.isfinite(baseline_gauc) else 1.0)
        hi = max(max(e.high for e in values), baseline_gauc if np.isfinite(baseline_gauc) else 0.0)
        pad = max(0.01, 0.1 * (hi - lo))
        ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad))
    ax.set_ylabel("weighted GAUC (label: valid view, weight: reward + 1)", fontsize=8)
    ax.set_title("Offline weighted GAUC on the baseline test set (users = sessions; 95% CI over seeds)",
                 fontsize=10)
    ax.legend(fontsize=8, title="training data", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return save_figure(fig, path)


def plot_progressive(curves: Mapping[int, Sequence[tuple[int, float]]], path: str | Path) -> list[Path]:
    """Online return of each progressive round's exploration centre (round 0 = baseline), one line per seed."""
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    all_rounds: dict[int, list[float]] = {}
    for seed, points in sorted(curves.items()):
        rounds, values = zip(*points) if points else ((), ())
        ax.plot(rounds, values, marker="o", alpha=0.45, linewidth=1.0, label=f"seed {seed}")
        for r, v in points:
            all_rounds.setdefault(r, []).append(v)
    if all_rounds:
        rs = sorted(all_rounds)
        ax.plot(rs, [float(np.mean(all_rounds[r])) for r in rs], color="black", marker="s", linewidth=2.0,
                label="mean over seeds")
        ax.set_xticks(rs)
    ax.set_xlabel("progressive round (centre of round r: IntegratedRL trained on rounds < r; 0 = baseline)",
                  fontsize=8)
    ax.set_ylabel("online session return of the round's centre", fontsize=8)
    ax.set_title("Progressive training mode (PTM): return per round", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_action_deviation(deviation: Mapping[str, np.ndarray], dims: Sequence[str], path: str | Path, *,
                          dataset: str) -> list[Path]:
    """Mean |learned action - baseline action| per agent (rows) and action dimension (columns), as an annotated
    heatmap (the paper's Fig. 2 view; a heatmap stays readable with a dozen agents x ten parameters)."""
    agents = list(deviation)
    matrix = np.array([deviation[a] for a in agents], dtype=float).reshape(len(agents), len(dims))
    fig, ax = plt.subplots(figsize=(1.0 + 0.95 * len(dims), 2.6 + 0.42 * len(agents)))
    image = ax.imshow(matrix, cmap="viridis", aspect="auto", vmin=0.0, vmax=max(1e-6, float(np.nanmax(matrix))))
    for i in range(len(agents)):
        for j in range(len(dims)):
            value = matrix[i, j]
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value < 0.6 * image.norm.vmax else "black")
    ax.set_xticks(range(len(dims)))
    ax.set_xticklabels(dims, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(agents)))
    ax.set_yticklabels(agents, fontsize=8)
    bar = fig.colorbar(image, ax=ax, fraction=0.025, pad=0.02)
    bar.set_label("mean |a_learned − a_baseline| (action units)", fontsize=8)
    ax.set_title(f"Distance of each learned fusion from the baseline fusion, per parameter (offline agents trained "
                 f"on {dataset}; test-set states; mean over seeds)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_ablation(panels: Mapping[str, Mapping[float, Estimate]], xlabels: Mapping[str, str],
                  path: str | Path, *, metric_label: str) -> list[Path]:
    """One panel per ablation: ``metric`` (with CI) against the ablated value."""
    names = list(panels)
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(5.2 * max(1, len(names)), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        points = sorted(panels[name].items())
        if points:
            xs = [x for x, _ in points]
            est = [e for _, e in points]
            ax.errorbar(xs, [e.value * 100 for e in est], yerr=_yerr(est) * 100, marker="o", capsize=3)
            ax.set_xticks(xs)
            ax.set_xticklabels([f"{x:g}" for x in xs])
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel(xlabels.get(name, name), fontsize=9)
        ax.set_ylabel(metric_label, fontsize=8)
        ax.set_title(f"IntegratedRL ablation: {name}", fontsize=10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_ablation_settings(groups: Mapping[str, Sequence[tuple[str, Estimate, bool]]], path: str | Path, *,
                           metric_label: str) -> list[Path]:
    """Categorical ablations: one row per (group, setting) with ``metric`` and its CI; the group's reference
    setting (the main config's) is drawn filled, the others hollow."""
    rows = [(group, setting, est, ref) for group, entries in groups.items() for setting, est, ref in entries]
    fig, ax = plt.subplots(figsize=(8.0, 0.45 * len(rows) + 1.4))
    for y, (group, _, est, ref) in enumerate(rows):
        j = list(groups).index(group)
        ax.errorbar([est.value * 100], [y], xerr=_yerr([est]) * 100, fmt="o", capsize=3, color=_color(j),
                    markerfacecolor=_color(j) if ref else "white")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{g}: {s}{' (reference)' if r else ''}" for g, s, _, r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(metric_label, fontsize=9)
    ax.set_title("IntegratedRL ablation: paper readings (95% CI)", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_critic_sets(lifts: Mapping[str, Mapping[float, Estimate]], speeds: Mapping[str, Mapping[float, float]],
                     path: str | Path, *, metric_label: str,
                     speed_label: str = "training updates / s (wall clock)") -> list[Path]:
    """Critic sets: ``metric`` (with CI) and training speed against critics per set m, one line per q."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.4, 3.8))
    for j, (series, points) in enumerate(lifts.items()):
        xs = sorted(points)
        est = [points[x] for x in xs]
        left.errorbar(xs, [e.value * 100 for e in est], yerr=_yerr(est) * 100, marker=_MARKERS[j % len(_MARKERS)],
                      capsize=3, color=_color(j), label=series)
    for j, (series, points) in enumerate(speeds.items()):
        xs = sorted(points)
        right.plot(xs, [points[x] for x in xs], marker=_MARKERS[j % len(_MARKERS)], color=_color(j), label=series)
    left.axhline(0.0, color="black", linewidth=0.8)
    left.set_ylabel(metric_label, fontsize=8)
    right.set_ylabel(speed_label, fontsize=8)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.minorticks_off()
        ticks = sorted({x for points in (*lifts.values(), *speeds.values()) for x in points})
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{x:g}" for x in ticks])
        ax.set_xlabel("critics per set m", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    left.set_title("IntegratedRL: critic sets q x m, return lift", fontsize=10)
    right.set_title("cost: training speed", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_offline_vs_online(points: Sequence[tuple[str, float, float]], estimator: str, rho: float, low: float,
                           high: float, path: str | Path, *,
                           reference: tuple[float, float] | None = None) -> list[Path]:
    """One point per trained policy: an offline estimate (x) vs online return (y); Spearman's ρ with its CI in the
    title. ``reference`` (estimate, return) of the baseline policy is drawn as a star, outside the correlation."""
    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    groups: dict[str, list[tuple[float, float]]] = {}
    for label, x, y in points:
        groups.setdefault(label, []).append((x, y))
    for j, (label, xy) in enumerate(sorted(groups.items())):
        xs, ys = zip(*xy)
        ax.scatter(xs, ys, color=_color(j), marker=_MARKERS[(j // 10) % len(_MARKERS)], label=label, s=26)
    if reference is not None and all(np.isfinite(reference)):
        ax.scatter([reference[0]], [reference[1]], marker="*", s=160, color="black",
                   label="baseline policy (reference, not in ρ)")
    ax.set_xlabel(f"offline estimate: {estimator}", fontsize=9)
    ax.set_ylabel("online session return (simulated A/B)", fontsize=9)
    interval = "n/a" if not np.isfinite(rho) else f"{rho:+.2f} [{low:+.2f}, {high:+.2f}]"
    ax.set_title(f"Does {estimator} rank policies like online return?  Spearman ρ = {interval} (95% bootstrap "
                 f"CI over policies, n = {len(points)})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return save_figure(fig, path)


def compact_count(value: float) -> str:
    """A step count as a short tick label: 469, 7.5k, 14k, 1.6M (full numbers overlap on a log axis)."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            scaled = value / scale
            return f"{scaled:.3g}{suffix}" if scaled < 10 else f"{scaled:.0f}{suffix}"
    return f"{value:g}"


def plot_learning_curves(curves: Mapping[str, tuple], path: str | Path) -> list[Path]:
    """Lift of session return vs the control at each checkpoint, one panel per cell: ``curves[label] = (steps,
    lifts, unit, status[, selected_steps])`` with ``status`` the convergence verdict (shown in the panel title) and
    ``selected_steps`` the checkpoints chosen on validation users, one per seed (marked along the bottom)."""
    any_selected = any(value[4:] and value[4] for value in curves.values())
    labels = list(curves)
    cols = min(4, max(1, len(labels)))
    rows = math.ceil(len(labels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    for k, label in enumerate(labels):
        ax = axes[k // cols][k % cols]
        steps, lifts, unit, status, *rest = curves[label]
        selected = rest[0] if rest else ()
        ax.errorbar(steps, [e.value * 100 for e in lifts], yerr=_yerr(lifts) * 100, marker="o", markersize=3,
                    capsize=2, color="#1f77b4" if status == "converged" else "#d62728", linewidth=1.0)
        if selected:
            # One tick per seed at its validation-selected checkpoint, stacked when seeds agree.
            counts = Counter(selected)
            for step, n in counts.items():
                ax.scatter([step] * n, [0.03 + 0.06 * j for j in range(n)], transform=ax.get_xaxis_transform(),
                           marker="^", s=18, color="#2ca02c", zorder=3)
        ax.axhline(0.0, color="black", linewidth=0.7)
        ax.set_xscale("log")
        ax.set_xticks(list(steps))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: compact_count(v)))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.tick_params(axis="x", labelrotation=45)
        ax.set_xlabel(unit, fontsize=8)
        ax.set_ylabel("lift vs control (%)", fontsize=8)
        ax.set_title(f"{label}: {status}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for k in range(len(labels), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle("Learning curves: lift of session return vs the baseline policy on the curve users (95% CI; "
                 "blue = last two checkpoints agree, red = not converged)"
                 + ("\ngreen triangles: each seed's published checkpoint, chosen on validation users"
                    if any_selected else ""), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return save_figure(fig, path)


def plot_interval_estimates(estimates: Mapping[str, Estimate], path: str | Path, *, xlabel: str,
                            title: str) -> list[Path]:
    """A horizontal point-and-interval chart (rliable's interval-estimate view), best arm on top."""
    names = sorted(estimates, key=lambda n: estimates[n].value)
    fig, ax = plt.subplots(figsize=(7.0, 0.9 + 0.32 * len(names)))
    est = [estimates[n] for n in names]
    ax.errorbar([e.value for e in est], range(len(names)), xerr=_yerr(est), fmt="o", capsize=3, color="#1f77b4")
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_improvement(improvement: Mapping[tuple[str, str], Estimate], path: str | Path) -> list[Path]:
    """Probability of improvement of X over Y (rows ``X > Y``) with its interval; 0.5 = no difference. Rows are
    grouped by X (one colour each, best Y-comparison on top of its group), so a pair is found by its X."""
    groups = sorted({x for x, _ in improvement}, reverse=True)
    pairs = sorted(improvement, key=lambda k: (groups.index(k[0]), improvement[k].value))
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.3 * len(pairs)))
    for g, group in enumerate(groups):
        rows = [i for i, k in enumerate(pairs) if k[0] == group]
        est = [improvement[pairs[i]] for i in rows]
        ax.errorbar([e.value for e in est], rows, xerr=_yerr(est), fmt="o", capsize=3, color=_color(g), label=group)
        if g:
            ax.axhline(rows[0] - 0.5, color="grey", linewidth=0.6)
    ax.legend(fontsize=7, loc="lower right", title="X", title_fontsize=7)
    ax.axvline(0.5, color="black", linestyle="--", linewidth=0.8)
    ax.set_xlim(-0.02, 1.02)
    ax.set_yticks(range(len(pairs)))
    ax.set_yticklabels([f"{x}  >  {y}" for x, y in pairs], fontsize=7)
    ax.set_xlabel("P(X > Y): a random seed of X beats a random seed of Y (stratified-bootstrap 95% CI)", fontsize=8)
    ax.set_title("Probability of improvement of IntegratedRL over every other arm", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_performance_profiles(profiles: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                              thresholds: Sequence[float], path: str | Path) -> list[Path]:
    """Run-score distributions: fraction of seeds whose normalised return exceeds tau, with bands. One panel per
    training data (``agent/dataset`` arms; online agents together); arms without a dataset (the control) are
    drawn in every panel as the black reference line."""
    taus = np.asarray(thresholds)
    references = {name: p for name, p in profiles.items() if "/" not in name}
    groups: dict[str, list[str]] = {}
    for name in sorted(n for n in profiles if "/" in n):
        groups.setdefault(name.split("/", 1)[1], []).append(name)
    if not groups:
        groups = {"": []}
    cols = min(2, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 3.6 * rows), squeeze=False, sharex=True, sharey=True)
    for ax, (dataset, names) in zip(axes.flat, groups.items()):
        for j, name in enumerate(names):
            point, low, high = profiles[name]
            ax.plot(taus, point, color=_color(j), label=name.split("/", 1)[0], linewidth=1.4)
            ax.fill_between(taus, low, high, color=_color(j), alpha=0.12)
        for name, (point, _low, _high) in references.items():
            ax.plot(taus, point, "--", color="black", label=name, linewidth=1.2)
        ax.axvline(100.0, color="grey", lw=0.8, ls=":")
        ax.set_title(f"trained on {dataset}" if dataset not in ("", "online") else (dataset or "arms"), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("normalised return τ (random fusion = 0, reference = 100)", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("fraction of runs with score > τ", fontsize=9)
    fig.suptitle("Performance profiles (rliable run-score distributions; 95% stratified-bootstrap bands)",
                 fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_saturation(saturation: Mapping[str, tuple[float, float, float | None]], path: str | Path) -> list[Path]:
    """Per arm, the shares of action entries at the action-space edge, at the band edge around the baseline (the
    bang-bang check) and, where not None (progressive training data), at the edge of its own training bands."""
    names = list(saturation)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.6 * len(names)), 3.8))
    x = np.arange(len(names))
    own = [n for n in names if saturation[n][2] is not None]
    width = 0.27 if own else 0.4
    ax.bar(x - width / (1 if own else 2), [100 * saturation[n][0] for n in names], width=width,
           label="action-space edge |a| = 1")
    ax.bar(x + (0 if own else width / 2), [100 * saturation[n][1] for n in names], width=width,
           label="band edge around the baseline |a − baseline| ≥ band")
    if own:
        positions = [names.index(n) for n in own]
        ax.bar(np.asarray(positions) + width, [100 * saturation[n][2] for n in own], width=width,
               label="edge of its own training bands (progressive data)")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("share of action entries (%)", fontsize=9)
    # Headroom above 100% holds the legend, clear of the bars.
    ax.set_ylim(0, 140 if own else 112)
    ax.set_yticks(range(0, 101, 20))
    ax.set_title("Saturation: how often each policy sits on a boundary (test-set states, mean over seeds)",
                 fontsize=9)
    ax.legend(fontsize=7.5, loc="upper left", ncol=1 if own else 2, columnspacing=1.0, handlelength=1.2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)

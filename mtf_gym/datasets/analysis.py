"""How well a dataset explores, and what exploring costs the users (paper Sec. 4, docs/design.md#exploration).

* :func:`band_coverage`: fraction of executed actions inside the personalised band ``[c(s) + lower, c(s) + upper]``
  per dimension and jointly (all dimensions at once), with an exact binomial confidence interval.
* :func:`exploration_efficiency`: the *empirical efficiency ratio* of bounded-uniform over Gaussian exploration at
  equal exploration density (same session budget, same band): the ratio of the fractions of their samples that
  land jointly inside the band, i.e. how many Gaussian samples buy one in-band sample compared with uniform ones.
  It is compared with :func:`mtf_gym.metrics.exploration_efficiency_analytic` (``1 / prod_d P(|N(0, s^2)| < b)``).
* :func:`exploration_cost`: return per session of the behaviour policy vs the baseline dataset (bootstrap CIs).
* :func:`plot_offsets`: per-dimension distributions of ``action - centre`` (the paper's Figure 3 view).

``python -m mtf_gym.datasets.analysis --help`` runs all of it on stored datasets.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

from mtf_gym.exploration import NOMINAL_LOWER, NOMINAL_UPPER
from mtf_gym.metrics import (
    ConfidenceInterval,
    ExplorationEfficiency,
    bootstrap_ci,
    exploration_efficiency_analytic,
    fraction_inside_band,
)

from .transitions import TransitionData

__all__ = [
    "BandCoverage",
    "EfficiencyReport",
    "ExplorationCost",
    "band_coverage",
    "clipped_gaussian_band_probability",
    "exploration_cost",
    "exploration_efficiency",
    "plot_offsets",
]


@dataclass(frozen=True)
class BandCoverage:
    """Where a dataset's executed actions lie relative to the band around their centres.

    Attributes:
        per_dim: ``(A,)`` fraction of transitions whose offset is inside the band, per dimension.
        joint: fraction inside in every dimension at once.
        joint_count: number of transitions inside jointly.
        n: number of transitions.
        joint_ci: exact (Clopper-Pearson) interval of ``joint``; the noise is drawn independently per transition.
    """

    per_dim: np.ndarray
    joint: float
    joint_count: int
    n: int
    joint_ci: tuple[float, float]


def band_coverage(
    data: TransitionData,
    lower: ArrayLike | None = None,
    upper: ArrayLike | None = None,
    *,
    confidence: float = 0.95,
) -> BandCoverage:
    """Band coverage of ``data``'s actions; the band is each transition's recorded one unless ``lower``/``upper``.

    Offsets are ``action - centre`` of the executed (clipped) actions; bounds are inclusive with a 1e-9 tolerance
    (:func:`mtf_gym.metrics.fraction_inside_band`) and, when given, rounded to float32 like the recorded bands.
    """
    if len(data) == 0:
        raise ValueError("data must contain at least one transition")
    # Given bounds are rounded to float32 like the recorded ones, so the nominal -0.15 equals the stored -0.15.
    lo = data.lower if lower is None else np.asarray(lower, np.float32)
    hi = data.upper if upper is None else np.asarray(upper, np.float32)
    per_dim, joint = fraction_inside_band(data.offsets, lo, hi)
    n = len(data)
    count = round(joint * n)
    ci = stats.binomtest(count, n).proportion_ci(confidence_level=confidence, method="exact")
    return BandCoverage(per_dim=per_dim, joint=joint, joint_count=count, n=n, joint_ci=(ci.low, ci.high))


def clipped_gaussian_band_probability(
    centres: ArrayLike, sigma: ArrayLike, lower: ArrayLike, upper: ArrayLike
) -> np.ndarray:
    """``P(lower <= clip(c + N(0, sigma^2), -1, 1) - c <= upper)`` per centre and dimension.

    Clipping to the action box maps every draw beyond the box edge onto the edge: when the band reaches past the
    edge (``c + upper >= 1``) that whole tail lands inside the band, so its side of the interval is unbounded.
    Without clipping this is :func:`mtf_gym.metrics.exploration_efficiency_analytic`'s per-dimension probability.
    """
    c = np.asarray(centres, np.float64)
    sig = np.asarray(sigma, np.float64)
    hi = np.where(c + upper >= 1.0, np.inf, np.asarray(upper, np.float64))
    lo = np.where(c + lower <= -1.0, -np.inf, np.asarray(lower, np.float64))
    return special.ndtr(hi / sig) - special.ndtr(lo / sig)


@dataclass(frozen=True)
class EfficiencyReport:
    """Bounded-uniform vs Gaussian exploration efficiency, measured and analytic.

    Attributes:
        bounded, gaussian: coverage of the nominal band by each dataset.
        empirical_ratio: ``bounded.joint / gaussian.joint`` (inf if no Gaussian sample is jointly inside).
        empirical_ratio_ci: the ratio's interval from the two exact binomial intervals (conservative: low/high
            combine opposite ends).
        analytic: :func:`mtf_gym.metrics.exploration_efficiency_analytic` for the Gaussian's sigma and the band
            (no clipping).
        analytic_clipped_joint: expected joint in-band fraction of the Gaussian data *with* clipping to the action
            box at its recorded centres (mean over transitions of
            ``prod_d`` :func:`clipped_gaussian_band_probability`); ``analytic_clipped_ratio`` is its inverse.
        sigma, lower, upper: the parameters used (per dimension).
    """

    bounded: BandCoverage
    gaussian: BandCoverage
    empirical_ratio: float
    empirical_ratio_ci: tuple[float, float]
    analytic: ExplorationEfficiency
    analytic_clipped_joint: float
    analytic_clipped_ratio: float
    sigma: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {
            "band": {"lower": self.lower.tolist(), "upper": self.upper.tolist()},
            "sigma": self.sigma.tolist(),
            "bounded": _coverage_dict(self.bounded),
            "gaussian": _coverage_dict(self.gaussian),
            "empirical_ratio": self.empirical_ratio,
            "empirical_ratio_ci": list(self.empirical_ratio_ci),
            "analytic_per_dim_probability": self.analytic.per_dim_probability.tolist(),
            "analytic_joint_probability": self.analytic.joint_probability,
            "analytic_ratio": self.analytic.efficiency_ratio,
            "analytic_clipped_joint_probability": self.analytic_clipped_joint,
            "analytic_clipped_ratio": self.analytic_clipped_ratio,
        }


def _coverage_dict(c: BandCoverage) -> dict[str, Any]:
    return {"per_dim": c.per_dim.tolist(), "joint": c.joint, "joint_count": c.joint_count, "n": c.n,
            "joint_ci": list(c.joint_ci)}


def _ratio(a: float, b: float) -> float:
    return math.inf if b == 0 else a / b


def _behaviour_sigma(data: TransitionData) -> Any:
    sigma = data.metadata.get("behaviour", {}).get("sigma")
    if sigma is None:
        raise ValueError("sigma not given and the Gaussian dataset's metadata has no behaviour.sigma")
    return sigma


def exploration_efficiency(
    bounded: TransitionData,
    gaussian: TransitionData,
    *,
    lower: ArrayLike = NOMINAL_LOWER,
    upper: ArrayLike = NOMINAL_UPPER,
    sigma: ArrayLike | None = None,
    confidence: float = 0.95,
) -> EfficiencyReport:
    """Empirical vs analytic efficiency of bounded-uniform (``bounded``) over Gaussian (``gaussian``) exploration.

    Both datasets are scored against the same band ``[c(s) + lower, c(s) + upper]`` around their own recorded
    centres. ``sigma`` defaults to the Gaussian dataset's ``metadata["behaviour"]["sigma"]``.
    """
    if bounded.action_dim != gaussian.action_dim:
        raise ValueError(f"bounded and gaussian must have the same action_dim, got {bounded.action_dim} and "
                         f"{gaussian.action_dim}")
    a_dim = bounded.action_dim
    sig = np.broadcast_to(np.asarray(_behaviour_sigma(gaussian) if sigma is None else sigma, np.float64), (a_dim,))
    lo = np.broadcast_to(np.asarray(lower, np.float64), (a_dim,))
    hi = np.broadcast_to(np.asarray(upper, np.float64), (a_dim,))
    b = band_coverage(bounded, lo, hi, confidence=confidence)
    g = band_coverage(gaussian, lo, hi, confidence=confidence)
    clipped = float(np.prod(clipped_gaussian_band_probability(gaussian.centres, sig, lo, hi), axis=1).mean())
    return EfficiencyReport(
        bounded=b,
        gaussian=g,
        empirical_ratio=_ratio(b.joint, g.joint),
        empirical_ratio_ci=(_ratio(b.joint_ci[0], g.joint_ci[1]), _ratio(b.joint_ci[1], g.joint_ci[0])),
        analytic=exploration_efficiency_analytic(sig, lo, hi, a_dim),
        analytic_clipped_joint=clipped,
        analytic_clipped_ratio=_ratio(1.0, clipped),
        sigma=sig.copy(),
        lower=lo.copy(),
        upper=hi.copy(),
    )


@dataclass(frozen=True)
class ExplorationCost:
    """User-experience cost of exploring: return per session, behaviour vs baseline data.

    Attributes:
        behaviour_return, baseline_return: mean undiscounted return per session with bootstrap CIs.
        relative_change: ``mean(behaviour) / mean(baseline) - 1`` (negative = exploring costs return).
        relative_change_ci: normal-approximation (delta-method) interval; the two datasets' sessions are
            independent samples, so the paired bootstrap of :func:`mtf_gym.metrics.paired_lift_ci` does not apply.
        behaviour_requests, baseline_requests: mean requests per session (the leave behaviour's cost).
    """

    behaviour_return: ConfidenceInterval
    baseline_return: ConfidenceInterval
    relative_change: float
    relative_change_ci: tuple[float, float]
    behaviour_requests: float
    baseline_requests: float

    def to_dict(self) -> dict[str, Any]:
        def ci(c: ConfidenceInterval) -> dict[str, float]:
            return {"mean": c.estimate, "low": c.low, "high": c.high, "n": c.n}

        return {"behaviour_return": ci(self.behaviour_return), "baseline_return": ci(self.baseline_return),
                "relative_change": self.relative_change, "relative_change_ci": list(self.relative_change_ci),
                "behaviour_requests": self.behaviour_requests, "baseline_requests": self.baseline_requests}


def exploration_cost(
    behaviour: TransitionData,
    baseline: TransitionData,
    *,
    rng: np.random.Generator,
    confidence: float = 0.95,
    num_resamples: int = 2000,
) -> ExplorationCost:
    """Return per session of ``behaviour`` vs ``baseline`` (e.g. the uniform and the baseline recipe)."""
    rb, r0 = behaviour.episode_returns(), baseline.episode_returns()
    if rb.size < 2 or r0.size < 2:
        raise ValueError("behaviour and baseline need at least 2 sessions each")
    ci_b = bootstrap_ci(rb, confidence=confidence, num_resamples=num_resamples, rng=rng)
    ci_0 = bootstrap_ci(r0, confidence=confidence, num_resamples=num_resamples, rng=rng)
    mb, m0 = float(rb.mean()), float(r0.mean())
    ratio = mb / m0
    # Delta method for the ratio of two independent means.
    se = abs(ratio) * math.sqrt(rb.var(ddof=1) / rb.size / mb**2 + r0.var(ddof=1) / r0.size / m0**2)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    return ExplorationCost(
        behaviour_return=ci_b,
        baseline_return=ci_0,
        relative_change=ratio - 1.0,
        relative_change_ci=(ratio - 1.0 - z * se, ratio - 1.0 + z * se),
        behaviour_requests=float(behaviour.episode_lengths().mean()),
        baseline_requests=float(baseline.episode_lengths().mean()),
    )


def plot_offsets(
    datasets: Mapping[str, TransitionData],
    path: str | Path,
    *,
    bins: int = 80,
    xlim: float = 0.8,
) -> list[Path]:
    """Histogram of ``action - centre`` per action dimension for each dataset, band edges marked; PNG + SVG.

    Args:
        datasets: label -> dataset (e.g. ``{"Gaussian sigma=0.2": g, "bounded-uniform +-0.15": u}``).
        path: output path; written as ``<path>.png`` and ``<path>.svg`` (any suffix is replaced).
        bins: histogram bins over ``[-xlim, xlim]``.
        xlim: half-width of the plotted offset range (action units).

    Returns:
        The two written paths. Offsets beyond ``xlim`` are counted in the edge bins (clipped for display). Actions
        clipped onto the action box (|a| = 1) pile up in one bin; the y axis is scaled to the other bins and each
        panel prints the share of actions at the box edge.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not datasets:
        raise ValueError("datasets must contain at least one dataset")
    first = next(iter(datasets.values()))
    a_dim = first.action_dim
    names = first.metadata.get("action_names") or [f"dim {d}" for d in range(a_dim)]
    cols = math.ceil(a_dim / 2)
    fig, axes = plt.subplots(2, cols, figsize=(2.9 * cols, 5.6), sharex=True, squeeze=False)
    edges = np.linspace(-xlim, xlim, bins + 1)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lo = np.median(first.lower, axis=0)
    hi = np.median(first.upper, axis=0)
    for d in range(a_dim):
        ax = axes[d // cols][d % cols]
        top, edge_notes = 0.0, []
        for i, (label, data) in enumerate(datasets.items()):
            off = np.clip(data.offsets[:, d], -xlim, xlim)
            color = colors[i % len(colors)]
            ax.hist(off, bins=edges, density=True, histtype="step", linewidth=1.3, color=color, label=label)
            # Actions clipped onto the box edge form a spike; scale the axis to the rest and print the spike's mass.
            at_edge = np.abs(data.actions[:, d]) >= 1.0
            counts, _ = np.histogram(off[~at_edge], bins=edges)
            top = max(top, counts.max() / (len(off) * (edges[1] - edges[0])))
            if at_edge.mean() > 0.005:
                edge_notes.append((f"{100 * at_edge.mean():.0f}%", color))
        ax.set_ylim(0, 1.3 * top)
        for k, (text, color) in enumerate(edge_notes):
            ax.text(0.98, 0.95 - 0.09 * k, f"at box edge ±1: {text}", transform=ax.transAxes, fontsize=6.5,
                    color=color, va="top", ha="right")
        for bound in (lo[d], hi[d]):
            ax.axvline(bound, color="black", linestyle="--", linewidth=0.9)
        ax.set_title(names[d], fontsize=9)
        ax.tick_params(labelsize=7)
        if d % cols == 0:
            ax.set_ylabel("density (1 / action unit)", fontsize=8)
        if d // cols == 1:
            ax.set_xlabel("offset  a − μ(s)  (action units)", fontsize=8)
    for d in range(a_dim, 2 * cols):
        axes[d // cols][d % cols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="black", linestyle="--", linewidth=0.9))
    labels.append(f"band [{_fmt(lo)}, {_fmt(hi)}]")
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
    fig.suptitle("Exploration offsets per action dimension (executed action − exploration centre)", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    out = Path(path)
    written = [out.with_suffix(".png"), out.with_suffix(".svg")]
    written[0].parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(written[0], dpi=130)
    fig.savefig(written[1])
    plt.close(fig)
    return written


def _fmt(values: np.ndarray) -> str:
    return f"{values[0]:+.2f}" if np.allclose(values, values[0]) else "per-dim"


# ---------------------------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mtf_gym.datasets.analysis``: exploration report of stored datasets."""
    from .storage import load_dataset

    parser = argparse.ArgumentParser(
        prog="python -m mtf_gym.datasets.analysis",
        description="Band coverage, empirical vs analytic exploration efficiency (bounded-uniform vs Gaussian), "
                    "the return cost of exploring and the offsets plot, for datasets written by mtf-collect.",
    )
    parser.add_argument("--root", required=True, help="datasets directory (the --out of mtf-collect)")
    parser.add_argument("--uniform", required=True, help="dataset id of the bounded-uniform dataset")
    parser.add_argument("--gaussian", required=True, help="dataset id of the Gaussian dataset")
    parser.add_argument("--baseline", help="dataset id of the noise-free baseline dataset (for the return cost)")
    parser.add_argument("--plot", help="write the offsets figure to PLOT.png and PLOT.svg")
    parser.add_argument("--json", help="also write the report as JSON to this file")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    args = parser.parse_args(argv)

    uniform = load_dataset(args.uniform, args.root)
    gaussian = load_dataset(args.gaussian, args.root)
    eff = exploration_efficiency(uniform, gaussian)
    report: dict[str, Any] = {"efficiency": eff.to_dict()}
    print(f"band [{_fmt(eff.lower)}, {_fmt(eff.upper)}], {uniform.action_dim} dims, sigma {_fmt(eff.sigma)}")
    for name, cov in (("uniform", eff.bounded), ("gaussian", eff.gaussian)):
        print(f"  {name:8s} n={cov.n:8d}  inside per dim {np.round(cov.per_dim, 3).tolist()}")
        print(f"  {'':8s} inside jointly {cov.joint:.5f} ({cov.joint_count}) 95% CI "
              f"[{cov.joint_ci[0]:.5f}, {cov.joint_ci[1]:.5f}]")
    print(f"  analytic per-dim P(inside) {np.round(eff.analytic.per_dim_probability, 3).tolist()}")
    print(f"  efficiency ratio: empirical {eff.empirical_ratio:.1f} (95% CI {eff.empirical_ratio_ci[0]:.1f}-"
          f"{eff.empirical_ratio_ci[1]:.1f}), analytic {eff.analytic.efficiency_ratio:.1f} without clipping, "
          f"{eff.analytic_clipped_ratio:.1f} with clipping at the recorded centres")
    rng = np.random.default_rng(args.seed)
    if args.baseline:
        baseline = load_dataset(args.baseline, args.root)
        costs = {}
        for name, data in (("uniform", uniform), ("gaussian", gaussian)):
            cost = exploration_cost(data, baseline, rng=rng)
            costs[name] = cost.to_dict()
            print(f"  return/session {name:8s} {cost.behaviour_return.estimate:.3f} "
                  f"[{cost.behaviour_return.low:.3f}, {cost.behaviour_return.high:.3f}] vs baseline "
                  f"{cost.baseline_return.estimate:.3f} [{cost.baseline_return.low:.3f}, "
                  f"{cost.baseline_return.high:.3f}]: {100 * cost.relative_change:+.2f}% "
                  f"[{100 * cost.relative_change_ci[0]:+.2f}%, {100 * cost.relative_change_ci[1]:+.2f}%]; "
                  f"requests/session {cost.behaviour_requests:.3f} vs {cost.baseline_requests:.3f}")
        report["cost"] = costs
    if args.plot:
        sigma = gaussian.metadata.get("behaviour", {}).get("sigma")
        written = plot_offsets({f"Gaussian σ={sigma}": gaussian,
                                f"bounded-uniform [{_fmt(eff.lower)}, {_fmt(eff.upper)}]": uniform}, args.plot)
        print("  plot: " + ", ".join(str(p) for p in written))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

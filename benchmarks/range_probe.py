"""Do the action's ranges cap the fusion? Probes of the MTFSession-v1 control beyond the edges of its action box.

    python -m mtf_bench.range_probe [--users 8192] [--out results/range_probe]

The tuned control (``BaselinePolicy``, a CMA-ES constant) sits at the edge of the action box in half of its
entries (watch-time power at -2, valid-view and watch-time biases at 1, like and follow biases at 0.001), and CMA-ES
searches drift far outside ``[-1, 1]`` there. If the session return kept rising past those edges, the box (not the
user model) would be what limits the best fusion, and every user whose optimum lies beyond an edge would be clipped
to the same fusion: personalisation would be capped by the action space.

Each probe is the control's fusion with one parameter moved, run in an env whose ranges are widened so that the
control's fusion is unchanged (``BaselinePolicy`` maps it into any ranges): outwards past the edge it sits at
(``beyond``), or by the same amount inwards (``inside``, the slope on the box's side). Every probe plays the same
validation users as the control (common random numbers; ``tune_control``'s validation seeds, never the evaluation
users), and each lift is a paired bootstrap interval, overall and per user segment (is the best side of an edge the
same for every segment?).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from mtf_gym.atomic import atomic_write_json
from mtf_gym.evaluation import SEGMENT_LABELS, SessionRunner, lift_by_segment
from mtf_gym.fusion import FusionRanges, fusion_params_to_action
from mtf_gym.policies import BaselinePolicy, ConstantPolicy
from mtf_gym.sim.config import MTFSessionV1Config

__all__ = ["Probe", "main", "probes", "run_probes"]

# tune_control's validation users: disjoint from the training (1e6..) and the evaluation (0..) users.
VALIDATION_SEED = 4_000_000
# Wide enough for every probe: the same fusion maps into these ranges without clipping.
WIDE = FusionRanges(power_low=-8.0, power_high=8.0, bias_low=1e-6, bias_high=100.0)


@dataclasses.dataclass(frozen=True)
class Probe:
    """The control with ``task``'s ``param`` (``"power"`` or ``"bias"``) set to ``value``."""

    name: str
    task: str
    param: str
    value: float
    side: str  # "beyond" the edge the control sits at, or "inside" the box by the same step


def probes(config: MTFSessionV1Config, *, edge: float = 0.95) -> list[Probe]:
    """Two steps outwards and one inwards for every control parameter at an edge of ``config``'s box (its action
    entry beyond ``+-edge``): powers in steps of 1 from the edge, biases in factors of 10; nothing for a parameter
    inside the box."""
    ranges = config.fusion
    control = BaselinePolicy(config)
    tasks = config.ranker_tasks
    out = []
    for k, task in enumerate(tasks):
        a_power, a_bias = float(control.action[k]), float(control.action[len(tasks) + k])
        if abs(a_power) >= edge:
            limit, sign = (ranges.power_high, 1.0) if a_power > 0 else (ranges.power_low, -1.0)
            out += [Probe(f"{task} power {limit + sign * s:+g}", task, "power", limit + sign * s, "beyond")
                    for s in (1.0, 2.0)]
            out.append(Probe(f"{task} power {limit - sign:+g}", task, "power", limit - sign, "inside"))
        if abs(a_bias) >= edge:
            limit, factor = (ranges.bias_high, 10.0) if a_bias > 0 else (ranges.bias_low, 0.1)
            out += [Probe(f"{task} bias {limit * factor ** s:g}", task, "bias", limit * factor ** s, "beyond")
                    for s in (1, 2)]
            out.append(Probe(f"{task} bias {limit / factor:g}", task, "bias", limit / factor, "inside"))
    return out


def _action(config: MTFSessionV1Config, probe: Probe | None) -> np.ndarray:
    fusion = BaselinePolicy(config).fusion
    powers = {t: fusion.powers[t] for t in config.ranker_tasks}
    biases = {t: fusion.biases[t] for t in config.ranker_tasks}
    if probe is not None:
        (powers if probe.param == "power" else biases)[probe.task] = probe.value
    return fusion_params_to_action(np.array([powers[t] for t in config.ranker_tasks]),
                                   np.array([biases[t] for t in config.ranker_tasks]), WIDE)


def run_probes(users: int, *, log=print) -> dict:
    """Every probe of the default v1 config on ``users`` validation users; returns a JSON-able record."""
    config = MTFSessionV1Config()
    wide = dataclasses.replace(config, fusion=WIDE, item_logs=False)
    runner = SessionRunner(users, wide)
    # The control played in the wide env is the control of the default env (same fusion, same users): checked.
    control_run = runner.run(ConstantPolicy(_action(config, None)), VALIDATION_SEED)
    control, segment = control_run.returns, control_run.segments
    default = SessionRunner(users, dataclasses.replace(config, item_logs=False)).run(BaselinePolicy(config),
                                                                                     VALIDATION_SEED).returns
    if not np.allclose(control, default, rtol=1e-5, atol=1e-4):
        raise RuntimeError("the control played in the widened env differs from the default env's control")
    rng = np.random.default_rng(0)
    rows = []
    for probe in probes(config):
        start = time.perf_counter()
        run = runner.run(ConstantPolicy(_action(config, probe)), VALIDATION_SEED)
        ci = lift_by_segment(run, control_run, rng=rng)
        per_segment = ci.pop("per_segment")
        rows.append({**dataclasses.asdict(probe), "lift": ci, "per_segment": per_segment,
                     "mean_return": float(run.returns.mean())})
        log(f"  {probe.name:<28} ({probe.side}): {ci['estimate']:+.2%} [{ci['low']:+.2%}, {ci['high']:+.2%}]  "
            + "  ".join(f"{n} {v['estimate']:+.2%}" for n, v in per_segment.items())
            + f"  ({time.perf_counter() - start:.0f} s)")
    return {"users": users, "validation_seed": VALIDATION_SEED, "control_return": float(control.mean()),
            "segment_shares": [float(np.mean(segment == g)) for g in range(len(SEGMENT_LABELS))],
            "ranges": dataclasses.asdict(config.fusion), "probes": rows}


def _plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = record["probes"]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(rows) + 1.6))
    y = np.arange(len(rows))[::-1]
    est = np.array([r["lift"]["estimate"] for r in rows]) * 100
    low = np.array([r["lift"]["low"] for r in rows]) * 100
    high = np.array([r["lift"]["high"] for r in rows]) * 100
    colours = ["#d1495b" if r["side"] == "beyond" else "#5b8def" for r in rows]
    ax.barh(y, est, xerr=[est - low, high - est], color=colours, capsize=3, alpha=0.85)
    markers = dict(zip(SEGMENT_LABELS, ("o", "s", "^", "D")))
    for name, marker in markers.items():
        ax.scatter([r["per_segment"][name]["estimate"] * 100 for r in rows], y, marker=marker, s=18,
                   color="black", zorder=3, label=f"{name} users")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xscale("symlog", linthresh=2.0)  # linear within +-2% (where the probes past the edges sit), log beyond
    ticks = [-50, -20, -10, -5, -2, -1, 0, 1, 2, 5, 10, 20, 50]
    span = max(abs(v) for r in rows for v in [r["lift"]["low"], r["lift"]["high"],
                                                  *(s["estimate"] for s in r["per_segment"].values())]) * 100
    ax.set_xlim(-1.3 * span, 1.3 * span)
    ax.set_xticks([t for t in ticks if abs(t) <= 1.3 * span], [f"{t:+d}" if t else "0" for t in ticks
                                                               if abs(t) <= 1.3 * span])
    ax.set_yticks(y, [f"{r['name']} ({r['side']})" for r in rows], fontsize=8)
    ax.set_xlabel("session return vs the control (%, symlog: linear within ±2%; 95% paired CI; markers: per segment)")
    ax.set_title(f"The control moved past the edges of the action box (red) or inside it (blue)\n"
                 f"{record['users']} validation users, control return {record['control_return']:.2f}")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=8192, help="validation users per probe (default 8192)")
    parser.add_argument("--out", type=Path, default=Path("results/range_probe"), help="output folder")
    args = parser.parse_args(argv)
    if args.users < 2:
        parser.error(f"--users must be >= 2, got {args.users}")
    start = time.perf_counter()
    record = run_probes(args.users, log=lambda s: print(s, flush=True))
    print("\n| probe | side | lift vs control [95% CI] | " + " | ".join(SEGMENT_LABELS) + " |")
    print("|---|---|---|" + "---|" * len(SEGMENT_LABELS))
    for r in record["probes"]:
        lift = r["lift"]
        print(f"| {r['name']} | {r['side']} | {lift['estimate']:+.2%} [{lift['low']:+.2%}, {lift['high']:+.2%}] | "
              + " | ".join(f"{r['per_segment'][n]['estimate']:+.2%}" for n in SEGMENT_LABELS) + " |")
    args.out.mkdir(parents=True, exist_ok=True)
    record["wall_s"] = time.perf_counter() - start
    atomic_write_json(args.out / "range_probe.json", record)
    _plot(record, args.out / "range_probe.png")
    print(f"\nwrote {args.out / 'range_probe.json'} and {args.out / 'range_probe.png'} "
          f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

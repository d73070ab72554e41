"""The report: results on disk -> ``runs.csv``, ``runs.json``, ``summary.json``, ``plots/`` and ``report.md``.

Four stages, each a module with explicit inputs and outputs, run in this order by :func:`build_report`:

1. loading (:mod:`mtf_bench.harness.results`): what the jobs wrote;
2. aggregation (:mod:`mtf_bench.harness.aggregate`): lifts, rliable statistics, curves, offline estimators;
3. claim rules (:mod:`mtf_bench.harness.claims`): one small function per paper claim;
4. rendering (:mod:`mtf_bench.harness.figures` and :mod:`mtf_bench.harness.render`): figures, tables, markdown.

Everything is computed from the results on disk (a resumed or partial run reports what exists) plus two reference
simulations on the A/B users (the control and the random fusion). Verdicts come from the rules, never by hand.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from mtf_bench.harness import claims as rules
from mtf_bench.harness.aggregate import Aggregates, aggregate
from mtf_bench.harness.figures import draw_figures
from mtf_bench.harness.grid import Grid
from mtf_bench.harness.presets import Preset
from mtf_bench.harness.render import PLOTS_DIR, markdown, rows_to_csv, run_rows, summary
from mtf_bench.harness.results import load_datasets, load_results
from mtf_gym.atomic import atomic_path, atomic_write_json, atomic_write_text

__all__ = ["REPORT_FILE", "build_report", "check_claims", "publish"]

REPORT_FILE = "report.md"
T = TypeVar("T")


def check_claims(agg: Aggregates) -> list[rules.Claim]:
    """Every claim rule applied to the aggregates, in the report's order."""
    inputs = agg.claim_inputs
    out = [rules.claim_efficiency(agg.efficiency),
           rules.claim_uniform_vs_gaussian(inputs.uniform_vs_gaussian),
           rules.claim_reward_order(inputs.return_lifts),
           rules.claim_gauc_order(inputs.gauc),
           rules.claim_online_vs_es(inputs.vs_es, inputs.es_status),
           rules.claim_ptm(inputs.ptm_lift),
           rules.claim_vs_baseline({ds: inputs.return_lifts.get(("integrated_rl", ds))
                                    for ds in ("uniform", "progressive")})]
    for name, ag in agg.agreements.items():
        out.append(rules.claim_agreement(name, ag.spearman.rho, ag.spearman.low, ag.spearman.high, ag.spearman.n,
                                         ag.regret))
    return out


def build_report(preset: Preset, grid: Grid, wall: Mapping[str, float] | None = None,
                 command: str | None = None) -> Path:
    """Write the report of ``preset``'s run directory; returns the path of ``report.md``."""
    stage: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            stage[name] = time.perf_counter() - start

    start = time.perf_counter()
    run_dir = preset.run_dir
    loaded = timed("load_s", lambda: load_results(grid))
    datasets = timed("load_datasets_s", lambda: load_datasets(run_dir, preset.collection.recipes, preset.seeds,
                                                              loaded.datasets))
    agg = timed("aggregate_s", lambda: aggregate(preset, grid, loaded, datasets))
    claims = check_claims(agg)
    rows = run_rows(preset, loaded, agg)
    atomic_write_text(run_dir / "runs.csv", rows_to_csv(rows))
    atomic_write_json(run_dir / "runs.json", {"preset": preset.name, "runs": rows, "baseline": agg.baseline.means(),
                                              "random": agg.random.means(), "baseline_gauc": agg.baseline_gauc})
    figures = timed("plots_s", lambda: draw_figures(preset, agg, loaded, datasets, run_dir / PLOTS_DIR))
    tuning = _tuning_section(preset)
    slate = _slate_section(run_dir)
    stage["total_s"] = time.perf_counter() - start
    atomic_write_json(run_dir / "summary.json", summary(preset, agg, claims, {"wall": dict(wall or {}),
                                                                               "report": stage}))
    text = markdown(preset, grid, loaded, agg, claims, figures,
                    command=command or shlex.join(["mtf-bench", *sys.argv[1:]]), wall=wall or {}, stage=stage,
                    tuning=tuning, slate=slate)
    path = run_dir / REPORT_FILE
    atomic_write_text(path, text)
    return path


def _tuning_section(preset: Preset) -> list[str]:
    from mtf_bench.harness.grid import tuning_jobs
    from mtf_bench.harness.runner import agent_kinds
    from mtf_bench.harness.tuning import tuning_markdown

    return tuning_markdown(preset, tuning_jobs(preset, agent_kinds(preset.agents.names))[1])


SLATE_FIGURE_PREFIX = "slate_section_"


def _slate_section(run_dir: Path) -> list[str]:
    """The slate section's page (``slate/slate.md``, written by the section's own stage) as a section of the report:
    headings one level down, its figures copied into ``plots/`` (so ``publish`` carries them) and linked there.
    Empty when the preset ran no slate section."""
    page = run_dir / "slate" / "slate.md"
    if not page.is_file():
        return []
    lines = []
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            line = "#" + line
        for image in re.findall(r"\]\(([^)/]+\.(?:png|svg))\)", line):
            target = run_dir / PLOTS_DIR / (SLATE_FIGURE_PREFIX + image.removeprefix("slate_"))
            with atomic_path(target) as tmp:
                shutil.copyfile(page.parent / image, tmp)
            line = line.replace(f"]({image})", f"]({PLOTS_DIR}/{target.name})")
        lines.append(line)
    return ["", *lines]


def publish(run_dir: str | Path, target: str | Path) -> Path:
    """Copy ``report.md`` to ``target`` and its plots to ``<target dir>/<target stem>/`` (links rewritten)."""
    run_dir, target = Path(run_dir), Path(target)
    source = run_dir / REPORT_FILE
    if not source.is_file():
        raise FileNotFoundError(f"{source} does not exist: run the benchmark first")
    assets = target.parent / target.stem
    assets.mkdir(parents=True, exist_ok=True)
    for png in sorted((run_dir / PLOTS_DIR).glob("*")):
        if png.suffix in (".png", ".svg"):
            with atomic_path(assets / png.name) as tmp:
                shutil.copyfile(png, tmp)
    text = source.read_text(encoding="utf-8").replace(f"]({PLOTS_DIR}/", f"]({assets.name}/")
    atomic_write_text(target, text)
    return target



"""mtf-bench (or python -m mtf_bench): run a benchmark preset, resume it, report it.

Examples:

    mtf-bench smoke                                   # CI check of the whole pipeline (< 2 min)
    mtf-bench quick                                   # the README's main job: a sanity run (~20 min, 2 CPU cores)
    mtf-bench standard                                # published results: 5 seeds, tuned (~9 h, 2 cores; resumable)
    mtf-bench standard --records records/standard     # the same, its records kept in the repo as jobs finish
    mtf-bench paper --device cuda:0                   # the paper's sizes, on a GPU machine
    mtf-bench quick --set agents.n_steps=500 --agents iql,integrated_rl --seeds 0
    mtf-bench quick --config my_overrides.toml --workers 4
    mtf-bench quick --executor ray --ray-address auto # the same jobs on a Ray cluster
    mtf-bench quick --report-only --publish docs/results.md
    mtf-bench standard --tune                         # rerun the hyperparameter search, then the grid
    mtf-bench quick --env-id MTFSession-v0            # the first env version (same as --set env_id=MTFSession-v0)

Every preset benchmarks MTFSession-v1 (the default env version); --env-id MTFSession-v0 runs the first version, with
its results in <results_dir>/<preset>-v0/ so the two versions' runs never overwrite each other. The preset's [env]
table overrides fields of that version's config (MTFSessionV1Config or MTFSessionConfig); an unknown field is an error.

Rerunning the same command resumes: finished jobs are skipped. Exit status: 0 all jobs finished, 1 some job failed
(listed at the end; its traceback is in its directory), 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from mtf_bench.harness.presets import Preset, PresetError, available_presets, load_preset, preset_to_dict
from mtf_gym.envs.versions import DEFAULT_SESSION_ENV_ID, SESSION_ENV_IDS

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtf-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("preset", nargs="?", default="quick",
                        help=f"preset name (default quick; available: {', '.join(available_presets())})")
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="TOML file of overrides (same layout as benchmarks/presets/*.toml); repeatable")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                        help="override one setting, e.g. agents.n_steps=500 or collection.recipes=uniform,gaussian "
                             "(values are TOML: 500, 0.1, true, [1, 2], \"text\"); repeatable, applied after --config")
    group = parser.add_argument_group("shortcuts (applied last)")
    group.add_argument("--agents", help="comma-separated agent names (agents.names); a subset of a preset keeps the "
                       "whole preset's job identities, so its finished jobs count for the whole preset")
    group.add_argument("--seeds", help="comma-separated seeds (seeds)")
    group.add_argument("--workers", type=int, help="parallel jobs; 0 runs jobs in this process (workers)")
    group.add_argument("--executor", choices=("local", "ray"), help="local process pool or a Ray cluster")
    group.add_argument("--ray-address", help="Ray cluster address, e.g. auto or ray://head:10001")
    group.add_argument("--device", help="torch device of every torch agent: cpu, auto (CUDA if available), cuda or "
                                        "cuda:N (device); CUDA without CUDA is an error")
    group.add_argument("--env-id", choices=sorted(SESSION_ENV_IDS),
                       help=f"environment version (env_id; default {DEFAULT_SESSION_ENV_ID})")
    group.add_argument("--results-dir", help="parent directory of the run (results_dir; default results)")
    group.add_argument("--records", metavar="DIR", dest="records_dir",
                       help="keep the run's records in DIR (records_dir): import them first, write each job's "
                            "record as it finishes; a long run then survives the loss of its machine")
    parser.add_argument("--dry-run", action="store_true", help="list the jobs and whether they are done; run nothing")
    parser.add_argument("--show-config", action="store_true", help="print the resolved preset as JSON and exit")
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from existing results")
    parser.add_argument("--tune", action="store_true",
                        help="(re)run the equal hyperparameter search of every learning agent before the grid "
                             "(sets tuning.enabled; earlier search results are discarded)")
    parser.add_argument("--publish", metavar="PATH",
                        help="copy report.md to PATH (e.g. docs/results.md) and its plots next to it")
    parser.add_argument("--import-records", metavar="DIR",
                        help="first copy the finished jobs' records in DIR (from --export-records) into the run, "
                             "then go on as asked (run, --dry-run or --report-only); jobs finished here are kept")
    parser.add_argument("--export-records", metavar="DIR",
                        help="copy the records of every finished job (results, per-user returns, curves; no "
                             "datasets, no models but the exploration centres) to DIR, then exit: a long run "
                             "carried to another machine resumes from them (docs/design.md, 'Carrying a run "
                             "between machines')")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--list", action="store_true", help="list presets and registered agents, then exit")
    return parser


def _shortcut_assignments(args: argparse.Namespace) -> list[str]:
    out = []
    if getattr(args, "tune", False):
        out.append("tuning.enabled=true")
    if args.agents is not None:
        out.append(f"agents.names={json.dumps([a.strip() for a in args.agents.split(',') if a.strip()])}")
    if args.seeds is not None:
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise PresetError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
        out.append(f"seeds={json.dumps(seeds)}")
    for flag, key in (("workers", "workers"), ("executor", "executor"), ("ray_address", "ray_address"),
                      ("device", "device"), ("env_id", "env_id"), ("results_dir", "results_dir"),
                      ("records_dir", "records_dir")):
        value = getattr(args, flag)
        if value is not None:
            out.append(f"{key}={json.dumps(value)}")
    return out


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM behaves like Ctrl-C: the scheduler stops its workers; finished jobs stay finished.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    argv_list = list(sys.argv[1:] if argv is None else argv)
    if args.list:
        from mtf_agents.registry import get_registry

        print("presets: " + ", ".join(available_presets()))
        for spec in get_registry():
            print(f"  {spec.name:<14} {spec.kind:<8} {spec.source:<10} {spec.summary}")
        return 0
    try:
        preset = load_preset(args.preset, config_files=tuple(args.config),
                             assignments=(*args.assignments, *_shortcut_assignments(args)))
        if args.show_config:
            print(json.dumps(preset_to_dict(preset), indent=2))
            return 0
        from mtf_bench.harness.runner import check_device, describe_plan, plan, run_preset

        if args.import_records and args.export_records:
            raise PresetError("--import-records and --export-records go in separate calls (import, run, export)")
        if args.import_records or (preset.records_dir and Path(preset.records_dir).is_dir()):
            from mtf_bench.harness.records import import_records

            for source in dict.fromkeys(s for s in (args.import_records, preset.records_dir) if s):
                try:
                    import_records(source, preset.run_dir)
                except FileNotFoundError as exc:
                    raise PresetError(str(exc)) from None
        if args.export_records:
            from mtf_bench.harness.records import export_records

            export_records(preset, plan(preset), args.export_records)
            return 0
        if args.dry_run:
            rows = describe_plan(preset)
            for row in rows:
                status = "done" if row["done"] else "stale" if row.get("stale") else "todo"
                print(f"{status:<5} {row['kind']:<8} {row['job']:<48} {row['dir']}")
                if row.get("stale"):  # finished with an agent config the current code no longer builds
                    print("      " + ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in row["stale"].items()))
            print(f"{sum(not r['done'] for r in rows)} of {len(rows)} job(s) to run")
            return 0
        grid = plan(preset)  # checks agent names and every agent's settings before anything runs
        if not args.report_only:
            check_device(preset)  # CUDA asked for without CUDA: an error naming the fix, never a silent CPU run
        if preset.executor == "ray" and not args.report_only:
            from mtf_bench.harness.executors import require_ray

            try:
                require_ray()
            except RuntimeError as exc:
                raise PresetError(str(exc)) from exc
        if args.report_only:
            from mtf_bench.harness.report import build_report

            path = build_report(preset, grid, command=shlex.join(["mtf-bench", *argv_list]))
            print(f"report: {path}")
            if args.publish:
                _publish(preset.run_dir, args.publish)
            return 0
    except PresetError as exc:
        parser.error(str(exc))  # exits with status 2 and the usage line

    if args.tune:
        _discard_searches(preset)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    start = time.perf_counter()
    try:
        summary = run_preset(preset, progress=not args.no_progress, command=shlex.join(["mtf-bench", *argv_list]),
                             grid=grid)
    except KeyboardInterrupt:
        print(f"\ninterrupted after {time.perf_counter() - start:.0f}s; finished jobs are kept: rerun the same "
              "command to resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"{len(summary.ran)} job(s) ran, {len(summary.skipped)} already done, {len(summary.failed)} failed; "
          f"wall time {summary.stage_seconds.get('total_s', 0.0):.0f}s")
    if summary.report is not None:
        print(f"report: {summary.report}")
    if args.publish and summary.report is not None:
        _publish(summary.run_dir, args.publish)
    if summary.failed:
        print("failed jobs (traceback.txt in each job directory):", file=sys.stderr)
        for outcome in summary.failed:
            last = (outcome.error or "").strip().splitlines()[-1:] or ["?"]
            print(f"  {outcome.job_id}: {last[0]}", file=sys.stderr)
        return 1
    return 0


def _discard_searches(preset: Preset) -> None:
    """``--tune``: forget finished searches and their kept trials, so the runner redoes them (their validation
    dataset is kept)."""
    import shutil

    from mtf_bench.harness.grid import tuning_jobs
    from mtf_bench.harness.jobs import RESULT_FILE
    from mtf_bench.harness.runner import agent_kinds
    from mtf_bench.harness.tuning import TRIALS_DIR

    for job in tuning_jobs(preset, agent_kinds(preset.agents.names))[1]:
        if job.agent not in preset.agents.names:
            continue  # a search the selected agents' data depends on (IntegratedRL for progressive data) is kept
        (job.directory / RESULT_FILE).unlink(missing_ok=True)
        shutil.rmtree(job.directory / TRIALS_DIR, ignore_errors=True)


def _publish(run_dir: Path, target: str) -> None:
    from mtf_bench.harness.report import publish

    path = publish(run_dir, target)
    print(f"published: {path} (plots in {path.parent / path.stem}/)")


if __name__ == "__main__":
    raise SystemExit(main())

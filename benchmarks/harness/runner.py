"""The scheduler: run a preset's grid with resume, dependencies, parallel workers and failure isolation.

Datasets are submitted first; a training job is submitted as soon as the datasets it reads exist, so training starts
while the slow progressive collection is still running. At most ``workers`` jobs are in flight, so jobs start in
grid order (collections before training) instead of queueing inside the pool. Finished jobs (a valid
``result.json`` with the same identity hash) are skipped. After the grid, the report stage aggregates every result.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mtf_bench.harness.executors import make_executor
from mtf_bench.harness.grid import DatasetJob, Grid, TrainJob, TuneJob, build_grid, tuning_jobs
from mtf_bench.harness.jobs import JobOutcome, is_done, job_status, run_job
from mtf_bench.harness.presets import Preset, PresetError, preset_to_dict
from mtf_bench.harness.records import centre_jobs, export_job, export_records, export_slate_job, import_records
from mtf_gym.atomic import atomic_write_json, clean_temporaries

__all__ = ["RunSummary", "agent_kinds", "plan", "run_preset"]

Job = DatasetJob | TrainJob | TuneJob


@dataclass
class RunSummary:
    """What a run did: outcome per job, stage wall times, and where the report is."""

    run_dir: Path
    outcomes: dict[str, JobOutcome] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    report: Path | None = None
    grid: Grid | None = None  # the grid that ran (planned with the tuning winners)

    @property
    def failed(self) -> list[JobOutcome]:
        return [o for o in self.outcomes.values() if o.status == "failed"]

    @property
    def ran(self) -> list[JobOutcome]:
        return [o for o in self.outcomes.values() if o.status == "ok"]

    @property
    def skipped(self) -> list[JobOutcome]:
        return [o for o in self.outcomes.values() if o.status == "skipped"]


def agent_kinds(names: Sequence[str]) -> dict[str, str]:
    """``{name: "offline" | "online"}`` from the agent registry; an unknown name raises :class:`PresetError`."""
    from mtf_agents.registry import get_registry

    registry = get_registry()
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise PresetError(f"unknown agent(s) {unknown} in agents.names; known agents: {', '.join(registry.names())}")
    for failed in registry.failed_plugins:
        print(f"warning: agent plug-in {failed.entry_point} ({failed.distribution}) skipped: {failed.error}")
    return {n: registry.get(n).kind for n in names}


def check_device(preset: Preset) -> str:
    """The torch device the preset's agents will use; CUDA asked for where torch has none is a PresetError
    naming the fix (``--device cpu`` or ``--device auto``), before any job starts."""
    from mtf_agents.base import resolve_device

    try:
        return resolve_device(preset.device)
    except ValueError as exc:
        raise PresetError(str(exc)) from exc


def check_env_id(preset: Preset) -> None:
    """``preset.env_id`` must be a registered Gymnasium id (``import mtf_gym`` registers the MTF ones)."""
    import gymnasium

    import mtf_gym  # noqa: F401  (registers the environments)

    if preset.env_id not in gymnasium.registry:
        known = sorted(k for k in gymnasium.registry if k.startswith("MTF"))
        raise PresetError(f"env_id must be a registered environment id, one of {known}, got {preset.env_id!r}")


def plan(preset: Preset) -> Grid:
    """The preset's grid, with the env id and every agent's config overrides checked before anything runs."""
    from mtf_bench.harness.jobs import build_agent_for

    check_env_id(preset)
    from mtf_bench.harness.tuning import winners

    kinds = agent_kinds(preset.agents.names)
    grid = build_grid(preset, kinds, winners(preset, tuning_jobs(preset, kinds)[1]))
    checked: set[str] = set()
    for job in grid.trains:
        key = f"{job.agent}:{sorted(job.overrides.items())}:{sorted(job.common.items())}"
        if key in checked:
            continue
        checked.add(key)
        try:
            build_agent_for(job.agent, job.overrides, job.common)
        except (TypeError, ValueError) as exc:
            raise PresetError(f"agent {job.agent!r} rejects its settings {job.overrides}: {exc}") from exc
    return grid


def _agents_without_field(names: Sequence[str], field_name: str) -> list[str]:
    import dataclasses

    from mtf_agents.registry import get_registry

    registry = get_registry()
    return [n for n in names if field_name not in {f.name for f in dataclasses.fields(registry.get(n).config_class)}]


def _failure(job: Job, exc: BaseException) -> JobOutcome:
    return JobOutcome(job.job_id, "failed", 0.0, "".join(traceback.format_exception(exc)))


def _run_jobs(preset: Preset, jobs: Sequence[Job], summary: RunSummary, *, progress: bool,
              echo: Callable[[str], None], stage: str) -> None:
    """Run (or skip, when done) ``jobs`` on the preset's executor, a job only after the jobs it needs; outcomes go
    into ``summary``. A failed job fails the jobs that need it and nothing else."""
    executor = make_executor(preset.executor, preset.workers, ray_address=preset.ray_address, device=preset.device)
    echo(f"{preset.name} {stage}: {len(jobs)} job(s) -> {preset.run_dir} ({executor.name}, "
         f"{executor.workers} worker(s))")
    bar = tqdm(total=len(jobs), unit="job", disable=not progress, dynamic_ncols=True)
    centres = centre_jobs(jobs)
    finished: set[str] = set()
    failed: set[str] = set()
    queue: list[Job] = []
    skipped = 0
    for job in jobs:
        if is_done(job):
            summary.outcomes[job.job_id] = JobOutcome(job.job_id, "skipped", 0.0)
            finished.add(job.job_id)
            skipped += 1
            bar.update(1)
        else:
            queue.append(job)
    if skipped:
        echo(f"resuming: {skipped} job(s) already done")
    in_flight: dict[cf.Future, Job] = {}
    interrupted = False

    def needs(job: Job) -> set[str]:
        return set(getattr(job, "needs", ()))

    try:
        while queue or in_flight:
            # Jobs whose dataset failed can never run: record them as failed too.
            for job in [j for j in queue if needs(j) & failed]:
                queue.remove(job)
                missing = sorted(needs(job) & failed)
                summary.outcomes[job.job_id] = JobOutcome(job.job_id, "failed", 0.0,
                                                          f"not run: dataset job(s) {missing} failed")
                failed.add(job.job_id)
                bar.update(1)
            while queue and len(in_flight) < max(1, executor.workers):
                ready = next((j for j in queue if needs(j) <= finished), None)
                if ready is None:
                    break
                queue.remove(ready)
                bar.set_postfix_str(ready.job_id, refresh=False)
                in_flight[executor.submit(run_job, ready)] = ready
            if not in_flight:
                if queue:  # nothing runnable and nothing running: a dependency is missing from the grid
                    raise RuntimeError(f"jobs {[j.job_id for j in queue]} wait for datasets that are not scheduled")
                break
            done, _ = cf.wait(list(in_flight), return_when=cf.FIRST_COMPLETED)
            for future in done:
                job = in_flight.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # the worker died (e.g. killed, out of memory): record and go on
                    outcome = _failure(job, exc)
                    if isinstance(exc, BrokenProcessPool):
                        # A dead worker breaks the whole pool (its other jobs fail too, a rerun retries them):
                        # start a fresh pool so the remaining jobs still run.
                        executor.shutdown(cancel=True)
                        executor = make_executor(preset.executor, preset.workers, ray_address=preset.ray_address,
                                                 device=preset.device)
                summary.outcomes[job.job_id] = outcome
                (finished if outcome.status == "ok" else failed).add(job.job_id)
                if outcome.status != "ok":
                    echo(f"FAILED {job.job_id}: {(outcome.error or '').strip().splitlines()[-1:]}")
                elif preset.records_dir:
                    _keep_record(functools.partial(export_job, job, preset.records_dir, centres), job.job_id, echo)
                bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        bar.close()
        executor.shutdown(cancel=interrupted)


def _keep_record(export: Callable[[], Any], name: str, echo: Callable[[str], None]) -> None:
    # A record that cannot be written (a full disk, say) must not stop the run: the job's results are on disk and
    # the final export (or --export-records) tries again.
    try:
        export()
    except OSError as exc:
        echo(f"warning: could not write the record of {name}: {exc}")


def run_preset(
    preset: Preset,
    *,
    progress: bool = True,
    report: bool = True,
    job_filter: Callable[[Job], bool] | None = None,
    echo: Callable[[str], None] = print,
    command: str | None = None,
    grid: Grid | None = None,
) -> RunSummary:
    """Run (or resume) every job of ``preset``, then write the report; returns what happened.

    With ``tuning.enabled`` the hyperparameter search runs first (its own stage) and the grid is planned with its
    winners.

    Args:
        preset: the run.
        progress: tqdm progress bar over jobs.
        report: build ``runs.csv``/``runs.json``, plots and ``report.md`` after the grid.
        job_filter: run only the jobs it accepts (their dataset dependencies are added automatically).
        echo: where status lines go.
        command: the command line shown in the report (default: this process's arguments).
        grid: the preset's grid if the caller already built it with :func:`plan` (re-planned after tuning).
    """
    stage_start = time.perf_counter()
    check_device(preset)
    run_dir = preset.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    removed = clean_temporaries(run_dir)
    if removed:
        echo(f"removed {removed} temporary file(s) left by an interrupted run")
    if preset.records_dir and Path(preset.records_dir).is_dir():
        import_records(preset.records_dir, run_dir, echo=echo)
    atomic_write_json(run_dir / "config.json", preset_to_dict(preset))
    summary = RunSummary(run_dir=run_dir)
    if preset.device != "cpu":
        ignoring = _agents_without_field(preset.agents.names, "device")
        if ignoring:
            echo(f"warning: device={preset.device!r} is ignored by {', '.join(ignoring)} (no torch model: no "
                 "'device' config field)")

    # The slate section is serial (one job at a time): it runs in a process of its own beside the tuning and grid
    # jobs, so a core does not sit idle while it finishes after them (in-process runs, workers = 0, keep it last).
    slate_run = (_SlateProcess.start(preset, run_dir / "slate", echo)
                 if preset.slate.enabled and job_filter is None and preset.workers > 0 else None)
    try:
        _tune_and_run_grid(preset, summary, job_filter, grid, progress, echo)
    except BaseException:
        if slate_run is not None:
            slate_run.stop()
        raise
    grid = summary.grid

    if preset.slate.enabled and job_filter is None:  # the slate section: its own resumable jobs under slate/
        from mtf_bench.harness.slate import run_slate_section

        slate_start = time.perf_counter() if slate_run is None else slate_run.started
        if slate_run is not None:
            slate_run.join(echo)
        # Skips every job the side process finished; retries (here) any it did not; writes the tables and figures.
        slate = run_slate_section(preset.slate, run_dir / "slate", echo=echo,
                                  on_finished=_slate_recorder(run_dir / "slate", preset.records_dir, echo))
        summary.outcomes.update({f"slate/{name}": JobOutcome(f"slate/{name}", "failed", 0.0, error)
                                 for name, error in slate.failed.items()})
        summary.stage_seconds["slate_wall_s"] = time.perf_counter() - slate_start

    if preset.records_dir:  # every finished job's record, the ones resumed from elsewhere and the caches included
        _keep_record(lambda: export_records(preset, grid, preset.records_dir, echo=echo), "the run", echo)

    if report:
        from mtf_bench.harness.report import build_report

        report_start = time.perf_counter()
        summary.report = build_report(preset, grid, wall=summary.stage_seconds, command=command)
        summary.stage_seconds["report_s"] = time.perf_counter() - report_start
    summary.stage_seconds["total_s"] = time.perf_counter() - stage_start
    return summary


def _tune_and_run_grid(preset: Preset, summary: RunSummary, job_filter: Callable[[Job], bool] | None,
                       grid: Grid | None, progress: bool, echo: Callable[[str], None]) -> None:
    """The tuning stage (when enabled), then the grid planned with its winners; sets ``summary.grid``."""
    validation, searches = tuning_jobs(preset, agent_kinds(preset.agents.names))
    if searches:
        tuning_start = time.perf_counter()
        _run_jobs(preset, [*validation, *searches], summary, progress=progress, echo=echo, stage="tuning")
        summary.stage_seconds["tuning_wall_s"] = time.perf_counter() - tuning_start
        grid = plan(preset)  # with the winners
    grid = grid or plan(preset)

    def datasets_for(trains: list[TrainJob]) -> list[DatasetJob]:
        needed = {need for j in trains for need in j.needs}
        return [d for d in grid.datasets if job_filter is None or job_filter(d) or d.job_id in needed]

    trains = [j for j in grid.trains if job_filter is None or job_filter(j)]
    datasets = datasets_for(trains)
    # A dataset explored around a trained policy needs that policy's training job (and, in turn, its datasets).
    centre_jobs = {need for d in datasets for need in d.needs} - {j.job_id for j in trains}
    if centre_jobs:
        trains = [j for j in grid.trains if j.job_id in centre_jobs] + trains
        datasets = datasets_for(trains)
    grid_start = time.perf_counter()
    _run_jobs(preset, [*datasets, *trains], summary, progress=progress, echo=echo, stage="grid")
    summary.stage_seconds["grid_wall_s"] = time.perf_counter() - grid_start
    summary.grid = grid


def _slate_recorder(out: Path, records_dir: str, echo: Callable[[str], None]) -> Callable[[str], None] | None:
    """What the slate section calls as each of its jobs finishes: write its record (none without a records_dir)."""
    if not records_dir:
        return None
    return lambda name: _keep_record(lambda: export_slate_job(out, name, records_dir), f"slate/{name}", echo)


def _slate_process_main(section: Any, out: str, log_path: str, records_dir: str = "") -> None:
    """Entry point of the slate side process: the section's jobs, one torch thread (the grid's workers use the
    other cores), status lines appended to ``log_path``, each finished job's record written to ``records_dir``."""
    import torch

    from mtf_bench.harness.slate import run_slate_section

    torch.set_num_threads(1)
    with open(log_path, "a", encoding="utf-8") as log:
        def echo(line: str) -> None:
            log.write(f"[{time.strftime('%H:%M:%S')}] {line}\n")
            log.flush()

        run_slate_section(section, out, echo=echo, on_finished=_slate_recorder(Path(out), records_dir, echo))


@dataclass
class _SlateProcess:
    """The slate section running in a spawned process beside the grid (its jobs write atomically, so stopping it
    loses at most the job in progress)."""

    process: Any
    log_path: Path
    started: float

    @classmethod
    def start(cls, preset: Preset, out: Path, echo: Callable[[str], None]) -> _SlateProcess:
        import multiprocessing

        out.mkdir(parents=True, exist_ok=True)
        log_path = out / "log.txt"
        process = multiprocessing.get_context("spawn").Process(
            target=_slate_process_main, args=(preset.slate, str(out), str(log_path), preset.records_dir),
            name="mtf-bench-slate")
        started = time.perf_counter()
        process.start()
        echo(f"slate section: running beside the other jobs (log: {log_path})")
        return cls(process, log_path, started)

    def join(self, echo: Callable[[str], None]) -> None:
        if self.process.is_alive():
            echo(f"slate section: waiting for it to finish (log: {self.log_path})")
        self.process.join()
        if self.process.exitcode != 0:
            echo(f"slate section: its process exited with code {self.process.exitcode}; unfinished jobs run now")

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join()


def describe_plan(preset: Preset) -> list[dict[str, Any]]:
    """One row per job (id, kind, directory, done?) for ``--dry-run``, the slate section's jobs included."""
    grid = plan(preset)
    validation, searches = tuning_jobs(preset, agent_kinds(preset.agents.names))
    rows = [{"job": j.job_id, "kind": j.job_kind, "done": done, "stale": stale, "dir": str(j.directory)}
            for j in [*validation, *searches, *grid.datasets, *grid.trains] for done, stale in [job_status(j)]]
    if preset.slate.enabled:
        from mtf_bench.harness.slate import slate_job_status

        out = preset.run_dir / "slate"
        rows += [{"job": f"slate/{name}", "kind": "slate", "done": done, "dir": str(out / name)}
                 for name, done in slate_job_status(preset.slate, out)]
    return rows

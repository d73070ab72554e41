"""A run's records: the small files of its finished jobs, without its data, so that a preset longer than one sitting
(``standard`` is ~8 h on 2 CPU cores) can be carried between machines, resumed anywhere and reported anywhere.

``mtf-bench standard --export-records DIR`` copies, for every finished job of the preset's plan:

- training jobs: ``result.json``, ``config.json``, ``log.txt``, ``sessions.npz`` (the A/B users' returns),
  ``curve.npz`` (the learning curve) and the training-data saturation cache (computed here for progressive data, so
  the report never needs the model); ``model/`` only where the policy centres a dataset's exploration (a rerun of
  that dataset loads it);
- tuning jobs: their ``result.json``, ``config.json`` and ``log.txt``;
- datasets: ``result.json``, ``config.json``, ``datasheet.json`` and ``log.txt``, but not the data: collection is
  deterministic in its seed, so a resumed run collects a missing dataset again, and the recorded content hash makes
  any difference an error (:func:`mtf_bench.harness.jobs.run_job`), never silently different data;
- the slate section: every finished job's ``result.json``.

``mtf-bench standard --import-records DIR`` copies them into the run directory before the run: a job already
finished there is kept, any other job directory takes the record's files. The layout below ``DIR`` is the run
directory's own, so a record is also readable by hand.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mtf_bench.harness.grid import DatasetJob, Grid, TrainJob, TuneJob
from mtf_bench.harness.jobs import (
    CONFIG_FILE,
    CURVE_FILE,
    LOG_FILE,
    MODEL_DIR,
    RESULT_FILE,
    SESSIONS_FILE,
    finished_result,
)
from mtf_bench.harness.presets import Preset
from mtf_gym.atomic import atomic_dir, read_json
from mtf_gym.datasets.working_copy import DATASHEET_FILE

__all__ = ["RecordSummary", "export_records", "import_records"]

_TRAIN_FILES = (RESULT_FILE, CONFIG_FILE, LOG_FILE, SESSIONS_FILE, CURVE_FILE)
_TUNE_FILES = (RESULT_FILE, CONFIG_FILE, LOG_FILE)
_DATASET_FILES = (RESULT_FILE, CONFIG_FILE, DATASHEET_FILE, LOG_FILE)


@dataclass(frozen=True)
class RecordSummary:
    """What an export or import moved: job directories per kind, those left out, and the bytes written."""

    copied: dict[str, int]
    kept: int
    bytes: int

    def line(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in self.copied.items() if n)
        return f"{sum(self.copied.values())} job record(s) ({kinds or 'none'}), {self.kept} kept, " \
               f"{self.bytes / 1e6:.1f} MB"


def _record_files(preset: Preset, grid: Grid) -> Iterable[tuple[str, Path, tuple[str, ...]]]:
    """``(kind, job directory, files to carry)`` of every finished job of ``preset`` (``grid`` is its plan)."""
    from mtf_bench.harness.grid import tuning_jobs
    from mtf_bench.harness.results import TRAINING_SATURATION_FILE, training_saturation
    from mtf_bench.harness.runner import agent_kinds

    validation, searches = tuning_jobs(preset, agent_kinds(preset.agents.names))
    centres = {need for d in grid.datasets for need in d.needs}
    jobs: list[DatasetJob | TrainJob | TuneJob] = [*validation, *searches, *grid.datasets, *grid.trains]
    for job in jobs:
        if finished_result(job) is None:
            continue
        if isinstance(job, TrainJob):
            if job.agent_kind == "offline":
                training_saturation(job)  # cached in the job directory (None, and no file, for non-progressive data)
            files = (*_TRAIN_FILES, TRAINING_SATURATION_FILE) + ((MODEL_DIR,) if job.job_id in centres else ())
            yield "train", job.directory, files
        elif isinstance(job, TuneJob):
            yield "tune", job.directory, _TUNE_FILES
        else:
            yield "dataset", job.directory, _DATASET_FILES
    if preset.slate.enabled:
        from mtf_bench.harness.slate import slate_job_status

        out = preset.run_dir / "slate"
        for name, done in slate_job_status(preset.slate, out):
            if done:
                yield "slate", out / name, (RESULT_FILE,)


def _copy_job(source: Path, target: Path, names: Iterable[str]) -> int:
    """Copy the existing entries ``names`` of ``source`` into a fresh ``target`` (replaced atomically); bytes."""
    total = 0
    with atomic_dir(target) as tmp:
        for name in names:
            path = source / name
            if path.is_dir():
                shutil.copytree(path, tmp / name)
                total += sum(p.stat().st_size for p in (tmp / name).rglob("*") if p.is_file())
            elif path.is_file():
                shutil.copy2(path, tmp / name)
                total += path.stat().st_size
    return total


def export_records(preset: Preset, grid: Grid, dest: str | Path, *,
                   echo: Callable[[str], None] = print) -> RecordSummary:
    """Copy the records of every finished job of ``preset`` (planned as ``grid``) to ``dest``, in the run
    directory's layout. A record already in ``dest`` is replaced by the run's (the run is the newer); records of
    jobs the run has not finished are left as they are."""
    dest = Path(dest)
    run_dir = preset.run_dir
    copied = {"dataset": 0, "tune": 0, "train": 0, "slate": 0}
    written = 0
    for kind, directory, files in _record_files(preset, grid):
        written += _copy_job(directory, dest / directory.relative_to(run_dir), files)
        copied[kind] += 1
    summary = RecordSummary(copied, 0, written)
    echo(f"exported {summary.line()} -> {dest}")
    return summary


def import_records(source: str | Path, run_dir: str | Path, *, echo: Callable[[str], None] = print) -> RecordSummary:
    """Copy the job records under ``source`` (written by :func:`export_records`) into ``run_dir``; a job that has
    a finished ``result.json`` of the same identity in ``run_dir`` already keeps it."""
    source, run_dir = Path(source), Path(run_dir)
    if not source.is_dir():
        raise FileNotFoundError(f"--import-records: {source} is not a directory of exported records")
    copied = {"dataset": 0, "tune": 0, "train": 0, "slate": 0}
    kept = written = 0
    for result in sorted(source.rglob(RESULT_FILE)):
        directory = result.parent
        relative = directory.relative_to(source)
        kind = {"datasets": "dataset", "tuning": "tune", "jobs": "train", "slate": "slate"}.get(relative.parts[0])
        if kind is None:
            continue
        target = run_dir / relative
        here, there = read_json(target / RESULT_FILE), read_json(result)
        if _finished(here) and _same_identity(here, there):
            kept += 1
            continue
        written += _copy_job(directory, target, [p.name for p in directory.iterdir()])
        copied[kind] += 1
    summary = RecordSummary(copied, kept, written)
    echo(f"imported {summary.line()} <- {source}")
    return summary


def _finished(result: object) -> bool:
    # Slate results carry no status (they are written only on success); grid results say "ok".
    return isinstance(result, dict) and result.get("status", "ok") == "ok"


def _same_identity(a: object, b: object) -> bool:
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return False
    key = "config_hash" if "config_hash" in b else "identity_hash"
    return a.get(key) == b.get(key)

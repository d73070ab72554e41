"""A run's records: the small files of its finished jobs, without its data, so that a preset longer than one sitting
(``standard`` is ~9 h on 2 CPU cores) can be carried between machines, resumed anywhere and reported anywhere.

``mtf-bench standard --export-records DIR`` copies, for every finished job of the preset's plan:

- training jobs: ``result.json``, ``config.json``, ``log.txt``, ``sessions.npz`` (the A/B users' returns),
  ``curve.npz`` (the learning curve) and the training-data saturation cache (computed here for progressive data, so
  the report never needs the model); ``model/`` only where the policy centres a dataset's exploration (a rerun of
  that dataset loads it);
- tuning jobs: their ``result.json``, ``config.json`` and ``log.txt``, and the finished trials of a search still
  under way (``trials/``: a resumed search skips them);
- datasets: ``result.json``, ``config.json``, ``datasheet.json`` and ``log.txt``, but not the data: collection is
  deterministic in its seed, so a resumed run collects a missing dataset again, and the recorded content hash makes
  any difference an error (:func:`mtf_bench.harness.jobs.run_job`), never silently different data;
- the slate section: every finished job's ``result.json``.

``mtf-bench standard --import-records DIR`` copies them into the run directory before the run: a job already
finished there is kept, any other job directory takes the record's files. ``--records DIR`` (the preset's
``records_dir``) does both: it imports, then writes each job's record as the job finishes (:func:`export_job`; the
slate section's too), so a machine lost mid-run loses only the jobs in flight. The layout below ``DIR`` is the run
directory's own, so a record is also readable by hand.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
from mtf_gym.atomic import atomic_dir, atomic_path, read_json
from mtf_gym.datasets.working_copy import DATASHEET_FILE

__all__ = ["RecordSummary", "centre_jobs", "export_job", "export_records", "export_slate_job", "import_records"]

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


def centre_jobs(jobs: Iterable[DatasetJob | TrainJob | TuneJob]) -> set[str]:
    """The training jobs among the needs of the datasets in ``jobs``: policies a dataset explores around, whose
    model travels with their record."""
    return {need for job in jobs if isinstance(job, DatasetJob) for need in job.needs}


def _job_files(job: DatasetJob | TrainJob | TuneJob, centres: set[str]) -> tuple[str, tuple[str, ...]]:
    """``(kind, files to carry)`` of a finished job."""
    if isinstance(job, TrainJob):
        from mtf_bench.harness.results import TRAINING_SATURATION_FILE, training_saturation

        if job.agent_kind == "offline":
            training_saturation(job)  # cached in the job directory (None, and no file, for non-progressive data)
        return "train", (*_TRAIN_FILES, TRAINING_SATURATION_FILE) + ((MODEL_DIR,) if job.job_id in centres else ())
    if isinstance(job, TuneJob):
        return "tune", _TUNE_FILES
    return "dataset", _DATASET_FILES


def export_job(job: DatasetJob | TrainJob | TuneJob, dest: str | Path, centres: set[str]) -> int:
    """Write the record of the finished ``job`` under ``dest`` (its run directory's layout); bytes written, 0 if
    the job is not finished. ``centres``: :func:`centre_jobs` of the run's plan."""
    if finished_result(job) is None:
        return 0
    run_dir = Path(job.run_dir)
    return _copy_job(job.directory, Path(dest) / job.directory.relative_to(run_dir), _job_files(job, centres)[1])


def export_slate_job(slate_dir: str | Path, name: str, dest: str | Path) -> int:
    """Write the record of the finished slate job ``name`` of the section in ``slate_dir`` under ``dest``."""
    source = Path(slate_dir) / name
    return _copy_job(source, Path(dest) / "slate" / name, (RESULT_FILE,))


def _record_files(preset: Preset, grid: Grid) -> Iterable[tuple[str, Path, tuple[str, ...]]]:
    """``(kind, job directory, files to carry)`` of every finished job of ``preset`` (``grid`` is its plan)."""
    from mtf_bench.harness.grid import tuning_jobs
    from mtf_bench.harness.runner import agent_kinds

    validation, searches = tuning_jobs(preset, agent_kinds(preset.agents.names))
    centres = centre_jobs(grid.datasets)
    for job in [*validation, *searches, *grid.datasets, *grid.trains]:
        if finished_result(job) is not None:
            kind, files = _job_files(job, centres)
            yield kind, job.directory, files
    if preset.slate.enabled:
        from mtf_bench.harness.slate import slate_job_status

        out = preset.run_dir / "slate"
        for name, done in slate_job_status(preset.slate, out):
            if done:
                yield "slate", out / name, (RESULT_FILE,)


def _up_to_date(source: Path, target: Path, names: Iterable[str]) -> bool:
    """Whether ``target`` already holds the record of ``source``: the same ``result.json`` and every entry."""
    result = target / RESULT_FILE
    if not result.is_file() or not (source / RESULT_FILE).is_file() or \
            result.read_bytes() != (source / RESULT_FILE).read_bytes():
        return False
    return all((target / name).exists() for name in names if (source / name).exists())


def _copy_job(source: Path, target: Path, names: Iterable[str]) -> int:
    """Copy the existing entries ``names`` of ``source`` into a fresh ``target`` (replaced atomically), unless it is
    already there; bytes written."""
    names = tuple(names)
    if _up_to_date(source, target, names):
        return 0
    total = 0
    with atomic_dir(target) as tmp:
        for name in names:
            path = source / name
            if path.is_dir():
                shutil.copytree(path, tmp / name)
                total += sum(p.stat().st_size for p in (tmp / name).rglob("*") if p.is_file())
            elif path.suffix == ".npz":  # the same arrays, compressed: float32-derived returns shrink by ~40%
                with np.load(path) as arrays, open(tmp / name, "wb") as stream:
                    np.savez_compressed(stream, **{key: arrays[key] for key in arrays.files})
                total += (tmp / name).stat().st_size
            elif path.is_file():
                shutil.copy2(path, tmp / name)
                total += path.stat().st_size
    return total


def export_records(preset: Preset, grid: Grid, dest: str | Path, *,
                   echo: Callable[[str], None] = print) -> RecordSummary:
    """Copy the records of every finished job of ``preset`` (planned as ``grid``) to ``dest``, in the run
    directory's layout. A record already in ``dest`` is replaced by the run's (the run is the newer) unless it is the
    same (counted as kept); records of jobs the run has not finished are left as they are."""
    dest = Path(dest)
    run_dir = preset.run_dir
    copied = {"dataset": 0, "tune": 0, "train": 0, "slate": 0}
    kept = written = 0
    for kind, directory, files in _record_files(preset, grid):
        size = _copy_job(directory, dest / directory.relative_to(run_dir), files)
        written += size
        copied[kind] += size > 0
        kept += size == 0
    written += _copy_trials(run_dir, dest, done_here=lambda d: finished_result_json(d) is not None)
    summary = RecordSummary(copied, kept, written)
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
    written += _copy_trials(source, run_dir, done_here=lambda d: finished_result_json(run_dir / d.relative_to(source))
                            is not None)
    summary = RecordSummary(copied, kept, written)
    echo(f"imported {summary.line()} <- {source}")
    return summary


def finished_result_json(directory: Path) -> dict | None:
    """The ``result.json`` of ``directory`` if it records a finished job, else None."""
    result = read_json(directory / RESULT_FILE)
    return result if _finished(result) else None


def _copy_trials(source_run: Path, target_run: Path, done_here: Callable[[Path], bool]) -> int:
    """Copy the kept trials of the searches under ``source_run`` that are not finished (``done_here(directory)``
    false) into ``target_run``, each trial file that is missing there; bytes written."""
    from mtf_bench.harness.tuning import TRIALS_DIR

    written = 0
    for trial in sorted(source_run.glob(f"tuning/*/{TRIALS_DIR}/*.json")):
        search = trial.parent.parent
        if done_here(search):
            continue
        target = target_run / trial.relative_to(source_run)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                shutil.copy2(trial, tmp)
            written += trial.stat().st_size
    return written


def _finished(result: object) -> bool:
    # Slate results carry no status (they are written only on success); grid results say "ok".
    return isinstance(result, dict) and result.get("status", "ok") == "ok"


def _same_identity(a: object, b: object) -> bool:
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return False
    key = "config_hash" if "config_hash" in b else "identity_hash"
    return a.get(key) == b.get(key)

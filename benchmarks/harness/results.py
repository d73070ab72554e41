"""Report stage 1, loading: every job's result as written on disk, nothing computed.

:func:`load_results` reads the training runs (``result.json``, the per-user A/B outcomes ``sessions.npz``, the
learning curve ``curve.npz``, or why the run did not finish) and the dataset jobs' ``result.json``;
:func:`load_datasets` reads the collected datasets themselves (for the exploration analysis). A resumed or partial
run loads what exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtf_bench.harness.grid import TEST_DATASET, Grid, TrainJob
from mtf_bench.harness.jobs import CURVE_FILE, RESULT_FILE, SESSIONS_FILE, TRACEBACK_FILE, is_done, load_job_dataset
from mtf_gym.atomic import read_json
from mtf_gym.evaluation import SessionOutcomes

__all__ = ["Curve", "LoadedResults", "Run", "load_datasets", "load_results"]


@dataclass(frozen=True)
class Curve:
    """A run's learning curve: ``returns[k, i]`` is user ``i``'s session return under checkpoint ``steps[k]``."""

    steps: tuple[int, ...]
    returns: np.ndarray
    user_seed: int


@dataclass(frozen=True)
class Run:
    """One training job and what it produced (``result``/``sessions`` are None unless it finished)."""

    job: TrainJob
    result: dict[str, Any] | None
    sessions: SessionOutcomes | None
    curve: Curve | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.result is not None and self.sessions is not None


@dataclass(frozen=True)
class LoadedResults:
    """Everything the jobs of a grid wrote: training runs in grid order, dataset results by ``(name, seed)``."""

    runs: tuple[Run, ...]
    datasets: dict[tuple[str, int], dict[str, Any]]


def _load_run(job: TrainJob) -> Run:
    result = read_json(job.directory / RESULT_FILE) if is_done(job) else None
    sessions = curve = None
    if result is not None and (job.directory / SESSIONS_FILE).is_file():
        with np.load(job.directory / SESSIONS_FILE) as arrays:
            sessions = SessionOutcomes.from_arrays(arrays)
    if result is not None and (job.directory / CURVE_FILE).is_file():
        with np.load(job.directory / CURVE_FILE) as arrays:
            curve = Curve(tuple(int(s) for s in arrays["steps"]), np.asarray(arrays["returns"], dtype=np.float64),
                          int(arrays["user_seed"]))
    error = None
    if result is None:
        tb = job.directory / TRACEBACK_FILE
        error = tb.read_text(encoding="utf-8").strip().splitlines()[-1] if tb.is_file() else "not run"
    return Run(job, result, sessions, curve, error)


def load_results(grid: Grid) -> LoadedResults:
    """The results of every job of ``grid`` that finished (and the error of every training job that did not)."""
    datasets = {(d.name, d.seed): read_json(d.directory / RESULT_FILE) for d in grid.datasets if is_done(d)}
    return LoadedResults(tuple(_load_run(job) for job in grid.trains), datasets)


def load_datasets(run_dir: str | Path, names: tuple[str, ...], seeds: tuple[int, ...],
                  finished: dict[tuple[str, int], Any]) -> dict[tuple[str, int], Any]:
    """The collected datasets ``(name, seed)`` among ``finished`` (the test set included), as TransitionData."""
    return {(name, seed): load_job_dataset(run_dir, name, seed) for seed in seeds
            for name in (TEST_DATASET, *names) if (name, seed) in finished}

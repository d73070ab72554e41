"""Report stage 1, loading: every job's result as written on disk, nothing computed.

:func:`load_results` reads the training runs (``result.json``, the per-user A/B outcomes ``sessions.npz``, the
learning curve ``curve.npz``, or why the run did not finish) and the dataset jobs' ``result.json``;
:func:`load_datasets` reads the collected datasets themselves (for the exploration analysis). A resumed or partial
run loads what exists.

One measurement is made here rather than inside the jobs, because it needs the saved model and its training data
together: :func:`training_saturation`, the share of a progressive-trained policy's actions at the edge of the band
its own training transitions were explored in (each round's band is centred on the previous round's policy, not on
the baseline the in-job saturation uses). It is computed once per run and kept in the run's directory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtf_bench.harness.grid import TEST_DATASET, Grid, TrainJob
from mtf_bench.harness.jobs import (
    CURVE_FILE,
    MODEL_DIR,
    RESULT_FILE,
    SESSIONS_FILE,
    TRACEBACK_FILE,
    at_band_edge,
    is_done,
    load_job_dataset,
)
from mtf_gym.atomic import atomic_write_json, read_json
from mtf_gym.evaluation import SessionOutcomes

__all__ = ["TRAINING_SATURATION_FILE", "TRAINING_SATURATION_ROWS", "Curve", "LoadedResults", "Run", "load_datasets",
           "load_results", "training_saturation"]

# A run's saturation around its own training data's centres (:func:`training_saturation`), cached in its directory.
TRAINING_SATURATION_FILE = "saturation_training.json"
# States of the training data the measurement uses (a uniform sample, fixed by the run's seed).
TRAINING_SATURATION_ROWS = 4096


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
    training_saturation: dict[str, Any] | None = None

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
    return Run(job, result, sessions, curve, error,
               training_saturation(job) if result is not None and job.agent_kind == "offline" else None)


def training_saturation(job: TrainJob) -> dict[str, Any] | None:
    """Saturation of the finished offline run ``job`` around its training data's own exploration centres, or None
    when its training data is not progressive (there every transition's centre is the baseline fusion, which the
    in-job ``saturation`` already uses).

    On up to :data:`TRAINING_SATURATION_ROWS` training transitions (those the run's final model trained on, as its
    config's ``progressive_data`` says), the share of action entries at or beyond the edge of each transition's own
    recorded band (``centres + [lower, upper]``): the band the actor's penalty is measured against. Computed from the
    saved model once and cached in ``TRAINING_SATURATION_FILE``.
    """
    # Progressive data: its dataset job recorded the centre of every round (no need to load the data to know).
    dataset_result = read_json(Path(job.run_dir) / "datasets" / f"seed{job.seed}" / job.dataset / RESULT_FILE)
    if not dataset_result or "round_centres" not in dataset_result:
        return None
    cached = job.directory / TRAINING_SATURATION_FILE
    # The cache belongs to one finished run: a rerun of the job writes a new result, which invalidates it.
    fingerprint = hashlib.sha256((job.directory / RESULT_FILE).read_bytes()).hexdigest()[:16]
    saved = read_json(cached) if cached.is_file() else None
    if saved is not None and saved.get("result_sha256") == fingerprint:
        return saved.get("saturation")
    from mtf_agents.progressive import progressive_options, round_training_data
    from mtf_agents.registry import load_agent

    agent = load_agent(job.directory / MODEL_DIR, device="cpu")
    data = round_training_data(load_job_dataset(job.run_dir, job.dataset, job.seed), progressive_options(agent)[0])
    rng = np.random.default_rng(job.seed)
    rows = np.sort(rng.choice(len(data), size=min(TRAINING_SATURATION_ROWS, len(data)), replace=False))
    actions = agent.act(np.asarray(data.observations[rows]))
    at_band = at_band_edge(actions, data.centres[rows], data.lower[rows], data.upper[rows])
    out = {"band_edge": float(at_band.mean()), "band_edge_per_dim": at_band.mean(axis=0).tolist(),
           "rows": int(rows.size), "rounds": [int(r["round"]) for r in data.metadata["rounds"]]}
    atomic_write_json(cached, {"result_sha256": fingerprint, "saturation": out})
    return out


def load_results(grid: Grid) -> LoadedResults:
    """The results of every job of ``grid`` that finished (and the error of every training job that did not)."""
    datasets = {(d.name, d.seed): read_json(d.directory / RESULT_FILE) for d in grid.datasets if is_done(d)}
    return LoadedResults(tuple(_load_run(job) for job in grid.trains), datasets)


def load_datasets(run_dir: str | Path, names: tuple[str, ...], seeds: tuple[int, ...],
                  finished: dict[tuple[str, int], Any]) -> dict[tuple[str, int], Any]:
    """The collected datasets ``(name, seed)`` among ``finished`` (the test set included), as TransitionData."""
    return {(name, seed): load_job_dataset(run_dir, name, seed) for seed in seeds
            for name in (TEST_DATASET, *names) if (name, seed) in finished}

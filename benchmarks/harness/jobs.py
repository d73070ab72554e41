"""What one job does, in a worker process: collect a dataset, or train and evaluate one agent.

Both kinds write into their own directory::

    config.json     the job's identity (spec + hash), written first
    log.txt         what the job printed, with timestamps
    result.json     written last and atomically: its presence with a matching hash means "done"
    traceback.txt   only if the job failed (the run goes on; a rerun retries it)

A job never raises into the scheduler: failures come back as a ``JobOutcome`` with the traceback, so one broken
agent cannot stop a grid of a hundred jobs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from mtf_bench.harness.grid import ONLINE, TEST_DATASET, DatasetJob, TrainJob, TuneJob
from mtf_gym.atomic import atomic_dir, atomic_path, atomic_write_json, atomic_write_text, read_json
from mtf_gym.datasets.working_copy import DATA_FILE

__all__ = [
    "CONFIG_FILE",
    "CURVE_FILE",
    "LOG_FILE",
    "MODEL_DIR",
    "RESULT_FILE",
    "SESSIONS_FILE",
    "JobOutcome",
    "at_band_edge",
    "build_agent_for",
    "dataset_seed",
    "finished_result",
    "is_done",
    "job_status",
    "load_job_dataset",
    "run_job",
    "saturation",
    "stale_config_fields",
]

RESULT_FILE = "result.json"
CONFIG_FILE = "config.json"
LOG_FILE = "log.txt"
TRACEBACK_FILE = "traceback.txt"
SESSIONS_FILE = "sessions.npz"
CURVE_FILE = "curve.npz"
# An action this close to a boundary counts as "at" it (the saturation diagnostic).
EDGE_TOLERANCE = 1e-3
MODEL_DIR = "model"
# With checkpoint selection on validation users: the best checkpoint so far while training, and the last policy when
# the selected one is earlier (MODEL_DIR then holds the selected, published policy).
SELECTED_MODEL_DIR = "model_selected_checkpoint"
LAST_MODEL_DIR = "model_last"
# A progressive dataset job keeps its last round's exploration centre here: the model a warm-started final training
# job (progressive_init="warm_start") starts from.
CENTRE_MODEL_DIR = "centre_model"
MINARI_DIR = "minari"
# Each dataset job keeps its dataset as a working copy (mtf_gym.datasets.save_working_copy: .npz + datasheet, fast
# to read by every training job); the Minari export is optional (``collection.minari``), written once beside it.
# Collection seeds: every recipe of training seed k shares users (seed 1000k), the test set has its own (1000k+1).
_SEED_STRIDE = 1000


@dataclass(frozen=True)
class JobOutcome:
    """What the scheduler learns about a finished job."""

    job_id: str
    status: str  # "ok", "failed" or "skipped" (already done)
    seconds: float
    error: str | None = None


def is_done(job: DatasetJob | TrainJob | TuneJob) -> bool:
    """Whether ``job`` finished before with the same identity (a valid ``result.json`` with a matching hash) and,
    for a training job, with the agent config the current code builds (:func:`stale_config_fields`)."""
    return job_status(job)[0]


def job_status(job: DatasetJob | TrainJob | TuneJob) -> tuple[bool, dict[str, tuple[Any, Any]]]:
    """``(done, stale)``: :func:`is_done`, and a finished training job's :func:`stale_config_fields` (empty if none),
    from one read of its result."""
    result = finished_result(job)
    stale = stale_config_fields(job, result) if result is not None and isinstance(job, TrainJob) else {}
    return result is not None and not stale, stale


def finished_result(job: DatasetJob | TrainJob | TuneJob) -> dict[str, Any] | None:
    """``job``'s ``result.json`` if it finished ok with the job's current hash, else ``None``. A dataset whose
    data file is missing (its record was carried without the data: :mod:`mtf_bench.harness.records`) is not
    finished: it is collected again, and must reproduce its recorded content (:func:`run_job`)."""
    result = _recorded_result(job)
    if result is not None and isinstance(job, DatasetJob) and not (job.directory / DATA_FILE).is_file():
        return None
    return result


def _recorded_result(job: DatasetJob | TrainJob | TuneJob) -> dict[str, Any] | None:
    result = read_json(job.directory / RESULT_FILE)
    ok = isinstance(result, dict) and result.get("status") == "ok" and result.get("config_hash") == job.config_hash
    return result if ok else None


def stale_config_fields(job: TrainJob, result: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The agent-config fields of a finished training job whose recorded value differs from the one the current
    code builds from the same settings, ``{field: (recorded, now)}``.

    A job's hash covers its settings, not the agent's code defaults, so a changed default (say IntegratedRL's
    ``target_noise``) shows only here; such a job is run again rather than reported with its old config. Fields
    missing from the record were added to the config later and are not compared: a new field's default keeps the
    behaviour the code had before it existed.
    """
    import json

    recorded = result.get("config")
    if not isinstance(recorded, dict):
        return {}
    now = json.loads(json.dumps(build_agent_for(job.agent, job.overrides, job.common).config.to_dict()))
    missing = object()
    return {name: (value, now.get(name, "<removed>")) for name, value in recorded.items()
            if now.get(name, missing) != value}


def dataset_seed(name: str, seed: int) -> int:
    return seed * _SEED_STRIDE + (1 if name == TEST_DATASET else 0)


def _dataset_id(name: str, seed: int) -> str:
    # Minari ids allow no dots: uniform_w0.10 -> uniform_w0p10.
    return f"mtf/{name.replace('.', 'p')}-seed{seed}-v0"


def load_job_dataset(run_dir: str | Path, name: str, seed: int):  # -> TransitionData
    """The dataset ``name`` of ``seed`` collected by a :class:`DatasetJob` of the run in ``run_dir``.

    Reads the working copy and checks its content hash against the one its job recorded, so a damaged file is
    an error, never silently different data.
    """
    from mtf_gym.datasets import load_working_copy

    directory = Path(run_dir) / "datasets" / f"seed{seed}" / name
    result = read_json(directory / RESULT_FILE) or {}
    try:
        return load_working_copy(directory, str(result.get("content_sha256")))
    except ValueError as exc:
        raise ValueError(f"{exc} (recorded in its {RESULT_FILE}); delete {directory} and rerun to collect it "
                         "again") from exc


class _Log:
    """Timestamped lines to ``log.txt`` (and the job's stdout/stderr, e.g. library warnings, to the same file)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        self.stream.write(f"[{time.strftime('%H:%M:%S')} +{time.perf_counter() - self.start:7.1f}s] {message}\n")
        self.stream.flush()


@contextlib.contextmanager
def _timer(timings: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


@contextlib.contextmanager
def _cpu_timer(timings: dict[str, float], name: str) -> Iterator[None]:
    """This process's CPU time (``name``, seconds): with one torch thread per job, a cost that other jobs on the
    same cores do not inflate the way they inflate wall time."""
    start = time.process_time()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.process_time() - start


def run_job(job: DatasetJob | TrainJob | TuneJob) -> JobOutcome:
    """Run one job to completion in this process; never raises (failures are recorded in the job directory)."""
    start = time.perf_counter()
    directory = job.directory
    directory.mkdir(parents=True, exist_ok=True)
    # A dataset collected again from a carried record must give the data the record's training runs were fed.
    recorded = _recorded_result(job) if isinstance(job, DatasetJob) else None
    (directory / RESULT_FILE).unlink(missing_ok=True)  # from here on the job is "not done" until it finishes
    (directory / TRACEBACK_FILE).unlink(missing_ok=True)
    atomic_write_json(directory / CONFIG_FILE, {"job_id": job.job_id, "config_hash": job.config_hash,
                                                **job.identity()})
    body: Callable[[Any, _Log, dict[str, float]], dict[str, Any]] = (
        _collect if isinstance(job, DatasetJob) else _tune if isinstance(job, TuneJob) else _train_and_evaluate)
    with open(directory / LOG_FILE, "a", encoding="utf-8") as stream, _one_torch_thread(), \
            contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        log = _Log(stream)
        log(f"start {job.job_id} (hash {job.config_hash})")
        timings: dict[str, float] = {}
        try:
            result = body(job, log, timings)
            if recorded is not None and recorded.get("content_sha256") != result.get("content_sha256"):
                # Keep the record and drop the differing data: the job stays unfinished, and says why, until
                # someone deletes the directory on purpose.
                (directory / DATA_FILE).unlink(missing_ok=True)
                atomic_write_json(directory / RESULT_FILE, recorded)
                raise RuntimeError(
                    f"collected again, {job.job_id} differs from its record (content_sha256 "
                    f"{result.get('content_sha256')} != recorded {recorded.get('content_sha256')}): the runs that "
                    f"trained on the recorded data cannot be mixed with it; delete {directory} to collect it afresh "
                    "and rerun the jobs that read it")
        except Exception as exc:
            text = traceback.format_exc()
            log(f"FAILED: {type(exc).__name__}: {exc}")
            atomic_write_text(directory / TRACEBACK_FILE, text)
            return JobOutcome(job.job_id, "failed", time.perf_counter() - start, text)
        timings["total_s"] = time.perf_counter() - start
        atomic_write_json(directory / RESULT_FILE, {
            "status": "ok", "job_id": job.job_id, "config_hash": job.config_hash, "kind": job.job_kind,
            **result, "timings": timings, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        })
        log(f"done in {timings['total_s']:.1f}s")
    return JobOutcome(job.job_id, "ok", time.perf_counter() - start)


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """One torch thread per job (parallelism comes from running jobs side by side); restored afterwards, so an
    in-process (``--workers 0``) run leaves its caller's setting alone."""
    try:
        import torch
    except ImportError:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# ----------------------------------------------------------------------------------------------------------------------
# Agents
# ----------------------------------------------------------------------------------------------------------------------
def build_agent_for(name: str, overrides: dict[str, Any], common: dict[str, Any] | None = None,
                    log: Callable[[str], None] | None = None):  # -> mtf_agents.base.Agent
    """``mtf_agents.registry.build_agent(name, ...)`` with the preset's shared settings (``common``:
    :class:`~mtf_agents.base.SharedSettings` fields) that the agent's config declares, then ``overrides`` (strict: an
    unknown field or a bad value raises ``ValueError`` naming it)."""
    from mtf_agents.base import SharedSettings
    from mtf_agents.registry import get_registry

    registry = get_registry()
    settings = SharedSettings.from_dict(common or {})
    declared = registry.get(name).config_class.shared_settings
    skipped = sorted(set(settings.given()) - set(declared))
    if skipped and log is not None:
        log(f"note: {name} takes the shared settings {list(declared)}; {skipped} do not apply to it")
    kwargs = {k: v for k, v in settings.given().items() if k in declared}
    kwargs.update(overrides)
    return registry.build(name, **{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})


def _policy_returns(policy: Any, sessions: int, user_seed: int, config: Any) -> dict[str, float]:
    from mtf_gym.evaluation import simulate_sessions

    out = simulate_sessions(policy, sessions, user_seed, config)
    return out.means()


# ----------------------------------------------------------------------------------------------------------------------
# Dataset collection
# ----------------------------------------------------------------------------------------------------------------------
def _collect(job: DatasetJob, log: _Log, timings: dict[str, float]) -> dict[str, Any]:
    from mtf_gym.datasets import RecipeConfig, collect_recipe, save_dataset, save_working_copy
    from mtf_gym.datasets.analysis import band_coverage
    from mtf_gym.envs.versions import make_env_config
    from mtf_gym.policies import BaselinePolicy

    env = make_env_config(job.env_id, job.env)
    params = job.params
    band = float(params.get("band", 0.15))
    centre_policy = None
    if "centre_job" in params:
        # A state-dependent centre: the policy a training job of this run saved. Like every dataset of the seed but
        # the test set, it has the main bounded-uniform dataset's collection seed: only the centre differs.
        from mtf_agents.registry import load_agent

        centre_policy = load_agent(Path(job.run_dir) / "jobs" / str(params["centre_job"]) / MODEL_DIR, device="cpu")
        log(f"exploration centre: {centre_policy.name} of job {params['centre_job']}")
    recipe = RecipeConfig(
        job.recipe,
        sessions=int(params["sessions"]),
        seed=dataset_seed(job.name, job.seed),
        sigma=float(params.get("sigma", 0.2)),
        lower=-band,
        upper=band,
        rounds=int(params.get("rounds", 1)),
        env=env,
    )
    rounds: list[dict[str, Any]] = []
    last_centre: list[Any] = []
    train_fn = None
    if job.recipe == "progressive":
        from mtf_agents.progressive import ProgressiveRound, progressive_trainer

        evaluation = job.evaluation
        baseline = BaselinePolicy(env)
        rounds.append({"round": 0, "centre": "baseline", "steps": 0,
                       **_policy_returns(baseline, int(params["eval_sessions"]), evaluation["user_seed"], env)})
        log(f"progressive round 0 centre = baseline: return {rounds[-1]['return']:.3f}")

        def score_round(done: ProgressiveRound) -> None:
            timings["progressive_train_s"] = timings.get("progressive_train_s", 0.0) + done.train_seconds
            with _timer(timings, "progressive_eval_s"):
                scores = _policy_returns(done.agent, int(params["eval_sessions"]), evaluation["user_seed"], env)
            rounds.append({"round": done.index, "centre": "integrated_rl", "steps": int(params["steps"]),
                           "transitions": done.transitions, "train_seed": done.seed, **scores})
            if done.warm_started:  # recorded only when true: earlier results keep their form
                rounds[-1]["warm_started"] = True
            last_centre[:] = [done.agent]
            log(f"progressive round {done.index}: centre trained on {done.transitions} transitions "
                f"(seed {done.seed}{', warm start' if done.warm_started else ''}), return {scores['return']:.3f}")

        # PTM: the next round explores around IntegratedRL trained on the rounds so far (all of them or the newest,
        # from scratch or from the previous round's model: its config's progressive_data / progressive_init).
        train_fn = progressive_trainer(
            lambda: build_agent_for("integrated_rl", params["overrides"],
                                    {"hidden_units": params["hidden_units"], "batch_size": params["batch_size"]}),
            int(params["steps"]), recipe.seed, on_round=score_round)

    with _timer(timings, "collect_s"):
        data = collect_recipe(recipe, centre_policy=centre_policy, train_fn=train_fn, progress=False)
    log(f"collected {data.num_episodes} sessions, {len(data)} transitions")
    with _timer(timings, "save_s"):
        save_working_copy(data, job.directory)
        if last_centre:
            with atomic_dir(job.directory / CENTRE_MODEL_DIR) as tmp:
                last_centre[0].save(tmp)
    if params.get("minari"):
        with _timer(timings, "minari_export_s"):
            save_dataset(data, job.directory / MINARI_DIR, _dataset_id(job.name, job.seed), overwrite=True)
        log(f"exported to Minari: {job.directory / MINARI_DIR} (id {_dataset_id(job.name, job.seed)})")
    with _timer(timings, "analysis_s"):
        coverage = band_coverage(data)
    returns = data.episode_returns()
    result: dict[str, Any] = {
        "name": job.name, "recipe": job.recipe, "seed": job.seed, "collection_seed": recipe.seed, "env_id": job.env_id,
        "dataset_id": _dataset_id(job.name, job.seed), "num_episodes": data.num_episodes,
        "num_transitions": len(data), "content_sha256": data.content_hash(),
        "mean_return": float(returns.mean()), "mean_requests": float(data.episode_lengths().mean()),
        "band": [-band, band],
        "coverage": {"per_dim": coverage.per_dim, "joint": coverage.joint, "joint_ci": list(coverage.joint_ci)},
    }
    if rounds:
        result["progressive_rounds"] = rounds
    # Which exploration centre the data was collected around (the paper's is a state-dependent baseline RL policy):
    # the first round's, and for progressive data every round's (rounds >= 1 centre on the previous round's model).
    result["centre"] = data.metadata.get("centre")
    if "rounds" in data.metadata:
        result["round_centres"] = [r.get("centre") for r in data.metadata["rounds"]]
    if job.name == TEST_DATASET:
        # The control's offline score: the baseline policy on its own logged test data.
        from mtf_gym.evaluation import LoggedItems, offline_weighted_gauc

        with _timer(timings, "gauc_s"):
            gauc = offline_weighted_gauc(BaselinePolicy(env), LoggedItems.from_transitions(data), env.fusion)
        result["baseline_gauc"] = gauc.value
    return result


# ----------------------------------------------------------------------------------------------------------------------
# Hyperparameter search
# ----------------------------------------------------------------------------------------------------------------------
def _tune(job: TuneJob, log: _Log, timings: dict[str, float]) -> dict[str, Any]:
    from mtf_bench.harness.tuning import run_search
    from mtf_gym.envs.versions import make_env_config
    from mtf_gym.evaluation import simulate_sessions

    env = make_env_config(job.env_id, job.env)
    data = None if job.agent_kind == "online" else load_job_dataset(job.run_dir, "uniform", job.seed)

    def build(overrides: dict[str, Any]) -> Any:
        return build_agent_for(job.agent, {**job.overrides, **overrides}, job.common)

    def fit(agent: Any) -> None:
        with _timer(timings, "fit_s"):
            if job.agent_kind == "online":
                agent.fit_online(env, job.n_steps, seed=job.seed, show_progress=False)
            else:
                agent.fit(data, job.n_steps, seed=job.seed, show_progress=False)

    def score(agent: Any) -> float:
        with _timer(timings, "eval_s"):
            return simulate_sessions(agent, job.sessions, job.user_seed, env).means()["return"]

    log(f"tuning {job.agent} ({job.agent_kind}, {job.n_steps} steps per trial) over {job.space}")
    return run_search(job, build, score, fit, log)


# ----------------------------------------------------------------------------------------------------------------------
# Training and evaluation
# ----------------------------------------------------------------------------------------------------------------------
def at_band_edge(actions: np.ndarray, centres: np.ndarray, lower: np.ndarray | float, upper: np.ndarray | float,
                 tolerance: float = EDGE_TOLERANCE) -> np.ndarray:
    """``(N, A)`` bool: the action entry is at or beyond its band's edge, ``a - centre >= upper - tol`` or
    ``<= lower + tol`` (``lower``/``upper``: offsets relative to the centre, scalars or per entry)."""
    offsets = np.asarray(actions, dtype=np.float64) - np.asarray(centres, dtype=np.float64)
    return (offsets >= np.asarray(upper, dtype=np.float64) - tolerance) | (
        offsets <= np.asarray(lower, dtype=np.float64) + tolerance)


def saturation(actions: np.ndarray, centres: np.ndarray, band: float,
               tolerance: float = EDGE_TOLERANCE) -> dict[str, float]:
    """Shares of action entries ``(N, A)`` at the action-space edge (``|a| >= 1 - tol``) and at or beyond the band
    edge around the exploration centres (``|a - centre| >= band - tol``): a policy pinned there is bang-bang."""
    actions, centres = np.asarray(actions, dtype=np.float64), np.asarray(centres, dtype=np.float64)
    if actions.shape != centres.shape or actions.ndim != 2:
        raise ValueError(f"actions and centres must be (N, A) arrays of one shape, got {actions.shape}, "
                         f"{centres.shape}")
    if not band > 0:
        raise ValueError(f"band must be > 0, got {band!r}")
    at_box = np.abs(actions) >= 1.0 - tolerance
    at_band = at_band_edge(actions, centres, -band, band, tolerance)
    return {"action_edge": float(at_box.mean()), "band_edge": float(at_band.mean()),
            "band_edge_per_dim": at_band.mean(axis=0).tolist(), "band": float(band)}


@dataclass
class _Curve:
    """What :func:`_fit_with_curve` measured: checkpoint steps, returns on the curve users ``(K, curve users)`` and,
    with checkpoint selection, returns on the validation users ``(K, validation users)`` and the selected step."""

    steps: list[int]
    returns: np.ndarray
    validation_returns: np.ndarray | None = None
    selected_step: int | None = None


def selects_checkpoint(job: TrainJob) -> bool:
    """Whether ``job`` publishes the checkpoint with the best validation return rather than its last policy."""
    return job.evaluation.get("select_checkpoint", "last") == "validation"


def _fit_with_curve(job: TrainJob, agent: Any, train: Any, env: Any, log: _Log,
                    timings: dict[str, float]) -> tuple[dict[str, float], _Curve]:
    """Train ``agent`` for ``job.n_steps`` and evaluate it at every checkpoint on the curve users.

    An agent that reports checkpoints is evaluated as it trains; any other (ES, plug-ins) is retrained from the
    same seed for each earlier checkpoint budget, which for a deterministic agent such as ES is its own run's
    prefix. With checkpoint selection on (``evaluation.select_checkpoint == "validation"``) every checkpoint is also
    scored on the validation users (disjoint from the curve and A/B users), and the best one so far is saved in
    :data:`SELECTED_MODEL_DIR`: the training budget is chosen on validation users, never on evaluation users.
    Returns the final training metrics and the curve.
    """
    from mtf_bench.harness.curves import checkpoint_schedule
    from mtf_gym.evaluation import simulate_sessions

    ev = job.evaluation
    schedule = checkpoint_schedule(job.n_steps, job.checkpoints)
    select = selects_checkpoint(job)
    steps: list[int] = []
    rows: list[np.ndarray] = []
    validation_rows: list[np.ndarray] = []
    best = {"step": None, "value": -np.inf}

    def record(step: int, policy: Any) -> None:
        if steps and steps[-1] == step:
            return  # several checkpoints reached at once (e.g. within one PPO rollout): one policy, one point
        with _timer(timings, "curve_eval_s"), _cpu_timer(timings, "curve_eval_cpu_s"):
            out = simulate_sessions(policy, int(ev["curve_sessions"]), int(ev["user_seed"]), env)
            if select:
                validation = simulate_sessions(policy, int(ev["validation_sessions"]),
                                               int(ev["validation_user_seed"]), env).returns
        steps.append(int(step))
        rows.append(out.returns)
        message = f"checkpoint {step}: curve return {out.returns.mean():.3f}"
        if select:
            validation_rows.append(validation)
            message += f", validation return {validation.mean():.3f}"
            if validation.mean() > best["value"]:  # ties keep the earlier (smaller) budget
                best.update(step=int(step), value=float(validation.mean()))
                with _timer(timings, "save_s"), atomic_dir(job.directory / SELECTED_MODEL_DIR) as tmp:
                    policy.save(tmp)
                message += " (best on validation so far: saved)"
        log(message)

    def fit(learner: Any, budget: int, checkpoints: tuple[int, ...]) -> dict[str, float]:
        kwargs = {"seed": job.seed, "show_progress": False, "checkpoints": checkpoints, "on_checkpoint": record}
        if job.agent_kind == "online":
            return learner.fit_online(env, budget, **kwargs)
        return learner.fit(train, budget, **kwargs)

    if not agent.reports_checkpoints:
        for budget in schedule[:-1]:
            with _timer(timings, "curve_fit_s"):
                fit(build_agent_for(job.agent, job.overrides, job.common), budget, (budget,))
    evaluated_before = timings.get("curve_eval_s", 0.0)
    evaluated_cpu_before = timings.get("curve_eval_cpu_s", 0.0)
    with _timer(timings, "fit_s"), _cpu_timer(timings, "fit_cpu_s"):
        metrics = fit(agent, job.n_steps, schedule if agent.reports_checkpoints else schedule[-1:])
    timings["fit_s"] -= timings.get("curve_eval_s", 0.0) - evaluated_before  # training time only
    timings["fit_cpu_s"] -= timings.get("curve_eval_cpu_s", 0.0) - evaluated_cpu_before
    if not select:
        return metrics, _Curve(steps, np.stack(rows))
    return metrics, _Curve(steps, np.stack(rows), np.stack(validation_rows), best["step"])


def _progressive_final_round(job: TrainJob, agent: Any, train: Any, log: _Log) -> Any:
    """The data the final training run on a progressive dataset uses, with ``agent`` warm-started from the dataset
    job's last centre (:data:`CENTRE_MODEL_DIR`) when its config says ``progressive_init="warm_start"``."""
    from mtf_agents import load_agent
    from mtf_agents.progressive import progressive_options, start_round

    previous = None
    if progressive_options(agent)[1] == "warm_start":
        path = Path(job.run_dir) / "datasets" / f"seed{job.seed}" / job.dataset / CENTRE_MODEL_DIR
        if not path.is_dir():
            raise FileNotFoundError(f"progressive_init='warm_start' needs the last round's model {path}, which the "
                                    f"dataset job did not write (collected before it kept one); delete "
                                    f"{path.parent} and rerun to collect it again")
        previous = load_agent(path)
    selected, warm = start_round(agent, train, previous)
    if selected is not train or warm:
        log(f"progressive final round: {len(selected)} of {len(train)} transitions"
            f"{', warm start from ' + str(CENTRE_MODEL_DIR) if warm else ''}")
    return selected


def _train_and_evaluate(job: TrainJob, log: _Log, timings: dict[str, float]) -> dict[str, Any]:
    from mtf_gym.envs.versions import make_env_config
    from mtf_gym.evaluation import LoggedItems, action_deviation, offline_weighted_gauc, simulate_sessions
    from mtf_gym.policies import BaselinePolicy

    env = make_env_config(job.env_id, job.env)
    with _timer(timings, "load_s"):
        test = load_job_dataset(job.run_dir, TEST_DATASET, job.seed)
        train = None if job.dataset == ONLINE else load_job_dataset(job.run_dir, job.dataset, job.seed)
    agent = build_agent_for(job.agent, job.overrides, job.common, log)
    if train is not None and "rounds" in train.metadata:
        # Progressive data: this run is the round after the last one, trained as the agent's progressive_data /
        # progressive_init say (the defaults, every round from scratch, leave the data and the agent as they are).
        train = _progressive_final_round(job, agent, train, log)
    log(f"training {job.agent} ({agent.kind}) for {job.n_steps} steps on {job.dataset}: {agent.config}")
    metrics, curve = _fit_with_curve(job, agent, train, env, log, timings)
    extra = {} if curve.validation_returns is None else {
        "validation_returns": curve.validation_returns, "selected_step": int(curve.selected_step),
        "validation_user_seed": int(job.evaluation["validation_user_seed"])}
    with atomic_path(job.directory / CURVE_FILE) as tmp:
        np.savez(tmp, steps=np.asarray(curve.steps, dtype=np.int64), returns=curve.returns,
                 user_seed=int(job.evaluation["user_seed"]), **extra)
    log(f"trained: {metrics}")
    selection = None
    if curve.selected_step is not None:
        selection = {"rule": "validation", "selected_step": curve.selected_step, "last_step": curve.steps[-1],
                     "validation_mean_returns": curve.validation_returns.mean(axis=1).tolist(),
                     "validation_sessions": int(curve.validation_returns.shape[1])}
        if curve.selected_step != curve.steps[-1]:
            # The published policy is the validation-selected checkpoint; the last one is kept beside it.
            from mtf_agents import load_agent

            with _timer(timings, "save_s"), atomic_dir(job.directory / LAST_MODEL_DIR) as tmp:
                agent.save(tmp)
            agent = load_agent(job.directory / SELECTED_MODEL_DIR)
            log(f"published policy: the checkpoint at {curve.selected_step} (best validation return), not the last "
                f"at {curve.steps[-1]}")
    with _timer(timings, "save_s"), atomic_dir(job.directory / MODEL_DIR) as tmp:
        agent.save(tmp)
    shutil.rmtree(job.directory / SELECTED_MODEL_DIR, ignore_errors=True)  # now in MODEL_DIR

    ev = job.evaluation
    with _timer(timings, "eval_s"):
        sessions = simulate_sessions(agent, int(ev["sessions"]), int(ev["user_seed"]), env)
        with atomic_path(job.directory / SESSIONS_FILE) as tmp:
            np.savez(tmp, **sessions.to_arrays())
        logs = LoggedItems.from_transitions(test)
        gauc = offline_weighted_gauc(agent, logs, env.fusion)
        deviation = action_deviation(agent, BaselinePolicy(env), logs.observations)
        # Saturation on the logged states of the baseline test set, around the baseline fusion (the band centre).
        sat = saturation(agent.act(logs.observations), BaselinePolicy(env)(logs.observations), job.band)
    fqe = None
    if job.fqe_dataset is not None:
        from mtf_bench.harness.ope import fqe_estimate

        with _timer(timings, "fqe_s"):
            estimate = fqe_estimate(agent, load_job_dataset(job.run_dir, job.fqe_dataset, job.seed),
                                    int(ev["fqe_steps"]), seed=job.seed, gamma=float(ev["fqe_gamma"]),
                                    hidden_units=tuple(job.common.get("hidden_units", (64, 64))),
                                    batch_size=int(job.common.get("batch_size", 256)), device=job.device)
        fqe = dataclasses.asdict(estimate)
        log(f"FQE on {job.fqe_dataset}: {estimate.value:.3f} (se {estimate.standard_error:.3f})")
    means = sessions.means()
    log(f"online {means}; weighted GAUC {gauc.value:.4f} ({gauc.num_users_used} users)")
    return {
        "agent": job.agent, "label": job.label, "dataset": job.dataset, "seed": job.seed, "agent_kind": job.agent_kind,
        "n_steps": job.n_steps, "config": agent.config.to_dict(),
        "train_metrics": {k: float(v) for k, v in (metrics or {}).items() if np.isscalar(v)},
        "online": means, "gauc": gauc.value, "gauc_users_used": gauc.num_users_used,
        "gauc_users_skipped": gauc.num_users_skipped, "action_deviation": deviation,
        "train_transitions": None if train is None else len(train), "saturation": sat, "fqe": fqe,
        "curve": {"steps": curve.steps, "mean_returns": curve.returns.mean(axis=1).tolist(),
                  "sessions": int(curve.returns.shape[1])}, "selection": selection, "env_id": job.env_id,
        "device": job.device,
    }

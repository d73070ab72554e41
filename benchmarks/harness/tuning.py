"""Equal hyperparameter tuning: every learning agent gets the same small search before the grid (``tuning`` in a
preset; ``mtf-bench PRESET --tune`` reruns it).

Each agent's search space has exactly :data:`CONFIGURATIONS` configurations: a learning-rate scale (every
``*learning_rate`` field of the agent's config multiplied by 0.3, 1 or 3; for ES, whose CMA-ES has no learning rate,
its initial step size ``sigma0``) crossed with the one setting the agent's paper singles out (two values). optuna's
``GridSampler`` tries every configuration with the same budget; each trial trains on the validation dataset (a
bounded-uniform dataset collected with ``tuning.seed``, a seed no training run uses) and is scored by the mean
session return on the validation users (``tuning.user_seed``, disjoint from the A/B users). The winner's settings
become the agent's overrides in the grid; the preset's own ``agents.overrides`` still win over them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mtf_bench.harness.grid import TuneJob
from mtf_bench.harness.presets import Preset
from mtf_gym.atomic import atomic_write_json, read_json

__all__ = [
    "CONFIGURATIONS",
    "LR_SCALE",
    "SEARCH_SPACES",
    "expand_trial",
    "run_search",
    "tuning_markdown",
    "winners",
]

LR_SCALE = "lr_scale"
_SCALES = (0.3, 1.0, 3.0)
SEARCH_SPACES: dict[str, dict[str, tuple[Any, ...]]] = {
    "bcq": {LR_SCALE: _SCALES, "action_flexibility": (0.05, 0.15)},
    "cql": {LR_SCALE: _SCALES, "conservative_weight": (1.0, 5.0)},
    "iql": {LR_SCALE: _SCALES, "expectile": (0.7, 0.9)},
    "ddpg": {LR_SCALE: _SCALES, "tau": (0.005, 0.02)},
    "td3bc": {LR_SCALE: _SCALES, "alpha": (1.0, 2.5)},
    "integrated_rl": {LR_SCALE: _SCALES, "eta": (1.0, 3.0)},
    "ddpg_va": {LR_SCALE: _SCALES, "max_deviation": (0.15, 0.3)},
    "es": {"sigma0": (0.1, 0.3, 1.0), "action_scale": (0.3, 0.5)},
    "sac": {LR_SCALE: _SCALES, "tau": (0.005, 0.02)},
    "td3": {LR_SCALE: _SCALES, "target_policy_noise": (0.1, 0.2)},
    "ppo": {LR_SCALE: _SCALES, "clip_range": (0.1, 0.2)},
}
# Every space above has exactly this many configurations (tests/test_tuning.py checks it): the same search for all.
CONFIGURATIONS = 6


def _size(space: dict[str, tuple[Any, ...]]) -> int:
    size = 1
    for values in space.values():
        size *= len(values)
    return size



def expand_trial(params: dict[str, Any], base_config: Any) -> dict[str, Any]:
    """Config overrides of one trial: ``lr_scale`` becomes every ``*learning_rate`` field of ``base_config`` (the
    agent's config before tuning) times the scale; the other parameters are config fields already."""
    out = {k: v for k, v in params.items() if k != LR_SCALE}
    if LR_SCALE in params:
        for f in dataclasses.fields(base_config):
            value = getattr(base_config, f.name)
            if f.name.endswith("learning_rate") and isinstance(value, float) and value > 0:
                out[f.name] = value * float(params[LR_SCALE])
    return out


TRIALS_DIR = "trials"


def _trial_path(job: TuneJob, params: dict[str, Any]) -> Path:
    key = json.dumps(params, sort_keys=True, default=str)
    return job.directory / TRIALS_DIR / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def run_search(job: TuneJob, build: Callable[[dict[str, Any]], Any], score: Callable[[Any], float],
               fit: Callable[[Any], None], log: Callable[[str], None]) -> dict[str, Any]:
    """Try every configuration of ``job.space`` with optuna's GridSampler; returns the trials and the winner.

    ``build(overrides)`` makes an agent, ``fit(agent)`` trains it on the validation data, ``score(agent)`` is its
    mean validation return (higher is better). Each finished trial is kept in ``trials/`` of the job's directory
    under the job's identity hash, so a search interrupted after some of its trials (the slow online ones take
    minutes each) resumes from the next one: a trial trains a fresh agent from the job's seed, so its result does
    not depend on the trials before it.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = build({}).config
    space = {k: list(v) for k, v in job.space.items()}
    trials: list[dict[str, Any]] = []
    # Each trial's training + scoring time, kept with the trial so a resumed search reports the time of all of them
    # (None for a kept trial written before trials were timed).
    trial_seconds: list[float | None] = []
    trial_kept: list[bool] = []

    def objective(trial: optuna.Trial) -> float:
        params = {k: trial.suggest_categorical(k, v) for k, v in space.items()}
        overrides = expand_trial(params, base)
        path = _trial_path(job, params)
        kept = read_json(path)
        if isinstance(kept, dict) and kept.get("config_hash") == job.config_hash and kept.get("params") == params:
            value = float(kept["validation_return"])
            trials.append({"params": params, "overrides": overrides, "validation_return": value})
            trial_seconds.append(kept.get("seconds"))
            trial_kept.append(True)
            log(f"trial {len(trials)}: {params} -> validation return {value:.4f} (finished before, kept)")
            return value
        start = time.perf_counter()
        agent = build(overrides)
        fit(agent)
        value = float(score(agent))
        seconds = time.perf_counter() - start
        trials.append({"params": params, "overrides": overrides, "validation_return": value})
        trial_seconds.append(seconds)
        trial_kept.append(False)
        atomic_write_json(path, {"config_hash": job.config_hash, "params": params, "validation_return": value,
                                 "seconds": seconds})
        log(f"trial {len(trials)}: {params} -> validation return {value:.4f}")
        return value

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.GridSampler(space, seed=job.seed))
    study.optimize(objective, n_trials=_size(job.space))
    best = max(trials, key=lambda t: t["validation_return"])
    return {"agent": job.agent, "space": job.space, "trials": trials, "winner": best["params"],
            "winner_overrides": best["overrides"], "best_validation_return": best["validation_return"],
            "trial_seconds": trial_seconds, "trial_kept": trial_kept}


def winners(preset: Preset, jobs: tuple[TuneJob, ...]) -> dict[str, dict[str, Any]]:
    """The winning overrides of every finished search, by agent (empty when tuning is off)."""
    from mtf_bench.harness.jobs import RESULT_FILE, is_done

    if not preset.tuning.enabled:
        return {}
    return {job.agent: dict(read_json(job.directory / RESULT_FILE)["winner_overrides"]) for job in jobs
            if is_done(job)}


def _control_on_validation_users(preset: Preset) -> str:
    """The control arm's mean return on the validation users: the yardstick for the trials' validation returns
    (those users differ from the A/B users, so their returns are not comparable with the A/B table's)."""
    from mtf_gym.evaluation import simulate_sessions
    from mtf_gym.policies import BaselinePolicy

    env = preset.env_config()
    out = simulate_sessions(BaselinePolicy(env), preset.tuning.sessions, preset.tuning.user_seed, env).means()
    return (f"On these users the control arm (`BaselinePolicy`) scores {out['return']:.3f}: a trial below it is "
            "worse than the fusion production already runs.")


def _budget_rule(preset: Preset) -> str:
    """Which agents' trials train for less than their grid budget, in words (empty when none does)."""
    tu = preset.tuning
    if not tu.agent_steps:
        return ""
    named = ", ".join(f"{agent} {steps:,}" for agent, steps in sorted(tu.agent_steps.items()))
    return (f"Trial budgets set per agent (`tuning.agent_steps`: {named}) are for agents whose grid budget was "
            "raised far above the common one so that their curves plateau; at the common budget their trials would "
            "differ by noise only. ")


def _search_time(result: dict[str, Any]) -> str:
    """The search's time: its job's time plus the time of the trials an interrupted search kept from earlier
    invocations; a kept trial written before trials were timed makes it a lower bound that says so."""
    total = (result.get("timings") or {}).get("total_s")
    if total is None:
        return "–"
    seconds, kept = result.get("trial_seconds"), result.get("trial_kept")
    if seconds is None or kept is None:  # a search finished before trials were timed
        return f"{total:.0f}"
    earlier = [s for s, k in zip(seconds, kept, strict=True) if k]
    untimed = sum(s is None for s in earlier)
    value = total + sum(s for s in earlier if s is not None)
    return f"≥ {value:.0f} ({untimed} trial(s) from an earlier invocation not timed)" if untimed else f"{value:.0f}"


def tuning_markdown(preset: Preset, jobs: tuple[TuneJob, ...]) -> list[str]:
    """The report's section: each agent's search space, trials and winner (nothing when tuning is off)."""
    from mtf_bench.harness.jobs import RESULT_FILE, is_done

    if not preset.tuning.enabled:
        return []
    tu = preset.tuning
    lines = ["", "## Hyperparameter search (equal for every agent)", "",
             f"Every learning agent: the {CONFIGURATIONS} configurations of its space (optuna GridSampler), each "
             f"trained with the agent's trial budget (the table's; offline agents on a bounded-uniform validation "
             f"dataset collected with seed {tu.seed}, which no training run uses) and scored by mean session return "
             f"on {tu.sessions} validation users from seed {tu.user_seed} (disjoint from the A/B users). `lr_scale` "
             "multiplies every learning rate of the agent's config. Rerun with `mtf-bench " + preset.name
             + " --tune`. " + _budget_rule(preset) + _control_on_validation_users(preset), "",
             "| agent | search space | trial budget (grid budget) | winner | validation return (winner) | "
             "validation returns of all trials | search time (s) |",
             "|---|---|---|---|---|---|---|"]
    for job in jobs:
        space = "; ".join(f"{k} ∈ {{{', '.join(f'{v:g}' if isinstance(v, float) else str(v) for v in vals)}}}"
                          for k, vals in job.space.items())
        unit = "steps" if job.agent_kind == "offline" else "requests"
        budget = f"{job.n_steps:,} ({preset.train_steps(job.agent, job.agent_kind == 'online'):,}) {unit}"
        if not is_done(job):
            lines.append(f"| {job.agent} | {space} | {budget} | not run | – | – | – |")
            continue
        res = read_json(job.directory / RESULT_FILE)
        winner = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in res["winner"].items())
        trials = " ".join(f"{t['validation_return']:.3f}" for t in res["trials"])
        lines.append(f"| {job.agent} | {space} | {budget} | {winner} | {res['best_validation_return']:.3f} | "
                     f"{trials} | {_search_time(res)} |")
    return lines

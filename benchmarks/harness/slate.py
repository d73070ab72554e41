"""The slate section of ``mtf-bench``: item-level agents on ``MTFSlate-v0`` against random, the production pipeline
and the oracle, on the same users, with intervals over training seeds; and decision latency against N.

    python -m mtf_bench.harness.slate --preset quick|standard [--results-dir results]

(``mtf-bench quick`` runs it too when the preset's ``[slate]`` table has ``enabled = true``: in a process of its own
beside the grid's jobs, one job at a time, logging to ``<run>/slate/log.txt``.)

Jobs, each writing one ``result.json`` atomically and skipped on a rerun when its identity is unchanged:

* ``references``: random pages, the production pipeline (retrieval -> ranker -> the tuned control fusion -> top-K,
  :class:`mtf_gym.slate.PipelinePolicy`) and the oracle (top-K true expected reward over the whole catalogue,
  :func:`mtf_bench.slate_properties.oracle_policy`) play one session of every evaluation user;
* ``<agent>/seed<s>``: every item-level agent of the registry (``MTFSlate-v0``) trains online for its budget with
  training seed ``s`` (its training users are ``reset(seed=s)``'s, far from the evaluation users), then plays the
  same evaluation users;
* ``integrated_rl/seed<s>`` (``include_integrated_rl``): the zoo's fusion-level IntegratedRL (built through the
  registry, as the grid builds it) acting through the pipeline: an exploration dataset (``integrated_rl_recipe``,
  ``integrated_rl_sessions`` sessions, :func:`mtf_gym.datasets.collect_recipe`) is collected on ``MTFSession-v1``
  with the slate env's session config, which :class:`mtf_gym.slate.FusionPipelineEnv` reproduces exactly;
  IntegratedRL trains offline on it for ``integrated_rl_steps`` gradient steps (seed ``s``: the dataset's users and
  noise, and the training); its fusion weights then pick each page among the pipeline's candidates
  (:class:`mtf_gym.slate.PipelinePolicy`) for the evaluation users;
* ``fusion_cma/seed<s>`` (``include_fusion_cma``): a second, cheaper fusion-level row: CMA-ES over a linear fusion
  policy of the user observation (:func:`mtf_bench.headroom.cma_search`, the method of the zoo's ES baseline),
  trained online on ``MTFSession-v1`` users with the same session config, acting through the same pipeline;
* ``latency``: seconds per request (batch 1) of the reference policies and the untrained agents at each catalogue
  size (:func:`mtf_bench.perf_slate.policy_latencies`), or the rows of an existing ``perf_slate.json``.

Evaluation users are ``reset(seed=user_seed)``'s sub-envs, user ``user_seed + i`` (common random numbers). Each
agent's returns over its seeds form a ``(seeds, users)`` matrix; lifts use the two-level paired bootstrap of
:func:`mtf_gym.metrics.paired_lift_ci` (seeds, then users, the same users for both arms); the normalised score is
``100 mean(R - R_random) / mean(R_oracle - R_random)`` (random 0, oracle 100) with the same bootstrap.
``slate.md`` holds the tables, ``slate_normalised.png`` the normalised scores, ``latency.png`` the latency plot.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
import tomllib
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtf_agents._quiet import d3rlpy_logs_quiet
from mtf_gym.atomic import atomic_write_json, atomic_write_text, read_json
from mtf_gym.metrics import bootstrap_ci, paired_lift_ci
from mtf_gym.validation import must_be

__all__ = ["SLATE_ENV", "SlateRun", "SlateSection", "load_section", "main", "run_slate_section", "slate_job_status",
           "summarise"]

SLATE_ENV = "MTFSlate-v0"
RESULT_FILE = "result.json"
INTEGRATED_RL_ROW = "integrated_rl"  # the fusion-level rows' job names (and row names)
FUSION_CMA_ROW = "fusion_cma"
FUSION_KINDS = {INTEGRATED_RL_ROW: "fusion agent through the pipeline: IntegratedRL (zoo, offline)",
                FUSION_CMA_ROW: "fusion agent through the pipeline: CMA-ES linear fusion"}
MIN_ITEMS = 1000  # 20 topics x the 50 candidates the production retrieval takes per request
REFERENCE_ROWS = ("random", "pipeline (control)", "oracle")


def _fail(name: str, allowed: str, value: object) -> ValueError:
    return must_be(name, allowed, value, owner="slate")


@dataclass(frozen=True)
class SlateSection:
    """The slate section of a benchmark preset (the ``[slate]`` table).

    Attributes:
        enabled: run the section with the preset (``mtf-bench PRESET``).
        num_items: catalogue size ``N`` of ``MTFSlate-v0`` (a multiple of its 20 topics).
        train_steps: simulator requests of every agent's online training.
        agent_steps: per-agent budgets that replace ``train_steps`` (``{agent: requests}``).
        agent_overrides: per-agent config overrides (``{agent: {field: value}}``, e.g. Wolpertinger's
            ``max_neighbours``); they win over ``hidden_units`` and are part of each job's identity (its config).
        hidden_units: MLP widths of every agent whose config has ``hidden_units``.
        eval_users: evaluation users, the same for every row.
        user_seed: seed of the first evaluation user (far from the training seeds' users).
        seeds: training seeds (at least 3: intervals over seeds).
        agents: registry names of item-level agents (empty: every registered ``MTFSlate-v0`` agent).
        include_integrated_rl: add the fusion-level IntegratedRL row (the zoo's agent acting through the pipeline).
        integrated_rl_recipe: exploration recipe of its dataset (``uniform``, ``gaussian`` or ``baseline``).
        integrated_rl_sessions: sessions of that dataset (per seed).
        integrated_rl_steps: IntegratedRL's gradient steps.
        integrated_rl_overrides: IntegratedRL config overrides (e.g. ``{n_critics = 8}``); ``hidden_units`` and
            ``batch_size`` come from the section.
        batch_size: IntegratedRL's mini-batch size.
        include_fusion_cma: add the CMA-ES fusion row (a linear fusion policy acting through the pipeline).
        fusion_generations: CMA-ES generations of that row.
        fusion_train_users: training users per CMA-ES candidate and generation.
        latency_sizes: catalogue sizes of the latency table (empty: no latency job).
        latency_repeats: median of this many batch-1 calls per row.
        perf_slate_json: an existing ``mtf_bench.perf_slate`` output to take the latency rows from instead.
        bootstrap: bootstrap resamples; confidence: nominal coverage of the intervals.
    """

    enabled: bool = False
    num_items: int = 2000
    train_steps: int = 3000
    agent_steps: dict[str, int] = field(default_factory=dict)
    agent_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    hidden_units: tuple[int, ...] = (64, 64)
    eval_users: int = 1000
    user_seed: int = 1_000_000_000
    seeds: tuple[int, ...] = (0, 1, 2)
    agents: tuple[str, ...] = ()
    include_integrated_rl: bool = True
    integrated_rl_recipe: str = "uniform"
    integrated_rl_sessions: int = 1000
    integrated_rl_steps: int = 1500
    integrated_rl_overrides: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 256
    include_fusion_cma: bool = True
    fusion_generations: int = 15
    fusion_train_users: int = 64
    latency_sizes: tuple[int, ...] = (1000, 10_000, 100_000)
    latency_repeats: int = 3
    perf_slate_json: str = ""
    bootstrap: int = 2000
    confidence: float = 0.95

    def __post_init__(self) -> None:
        # The env needs every topic to hold the pipeline's 50 retrieved candidates: N >= 20 x 50.
        if self.num_items < MIN_ITEMS or self.num_items % 20:
            raise _fail("num_items", f"a multiple of the 20 topics, >= {MIN_ITEMS}", self.num_items)
        for name in ("train_steps", "fusion_generations", "fusion_train_users", "latency_repeats", "bootstrap",
                     "integrated_rl_sessions", "integrated_rl_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise _fail(name, "an integer >= 1", getattr(self, name))
        for agent, steps in self.agent_steps.items():
            if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
                raise _fail(f"agent_steps.{agent}", "an integer >= 1", steps)
        for agent, overrides in self.agent_overrides.items():
            if not isinstance(overrides, dict):
                raise _fail(f"agent_overrides.{agent}", "a table {field: value} of the agent's config fields",
                            overrides)
        # The progressive recipe trains IntegratedRL between rounds: not offered here (one recipe, one training).
        if self.integrated_rl_recipe not in ("uniform", "gaussian", "baseline"):
            raise _fail("integrated_rl_recipe", "one of 'uniform', 'gaussian', 'baseline'", self.integrated_rl_recipe)
        if not isinstance(self.integrated_rl_overrides, dict):
            raise _fail("integrated_rl_overrides", "a table {field: value} of IntegratedRL config fields",
                        self.integrated_rl_overrides)
        if not self.hidden_units or any(h < 1 for h in self.hidden_units):
            raise _fail("hidden_units", "a non-empty tuple of widths >= 1", self.hidden_units)
        if self.eval_users < 2:
            raise _fail("eval_users", "an integer >= 2", self.eval_users)
        if self.user_seed < 0:
            raise _fail("user_seed", ">= 0", self.user_seed)
        if len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds) or (
                self.enabled and len(self.seeds) < 3):
            raise _fail("seeds", "distinct integers >= 0, at least 3 when enabled (intervals over seeds)", self.seeds)
        if len(set(self.agents)) != len(self.agents):
            raise _fail("agents", "distinct agent names", self.agents)
        if any(n < MIN_ITEMS or n % 20 for n in self.latency_sizes):
            raise _fail("latency_sizes", f"multiples of the 20 topics, >= {MIN_ITEMS}", self.latency_sizes)
        if not 0 < self.confidence < 1:
            raise _fail("confidence", "in (0, 1)", self.confidence)

    def steps_for(self, agent: str) -> int:
        return self.agent_steps.get(agent, self.train_steps)

    def fusion_rows(self) -> list[str]:
        """The fusion-level rows this section runs (job and row names)."""
        return [name for name, on in ((INTEGRATED_RL_ROW, self.include_integrated_rl),
                                      (FUSION_CMA_ROW, self.include_fusion_cma)) if on]

    def agent_names(self) -> list[str]:
        """The item-level agents to run: ``agents``, or every registered ``MTFSlate-v0`` agent; unknown names or
        agents of another env raise ``ValueError`` naming the allowed ones."""
        from mtf_agents.registry import get_registry

        registry = get_registry()
        allowed = registry.names(env=SLATE_ENV)
        names = list(self.agents) or allowed
        bad = [n for n in names if n not in allowed]
        if bad:
            raise _fail("agents", f"registered {SLATE_ENV} agents from {allowed}", tuple(bad))
        # Keyed by registered slate agents (not only the selected ones: ``--set agents=[...]`` on a preset with
        # budgets for every agent must work).
        for table in ("agent_steps", "agent_overrides"):
            stray = sorted(set(getattr(self, table)) - set(allowed))
            if stray:
                raise _fail(table, f"a table keyed by registered {SLATE_ENV} agents {allowed}", stray)
        return names


# ----------------------------------------------------------------------------------------------------------- jobs
def _identity_hash(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _done(path: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The saved result at ``path`` if it was made with ``identity`` (else ``None``: the job must run)."""
    saved = read_json(path)
    return saved if isinstance(saved, dict) and saved.get("identity_hash") == _identity_hash(identity) else None


def _eval_env(section: SlateSection) -> Any:
    import gymnasium as gym

    import mtf_gym  # noqa: F401  (registers the envs)

    return gym.make_vec(SLATE_ENV, num_envs=section.eval_users, num_items=section.num_items, expose_candidates=True)


def _reference_job(section: SlateSection) -> dict[str, Any]:
    from mtf_bench.slate_properties import oracle_policy, play_sessions
    from mtf_gym.slate import PipelinePolicy, RandomSlatePolicy

    env = _eval_env(section)
    base = env.unwrapped
    random_policy = RandomSlatePolicy(base.num_items, base.page_size, np.random.default_rng(section.user_seed))
    pipeline = PipelinePolicy(env)
    policies = {"random": lambda o, i, live: random_policy(o), "pipeline (control)": lambda o, i, live: pipeline(o, i),
                "oracle": oracle_policy(env)}
    out: dict[str, Any] = {"returns": {}, "seconds": {}}
    for name, policy in policies.items():
        start = time.perf_counter()
        out["returns"][name] = play_sessions(env, policy, section.user_seed).tolist()
        out["seconds"][name] = time.perf_counter() - start
    env.close()
    return out


def _agent_kwargs(section: SlateSection, agent_name: str) -> dict[str, Any]:
    from mtf_agents.registry import get_registry

    fields = {f.name for f in dataclasses.fields(get_registry().get(agent_name).config_class)}
    kwargs: dict[str, Any] = {"hidden_units": section.hidden_units} if "hidden_units" in fields else {}
    overrides = section.agent_overrides.get(agent_name, {})
    kwargs.update({k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
    return kwargs


def _agent_config(section: SlateSection, agent_name: str) -> dict[str, Any]:
    """The agent's full config as the job builds it (JSON form): part of the job's identity, so that a changed
    default reruns the job."""
    from mtf_agents.registry import get_registry

    config_class = get_registry().get(agent_name).config_class
    try:
        config = config_class(**_agent_kwargs(section, agent_name))
    except TypeError as exc:  # an unknown field
        fields = sorted(f.name for f in dataclasses.fields(config_class))
        raise _fail(f"agent_overrides.{agent_name}", f"fields of {config_class.__name__} {fields}",
                    section.agent_overrides.get(agent_name)) from exc
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def _agent_job(section: SlateSection, agent_name: str, seed: int) -> dict[str, Any]:
    import gymnasium as gym
    import torch

    from mtf_agents.registry import get_registry
    from mtf_bench.slate_properties import play_sessions

    agent = get_registry().build(agent_name, **_agent_kwargs(section, agent_name))
    torch.set_num_threads(1)  # small networks: intra-op threads only contend on a shared machine
    train_env = gym.make_vec(SLATE_ENV, num_envs=agent.config.n_envs, num_items=section.num_items,
                             expose_candidates=False)
    start = time.perf_counter()
    metrics = agent.fit_online(train_env, section.steps_for(agent_name), seed=seed, show_progress=False)
    train_seconds = time.perf_counter() - start
    train_env.close()
    env = _eval_env(section)
    if not np.array_equal(agent.item_embeddings, env.unwrapped.item_embeddings):
        raise RuntimeError("the evaluation env's catalogue differs from the training env's")
    start = time.perf_counter()
    returns = play_sessions(env, lambda obs, info, live: agent.act(obs), section.user_seed)
    env.close()
    return {"returns": returns.tolist(), "train_seconds": train_seconds, "eval_seconds": time.perf_counter() - start,
            "train_metrics": {k: float(v) for k, v in metrics.items()}}


def _integrated_rl_job(section: SlateSection, seed: int) -> dict[str, Any]:
    import torch

    from mtf_bench.harness.jobs import build_agent_for
    from mtf_bench.slate_properties import play_sessions
    from mtf_gym.datasets import RecipeConfig, collect_recipe
    from mtf_gym.slate import PipelinePolicy

    env = _eval_env(section)
    session = env.unwrapped.slate_config.session  # the MTFSession-v1 config FusionPipelineEnv reproduces
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = collect_recipe(RecipeConfig(section.integrated_rl_recipe, sessions=section.integrated_rl_sessions,
                                       seed=seed, env=session), progress=False)
    collect_seconds = time.perf_counter() - start
    agent = build_agent_for(INTEGRATED_RL_ROW, dict(section.integrated_rl_overrides),
                            {"hidden_units": section.hidden_units, "batch_size": section.batch_size})
    start = time.perf_counter()
    with d3rlpy_logs_quiet():  # d3rlpy logs every epoch at INFO: keep the benchmark's output to its own words
        metrics = agent.fit(data, section.integrated_rl_steps, seed=seed, show_progress=False)
    train_seconds = time.perf_counter() - start
    pipeline = PipelinePolicy(env, fusion=agent)  # the agent maps user observations (N, 19) to fusion weights
    start = time.perf_counter()
    returns = play_sessions(env, lambda obs, info, live: pipeline(obs, info), section.user_seed)
    env.close()
    return {"returns": returns.tolist(), "train_seconds": collect_seconds + train_seconds,
            "collect_seconds": collect_seconds, "fit_seconds": train_seconds,
            "eval_seconds": time.perf_counter() - start,
            "dataset": {"recipe": section.integrated_rl_recipe, "sessions": data.num_episodes,
                        "transitions": len(data), "mean_return": float(data.episode_returns().mean())},
            "train_metrics": {k: float(v) for k, v in metrics.items()}}


def _fusion_cma_job(section: SlateSection, seed: int) -> dict[str, Any]:
    from mtf_bench.headroom import cma_search
    from mtf_bench.slate_properties import play_sessions
    from mtf_gym import BaselinePolicy
    from mtf_gym.slate import PipelinePolicy

    env = _eval_env(section)
    session = env.unwrapped.slate_config.session  # the MTFSession-v1 config FusionPipelineEnv reproduces
    start = time.perf_counter()
    policy = cma_search(session, "observation", train_users=section.fusion_train_users,
                        generations=section.fusion_generations, seed=seed + 1,  # cma reads seed 0 as "the clock"
                        base=BaselinePolicy(session).action.astype(np.float64), sigma0=0.15, log=lambda s: None)
    train_seconds = time.perf_counter() - start
    pipeline = PipelinePolicy(env, fusion=lambda user_obs: policy(None, user_obs))
    start = time.perf_counter()
    returns = play_sessions(env, lambda obs, info, live: pipeline(obs, info), section.user_seed)
    env.close()
    return {"returns": returns.tolist(), "train_seconds": train_seconds, "eval_seconds": time.perf_counter() - start,
            "policy": {"features": policy.features, "base": policy.base.tolist(), "weights": policy.weights.tolist()}}


def _latency_job(section: SlateSection, agents: Sequence[str]) -> dict[str, Any]:
    if section.perf_slate_json:
        saved = read_json(section.perf_slate_json)
        if not isinstance(saved, dict) or "latency" not in saved:
            raise ValueError(f"slate.perf_slate_json must be a mtf_bench.perf_slate output, got "
                             f"{section.perf_slate_json!r}")
        return {"source": section.perf_slate_json, "rows": saved["latency"]}
    import torch

    from mtf_bench.perf_slate import policy_latencies

    torch.set_num_threads(1)
    rows: list[dict[str, Any]] = []
    for n in sorted(set(section.latency_sizes)):
        rows += policy_latencies(n, section.latency_repeats, list(agents))
    return {"source": "mtf_bench.perf_slate.policy_latencies", "rows": rows}


@dataclass(frozen=True)
class _Job:
    name: str  # the job's directory below the section's results directory
    identity: dict[str, Any]
    run: Callable[[], dict[str, Any]]


def plan_jobs(section: SlateSection) -> list[_Job]:
    """Every job of the section, references first (their identities say what a rerun must redo)."""
    common = {"env": SLATE_ENV, "num_items": section.num_items, "eval_users": section.eval_users,
              "user_seed": section.user_seed}
    jobs = [_Job("references", {"job": "references", **common}, lambda: _reference_job(section))]
    agents = section.agent_names()
    for agent in agents:
        for seed in section.seeds:
            identity = {"job": "agent", "agent": agent, "seed": seed, "steps": section.steps_for(agent),
                        "config": _agent_config(section, agent), **common}
            jobs.append(_Job(f"{agent}/seed{seed}", identity, lambda a=agent, s=seed: _agent_job(section, a, s)))
    if section.include_integrated_rl:
        for seed in section.seeds:
            identity = {"job": INTEGRATED_RL_ROW, "seed": seed, "recipe": section.integrated_rl_recipe,
                        "sessions": section.integrated_rl_sessions, "steps": section.integrated_rl_steps,
                        "overrides": section.integrated_rl_overrides, "hidden_units": list(section.hidden_units),
                        "batch_size": section.batch_size, **common}
            jobs.append(_Job(f"{INTEGRATED_RL_ROW}/seed{seed}", identity,
                             lambda s=seed: _integrated_rl_job(section, s)))
    if section.include_fusion_cma:
        for seed in section.seeds:
            identity = {"job": FUSION_CMA_ROW, "seed": seed, "generations": section.fusion_generations,
                        "train_users": section.fusion_train_users, **common}
            jobs.append(_Job(f"{FUSION_CMA_ROW}/seed{seed}", identity, lambda s=seed: _fusion_cma_job(section, s)))
    if section.latency_sizes or section.perf_slate_json:
        identity = {"job": "latency", "sizes": sorted(set(section.latency_sizes)), "agents": agents,
                    "repeats": section.latency_repeats, "perf_slate_json": section.perf_slate_json}
        jobs.append(_Job("latency", identity, lambda: _latency_job(section, agents)))
    return jobs


# ------------------------------------------------------------------------------------------------------- summary
def summarise(section: SlateSection, results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per policy: mean return, relative lift over the pipeline and over random, normalised score
    (random 0, oracle 100), each with a paired bootstrap interval; learned rows pool their seeds (two levels)."""
    refs = {k: np.asarray(v, np.float64) for k, v in results["references"]["returns"].items()}
    rand, pipe, orac = refs["random"], refs["pipeline (control)"], refs["oracle"]
    rng = np.random.default_rng(section.user_seed % 2**32)
    opts = {"confidence": section.confidence, "num_resamples": section.bootstrap, "rng": rng}
    arms: dict[str, tuple[np.ndarray, str]] = {name: (refs[name][None], "reference") for name in REFERENCE_ROWS}
    for name in [*section.agent_names(), *section.fusion_rows()]:
        runs = [results[f"{name}/seed{s}"]["returns"] for s in section.seeds]
        arms[name] = (np.asarray(runs, np.float64), FUSION_KINDS.get(name, "item-level agent"))
    rows = []
    for name, (returns, kind) in arms.items():
        per_user = returns.mean(axis=0)
        row: dict[str, Any] = {"name": name, "kind": kind, "seeds": int(returns.shape[0]),
                               "mean_return": bootstrap_ci(per_user, confidence=section.confidence,
                                                           num_resamples=section.bootstrap, rng=rng).as_dict(),
                               "seed_means": returns.mean(axis=1).tolist()}
        treatment = returns if returns.shape[0] > 1 else returns[0]
        row["lift_over_pipeline"] = None if name == "pipeline (control)" else paired_lift_ci(
            treatment, pipe, **opts).as_dict(100.0)
        row["lift_over_random"] = None if name == "random" else paired_lift_ci(treatment, rand, **opts).as_dict(100.0)
        if name in ("random", "oracle"):
            fixed = 0.0 if name == "random" else 100.0
            row["normalised"] = {"estimate": fixed, "low": fixed, "high": fixed}
        else:
            # mean(R - R_rand) / mean(R_orac - R_rand) = 1 + the relative lift of the first over the second.
            ratio = paired_lift_ci(treatment - rand, orac - rand, **opts)
            row["normalised"] = {key: 100.0 * (1.0 + value) for key, value in ratio.as_dict().items()}
        if name in results.get("references", {}).get("seconds", {}):
            row["eval_seconds"] = results["references"]["seconds"][name]
        else:
            row["train_seconds"] = float(np.mean([results[f"{name}/seed{s}"]["train_seconds"]
                                                  for s in section.seeds]))
        rows.append(row)
    return rows


def _fmt(ci: dict[str, float] | None, suffix: str = "", sign: bool = False) -> str:
    if ci is None:
        return "-"
    spec = "+.1f" if sign else ".1f"
    return f"{ci['estimate']:{spec}}{suffix} [{ci['low']:{spec}}, {ci['high']:{spec}}]"


def render_markdown(section: SlateSection, rows: list[dict[str, Any]], latency: dict[str, Any] | None,
                    latency_png: str | None) -> str:
    conf = round(100 * section.confidence)
    steps = ", ".join(f"{a} {section.steps_for(a):,}" for a in section.agent_names())
    lines = [
        f"# Slate section: item-level agents on {SLATE_ENV}",
        "",
        f"N = {section.num_items:,} items; {section.eval_users:,} evaluation users (seeds {section.user_seed}.."
        f"{section.user_seed + section.eval_users - 1}), the same for every row; training seeds "
        f"{list(section.seeds)}; training requests per agent and seed: {steps}; hidden units "
        f"{list(section.hidden_units)}. Intervals: {conf}% paired bootstrap ({section.bootstrap} resamples); for "
        "learned rows a two-level bootstrap (seeds, then users) of the returns pooled over seeds. Normalised score: "
        "100 mean(R - R_random) / mean(R_oracle - R_random).",
        "",
        "| policy | kind | seeds | mean session return | lift over the pipeline | lift over random | "
        "normalised (random 0, oracle 100) | train s/seed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        train = f"{row['train_seconds']:.0f}" if "train_seconds" in row else "-"
        norm = _fmt(row["normalised"]) if row["name"] not in ("random", "oracle") else (
            f"{row['normalised']['estimate']:.0f} (by definition)")
        lines.append(f"| {row['name']} | {row['kind']} | {row['seeds']} | {_fmt(row['mean_return'])} | "
                     f"{_fmt(row['lift_over_pipeline'], '%', True)} | {_fmt(row['lift_over_random'], '%', True)} | "
                     f"{norm} | {train} |")
    if section.include_integrated_rl:
        overrides = ", ".join(f"{k} = {v}" for k, v in section.integrated_rl_overrides.items())
        lines += ["", f"`{INTEGRATED_RL_ROW}`: the production pipeline (retrieval, ranker, top-K) with the zoo's "
                  "fusion-level IntegratedRL choosing the fusion weights per request: trained offline "
                  f"({section.integrated_rl_steps:,} gradient steps, batch {section.batch_size}, hidden units "
                  f"{list(section.hidden_units)}{', ' + overrides if overrides else ''}) on a "
                  f"`{section.integrated_rl_recipe}` exploration dataset of {section.integrated_rl_sessions:,} "
                  "MTFSession-v1 sessions per seed with the slate env's user configuration."]
    if section.include_fusion_cma:
        lines += ["", f"`{FUSION_CMA_ROW}`: the same pipeline with a linear fusion policy of the user observation "
                  f"found by CMA-ES ({section.fusion_generations} generations, {section.fusion_train_users} "
                  "training users per candidate; mtf_bench.headroom.cma_search, the method of the zoo's ES "
                  "baseline) on MTFSession-v1 users with the slate env's session config."]
    lines += ["", "![normalised score](slate_normalised.png)"]
    if latency is not None:
        lines += ["", f"## Decision latency per request (batch 1, median; {latency['source']})", "",
                  "| N | policy / agent | kind | ms / request |", "|---|---|---|---|"]
        for r in latency["rows"]:
            lines.append(f"| {r['N']:,} | {r['name']} | {r['kind']} | {1e3 * r['seconds']:.3f} |")
        if latency_png:
            lines += ["", "Dashed: O(N), O(N^(1/2)), O(N^(1/3)) reference slopes.", "",
                      f"![decision latency]({latency_png})"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------- runner
@dataclass(frozen=True)
class SlateRun:
    """What :func:`run_slate_section` did: ``slate.md`` (``None`` when a job failed: no partial table), the jobs
    that failed (name -> traceback) and the jobs that were skipped as already done."""

    markdown: Path | None
    failed: dict[str, str]
    skipped: tuple[str, ...]


def slate_job_status(section: SlateSection, results_dir: str | Path) -> list[tuple[str, bool]]:
    """``(job name, done?)`` of every job of ``section`` under ``results_dir`` (``mtf-bench --dry-run``)."""
    out = Path(results_dir)
    return [(job.name, _done(out / job.name / RESULT_FILE, job.identity) is not None) for job in plan_jobs(section)]


def run_slate_section(section: SlateSection, results_dir: str | Path, *, echo: Callable[[str], None] = print,
                      on_finished: Callable[[str], None] | None = None) -> SlateRun:
    """Run (or resume) every job of ``section`` under ``results_dir``; write ``slate.json``, ``slate.md`` and the
    figures there. A failed job does not stop the others; it is returned (and a rerun retries it).
    ``on_finished(name)`` is called after each job that ran has written its result (the run's records)."""
    from mtf_bench.harness.plots import Estimate, plot_interval_estimates

    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan_jobs(section)
    results: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    skipped: list[str] = []
    for job in jobs:
        path = out / job.name / RESULT_FILE
        saved = _done(path, job.identity)
        if saved is not None:
            echo(f"slate: {job.name} done (skipped)")
            results[job.name] = saved
            skipped.append(job.name)
            continue
        start = time.perf_counter()
        try:
            payload = job.run()
        except Exception as exc:  # one broken agent must not lose the others' results
            echo(f"slate: FAILED {job.name}: {type(exc).__name__}: {exc}")
            failed[job.name] = "".join(traceback.format_exception(exc))
            continue
        payload = {"identity": job.identity, "identity_hash": _identity_hash(job.identity),
                   "job_seconds": time.perf_counter() - start, **payload}
        atomic_write_json(path, payload)
        if on_finished is not None:
            on_finished(job.name)
        results[job.name] = payload
        echo(f"slate: {job.name} ({payload['job_seconds']:.0f} s)")
    if failed:
        echo(f"slate: {len(failed)} job(s) failed, no table written; rerun to retry them (finished jobs are kept)")
        return SlateRun(None, failed, tuple(skipped))
    rows = summarise(section, results)
    atomic_write_json(out / "slate.json", {"section": dataclasses.asdict(section), "rows": rows})
    estimates = {r["name"]: Estimate(r["normalised"]["estimate"], r["normalised"]["low"], r["normalised"]["high"])
                 for r in rows}
    plot_interval_estimates(estimates, out / "slate_normalised", xlabel="normalised score (random 0, oracle 100), "
                            f"{round(100 * section.confidence)}% bootstrap interval",
                            title=f"{SLATE_ENV}, N = {section.num_items:,}: seeds {list(section.seeds)}, "
                                  f"{section.eval_users} users")
    latency = results.get("latency")
    latency_png = None
    if latency is not None and len({r["N"] for r in latency["rows"]}) > 1:
        from mtf_bench.perf_slate import plot_latency
        from mtf_gym.atomic import atomic_path

        with atomic_path(out / "latency.png") as tmp:
            plot_latency(latency["rows"], str(tmp))
        latency_png = "latency.png"
    md = out / "slate.md"
    atomic_write_text(md, render_markdown(section, rows, latency, latency_png))
    return SlateRun(md, failed, tuple(skipped))


# ------------------------------------------------------------------------------------------------------------ CLI
def load_section(preset: str, overrides: Sequence[str] = ()) -> tuple[SlateSection, str]:
    """The ``[slate]`` table of ``benchmarks/presets/<preset>.toml`` (and the preset's ``results_dir``) with
    ``KEY=VALUE`` overrides (values in TOML syntax)."""
    from mtf_bench.harness.presets import PRESET_DIR, available_presets

    path = PRESET_DIR / f"{preset}.toml"
    if not path.is_file():
        raise ValueError(f"preset must be one of {available_presets()}, got {preset!r}")
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    table = dict(data.get("slate", {}))
    for expr in overrides:
        key, _, value = expr.partition("=")
        if not key or not _:
            raise ValueError(f"--set expects KEY=VALUE (a [slate] key), got {expr!r}")
        table[key.strip()] = tomllib.loads(f"v = {value}")["v"] if value.strip() else ""
    table["enabled"] = True  # asked for by name: run it whatever the preset's default
    hints = {f.name: f.type for f in dataclasses.fields(SlateSection)}
    unknown = sorted(set(table) - set(hints))
    if unknown:
        raise ValueError(f"unknown [slate] key(s) {unknown}; valid keys: {sorted(hints)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    return SlateSection(**kwargs), str(data.get("results_dir", "results"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtf_bench.harness.slate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick", help="preset whose [slate] table is used (default quick)")
    parser.add_argument("--results-dir", help="parent directory (default: the preset's results_dir); the section "
                                              "writes to <results-dir>/<preset>/slate/")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                        help="override a [slate] key, e.g. seeds=[0,1,2] or train_steps=500; repeatable")
    args = parser.parse_args(argv)
    try:
        section, results_dir = load_section(args.preset, args.assignments)
        section.agent_names()
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    out = Path(args.results_dir or results_dir) / args.preset / "slate"
    start = time.perf_counter()
    run = run_slate_section(section, out)
    if run.markdown is None:
        print(f"failed: {sorted(run.failed)}", file=sys.stderr)
        return 1
    print(run.markdown.read_text())
    print(f"wrote {run.markdown}, {out / 'slate.json'}, {out / 'slate_normalised.png'}; "
          f"wall {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

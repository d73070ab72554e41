"""Tests for the benchmark harness: presets and overrides, the grid, atomic output, the CLI's errors, and the
``smoke`` preset end to end (every file, finite numbers), with an injected job failure, resume, and a SIGTERM kill."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from mtf_bench.harness import cli
from mtf_bench.harness.grid import build_grid
from mtf_bench.harness.jobs import load_job_dataset, run_job
from mtf_bench.harness.presets import PresetError, available_presets, load_preset, parse_assignment
from mtf_bench.harness.report import publish
from mtf_bench.harness.runner import run_preset
from mtf_gym.atomic import atomic_path, atomic_write_json, clean_temporaries, read_json

REPO = Path(__file__).resolve().parents[1]
PLOTS = ("online_lift", "weighted_gauc", "progressive_rounds", "exploration_offsets", "action_deviation", "ablations",
         "gauc_vs_online", "fqe_vs_online", "learning_curves", "iqm_normalised_return", "probability_of_improvement",
         "performance_profiles", "saturation")
# A two-job grid (one offline agent on one recipe, one online agent) for the kill/resume test.
TINY_RUN = ("--set", "collection.recipes=uniform", "--agents", "iql,es", "--set", "ablation.enabled=false",
            "--set", "evaluation.sessions=50", "--set", "evaluation.bootstrap=100", "--workers", "0")
KINDS = {"bcq": "offline", "cql": "offline", "iql": "offline", "ddpg": "offline", "td3bc": "offline",
         "integrated_rl": "offline", "ddpg_va": "offline", "es": "online", "sac": "online", "td3": "online",
         "ppo": "online"}


# ----------------------------------------------------------------------------------------------------------------------
# Presets and overrides
# ----------------------------------------------------------------------------------------------------------------------
def test_shipped_presets() -> None:
    assert {"smoke", "quick", "paper", "standard"} <= set(available_presets())
    standard = load_preset("standard")
    assert len(standard.seeds) >= 5 and standard.tuning.enabled and set(standard.agents.names) == set(KINDS)
    assert standard.es_steps >= 80_000 and standard.agents.checkpoints >= 8
    assert standard.env_id == "MTFSession-v1" and standard.device == "cpu"
    quick = load_preset("quick")
    assert set(quick.agents.names) == set(KINDS)  # every zoo agent
    assert quick.collection.recipes == ("gaussian", "uniform", "progressive") and len(quick.seeds) == 3
    assert quick.workers == 2 and quick.ablation.enabled
    paper = load_preset("paper")
    assert paper.agents.overrides["integrated_rl"]["n_critics"] == 24
    assert paper.agents.hidden_units == (256, 256) and paper.agents.n_steps == 300_000
    assert paper.agents.batch_size == 256 and paper.device.startswith("cuda")
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.workers = 3  # type: ignore[misc]


def test_overrides_from_assignments_and_toml(tmp_path: Path) -> None:
    config = tmp_path / "over.toml"
    config.write_text('seeds = [4]\n[agents]\nn_steps = 77\n[agents.overrides.iql]\nexpectile = 0.8\n'
                      '[env]\nmax_requests = 12\n')
    preset = load_preset("quick", config_files=(config,),
                         assignments=("agents.n_steps=500", "agents.names=iql,cql", "collection.band=0.2",
                                      "env.reward.like=3.0"))
    assert preset.seeds == (4,)
    assert preset.agents.n_steps == 500  # --set wins over --config
    assert preset.agents.names == ("iql", "cql")
    assert preset.agents.overrides == {"integrated_rl": {"n_critics": 8}, "iql": {"expectile": 0.8}}
    assert preset.collection.band == 0.2
    env = preset.env_config()
    assert env.max_requests == 12 and env.reward.like == 3.0
    assert parse_assignment("a.b=[1, 2]") == {"a": {"b": [1, 2]}}


@pytest.mark.parametrize(("assignment", "message"), [
    ("agents.n_step=5", r"unknown key\(s\) \['agents.n_step'\]"),
    ("agents.n_steps=abc", "agents.n_steps must be an integer"),
    ("agents.n_steps=0", "agents.n_steps must be an integer >= 1"),
    ("executor=slurm", "executor must be one of"),
    ("collection.recipes=gaussian,other", "collection.recipes must be distinct names"),
    ("env.max_requests=0", "env: MTFSessionV1Config.max_requests"),
    ("env.user.speed=1", r"env: unknown MTFSession-v1 config field\(s\) \['user'\].*allowed names: \['catalogue'"),
    ("env.dynamics.leave_bia=1", r"\['dynamics.leave_bia'\].*allowed names in dynamics: .*'leave_bias'"),
    ("env_id=MTFSession-v7", r"env_id must be one of \['MTFSession-v0', 'MTFSession-v1'\]"),
    ("agents", "--set expects KEY=VALUE"),
])
def test_bad_overrides_name_the_key(assignment: str, message: str) -> None:
    with pytest.raises(PresetError, match=message):
        load_preset("quick", assignments=(assignment,))


def test_bad_toml_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("agents = [")
    with pytest.raises(PresetError, match="not valid TOML"):
        load_preset("quick", config_files=(bad,))
    with pytest.raises(PresetError, match="cannot read"):
        load_preset("quick", config_files=(tmp_path / "missing.toml",))


# ----------------------------------------------------------------------------------------------------------------------
# CLI input errors
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (["nope"], "unknown preset 'nope'; available presets: paper, quick, smoke, standard"),
    (["smoke", "--agents", "iql,nope"], "unknown agent(s) ['nope']"),
    (["smoke", "--set", "agents.n_stepz=3"], "unknown key(s) ['agents.n_stepz']"),
    (["smoke", "--seeds", "0,x"], "--seeds must be comma-separated integers"),
    (["smoke", "--set", "agents.overrides.iql.expectile=2.0"], "agent 'iql' rejects its settings"),
    (["smoke", "--set", "agents.overrides.iql.not_a_field=1"], "no config field(s) ['not_a_field']"),
])
def test_cli_bad_input_is_a_clear_error(args: list[str], message: str, capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([*args, "--results-dir", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "mtf-bench: error:" in err and message in err
    assert not any(tmp_path.iterdir())  # nothing started


def test_cli_help_and_show_config(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--set KEY=VALUE" in text and "--env-id {MTFSession-v0,MTFSession-v1}" in text
    assert "--env-id MTFSession-v0" in text  # how to run the first version
    assert cli.main(["smoke", "--show-config", "--workers", "3"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["workers"] == 3 and shown["env_id"] == "MTFSession-v1"
    assert cli.main(["smoke", "--show-config", "--env-id", "MTFSession-v0"]) == 0
    assert json.loads(capsys.readouterr().out)["env_id"] == "MTFSession-v0"


@pytest.mark.parametrize("name", ["smoke", "quick", "standard", "paper"])
def test_every_preset_benchmarks_v1_and_can_run_v0(name: str, tmp_path: Path) -> None:
    from mtf_gym import MTFSessionConfig, MTFSessionV1Config

    preset = load_preset(name, assignments=(f'results_dir="{tmp_path}"', "env.max_requests=12"))
    assert preset.env_id == "MTFSession-v1" and preset.run_dir == tmp_path / name
    config = preset.env_config()
    assert type(config) is MTFSessionV1Config and config.max_requests == 12
    v0 = load_preset(name, assignments=(f'results_dir="{tmp_path}"', "env.max_requests=12",
                                        "env_id=MTFSession-v0"))
    assert type(v0.env_config()) is MTFSessionConfig and v0.env_config().max_requests == 12
    assert v0.run_dir == tmp_path / f"{name}-v0"  # the two versions' runs never share a directory
    grid, grid_v0 = build_grid(preset, KINDS), build_grid(v0, KINDS)
    assert {j.env_id for j in (*grid.datasets, *grid.trains)} == {"MTFSession-v1"}
    assert {j.env_id for j in (*grid_v0.datasets, *grid_v0.trains)} == {"MTFSession-v0"}
    assert grid.datasets[0].config_hash != grid_v0.datasets[0].config_hash
    # A v0 dataset job's identity is what it was before datasets recorded their env id (resumed runs reuse it).
    assert "env_id" not in grid_v0.datasets[0].identity() and "env_id" in grid.datasets[0].identity()


def test_tiny_harness_run_on_v0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The v0 path end to end (the smoke fixture below covers v1): datasets, an offline and an online agent, report."""
    args = ["smoke", "--results-dir", str(tmp_path), "--no-progress", "--env-id", "MTFSession-v0", *TINY_RUN,
            "--set", "collection.sessions=20", "--set", "collection.test_sessions=20"]
    assert cli.main(args) == 0
    run_dir = tmp_path / "smoke-v0"
    assert not (tmp_path / "smoke").exists()
    for job in ("iql__uniform__seed0", "es__online__seed0"):
        result = json.loads((run_dir / "jobs" / job / "result.json").read_text())
        assert result["status"] == "ok" and result["env_id"] == "MTFSession-v0"
        assert json.loads((run_dir / "jobs" / job / "model" / "agent.json").read_text())["observation_dim"] == 18
    data = load_job_dataset(run_dir, "uniform", 0)
    assert data.env_id == "MTFSession-v0" and data.obs_dim == 18 and type(data.env_config()).__name__ == (
        "MTFSessionConfig")
    assert json.loads((run_dir / "datasets" / "seed0" / "test" / "result.json").read_text())["env_id"] == (
        "MTFSession-v0")
    report = (run_dir / "report.md").read_text()
    assert "- **Environment.** `MTFSession-v0` with its default config" in report
    assert "--env-id MTFSession-v1" in report


# ----------------------------------------------------------------------------------------------------------------------
# Grid and atomic output
# ----------------------------------------------------------------------------------------------------------------------
def test_grid_layout_and_identity(tmp_path: Path) -> None:
    preset = load_preset("quick", assignments=(f'results_dir="{tmp_path}"',))
    grid = build_grid(preset, KINDS)
    ids = {j.job_id for j in grid.trains}
    assert len([i for i in ids if i.endswith("__seed0") and "+" not in i and "_w0" not in i]) == 7 * 3 + 4
    assert {"ppo__online__seed2", "bcq__progressive__seed1", "integrated_rl+critics24__uniform__seed0"} <= ids
    job = next(j for j in grid.trains if j.job_id == "iql__uniform__seed1")
    assert job.directory == tmp_path / "quick" / "jobs" / "iql__uniform__seed1"
    assert job.needs == ("uniform__seed1", "test__seed1")
    assert job.common["hidden_units"] == [64, 64] and job.overrides == {}
    # Ablation variants all train with the ablation budget; the band and critic axes share their common point.
    band = {p.value: p.job_ids for p in grid.ablations if p.group == "band"}
    critics = {p.value: p.job_ids for p in grid.ablations if p.group == "critics"}
    assert band[0.15] == critics[8.0] == ("integrated_rl+band0.15__uniform__seed0",)
    assert {j.n_steps for j in grid.trains if "+" in j.label} == {preset.ablation.n_steps}
    # The identity hash changes with anything that changes the result, and with the datasets read.
    other = build_grid(load_preset("quick", assignments=(f'results_dir="{tmp_path}"', "collection.sessions=999")),
                       KINDS)
    twin = next(j for j in other.trains if j.job_id == job.job_id)
    assert twin.config_hash != job.config_hash


def test_per_agent_budgets_reach_the_grid_tuning_and_report_selection(tmp_path: Path) -> None:
    from mtf_bench.harness.aggregate import main_runs
    from mtf_bench.harness.grid import tuning_jobs

    preset = load_preset("quick", assignments=(f'results_dir="{tmp_path}"', "agents.agent_steps.ddpg_va=777",
                                               "agents.agent_steps.ppo=4321", "tuning.enabled=true", "tuning.n_steps=0",
                                               "tuning.online_steps=0"))
    trains = build_grid(preset, KINDS).trains
    steps = {j.job_id: j.n_steps for j in trains}
    assert steps["ddpg_va__uniform__seed0"] == 777 and steps["ppo__online__seed1"] == 4321
    assert steps["iql__uniform__seed0"] == preset.agents.n_steps
    assert steps["sac__online__seed0"] == preset.agents.online_steps and steps["es__online__seed0"] == preset.es_steps
    # Tuning without budgets of its own uses each agent's grid budget.
    tune = {j.agent: j.n_steps for j in tuning_jobs(preset, KINDS)[1]}
    assert tune["ddpg_va"] == 777 and tune["ppo"] == 4321 and tune["iql"] == preset.agents.n_steps

    runs = [types.SimpleNamespace(job=j) for j in trains]  # main_runs reads only the job
    picked = main_runs(preset, runs, "ddpg_va", "uniform")
    assert picked and {r.job.n_steps for r in picked} == {777}
    with pytest.raises(PresetError, match=r"agents.agent_steps.es"):
        load_preset("quick", assignments=("agents.agent_steps.es=10",))
    with pytest.raises(PresetError, match=r"agents.agent_steps.nope"):
        load_preset("quick", assignments=("agents.agent_steps.nope=10",))
    with pytest.raises(PresetError, match=r"agents.agent_steps.iql"):
        load_preset("quick", assignments=("agents.agent_steps.iql=0",))


def test_checkpoint_selection_on_validation_users_publishes_the_best_checkpoint(tmp_path: Path) -> None:
    """With ``agents.select_checkpoint = "validation"`` each run's published model is the checkpoint with the best
    validation return (checked by scoring the saved model on the validation users again); runs that publish their
    last policy keep their job identities."""
    from mtf_agents import load_agent
    from mtf_bench.harness.jobs import LAST_MODEL_DIR, MODEL_DIR, SELECTED_MODEL_DIR
    from mtf_gym.envs.versions import make_env_config
    from mtf_gym.evaluation import simulate_sessions

    last = build_grid(load_preset("smoke", assignments=(f'results_dir="{tmp_path}"',)), KINDS).trains
    assert not any("select_checkpoint" in j.evaluation for j in last)  # the default adds nothing to the identity
    preset = load_preset("smoke", assignments=(f'results_dir="{tmp_path}"', 'agents.select_checkpoint="validation"',
                                               "tuning.sessions=40"))
    selecting = build_grid(preset, KINDS).trains
    assert [j.job_id for j in selecting] == [j.job_id for j in last]
    assert all(a.config_hash != b.config_hash for a, b in zip(last, selecting))
    assert selecting[0].evaluation["validation_user_seed"] == preset.tuning.user_seed
    args = ["smoke", "--results-dir", str(tmp_path), "--no-progress", *TINY_RUN, "--set", "collection.sessions=20",
            "--set", "collection.test_sessions=20", "--set", 'agents.select_checkpoint="validation"',
            "--set", "tuning.sessions=40", "--set", "agents.n_steps=60", "--set", "agents.checkpoints=4"]
    assert cli.main(args) == 0
    run_dir = tmp_path / "smoke"
    chosen_earlier = 0
    published_vs_last = {}
    for name in ("iql__uniform__seed0", "es__online__seed0"):
        job = run_dir / "jobs" / name
        result = json.loads((job / "result.json").read_text())
        selection = result["selection"]
        means = selection["validation_mean_returns"]
        with np.load(job / "curve.npz") as arrays:
            steps = arrays["steps"].tolist()
            assert np.allclose(arrays["validation_returns"].mean(axis=1), means)
            curve = arrays["returns"]
        assert len(means) == len(steps) == 4 and selection["last_step"] == steps[-1]
        assert selection["selected_step"] == steps[int(np.argmax(means))]  # the first of any tie
        # One seed: the report's "published vs last" is the selected row's mean over the last row's, on curve users.
        published_vs_last[name] = curve[steps.index(selection["selected_step"])].mean() / curve[-1].mean() - 1
        env = make_env_config("MTFSession-v1", json.loads((job / "config.json").read_text())["env"])
        published = simulate_sessions(load_agent(job / MODEL_DIR), 40, preset.tuning.user_seed, env).returns.mean()
        assert published == pytest.approx(means[steps.index(selection["selected_step"])], rel=1e-6)
        assert not (job / SELECTED_MODEL_DIR).exists()
        if selection["selected_step"] != steps[-1]:
            chosen_earlier += 1
            kept = simulate_sessions(load_agent(job / LAST_MODEL_DIR), 40, preset.tuning.user_seed, env)
            assert kept.returns.mean() == pytest.approx(means[-1], rel=1e-6)
        else:
            assert not (job / LAST_MODEL_DIR).exists()
    assert chosen_earlier >= 1  # ES's tiny budgets give tied checkpoints: the earliest is published
    report = (run_dir / "report.md").read_text()
    assert "**Published policies are chosen on validation users**" in report
    assert "published checkpoint per seed (validation-selected) | published vs last checkpoint |" in report
    for name, label in (("iql__uniform__seed0", "| iql | uniform |"), ("es__online__seed0", "| es | online |")):
        row = next(line for line in report.splitlines()
                   if line.startswith(label) and (" gradient steps | " in line or " requests | " in line))
        assert row.split("|")[-2].strip().startswith(f"{100 * published_vs_last[name]:+.2f}%")
    with pytest.raises(PresetError, match=r"agents.select_checkpoint"):
        load_preset("smoke", assignments=('agents.select_checkpoint="best"',))
    with pytest.raises(PresetError, match=r"agents.checkpoints"):
        load_preset("smoke", assignments=('agents.select_checkpoint="validation"', "agents.checkpoints=1"))


def test_normalisation_reference_is_the_ladder_oracle_rerun_on_the_ab_users(tmp_path: Path) -> None:
    """``report.reference = "ladder"``: the 100 of the normalised score is the best ``oracle ...`` rung of a ladder
    record, its saved policy rerun on the A/B users. A record whose best oracle is the control's own constant must
    give exactly the control arm's mean; every run the ladder does not describe falls back to the control, and the
    report says why."""
    from mtf_bench.harness.aggregate import _normalisation
    from mtf_gym import BaselinePolicy
    from mtf_gym.evaluation import simulate_sessions

    preset = load_preset("smoke", assignments=("evaluation.curve_sessions=10", "evaluation.sessions=40"))
    env, ev = preset.env_config(), preset.evaluation
    control = BaselinePolicy(env).action.astype(np.float64)

    def rung(name: str, lift: float, base: np.ndarray) -> dict:
        policy = {"features": "constant", "base": base.tolist(), "weights": np.zeros((0, len(base))).tolist(),
                  "mean": [], "std": []}
        return {"name": name, "lift": {"estimate": lift}, "policy": policy}

    record = {"rungs": [{"name": "control", "lift": {"estimate": 0.0}, "policy": None},
                        rung("best constant", 0.9, np.zeros_like(control)),  # not an oracle: never the reference
                        rung("oracle per-user", 0.01, -np.ones_like(control)),
                        rung("oracle state-dependent", 0.03, control)]}
    path = tmp_path / "ladder.json"
    atomic_write_json(path, record)
    baseline = simulate_sessions(BaselinePolicy(env), ev.sessions, ev.user_seed, env)
    random = simulate_sessions(BaselinePolicy(env), ev.sessions, ev.user_seed + 10_000, env)  # any lower arm
    ladder = dataclasses.replace(preset, report=dataclasses.replace(preset.report, ladder_record=str(path)))
    norm = _normalisation(ladder, baseline, random)
    assert norm.reference_return == pytest.approx(float(baseline.returns.mean()), rel=1e-12)
    assert norm.reference.startswith("the headroom ladder's best oracle, 'oracle state-dependent' (")
    assert "(+0.00% over the control)" in norm.reference
    # The control as the reference, by choice or because the ladder does not describe the run.
    for changes, why in (({"report": dataclasses.replace(preset.report, reference="control")},
                          "report.reference = 'control'"),
                         ({"env": {"max_requests": 20}}, "with env overrides ['max_requests']"),
                         ({"env_id": "MTFSession-v0"}, "this run is MTFSession-v0"),
                         ({"report": dataclasses.replace(preset.report, ladder_record=str(tmp_path / "none.json"))},
                          "is not a readable headroom ladder record")):
        other = dataclasses.replace(ladder, **changes)
        norm = _normalisation(other, baseline, random)
        assert norm.reference_return == float(baseline.returns.mean()) and norm.reference.startswith(
            "the control arm (BaselinePolicy): ") and why in norm.reference, norm.reference
    atomic_write_json(path, {"rungs": record["rungs"][:2]})
    why = _normalisation(ladder, baseline, random).reference
    assert "(unusable record: the headroom ladder record has no oracle rung" in why
    # One reference at a time; bad settings name the key.
    with pytest.raises(PresetError, match=r"report\.reference must be 'control' when evaluation\.reference_return"):
        load_preset("smoke", assignments=("evaluation.reference_return=40.0",))
    with pytest.raises(PresetError, match=r"report\.reference must be one of \('control', 'ladder'\), got 'best'"):
        load_preset("smoke", assignments=('report.reference="best"',))
    assert load_preset("smoke", assignments=('report.reference="control"', "evaluation.reference_return=40.0"))


def test_atomic_writes_leave_nothing_half_written(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    atomic_write_json(target, {"a": 1.0, "nan": float("nan"), "arr": np.arange(2)})
    assert read_json(target) == {"a": 1.0, "nan": None, "arr": [0, 1]}
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("{half")
        raise RuntimeError("killed mid-write")
    assert read_json(target)["a"] == 1.0  # the old file is intact, the temporary is gone
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
    (tmp_path / ".tmp-result-x.json").write_text("{")
    assert clean_temporaries(tmp_path) == 1 and [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_dataset_job_working_copy_and_minari_export(tmp_path: Path) -> None:
    from mtf_gym.datasets import load_dataset

    preset = load_preset("smoke", assignments=(f'results_dir="{tmp_path}"', "collection.minari=true",
                                               "collection.test_sessions=20"))
    job = build_grid(preset, KINDS).datasets[0]
    assert job.job_id == "test__seed0"
    outcome = run_job(job)
    assert outcome.status == "ok", outcome.error
    data = load_job_dataset(preset.run_dir, "test", 0)
    assert data.num_episodes == 20 and data.has_item_logs
    exported = load_dataset("mtf/test-seed0-v0", job.directory / "minari")
    assert exported.content_hash() == data.content_hash()
    result = read_json(job.directory / "result.json")
    atomic_write_json(job.directory / "result.json", {**result, "content_sha256": "0" * 64})
    with pytest.raises(ValueError, match="does not match the content hash"):
        load_job_dataset(preset.run_dir, "test", 0)


# ----------------------------------------------------------------------------------------------------------------------
# The smoke preset end to end (one run shared by the tests below)
# ----------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run ``smoke`` with an injected failure in the ES job, then rerun it (resume) without the failure."""
    root = tmp_path_factory.mktemp("bench")
    args = ["smoke", "--results-dir", str(root), "--no-progress"]
    from mtf_agents.es import ESAgent

    original = ESAgent._fit_online

    def failing(self: ESAgent, *args: object, **kwargs: object) -> dict[str, float]:
        raise RuntimeError("injected failure")

    ESAgent._fit_online = failing  # the ES job fails while training; every other job must still finish
    try:
        first_rc = cli.main(args)
    finally:
        ESAgent._fit_online = original
    run_dir = root / "smoke"
    results = {p.parent.name: (p.stat().st_mtime_ns, p.read_text()) for p in run_dir.glob("jobs/*/result.json")}
    first_report = (run_dir / "report.md").read_text()
    traceback = (run_dir / "jobs" / "es__online__seed0" / "traceback.txt").read_text()
    preset = load_preset("smoke", assignments=(f'results_dir="{root}"',))
    summary = run_preset(preset, progress=False, echo=lambda _: None)
    return {"run_dir": run_dir, "first_rc": first_rc, "first_results": results, "first_report": first_report,
            "traceback": traceback, "summary": summary}


def test_smoke_failure_is_isolated(smoke_run: dict) -> None:
    run_dir = smoke_run["run_dir"]
    assert smoke_run["first_rc"] == 1  # a failed job makes the run fail...
    assert "es__online__seed0" not in smoke_run["first_results"]  # ...but the others finished
    assert len(smoke_run["first_results"]) == 8
    assert "RuntimeError: injected failure" in smoke_run["traceback"]
    assert not (run_dir / "jobs" / "es__online__seed0" / "traceback.txt").exists()  # gone once the rerun succeeded
    assert "## Runs that did not finish" in smoke_run["first_report"]
    assert "es__online__seed0 | RuntimeError: injected failure" in smoke_run["first_report"]


def test_training_saturation_is_cached_per_finished_run(smoke_run: dict) -> None:
    from mtf_bench.harness.grid import build_grid
    from mtf_bench.harness.results import TRAINING_SATURATION_FILE, training_saturation

    preset = load_preset("smoke", assignments=(f'results_dir="{smoke_run["run_dir"].parent}"',))
    jobs = [j for j in build_grid(preset, KINDS).trains if j.dataset == "progressive" and j.agent_kind == "offline"]
    assert jobs
    job = jobs[0]
    cache = job.directory / TRAINING_SATURATION_FILE
    first = training_saturation(job)
    assert first is not None and first["rows"] > 0 and len(first["band_edge_per_dim"]) == 10
    # A cache written for another result (a rerun of the job) is not trusted: the value is measured again.
    saved = json.loads(cache.read_text())
    cache.write_text(json.dumps({"result_sha256": "stale", "saturation": {"band_edge": -1.0}}))
    assert training_saturation(job) == first
    assert json.loads(cache.read_text()) == saved


def test_smoke_resume_skips_finished_jobs(smoke_run: dict) -> None:
    summary = smoke_run["summary"]
    # The failed ES job, then what explores around its policy (the exploration-centre ablation), and nothing else.
    assert [o.job_id for o in summary.ran] == ["es__online__seed0", "uniform_centre_es__seed0",
                                               "integrated_rl+centre_es__uniform_centre_es__seed0"]
    assert len(summary.skipped) == 13 and not summary.failed
    for job_id, (mtime, text) in smoke_run["first_results"].items():
        path = smoke_run["run_dir"] / "jobs" / job_id / "result.json"
        assert path.stat().st_mtime_ns == mtime and path.read_text() == text


def test_a_run_finished_with_another_code_default_is_stale(smoke_run: dict, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A job's hash covers its settings, not the agent's code defaults: a finished run whose recorded config differs
    from what the code builds now (a changed default) is not done, and --dry-run names the field; a field the record
    lacks (added to the config later) is not compared."""
    import shutil

    from mtf_bench.harness.jobs import is_done, stale_config_fields

    shutil.copytree(smoke_run["run_dir"], tmp_path / "smoke")  # the module's run stays untouched
    preset = load_preset("smoke", assignments=(f'results_dir="{tmp_path}"',))
    job = next(j for j in build_grid(preset, KINDS).trains if j.agent == "iql")
    path = job.directory / "result.json"
    result = json.loads(path.read_text())
    assert is_done(job) and not stale_config_fields(job, result)
    expectile = result["config"]["expectile"]
    del result["config"]["batch_size"]  # as if the field did not exist when the job ran
    path.write_text(json.dumps(result))
    assert is_done(job)
    result["config"]["expectile"] = 0.5  # as if the code default had been 0.5 when the job ran
    path.write_text(json.dumps(result))
    assert not is_done(job) and stale_config_fields(job, result) == {"expectile": (0.5, expectile)}
    assert cli.main(["smoke", "--results-dir", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    row = next(i for i, line in enumerate(out) if f" {job.job_id} " in line)
    assert out[row].startswith("stale ") and out[row + 1].strip() == f"expectile: 0.5 -> {expectile!r}"
    assert out[-1].startswith("1 of ")


def test_smoke_outputs_are_complete_and_finite(smoke_run: dict) -> None:
    run_dir = smoke_run["run_dir"]
    for name in ("config.json", "runs.csv", "runs.json", "summary.json", "report.md"):
        assert (run_dir / name).is_file(), name
    for plot in PLOTS:
        for suffix in (".png", ".svg"):
            path = run_dir / "plots" / f"{plot}{suffix}"
            assert path.is_file() and path.stat().st_size > 1000, path
    job_dirs = sorted((run_dir / "jobs").iterdir())
    assert len(job_dirs) == 10
    for job_dir in job_dirs:
        for name in ("config.json", "log.txt", "result.json", "sessions.npz", "curve.npz", "model/agent.json"):
            assert (job_dir / name).is_file(), job_dir / name
        result = json.loads((job_dir / "result.json").read_text())
        assert result["status"] == "ok" and result["env_id"] == "MTFSession-v1"
        assert json.loads((job_dir / "model" / "agent.json").read_text())["observation_dim"] == 19
        values = [*result["online"].values(), result["gauc"], *result["action_deviation"], *result["timings"].values(),
                  result["fqe"]["value"], result["saturation"]["action_edge"], result["saturation"]["band_edge"],
                  *result["curve"]["mean_returns"]]
        assert all(math.isfinite(v) for v in values), job_dir
        # The learning curve ends at the run's budget; smoke asks for 3 checkpoints.
        assert result["curve"]["steps"][-1] >= result["n_steps"] and len(result["curve"]["steps"]) == 3
        with np.load(job_dir / "curve.npz") as curve:
            assert curve["returns"].shape == (3, 50)
    for ds in ("test", "gaussian", "uniform", "progressive", "uniform_w0.10", "uniform_centre_es"):
        result = json.loads((run_dir / "datasets" / "seed0" / ds / "result.json").read_text())
        assert result["num_episodes"] == 60 and math.isfinite(result["mean_return"])
        assert result["env_id"] == "MTFSession-v1"  # the presets' default version
        assert (run_dir / "datasets" / "seed0" / ds / "data.npz").is_file()
    rounds = json.loads((run_dir / "datasets" / "seed0" / "progressive" / "result.json").read_text())
    assert [r["round"] for r in rounds["progressive_rounds"]] == [0, 1]
    # The exploration-centre ablation's data: explored around ES's saved policy (state-dependent), with the main
    # bounded-uniform dataset's users and noise (same collection seed), so only the centre differs.
    centred = json.loads((run_dir / "datasets" / "seed0" / "uniform_centre_es" / "result.json").read_text())
    uniform = json.loads((run_dir / "datasets" / "seed0" / "uniform" / "result.json").read_text())
    assert centred["centre"]["policy"] == "es" and centred["centre"]["source"] == "given"
    assert centred["centre"]["varies_across_states"] and not uniform["centre"]["varies_across_states"]
    assert centred["collection_seed"] == uniform["collection_seed"]
    assert centred["content_sha256"] != uniform["content_sha256"]
    report_text = (run_dir / "report.md").read_text()
    assert "**exploration_centre**" in report_text and "uniform_centre_es" in report_text
    runs = json.loads((run_dir / "runs.json").read_text())["runs"]
    assert len(runs) == 10 and all(r["status"] == "ok" for r in runs)
    for row in runs:
        for key in ("return", "valid_views", "watch_time_min", "requests", "normalised_return", "lift_return",
                    "lift_return_low", "lift_return_high", "gauc", "fqe", "band_edge_share", "fit_s"):
            assert math.isfinite(row[key]), (row["job_id"], key)
        # Around the training transitions' own centres: measured for progressive data only (elsewhere the centre
        # is the baseline, which band_edge_share already uses).
        own = row["training_band_edge_share"]
        assert (0.0 <= own <= 1.0) if row["dataset"] == "progressive" else own is None, row["job_id"]
    header = (run_dir / "runs.csv").read_text().splitlines()[0].split(",")
    assert {"job_id", "agent", "dataset", "seed", "return", "lift_return", "gauc"} <= set(header)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(summary["claims"]) >= 9 and all(c["verdict"] for c in summary["claims"])
    assert summary["normalisation"]["reference_return"] > summary["normalisation"]["random_return"]
    # smoke runs MTFSession-v1 with its default config: the 100 is the headroom ladder's best oracle (the repo's
    # record), which beats the control on these users too.
    assert summary["normalisation"]["reference"].startswith("the headroom ladder's best oracle, 'oracle ")
    assert {c["curve"]["status"] for c in summary["cells"]} <= {"converged", "still improving", "declining"}
    assert any(p["x"] == "integrated_rl/uniform" for p in summary["probability_of_improvement"])
    report = (run_dir / "report.md").read_text()
    for section in ("## The paper's claims, checked", "## Main results", "## Aggregate statistics over seeds (rliable)",
                    "## Learning curves and convergence", "## Saturation", "## Exploration datasets",
                    "## Ablations of IntegratedRL", "## Offline vs online agreement", "## Wall time per stage"):
        assert section in report
    for plot in PLOTS:
        assert f"(plots/{plot}.png)" in report
    # The convergence table names each curve's highest checkpoint and counts the verdicts, with the number of
    # false "improving"/"declining" verdicts expected by chance among all of the run's curves (5% of them).
    curve_rows = [line for line in report.splitlines() if line.startswith("| ") and "**" in line
                  and line.rstrip().endswith("%) |")]
    cells = summary["cells"]
    assert len(curve_rows) == len(cells)
    verdicts = re.search(r"^Verdicts: (.*)\. Each verdict is a separate test at 95%: if every one of the (\d+) curves "
                         r"had levelled off, about (\d+\.\d) would", report, re.M)
    assert verdicts and int(verdicts.group(2)) == len(cells)
    assert float(verdicts.group(3)) == pytest.approx(round(0.05 * len(cells), 1))
    assert "collection: progressive" in report and "training: iql" in report
    # Exploring's cost vs the baseline (test) data: seeds pooled, with its interval (independent samples).
    cost_rows = [line for line in report.splitlines()
                 if line.startswith(("| gaussian | 1 | 60 |", "| uniform | 1 | 60 |"))]
    assert len(cost_rows) == 2 and all(re.search(r"[+-]\d+\.\d\d% \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\] \|$", row)
                                       for row in cost_rows), cost_rows
    assert "- **Environment.** `MTFSession-v1` with its default config" in report
    data = load_job_dataset(run_dir, "uniform", 0)
    assert data.env_id == "MTFSession-v1" and data.obs_dim == 19
    assert data.env_config() == load_preset("smoke").env_config()
    assert not list(run_dir.rglob(".tmp-*"))


def test_one_arms_intervals_do_not_depend_on_the_other_arms(smoke_run: dict) -> None:
    """Every interval draws from a generator keyed by what it compares: aggregating without the IQL runs (a cell
    in the middle of the report's order) leaves every other cell's lifts, GAUC interval and curve bit-identical, and
    the keyed generators differ between comparisons (so they are not one stream in disguise)."""
    from mtf_bench.harness.aggregate import aggregate, comparison_rng
    from mtf_bench.harness.results import LoadedResults, load_datasets, load_results

    preset = load_preset("smoke", assignments=(f'results_dir="{smoke_run["run_dir"].parent}"',))
    grid = build_grid(preset, KINDS)
    loaded = load_results(grid)
    datasets = load_datasets(preset.run_dir, preset.collection.recipes, preset.seeds, loaded.datasets)
    full = aggregate(preset, grid, loaded, datasets)
    kept = tuple(r for r in loaded.runs if r.job.agent != "iql")
    assert 0 < len(kept) < len(loaded.runs)
    partial = aggregate(preset, grid, LoadedResults(kept, loaded.datasets), datasets)
    dropped = {key for key in full.cells if key[0] == "iql"}
    assert dropped and ("es", "online") in partial.cells  # ES comes after IQL in the report's order
    assert set(partial.cells) == set(full.cells) - dropped
    for key, cell in partial.cells.items():
        assert cell.lifts == full.cells[key].lifts, key
        assert cell.gauc == full.cells[key].gauc, key
        assert cell.curve == full.cells[key].curve, key
    draws = [comparison_rng(*key).random() for key in (("lift", "a"), ("lift", "b"), ("lift", "a"))]
    assert draws[0] == draws[2] != draws[1]


def test_publish_copies_report_and_plots(smoke_run: dict, tmp_path: Path) -> None:
    target = tmp_path / "docs" / "results.md"
    assert publish(smoke_run["run_dir"], target) == target
    text = target.read_text()
    assert "(results/online_lift.png)" in text and "(plots/" not in text
    for plot in PLOTS:
        assert (tmp_path / "docs" / "results" / f"{plot}.png").is_file()
    with pytest.raises(FileNotFoundError, match="run the benchmark first"):
        publish(tmp_path / "nothing", target)


# ----------------------------------------------------------------------------------------------------------------------
# Records: a run carried to a fresh machine without its data
# ----------------------------------------------------------------------------------------------------------------------
def _run_files(run_dir: Path, pattern: str) -> dict[str, str]:
    return {str(p.relative_to(run_dir)): p.read_text() for p in sorted(run_dir.glob(pattern))}


def test_records_carry_a_run_to_a_fresh_machine(smoke_run: dict, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = smoke_run["run_dir"]
    records, fresh = tmp_path / "records", tmp_path / "fresh"
    assert cli.main(["smoke", "--results-dir", str(run_dir.parent), "--export-records", str(records)]) == 0
    assert "exported 16 job record(s) (6 dataset, 10 train)" in capsys.readouterr().out
    # No data and no model travels, except the policy that centres a dataset's exploration.
    assert not list(records.rglob("data.npz")) and not list(records.rglob("*.d3"))
    assert [str(p.relative_to(records)) for p in records.rglob("model")] == ["jobs/es__online__seed0/model"]
    assert len(list(records.glob("jobs/*/sessions.npz"))) == len(list(records.glob("jobs/*/curve.npz"))) == 10
    assert (records / "jobs" / "iql__progressive__seed0" / "saturation_training.json").is_file()
    for record in records.glob("jobs/*/*.npz"):  # stored compressed, the same arrays
        with np.load(record) as carried, np.load(run_dir / record.relative_to(records)) as original:
            assert carried.files == original.files
            assert all(np.array_equal(carried[k], original[k]) for k in original.files)
    # Importing into the run they came from keeps every finished job as it is.
    mtimes = {p: p.stat().st_mtime_ns for p in run_dir.glob("jobs/*/result.json")}
    assert cli.main(["smoke", "--results-dir", str(run_dir.parent), "--import-records", str(records),
                     "--dry-run"]) == 0
    assert "imported 0 job record(s) (none), 16 kept" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in run_dir.glob("jobs/*/result.json")} == mtimes
    # --records DIR (records_dir) imports them before anything else, a dry run included.
    assert cli.main(["smoke", "--results-dir", str(tmp_path / "other"), "--records", str(records), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("\ndone  train ") == 10 and "6 of 16 job(s) to run" in out
    # On a fresh machine: the datasets are collected again (and must match their records), no training job runs,
    # and the report's per-run table is the original's.
    assert cli.main(["smoke", "--results-dir", str(fresh), "--import-records", str(records), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "imported 16 job record(s) (6 dataset, 10 train), 0 kept" in out
    assert "6 job(s) ran, 10 already done, 0 failed" in out
    carried = fresh / "smoke"
    assert _run_files(carried, "jobs/*/result.json") == _run_files(run_dir, "jobs/*/result.json")
    hashes = [{k: json.loads(v)["content_sha256"] for k, v in _run_files(d, "datasets/*/*/result.json").items()}
              for d in (run_dir, carried)]
    assert hashes[0] == hashes[1] and len(hashes[0]) == 6
    assert (carried / "runs.csv").read_text() == (run_dir / "runs.csv").read_text()


def test_a_dataset_collected_again_must_match_its_record(smoke_run: dict, tmp_path: Path) -> None:
    from mtf_bench.harness.jobs import finished_result
    from mtf_bench.harness.records import export_records, import_records
    from mtf_bench.harness.runner import plan

    preset = load_preset("smoke", assignments=(f'results_dir="{smoke_run["run_dir"].parent}"',))
    export_records(preset, plan(preset), tmp_path / "records", echo=lambda _: None)
    record = tmp_path / "records" / "datasets" / "seed0" / "uniform" / "result.json"
    tampered = {**json.loads(record.read_text()), "content_sha256": "0" * 64}
    record.write_text(json.dumps(tampered))
    carried = load_preset("smoke", assignments=(f'results_dir="{tmp_path / "fresh"}"',))
    import_records(tmp_path / "records", carried.run_dir, echo=lambda _: None)
    job = next(d for d in plan(carried).datasets if d.job_id == "uniform__seed0")
    assert finished_result(job) is None  # a record without its data is not a finished dataset
    outcome = run_job(job)
    assert outcome.status == "failed" and "differs from its record" in (outcome.error or "")
    # The record stays, the differing data does not: the job stays unfinished until someone deletes it on purpose.
    assert read_json(job.directory / "result.json") == tampered
    assert not (job.directory / "data.npz").exists() and finished_result(job) is None


def test_import_records_of_nothing_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["smoke", "--results-dir", str(tmp_path), "--import-records", str(tmp_path / "missing"),
                  "--dry-run"])
    assert exc.value.code == 2 and "is not a directory of exported records" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------------------
# Kill with SIGTERM, then resume
# ----------------------------------------------------------------------------------------------------------------------
def test_sigterm_then_resume(tmp_path: Path) -> None:
    """Kill a run after its first training result; the rerun redoes nothing finished and leaves no corrupt file."""
    # ES gets a long budget, so the run is still inside it when the first (IQL) result appears and the signal lands,
    # however slowly a loaded machine polls.
    cmd = [sys.executable, "-m", "mtf_bench", "smoke", "--results-dir", str(tmp_path), "--no-progress", *TINY_RUN,
           "--set", "agents.es_steps=2000000"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    jobs_dir = tmp_path / "smoke" / "jobs"
    deadline = time.monotonic() + 600  # generous: on a loaded machine the first result can take minutes
    while not list(jobs_dir.glob("*/result.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be killed:\n{proc.communicate()[0]}"
    assert list(jobs_dir.glob("*/result.json")), "no training result within the deadline"
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, output
    assert "rerun the same command to resume" in output

    run_dir = tmp_path / "smoke"
    assert not list(run_dir.rglob(".tmp-*"))  # interrupted writers cleaned up after themselves
    for path in run_dir.rglob("*.json"):
        json.loads(path.read_text())  # every JSON on disk is complete
    before = {p.parent.name: p.stat().st_mtime_ns for p in jobs_dir.glob("*/result.json")}
    assert before and len(before) < 2

    # Resume in this process (the report is covered by the smoke tests): only the unfinished job runs.
    preset = load_preset("smoke", assignments=(f'results_dir="{tmp_path}"', "collection.recipes=uniform",
                                               "agents.names=iql,es", "ablation.enabled=false",
                                               "evaluation.sessions=50", "evaluation.bootstrap=100", "workers=0"))
    summary = run_preset(preset, progress=False, report=False, echo=lambda _: None)
    assert not summary.failed
    assert {o.job_id for o in summary.skipped} == {"test__seed0", "uniform__seed0", *before}
    after = {p.parent.name: p.stat().st_mtime_ns for p in jobs_dir.glob("*/result.json")}
    assert set(after) == {"iql__uniform__seed0", "es__online__seed0"}
    assert all(after[job] == mtime for job, mtime in before.items())


def test_dry_run_lists_every_job_with_its_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mtf_bench.harness import cli

    args = ["smoke", "--results-dir", str(tmp_path), "--dry-run", "--set", "slate.enabled=true",
            "--set", "slate.seeds=[0, 1, 2]"]
    assert cli.main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    kinds = {line.split()[1] for line in lines[:-1]}
    assert kinds == {"dataset", "train", "slate"} and all(line.startswith("todo ") for line in lines[:-1])
    assert any(" slate/tpgr/seed2 " in line for line in lines)
    assert lines[-1] == f"{len(lines) - 1} of {len(lines) - 1} job(s) to run"
    assert not (tmp_path / "smoke" / "jobs").exists()  # nothing ran


def test_slate_section_runs_beside_the_grid_in_its_own_process(tmp_path: Path) -> None:
    # With workers > 0 the serial slate section runs in a spawned process while the grid's jobs run; the main
    # process then finds every slate job done (skipped) and writes the section's table.
    lines: list[str] = []
    slate = ("slate.enabled=true", "slate.num_items=1000", "slate.train_steps=16", "slate.eval_users=8",
             "slate.seeds=[0, 1, 2]", "slate.hidden_units=[8]", "slate.fusion_generations=1",
             "slate.fusion_train_users=2", "slate.latency_sizes=[]", "slate.bootstrap=100",
             "slate.integrated_rl_sessions=8", "slate.integrated_rl_steps=4", "slate.batch_size=16",
             "slate.agent_steps={fcpo=32, tpgr=32}")
    records = tmp_path / "records"
    preset = load_preset("smoke", assignments=(f'results_dir="{tmp_path}"', "collection.recipes=uniform",
                                               "agents.names=es", "ablation.enabled=false", "evaluation.sessions=50",
                                               "evaluation.bootstrap=100", "evaluation.fqe_steps=0", "workers=1",
                                               f'records_dir="{records}"', *slate))
    summary = run_preset(preset, progress=False, report=False, echo=lines.append)
    assert not summary.failed
    out = tmp_path / "smoke" / "slate"
    # records_dir: every job's record is written as it finishes (the slate side process's too), before the run's
    # final export, which finds them all up to date.
    slate_jobs = sorted(p.parent.relative_to(out) for p in out.rglob("result.json"))
    assert slate_jobs and sorted(p.parent.relative_to(records / "slate")
                                 for p in (records / "slate").rglob("result.json")) == slate_jobs
    last_job_done = max(p.stat().st_mtime_ns for p in (tmp_path / "smoke").glob("jobs/*/result.json"))
    dataset_record = records / "datasets" / "seed0" / "uniform" / "result.json"
    assert dataset_record.stat().st_mtime_ns < last_job_done
    assert (records / "jobs" / "es__online__seed0" / "sessions.npz").is_file()
    final = [line for line in lines if line.startswith("exported ")]
    assert len(final) == 1 and " 0 job record(s) (none), " in final[0], final
    assert any(line.startswith("slate section: running beside the other jobs") for line in lines)
    log = (out / "log.txt").read_text()
    assert "slate: references (" in log and "slate: tpgr/seed0 (" in log  # run by the side process...
    main_lines = [line for line in lines if line.startswith("slate: ")]
    assert main_lines and all(line.endswith("done (skipped)") for line in main_lines)  # ...not again here
    assert (out / "slate.md").is_file() and summary.stage_seconds["slate_wall_s"] > 0


# ----------------------------------------------------------------------------------------------------------------------
# Ray (only where the optional extra is installed)
# ----------------------------------------------------------------------------------------------------------------------
def test_ray_executor_runs_the_same_jobs(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    preset = load_preset("smoke", assignments=(f'results_dir="{tmp_path}"', "collection.recipes=uniform",
                                               "agents.names=iql,es", "ablation.enabled=false", "executor=ray",
                                               "workers=2", "evaluation.sessions=50"))
    summary = run_preset(preset, progress=False, report=False, echo=lambda _: None)
    assert not summary.failed and len(summary.ran) == 4
    assert (tmp_path / "smoke" / "jobs" / "iql__uniform__seed0" / "result.json").is_file()


def test_ray_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    from mtf_bench.harness import executors

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(RuntimeError, match=r"pip install 'mtf-gym\[ray\]'"):
        executors.make_executor("ray", 2)
    with pytest.raises(SystemExit) as exc:
        cli.main(["smoke", "--executor", "ray", "--results-dir", str(tmp_path)])
    assert exc.value.code == 2 and "needs Ray, which is not installed" in capsys.readouterr().err

"""The equal hyperparameter search on a tiny budget: every agent gets the same number of configurations, trained on
validation data and scored on validation users disjoint from the A/B users; the winners reach the grid's jobs; the
report lists space and winner; ``mtf-bench --tune`` reruns the search."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mtf_bench.harness import cli
from mtf_bench.harness.grid import tuning_jobs
from mtf_bench.harness.presets import PresetError, load_preset
from mtf_bench.harness.runner import agent_kinds, plan, run_preset
from mtf_bench.harness.tuning import CONFIGURATIONS, SEARCH_SPACES, expand_trial

TINY = ("ablation.enabled=false", "collection.recipes=uniform", "agents.names=iql,es", "tuning.enabled=true",
        "tuning.n_steps=10", "tuning.online_steps=200", "tuning.sessions=30", "evaluation.fqe_steps=0",
        "agents.checkpoints=2", "tuning.agent_steps.es=300")


def test_every_agent_gets_the_same_number_of_configurations() -> None:
    from mtf_agents.registry import BUILTIN_AGENTS

    # The fusion agents (the slate agents play MTFSlate-v0 and have their own benchmark section).
    fusion = {spec.name for spec in BUILTIN_AGENTS if spec.env.startswith("MTFSession")}
    assert set(SEARCH_SPACES) == fusion and CONFIGURATIONS >= 6
    assert all(math.prod(len(v) for v in space.values()) == CONFIGURATIONS for space in SEARCH_SPACES.values())
    from mtf_agents.registry import build_agent

    base = build_agent("iql").config
    out = expand_trial({"lr_scale": 3.0, "expectile": 0.9}, base)
    assert out == {"expectile": 0.9, "actor_learning_rate": pytest.approx(9e-4),
                   "critic_learning_rate": pytest.approx(9e-4)}
    for agent, space in SEARCH_SPACES.items():  # every searched value is a valid setting of the agent
        for key, values in space.items():
            for value in values:
                build_agent(agent, **expand_trial({key: value}, build_agent(agent).config))


def test_validation_must_be_disjoint_from_training_and_ab_users() -> None:
    with pytest.raises(PresetError, match=r"tuning\.seed must be a seed not in the preset's seeds"):
        load_preset("smoke", assignments=("tuning.enabled=true", "tuning.seed=0"))
    with pytest.raises(PresetError, match=r"tuning\.user_seed must be a range disjoint from the A/B users"):
        load_preset("smoke", assignments=("tuning.enabled=true", "tuning.user_seed=1000000050"))
    with pytest.raises(PresetError, match=r"tuning\.agent_steps\.nope must be an agent of agents\.names"):
        load_preset("smoke", assignments=("tuning.enabled=true", "tuning.agent_steps.nope=5"))
    with pytest.raises(PresetError, match=r"tuning\.agent_steps\.es must be an integer >= 1"):
        load_preset("smoke", assignments=("tuning.enabled=true", "tuning.agent_steps.es=0"))


def test_a_subset_of_agents_keeps_the_whole_presets_jobs(tmp_path: Path) -> None:
    """``mtf-bench standard --agents td3`` runs (the per-agent budgets of the other agents are dropped, the kept
    agent's stay), and every job it plans has the whole preset's identity: TD3's search and runs, and the progressive
    data, which IntegratedRL's search shapes although IntegratedRL is not run."""
    results = ("results_dir=" + json.dumps(str(tmp_path)),)
    whole = load_preset("standard", assignments=results)
    subset = load_preset("standard", assignments=(*results, 'agents.names=["td3"]'))
    assert subset.agents.agent_steps == {"td3": whole.agents.agent_steps["td3"]}
    assert subset.tuning.agent_steps == {"td3": whole.tuning.agent_steps["td3"]}
    # A budget the overrides name themselves is still checked against the agents they choose.
    with pytest.raises(PresetError, match=r"agents\.agent_steps\.ppo must be an agent of agents\.names \['td3'\]"):
        load_preset("standard", assignments=('agents.names=["td3"]', "agents.agent_steps.ppo=5"))

    def identities(preset):
        grid = plan(preset)
        validation, searches = tuning_jobs(preset, agent_kinds(preset.agents.names))
        return {j.job_id: j.config_hash for j in [*validation, *searches, *grid.datasets, *grid.trains]}

    all_jobs, some_jobs = identities(whole), identities(subset)
    assert "tune__integrated_rl" in some_jobs and any(j.startswith("progressive__") for j in some_jobs)
    assert {j for j in some_jobs if j.startswith("td3__")} == {f"td3__online__seed{s}" for s in whole.seeds}
    assert {j: all_jobs.get(j) for j in some_jobs} == some_jobs
    # A finished IntegratedRL search reaches the subset's progressive data as it reaches the whole preset's.
    search = next(j for j in tuning_jobs(whole, agent_kinds(whole.agents.names))[1] if j.agent == "integrated_rl")
    search.directory.mkdir(parents=True)
    (search.directory / "result.json").write_text(json.dumps({"status": "ok", "config_hash": search.config_hash,
                                                              "winner_overrides": {"eta": 3.0}}))
    progressive = {d.job_id: d.config_hash for d in plan(subset).datasets if d.name == "progressive"}
    assert progressive == {d.job_id: d.config_hash for d in plan(whole).datasets if d.name == "progressive"}
    assert progressive != {j: h for j, h in some_jobs.items() if j.startswith("progressive__")}
    # ``--tune`` with the subset redoes TD3's search only: the search its data depends on is kept.
    td3_search = next(j for j in tuning_jobs(subset, agent_kinds(subset.agents.names))[1] if j.agent == "td3")
    td3_search.directory.mkdir(parents=True)
    (td3_search.directory / "result.json").write_text(json.dumps({"status": "ok",
                                                                  "config_hash": td3_search.config_hash}))
    cli._discard_searches(subset)
    assert not (td3_search.directory / "result.json").exists() and (search.directory / "result.json").exists()


def test_search_runs_and_its_winners_reach_the_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    preset = load_preset("smoke", assignments=(f'results_dir="{tmp_path}"', *TINY))
    summary = run_preset(preset, progress=False, echo=lambda _: None)
    assert not summary.failed, [o.error for o in summary.failed]
    run_dir = tmp_path / "smoke"
    winners = {}
    for agent in ("iql", "es"):
        result = json.loads((run_dir / "tuning" / agent / "result.json").read_text())
        assert len(result["trials"]) == CONFIGURATIONS
        assert len({json.dumps(t["params"], sort_keys=True) for t in result["trials"]}) == CONFIGURATIONS
        best = max(result["trials"], key=lambda t: t["validation_return"])
        assert result["winner"] == best["params"]
        winners[agent] = result["winner_overrides"]
    # The validation dataset has its own seed; the trained jobs carry the winners.
    assert (run_dir / "datasets" / "seed900" / "uniform" / "result.json").is_file()
    jobs = {j.agent: j for j in plan(preset).trains}
    for agent, overrides in winners.items():
        assert jobs[agent].overrides == overrides
        assert json.loads((jobs[agent].directory / "result.json").read_text())["config"].items() >= \
            {k: v for k, v in overrides.items()}.items()
    report = (run_dir / "report.md").read_text()
    assert "## Hyperparameter search (equal for every agent)" in report
    assert "| iql | lr_scale ∈ {0.3, 1, 3}; expectile ∈ {0.7, 0.9} | 10 (20) steps |" in report
    # A per-agent trial budget reaches that agent's search only, and the report names it.
    searches = {j.agent: j for j in tuning_jobs(preset, agent_kinds(preset.agents.names))[1]}
    assert searches["es"].n_steps == 300 and searches["iql"].n_steps == 10
    assert f"| 300 ({preset.es_steps:,}) requests |" in report and "`tuning.agent_steps`: es 300" in report
    iql_row = next(line for line in report.splitlines() if line.startswith("| iql | lr_scale"))
    seconds = json.loads((run_dir / "tuning" / "iql" / "result.json").read_text())["timings"]["total_s"]
    assert iql_row.endswith(f"| {seconds:.0f} |")  # the search's time, the tuning stage of the wall time
    # The control's return on the validation users, the yardstick of the trials' returns, is the simulated value.
    from mtf_gym.evaluation import simulate_sessions
    from mtf_gym.policies import BaselinePolicy

    env = preset.env_config()
    control = simulate_sessions(BaselinePolicy(env), preset.tuning.sessions, preset.tuning.user_seed, env)
    assert f"control arm (`BaselinePolicy`) scores {control.means()['return']:.3f}" in report
    # --tune reruns the search (same seeds: same winners, so the grid's finished jobs stay valid).
    first = (run_dir / "tuning" / "iql" / "result.json").stat().st_mtime_ns
    assert cli.main(["smoke", "--results-dir", str(tmp_path), "--no-progress", "--tune",
                     *[arg for a in TINY for arg in ("--set", a)]]) == 0
    assert (run_dir / "tuning" / "iql" / "result.json").stat().st_mtime_ns != first
    assert json.loads((run_dir / "tuning" / "iql" / "result.json").read_text())["winner_overrides"] == winners["iql"]
    assert "0 failed" in capsys.readouterr().out
    assert "(finished before, kept)" not in (run_dir / "tuning" / "iql" / "log.txt").read_text()  # --tune: afresh


def test_an_interrupted_search_resumes_from_its_kept_trials(tmp_path: Path) -> None:
    from mtf_bench.harness.jobs import run_job
    from mtf_bench.harness.records import export_records, import_records
    from mtf_bench.harness.tuning import TRIALS_DIR

    preset = load_preset("smoke", assignments=(f'results_dir="{tmp_path / "a"}"', *TINY, "agents.names=es"))
    search = tuning_jobs(preset, agent_kinds(preset.agents.names))[1][0]
    assert run_job(search).status == "ok"
    first = json.loads((search.directory / "result.json").read_text())
    trials = sorted((search.directory / TRIALS_DIR).glob("*.json"))
    assert len(trials) == CONFIGURATIONS
    # Interrupted after four trials: the rerun trains only the last two and finds the same search result.
    (search.directory / "result.json").unlink()
    for path in trials[:2]:
        path.unlink()
    export_records(preset, plan(preset), tmp_path / "records", echo=lambda _: None)  # a search under way travels
    assert len(list((tmp_path / "records" / "tuning" / "es" / TRIALS_DIR).glob("*.json"))) == CONFIGURATIONS - 2
    carried = load_preset("smoke", assignments=(f'results_dir="{tmp_path / "b"}"', *TINY, "agents.names=es"))
    import_records(tmp_path / "records", carried.run_dir, echo=lambda _: None)
    again = tuning_jobs(carried, agent_kinds(carried.agents.names))[1][0]
    assert run_job(again).status == "ok"
    log = (again.directory / "log.txt").read_text()
    assert log.count("(finished before, kept)") == CONFIGURATIONS - 2
    result = json.loads((again.directory / "result.json").read_text())
    assert result["trials"] == first["trials"] and result["winner"] == first["winner"]
    # The search time counts every trial, the kept ones with the time they took when they ran.
    from mtf_bench.harness.tuning import _search_time

    assert result["trial_kept"].count(True) == CONFIGURATIONS - 2 and None not in result["trial_seconds"]
    earlier = sum(json.loads(path.read_text())["seconds"] for path in trials[2:])
    assert earlier == pytest.approx(sum(s for s, k in zip(result["trial_seconds"], result["trial_kept"]) if k))
    assert _search_time(result) == f"{result['timings']['total_s'] + earlier:.0f}"
    untimed = {**result, "trial_seconds": [None if k else s for s, k in zip(result["trial_seconds"],
                                                                          result["trial_kept"])]}
    assert _search_time(untimed) == \
        f"≥ {result['timings']['total_s']:.0f} ({CONFIGURATIONS - 2} trial(s) from an earlier invocation not timed)"
    # A kept trial of another identity is not trusted.
    other = json.loads(trials[-1].read_text())
    trials[-1].write_text(json.dumps({**other, "config_hash": "another", "validation_return": 1e9}))
    assert run_job(search).status == "ok"
    assert json.loads((search.directory / "result.json").read_text())["trials"] == first["trials"]

"""The slate section of mtf-bench (benchmarks/harness/slate.py): files, table rows, intervals, the normalised score
recomputed by hand from the saved returns, resume, config errors, the preset table and the standalone CLI."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import mtf_gym  # noqa: F401  (registers the envs)
from mtf_bench.harness.presets import PresetError, load_preset
from mtf_bench.harness.slate import FUSION_CMA_ROW, INTEGRATED_RL_ROW, SlateSection, main, run_slate_section
from mtf_gym.slate import PipelinePolicy

AGENTS = ("fcpo", "tpgr", "wolpertinger")
TINY = {"num_items": 1000, "train_steps": 48, "eval_users": 12, "seeds": (0, 1), "hidden_units": (8,),
        "fusion_generations": 1, "fusion_train_users": 2, "latency_sizes": (), "bootstrap": 200,
        "integrated_rl_sessions": 8, "integrated_rl_steps": 4, "batch_size": 16,
        "integrated_rl_overrides": {"n_critics": 2}}
FUSION_ROWS = (INTEGRATED_RL_ROW, FUSION_CMA_ROW)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("slate")
    latency = out / "perf_slate.json"  # latency rows as mtf_bench.perf_slate writes them (two sizes: a plot)
    latency.write_text(json.dumps({"latency": [
        {"N": n, "name": name, "kind": kind, "seconds": s} for n, name, kind, s in
        ((1000, "oracle", "reference", 1e-3), (10000, "oracle", "reference", 1e-2),
         (1000, "tpgr", "agent", 1e-4), (10000, "tpgr", "agent", 1.5e-4))]}))
    section = SlateSection(**TINY, perf_slate_json=str(latency))
    run = run_slate_section(section, out / "run", echo=lambda s: None)
    return section, out / "run", run


def test_files_and_table_rows(tiny_run):
    section, out, run = tiny_run
    assert run.markdown == out / "slate.md" and not run.failed and not run.skipped
    for name in ["references", "latency", *(f"{a}/seed{s}" for a in [*AGENTS, *FUSION_ROWS] for s in section.seeds)]:
        assert (out / name / "result.json").is_file(), name
    for name in ("slate.json", "slate_normalised.png", "slate_normalised.svg", "latency.png"):
        assert (out / name).is_file(), name
    text = run.markdown.read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    policies = [line.split(" | ")[0][2:] for line in table]
    assert policies[:9] == ["policy", "random", "pipeline (control)", "oracle", *AGENTS, *FUSION_ROWS]
    # Each fusion-level row says which agent it is.
    assert "| integrated_rl | fusion agent through the pipeline: IntegratedRL (zoo, offline) | 2 |" in text
    assert "| fusion_cma | fusion agent through the pipeline: CMA-ES linear fusion | 2 |" in text
    assert "`integrated_rl`: the production pipeline" in text and "n_critics = 2" in text
    assert "| 10,000 | tpgr | agent | 0.150 |" in text and "![decision latency](latency.png)" in text


def test_intervals_ordered_and_normalised_by_hand(tiny_run):
    section, out, _ = tiny_run
    rows = {r["name"]: r for r in json.loads((out / "slate.json").read_text())["rows"]}
    for row in rows.values():
        for key in ("mean_return", "lift_over_pipeline", "lift_over_random", "normalised"):
            ci = row[key]
            if ci is not None:
                assert ci["low"] <= ci["estimate"] <= ci["high"], (row["name"], key, ci)
    assert rows["random"]["normalised"]["estimate"] == 0.0 and rows["oracle"]["normalised"]["estimate"] == 100.0
    refs = json.loads((out / "references" / "result.json").read_text())["returns"]
    rand, orac, pipe = (np.array(refs[k]) for k in ("random", "oracle", "pipeline (control)"))
    assert len(rand) == section.eval_users
    # The pipeline (one deterministic run): 100 mean(R - R_random) / mean(R_oracle - R_random).
    assert rows["pipeline (control)"]["normalised"]["estimate"] == pytest.approx(
        100 * (pipe - rand).mean() / (orac - rand).mean())
    # An agent: its returns pooled over the seeds, on the same users.
    tpgr = np.array([json.loads((out / f"tpgr/seed{s}" / "result.json").read_text())["returns"]
                     for s in section.seeds])
    assert tpgr.shape == (len(section.seeds), section.eval_users)
    assert rows["tpgr"]["normalised"]["estimate"] == pytest.approx(100 * (tpgr - rand).mean() / (orac - rand).mean())
    assert rows["tpgr"]["lift_over_pipeline"]["estimate"] == pytest.approx(100 * (tpgr.mean() / pipe.mean() - 1))
    assert rows["tpgr"]["seeds"] == 2
    # The IntegratedRL row: its own dataset and training per seed, then the same evaluation users.
    irl = [json.loads((out / f"integrated_rl/seed{s}" / "result.json").read_text()) for s in section.seeds]
    assert all(r["dataset"]["sessions"] == 8 and r["dataset"]["recipe"] == "uniform" for r in irl)
    irl_returns = np.array([r["returns"] for r in irl])
    assert irl_returns.shape == (len(section.seeds), section.eval_users)
    assert rows["integrated_rl"]["lift_over_random"]["estimate"] == pytest.approx(
        100 * (irl_returns.mean() / rand.mean() - 1))


def test_rerun_skips_finished_jobs_and_redoes_changed_ones(tiny_run):
    section, out, _ = tiny_run
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("result.json")}
    again = run_slate_section(section, out, echo=lambda s: None)
    assert not again.failed and len(again.skipped) == len(stamps)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("result.json")} == stamps
    # A changed budget for one agent reruns that agent's jobs only.
    changed = SlateSection(**{**TINY, "agent_steps": {"tpgr": 32}}, perf_slate_json=section.perf_slate_json)
    third = run_slate_section(changed, out, echo=lambda s: None)
    assert set(stamps) - {out / f"tpgr/seed{s}" / "result.json" for s in section.seeds} == {
        out / name / "result.json" for name in third.skipped}


def test_pipeline_policy_passes_user_observations_on_a_vector_env():
    env = gym.make_vec("MTFSlate-v0", num_envs=3, num_items=1000, expose_candidates=True)
    seen = []

    def fusion(user_obs: np.ndarray) -> np.ndarray:
        seen.append(user_obs.shape)
        return np.zeros((len(user_obs), env.unwrapped.slate_config.session.action_dim), np.float32)

    obs, info = env.reset(seed=0)
    pages = PipelinePolicy(env, fusion=fusion)(obs, info)
    assert pages.shape == (3, env.unwrapped.page_size)
    assert seen == [(3, obs.shape[1] - env.unwrapped.slate_config.session.catalogue.embedding_dim)]


@pytest.mark.parametrize("kwargs, field", [
    ({"enabled": True, "seeds": (0, 1)}, "seeds"),
    ({"num_items": 500}, "num_items"),
    ({"agents": ("iql",)}, "agents"),
    ({"agent_steps": {"tpgr": 0}}, "agent_steps.tpgr"),
    ({"agents": ("tpgr",), "agent_steps": {"iql": 10}}, "agent_steps"),
    ({"agent_overrides": {"iql": {"tau": 0.1}}}, "agent_overrides"),
    ({"agent_overrides": {"wolpertinger": 200}}, "agent_overrides.wolpertinger"),
    ({"latency_sizes": (1010,)}, "latency_sizes"),
    ({"integrated_rl_recipe": "progressive"}, "integrated_rl_recipe"),
    ({"integrated_rl_steps": 0}, "integrated_rl_steps"),
])
def test_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"slate.{field}"):
        SlateSection(**kwargs).agent_names()


def test_agent_overrides_reach_the_config_and_the_job_identity():
    from mtf_bench.harness.slate import plan_jobs

    base = SlateSection(**TINY)
    capped = SlateSection(**{**TINY, "agent_overrides": {"wolpertinger": {"max_neighbours": 50},
                                                         "fcpo": {"hidden_units": [4, 4]}}})
    ids = {job.name: job.identity for job in plan_jobs(base)}
    capped_ids = {job.name: job.identity for job in plan_jobs(capped)}
    assert capped_ids["wolpertinger/seed0"]["config"]["max_neighbours"] == 50  # a changed identity: a rerun
    assert ids["wolpertinger/seed0"]["config"]["max_neighbours"] != 50
    assert capped_ids["fcpo/seed0"]["config"]["hidden_units"] == [4, 4]  # wins over the section's hidden_units
    assert capped_ids["tpgr/seed0"] == ids["tpgr/seed0"]  # other agents' jobs are untouched
    with pytest.raises(ValueError, match="no_such_field"):
        plan_jobs(SlateSection(**{**TINY, "agent_overrides": {"tpgr": {"no_such_field": 1}}}))


def test_presets_carry_the_section():
    quick = load_preset("quick")
    assert quick.slate.enabled and len(quick.slate.seeds) >= 3 and quick.slate.num_items == 2000
    assert load_preset("standard").slate.enabled
    assert not load_preset("smoke").slate.enabled
    assert load_preset("quick", assignments=("slate.train_steps=77",)).slate.train_steps == 77
    with pytest.raises(PresetError, match="slate"):
        load_preset("quick", assignments=("slate.seeds=[0]",))


def test_cli_smoke(tmp_path, capsys):
    args = ["--preset", "quick", "--results-dir", str(tmp_path), "--set", "num_items=1000", "--set", "eval_users=8",
            "--set", 'agents=["tpgr"]', "--set", "train_steps=16", "--set", "agent_steps={}",  # not the preset's
            "--set", "include_fusion_cma=false", "--set", "include_integrated_rl=false",
            "--set", "latency_sizes=[]", "--set", "hidden_units=[8]", "--set", "bootstrap=50"]
    assert main(args) == 0
    assert "| tpgr | item-level agent | 3 |" in capsys.readouterr().out
    assert (tmp_path / "quick" / "slate" / "slate.md").is_file()
    with pytest.raises(SystemExit):
        main(["--preset", "quick", "--set", "nonsense=1"])


def test_mtf_bench_runs_the_section_when_the_preset_enables_it(tmp_path, monkeypatch):
    from mtf_bench.harness import runner, slate
    from mtf_bench.harness.slate import SlateRun

    calls = []

    def fake_section(section, results_dir, *, echo, on_finished=None):
        calls.append((section, results_dir))
        return SlateRun(None, {"tpgr/seed0": "Traceback: boom"}, ())

    monkeypatch.setattr(slate, "run_slate_section", fake_section)
    monkeypatch.setattr(runner, "_run_jobs", lambda *args, **kwargs: None)  # no grid jobs: only the hook runs
    for enabled in (False, True):
        preset = load_preset("smoke", assignments=(f"results_dir={json.dumps(str(tmp_path))}",
                                                   f"slate.enabled={str(enabled).lower()}", "slate.seeds=[0,1,2]"))
        summary = runner.run_preset(preset, progress=False, report=False, echo=lambda s: None)
    assert len(calls) == 1 and calls[0][1] == tmp_path / "smoke" / "slate" and calls[0][0] == preset.slate
    assert [o.job_id for o in summary.failed] == ["slate/tpgr/seed0"]


def test_validation_script_smoke(capsys):
    from mtf_bench import slate_validation

    assert slate_validation.main(["tpgr", "--steps", "16", "--num-items", "1000", "--users", "6", "--seeds", "0",
                                  "--set", "hidden_units=(8,)", "--set", "tree_method=kmeans"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("random: ")
    assert "tpgr seed 0, 16 requests {'hidden_units': (8,), 'tree_method': 'kmeans'}" in out
    # Validation users (seed + i) lie between the training users (seeds 0..) and the section's evaluation users.
    assert 10**6 < slate_validation.VALIDATION_USER_SEED < SlateSection().user_seed - 10**6


def test_agent_job_identity_holds_the_agent_config():
    from mtf_bench.harness.slate import plan_jobs

    jobs = {job.name: job.identity for job in plan_jobs(SlateSection(**TINY))}
    config = jobs["tpgr/seed0"]["config"]
    # The config as the job builds it: the section's hidden units, the agent's own defaults (a changed default reruns).
    assert config["hidden_units"] == [8] and config["learning_rate"] == 1e-3 and config["rollout_steps"] == 8
    assert jobs["wolpertinger/seed1"]["config"]["learning_rate"] == 3e-4

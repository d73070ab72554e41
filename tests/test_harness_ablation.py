"""The harness's IntegratedRL ablations: paper readings and critic sets q x m as grid groups whose new jobs leave
every existing job's id, config hash and dataset untouched (a resumed run adds only them), the progressive settings
honoured by the final training job, and the report's ablation and exploration-centre sections."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mtf_bench.harness import cli
from mtf_bench.harness.grid import READING_GROUPS, build_grid
from mtf_bench.harness.presets import PresetError, load_preset

KINDS = {"bcq": "offline", "cql": "offline", "iql": "offline", "ddpg": "offline", "td3bc": "offline",
         "integrated_rl": "offline", "ddpg_va": "offline", "es": "online", "sac": "online", "td3": "online",
         "ppo": "online"}
NEW_GROUPS_OFF = ("ablation.critic_sets=[]", "ablation.target_noise=[]", "ablation.actor_band_weights=[]",
                  "ablation.critic_penalties=[]", "ablation.progressive_data=[]", "ablation.progressive_init=[]",
                  "ablation.exploration_centres=[]")
TUNED = {"integrated_rl": {"eta": 3.0}, "iql": {"expectile": 0.9}}  # as a finished hyperparameter search gives


def _identities(grid) -> dict[str, str]:
    return {j.job_id: j.config_hash for j in (*grid.datasets, *grid.trains)}


@pytest.mark.parametrize("name", ["standard", "quick"])
def test_new_ablation_jobs_leave_existing_jobs_unchanged(name: str, tmp_path: Path) -> None:
    root = (f'results_dir="{tmp_path}"',)
    before = _identities(build_grid(load_preset(name, assignments=root + NEW_GROUPS_OFF), KINDS, TUNED))
    grid = build_grid(load_preset(name, assignments=root), KINDS, TUNED)
    after = _identities(grid)
    assert {k: after.get(k) for k in before} == before  # same ids, same hashes (datasets included)
    added = set(after) - set(before)
    assert added and all(a.startswith(("integrated_rl+", "progressive_", "uniform_centre_")) for a in added)
    preset = load_preset(name, assignments=root)
    seeds = preset.ablation.seeds
    # Every setting of every group is a point with one job per ablation seed; each group has one reference.
    groups = {p.group for p in grid.ablations}
    assert groups == {"band", "critics", "critic_sets", *READING_GROUPS, "exploration_centre"}
    for group in groups:
        points = [p for p in grid.ablations if p.group == group]
        assert all(len(p.job_ids) == len(seeds) for p in points)
        if group != "band":
            assert sum(p.reference for p in points) == 1, group
    sets = {p.setting: p for p in grid.ablations if p.group == "critic_sets"}
    critics = {p.value: p for p in grid.ablations if p.group == "critics"}
    assert set(sets) == {f"q={q}, m={m}" for q in (1, 3) for m in (2, 8, 24)}
    assert sets["q=1, m=2"].job_ids == critics[2.0].job_ids  # q = 1 reuses the critics group's jobs
    trains = {j.job_id: j for j in grid.trains}
    assert trains[sets["q=3, m=24"].job_ids[0]].overrides == {"eta": 3.0, "n_critics": 24, "num_critic_sets": 3}
    warm = next(p for p in grid.ablations if p.group == "progressive_init" and not p.reference)
    assert warm.dataset == "progressive_warm_start" and warm.setting == "warm_start"
    base = trains[f"integrated_rl__uniform__seed{seeds[0]}"].overrides
    assert base == {"eta": 3.0, "n_critics": 8}
    assert trains[warm.job_ids[0]].overrides == {**base, "progressive_init": "warm_start"}
    # The exploration-centre setting "es": a bounded-uniform dataset explored around the same seed's ES policy,
    # which waits for the ES job (its needs), and IntegratedRL with the main config trained on it.
    centre = next(p for p in grid.ablations if p.group == "exploration_centre" and not p.reference)
    centred = next(d for d in grid.datasets if d.job_id == f"uniform_centre_es__seed{seeds[0]}")
    es_job = trains[f"es__online__seed{seeds[0]}"]
    assert centred.needs == (es_job.job_id,) and centred.params["centre_hash"] == es_job.config_hash
    assert centre.dataset == "uniform_centre_es" and trains[centre.job_ids[0]].overrides == base
    assert centred.job_id in trains[centre.job_ids[0]].needs
    dataset = next(d for d in grid.datasets if d.job_id == f"progressive_warm_start__seed{seeds[0]}")
    main = next(d for d in grid.datasets if d.job_id == f"progressive__seed{seeds[0]}")
    assert dataset.params == {**main.params, "overrides": {**base, "progressive_init": "warm_start"}}


def test_reading_reference_follows_the_main_config(tmp_path: Path) -> None:
    # With the main config on the subtractive penalty, "multiplicative" is the variant that needs new jobs.
    preset = load_preset("quick", assignments=(f'results_dir="{tmp_path}"',
                                               'agents.overrides.integrated_rl.critic_penalty="subtractive"'))
    points = {p.setting: p for p in build_grid(preset, KINDS).ablations if p.group == "critic_penalty"}
    assert points["subtractive"].reference and not points["multiplicative"].reference
    assert points["multiplicative"].job_ids == ("integrated_rl+critic_penalty_multiplicative__uniform__seed0",)


@pytest.mark.parametrize("assignment, message", [
    ("ablation.critic_sets=[2]", "ablation.critic_sets must be values from (1, 3)"),
    ("ablation.target_noise=[-0.1]", "ablation.target_noise must be finite stds >= 0"),
    ('ablation.critic_penalties=["additive"]', "ablation.critic_penalties[0] must be one of"),
    ('ablation.progressive_init=["scratch","scratch"]', "ablation.progressive_init must be distinct values"),
])
def test_bad_ablation_settings_name_the_key(assignment: str, message: str) -> None:
    with pytest.raises(PresetError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_preset("quick", assignments=(assignment,))


def test_tiny_ablation_run_reports_every_group(tmp_path: Path) -> None:
    args = ["smoke", "--results-dir", str(tmp_path), "--no-progress", "--agents", "integrated_rl",
            "--set", "collection.recipes=uniform,progressive", "--set", "collection.progressive_rounds=3",
            "--set", "ablation.band_widths=[0.15]", "--set", "ablation.critic_counts=[2,4]",
            "--set", "ablation.critic_sets=[1,3]", "--set", "ablation.target_noise=[0.0,0.2]",
            "--set", 'ablation.critic_penalties=["multiplicative","subtractive"]',
            "--set", 'ablation.actor_band_weights=["eta","alpha"]',
            "--set", 'ablation.progressive_data=["cumulative","current_round"]',
            "--set", 'ablation.progressive_init=["scratch","warm_start"]',
            "--set", "evaluation.fqe_steps=0", "--set", "agents.checkpoints=1"]
    assert cli.main(args) == 0
    run_dir = tmp_path / "smoke"
    report = (run_dir / "report.md").read_text()
    for group in ("critic_sets", *READING_GROUPS):
        assert f"**{group}**:" in report, group
    assert "| q=3, m=2 | uniform | 1 | 20 |" in report
    assert "| warm_start | progressive_warm_start | 1 | 20 |" in report
    # Exploration centres: every training dataset with its arrangement, and the missing paper arrangement said.
    assert ("| progressive_current_round | progressive | round 0: BaselinePolicy (constant); round 1: "
            "integrated_rl (state-dependent); round 2: integrated_rl (state-dependent) | no | recorded by the "
            "dataset job |") in report
    assert "| uniform | uniform | BaselinePolicy (constant) | no |" in report
    assert "**No result of this run used the paper's arrangement from the start**" in report
    for plot in ("ablation_readings", "ablation_critic_sets"):
        assert (run_dir / "plots" / f"{plot}.png").stat().st_size > 1000
    summary = json.loads((run_dir / "summary.json").read_text())
    sets = summary["ablation"]["critic_sets"]
    assert [e["setting"] for e in sets] == ["q=1, m=2", "q=1, m=4", "q=3, m=2", "q=3, m=4"]
    assert sets[1]["reference"] and sets[2]["updates_per_s"] > 0 and sets[2]["fit_s"] > 0 and sets[2]["vs_reference"]
    # Simultaneous (Bonferroni) intervals: one per distinct comparison, wider than the plain 95% ones; the q = 1
    # settings of critic_sets are the critics group's comparisons, counted once.
    compared = [e for es in summary["ablation"].values() for e in es if e["vs_reference"]]
    k = compared[0]["comparisons"]
    assert all(e["comparisons"] == k for e in compared) and k < len(compared)
    assert compared[0]["simultaneous_confidence"] == pytest.approx(1 - 0.05 / k)
    widths = [(e["vs_reference_simultaneous"]["high"] - e["vs_reference_simultaneous"]["low"],
               e["vs_reference"]["high"] - e["vs_reference"]["low"]) for e in compared]
    assert all(wide >= plain for wide, plain in widths)  # equal only where a setting changed nothing (0 wide)
    assert any(wide > plain > 0 for wide, plain in widths)
    critics = {e["setting"]: e for e in summary["ablation"]["critics"]}
    assert sets[0]["vs_reference_simultaneous"] == critics["2"]["vs_reference_simultaneous"]
    assert f"Bonferroni level {100 * (1 - 0.05 / k):.2f}% (= 1 − 0.05/{k}" in report
    assert "| vs reference, simultaneous |" in report
    rows = {r["job_id"]: r for r in csv.DictReader((run_dir / "runs.csv").open())}
    assert float(rows["integrated_rl+sets3x2__uniform__seed0"]["updates_per_s"]) > 0
    assert float(rows["integrated_rl+sets3x2__uniform__seed0"]["updates_per_cpu_s"]) > 0
    # The final training run on a progressive dataset is the round after the last: current_round trains on the
    # newest round only, warm_start starts from the dataset job's last centre.
    current = json.loads((run_dir / "datasets/seed0/progressive_current_round/result.json").read_text())
    newest = current["progressive_rounds"][-1]
    job = json.loads((run_dir / "jobs/integrated_rl+progressive_data_current_round__progressive_current_round__seed0"
                                "/result.json").read_text())
    assert job["train_transitions"] < current["num_transitions"]
    assert newest["round"] == 2 and newest["transitions"] < current["num_transitions"]
    warm = run_dir / "jobs/integrated_rl+progressive_init_warm_start__progressive_warm_start__seed0/log.txt"
    assert "warm start from centre_model" in warm.read_text()
    assert (run_dir / "datasets/seed0/progressive_warm_start/centre_model/agent.json").is_file()
    rounds = json.loads((run_dir / "datasets/seed0/progressive_warm_start/result.json").read_text())
    assert [r.get("warm_started", False) for r in rounds["progressive_rounds"]] == [False, False, True]


def test_simultaneous_confidence_is_bonferroni() -> None:
    from mtf_bench.harness.aggregate import simultaneous_confidence

    assert simultaneous_confidence(0.95, 1) == pytest.approx(0.95)
    assert simultaneous_confidence(0.95, 5) == pytest.approx(0.99)
    assert simultaneous_confidence(0.9, 20) == pytest.approx(0.995)
    with pytest.raises(ValueError, match="comparisons"):
        simultaneous_confidence(0.95, 0)

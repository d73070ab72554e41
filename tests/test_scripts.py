"""Smoke runs of the measurement scripts under benchmarks/ with tiny budgets.

Each test parses what the script printed or wrote and checks the figures against each other (a printed ratio is
the ratio of the written rates, a table has its rows, rates are rates), so a script that runs but reports wrong or
missing numbers fails.
"""

import json
import math
import re

import pytest

NUMBER = r"[-+]?\d[\d,]*\.?\d*(?:e[-+]?\d+)?"


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def test_calibration_script(capsys: pytest.CaptureFixture[str]) -> None:
    from mtf_bench.calibration import TARGETS, TARGETS_V1, TOLERANCE, main

    main(["--sessions", "64", "--markdown", "--version", "v0"])
    out = capsys.readouterr().out
    rows = {m.group(1): [None if v.strip() == "-" else float(v) for v in m.group(2).split("|")]
            for m in re.finditer(r"^\| (\w+) \|(.*)\|$", out, re.M) if m.group(1) in TARGETS}
    assert set(rows) == set(TARGETS)
    for name, (baseline, target, random_rate, random_target) in rows.items():
        assert 0.0 <= baseline <= 1.0 and 0.0 <= random_rate <= 1.0
        # The target columns are the published table (printed to 4 decimals).
        assert target == pytest.approx(TARGETS[name][0], abs=5e-5)
        assert random_target == (None if TARGETS[name][1] is None else pytest.approx(TARGETS[name][1], abs=5e-5))
    # The production fusion beats random fusion (docs/design.md#required-properties-of-the-environment, P5).
    assert rows["valid_view"][0] > rows["valid_view"][2]
    m = re.search(rf"return per session: baseline ({NUMBER})(?: \+- {NUMBER})?; random fusion ({NUMBER})", out)
    assert m is not None and _num(m.group(1)) > _num(m.group(2)) > 0

    # v1 (the default): control rate, KuaiRand-Pure target, relative error and the 10% verdict that follows from it.
    main(["--sessions", "64", "--markdown"])
    out = capsys.readouterr().out
    table = out[out.index("| behaviour (per exposure) | control |"):].split("\n\n")[0]  # later tables share row names
    rows_v1 = {m.group(1): [v.strip() for v in m.group(2).split("|")]
               for m in re.finditer(r"^\| ([\w/]+) \|(.*)\|$", table, re.M) if m.group(1) in TARGETS_V1}
    assert set(rows_v1) == set(TARGETS_V1)
    for name, (control, target, error, verdict) in rows_v1.items():
        assert float(target) == pytest.approx(TARGETS_V1[name], abs=5e-6)
        # The control rate is printed to 5 decimals: allow its rounding in the recomputed error.
        printed = float(error.rstrip("%"))
        assert printed == pytest.approx(100 * (float(control) / float(target) - 1), abs=0.06 + 5e-4 / float(target))
        assert verdict == ("yes" if abs(printed) <= 100 * TOLERANCE else "NO")


def test_perf_env_script(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from mtf_bench.perf_env import main

    main(["--quick", "--sizes", "8", "--out", str(tmp_path / "perf.json")])
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "perf.json").read_text())
    single = result["single_steps_per_s"]
    assert "CartPole-v1" in single and len(single) >= 2
    assert all(math.isfinite(r) and r > 0 for r in single.values())
    for name, rate in single.items():
        # The printed ratio is this rate over CartPole's, from the same run.
        line = next(line for line in out.splitlines() if line.strip().startswith(name))
        assert f"{rate / single['CartPole-v1']:.3f}x" in line
    vector = result["vector_user_steps_per_s"]
    assert {v["num_envs"] for v in vector} == {8} and all(v["rate"] > 0 for v in vector)


def test_perf_collect_script(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from mtf_bench.perf_collect import main

    main(["--sessions", "200", "--num-envs", "64", "--repeats", "1", "--disk-sessions", "20",
          "--json", str(tmp_path / "collect.json")])
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "collect.json").read_text())
    runs = {k: v for k, v in result.items() if isinstance(v, dict) and "transitions" in v and "rate" in v}
    assert {"baseline_item_logs_on", "uniform_item_logs_on", "baseline_item_logs_off"} <= set(runs)
    for name, run in runs.items():
        assert run["transitions"] >= 200  # at least one transition per session
        assert run["rate"] == pytest.approx(run["transitions"] / run["seconds"], rel=1e-9)
        assert run["env_rows_per_transition"] >= 1.0 and 0.0 <= run["overhead_share"] < 1.0
        assert f"{run['rate']:8,.0f} tr/s" in out, name
    disk = {k: v for k, v in result.items() if k.startswith("disk_")}
    assert disk and all(v["bytes_per_transition"] > 0 for v in disk.values())
    # The compact HDF5 layout is smaller than Minari's chunked one (docs/datasets.md).
    assert disk["disk_item_logs_on_compact"]["bytes_per_transition"] < (
        disk["disk_item_logs_on_minari_chunked"]["bytes_per_transition"])


def test_perf_integrated_rl_script(capsys: pytest.CaptureFixture[str]) -> None:
    from mtf_bench.perf_integrated_rl import main

    main(["--steps", "1", "--rounds", "1", "--warmup", "0", "--threads", "1"])
    out = capsys.readouterr().out
    table = {m.group(1): [float(v) for v in m.group(2).split()]
             for m in re.finditer(r"^(\w+\([\dx]+\))\s+((?:\d+\.\d+\s*){6})$", out, re.M)}
    assert {"IntegratedRL(24)", "IntegratedRL(3x8)", "TD3PlusBC(24)", "TD3PlusBC(2)"} <= set(table)
    reference, integrated = table["TD3PlusBC(24)"], table["IntegratedRL(24)"]
    assert reference[2:4] == [1.0, 1.0] and integrated[4:] == [1.0, 1.0]  # each ratio pair's reference row
    for name, (updates, fit_steps, update_ratio, fit_ratio, vs_irl_update, vs_irl_fit) in table.items():
        assert updates > 0 and fit_steps > 0
        assert update_ratio == pytest.approx(updates / reference[0], abs=0.02 + 0.05 * update_ratio), name
        assert fit_ratio == pytest.approx(fit_steps / reference[1], abs=0.02 + 0.05 * fit_ratio), name
        assert vs_irl_update == pytest.approx(updates / integrated[0], abs=0.02 + 0.05 * vs_irl_update), name
        assert vs_irl_fit == pytest.approx(fit_steps / integrated[1], abs=0.02 + 0.05 * vs_irl_fit), name


def test_agents_vs_random_script(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from mtf_bench.agents_vs_random import main

    main(["--agents", "td3bc,es", "--sessions", "60", "--offline-steps", "5", "--online-steps", "200",
          "--hidden", "16", "16", "--batch-size", "16", "--eval-sessions", "64", "--out", str(tmp_path / "a.json")])
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "a.json").read_text())
    assert set(result["arms"]) == {"baseline", "td3bc", "es"}
    random_return = result["random_return"]["estimate"]
    for name, arm in result["arms"].items():
        ret, lift = arm["return"], arm["lift_vs_random"]
        assert ret["low"] <= ret["estimate"] <= ret["high"]
        assert lift["estimate"] == pytest.approx(ret["estimate"] / random_return - 1.0, rel=1e-9)
        assert arm["beats_random"] == (lift["low"] > 0)  # the verdict follows the interval
        assert re.search(rf"^{name}\s.*{ret['estimate']:.2f} \[", out, re.M), name
    assert result["arms"]["td3bc"]["steps"] == 5 and result["arms"]["es"]["metrics"]["requests"] >= 200


def test_compare_to_commit_script(capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    if subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("needs a git checkout with history")
    from mtf_bench.compare_to_commit import main
    from mtf_gym import MTFSessionConfig

    users, requests = 8, 3
    main(["HEAD", "--users", str(users), "--requests", str(requests)])
    out = capsys.readouterr().out
    entries = {m.group(1): (_num(m.group(2)), float(m.group(3)))
               for m in re.finditer(rf"^\s+(\w+)\s+({NUMBER}) entries: ({NUMBER}) differ", out, re.M)}
    assert set(entries) == {"observations", "rewards", "terminated", "truncated", "item_ids", "predictions",
                            "responses"}
    steps = users * requests
    assert entries["rewards"][0] == entries["terminated"][0] == steps
    assert entries["item_ids"][0] == steps * MTFSessionConfig().page_size
    assert all(0.0 <= share <= 1.0 for _, share in entries.values())

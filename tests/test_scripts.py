"""Smoke runs of the measurement scripts under benchmarks/ with tiny budgets: they must run and print their tables."""

import json

import pytest


def test_calibration_script(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.calibration import main

    main(["--sessions", "64", "--markdown"])
    out = capsys.readouterr().out
    assert "| valid_view |" in out and "return per session" in out


def test_perf_env_script(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.perf_env import main

    main(["--quick", "--sizes", "8", "--out", str(tmp_path / "perf.json")])
    assert "CartPole" in capsys.readouterr().out
    assert json.loads((tmp_path / "perf.json").read_text())


def test_perf_collect_script(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.perf_collect import main

    main(["--sessions", "200", "--num-envs", "64", "--repeats", "1", "--disk-sessions", "20",
          "--json", str(tmp_path / "collect.json")])
    assert "transitions" in capsys.readouterr().out
    assert json.loads((tmp_path / "collect.json").read_text())


def test_perf_integrated_rl_script(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.perf_integrated_rl import main

    main(["--steps", "1", "--rounds", "1", "--warmup", "0", "--threads", "1"])
    assert "IntegratedRL" in capsys.readouterr().out


def test_agents_vs_random_script(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.agents_vs_random import main

    main(["--agents", "td3bc,es", "--sessions", "60", "--offline-steps", "5", "--online-steps", "200",
          "--hidden", "16", "16", "--batch-size", "16", "--eval-sessions", "64", "--out", str(tmp_path / "a.json")])
    assert "td3bc" in capsys.readouterr().out


def test_compare_to_commit_script(capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    if subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("needs a git checkout with history")
    from benchmarks.compare_to_commit import main

    main(["HEAD", "--users", "8", "--requests", "3"])
    out = capsys.readouterr().out
    assert "item_ids" in out and "terminated" in out

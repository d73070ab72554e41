"""Smoke runs of the MTFSession-v1 measurement scripts with tiny budgets; outputs are parsed and cross-checked."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest


def test_headroom_ladder_script(tmp_path, capsys):
    from mtf_bench.headroom import main

    menu = tmp_path / "menu.json"
    menu.write_text(json.dumps({"settings": {"users": 16}, "curve": [{"lift": {"estimate": 0.07}}]}))
    main(["--eval-users", "64", "--train-users", "8", "--generations", "2", "--out", str(tmp_path),
          "--menu-oracle", str(menu)])
    out = capsys.readouterr().out
    assert "| oracle per-user >= +6% over control (menu oracle, 16 users) | yes |" in out
    result = json.loads((tmp_path / "headroom.json").read_text())
    names = [r["name"] for r in result["rungs"]]
    assert names == ["random", "control", "best constant", "per-segment table", "oracle per-user",
                     "oracle state-dependent", "observable-only"]
    for rung in result["rungs"]:
        lift = rung["lift"]
        assert lift["low"] <= lift["estimate"] <= lift["high"], rung["name"]
        assert f"| {rung['name']} |" in out
    control = result["rungs"][1]
    assert control["lift"]["estimate"] == 0.0
    # The random rung is far below the tuned control even on 64 users.
    assert result["rungs"][0]["lift"]["high"] < 0
    assert set(result["checks"]) == {
        "best constant <= control + 1% (upper CI)", "oracle per-user >= +6% over control",
        "oracle state-dependent >= +2% over oracle per-user", "observable-only >= +3% over control",
        "long-horizon >= +5% over greedy", "oracle per-user >= +6% over control (menu oracle, 16 users)"}
    with pytest.raises(SystemExit):
        main(["--menu-oracle", str(tmp_path / "missing.json"), "--out", str(tmp_path)])
    assert (tmp_path / "headroom.png").stat().st_size > 10_000


def test_linear_feature_policy_is_the_documented_formula():
    from mtf_bench.headroom import LinearFeaturePolicy
    from mtf_gym.sim.config import MTFSessionV1Config
    from mtf_gym.sim.simulator import UserSimulator

    sim = UserSimulator(MTFSessionV1Config(), 3)
    sim.start_sessions(np.arange(3), np.array([1, 2, 3], np.uint64))
    obs = sim.observations()
    base = np.linspace(-0.5, 0.5, 10)
    weights = np.zeros((19, 10))
    weights[6, 0] = 2.0  # request_progress -> first power
    weights[1, 9] = 100.0  # history valid-view rate -> last bias, clipped
    mean, std = np.full(19, 0.1), np.full(19, 0.5)
    policy = LinearFeaturePolicy("observation", base, weights, mean, std)
    expected = base + ((obs - mean) / std) @ weights
    np.testing.assert_allclose(policy(sim, obs), np.clip(expected, -1, 1), rtol=1e-6)


def test_tune_control_script(tmp_path, capsys):
    from mtf_bench.tune_control import main

    main(["--train-users", "8", "--generations", "2", "--restarts", "2", "--validation-users", "64",
          "--out", str(tmp_path / "t.json")])
    out = capsys.readouterr().out
    block = re.findall(r'^    "(\w+)": \(([-\d.e]+), ([-\d.e]+)\),$', out, re.M)
    assert [b[0] for b in block] == ["valid_view", "watch_time", "long_view", "like", "follow"]
    for _, power, bias in block:
        assert -2.0 <= float(power) <= 2.0 and 1e-3 - 1e-9 <= float(bias) <= 1.0
    result = json.loads((tmp_path / "t.json").read_text())
    means = result["validation_means"]
    assert set(means) == {"current control", "restart 0 (warm)", "restart 1 (centre)"}
    assert result["winner"] == max(means, key=means.get)  # chosen on validation users
    lift = result["winner_vs_current"]
    assert lift["low"] <= lift["estimate"] <= lift["high"] and lift["estimate"] >= 0


def test_observability_table():
    from mtf_bench.observability import latent_table
    from mtf_gym.sim.config import MTFSessionV1Config

    table = latent_table(MTFSessionV1Config(), 256, 2)
    assert {"satisfaction", "fatigue", "watch_drive", "clickbait_aversion", "segment"} <= set(table)
    assert "log_account_age" not in table  # an observed attribute, not a latent
    assert all(r2 <= 1.0 for r2 in table.values())


def test_exploit_search_script(capsys):
    from mtf_bench.exploit_search import main

    main(["--eval-users", "64", "--train-users", "8", "--generations", "2"])
    out = capsys.readouterr().out
    rows = re.findall(r"^\| ([^|]+) \| ([\d.]+) \| ([\d.]+)% \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([-\d.]+) \|$",
                      out, re.M)
    assert len(rows) == 2 + 20 + 4
    for _, requests, cap, valid, long_view, like, _ in rows:
        assert float(requests) >= 1 and 0 <= float(cap) <= 100
        assert 0 <= float(long_view) <= float(valid) <= 1 and 0 <= float(like) <= float(valid)
    assert re.search(r"(nothing unrealistic|EXPLOIT FOUND)", out)


def test_range_probe_script(tmp_path, capsys):
    """The probes are the control's at-edge parameters moved outwards (two steps) and inwards (one), in an env whose
    widened ranges leave the control's fusion unchanged (the script checks it against the default env's control)."""
    from mtf_bench.range_probe import WIDE, main, probes
    from mtf_gym.sim.config import MTFSessionV1Config

    # CONTROL_FUSION_V1 at an edge of the default box (|a| >= 0.95): valid_view and watch_time biases at 1, the
    # watch_time power at -2, the like (0.001138: a = -0.963) and follow biases at 0.001.
    names = [p.name for p in probes(MTFSessionV1Config())]
    assert names == ["valid_view bias 10", "valid_view bias 100", "valid_view bias 0.1",
                     "watch_time power -3", "watch_time power -4", "watch_time power -1",
                     "watch_time bias 10", "watch_time bias 100", "watch_time bias 0.1",
                     "like bias 0.0001", "like bias 1e-05", "like bias 0.01",
                     "follow bias 0.0001", "follow bias 1e-05", "follow bias 0.01"]
    # Every probe's fusion fits inside the widened ranges (no clipping would change it).
    for p in probes(MTFSessionV1Config()):
        assert WIDE.power_low <= p.value <= WIDE.power_high if p.param == "power" else \
            WIDE.bias_low <= p.value <= WIDE.bias_high
    main(["--users", "64", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "range_probe.json").read_text())
    assert [r["name"] for r in record["probes"]] == names
    for row in record["probes"]:
        lift = row["lift"]
        assert lift["low"] <= lift["estimate"] <= lift["high"]
        assert sum(s["users"] for s in row["per_segment"].values()) == 64
        assert f"| {row['name']} | {row['side']} |" in out
    assert (tmp_path / "range_probe.png").stat().st_size > 10_000


def test_per_user_oracle_script(tmp_path, capsys):
    from mtf_bench.per_user_oracle import main, menu_of_constants, select_and_score
    from mtf_gym.policies import BaselinePolicy
    from mtf_gym.sim.config import MTFSessionV1Config

    config = MTFSessionV1Config()
    control = BaselinePolicy(config).action
    menu = menu_of_constants(control, 5)
    assert menu.shape == (5, config.action_dim) and np.array_equal(menu[0], control)
    assert np.all(np.abs(menu) <= 1.0)
    # A menu of the control alone: every user keeps it, so every lift is exactly zero.
    alone = select_and_score(config, 16, menu[:1], 2, [1, 2], switch_request=2, trigger_entries=1,
                             observable_sessions=3, progress=False)
    assert [c["training_sessions"] for c in alone["observable_curve"]] == [1, 2, 3]
    assert [c["lift"]["estimate"] for c in alone["observable_curve"]] == [0.0, 0.0, 0.0]
    # The curve's points use nested training sessions: its point k is the policy fitted on k sessions alone.
    three = select_and_score(config, 16, menu[:3], 1, [1], observable_sessions=3, progress=False)
    two = select_and_score(config, 16, menu[:3], 1, [1], observable_sessions=2, progress=False)
    assert three["observable_curve"][1] == two["observable"]
    assert two["observable_curve"] == three["observable_curve"][:2]
    assert [c["lift"]["estimate"] for c in alone["curve"]] == [0.0, 0.0]
    assert alone["triggered"]["over_per_user"]["estimate"] == 0.0 and alone["triggered"]["users_switching"] == 0.0
    assert alone["two_phase"]["lift"]["estimate"] == 0.0 and alone["two_phase"]["users_switching"] == 0.0
    # A switch after the request cap never happens: the two-phase oracle is the per-user choice, exactly.
    never = select_and_score(config, 16, menu[:3], 2, [2], switch_request=10 ** 6, progress=False)
    assert never["two_phase"]["over_per_user"]["estimate"] == 0.0 and never["two_phase"]["users_switching"] == 0.0
    assert alone["curve"][-1]["users_keeping_control"] == 1.0 and alone["best_menu_constant"]["index"] == 0
    main(["--users", "24", "--menu", "3", "--sessions", "2", "--observable-sessions", "1", "--switch-request", "2",
          "--correction-generations", "2", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert "| 1 |" in out and "| 2 |" in out and "best menu constant for everyone" in out
    assert "observable-only menu policy" in out and "two-phase oracle (second per-user entry from request 2)" in out
    record = json.loads((tmp_path / "per_user_oracle.json").read_text())
    assert [c["sessions"] for c in record["curve"]] == [1, 2] and len(record["menu"]) == 3
    assert record["observable"]["training_sessions"] == 1 and -1 < record["observable"]["lift"]["estimate"] < 1
    assert [c["training_sessions"] for c in record["observable_curve"]] == [1]
    assert record["observable_curve"][-1] == record["observable"]
    assert record["two_phase"]["switch_request"] == 2 and len(record["two_phase"]["choices"]) == 24
    assert "linear correction by state" in out and "linear correction by the observation" in out
    for key, features, width in (("state_correction", "state", 4), ("observable_correction", "observation", 19)):
        assert record[key]["features"] == features and np.shape(record[key]["weights"]) == (width, 10)
        assert -1 < record[key]["over_choice"]["estimate"] < 1
    assert (tmp_path / "per_user_oracle.png").stat().st_size > 10_000


def test_menu_oracle_checks_judge_the_targets_by_the_recorded_lifts():
    from mtf_bench.headroom import menu_oracle_checks

    def lift(x):
        return {"lift": {"estimate": x}}

    record = {"settings": {"users": 2048}, "curve": [lift(0.02), lift(0.0613)],
              "state_correction": {"over_choice": {"estimate": 0.004}},
              "two_phase": {"over_per_user": {"estimate": 0.021}},
              "observable": lift(0.0198), "observable_correction": lift(0.031)}
    assert menu_oracle_checks(record) == {
        "oracle per-user >= +6% over control (menu oracle, 2048 users)": True,
        "oracle state-dependent >= +2% over oracle per-user (menu oracle + state correction, 2048 users)": False,
        "oracle state-dependent >= +2% over oracle per-user (two-phase menu oracle, 2048 users)": True,
        "observable-only >= +3% over control (menu policy, 2048 users)": True}
    record = {"settings": {"users": 16}, "curve": [lift(0.0599)], "observable": lift(0.0299)}
    assert menu_oracle_checks(record) == {"oracle per-user >= +6% over control (menu oracle, 16 users)": False,
                                          "observable-only >= +3% over control (menu policy, 16 users)": False}


def test_doubling_checkpoints_end_at_the_budget():
    from mtf_bench.per_user_oracle import doubling_checkpoints

    assert doubling_checkpoints(1) == [1]
    assert doubling_checkpoints(8) == [1, 2, 4, 8]
    assert doubling_checkpoints(5) == [1, 2, 4, 5]


def test_observable_menu_model_picks_the_entry_whose_return_the_features_predict():
    from mtf_bench.per_user_oracle import observable_model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    # Entry 0 pays x0, entry 1 pays -x0, entry 2 pays x1^2 - 1 (quadratic): the best entry is a function of x.
    returns = np.stack([x[:, 0], -x[:, 0], x[:, 1] ** 2 - 1.0], axis=1) + 0.1 * rng.normal(size=(400, 3))
    test = rng.normal(size=(200, 3))
    best = np.argmax(np.stack([test[:, 0], -test[:, 0], test[:, 1] ** 2 - 1.0], axis=1), axis=1)
    chosen = np.argmax(observable_model(x, returns).predict(test), axis=1)
    assert np.mean(chosen == best) > 0.9


def test_a_correction_of_zero_weights_is_the_choice_alone():
    """:class:`CorrectedChoice` with zero offset and weights plays exactly its per-user base; a weight on a state
    feature moves the action by that feature's standardised value."""
    from mtf_bench.per_user_oracle import CorrectedChoice
    from mtf_gym.evaluation import SessionRunner
    from mtf_gym.sim.config import MTFSessionV1Config
    from mtf_gym.sim.layout import STATE_NAMES

    config = MTFSessionV1Config()
    runner = SessionRunner(8, config)
    obs, _ = runner.env.reset(seed=5)
    sim = runner.env.unwrapped.sim
    base = np.linspace(-0.5, 0.5, 8 * 10).reshape(8, 10)
    zero = CorrectedChoice("state", base, np.zeros(10), np.zeros((4, 10)), np.zeros(4), np.ones(4))
    assert np.allclose(zero(sim, obs), base, atol=1e-7)
    weights = np.zeros((4, 10))
    weights[0, 3] = 0.1  # satisfaction, standardised by mean 0.2 and std 2, moves dimension 3 only
    moved = CorrectedChoice("state", base, np.zeros(10), weights, np.array([0.2, 0, 0, 0]), np.array([2.0, 1, 1, 1]))
    satisfaction = sim.users.state[:, STATE_NAMES.index("satisfaction")]
    expected = base.copy()
    expected[:, 3] += 0.1 * (satisfaction - 0.2) / 2.0
    assert np.allclose(moved(sim, obs), np.clip(expected, -1, 1), atol=1e-6)


def test_a_trigger_plays_its_entry_exactly_while_the_latent_state_crosses_its_threshold():
    from mtf_bench.per_user_oracle import TRIGGERS, _triggered_rows
    from mtf_gym.evaluation import SessionRunner
    from mtf_gym.sim.config import MTFSessionV1Config
    from mtf_gym.sim.layout import STATE_NAMES

    runner = SessionRunner(64, MTFSessionV1Config())
    obs, _ = runner.env.reset(seed=3)
    sim = runner.env.unwrapped.sim
    before, after = np.zeros((64, 10)), np.ones((64, 10))
    satisfaction = sim.users.state[:, STATE_NAMES.index("satisfaction")].copy()
    thresholds = np.array([np.median(satisfaction), 1e9, 1e9])
    assert TRIGGERS[0] == ("satisfaction", "below")
    trigger = np.array([0] * 32 + [-1] * 16 + [1] * 16)  # satisfaction low / never / fatigue above 1e9 (never)
    actions = _triggered_rows(runner, before, after, trigger, thresholds)(obs)
    fires = np.r_[satisfaction[:32] < thresholds[0], np.zeros(32, bool)]
    assert 0 < fires.sum() < 32 and np.array_equal(actions[:, 0] == 1.0, fires)


def test_a_rollout_with_the_session_key_replays_the_rest_of_the_session_exactly():
    """:func:`rollout_returns` from a mid-session state with the row's own key is the rest of that very session (the
    simulator's draws are counter-based), through the moves to smaller simulators as rollouts end; with fresh keys
    it is another future of the same user."""
    from mtf_bench.per_user_oracle import _RolloutPool, rollout_returns
    from mtf_gym.evaluation import SessionRunner
    from mtf_gym.policies import BaselinePolicy
    from mtf_gym.sim.config import MTFSessionV1Config

    config = MTFSessionV1Config()
    users = 300  # a 512-row rollout simulator, moved to 128 and 64 rows as sessions end
    runner = SessionRunner(users, config)
    action = np.broadcast_to(BaselinePolicy(config).action, (users, config.action_dim)).astype(np.float32)
    sim = runner.env.unwrapped.sim
    pool = _RolloutPool(sim)
    rest: dict[str, np.ndarray] = {}

    def act(obs, info, live):
        if int(sim.request_index[live].max()) == 2:  # from the third request on, replayed from the state
            rows = np.flatnonzero(live)
            rest["rows"] = rows
            rest["own"] = rollout_returns(pool, sim, rows, sim.keys[rows].copy(), action[rows], action[rows])
            rest["fresh"] = rollout_returns(pool, sim, rows, sim.keys[rows] + np.uint64(1), action[rows],
                                            action[rows])
        return action

    first_two = runner.run(lambda obs: action, 7, max_requests=2).returns
    whole = runner.run_with_context(act, 7).returns
    rows = rest["rows"]
    assert rows.size > 256 and max(pool._sims) == 512 and len(pool._sims) >= 3  # it moved twice
    np.testing.assert_allclose(rest["own"], (whole - first_two)[rows], rtol=0, atol=1e-9)
    assert not np.allclose(rest["fresh"], rest["own"])


def test_rollout_oracle_cli_and_the_per_user_choice_it_starts_from(tmp_path, capsys):
    """The rollout oracle starts from a saved record's per-user choices; it switches only on a confirmed gain, so
    with options identical to the per-user choice it is that choice exactly."""
    from mtf_bench.per_user_oracle import main, menu_of_constants, rollout_oracle
    from mtf_gym.policies import BaselinePolicy
    from mtf_gym.sim.config import MTFSessionV1Config

    config = MTFSessionV1Config()
    menu = menu_of_constants(BaselinePolicy(config).action, 4)
    choices = [i % 4 for i in range(24)]
    record = {"menu": menu.tolist(), "curve": [{"choices": choices}], "settings": {"sessions": 2, "eval_seed": 0}}
    same = rollout_oracle(config, {**record, "menu": [menu[0].tolist()] * 4}, 2, 0, 4, progress=False)
    assert same["over_per_user"]["estimate"] == 0.0 and same["switch_share"] == 0.0
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record))
    main(["--rollout-from", str(path), "--rollout-menu-options", "2", "--rollout-local-options", "2",
          "--rollouts", "4", "--confirm-z", "0", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert "rollout oracle:" in out and "over the per-user choice" in out
    assert "target 'oracle state-dependent >= +2% over oracle per-user' (rollout oracle): " in out
    result = json.loads((tmp_path / "per_user_oracle_rollout.json").read_text())
    assert result["menu_options"] == 2 and result["local_options"] == 2 and result["rollouts"] == 4
    assert 0.0 < result["switch_share"] < 1.0 and result["live_by_request"][0] == 24
    assert (tmp_path / "per_user_oracle_rollout.png").stat().st_size > 10_000
    with pytest.raises(SystemExit, match="rollouts must be >= 2"):
        main(["--rollout-from", str(path), "--rollouts", "1", "--out", str(tmp_path)])

"""Tests of IntegratedRL: penalty maths, losses vs NumPy, the critic ensemble, the banded data path, d3rlpy
conformance and learned behaviour on a one-step bandit. Networks are tiny so the file runs in well under a minute."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import d3rlpy
import numpy as np
import pytest
import torch
from d3rlpy.dataset import MDPDataset
from d3rlpy.logging import FileAdapterFactory, NoopAdapterFactory
from d3rlpy.metrics import AverageValueEstimationEvaluator, TDErrorEvaluator
from d3rlpy.models import VectorEncoderFactory
from d3rlpy.preprocessing import MinMaxActionScaler

from mtf_agents.integrated_rl import (
    BandedReplayBuffer,
    BandedTorchMiniBatch,
    BandedTransition,
    EnsembleQFunction,
    IntegratedRL,
    IntegratedRLConfig,
    actor_objective,
    band_factor,
    band_penalty,
    critic_objective,
    make_banded_dataset,
    td_targets,
)
from mtf_agents.integrated_rl.ensemble import make_critic_members
from mtf_agents.integrated_rl.impl import EXP_LINEAR_FROM, LossSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = VectorEncoderFactory(hidden_units=[16, 16])
OBS_DIM, ACTION_DIM = 3, 2


@pytest.fixture(autouse=True, scope="module")
def _single_torch_thread() -> Iterator[None]:
    # The networks here are tiny: a second intra-op thread only adds spin-waiting, which explodes on a busy machine.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def settings(**overrides: object) -> LossSettings:
    base = {
        "alpha": 1.2,
        "beta": 0.3,
        "eta": 1.0,
        "lam": 0.2,
        "band_reduction": "sum",
        "critic_penalty": "subtractive",
        "critic_target": "independent",
    }
    base.update(overrides)
    return LossSettings(**base)  # type: ignore[arg-type]


def tiny_config(**overrides: object) -> IntegratedRLConfig:
    base: dict[str, object] = {
        "batch_size": 32,
        "n_critics": 3,
        "actor_encoder_factory": TINY,
        "critic_encoder_factory": TINY,
    }
    base.update(overrides)
    return IntegratedRLConfig(**base)  # type: ignore[arg-type]


def episode_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Three episodes (lengths 4 timeout, 3 terminal, 5 timeout); observations[:, 0] holds the row index."""
    rng = np.random.default_rng(seed)
    n = 12
    observations = rng.normal(size=(n, OBS_DIM)).astype(np.float32)
    observations[:, 0] = np.arange(n)
    centres = rng.uniform(-0.5, 0.5, size=(n, ACTION_DIM)).astype(np.float32)
    actions = (centres + rng.uniform(-0.15, 0.15, size=centres.shape)).astype(np.float32)
    terminals = np.zeros(n, dtype=np.float32)
    timeouts = np.zeros(n, dtype=np.float32)
    timeouts[3] = terminals[6] = timeouts[11] = 1.0
    return {
        "observations": observations,
        "actions": actions,
        "rewards": rng.normal(size=n).astype(np.float32),
        "terminals": terminals,
        "timeouts": timeouts,
        "centres": centres,
        "lowers": np.full(n, -0.15, dtype=np.float32),
        "uppers": rng.uniform(0.1, 0.2, size=(n, ACTION_DIM)).astype(np.float32),
    }


def random_banded_dataset(n: int = 400, seed: int = 0, episode_len: int = 10) -> BandedReplayBuffer:
    rng = np.random.default_rng(seed)
    observations = rng.normal(size=(n, OBS_DIM)).astype(np.float32)
    centres = rng.uniform(-0.5, 0.5, size=(n, ACTION_DIM)).astype(np.float32)
    actions = (centres + rng.uniform(-0.15, 0.15, size=centres.shape)).astype(np.float32)
    terminals = np.zeros(n, dtype=np.float32)
    timeouts = np.zeros(n, dtype=np.float32)
    timeouts[episode_len - 1 :: episode_len] = 1.0
    return make_banded_dataset(observations, actions, actions[:, 0], terminals, timeouts, centres, -0.15, 0.15)


def fitted_algo(n_steps: int = 6, **overrides: object) -> tuple[IntegratedRL, BandedReplayBuffer]:
    d3rlpy.seed(0)
    dataset = random_banded_dataset()
    algo = tiny_config(**overrides).create(device="cpu:0")
    algo.fit(
        dataset, n_steps=n_steps, n_steps_per_epoch=n_steps, logger_adapter=NoopAdapterFactory(), show_progress=False
    )
    return algo, dataset


def t(x: object) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float32)


# ---------------------------------------------------------------------------------------------------------------
# Band penalty d and factor phi, by hand. Band [c - 0.15, c + 0.15]: W = 0.3, beta W = 0.09.
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("centre", "action", "expected"),
    [
        (0.0, 0.0, 0.0),  # inside
        (0.0, 0.15, 0.0),  # upper edge counts as inside
        (0.0, -0.15, 0.0),  # lower edge counts as inside
        (0.0, 0.24, math.e),  # 0.09 above: exp(0.09 / 0.09)
        (0.0, -0.33, math.e**2),  # 0.18 below: exp(0.18 / 0.09)
        (0.2, 0.35, 0.0),  # upper edge of a shifted band
        (0.2, 0.44, math.e),  # 0.09 above c + upper = 0.35
        (0.2, -0.04, math.e),  # 0.09 below c + lower = 0.05
    ],
)
def test_band_penalty_hand_values(centre: float, action: float, expected: float) -> None:
    d = band_penalty(t([[action]]), t([[centre - 0.15]]), t([[centre + 0.15]]), beta=0.3, reduction="sum")
    assert d.shape == (1,)
    assert d.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_band_penalty_jumps_from_zero_to_one_at_the_edge() -> None:
    actions = t([[0.15], [0.15 + 1e-4]])
    d = band_penalty(actions, t([[-0.15]] * 2), t([[0.15]] * 2), beta=0.3, reduction="sum")
    assert d[0].item() == 0.0
    assert d[1].item() == pytest.approx(1.0, abs=2e-3)


def test_band_penalty_reduction_and_asymmetric_band() -> None:
    # dims: 0.09 above a [-0.1, 0.2] band (W = 0.3) and inside a [-0.3, 0.3] band (W = 0.6)
    actions, lower, upper = t([[0.29, 0.1]]), t([[-0.1, -0.3]]), t([[0.2, 0.3]])
    assert band_penalty(actions, lower, upper, 0.3, "sum").item() == pytest.approx(math.e, rel=1e-5)
    assert band_penalty(actions, lower, upper, 0.3, "mean").item() == pytest.approx(math.e / 2, rel=1e-5)
    # 0.18 below the wide band: exp(0.18 / (0.3 * 0.6)) = e
    both = band_penalty(t([[0.29, -0.48]]), lower, upper, 0.3, "sum").item()
    assert both == pytest.approx(2 * math.e, rel=1e-5)


def test_band_penalty_gradient_is_slope_of_exp() -> None:
    action = t([[0.24]]).requires_grad_(True)
    band_penalty(action, t([[-0.15]]), t([[0.15]]), 0.3, "sum").sum().backward()
    assert action.grad is not None
    assert action.grad.item() == pytest.approx(math.e / 0.09, rel=1e-4)
    inside = t([[0.1]]).requires_grad_(True)
    band_penalty(inside, t([[-0.15]]), t([[0.15]]), 0.3, "sum").sum().backward()
    assert inside.grad is not None
    assert inside.grad.item() == 0.0


def test_band_penalty_stays_finite_for_tiny_bands() -> None:
    # z = 0.9 / (0.3 * 0.02) = 150 would overflow exp in float32; beyond z = 30 the tangent line is used.
    action = t([[1.0]]).requires_grad_(True)
    d = band_penalty(action, t([[0.09]]), t([[0.11]]), 0.3, "sum")
    d.sum().backward()
    z = 0.89 / (0.3 * 0.02)
    assert d.item() == pytest.approx(math.exp(EXP_LINEAR_FROM) * (1 + z - EXP_LINEAR_FROM), rel=1e-4)
    assert action.grad is not None
    assert math.isfinite(action.grad.item())
    assert action.grad.item() > 0


def test_band_factor_hand_values() -> None:
    lower, upper = t([[-0.15, -0.15]]), t([[0.15, 0.15]])
    assert band_factor(t([[0.1, -0.15]]), lower, upper, 0.3, "sum").item() == pytest.approx(1.0)
    assert band_factor(t([[0.24, 0.0]]), lower, upper, 0.3, "sum").item() == pytest.approx(math.exp(-1), rel=1e-5)
    assert band_factor(t([[0.24, -0.33]]), lower, upper, 0.3, "sum").item() == pytest.approx(math.exp(-3), rel=1e-5)
    assert band_factor(t([[0.24, -0.33]]), lower, upper, 0.3, "mean").item() == pytest.approx(math.exp(-1.5), rel=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# Losses on a fixed batch vs NumPy
# ---------------------------------------------------------------------------------------------------------------


def np_band_penalty(a: np.ndarray, lo: np.ndarray, hi: np.ndarray, beta: float, reduction: str) -> np.ndarray:
    width = beta * (hi - lo)
    d = np.where(a > hi, np.exp((a - hi) / width), np.where(a < lo, np.exp((lo - a) / width), 0.0))
    return d.sum(-1) if reduction == "sum" else d.mean(-1)


def np_band_factor(a: np.ndarray, lo: np.ndarray, hi: np.ndarray, beta: float, reduction: str) -> np.ndarray:
    z = (np.maximum(a - hi, 0) + np.maximum(lo - a, 0)) / (beta * (hi - lo))
    return np.exp(-(z.sum(-1) if reduction == "sum" else z.mean(-1)))


FIXED = {
    # q: [m = 4 critics, B = 3 transitions]
    "q": np.array([[1.0, 2.0, -1.0], [3.0, 0.5, 0.0], [2.0, 2.5, 1.0], [0.0, -1.0, 4.0]], dtype=np.float32),
    "actions": np.array([[0.2, -0.1], [0.5, 0.0], [-0.4, 0.3]], dtype=np.float32),
    "lower": np.array([[-0.1, -0.2], [0.1, -0.1], [-0.2, 0.0]], dtype=np.float32),
    "upper": np.array([[0.2, 0.1], [0.4, 0.2], [0.1, 0.25]], dtype=np.float32),
    "rewards": np.array([0.5, -1.0, 2.0], dtype=np.float32),
    "terminals": np.array([0.0, 1.0, 0.0], dtype=np.float32),
}


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_actor_objective_matches_numpy(reduction: str) -> None:
    f = FIXED
    s = settings(eta=0.7, lam=0.2, beta=0.3, band_reduction=reduction)
    out = actor_objective(t(f["q"])[..., None], t(f["actions"]), t(f["lower"]), t(f["upper"]), s)
    d = np_band_penalty(f["actions"], f["lower"], f["upper"], 0.3, reduction)
    expected = -f["q"].mean(0).mean() + 0.7 * d.mean() + 0.2 * f["q"].std(0, ddof=0).mean()
    assert out.actor_loss.item() == pytest.approx(expected, rel=1e-5)
    assert out.actor_band_penalty.item() == pytest.approx(d.mean(), rel=1e-5)
    assert out.actor_out_of_band.item() == pytest.approx(3 / 6)  # dims 0 of rows 1, 2 and dim 1 of row 2


def test_actor_objective_single_critic_has_zero_std_and_finite_gradient() -> None:
    q = t([[[1.0], [2.0]]]).requires_grad_(True)
    actions = t([[0.0], [0.0]])
    out = actor_objective(q, actions, t([[-0.1]] * 2), t([[0.1]] * 2), settings())
    out.actor_loss.backward()
    assert out.actor_q_std.item() == 0.0
    assert q.grad is not None
    assert torch.isfinite(q.grad).all()


@pytest.mark.parametrize("penalty", ["subtractive", "multiplicative"])
@pytest.mark.parametrize("aggregation", ["independent", "mean", "min"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_td_targets_match_numpy(penalty: str, aggregation: str, reduction: str) -> None:
    f = FIXED
    s = settings(alpha=1.2, beta=0.3, critic_penalty=penalty, critic_target=aggregation, band_reduction=reduction)
    gamma = 0.9
    y = td_targets(
        rewards=t(f["rewards"])[:, None],
        terminals=t(f["terminals"])[:, None],
        discounts=torch.full((3, 1), gamma),
        next_q=t(f["q"])[..., None],
        next_actions=t(f["actions"]),
        next_lower=t(f["lower"]),
        next_upper=t(f["upper"]),
        settings=s,
    )
    q = f["q"]
    boot = {"independent": q, "mean": np.broadcast_to(q.mean(0), q.shape), "min": np.broadcast_to(q.min(0), q.shape)}
    b = boot[aggregation]
    if penalty == "subtractive":
        b = b - 1.2 * np_band_penalty(f["actions"], f["lower"], f["upper"], 0.3, reduction)
    else:
        b = b * np_band_factor(f["actions"], f["lower"], f["upper"], 0.3, reduction)
    expected = f["rewards"] + gamma * (1 - f["terminals"]) * b
    assert y.shape == (4, 3, 1)
    np.testing.assert_allclose(y[..., 0].numpy(), expected, rtol=1e-5, atol=1e-6)
    loss = critic_objective(t(q + 1.0)[..., None], y)
    assert loss.critic_loss.item() == pytest.approx(((q + 1.0 - expected) ** 2).mean(1).sum(), rel=1e-5)


@pytest.mark.parametrize("penalty", ["subtractive", "multiplicative"])
def test_impl_losses_on_fixed_batch_match_numpy(penalty: str) -> None:
    """The Impl wires target actor -> target critics -> per-critic targets, and actor -> live critics."""
    algo, dataset = fitted_algo(n_steps=4, n_critics=3, eta=0.5, lam=0.3, alpha=0.8, critic_penalty=penalty)
    impl = algo.impl
    assert impl is not None
    d3rlpy.seed(3)
    batch = BandedTorchMiniBatch.from_banded_batch(dataset.sample_transition_batch(16), gamma=0.9, device="cpu:0")
    modules = impl.modules
    with torch.no_grad():
        next_a = modules.targ_policy(batch.next_observations).squashed_mu
        next_q = modules.targ_q_funcs(batch.next_observations, next_a)[..., 0].numpy()
        q = modules.q_funcs(batch.observations, batch.actions)[..., 0].numpy()
        a = modules.policy(batch.observations).squashed_mu
        q_pi = modules.q_funcs(batch.observations, a)[..., 0].numpy()
    next_band = (next_a.numpy(), batch.next_band_low_edge.numpy(), batch.next_band_high_edge.numpy(), 0.3, "sum")
    if penalty == "subtractive":
        boot = next_q - 0.8 * np_band_penalty(*next_band)
    else:
        boot = next_q * np_band_factor(*next_band)
    r, term = batch.rewards[:, 0].numpy(), batch.terminals[:, 0].numpy()
    y = r + 0.9 * (1 - term) * boot
    expected_critic = ((q - y) ** 2).mean(1).sum()
    d = np_band_penalty(a.numpy(), batch.band_low_edge.numpy(), batch.band_high_edge.numpy(), 0.3, "sum")
    expected_actor = -q_pi.mean(0).mean() + 0.5 * d.mean() + 0.3 * q_pi.std(0, ddof=0).mean()
    impl.modules.set_eval()
    assert impl.compute_critic_loss(batch).critic_loss.item() == pytest.approx(expected_critic, rel=1e-4)
    assert impl.compute_actor_loss(batch).actor_loss.item() == pytest.approx(expected_actor, rel=1e-4)


# ---------------------------------------------------------------------------------------------------------------
# Critic ensemble
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factory",
    [
        VectorEncoderFactory(hidden_units=[8, 6]),
        VectorEncoderFactory(hidden_units=[8, 6], activation="tanh", use_layer_norm=True, dropout_rate=0.1),
    ],
)
def test_ensemble_equals_separate_mlps(factory: VectorEncoderFactory) -> None:
    torch.manual_seed(0)
    encoders, heads = make_critic_members((4,), 2, factory, n_critics=5)
    ensemble = EnsembleQFunction.from_members(encoders, heads).eval()
    x = torch.randn(7, 4)
    a_ens = torch.randn(7, 2).requires_grad_(True)
    a_sep = a_ens.detach().clone().requires_grad_(True)
    out = ensemble(x, a_ens)
    separate = torch.stack([head.eval()(enc.eval()(x, a_sep)) for enc, head in zip(encoders, heads, strict=True)])
    assert out.shape == (5, 7, 1)
    torch.testing.assert_close(out, separate, rtol=1e-5, atol=1e-6)
    # Same gradients too (vectorised layers, in-place ReLU and the dot-product head backpropagate exactly).
    weights = torch.randn(5, 7, 1)
    (out * weights).sum().backward()
    (separate * weights).sum().backward()
    torch.testing.assert_close(a_ens.grad, a_sep.grad, rtol=1e-5, atol=1e-6)
    first_linears = [next(m for m in enc.modules() if isinstance(m, torch.nn.Linear)) for enc in encoders]
    for i, linear in enumerate(first_linears):
        torch.testing.assert_close(ensemble.layers[0].weight.grad[i], linear.weight.grad.T, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ensemble.layers[-1].weight.grad[i], heads[i].weight.grad.T, rtol=1e-5, atol=1e-6)
    # independently initialised members: no two members share weights
    first = ensemble.layers[0].weight
    assert all(not torch.allclose(first[0], first[i]) for i in range(1, 5))


def test_ensemble_members_get_independent_gradients() -> None:
    torch.manual_seed(0)
    encoders, heads = make_critic_members((4,), 2, VectorEncoderFactory(hidden_units=[8, 8]), n_critics=3)
    ensemble = EnsembleQFunction.from_members(encoders, heads)
    ensemble(torch.randn(5, 4), torch.randn(5, 2))[1].sum().backward()
    for param in ensemble.parameters():
        assert param.grad is not None
        assert param.grad[1].abs().sum() > 0
        assert param.grad[0].abs().sum() == 0
        assert param.grad[2].abs().sum() == 0


def test_ensemble_rejects_batch_norm() -> None:
    with pytest.raises(ValueError, match="batch norm"):
        IntegratedRLConfig(critic_encoder_factory=VectorEncoderFactory(use_batch_norm=True), n_critics=2).create(
            "cpu:0"
        ).create_impl((OBS_DIM,), ACTION_DIM)


# ---------------------------------------------------------------------------------------------------------------
# Banded data path
# ---------------------------------------------------------------------------------------------------------------


def test_sampled_batches_carry_current_and_next_bands() -> None:
    arrays = episode_arrays()
    dataset = make_banded_dataset(**arrays)
    assert dataset.transition_count == 3 + 3 + 4  # timed-out episodes lose their last row
    d3rlpy.seed(0)  # seeds the global np.random that d3rlpy-style sampling uses
    batch = dataset.sample_transition_batch(2000)
    rows = batch.observations[:, 0].astype(int)
    assert set(rows) == {0, 1, 2, 4, 5, 6, 7, 8, 9, 10}  # rows 3 and 11 end timed-out episodes
    terminal = batch.terminals[:, 0] == 1.0
    assert set(rows[terminal]) == {6}
    live = ~terminal
    np.testing.assert_array_equal(batch.next_observations[live], arrays["observations"][rows[live] + 1])
    np.testing.assert_array_equal(batch.next_centres[live], arrays["centres"][rows[live] + 1])
    np.testing.assert_array_equal(batch.next_uppers[live], arrays["uppers"][rows[live] + 1])
    np.testing.assert_array_equal(batch.centres, arrays["centres"][rows])
    np.testing.assert_array_equal(batch.lowers, np.full((2000, ACTION_DIM), -0.15, dtype=np.float32))
    np.testing.assert_array_equal(batch.actions, arrays["actions"][rows])
    np.testing.assert_array_equal(batch.rewards[:, 0], arrays["rewards"][rows])
    assert np.all(batch.next_observations[terminal] == 0.0)
    np.testing.assert_array_equal(batch.next_centres[terminal], arrays["centres"][rows[terminal]])


def test_transition_picker_agrees_with_vectorised_sampler() -> None:
    arrays = episode_arrays()
    dataset = make_banded_dataset(**arrays)
    episode = dataset.episodes[0]
    transition = dataset.transition_picker(episode, 2)
    assert isinstance(transition, BandedTransition)
    np.testing.assert_array_equal(transition.next_centre, arrays["centres"][3])
    np.testing.assert_array_equal(transition.upper, arrays["uppers"][2])
    terminal = dataset.transition_picker(dataset.episodes[1], 2)
    assert terminal.terminal == 1.0
    np.testing.assert_array_equal(terminal.next_centre, arrays["centres"][6])


def test_torch_batch_edges_follow_override_and_action_scaler() -> None:
    arrays = episode_arrays()
    batch = make_banded_dataset(**arrays).sample_transition_batch(8)
    plain = BandedTorchMiniBatch.from_banded_batch(batch, gamma=0.9, device="cpu:0")
    np.testing.assert_allclose(plain.band_low_edge.numpy(), batch.centres + batch.lowers)
    np.testing.assert_allclose(plain.next_band_high_edge.numpy(), batch.next_centres + batch.next_uppers)
    overridden = BandedTorchMiniBatch.from_banded_batch(batch, gamma=0.9, device="cpu:0", band_override=(-0.05, 0.1))
    np.testing.assert_allclose(overridden.band_high_edge.numpy(), batch.centres + 0.1, rtol=1e-6)
    np.testing.assert_allclose(overridden.next_band_low_edge.numpy(), batch.next_centres - 0.05, rtol=1e-6)
    scaler = MinMaxActionScaler(minimum=np.array([-2.0, 0.0]), maximum=np.array([2.0, 1.0]))
    scaled = BandedTorchMiniBatch.from_banded_batch(batch, gamma=0.9, device="cpu:0", action_scaler=scaler)
    expected = (batch.centres + batch.uppers - np.array([-2.0, 0.0])) / np.array([4.0, 1.0]) * 2 - 1
    np.testing.assert_allclose(scaled.band_high_edge.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scaled.actions.numpy(), scaler.transform_numpy(batch.actions), rtol=1e-5, atol=1e-6)


def test_banded_dataset_dump_load_round_trip() -> None:
    dataset = make_banded_dataset(**episode_arrays())
    buffer = io.BytesIO()
    dataset.dump(buffer)
    buffer.seek(0)
    loaded = BandedReplayBuffer.load(buffer)
    assert loaded.transition_count == dataset.transition_count
    for original, restored in zip(dataset.episodes, loaded.episodes, strict=True):
        for name in ("observations", "actions", "rewards", "centres", "lowers", "uppers"):
            np.testing.assert_array_equal(getattr(original, name), getattr(restored, name))
        assert original.terminated == restored.terminated


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"uppers": -0.2}, "uppers > lowers"),
        ({"lowers": np.zeros((12, 5))}, "lowers must be"),
        ({"centres": np.zeros((12, 3))}, "centres must have shape"),
        ({"rewards": np.zeros((12, 2))}, "rewards must be"),
        ({"timeouts": np.zeros(12)}, "last row must be terminal or timeout"),
        ({"terminals": np.eye(12)[3]}, "both terminal and timeout"),
        ({"observations": np.full((12, OBS_DIM), np.nan)}, "observations contains NaN"),
        ({"actions": np.zeros(12)}, "observations and actions"),
    ],
)
def test_make_banded_dataset_rejects_bad_input(change: dict[str, object], message: str) -> None:
    arrays: dict[str, object] = {**episode_arrays(), **change}
    with pytest.raises(ValueError, match=message):
        make_banded_dataset(**arrays)  # type: ignore[arg-type]


def test_fit_on_plain_mdp_dataset_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    arrays = episode_arrays()
    plain = MDPDataset(
        arrays["observations"], arrays["actions"], arrays["rewards"], arrays["terminals"], arrays["timeouts"]
    )
    algo = tiny_config().create("cpu:0")
    with pytest.raises(TypeError, match=r"make_banded_dataset\(observations, actions"):
        algo.fit(plain, n_steps=2, n_steps_per_epoch=2, show_progress=False)
    assert not (tmp_path / "d3rlpy_logs").exists()
    algo.build_with_dataset(plain)
    with pytest.raises(TypeError, match="BandedTransitionMiniBatch"):
        algo.update(plain.sample_transition_batch(4))


# ---------------------------------------------------------------------------------------------------------------
# d3rlpy conformance
# ---------------------------------------------------------------------------------------------------------------


def test_fit_counts_updates_writes_no_logs_and_runs_evaluators(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    d3rlpy.seed(0)
    dataset = random_banded_dataset()
    algo = tiny_config().create("cpu:0")
    results = algo.fit(
        dataset,
        n_steps=10,
        n_steps_per_epoch=5,
        logger_adapter=NoopAdapterFactory(),
        show_progress=False,
        evaluators={"td_error": TDErrorEvaluator(), "value": AverageValueEstimationEvaluator()},
    )
    assert algo.grad_step == 10
    assert [epoch for epoch, _ in results] == [1, 2]
    metrics = results[-1][1]
    for key in ("critic_loss", "actor_loss", "actor_band_penalty", "actor_q_std", "td_error", "value"):
        assert math.isfinite(metrics[key]), key
    assert not (tmp_path / "d3rlpy_logs").exists()


def test_targets_soft_update_every_interval() -> None:
    d3rlpy.seed(0)
    dataset = random_banded_dataset()
    algo = tiny_config(target_update_interval=3, tau=0.25).create("cpu:0")
    algo.build_with_dataset(dataset)
    impl = algo.impl
    assert impl is not None
    targ = impl.modules.targ_q_funcs.layers[0].weight
    initial = targ.detach().clone()
    for _ in range(2):
        algo.update(dataset.sample_transition_batch(32))
    torch.testing.assert_close(targ, initial)
    algo.update(dataset.sample_transition_batch(32))
    online = impl.modules.q_funcs.layers[0].weight.detach()
    torch.testing.assert_close(targ.detach(), 0.75 * initial + 0.25 * online)


def test_predict_sample_action_and_value_shapes() -> None:
    algo, _ = fitted_algo()
    x = np.random.default_rng(1).normal(size=(5, OBS_DIM)).astype(np.float32)
    actions = algo.predict(x)
    assert actions.shape == (5, ACTION_DIM)
    assert np.all(np.abs(actions) <= 1.0)
    np.testing.assert_array_equal(algo.sample_action(x), actions)
    assert algo.predict_value(x, actions).shape == (5,)


def test_save_and_load_learnable_in_fresh_process(tmp_path: Path) -> None:
    algo, _ = fitted_algo()
    x = np.random.default_rng(2).normal(size=(6, OBS_DIM)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    algo.save(str(tmp_path / "model.d3"))
    script = (
        "import sys, numpy as np, d3rlpy, mtf_agents.integrated_rl as irl\n"
        f"algo = d3rlpy.load_learnable({str(tmp_path / 'model.d3')!r})\n"
        "assert isinstance(algo, irl.IntegratedRL), type(algo)\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, algo.predict(x))\n"
        f"np.save({str(tmp_path / 'v.npy')!r}, algo.predict_value(x, algo.predict(x)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), algo.predict(x))
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), algo.predict_value(x, algo.predict(x)))


def test_save_policy_torchscript_equals_predict(tmp_path: Path) -> None:
    algo, _ = fitted_algo()
    path = str(tmp_path / "policy.pt")
    algo.save_policy(path)
    policy = torch.jit.load(path)
    x = np.random.default_rng(3).normal(size=(4, OBS_DIM)).astype(np.float32)
    with torch.no_grad():
        out = policy(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, algo.predict(x), rtol=1e-6, atol=1e-6)


def test_save_model_load_model_round_trip(tmp_path: Path) -> None:
    algo, dataset = fitted_algo()
    path = str(tmp_path / "model.pt")
    algo.save_model(path)
    other = tiny_config().create("cpu:0")
    other.build_with_dataset(dataset)
    x = np.random.default_rng(5).normal(size=(4, OBS_DIM)).astype(np.float32)
    assert not np.allclose(other.predict(x), algo.predict(x))
    other.load_model(path)
    np.testing.assert_array_equal(other.predict(x), algo.predict(x))
    np.testing.assert_array_equal(other.predict_value(x, other.predict(x)), algo.predict_value(x, algo.predict(x)))


def test_file_logger_params_rebuild_the_same_config(tmp_path: Path) -> None:
    d3rlpy.seed(0)
    config = tiny_config(band_override=(-0.1, 0.2), critic_penalty="multiplicative", critic_target="min")
    algo = config.create("cpu:0")
    algo.fit(
        random_banded_dataset(),
        n_steps=2,
        n_steps_per_epoch=2,
        logger_adapter=FileAdapterFactory(root_dir=str(tmp_path)),
        experiment_name="irl",
        with_timestamp=False,
        show_progress=False,
    )
    params = tmp_path / "irl" / "params.json"
    assert json.loads(params.read_text())["config"]["type"] == "integrated_rl"
    rebuilt = IntegratedRL.from_json(str(params), device="cpu:0")
    assert rebuilt.config == config
    assert (tmp_path / "irl" / "model_2.d3").exists()


def test_fit_online_is_refused() -> None:
    with pytest.raises(NotImplementedError, match="offline"):
        tiny_config().create("cpu:0").fit_online(None)


# ---------------------------------------------------------------------------------------------------------------
# Behaviour: one-step bandit, reward = action dim 0, data inside the band around c = -0.2
# ---------------------------------------------------------------------------------------------------------------


def bandit_excess(eta: float) -> np.ndarray:
    """How far the learned action dim 0 ends above the band edge c + 0.15 (negative: inside)."""
    d3rlpy.seed(0)
    rng = np.random.default_rng(0)
    n = 1000
    observations = rng.uniform(-1, 1, size=(n, OBS_DIM)).astype(np.float32)
    centres = np.full((n, ACTION_DIM), -0.2, dtype=np.float32)
    actions = (centres + rng.uniform(-0.15, 0.15, size=centres.shape)).astype(np.float32)
    dataset = make_banded_dataset(observations, actions, actions[:, 0], np.ones(n), np.zeros(n), centres, -0.15, 0.15)
    encoder = VectorEncoderFactory(hidden_units=[32, 32])
    algo = IntegratedRLConfig(
        batch_size=64,
        n_critics=4,
        eta=eta,
        lam=0.0,
        actor_encoder_factory=encoder,
        critic_encoder_factory=encoder,
        actor_learning_rate=1e-3,
        critic_learning_rate=1e-3,
    ).create("cpu:0")
    algo.fit(dataset, n_steps=600, n_steps_per_epoch=600, logger_adapter=NoopAdapterFactory(), show_progress=False)
    return algo.predict(observations[:200])[:, 0] - (-0.2 + 0.15)


def test_band_penalty_keeps_actions_inside_the_band_and_eta_zero_follows_q() -> None:
    kept = bandit_excess(eta=5.0)
    free = bandit_excess(eta=0.0)
    assert kept.max() < 0.03, kept.max()  # at most a hair beyond the edge, where d's slope balances dQ/da
    assert free.mean() > 0.5, free.mean()  # Q rises with a_0, nothing holds the actor back


# ---------------------------------------------------------------------------------------------------------------
# Config validation
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("n_critics", 0, "an integer >= 1"),
        ("n_critics", 2.5, "an integer >= 1"),
        ("beta", 0.0, "a float > 0"),
        ("beta", -1.0, "a float > 0"),
        ("band_override", (0.1, 0.1), "lower < upper"),
        ("band_override", (0.2, -0.2), "lower < upper"),
        ("band_override", (0.1,), "pair"),
        ("critic_penalty", "additive", "one of ('subtractive', 'multiplicative')"),
        ("critic_target", "max", "one of ('independent', 'mean', 'min')"),
        ("band_reduction", "max", "one of ('sum', 'mean')"),
        ("gamma", 1.5, "in [0, 1]"),
        ("tau", 0.0, "in (0, 1]"),
        ("target_update_interval", 0, "an integer >= 1"),
        ("eta", -0.1, ">= 0"),
        ("lam", float("nan"), ">= 0"),
        ("alpha", -1.0, ">= 0"),
        ("num_critic_sets", 0, "an integer >= 1"),
        ("critic_set_weights", (1.0, 2.0), "None or 1 finite floats"),
        ("actor_band_weight", "beta", "one of ('eta', 'alpha')"),
        ("target_noise", -0.1, ">= 0"),
        ("target_noise_clip", 0.0, "> 0"),
        ("progressive_data", "all", "one of ('cumulative', 'current_round')"),
        ("progressive_init", "cold", "one of ('scratch', 'warm_start')"),
    ],
)
def test_bad_config_names_field_and_allowed_values(field: str, value: object, allowed: str) -> None:
    with pytest.raises(ValueError, match=rf"IntegratedRLConfig\.{field} must be") as info:
        IntegratedRLConfig(**{field: value})  # type: ignore[arg-type]
    assert allowed in str(info.value)


def test_defaults_are_the_paper_values() -> None:
    config = IntegratedRLConfig()
    paper = {"gamma": 0.9, "alpha": 1.2, "beta": 0.3, "lam": 0.2, "n_critics": 24, "tau": 0.08, "batch_size": 256}
    assert {k: getattr(config, k) for k in paper} == paper
    assert config.target_update_interval == 15
    assert config.critic_penalty == "multiplicative"  # our choice between the two published variants (docs)


def test_zoo_agent_config_defaults_are_the_algorithm_config_defaults() -> None:
    from mtf_agents.d3rlpy_agents import IntegratedRLAgentConfig

    agent, algo = IntegratedRLAgentConfig(), IntegratedRLConfig()
    shared = ("n_critics", "tau", "target_update_interval", "alpha", "beta", "eta", "lam", "band_reduction",
              "critic_penalty", "critic_target", "band_override", "num_critic_sets", "critic_set_weights",
              "actor_band_weight", "target_noise", "target_noise_clip", "progressive_data", "progressive_init")
    assert {k: getattr(agent, k) for k in shared} == {k: getattr(algo, k) for k in shared}


# ---------------------------------------------------------------------------------------------------------------
# q = 1 is the first version exactly; critic sets per reward component (q > 1); the readings as options
# ---------------------------------------------------------------------------------------------------------------

# Captured with the implementation before critic sets existed (commit 2555151), on the fixed batch below:
# (critic loss, actor loss, critic loss of the next update, actor loss of the next update, sum of two predictions).
BEFORE_CRITIC_SETS = {
    "multiplicative": (0.31863510608673096, 20.65682601928711, 0.4234907627105713, 28.150632858276367,
                       -0.7408361434936523),
    "subtractive": (36563.0625, 20.664203643798828, 42081.8203125, 28.158222198486328, -0.7408361434936523),
}


# Captured on this project's CPU box with torch 2.13 (CPU build). The same torch on another CPU picks other kernels
# (AVX-512 or AVX2), which round a few float32 ulps differently (seen: 20.656826 vs 20.656822), so the constants are
# compared to 1e-5 relative: far below what any change of formula moves them, far above kernel rounding. The
# comparison with the first version's formulas below is exact, in process.
CAPTURED_WITH_TORCH = "2.13"


@pytest.mark.parametrize("penalty", ["multiplicative", "subtractive"])
def test_one_critic_set_reproduces_the_first_version_s_numbers(penalty: str) -> None:
    if not torch.__version__.startswith(CAPTURED_WITH_TORCH):
        pytest.skip(f"constants captured with torch {CAPTURED_WITH_TORCH}, this is {torch.__version__}")
    algo, dataset = fitted_algo(n_steps=5, n_critics=3, eta=0.5, lam=0.3, alpha=0.8, critic_penalty=penalty)
    impl = algo.impl
    assert impl is not None
    d3rlpy.seed(3)
    batch = BandedTorchMiniBatch.from_banded_batch(dataset.sample_transition_batch(16), gamma=0.9, device="cpu:0")
    impl.modules.set_eval()
    critic = impl.compute_critic_loss(batch).critic_loss.item()
    actor = impl.compute_actor_loss(batch).actor_loss.item()
    d3rlpy.seed(4)
    metrics = algo.update(dataset.sample_transition_batch(32))
    prediction = float(algo.predict(dataset.episodes[0].observations[:2]).sum())
    got = (critic, actor, metrics["critic_loss"], metrics["actor_loss"], prediction)
    assert got == pytest.approx(BEFORE_CRITIC_SETS[penalty], rel=1e-5)


def first_version_td_targets(rewards, terminals, discounts, next_q, next_actions, next_lower, next_upper, s):
    """``td_targets`` as it was before critic sets (commit 2555151), verbatim."""
    if s.critic_target == "mean":
        boot = next_q.mean(dim=0, keepdim=True).expand_as(next_q)
    elif s.critic_target == "min":
        boot = next_q.min(dim=0, keepdim=True).values.expand_as(next_q)
    else:
        boot = next_q
    if s.critic_penalty == "subtractive":
        d = band_penalty(next_actions, next_lower, next_upper, s.beta, s.band_reduction)
        boot = boot - s.alpha * d[:, None]
    else:
        phi = band_factor(next_actions, next_lower, next_upper, s.beta, s.band_reduction)
        boot = boot * phi[:, None]
    return rewards + discounts * (1.0 - terminals) * boot


def first_version_actor_loss(q_values, actions, lower, upper, s):
    """``actor_objective(...).actor_loss`` as it was before critic sets (commit 2555151), verbatim."""
    q_mean = q_values.mean(dim=0)
    q_std = q_values.std(dim=0, correction=0) if q_values.shape[0] > 1 else torch.zeros_like(q_mean)
    d = band_penalty(actions, lower, upper, s.beta, s.band_reduction)
    return -q_mean.mean() + s.eta * d.mean() + s.lam * q_std.mean()


@pytest.mark.parametrize("penalty", ["subtractive", "multiplicative"])
@pytest.mark.parametrize("aggregation", ["independent", "mean", "min"])
@pytest.mark.parametrize("m", [1, 5])
def test_one_critic_set_equals_the_first_version_formulas_exactly(penalty: str, aggregation: str, m: int) -> None:
    gen = torch.Generator().manual_seed(m)
    b, a = 64, 4
    q = torch.randn(m, b, 1, generator=gen) * 3
    actions = torch.rand(b, a, generator=gen) * 2 - 1
    lower = torch.rand(b, a, generator=gen) * 0.5 - 0.5
    upper = lower + 0.3
    rewards, terminals = torch.randn(b, 1, generator=gen), (torch.rand(b, 1, generator=gen) < 0.2).float()
    s = settings(critic_penalty=penalty, critic_target=aggregation, eta=0.7, lam=0.3)
    args = (rewards, terminals, torch.full((b, 1), 0.9), q, actions, lower, upper)
    assert torch.equal(td_targets(*args, settings=s), first_version_td_targets(*args, s))
    loss = actor_objective(q, actions, lower, upper, s, set_weights=torch.ones(1)).actor_loss
    assert torch.equal(loss, first_version_actor_loss(q, actions, lower, upper, s))


def components_dataset(n: int = 400, seed: int = 0, q: int = 3) -> BandedReplayBuffer:
    rng = np.random.default_rng(seed)
    observations = rng.normal(size=(n, OBS_DIM)).astype(np.float32)
    centres = rng.uniform(-0.5, 0.5, size=(n, ACTION_DIM)).astype(np.float32)
    actions = (centres + rng.uniform(-0.15, 0.15, size=centres.shape)).astype(np.float32)
    components = rng.normal(size=(n, q)).astype(np.float32)
    timeouts = np.zeros(n, dtype=np.float32)
    timeouts[9::10] = 1.0
    return make_banded_dataset(observations, actions, components.sum(1), np.zeros(n, np.float32), timeouts, centres,
                               -0.15, 0.15, reward_components=components)


# Two sets of two critics (q = 2, m = 2), three states; set weights (1.0, 0.5).
SETS = {
    "q": np.array([[1.0, 2.0, -1.0], [3.0, 0.0, -2.0],   # set 0, critics 0 and 1
                   [0.5, 1.0, 4.0], [1.5, 3.0, 0.0]], dtype=np.float32),  # set 1, critics 2 and 3
    "components": np.array([[0.2, -1.0], [1.0, 0.5], [0.0, 2.0]], dtype=np.float32),  # (B, q)
    "terminals": np.array([0.0, 1.0, 0.0], dtype=np.float32),
    "actions": np.array([[0.1], [0.5], [-0.4]], dtype=np.float32),  # row 1 above, row 2 below the band
    "lower": np.array([[-0.15], [0.0], [-0.3]], dtype=np.float32),
    "upper": np.array([[0.15], [0.3], [0.0]], dtype=np.float32),
}


@pytest.mark.parametrize("penalty", ["subtractive", "multiplicative"])
@pytest.mark.parametrize("aggregation", ["independent", "mean", "min"])
def test_td_targets_per_critic_set_match_numpy(penalty: str, aggregation: str) -> None:
    f = SETS
    s = settings(critic_penalty=penalty, critic_target=aggregation, num_critic_sets=2, critic_set_weights=(1.0, 0.5))
    y = td_targets(
        rewards=t(f["components"]), terminals=t(f["terminals"])[:, None], discounts=torch.full((3, 1), 0.9),
        next_q=t(f["q"])[..., None], next_actions=t(f["actions"]), next_lower=t(f["lower"]),
        next_upper=t(f["upper"]), settings=s,
    )
    q = f["q"].reshape(2, 2, 3)
    boot = {"independent": q, "mean": np.broadcast_to(q.mean(1, keepdims=True), q.shape),
            "min": np.broadcast_to(q.min(1, keepdims=True), q.shape)}[aggregation]
    if penalty == "subtractive":
        boot = boot - 1.2 * np_band_penalty(f["actions"], f["lower"], f["upper"], 0.3, "sum")
    else:
        boot = boot * np_band_factor(f["actions"], f["lower"], f["upper"], 0.3, "sum")
    # Set k regresses on component k: r[:, k] broadcast over the set's two critics.
    expected = f["components"].T[:, None, :] + 0.9 * (1 - f["terminals"]) * boot
    assert y.shape == (4, 3, 1)
    np.testing.assert_allclose(y[..., 0].numpy(), expected.reshape(4, 3), rtol=1e-5, atol=1e-6)
    # Row 1 is terminal: each set's target is its own component, whatever the critic.
    np.testing.assert_allclose(y[:, 1, 0].numpy(), [1.0, 1.0, 0.5, 0.5])


def test_actor_objective_per_critic_set_matches_numpy() -> None:
    f = SETS
    s = settings(eta=0.7, lam=0.2, num_critic_sets=2, critic_set_weights=(1.0, -0.5))
    out = actor_objective(t(f["q"])[..., None], t(f["actions"]), t(f["lower"]), t(f["upper"]), s)
    q = f["q"].reshape(2, 2, 3)
    value = 1.0 * q[0].mean(0) - 0.5 * q[1].mean(0)
    spread = 1.0 * q[0].std(0, ddof=0) + 0.5 * q[1].std(0, ddof=0)  # |w_k|: a penalty stays a penalty
    d = np_band_penalty(f["actions"], f["lower"], f["upper"], 0.3, "sum")
    expected = -value.mean() + 0.7 * d.mean() + 0.2 * spread.mean()
    assert out.actor_loss.item() == pytest.approx(expected, rel=1e-6)
    assert out.actor_q_mean.item() == pytest.approx(value.mean(), rel=1e-6)
    assert out.actor_q_std.item() == pytest.approx(spread.mean(), rel=1e-6)
    # Pooling the four critics as one set would give a different loss: the sets are really kept apart.
    pooled = -f["q"].mean(0).mean() + 0.7 * d.mean() + 0.2 * f["q"].std(0, ddof=0).mean()
    assert abs(out.actor_loss.item() - pooled) > 1e-3


def test_critic_sets_in_the_impl_match_numpy_on_a_fixed_batch() -> None:
    d3rlpy.seed(0)
    dataset = components_dataset(q=3)
    algo = tiny_config(n_critics=2, num_critic_sets=3, critic_set_weights=(1.0, 2.0, 0.5), eta=0.5, lam=0.3)
    algo = algo.create(device="cpu:0")
    algo.fit(dataset, n_steps=3, n_steps_per_epoch=3, logger_adapter=NoopAdapterFactory(), show_progress=False)
    impl = algo.impl
    assert impl is not None and impl.modules.q_funcs.ensemble_size == 6  # q * m critics, one batched ensemble
    d3rlpy.seed(5)
    batch = BandedTorchMiniBatch.from_banded_batch(
        dataset.sample_transition_batch(16), gamma=0.9, device="cpu:0", with_reward_components=True
    )
    assert batch.reward_components is not None and batch.reward_components.shape == (16, 3)
    modules = impl.modules
    with torch.no_grad():
        next_a = modules.targ_policy(batch.next_observations).squashed_mu
        next_q = modules.targ_q_funcs(batch.next_observations, next_a)[..., 0].numpy().reshape(3, 2, 16)
        q = modules.q_funcs(batch.observations, batch.actions)[..., 0].numpy().reshape(3, 2, 16)
        a = modules.policy(batch.observations).squashed_mu
        q_pi = modules.q_funcs(batch.observations, a)[..., 0].numpy().reshape(3, 2, 16)
    phi = np_band_factor(next_a.numpy(), batch.next_band_low_edge.numpy(), batch.next_band_high_edge.numpy(), 0.3,
                         "sum")
    r = batch.reward_components.numpy().T[:, None, :]
    y = r + 0.9 * (1 - batch.terminals[:, 0].numpy()) * next_q * phi
    expected_critic = ((q - y) ** 2).mean(2).sum()
    w = np.array([1.0, 2.0, 0.5])[:, None]
    d = np_band_penalty(a.numpy(), batch.band_low_edge.numpy(), batch.band_high_edge.numpy(), 0.3, "sum")
    expected_actor = (-(w * q_pi.mean(1)).sum(0).mean() + 0.5 * d.mean()
                      + 0.3 * (w * q_pi.std(1, ddof=0)).sum(0).mean())
    impl.modules.set_eval()
    assert impl.compute_critic_loss(batch).critic_loss.item() == pytest.approx(expected_critic, rel=1e-4)
    assert impl.compute_actor_loss(batch).actor_loss.item() == pytest.approx(expected_actor, rel=1e-4)
    value = algo.predict_value(batch.observations.numpy(), batch.actions.numpy())
    with torch.no_grad():
        q_data = modules.q_funcs(batch.observations, batch.actions)[..., 0].numpy().reshape(3, 2, 16)
    np.testing.assert_allclose(value, (w * q_data.mean(1)).sum(0), rtol=1e-5)


def test_critic_sets_need_matching_reward_components() -> None:
    algo = tiny_config(num_critic_sets=2).create(device="cpu:0")
    with pytest.raises(ValueError, match=r"num_critic_sets=2 needs 2 reward components.*none"):
        algo.fit(random_banded_dataset(), n_steps=1, logger_adapter=NoopAdapterFactory(), show_progress=False)
    with pytest.raises(ValueError, match=r"num_critic_sets=2 needs 2 reward components.*has 3"):
        algo.fit(components_dataset(q=3), n_steps=1, logger_adapter=NoopAdapterFactory(), show_progress=False)
    with pytest.raises(ValueError, match="reward_scaler must be None or a MultiplyRewardScaler"):
        tiny_config(num_critic_sets=2, reward_scaler=d3rlpy.preprocessing.StandardRewardScaler(mean=0.0, std=1.0))


def test_reward_components_survive_dump_load_and_sampling() -> None:
    dataset = components_dataset(n=60, q=3)
    buffer = io.BytesIO()
    dataset.dump(buffer)
    buffer.seek(0)
    loaded = BandedReplayBuffer.load(buffer)
    assert loaded.num_reward_components == 3
    np.random.seed(0)  # noqa: NPY002 (the sampler's RNG, as d3rlpy's)
    batch = loaded.sample_transition_batch(8)
    assert batch.reward_components is not None
    np.testing.assert_allclose(batch.reward_components.sum(1), batch.rewards[:, 0], rtol=1e-5, atol=1e-6)
    assert random_banded_dataset().num_reward_components == 0


def test_target_noise_is_clipped_and_off_by_default() -> None:
    from mtf_agents.integrated_rl.impl import smoothed_target_actions

    a = t([[0.0, 0.95], [-0.2, 0.1]])
    assert smoothed_target_actions(a, 0.0, 0.5) is a
    gen = torch.Generator().manual_seed(0)
    noisy = smoothed_target_actions(a, 10.0, 0.3, generator=gen)
    gen = torch.Generator().manual_seed(0)
    eps = torch.randn(a.shape, generator=gen)
    np.testing.assert_allclose(noisy.numpy(), (a + (10.0 * eps).clamp(-0.3, 0.3)).clamp(-1, 1).numpy())
    assert (noisy - a).abs().max() <= 0.3 + 1e-6 and noisy.max() <= 1.0


def test_target_noise_changes_the_critic_targets_only_when_on() -> None:
    algo, dataset = fitted_algo(n_steps=2)
    noisy, _ = fitted_algo(n_steps=2, target_noise=0.2)
    d3rlpy.seed(1)
    batch = BandedTorchMiniBatch.from_banded_batch(dataset.sample_transition_batch(16), gamma=0.9, device="cpu:0")
    assert algo.impl is not None and noisy.impl is not None
    # The same model on the same batch: targets depend on the torch seed only when the noise is on.
    torch.manual_seed(0)
    first = noisy.impl.compute_critic_loss(batch).td_target_mean.item()
    torch.manual_seed(1)
    second = noisy.impl.compute_critic_loss(batch).td_target_mean.item()
    assert first != second
    torch.manual_seed(0)
    plain_a = algo.impl.compute_critic_loss(batch).td_target_mean.item()
    torch.manual_seed(1)
    assert algo.impl.compute_critic_loss(batch).td_target_mean.item() == plain_a


def test_actor_band_weight_alpha_uses_alpha_in_the_actor() -> None:
    assert IntegratedRLConfig(alpha=1.2, eta=1.0).actor_eta == 1.0
    assert IntegratedRLConfig(alpha=1.2, eta=1.0, actor_band_weight="alpha").actor_eta == 1.2
    algo, _ = fitted_algo(n_steps=1, alpha=0.7, eta=3.0, actor_band_weight="alpha")
    assert algo.impl is not None and algo.impl._settings.eta == 0.7


def test_save_load_learnable_keeps_every_new_option(tmp_path: Path) -> None:
    d3rlpy.seed(0)
    options = {
        "num_critic_sets": 3, "critic_set_weights": (1.0, 2.0, -0.5), "actor_band_weight": "alpha",
        "target_noise": 0.1, "target_noise_clip": 0.25, "critic_penalty": "subtractive",
        "progressive_data": "current_round", "progressive_init": "warm_start", "n_critics": 2,
    }
    algo = tiny_config(**options).create(device="cpu:0")
    algo.fit(components_dataset(q=3), n_steps=2, n_steps_per_epoch=2, logger_adapter=NoopAdapterFactory(),
             show_progress=False)
    path = tmp_path / "irl.d3"
    algo.save(str(path))
    loaded = d3rlpy.load_learnable(str(path), device="cpu:0")
    assert isinstance(loaded.config, IntegratedRLConfig)
    assert {k: getattr(loaded.config, k) for k in options} == options
    obs = np.zeros((2, OBS_DIM), dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict(obs), algo.predict(obs))
    assert loaded.impl is not None and loaded.impl.modules.q_funcs.ensemble_size == 6


def test_warm_start_copies_every_network() -> None:
    # The progressive driver's use of it (mtf_agents.progressive) is tested in tests/test_progressive.py.
    previous, dataset = fitted_algo(n_steps=3)
    fresh = tiny_config().create(device="cpu:0")
    fresh.build_with_dataset(dataset)
    obs = np.zeros((2, OBS_DIM), dtype=np.float32)
    assert not np.array_equal(fresh.predict(obs), previous.predict(obs))
    fresh.warm_start_from(previous)
    np.testing.assert_array_equal(fresh.predict(obs), previous.predict(obs))


def test_ensemble_is_built_on_the_requested_device() -> None:
    from mtf_agents.integrated_rl import build_ensemble_q_function

    ensemble = build_ensemble_q_function((3,), 2, TINY, 4, device="meta")
    assert {p.device.type for p in ensemble.parameters()} == {"meta"}


def test_compile_graph_is_ignored_on_cpu_like_in_d3rlpy() -> None:
    plain, _ = fitted_algo(n_steps=3)
    compiled, _ = fitted_algo(n_steps=3, compile_graph=True)
    assert not compiled.compiled  # CUDA-only in d3rlpy: the CPU path runs uncompiled, unchanged
    obs = np.zeros((2, OBS_DIM), dtype=np.float32)
    np.testing.assert_array_equal(compiled.predict(obs), plain.predict(obs))


def test_zoo_agent_trains_critic_sets_on_collected_per_group_rewards(tmp_path: Path) -> None:
    from mtf_agents.d3rlpy_agents import IntegratedRLAgent, IntegratedRLAgentConfig
    from mtf_gym import MTFSessionConfig
    from mtf_gym.datasets import RecipeConfig, collect_recipe

    data = collect_recipe(RecipeConfig("uniform", sessions=12, num_envs=6, env=MTFSessionConfig(max_requests=4)),
                          progress=False)
    assert data.num_reward_components == 3
    config = IntegratedRLAgentConfig(hidden_units=(16, 16), batch_size=16, n_critics=2, num_critic_sets=3,
                                     critic_set_weights=(1.0, 1.0, 1.0))
    agent = IntegratedRLAgent(config)
    metrics = agent.fit(data, 3, seed=0, show_progress=False)
    assert math.isfinite(metrics["critic_loss"]) and math.isfinite(metrics["actor_loss"])
    assert agent.act(data.observations[:4]).shape == (4, data.action_dim)
    one_component = dataclasses.replace(data, reward_components=None)
    with pytest.raises(ValueError, match="needs 3 reward components"):
        IntegratedRLAgent(config).fit(one_component, 1, seed=0, show_progress=False)

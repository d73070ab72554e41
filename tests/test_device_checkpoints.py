"""The ``device`` knob reaches every torch agent (checked on what each built agent holds), asking for CUDA without
it is a clear error, and training reports learning-curve checkpoints at the requested step counts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from mtf_agents.base import resolve_device
from mtf_agents.registry import build_agent
from tests.test_agents import ONLINE_ENV_CONFIG, TINY, collect_tiny_data

TORCH_AGENTS = ("bcq", "cql", "iql", "ddpg", "td3bc", "integrated_rl", "ddpg_va", "sac", "td3", "ppo")


@pytest.fixture(scope="module")
def tiny_data():
    return collect_tiny_data()


def _held_devices(agent: Any) -> set[str]:
    """The devices of every parameter the trained agent holds (d3rlpy impl, SB3 policy, ddpg_va network)."""
    if hasattr(agent, "_algo"):
        modules = agent._algo.impl.modules
        params = [p for name in vars(modules) for m in [getattr(modules, name)] if isinstance(m, torch.nn.Module)
                  for p in m.parameters()]
    elif hasattr(agent, "_model"):
        params = list(agent._model.policy.parameters())
    else:
        params = list(agent._net.parameters())
    assert params
    return {p.device.type for p in params}


@pytest.mark.parametrize("name", TORCH_AGENTS)
def test_device_reaches_every_torch_agent(name: str, tiny_data) -> None:
    agent = build_agent(name, **TINY[name], device="cpu")
    assert agent.config.device == "cpu"
    if agent.kind == "offline":
        agent.fit(tiny_data, 4, seed=0, show_progress=False)
    else:
        agent.fit_online(ONLINE_ENV_CONFIG, 32, seed=0, show_progress=False)
    assert _held_devices(agent) == {"cpu"}
    if hasattr(agent, "_algo"):
        assert str(agent._algo._device).startswith("cpu")
    if hasattr(agent, "_model"):
        assert agent._model.device.type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised where torch has no CUDA")
@pytest.mark.parametrize("name", ("iql", "integrated_rl", "ddpg_va", "sac"))
def test_cuda_without_cuda_is_an_error_naming_the_fix(name: str, tiny_data) -> None:
    agent = build_agent(name, **TINY[name], device="cuda:0")
    with pytest.raises(ValueError, match=r"--device cpu.*--device auto"):
        if agent.kind == "offline":
            agent.fit(tiny_data, 2, seed=0, show_progress=False)
        else:
            agent.fit_online(ONLINE_ENV_CONFIG, 16, seed=0, show_progress=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks loading a GPU-trained model where torch has no CUDA")
@pytest.mark.parametrize("name", ("integrated_rl", "ddpg_va", "sac"))
def test_a_model_saved_for_cuda_loads_on_the_cpu_when_asked(name: str, tiny_data, tmp_path) -> None:
    """A directory whose config names cuda:0 (as a GPU run writes it): loading it as saved is the clear CUDA
    error; ``load_agent(path, device="cpu")`` loads it, with the same actions as the model that was saved."""
    import json

    from mtf_agents.registry import load_agent

    agent = build_agent(name, **TINY[name], device="cpu")
    if agent.kind == "offline":
        agent.fit(tiny_data, 4, seed=0, show_progress=False)
    else:
        agent.fit_online(ONLINE_ENV_CONFIG, 32, seed=0, show_progress=False)
    path = agent.save(tmp_path / name)
    meta = json.loads((path / "agent.json").read_text())
    meta["config"]["device"] = "cuda:0"
    (path / "agent.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"--device cpu"):
        load_agent(path)
    loaded = load_agent(path, device="cpu")
    assert loaded.config.device == "cpu" and _held_devices(loaded) == {"cpu"}
    obs = tiny_data.observations[:16]
    np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))


COMPILED_AGENTS = ("cql", "iql", "ddpg", "td3bc", "integrated_rl")


def test_compile_graph_reaches_the_d3rlpy_agents_but_not_bcq() -> None:
    """A preset's ``compile_graph`` (d3rlpy's torch.compile + CUDA graphs, ``paper``) reaches every d3rlpy agent's
    d3rlpy config except BCQ's, whose d3rlpy update fails under it; the other agents are told it does not apply."""
    from mtf_agents.d3rlpy_agents import BCQAgentConfig
    from mtf_bench.harness.jobs import build_agent_for

    common = {"hidden_units": [16], "device": "cpu", "compile_graph": True}
    for name in COMPILED_AGENTS:
        agent = build_agent_for(name, {}, common)
        assert agent.config.compile_graph and agent.config.to_d3rlpy().compile_graph, name
        assert not build_agent_for(name, {}, {**common, "compile_graph": False}).config.to_d3rlpy().compile_graph
    for name in ("bcq", "ddpg_va", "sac", "es"):
        notes: list[str] = []
        agent = build_agent_for(name, {}, common, notes.append)
        assert not getattr(agent.config, "compile_graph", False), name
        assert "compile_graph" in notes[0] and "do not apply" in notes[0], (name, notes)
    with pytest.raises(ValueError, match=r"BCQAgentConfig\.compile_graph must be false"):
        BCQAgentConfig(compile_graph=True)


def test_only_a_preset_with_compile_graph_records_it_in_job_identities() -> None:
    """Off (every preset but ``paper``), ``compile_graph`` is absent from the jobs' shared settings, so runs that
    finished before the setting existed keep their hashes; on, it is part of every job's identity."""
    from mtf_bench.harness.grid import build_grid
    from mtf_bench.harness.presets import load_preset
    from tests.test_harness import KINDS

    quick, paper = load_preset("quick"), load_preset("paper")
    assert paper.agents.compile_graph and not quick.agents.compile_graph
    assert all("compile_graph" not in job.common for job in build_grid(quick, KINDS).trains)
    assert all(job.common["compile_graph"] is True for job in build_grid(paper, KINDS).trains)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda:0" if torch.cuda.is_available() else "cpu")
    for bad in ("gpu", "cuda:x", "", "CPU"):
        with pytest.raises(ValueError, match="device must be 'cpu', 'auto', 'cuda' or 'cuda:N'"):
            resolve_device(bad)
    with pytest.raises(ValueError, match="device must be"):
        build_agent("iql", device="tpu")


@pytest.mark.parametrize("name", ("iql", "ddpg_va", "td3"))
def test_checkpoints_fire_once_at_each_requested_count(name: str, tiny_data) -> None:
    seen: list[tuple[int, np.ndarray]] = []
    obs = tiny_data.observations[:8]

    def record(step: int, agent: Any) -> None:
        seen.append((step, agent.act(obs)))

    agent = build_agent(name, **TINY[name])
    if agent.kind == "offline":
        agent.fit(tiny_data, 12, seed=0, show_progress=False, checkpoints=(3, 7, 12), on_checkpoint=record)
    else:
        agent.fit_online(ONLINE_ENV_CONFIG, 48, seed=0, show_progress=False, checkpoints=(20, 48),
                         on_checkpoint=record)
    steps = [s for s, _ in seen]
    assert steps == ([3, 7, 12] if agent.kind == "offline" else [20, 48])
    assert not np.array_equal(seen[0][1], seen[-1][1])  # the policy moved between checkpoints
    np.testing.assert_array_equal(seen[-1][1], agent.act(obs))  # the last checkpoint is the final policy


def test_agent_without_checkpoint_support_reports_the_final_budget_once() -> None:
    seen: list[int] = []
    agent = build_agent("es", **TINY["es"])
    agent.fit_online(ONLINE_ENV_CONFIG, 64, seed=0, show_progress=False, checkpoints=(8, 64),
                     on_checkpoint=lambda step, _agent: seen.append(step))
    assert agent.reports_checkpoints is False
    assert len(seen) == 1 and seen[0] >= 64
    with pytest.raises(ValueError, match=r"checkpoints must be integers in \[1, n_steps=64\]"):
        agent.fit_online(ONLINE_ENV_CONFIG, 64, seed=0, show_progress=False, checkpoints=(0,),
                         on_checkpoint=lambda *_: None)


def test_fqe_estimates_the_behaviour_policy_on_its_own_data(tiny_data) -> None:
    """FQE of the logging centre (the baseline fusion, which the uniform data explores around by +-0.15): with
    gamma = 0 it estimates the mean first reward, with gamma = 1 the mean session return (within 20%). On v1's
    larger rewards 300 steps are not enough for gamma = 0 (4.2 vs 6.4), 1000 are (6.2)."""
    from mtf_bench.harness.ope import fqe_estimate
    from mtf_gym import BaselinePolicy

    policy = BaselinePolicy(tiny_data.env_config())
    kwargs = {"hidden_units": (32, 32), "batch_size": 64, "learning_rate": 1e-3, "seed": 0}
    first_reward = float(tiny_data.rewards[tiny_data.episode_starts()[:-1]].mean())
    immediate = fqe_estimate(policy, tiny_data, 1000, gamma=0.0, **kwargs)
    assert immediate.num_initial_states == tiny_data.num_episodes
    assert immediate.value == pytest.approx(first_reward, rel=0.2)
    session = fqe_estimate(policy, tiny_data, 1000, gamma=1.0, **kwargs)
    assert session.value == pytest.approx(float(tiny_data.episode_returns().mean()), rel=0.2)
    again = fqe_estimate(policy, tiny_data, 1000, gamma=0.0, **kwargs)
    assert again.value == immediate.value  # same seed, same estimate


@pytest.mark.parametrize("name", ("iql", "ddpg_va"))
def test_evaluating_at_checkpoints_does_not_change_training(name: str, tiny_data) -> None:
    """A learning curve observes the run, it does not perturb it: the final policy is the same with or without
    checkpoint evaluations in the simulator (which draw from their own seeded generators)."""
    from mtf_gym.evaluation import simulate_sessions

    obs = tiny_data.observations[:16]
    plain = build_agent(name, **TINY[name])
    plain.fit(tiny_data, 12, seed=3, show_progress=False)
    observed = build_agent(name, **TINY[name])
    observed.fit(tiny_data, 12, seed=3, show_progress=False, checkpoints=(4, 8, 12),
                 on_checkpoint=lambda _step, agent: simulate_sessions(agent, 8, 123, tiny_data.env_config()))
    np.testing.assert_array_equal(plain.act(obs), observed.act(obs))

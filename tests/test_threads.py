"""The simulator's thread pool: results independent of the thread count, safe under fork and concurrent threads."""

import multiprocessing
import threading

import numpy as np
import pytest

import mtf_gym
from mtf_gym import MTFSessionConfig, MTFSessionEnv, MTFSessionVectorEnv
from mtf_gym.rng import counter_uniform, counter_uniforms
from mtf_gym.simulator import SessionSimulator
from mtf_gym.threads import ROWS_PER_CHUNK

# Large enough to be cut into several chunks (and so run on several threads when there are several cores).
N = 6 * ROWS_PER_CHUNK + 5


@pytest.fixture
def threads():
    before = mtf_gym.get_num_threads()
    yield mtf_gym.set_num_threads
    mtf_gym.set_num_threads(before)


def _vector_rollout(num_envs: int = N, steps: int = 25, seed: int = 3) -> list[np.ndarray]:
    env = MTFSessionVectorEnv(num_envs=num_envs)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, (num_envs, 10)).astype(np.float32))
        out += [obs, reward, terminated, truncated, info["item_ids"], info["responses"], info["predictions"]]
    return out


def _equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_results_do_not_depend_on_thread_count(threads):
    threads(1)
    one = _vector_rollout()
    threads(2)
    two = _vector_rollout()
    threads(5)  # more threads than chunks of some sizes, and than cores
    five = _vector_rollout()
    assert _equal(one, two) and _equal(one, five)
    assert sum(int(t.sum()) for t in one[3::7]) > 0, "the rollout must cross session ends (autoresets)"


def test_chunked_vector_env_equals_single_envs(threads):
    threads(2)
    env = MTFSessionVectorEnv(num_envs=N)
    rows = [0, ROWS_PER_CHUNK - 1, ROWS_PER_CHUNK, N // 2, N - 1]  # chunk edges
    singles = {i: MTFSessionEnv() for i in rows}
    obs, _ = env.reset(seed=40)
    for i, single in singles.items():
        np.testing.assert_array_equal(obs[i], single.reset(seed=40 + i)[0])
    actions = np.full((N, 10), 0.3, np.float32)
    ended = {i: False for i in rows}
    for _ in range(20):
        obs, reward, terminated, truncated, _ = env.step(actions)
        for i, single in singles.items():
            if ended[i]:
                single_obs, _ = single.reset()
                ended[i] = False
            else:
                single_obs, r, te, tr, _ = single.step(actions[i])
                assert reward[i] == np.float32(r) and terminated[i] == te and truncated[i] == tr
                ended[i] = te or tr
            np.testing.assert_array_equal(obs[i], single_obs)


def _child(queue) -> None:
    queue.put(float(sum(float(r.sum()) for r in _vector_rollout()[2::7])))


def test_fork_after_threads_is_safe(threads):
    threads(2)
    expected = float(sum(float(r.sum()) for r in _vector_rollout()[2::7]))  # starts the pool in this process
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    child.join(120)
    assert child.exitcode == 0, f"forked child failed (exit code {child.exitcode})"
    assert queue.get(timeout=10) == expected


def test_concurrent_envs_in_several_threads(threads):
    threads(2)
    expected = _vector_rollout()
    results: list[list[np.ndarray]] = []
    workers = [threading.Thread(target=lambda: results.append(_vector_rollout())) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(results) == 3 and all(_equal(expected, r) for r in results)


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_bad_values(value):
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        mtf_gym.set_num_threads(value)


def test_step_restart_arguments_checked():
    sim = SessionSimulator(MTFSessionConfig(), 4)
    sim.start_sessions(np.arange(4), np.arange(4, dtype=np.uint64))
    with pytest.raises(ValueError, match="restart and restart_keys must have shape"):
        sim.step(np.zeros((4, 10), np.float32), restart=np.zeros(3, bool), restart_keys=np.zeros(4, np.uint64))
    with pytest.raises(ValueError, match="rows must be in"):
        sim.start_sessions(np.array([4]), np.array([1], np.uint64))


def test_counter_uniforms_match_the_scalar_hash_and_look_uniform():
    keys = np.arange(1, 2001, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    u = counter_uniforms(keys, 7, 64)
    assert u.dtype == np.float32 and u.shape == (2000, 64)
    assert u[5, 9] == counter_uniform(keys[5], np.uint64(7), np.uint64(9))
    assert 0.0 <= u.min() and u.max() < 1.0
    # 128,000 draws: mean 0.5 +- 0.0024 (3 sigma), every decile within 3% of 10%.
    assert abs(u.mean() - 0.5) < 0.0024
    deciles = np.histogram(u, bins=10, range=(0, 1))[0] / u.size
    assert np.all(np.abs(deciles - 0.1) < 0.003)
    assert not np.array_equal(u, counter_uniforms(keys, 8, 64))


def test_kernel_cache_cleared_when_any_kernel_source_changes(tmp_path):
    from mtf_gym._kernel_cache import KERNEL_SOURCES, invalidate_stale_kernel_cache

    for name in KERNEL_SOURCES:
        (tmp_path / name).parent.mkdir(exist_ok=True)  # the v1 kernels live in sim/
        (tmp_path / name).write_text(f"# {name}\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    (cache / "simulator._step_chunk-1.py311.nbi").write_bytes(b"stale")
    (cache / "simulator.cpython-311.pyc").write_bytes(b"kept")
    assert invalidate_stale_kernel_cache(tmp_path)  # no stamp yet: cleared
    assert sorted(p.name for p in cache.iterdir()) == ["mtf_gym_kernels.sha256", "simulator.cpython-311.pyc"]
    (cache / "simulator._step_chunk-1.py311.nbi").write_bytes(b"fresh")
    assert not invalidate_stale_kernel_cache(tmp_path)  # unchanged sources: the cache is kept
    assert (cache / "simulator._step_chunk-1.py311.nbi").exists()
    (tmp_path / "fusion.py").write_text("# edited: the simulator's kernels inline the fusion formula\n")
    assert invalidate_stale_kernel_cache(tmp_path)
    assert not (cache / "simulator._step_chunk-1.py311.nbi").exists()

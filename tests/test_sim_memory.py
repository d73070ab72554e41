"""How the v1 kernels use memory: the one-line item table, prefetching, no reference counting, the page embedding
mean computed in the kernel, and the simulator's checks of caller arrays (the speed work must change no result)."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import mtf_gym  # noqa: F401  (registers the envs)
from mtf_gym import MTFSessionV1Config
from mtf_gym.sim import kernels, ranker, response, transition, users
from mtf_gym.sim.catalogue import Catalogue
from mtf_gym.sim.items import GLANCE_MEAN_FRACTION, glance_mean, long_time, valid_time
from mtf_gym.sim.layout import I_CLICKBAIT, I_DURATION, I_ERROR, ITEM_COLUMNS, OBS_DIM, item_row_floats
from mtf_gym.sim.memory import CACHE_LINE_BYTES, aligned_empty, kernel_jit, prefetch_rows
from mtf_gym.sim.simulator import UserSimulator, build_model
from mtf_gym.slate import RandomSlatePolicy


@kernel_jit
def _derived_times(model, out):
    for item in range(out.shape[0]):
        out[item, 0] = valid_time(model, item)
        out[item, 1] = long_time(model, item)
        out[item, 2] = glance_mean(model, item)


@kernel_jit
def _sum_rows_with_prefetch(table, rows):
    total = np.float32(0.0)
    for k in range(rows.shape[0]):
        prefetch_rows(table, rows[k:])
        for c in range(table.shape[1]):
            total += table[rows[k], c]
    return total


@kernel_jit
def _allocates(n):
    return np.zeros(n).sum()


def test_aligned_empty_puts_rows_on_cache_lines():
    for shape in [(1000, 16), (7, 32), (3,)]:
        a = aligned_empty(shape, np.float32)
        assert a.shape == shape and a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable
        assert a.ctypes.data % CACHE_LINE_BYTES == 0


def test_item_table_is_one_cache_line_per_item_with_the_catalogue_values():
    config = MTFSessionV1Config()
    catalogue = Catalogue.generate(config.catalogue, config.ranker.error_rank)
    table = build_model(config, catalogue).items
    rank = config.ranker.error_rank
    assert table.dtype == np.float32 and table.flags.c_contiguous
    assert table.shape == (catalogue.num_items, 16) and table.strides[0] == CACHE_LINE_BYTES  # one line per item
    assert table.ctypes.data % CACHE_LINE_BYTES == 0
    assert I_ERROR == len(ITEM_COLUMNS) and I_ERROR + rank <= 16
    np.testing.assert_array_equal(table[:, I_DURATION], catalogue.duration_s)
    np.testing.assert_array_equal(table[:, I_CLICKBAIT], catalogue.clickbait)
    np.testing.assert_array_equal(table[:, I_ERROR:I_ERROR + rank], catalogue.ranker_error_features)
    np.testing.assert_array_equal(table[:, I_ERROR + rank:], 0.0)  # padding
    # The view thresholds and the glance mean are min(duration, constant), exactly as a stored float32 column was.
    sim = UserSimulator(config, 1, catalogue)
    derived = np.empty((catalogue.num_items, 3), np.float32)
    _derived_times(sim.model, derived)
    dyn, d = config.dynamics, catalogue.duration_s
    np.testing.assert_array_equal(derived[:, 0], np.minimum(d, dyn.valid_view_s).astype(np.float32))
    np.testing.assert_array_equal(derived[:, 1], np.minimum(d, dyn.long_view_s).astype(np.float32))
    np.testing.assert_array_equal(derived[:, 2],
                                  np.minimum(d, GLANCE_MEAN_FRACTION * dyn.quick_skip_s).astype(np.float32))
    assert (d < dyn.valid_view_s).any() and (d > dyn.long_view_s).any()  # both branches of min are exercised


def test_item_rows_grow_by_whole_cache_lines_with_the_error_rank():
    assert item_row_floats(4) == 16 and item_row_floats(16 - I_ERROR) == 16
    assert item_row_floats(16 - I_ERROR + 1) == 32
    config = MTFSessionV1Config.from_kwargs(None, {"ranker": dataclasses.replace(MTFSessionV1Config().ranker,
                                                                                 error_rank=8)})
    sim = UserSimulator(config, 2)
    assert sim.model.items.shape[1] == 32 and sim.model.items.ctypes.data % CACHE_LINE_BYTES == 0
    sim.start_sessions(np.arange(2), np.array([1, 2], np.uint64))
    out = sim.step(np.zeros((2, config.action_dim), np.float32))
    assert np.isfinite(out.predictions).all()


def test_prefetch_changes_no_value():
    table = np.arange(64 * 40, dtype=np.float32).reshape(64, 40)  # rows of 2.5 cache lines, not aligned
    rows = np.array([3, 60, 7, 0, 63], np.int64)
    assert _sum_rows_with_prefetch(table, rows) == np.float32(table[rows].sum(dtype=np.float32))


def test_step_path_kernels_do_no_reference_counting_and_cannot_allocate():
    step_path = [kernels.fusion_step_chunk, kernels.slate_step_chunk, kernels.serve_page, kernels.start_rows,
                 kernels.observe_rows, kernels.next_candidates_rows, ranker.predict, response.respond,
                 transition.end_page, transition.observe, users.start_row]
    for kernel in step_path:
        assert kernel.targetoptions.get("_nrt") is False, kernel.py_func.__name__
    with pytest.raises(Exception, match="function empty"):  # allocation is a compile error without the NRT
        _allocates(3)


def test_slate_observation_ends_with_the_pages_mean_embedding_bit_for_bit():
    env = gym.make_vec("MTFSlate-v0", num_envs=32, num_items=2000, max_requests=3, expose_candidates=False)
    embeddings = env.unwrapped.item_embeddings
    policy = RandomSlatePolicy(2000, 6, np.random.default_rng(0))
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs[:, OBS_DIM:], 0.0)
    restarted_seen = False
    for _ in range(8):
        restarting = env.unwrapped._autoreset.copy()
        pages = policy(obs)
        obs, _, _, _, info = env.step(pages)
        live = ~restarting
        expected = embeddings[pages[live]].mean(axis=1)  # NumPy's float32 mean
        assert obs[live, OBS_DIM:].tobytes() == expected.tobytes()
        np.testing.assert_array_equal(info["item_ids"][live], pages[live])
        np.testing.assert_array_equal(obs[restarting, OBS_DIM:], 0.0)  # a new session has no last page
        restarted_seen |= bool(restarting.any())
    assert restarted_seen
    single = gym.make("MTFSlate-v0", num_items=2000)
    obs, _ = single.reset(seed=1)
    page = np.array([5, 1999, 0, 17, 400, 401])
    obs, *_ = single.step(page)
    assert obs[OBS_DIM:].tobytes() == embeddings[page].mean(axis=0).tobytes()


def test_simulator_checks_caller_arrays_and_accepts_any_float_layout():
    config = MTFSessionV1Config()
    a, b = UserSimulator(config, 4), UserSimulator(config, 4)
    keys = np.arange(4, dtype=np.uint64) + np.uint64(11)
    a.start_sessions(np.arange(4), keys)
    b.start_sessions(np.arange(4), keys)
    actions = np.random.default_rng(0).uniform(-1, 1, (4, config.action_dim))
    readonly = np.asfortranarray(actions.astype(np.float32))
    readonly.setflags(write=False)
    first = a.step(actions)  # float64, C order: converted
    second = b.step(readonly)  # float32, Fortran order, read-only: copied
    for x, y in zip(first, second, strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match=r"actions must have shape \(4, 10\)"):
        a.step(actions[:, :9])
    with pytest.raises(ValueError, match="restart must have shape"):
        a.step(actions, restart=np.zeros(3, bool), restart_keys=np.zeros(3, np.uint64))
    pages = np.tile(np.arange(6), (4, 1))
    with pytest.raises(ValueError, match="item_ids must have shape"):
        a.step_slate(pages[:, :5])
    with pytest.raises(ValueError, match="candidates must be a writable C-ordered int64 array"):
        a.step_slate(pages, candidates=np.zeros((4, config.num_candidates), np.int32),
                     candidate_predictions=np.zeros((4, config.num_candidates, config.num_tasks), np.float32))
    with pytest.raises(ValueError, match="page_embeddings must be"):
        a.step_slate(pages, page_embeddings=np.zeros((4, 3), np.float32))


def test_a_stepped_env_pickles_and_continues_identically():
    import pickle

    for env_id, kwargs in [("MTFSession-v1", {}), ("MTFSlate-v0", {"num_items": 2000})]:
        env = gym.make(env_id, **kwargs).unwrapped
        env.reset(seed=3)
        env.action_space.seed(0)
        actions = [env.action_space.sample() for _ in range(3)]
        env.step(actions[0])
        copy = pickle.loads(pickle.dumps(env))
        for action in actions[1:]:
            a, b = env.step(action), copy.step(action)
            np.testing.assert_array_equal(a[0], b[0])
            assert a[1:4] == b[1:4]

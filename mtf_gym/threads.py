"""How many threads the simulator's compiled kernels use, and the pool they run on.

A large batch is split into contiguous chunks of rows, which the calling thread and a small thread pool take one
at a time, each kernel releasing the GIL. Results do not depend on the thread count: every row's randomness
is counter-based and every chunk has its own scratch. Plain Python threads rather than numba's ``parallel=True``
keep the process fork-safe and thread-safe whatever numba threading layer is installed, and touch no global
numba setting.

The default is one thread per CPU core available to the process. Set ``MTF_GYM_NUM_THREADS`` (read at import) or
call :func:`set_num_threads`, e.g. to 1 in worker processes that already run one job per core.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["CHUNKS_PER_THREAD", "ROWS_PER_CHUNK", "get_num_threads", "run_chunks", "set_num_threads"]

# A batch is cut into chunks of at least this many rows (handing a chunk to a thread costs ~10 us) ...
ROWS_PER_CHUNK = 64
# ... and into up to this many chunks per thread, so that a thread that starts late takes fewer chunks.
CHUNKS_PER_THREAD = 4


def _default_threads() -> int:
    value = os.environ.get("MTF_GYM_NUM_THREADS")
    if value is not None:
        try:
            threads = int(value)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ValueError(f"MTF_GYM_NUM_THREADS must be an integer >= 1, got {value!r}")
        return threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_num_threads = _default_threads()
_pool: cf.ThreadPoolExecutor | None = None
_pool_pid = -1
_pool_workers = 0
_pool_lock = threading.Lock()


def get_num_threads() -> int:
    """Threads a large simulator batch is split over."""
    return _num_threads


def set_num_threads(threads: int) -> None:
    """Use ``threads`` (>= 1) threads for large batches from now on (1: never start a thread)."""
    global _num_threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    _num_threads = threads


def _get_pool(workers: int) -> cf.ThreadPoolExecutor:
    global _pool, _pool_pid, _pool_workers
    with _pool_lock:
        # A pool inherited through fork() has no threads in the child: start a fresh one there.
        forked = _pool_pid != os.getpid()
        if _pool is None or forked or _pool_workers < workers:
            # A smaller pool is not shut down: another thread may be about to submit to it. Its idle threads stay.
            _pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mtf_gym")
            _pool_pid, _pool_workers = os.getpid(), workers
        return _pool


def run_chunks(kernel: Callable[..., None], num_chunks: int, args: tuple[Any, ...]) -> None:
    """Call ``kernel(chunk, num_chunks, *args)`` for every chunk in ``range(num_chunks)``, on up to
    :func:`get_num_threads` threads (the calling thread included).

    Chunks are handed out one at a time, so a thread that wakes late simply takes fewer of them.
    """
    threads = max(1, min(num_chunks, _num_threads))
    if threads == 1:
        for chunk in range(num_chunks):
            kernel(chunk, num_chunks, *args)
        return
    remaining = iter(range(num_chunks))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                chunk = next(remaining, None)
            if chunk is None:
                return
            kernel(chunk, num_chunks, *args)

    pool = _get_pool(threads - 1)
    futures = [pool.submit(work) for _ in range(threads - 1)]
    work()
    for future in futures:
        future.result()

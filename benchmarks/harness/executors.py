"""Where jobs run: in this process, in a local process pool, or on a Ray cluster - behind one small interface.

Every executor turns ``submit(fn, arg)`` into a ``concurrent.futures.Future``, so the scheduler waits on all of them
the same way (``concurrent.futures.wait``). Worker processes limit torch and BLAS to one thread: jobs are the unit
of parallelism, and N jobs x M threads on N cores only adds contention.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Callable
from typing import Any, Protocol

__all__ = [
    "RAY_INSTALL_HINT",
    "Executor",
    "InlineExecutor",
    "LocalExecutor",
    "RayExecutor",
    "make_executor",
    "require_ray",
]

RAY_INSTALL_HINT = "pip install 'mtf-gym[ray]'  (or: pip install 'ray[default]>=2.9')"
# Set before torch/NumPy load in a worker; torch.set_num_threads(1) in the job covers an already-loaded torch.
_SINGLE_THREAD_ENV = {
    name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MTF_GYM_NUM_THREADS")
}


def limit_threads() -> None:
    """Worker initialiser: one BLAS/OpenMP thread and one simulator thread per job process."""
    os.environ.update(_SINGLE_THREAD_ENV)
    from mtf_gym.threads import set_num_threads  # covers an mtf_gym already imported by the spawned main module

    set_num_threads(1)


class Executor(Protocol):
    name: str
    workers: int

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> cf.Future: ...

    def shutdown(self, *, cancel: bool) -> None: ...


class InlineExecutor:
    """Runs each job at submission, in this process (``--workers 0``): simplest to debug, no parallelism."""

    name = "inline"
    workers = 1

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(arg))
        except Exception as exc:  # handed to the scheduler like a worker's exception; interrupts propagate
            future.set_exception(exc)
        return future

    def shutdown(self, *, cancel: bool) -> None:
        return None


class LocalExecutor:
    """A ``ProcessPoolExecutor`` with the *spawn* start method (fork + torch threads can deadlock)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=limit_threads
        )

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> cf.Future:
        return self._pool.submit(fn, arg)

    def shutdown(self, *, cancel: bool) -> None:
        if not cancel:
            self._pool.shutdown(wait=True)
            return
        # Interrupted: drop queued jobs and stop the running ones now. The pool's workers are this process's
        # children, so terminating them by their own handles ends nothing else.
        workers = list(multiprocessing.active_children())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.join(timeout=10)


class RayExecutor:
    """The same jobs as Ray tasks (one CPU each; or one GPU each when the preset's device is CUDA).

    ``address`` empty starts (or joins) a local Ray instance; otherwise it is a cluster address such as
    ``ray://head:10001`` or ``auto``. Workers must see the same results directory (a shared file system) and have
    mtf-gym installed.
    """

    name = "ray"

    def __init__(self, workers: int, address: str = "", num_gpus: float = 0.0) -> None:
        ray = require_ray()
        self._ray = ray
        # Shut Ray down at the end only if this executor started it (a caller's own Ray session stays up).
        self._owns = not ray.is_initialized()
        if self._owns:
            kwargs: dict[str, Any] = {"runtime_env": {"env_vars": dict(_SINGLE_THREAD_ENV)},
                                      "include_dashboard": False, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = max(1, workers)
            ray.init(**kwargs)
        self.workers = max(1, int(ray.cluster_resources().get("CPU", workers)))
        self._remote = ray.remote(num_cpus=1, num_gpus=num_gpus, max_retries=0)(_call)

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> cf.Future:
        return self._remote.remote(fn, arg).future()

    def shutdown(self, *, cancel: bool) -> None:
        if self._owns:
            self._ray.shutdown()


def require_ray() -> Any:
    """The ``ray`` module, or a ``RuntimeError`` that says how to install it (it is an optional extra)."""
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError(f"--executor ray needs Ray, which is not installed: {RAY_INSTALL_HINT}") from exc
    return ray


def _call(fn: Callable[[Any], Any], arg: Any) -> Any:
    return fn(arg)


def make_executor(kind: str, workers: int, *, ray_address: str = "", device: str = "cpu") -> Executor:
    """``inline`` when ``workers == 0`` (local only), else a :class:`LocalExecutor` or :class:`RayExecutor`."""
    if kind == "ray":
        return RayExecutor(workers, ray_address, num_gpus=1.0 if device.startswith("cuda") else 0.0)
    if kind != "local":
        raise ValueError(f"executor must be 'local' or 'ray', got {kind!r}")
    return InlineExecutor() if workers == 0 else LocalExecutor(workers)

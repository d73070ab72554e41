"""How the v1 kernels use memory: compiled without reference counting, cache-line aligned tables, prefetching.

* :func:`kernel_jit` compiles a kernel without numba's runtime (NRT). The kernels never allocate; with the NRT,
  every array they take out of the ``Model``/``Users``/``Scratch``/``Outputs`` named tuples and every row view is
  reference counted (a call and an atomic increment/decrement on a counter that all threads share), hundreds per
  user-step: most of what made ``MTFSession-v1`` slower than v0 (``docs/environment.md``, speed section).
* At catalogue sizes far beyond the CPU caches (``MTFSlate-v0`` at 10^6 items) a step's cost is the cache misses
  on the rows of the items it shows, not arithmetic. Every per-item number a step reads lives in one cache-line
  aligned row (:func:`aligned_empty`, :mod:`mtf_gym.sim.items`), and the kernels ask for the next rows' items
  while they compute the current one (:func:`prefetch`, :func:`prefetch_rows`), so the misses overlap the work.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["CACHE_LINE_BYTES", "aligned_empty", "kernel_jit", "prefetch", "prefetch_rows"]

CACHE_LINE_BYTES = 64


def kernel_jit(function: Any = None, **options: Any) -> Any:
    """``numba.njit(cache=True, **options)`` without the NRT (``_nrt=False``), as ``@kernel_jit`` or
    ``@kernel_jit(inline="always")``. Results are unchanged (reference counts change no value); a kernel that
    allocates an array fails to compile instead of silently paying for it. Arrays are borrowed from the caller,
    which keeps them alive for the call."""
    decorator = njit(cache=True, _nrt=False, **options)
    return decorator if function is None else decorator(function)


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype | type, align: int = CACHE_LINE_BYTES) -> np.ndarray:
    """An uninitialised C-contiguous array whose first byte sits on an ``align``-byte boundary (NumPy only
    guarantees 16 bytes), so that rows of ``align`` bytes each occupy exactly one cache line."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + align, np.uint8)
    offset = (-raw.ctypes.data) % align
    return raw[offset:offset + nbytes].view(dtype).reshape(shape)


@intrinsic
def prefetch(typingctx, table, row, col):
    """Hint the CPU to bring the cache line holding ``table[row, col]`` (a 2-D array) into the cache; returns at
    once, never faults (an out-of-range address is only a wasted hint), and changes no result."""
    if (not isinstance(table, types.Array) or table.ndim != 2 or not isinstance(row, types.Integer)
            or not isinstance(col, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        table_type, row_type, col_type = signature.args
        array = context.make_array(table_type)(context, builder, args[0])
        index = [context.cast(builder, args[1], row_type, types.intp),
                 context.cast(builder, args[2], col_type, types.intp)]
        pointer = cgutils.get_item_pointer(context, builder, table_type, array, index, wraparound=False,
                                           boundscheck=False)
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]), "llvm.prefetch")
        # (address, read, locality 3 = keep in all cache levels, data cache)
        builder.call(function, [builder.bitcast(pointer, byte_pointer), ir.Constant(i32, 0), ir.Constant(i32, 3),
                                ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(table, row, col), codegen


@kernel_jit(inline="always")
def prefetch_rows(table, rows):
    """:func:`prefetch` every cache line of ``table[r]`` for each ``r`` in ``rows`` (``table`` C-contiguous)."""
    step = max(1, CACHE_LINE_BYTES // table.itemsize)
    for r in rows:
        for col in range(0, table.shape[1], step):
            prefetch(table, r, col)

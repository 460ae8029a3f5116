"""Arrow's memory pool for the stages.

pyarrow's default pool (mimalloc) keeps memory it has freed, so a stage that streams a big file
batch by batch still sees its resident memory creep up with the file's size. jemalloc hands
freed memory back to the system, which keeps the stages' peak memory flat (docs/performance.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import pyarrow as pa


def use_returning_pool() -> str:
    """Switch Arrow to jemalloc where this pyarrow build has it; the pool's name."""
    try:
        pool = pa.jemalloc_memory_pool()
    except (NotImplementedError, pa.ArrowNotImplementedError):
        return str(pa.default_memory_pool().backend_name)
    if pa.default_memory_pool().backend_name != pool.backend_name:
        pa.set_memory_pool(pool)
    return str(pool.backend_name)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_freed() -> bool:
    """Hand the C heap's freed memory back to the system (glibc's `malloc_trim`), between a
    stage's phases: numpy's arrays live there, and glibc keeps what a phase freed for the next
    one, so a later phase's peak would sit on top of an earlier one's. False where there is no
    glibc."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True

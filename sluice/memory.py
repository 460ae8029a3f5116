"""Arrow's memory pool for the stages.

pyarrow's default pool (mimalloc) keeps memory it has freed, so a stage that streams a big file
batch by batch still sees its resident memory creep up with the file's size. jemalloc hands
freed memory back to the system, which keeps the stages' peak memory flat (docs/performance.md).
"""

from __future__ import annotations

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

"""The Trusted stage's small counting and array helpers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa


def add_count(counter: dict[str, int], key: str, value: int) -> None:
    if value:
        counter[key] = counter.get(key, 0) + value


def per_day(mask: np.ndarray, starts: np.ndarray) -> list[int]:
    """How many rows of each day (rows sorted by day, days starting at `starts`) are set."""
    if not len(mask):
        return []
    return [int(v) for v in np.add.reduceat(mask.astype(np.int64), starts)]


def constant(value: Any, arrow_type: pa.DataType, n: int) -> pa.Array:
    """`n` copies of `value`; text as a one-entry dictionary, which Parquet stores as is."""
    if pa.types.is_string(arrow_type):
        return pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32)), pa.array([value], pa.string())
        )
    return pa.repeat(pa.scalar(value, arrow_type), n)

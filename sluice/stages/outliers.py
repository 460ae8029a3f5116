"""Outlier fences per group, computed once over a whole file's kept records.

`iqr`: a value is an outlier outside [Q1 - k*IQR, Q3 + k*IQR] (k = threshold, 1.5 by default).
`robust_z`: outside median +- t*MAD/0.6745, i.e. |0.6745 * (x - median) / MAD| > t (3.5 by
default). Quartiles use linear interpolation (numpy's default). A group with fewer than
`min_group_size` values, or a MAD of zero, has no outliers: there is too little spread to call
any value unusual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.contracts import Outliers


@dataclass
class GroupCodes:
    """Small integer codes for the groups of a file, stable across its batches."""

    codes: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def encode(self, columns: list[pa.Array], n: int) -> np.ndarray:
        if not columns:
            return np.zeros(n, dtype=np.int32)
        if len(columns) == 1:
            # One column: its dictionary entries map straight to the file's group codes.
            encoded = pc.dictionary_encode(columns[0], null_encoding="encode")
            if isinstance(encoded, pa.ChunkedArray):
                encoded = encoded.combine_chunks()
            table = np.array(
                [
                    self.codes.setdefault((v,), len(self.codes))
                    for v in encoded.dictionary.to_pylist()
                ],
                dtype=np.int32,
            )
            return np.asarray(table[encoded.indices.to_numpy(zero_copy_only=False)], np.int32)
        # Each column's dictionary is tiny: map it to codes per column, then combine the
        # columns' codes arithmetically (no per-row Python, no sort of whole rows).
        combined = np.zeros(n, dtype=np.int64)
        dictionaries = []
        for column in columns:
            encoded = pc.dictionary_encode(column, null_encoding="encode")
            if isinstance(encoded, pa.ChunkedArray):
                encoded = encoded.combine_chunks()
            values = encoded.dictionary.to_pylist()
            dictionaries.append(values)
            combined = combined * len(values) + encoded.indices.to_numpy(zero_copy_only=False)
        present, inverse = np.unique(combined, return_inverse=True)
        local = np.empty(len(present), dtype=np.int32)
        for i, number in enumerate(present.tolist()):
            group = []
            for values in reversed(dictionaries):
                number, index = divmod(number, len(values))
                group.append(values[index])
            local[i] = self.codes.setdefault(tuple(reversed(group)), len(self.codes))
        return local[np.asarray(inverse).reshape(-1)]


@dataclass
class Fences:
    """Per group code, the lowest and highest values that are not outliers."""

    low: np.ndarray
    high: np.ndarray

    def flag(self, values: pa.Array, codes: np.ndarray) -> np.ndarray:
        numbers = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
        low, high = self.low[codes], self.high[codes]
        with np.errstate(invalid="ignore"):
            return np.asarray((numbers < low) | (numbers > high), dtype=bool)


def split_by_group(values: np.ndarray, codes: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(group code, its values) for each group present in one batch."""
    if len(codes) == 0:
        return
    # A stable sort of small codes as uint16 is numpy's radix sort.
    keys = codes.astype(np.uint16) if int(codes.max()) < 1 << 16 else codes
    order = np.argsort(keys, kind="stable")
    ordered = codes[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    ends = np.append(starts[1:], len(ordered))
    for start, end in zip(starts, ends, strict=True):
        yield int(ordered[start]), values[order[start:end]]


def _fence(spec: Outliers, group: np.ndarray) -> tuple[float, float] | None:
    """(lowest, highest) value of one group that is not an outlier; None: no outliers."""
    if len(group) < spec.min_group_size:
        return None
    # (quantiles and medians partition the values: no sort needed)
    if spec.method == "iqr":
        q1, q3 = np.quantile(group, [0.25, 0.75])
        return q1 - spec.threshold * (q3 - q1), q3 + spec.threshold * (q3 - q1)
    median = float(np.median(group))
    mad = float(np.median(np.abs(group - median)))
    if mad == 0.0:
        return None
    reach = spec.threshold * mad / 0.6745
    return median - reach, median + reach


def fences_by_group(
    spec: Outliers,
    chunks: dict[int, list[np.ndarray]],
    groups: int,
    map_fn: Callable[..., Iterable[Any]] = map,
) -> Fences:
    """Fences from each group's kept, present values, given as chunks. Each group is joined
    only when its turn comes (`map_fn` may run a few at once on threads: numpy's partitioning
    releases the GIL), so only the groups being worked on are ever copied."""
    low = np.full(max(groups, 1), -np.inf)
    high = np.full(max(groups, 1), np.inf)

    def one(code: int) -> tuple[int, tuple[float, float] | None]:
        return code, _fence(spec, np.concatenate(chunks.pop(code)))

    for code, bounds in map_fn(one, sorted(chunks)):
        if bounds is not None:
            low[code], high[code] = bounds
    return Fences(low, high)

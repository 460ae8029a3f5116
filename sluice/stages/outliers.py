"""Outlier fences per group, computed once over a whole file's kept records.

`iqr`: a value is an outlier outside [Q1 - k*IQR, Q3 + k*IQR] (k = threshold, 1.5 by default).
`robust_z`: outside median +- t*MAD/0.6745, i.e. |0.6745 * (x - median) / MAD| > t (3.5 by
default). Quartiles use linear interpolation (numpy's default). A group with fewer than
`min_group_size` values, or a MAD of zero, has no outliers: there is too little spread to call
any value unusual.
"""

from __future__ import annotations

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
        per_column = []
        values_per_column = []
        for column in columns:
            encoded = pc.dictionary_encode(column, null_encoding="encode")
            if isinstance(encoded, pa.ChunkedArray):
                encoded = encoded.combine_chunks()
            per_column.append(encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64))
            values_per_column.append(encoded.dictionary.to_pylist())
        stacked = np.column_stack(per_column)
        unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
        local = np.empty(len(unique), dtype=np.int32)
        for i, row in enumerate(unique):
            group = tuple(values_per_column[j][int(k)] for j, k in enumerate(row))
            local[i] = self.codes.setdefault(group, len(self.codes))
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


def fences(spec: Outliers, values: np.ndarray, codes: np.ndarray, groups: int) -> Fences:
    """Fences from the values (NaN = missing) of one file's kept records and their groups."""
    low = np.full(max(groups, 1), -np.inf)
    high = np.full(max(groups, 1), np.inf)
    present = ~np.isnan(values)
    values, codes = values[present], codes[present]
    order = np.lexsort((values, codes))
    values, codes = values[order], codes[order]
    bounds = np.flatnonzero(np.diff(codes)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(codes)]))
    for start, end in zip(starts, ends, strict=True):
        if end - start < spec.min_group_size:
            continue
        group = values[start:end]  # sorted
        code = codes[start]
        if spec.method == "iqr":
            q1, q3 = np.quantile(group, [0.25, 0.75])
            low[code] = q1 - spec.threshold * (q3 - q1)
            high[code] = q3 + spec.threshold * (q3 - q1)
        else:
            median = float(np.median(group))
            mad = float(np.median(np.abs(group - median)))
            if mad == 0.0:
                continue
            reach = spec.threshold * mad / 0.6745
            low[code], high[code] = median - reach, median + reach
    return Fences(low, high)

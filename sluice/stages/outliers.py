"""Outlier fences per group, computed once over a whole file's kept records.

`iqr`: a value is an outlier outside [Q1 - k*IQR, Q3 + k*IQR] (k = threshold, 1.5 by default).
`robust_z`: outside median +- t*MAD/0.6745, i.e. |0.6745 * (x - median) / MAD| > t (3.5 by
default). Quartiles use linear interpolation (numpy's default). A group with fewer than
`min_group_size` values, or a MAD of zero, has no outliers: there is too little spread to call
any value unusual.

A file's groups can be as large as the file, so their values wait on local disk
(`GroupValues`); a group of at most `VALUES_AT_ONCE` values is read back whole and its fences
computed as numpy computes them, a larger one is streamed: its quartiles or median are found
exactly by selecting the order statistics they need (`order_statistics`, a few passes over the
group's values, holding at most `VALUES_AT_ONCE` of them), then interpolated as numpy does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
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
        return _iqr_fences(spec, q1, q3)
    median = float(np.median(group))
    return _mad_fences(spec, median, float(np.median(np.abs(group - median))))


def _iqr_fences(spec: Outliers, q1: float, q3: float) -> tuple[float, float]:
    return q1 - spec.threshold * (q3 - q1), q3 + spec.threshold * (q3 - q1)


def _mad_fences(spec: Outliers, median: float, mad: float) -> tuple[float, float] | None:
    """Fences `threshold` scaled MADs from the median; None when the MAD is 0 (no outliers)."""
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


VALUES_AT_ONCE = 1 << 19  # values of one group held at once: 4 MiB of float64
_DIGIT_BITS = 16
_SIGN = np.uint64(1 << 63)


class GroupValues:
    """Each group's values, appended batch by batch and kept in one file on local disk.

    Values wait in memory per group until `VALUES_AT_ONCE` of them are buffered, then each
    group's are written as one segment; a group is read back segment by segment."""

    def __init__(self, path: Path, values_at_once: int | None = None) -> None:
        self.path = path
        self.values_at_once = values_at_once or VALUES_AT_ONCE
        self.counts: dict[int, int] = {}
        self.segments: dict[int, list[tuple[int, int]]] = {}  # (offset in bytes, values)
        self._pending: dict[int, list[np.ndarray]] = {}
        self._buffered = 0
        self._offset = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("wb")

    def append(self, code: int, values: np.ndarray) -> None:
        if not len(values):
            return
        self._pending.setdefault(code, []).append(np.asarray(values, dtype=np.float64))
        self.counts[code] = self.counts.get(code, 0) + len(values)
        self._buffered += len(values)
        if self._buffered >= self.values_at_once:
            self.flush()

    def flush(self) -> None:
        for code, parts in self._pending.items():
            data = np.concatenate(parts)
            self._file.write(data.tobytes())
            self.segments.setdefault(code, []).append((self._offset, len(data)))
            self._offset += data.nbytes
        self._pending = {}
        self._buffered = 0

    def close(self) -> None:
        self.flush()
        self._file.close()

    def chunks(self, code: int) -> Iterator[np.ndarray]:
        """The group's values in segments of at most `values_at_once` (plain reads)."""
        with self.path.open("rb") as source:
            for offset, count in self.segments.get(code, []):
                source.seek(offset)
                yield np.fromfile(source, dtype=np.float64, count=count)

    def read(self, code: int) -> np.ndarray:
        parts = list(self.chunks(code))
        return np.concatenate(parts) if parts else np.empty(0, np.float64)


def _ordered(values: np.ndarray) -> np.ndarray:
    """Unsigned integers in the order of the floats (NaN-free), for radix selection."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    return np.where((bits & _SIGN) != 0, ~bits, bits | _SIGN)


def _unordered(key: int) -> float:
    bits = np.uint64(key)
    raw = bits ^ _SIGN if bits & _SIGN else ~bits
    return float(np.array([raw], dtype=np.uint64).view(np.float64)[0])


def order_statistics(
    chunks: Callable[[], Iterable[np.ndarray]], count: int, ranks: list[int], budget: int
) -> tuple[dict[int, float], int]:
    """The values at 0-based `ranks` of the sorted values `chunks()` streams (`count` of them;
    every call streams them all again), and the most values held at once.

    Radix selection over the floats' ordered bits, 16 at a time: each pass counts, per bucket
    still too big, how many values fall under each next digit, which narrows every rank to one
    digit; once a rank's bucket holds at most `budget` values they are gathered and partitioned.
    """
    found: dict[int, float] = {}
    held = 0
    # A bucket: the values whose top `64 - shift` bits are `prefix`, and the ranks within it
    # (rank in the file, rank in the bucket).
    buckets: dict[tuple[int, int], tuple[int, list[tuple[int, int]]]] = {
        (64, 0): (count, [(r, r) for r in sorted(set(ranks))])
    }
    while buckets:
        for (shift, prefix), (_, wanted) in list(buckets.items()):
            if shift == 0:  # every bit known: the bucket is one value
                for rank, _ in wanted:
                    found[rank] = _unordered(prefix)
                del buckets[(shift, prefix)]
        # Buckets small enough are gathered, as many a pass as `budget` values hold (at least
        # one); the others are split by their next digit; what is left waits a pass.
        gather: dict[tuple[int, int], tuple[int, list[tuple[int, int]]]] = {}
        split: dict[tuple[int, int], tuple[int, list[tuple[int, int]]]] = {}
        waiting: dict[tuple[int, int], tuple[int, list[tuple[int, int]]]] = {}
        room = budget
        for bucket, (size, wanted) in sorted(buckets.items()):
            if size > budget:
                split[bucket] = (size, wanted)
            elif size <= room or not gather:
                gather[bucket] = (size, wanted)
                room -= size
            else:
                waiting[bucket] = (size, wanted)
        gathered: dict[tuple[int, int], list[np.ndarray]] = {b: [] for b in gather}
        counts = {b: np.zeros(1 << _DIGIT_BITS, dtype=np.int64) for b in split}
        if gather or split:
            for chunk in chunks():
                keys = _ordered(chunk)
                for shift, prefix in gather:
                    inside = keys if shift == 64 else keys[(keys >> np.uint64(shift)) == prefix]
                    gathered[(shift, prefix)].append(inside)
                for shift, prefix in split:
                    inside = keys if shift == 64 else keys[(keys >> np.uint64(shift)) == prefix]
                    below = shift - _DIGIT_BITS
                    digits = (inside >> np.uint64(below)) & np.uint64((1 << _DIGIT_BITS) - 1)
                    counts[(shift, prefix)] += np.bincount(
                        digits.astype(np.int64), minlength=1 << _DIGIT_BITS
                    )
                held = max(held, len(keys) + sum(sum(map(len, g)) for g in gathered.values()))
        for bucket, (_, wanted) in gather.items():
            values = np.concatenate(gathered.pop(bucket))
            values.partition([local for _, local in wanted])
            for rank, local in wanted:
                found[rank] = _unordered(int(values[local]))
        buckets = waiting
        for (shift, prefix), (_, wanted) in split.items():
            histogram = counts[(shift, prefix)]
            ends = np.cumsum(histogram)
            below = shift - _DIGIT_BITS
            for rank, local in wanted:
                digit = int(np.searchsorted(ends, local, side="right"))
                before = int(ends[digit - 1]) if digit else 0
                key = ((prefix << _DIGIT_BITS) | digit) if shift < 64 else digit
                size, inner = buckets.get((below, key), (int(histogram[digit]), []))
                inner.append((rank, local - before))
                buckets[(below, key)] = (size, inner)
    return found, held


def _quantiles(
    chunks: Callable[[], Iterable[np.ndarray]], count: int, qs: list[float], budget: int
) -> list[float]:
    """`np.quantile(values, qs)` (linear interpolation), from the order statistics it needs."""
    positions = [(count - 1) * q for q in qs]
    lows = [int(np.floor(h)) for h in positions]
    ranks = [r for low in lows for r in (low, min(low + 1, count - 1))]
    found, _ = order_statistics(chunks, count, ranks, budget)
    result = []
    for h, low in zip(positions, lows, strict=True):
        pair = np.array([found[low], found[min(low + 1, count - 1)]])
        # numpy interpolates between the two neighbours by the fraction of the position:
        # the same arithmetic as its quantile of the pair at that fraction.
        result.append(float(np.quantile(pair, h - low)))
    return result


def _median(chunks: Callable[[], Iterable[np.ndarray]], count: int, budget: int) -> float:
    """`np.median(values)`: the middle value, or the mean of the middle two."""
    middle = [count // 2] if count % 2 else [count // 2 - 1, count // 2]
    found, _ = order_statistics(chunks, count, middle, budget)
    return float(np.median(np.array([found[r] for r in middle])))


def _streamed_fence(
    spec: Outliers, count: int, chunks: Callable[[], Iterable[np.ndarray]], budget: int
) -> tuple[float, float] | None:
    """`_fence` of a group too large to hold, from its values streamed by `chunks()`."""
    if count < spec.min_group_size:
        return None
    if spec.method == "iqr":
        q1, q3 = _quantiles(chunks, count, [0.25, 0.75], budget)
        return _iqr_fences(spec, q1, q3)
    median = _median(chunks, count, budget)

    def deviations() -> Iterator[np.ndarray]:
        for chunk in chunks():
            yield np.abs(chunk - median)

    return _mad_fences(spec, median, _median(deviations, count, budget))


def fences_of_groups(
    spec: Outliers,
    values: GroupValues,
    groups: int,
    map_fn: Callable[..., Iterable[Any]] = map,
) -> Fences:
    """Fences from each group's kept, present values in `values` (closed): a group that fits
    `values.values_at_once` is read whole, a larger one streamed (`_streamed_fence`)."""
    low = np.full(max(groups, 1), -np.inf)
    high = np.full(max(groups, 1), np.inf)
    budget = values.values_at_once

    def one(code: int) -> tuple[int, tuple[float, float] | None]:
        count = values.counts[code]
        if count <= budget:
            return code, _fence(spec, values.read(code))
        return code, _streamed_fence(spec, count, lambda: values.chunks(code), budget)

    for code, bounds in map_fn(one, sorted(values.counts)):
        if bounds is not None:
            low[code], high[code] = bounds
    return Fences(low, high)

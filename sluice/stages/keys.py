"""Record keys for de-duplication across a whole file, without holding the file's keys.

A single integer primary key is its own key. Anything else (string or composite keys, or
whole rows when a dataset has no primary key) is reduced to a 64-bit hash computed with numpy
over Arrow's buffers. Two different keys share a hash with probability about n^2 / 2^65
(under 10^-6 for 5M rows).

`KeyPartitions` splits a file's keys by value into partitions on local disk (Lambda's /tmp),
each key with its row's ordinal, and finds the repeated keys one partition at a time: every
copy of a key is in the same partition, so memory holds at most one partition's keys
(`KEYS_AT_ONCE` for the file's expected rows) and one bit per row for the answer.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_BASE = np.uint64(0x100000001B3)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_NULL = np.uint64(0x6A09E667F3BCC909)


@cache
def _powers(length: int) -> np.ndarray:
    powers = np.ones(max(length, 1), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(1, len(powers)):
            powers[i] = powers[i - 1] * _BASE
    return powers


def _powers_for(length: int) -> np.ndarray:
    # Cached in steps so long values do not rebuild the table for every new maximum.
    return _powers(1 << max(int(length) - 1, 0).bit_length())


def _splitmix(h: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = h + _MIX
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return np.asarray(h ^ (h >> np.uint64(31)), dtype=np.uint64)


def _hash_strings(array: pa.Array) -> np.ndarray:
    if pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type):
        offset_type: type[np.signedinteger] = np.int64
    else:
        offset_type = np.int32
    n = len(array)
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offset_type)[array.offset : array.offset + n + 1]
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if buffers[2] is not None
        else np.empty(0, np.uint8)
    )
    lo, hi = int(offsets[0]), int(offsets[-1])
    lengths = np.diff(offsets)
    starts = (offsets[:-1] - lo).astype(np.int64)
    position = np.arange(hi - lo, dtype=np.int64) - np.repeat(starts, lengths)
    with np.errstate(over="ignore"):
        weights = _powers_for(int(lengths.max()) if n else 1)[position]
        contributions = (data[lo:hi].astype(np.uint64) + np.uint64(1)) * weights
        sums = np.zeros(hi - lo + 1, dtype=np.uint64)
        np.cumsum(contributions, out=sums[1:])
        h = sums[offsets[1:] - lo] - sums[offsets[:-1] - lo]
        h ^= lengths.astype(np.uint64) * _MIX
    return _splitmix(h)


def hash_array(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash per value; equal values (and nulls) hash alike."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    t = array.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        h = _hash_strings(array)
    elif pa.types.is_floating(t):
        values = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
        values = np.where(values == 0.0, 0.0, values)  # -0.0 and 0.0 are the same amount
        h = _splitmix(np.ascontiguousarray(values).view(np.uint64))
    elif pa.types.is_decimal(t):
        h = _hash_strings(pc.cast(array, pa.string()))
    elif pa.types.is_boolean(t):
        # Nulls are filled first (numpy cannot hold them as integers); `_NULL` marks them below.
        filled = pc.fill_null(array, False).to_numpy(zero_copy_only=False)
        h = _splitmix(np.asarray(filled, dtype=np.uint64))
    else:  # integers, dates and timestamps are integers underneath
        if pa.types.is_date32(t):
            integers = pc.cast(array.view(pa.int32()), pa.int64())
        elif pa.types.is_temporal(t):
            integers = array.view(pa.int64())
        else:
            integers = pc.cast(array, pa.int64())
        h = _splitmix(pc.fill_null(integers, 0).to_numpy().astype(np.uint64))
    if array.null_count:
        h = np.where(np.asarray(pc.is_null(array).to_numpy(zero_copy_only=False)), _NULL, h)
    return np.asarray(h, dtype=np.uint64)


def row_keys(columns: list[pa.Array]) -> np.ndarray:
    """One 64-bit key per row from several columns (order matters)."""
    h = np.full(len(columns[0]), _NULL, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in columns:
            h = _splitmix(h * _BASE + hash_array(column))
    return h


def _repeated(keys: np.ndarray, parts: int, chunk: int = 1 << 20) -> np.ndarray:
    """Key values that occur more than once, found one partition (by low bits) at a time,
    so the sort needs 1/parts of the keys' memory."""
    if keys.dtype == np.int64 and len(keys):
        low, high = int(keys.min()), int(keys.max())
        if high - low <= 4 * len(keys):
            # Dense integer ids (the usual case): count them, no sort needed.
            counts = np.bincount(keys - low)
            return np.flatnonzero(counts > 1) + low
    if parts == 1:
        ordered = np.sort(keys)
        return np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    found = []
    mask = np.array(parts - 1, dtype=keys.dtype)
    for part in range(parts):
        selected = [
            piece[(piece & mask) == part]
            for piece in (keys[i : i + chunk] for i in range(0, len(keys), chunk))
        ]
        values = np.concatenate(selected) if selected else keys[:0]
        values.sort()
        found.append(np.unique(values[1:][values[1:] == values[:-1]]))
    return np.concatenate(found) if found else keys[:0]


def _member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """`np.isin` for a small sorted set, without sorting `values`."""
    index = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return np.asarray(sorted_set[index] == values, dtype=bool)


SORT_KEYS = 1 << 21  # keys sorted at once: 16 MiB of copy at most


def later_copies(keys: np.ndarray, parts: int = 0, chunk: int = 1 << 20) -> np.ndarray:
    """Positions of rows whose key appeared earlier (the later copies, to drop).

    `parts` (a power of two; by default enough to sort at most SORT_KEYS keys at once): more
    parts, less memory, a little more time.
    """
    if len(keys) < 2:
        return np.empty(0, dtype=np.int64)
    if parts <= 0:
        parts = 1 << max(0, (len(keys) - 1) // SORT_KEYS).bit_length()
    repeated = np.sort(_repeated(keys, parts))
    if len(repeated) == 0:
        return np.empty(0, dtype=np.int64)
    candidates = np.concatenate(
        [
            np.flatnonzero(_member(keys[i : i + chunk], repeated)) + i
            for i in range(0, len(keys), chunk)
        ]
    )
    if len(candidates) == 0:
        return candidates.astype(np.int64)
    # Among rows sharing a key, the earliest (lowest position) is kept: a stable sort by key
    # keeps positions in order within each key.
    order = np.argsort(keys[candidates], kind="stable")
    sorted_keys = keys[candidates][order]
    later = np.concatenate(([False], sorted_keys[1:] == sorted_keys[:-1]))
    return np.sort(candidates[order][later])


KEYS_AT_ONCE = 1 << 20  # keys of one partition, with their ordinals: 16 MiB
_WRITE_BUFFER = 1 << 16


def partition_count(rows: int, keys_at_once: int = KEYS_AT_ONCE) -> int:
    """Partitions (a power of two) for `rows` keys to hold at most `keys_at_once` each."""
    return 1 << max(0, (rows - 1) // keys_at_once).bit_length() if rows > keys_at_once else 1


class RowMarks:
    """One bit per row (by ordinal): the rows whose key appeared earlier in the file."""

    def __init__(self, rows: int, positions: np.ndarray | None = None) -> None:
        self.bits = np.zeros((max(rows, 0) + 7) // 8, dtype=np.uint8)
        self.count = 0
        if positions is not None:
            self.mark(positions)

    def mark(self, positions: np.ndarray) -> None:
        """Mark rows `positions` (each once)."""
        positions = np.asarray(positions, dtype=np.int64)
        values = (np.uint8(1) << (7 - (positions & 7)).astype(np.uint8)).astype(np.uint8)
        np.bitwise_or.at(self.bits, positions >> 3, values)
        self.count += len(positions)

    def __getitem__(self, ordinals: np.ndarray) -> np.ndarray:
        ordinals = np.asarray(ordinals, dtype=np.int64)
        shift = (7 - (ordinals & 7)).astype(np.uint8)
        return np.asarray((self.bits[ordinals >> 3] >> shift) & 1, dtype=bool)


class KeyPartitions:
    """The keys of a file's kept rows, appended in file order, split into partitions by value.

    A file of at most `keys_at_once` expected rows is one partition, kept in memory. A larger
    one gets enough partitions (a power of two) for each to hold about `keys_at_once` keys,
    written to `folder` with their rows' ordinals as the batches come. A key's partition is its
    low bits for hashes (already mixed), its value modulo the partition count for integer ids,
    which keeps dense ids dense within a partition.
    """

    def __init__(
        self,
        folder: Path,
        expected_rows: int,
        dtype: type[np.generic],
        keys_at_once: int | None = None,
    ) -> None:
        self.folder = folder
        self.dtype = np.dtype(dtype)
        self.parts = partition_count(expected_rows, keys_at_once or KEYS_AT_ONCE)
        self.record = np.dtype([("key", self.dtype), ("ordinal", np.int64)])
        self.rows = 0
        self.most_held = 0  # the most keys held at once while finding repeats
        self._memory: list[np.ndarray] = []
        self._files: list[BinaryIO] = []
        if self.parts > 1:
            folder.mkdir(parents=True, exist_ok=True)
            self._files = [
                self._path(p).open("wb", buffering=_WRITE_BUFFER) for p in range(self.parts)
            ]

    def _path(self, part: int) -> Path:
        return self.folder / f"keys-{part:05d}.bin"

    def _part_of(self, keys: np.ndarray) -> np.ndarray:
        if self.dtype == np.int64:
            return np.asarray(keys % self.parts, dtype=np.int64)
        return np.asarray(keys & np.uint64(self.parts - 1), dtype=np.int64)

    def append(self, keys: np.ndarray) -> None:
        """The next rows' keys, in file order."""
        first = self.rows
        self.rows += len(keys)
        if not len(keys):
            return
        if self.parts == 1:
            self._memory.append(np.asarray(keys, dtype=self.dtype))
            return
        records = np.empty(len(keys), dtype=self.record)
        records["key"] = keys
        records["ordinal"] = np.arange(first, first + len(keys), dtype=np.int64)
        parts = self._part_of(records["key"])
        small = parts.astype(np.uint16) if self.parts <= 1 << 16 else parts
        order = np.argsort(small, kind="stable")
        records, parts = records[order], parts[order]
        bounds = np.searchsorted(parts, np.arange(self.parts + 1))
        for part in np.flatnonzero(np.diff(bounds)):
            self._files[part].write(records[bounds[part] : bounds[part + 1]].tobytes())

    def close(self) -> None:
        for file in self._files:
            file.close()

    def later_copies(self) -> RowMarks:
        """The rows (by ordinal) whose key appeared earlier in the file: the first one wins."""
        if self.parts == 1:
            keys = np.concatenate(self._memory) if self._memory else np.empty(0, self.dtype)
            self._memory = []
            self.most_held = len(keys)
            return RowMarks(self.rows, later_copies(keys))
        self.close()
        marks = RowMarks(self.rows)
        for part in range(self.parts):
            path = self._path(part)
            records = np.fromfile(path, dtype=self.record)  # a plain read, not a memory map
            path.unlink()
            self.most_held = max(self.most_held, len(records))
            keys = records["key"]
            if self.dtype == np.int64:
                keys = keys // self.parts  # the same ids, dense again within the partition
            found = later_copies(np.ascontiguousarray(keys))
            marks.mark(records["ordinal"][found])
        return marks

"""A spill file on local disk (Lambda's /tmp), so a big file's rows never sit in memory.

Each batch of rows arrives sorted by event day; each day's rows of it are appended to one Arrow
IPC file as a record batch of their own, and an index remembers which record batches hold each
day. Reading days back reads exactly those record batches (plain reads, not a memory map, so
the process holds only what it asked for).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa

T = TypeVar("T")
DaySlices = list[tuple[date, int, int]]  # (day, first row, rows) of a batch sorted by day


class DaySpill:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.segments: dict[date, list[int]] = {}  # per day, its record batches in order
        self.rows: dict[date, int] = {}
        self.sizes: list[int] = []  # rows of each record batch
        self.schema: pa.Schema | None = None
        self._writer: pa.ipc.RecordBatchFileWriter | None = None
        self._sink: pa.NativeFile | None = None

    def append(self, batch: pa.RecordBatch, days: DaySlices) -> None:
        """Add a batch whose rows are sorted by day; `days` says where each day's rows are."""
        if self._writer is None:
            # Buffered: a batch is many small buffers, each its own write() otherwise.
            self._sink = pa.BufferedOutputStream(
                pa.OSFile(str(self.path), "wb"), buffer_size=1 << 20
            )
            self._writer = pa.ipc.new_file(self._sink, batch.schema)
            self.schema = batch.schema
        for day, start, length in days:
            self._writer.write_batch(batch.slice(start, length))
            self.segments.setdefault(day, []).append(len(self.sizes))
            self.sizes.append(length)
            self.rows[day] = self.rows.get(day, 0) + length

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def days(self) -> list[date]:
        return sorted(self.segments)

    def read_batches(self, indices: list[int], columns: list[str] | None = None) -> pa.Table:
        """Record batches `indices` (some `columns` only) as one table with one chunk a column:
        kernels and the Parquet writer are much faster on it than on many small ones."""
        self.close()
        schema = self.schema
        assert schema is not None, "nothing was appended"
        fields = None
        if columns is not None:  # read in the file's column order
            fields = sorted(schema.get_field_index(c) for c in columns)
            schema = pa.schema([schema.field(i) for i in fields])
        options = pa.ipc.IpcReadOptions(included_fields=fields)
        with pa.OSFile(str(self.path)) as source:
            reader = pa.ipc.open_file(source, options=options)
            batches = [reader.get_batch(i) for i in indices]
        return pa.Table.from_batches(batches, schema).combine_chunks()

    def groups(self, indices: list[int], rows: int) -> list[list[int]]:
        """Record batches `indices` in consecutive runs of at least `rows` rows (but the last)."""
        return runs(indices, self.sizes.__getitem__, rows)

    def read(self, days: list[date]) -> pa.Table:
        """The rows of `days`, ordered by day and, within a day, as they were appended."""
        return self.read_batches([i for day in days for i in self.segments.get(day, [])])

    def chunks(self, day: date, rows: int) -> Iterator[pa.Table]:
        """One day's rows in order, as tables of at least `rows` rows (but the last)."""
        for run in self.groups(self.segments.get(day, []), rows):
            yield self.read_batches(run)


def runs(
    items: Iterable[T], size: Callable[[T], int], rows: int, alone: int | None = None
) -> list[list[T]]:
    """`items` in consecutive runs of at least `rows` rows (but the last); an item of more
    than `alone` rows is a run by itself."""
    found: list[list[T]] = []
    run: list[T] = []
    count = 0
    for item in items:
        if alone is not None and size(item) > alone:
            found.append([item])
            continue
        run.append(item)
        count += size(item)
        if count >= rows:
            found.append(run)
            run, count = [], 0
    if run:
        found.append(run)
    return found


def by_day(numbers: np.ndarray) -> tuple[np.ndarray | None, list[tuple[int, int, int]]]:
    """How to sort rows by their day numbers (days since 1970), keeping file order within a
    day: (the order, or None if already sorted; each day's (number, first row, rows))."""
    n = len(numbers)
    if n == 0:
        return None, []
    low, high = int(numbers.min()), int(numbers.max())
    if low == high:
        return None, [(low, 0, n)]
    order: np.ndarray | None = None
    if np.any(numbers[1:] < numbers[:-1]):
        relative = numbers - low
        if high - low < 1 << 16:
            relative = relative.astype(np.uint16)  # numpy's stable sort is a radix sort here
        order = np.argsort(relative, kind="stable")
        numbers = numbers[order]
    starts = np.concatenate(([0], np.flatnonzero(numbers[1:] != numbers[:-1]) + 1))
    ends = np.append(starts[1:], n)
    return order, [(int(numbers[s]), int(s), int(e - s)) for s, e in zip(starts, ends, strict=True)]


EPOCH = date(1970, 1, 1).toordinal()


def day_of(number: int) -> date:
    return date.fromordinal(number + EPOCH)

"""Per-day spill files on local disk (Lambda's /tmp), so a big file never sits in memory.

Rows are appended batch by batch to one Arrow IPC file per day; reading a day back maps the
files into memory instead of copying them. At most `max_open` files are open at once: past
that, all are closed and later rows of a day go to a new segment, read back in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class DaySpill:
    def __init__(self, folder: Path, max_open: int = 128) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_open = max_open
        self.segments: dict[date, list[Path]] = {}
        self.rows: dict[date, int] = {}
        self._open: dict[date, pa.ipc.RecordBatchFileWriter] = {}
        self._sinks: dict[date, pa.NativeFile] = {}

    def append(self, day: date, batch: pa.RecordBatch) -> None:
        writer = self._open.get(day)
        if writer is None:
            if len(self._open) >= self.max_open:
                self.close()
            path = self.folder / f"{day.isoformat()}.{len(self.segments.get(day, []))}.arrow"
            self.segments.setdefault(day, []).append(path)
            # Buffered: a batch is many small buffers, each its own write() otherwise.
            sink = pa.BufferedOutputStream(pa.OSFile(str(path), "wb"), buffer_size=1 << 16)
            writer = pa.ipc.new_file(sink, batch.schema)
            self._sinks[day] = sink
            self._open[day] = writer
        writer.write_batch(batch)
        self.rows[day] = self.rows.get(day, 0) + batch.num_rows

    def close(self) -> None:
        for writer in self._open.values():
            writer.close()
        for sink in self._sinks.values():
            sink.close()
        self._open.clear()
        self._sinks.clear()

    def days(self) -> list[date]:
        return sorted(self.segments)

    def batches(self, day: date) -> Iterator[pa.RecordBatch]:
        self.close()
        for path in self.segments.get(day, []):
            with pa.memory_map(str(path)) as source:
                reader = pa.ipc.open_file(source)
                for i in range(reader.num_record_batches):
                    yield reader.get_batch(i)

    def chunks(self, day: date, rows: int) -> Iterator[pa.Table]:
        """The day's rows in file order, as tables of at least `rows` rows (but the last)."""
        pending: list[pa.RecordBatch] = []
        count = 0
        for batch in self.batches(day):
            pending.append(batch)
            count += batch.num_rows
            if count >= rows:
                yield pa.Table.from_batches(pending).combine_chunks()
                pending, count = [], 0
        if pending:
            # One contiguous chunk per column: kernels and the Parquet writer are much faster
            # on it than on the many small slices the spill holds.
            yield pa.Table.from_batches(pending).combine_chunks()


def split_by_day(
    batch: pa.RecordBatch, days: pa.Array, fallback: date
) -> Iterator[tuple[date, pa.RecordBatch]]:
    """Slices of `batch` per event day; rows keep their order within a day (stable sort)."""
    day_numbers = pc.fill_null(pc.cast(days, pa.date32()), pa.scalar(fallback, pa.date32()))
    numbers = day_numbers.view(pa.int32()).to_numpy(zero_copy_only=False)
    if len(numbers) and numbers.min() == numbers.max():
        yield date.fromordinal(int(numbers[0]) + _EPOCH), batch
        return
    order = np.argsort(numbers, kind="stable")
    ordered = batch.take(pa.array(order))
    values, starts = np.unique(numbers[order], return_index=True)
    ends = np.append(starts[1:], len(numbers))
    for value, start, end in zip(values, starts, ends, strict=True):
        yield date.fromordinal(int(value) + _EPOCH), ordered.slice(int(start), int(end - start))


_EPOCH = date(1970, 1, 1).toordinal()

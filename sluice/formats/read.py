"""Any RAW file as batches: its format detected, then its reader."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from sluice.errors import SluiceDataError
from sluice.formats.batches import RECORD_BATCH_ROWS, Batches, SheetReport
from sluice.formats.csv_reader import open_csv
from sluice.formats.detect import detect_format
from sluice.formats.excel import read_xlsx_sheets
from sluice.formats.json_reader import read_json, read_jsonl
from sluice.formats.limits import ReadHints, ReadLimits
from sluice.formats.parquet import open_parquet
from sluice.formats.stream import read_all
from sluice.reasons import ReasonCode


def _whole(fmt: str, table: pa.Table, sheets: SheetReport | None = None) -> Batches:
    batches = iter(table.to_batches(max_chunksize=RECORD_BATCH_ROWS))
    return Batches(fmt, table.schema, batches, sheets)


def open_file(
    path: Path, name: str, limits: ReadLimits | None = None, hints: ReadHints | None = None
) -> Batches:
    """A RAW file as batches, or a `SluiceDataError` saying why it cannot be read."""
    hints = hints or ReadHints()
    if path.stat().st_size == 0:
        raise SluiceDataError(ReasonCode.EMPTY_FILE, "file has no content")
    with path.open("rb") as fh:
        head = fh.read(8)
    fmt = detect_format(name, head)
    if fmt == "parquet":
        return open_parquet(path)
    if fmt == "xlsx":
        return _whole(fmt, *read_xlsx_sheets(path, limits, hints))
    if fmt == "csv":
        return open_csv(path, limits, hints.encoding)
    data = read_all(path, limits)
    read = read_json if fmt == "json" else read_jsonl
    return _whole(fmt, read(data, hints.encoding))


def read_file(
    path: Path, name: str, limits: ReadLimits | None = None, hints: ReadHints | None = None
) -> tuple[str, pa.Table]:
    """(format, whole table) of a RAW file; the pipeline streams with `open_file` instead."""
    opened = open_file(path, name, limits, hints)
    return opened.format, pa.Table.from_batches(list(opened.batches), opened.schema)

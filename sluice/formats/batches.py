"""What reading a RAW file gives: its batches of text, and for a workbook which sheets were
read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import pyarrow as pa

from sluice.state import Sheets

RECORD_BATCH_ROWS = 1 << 16


@dataclass
class Batches:
    """A RAW file opened for reading: its format, schema and batches (read once)."""

    format: str
    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    # An xlsx file's sheets: which were read, which skipped and why.
    sheets: SheetReport | None = None


@dataclass(frozen=True)
class SheetReport:
    """Which sheets of a workbook were read, and why each other one was not."""

    read: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    # The state lists at most this many sheets of each kind, with reasons of at most WHY
    # characters, and counts them all: it stays small whatever the workbook.
    LISTED = 10
    WHY = 120

    def summary(self) -> Sheets:
        """What the state says of the sheets: the first few of each kind, and the counts."""
        return Sheets(
            read=self.read[: self.LISTED],
            read_count=len(self.read),
            skipped=tuple((sheet, why[: self.WHY]) for sheet, why in self.skipped[: self.LISTED]),
            skipped_count=len(self.skipped),
        )


def value_text(value: Any) -> str | None:
    """A JSON or spreadsheet value as the text a CSV would hold."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return json.dumps(value, sort_keys=True, default=str)

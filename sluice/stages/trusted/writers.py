"""How Trusted's files are written: the Parquet policy, and one file per day."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sluice.contracts import Contract
from sluice.stages.trusted.schema import FLAGS, STAMPS

PARQUET_COMPRESSION = "zstd"


def parquet_options(contract: Contract | None, schema: pa.Schema | None) -> dict[str, Any]:
    """Encodings that suit each column: an integer primary key is delta-encoded (ids rise),
    measures are stored plain (nearly every value differs), the rest dictionary-encoded.
    Statistics are kept for the columns a query filters on, not for lineage or flag lists."""
    if contract is None or schema is None:
        return {"compression": PARQUET_COMPRESSION}
    pk = set(contract.primary_key) if len(contract.primary_key) == 1 else set()
    delta = {c.name for c in contract.columns if c.name in pk and c.type == "int"}
    plain = delta | {
        c.name
        for c in contract.columns
        if c.type in ("float", "decimal", "timestamp") and c.name not in contract.group_by
    }
    unfiltered = {FLAGS, *(stamp.name for stamp in STAMPS if stamp.name != "processed_timestamp")}
    return {
        "compression": PARQUET_COMPRESSION,
        "use_dictionary": [n for n in schema.names if n not in plain],
        "column_encoding": dict.fromkeys(sorted(delta), "DELTA_BINARY_PACKED"),
        "write_statistics": [n for n in schema.names if n not in unfiltered],
        # The Arrow schema is not stored: readers take the Parquet types, so dictionary-coded
        # text reads back as plain text, as the table's schema says.
        "store_schema": False,
    }


def write_table(path: Path, table: pa.Table, options: dict[str, Any]) -> None:
    """One Parquet file, one row group."""
    pq.write_table(table, path, row_group_size=max(table.num_rows, 1), **options)


def write_chunks(path: Path, chunks: Iterator[pa.Table], options: dict[str, Any]) -> int:
    """Write tables to one Parquet file, one row group per chunk; the rows written."""
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        for chunk in chunks:
            if chunk.num_rows == 0:
                continue
            if writer is None:
                writer = pq.ParquetWriter(path, chunk.schema, **options)
            writer.write_table(chunk, row_group_size=max(chunk.num_rows, 1))
            rows += chunk.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows

"""Parquet, read batch by batch in its own types (string and binary views as plain ones)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sluice.errors import SluiceDataError
from sluice.formats.batches import RECORD_BATCH_ROWS, Batches
from sluice.reasons import ReasonCode


def open_parquet(path: Path) -> Batches:
    try:
        source = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SluiceDataError(
            ReasonCode.UNREADABLE, f"not a readable Parquet file: {_first_line(exc)}"
        ) from exc

    schema = _without_views(source.schema_arrow)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for batch in source.iter_batches(batch_size=RECORD_BATCH_ROWS):
                yield batch if batch.schema == schema else batch.cast(schema)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SluiceDataError(
                ReasonCode.UNREADABLE, f"not a readable Parquet file: {_first_line(exc)}"
            ) from exc

    return Batches("parquet", schema, batches())


def _without_views(schema: pa.Schema) -> pa.Schema:
    """`schema` with string and binary views as plain strings and bytes: Arrow's kernels that
    quarantine rows (take, filter) have none for views, and the values are the same."""
    views = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}
    fields = [f.with_type(views.get(f.type, f.type)) for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]

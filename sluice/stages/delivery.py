"""Delivery: analysis-ready detail records, and daily summaries kept from TRUSTED's partials."""

from __future__ import annotations

import random
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from sluice import retries
from sluice.stages.day_state import REMOVED, DayState, GroupKey
from sluice.stages.partials import (
    PARTIAL_DAY,
    daily_summary,
    partial_summaries,
    partial_summary,
    partials_schema,
    split_partials,
)
from sluice.stages.record_types import (
    DAILY_SUMMARY,
    DELIVERY_STAMPS,
    DETAIL,
    QUALITY,
    QUALITY_SCHEMA,
    RECORD_TYPES,
    detail_schema,
    summary_schema,
)

if TYPE_CHECKING:
    from sluice.state import LineageManifest

__all__ = [
    "DAILY_SUMMARY",
    "DELIVERY_STAMPS",
    "DETAIL",
    "LINEAGE_SCHEMA",
    "PARTIAL_DAY",
    "QUALITY",
    "QUALITY_SCHEMA",
    "RECORD_TYPES",
    "REMOVED",
    "DayState",
    "GroupKey",
    "backoff",
    "daily_summary",
    "detail",
    "detail_schema",
    "lineage_table",
    "partial_summaries",
    "partial_summary",
    "partials_schema",
    "quality",
    "read_parquet_bytes",
    "split_partials",
    "summary_schema",
]


def _stamps(n: int, delivered_at: datetime, pipeline_version: str) -> dict[str, pa.Array]:
    return {
        "delivery_timestamp": pa.repeat(pa.scalar(delivered_at, pa.timestamp("us", tz="UTC")), n),
        "processing_layer": pa.repeat(pa.scalar("delivery", pa.string()), n),
        "pipeline_version": pa.repeat(pa.scalar(pipeline_version, pa.string()), n),
    }


def detail(trusted: pa.Table, delivered_at: datetime, pipeline_version: str) -> pa.Table:
    """Trusted records with the delivery layer's columns."""
    table = trusted.drop_columns(
        [c for c in ("processing_layer", "pipeline_version") if c in trusted.column_names]
    )
    for name, values in _stamps(table.num_rows, delivered_at, pipeline_version).items():
        table = table.append_column(name, values)
    return table.cast(detail_schema(trusted.schema))


def quality(
    day: date,
    stats: dict[str, Any],
    lineage: dict[str, str],
    delivered_at: datetime,
    pipeline_version: str,
) -> pa.Table:
    """One QUALITY record: what happened to one source object's rows of one day."""
    row: dict[str, Any] = {
        "quality_date": day,
        **lineage,
        **{k: v for k, v in stats.items() if k in QUALITY_SCHEMA.names},
    }
    for name in ("quarantined_by_reason", "null_counts"):
        row[name] = list(stats.get(name, {}).items())
    row.update(
        {
            "delivery_timestamp": delivered_at,
            "processing_layer": "delivery",
            "pipeline_version": pipeline_version,
        }
    )
    return pa.Table.from_pylist([row], schema=QUALITY_SCHEMA)


def read_parquet_bytes(body: bytes) -> pa.Table:
    """A whole Parquet object already in memory. `pq.read_table` would import Arrow's dataset
    layer (and pandas, where it is installed) on a function's first read: a second or so of
    a cold Delivery for nothing a single file needs."""
    return pq.ParquetFile(pa.BufferReader(body)).read()


_CAS_BASE = retries.SUMMARY_CAS.interval_seconds
_CAS_CAP = retries.SUMMARY_CAS.max_interval_seconds
assert _CAS_BASE is not None and _CAS_CAP is not None, "the summary's backoff is set"


def backoff(attempt: int, base: float = _CAS_BASE, cap: float = _CAS_CAP) -> float:
    """Seconds to wait before compare-and-swap attempt `attempt` + 1: full jitter, growing."""
    return random.uniform(0, min(cap, base * 2**attempt))


LINEAGE_SCHEMA = pa.schema(
    [
        ("execution", pa.string()),
        ("dataset", pa.string()),
        ("raw_bucket", pa.string()),
        ("raw_key", pa.string()),
        ("raw_version", pa.string()),
        ("raw_etag", pa.string()),
        ("contract_version", pa.string()),
        ("contract_inferred", pa.bool_()),
        ("rows_in", pa.int64()),
        ("layer", pa.string()),
        ("record_type", pa.string()),
        ("output_bucket", pa.string()),
        ("output_key", pa.string()),
        ("output_day", pa.date32()),
        ("output_rows", pa.int64()),
        ("validate_ms", pa.int64()),
        ("trusted_ms", pa.int64()),
        ("delivery_ms", pa.int64()),
        ("delivered_at", pa.timestamp("us", tz="UTC")),
    ]
)


def lineage_table(manifest: LineageManifest) -> pa.Table:
    """The lineage manifest as rows of the `lineage` table: one per output file."""
    source, durations = manifest.source, manifest.durations_ms
    common = {
        "execution": manifest.execution,
        "dataset": manifest.dataset,
        "raw_bucket": source.bucket,
        "raw_key": source.key,
        "raw_version": source.version_id or None,
        "raw_etag": source.etag or None,
        "contract_version": manifest.contract.version,
        "contract_inferred": manifest.contract.inferred,
        "rows_in": manifest.counts.rows_in,
        "validate_ms": durations.validate,
        "trusted_ms": durations.trusted,
        "delivery_ms": durations.delivery,
        "delivered_at": datetime.fromisoformat(manifest.delivered_at),
    }
    rows = [
        {
            **common,
            "layer": item.layer,
            "record_type": item.record_type,
            "output_bucket": item.bucket,
            "output_key": item.key,
            "output_day": date.fromisoformat(item.day),
            "output_rows": item.rows,
        }
        for item in manifest.outputs
    ]
    return pa.Table.from_pylist(rows, schema=LINEAGE_SCHEMA)

"""Delivery's record types, and the schemas of their files."""

from __future__ import annotations

import pyarrow as pa

from sluice.contracts import Contract
from sluice.stages.coerce import ARROW_TYPES

DETAIL = "DETAIL"
DAILY_SUMMARY = "DAILY_SUMMARY"
QUALITY = "QUALITY"
RECORD_TYPES = (DETAIL, DAILY_SUMMARY, QUALITY)
# `record_type` is the partition column (`record_type=<TYPE>/` in the key): Athena and DuckDB
# take it from the path, so it is not repeated inside the files.


DELIVERY_STAMPS = pa.schema(
    [
        ("delivery_timestamp", pa.timestamp("us", tz="UTC")),
        ("processing_layer", pa.string()),
        ("pipeline_version", pa.string()),
    ]
)


def detail_schema(trusted: pa.Schema) -> pa.Schema:
    """DETAIL files: the trusted columns, then the delivery layer's own."""
    kept = [f for f in trusted if f.name not in DELIVERY_STAMPS.names]
    return pa.schema(kept + list(DELIVERY_STAMPS))


def summary_schema(contract: Contract) -> pa.Schema:
    """DAILY_SUMMARY files: per day and group, statistics of each measure."""
    fields = [pa.field("summary_date", pa.date32())]
    fields += [pa.field(g, ARROW_TYPES[contract.column(g).type]) for g in contract.group_by]
    fields.append(pa.field("record_count", pa.int64()))
    for m in contract.measures:
        measure = ARROW_TYPES[contract.column(m).type]
        fields += [
            pa.field(f"{m}_sum", measure),
            pa.field(f"{m}_mean", pa.float64()),
            pa.field(f"{m}_min", measure),
            pa.field(f"{m}_max", measure),
        ]
    fields.append(pa.field("avg_quality_score", pa.float64()))
    return pa.schema(fields)


QUALITY_SCHEMA = pa.schema(
    [
        ("quality_date", pa.date32()),
        ("source_file", pa.string()),
        ("source_version", pa.string()),
        ("execution", pa.string()),
        ("contract_version", pa.string()),
        ("rows_in", pa.int64()),
        ("rows_trusted", pa.int64()),
        ("rows_quarantined", pa.int64()),
        ("duplicates", pa.int64()),
        ("quarantined_by_reason", pa.map_(pa.string(), pa.int64())),
        ("null_counts", pa.map_(pa.string(), pa.int64())),
        ("outliers", pa.int64()),
        ("quality_score_mean", pa.float64()),
        ("quality_score_min", pa.float64()),
        ("quality_score_max", pa.float64()),
        ("delivery_timestamp", pa.timestamp("us", tz="UTC")),
        ("processing_layer", pa.string()),
        ("pipeline_version", pa.string()),
    ]
)

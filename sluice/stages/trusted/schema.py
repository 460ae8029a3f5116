"""Trusted's columns: the schema of every TRUSTED file, and the spill's working columns."""

from __future__ import annotations

import pyarrow as pa

from sluice.contracts import Contract
from sluice.stages.coerce import ARROW_TYPES

ROW = "_row"
REASONS = "reason_codes"
FLAGS = "quality_flags"
SCORE = "data_quality_score"
OUTLIER = "is_outlier"
# Columns the kept rows carry in the spill only, never written to a TRUSTED file.
ORD = "__ordinal"
PRESENT = "__present"


def flag_column(i: int) -> str:
    return f"__flag{i}"


def group_column(i: int) -> str:
    return f"__group{i}"


_DERIVED_TYPES = {
    "year": pa.int64(),
    "month": pa.int64(),
    "day": pa.int64(),
    "quarter": pa.int64(),
    "day_of_week": pa.int64(),
    "upper": pa.string(),
    "lower": pa.string(),
    "trim": pa.string(),
}
STAMPS = pa.schema(
    [
        ("processed_timestamp", pa.timestamp("us", tz="UTC")),
        ("source_file", pa.string()),
        ("source_version", pa.string()),
        ("pipeline_version", pa.string()),
        ("processing_layer", pa.string()),
    ]
)


def output_schema(contract: Contract) -> pa.Schema:
    """The schema of every TRUSTED file of this dataset (and of its Athena table)."""
    fields = [pa.field(c.name, ARROW_TYPES[c.type]) for c in contract.columns]
    fields += [pa.field(b.name, pa.string()) for b in contract.bands]
    for item in contract.derived:
        source = ARROW_TYPES[contract.column(item.column).type]
        fields.append(pa.field(item.name, _DERIVED_TYPES.get(item.function, source)))
    if contract.outliers:
        fields.append(pa.field(OUTLIER, pa.bool_()))
    fields += [pa.field(FLAGS, pa.list_(pa.string())), pa.field(SCORE, pa.float64())]
    return pa.schema(fields + list(STAMPS))


def write_schema(contract: Contract, schema: pa.Schema) -> pa.Schema:
    """`schema` as the rows are handed to the Parquet writer: bands and lineage text as
    dictionaries, which the writer stores without hashing every value (readers see text)."""
    dictionary = pa.dictionary(pa.int32(), pa.string())
    coded = {band.name for band in contract.bands} | {
        stamp.name for stamp in STAMPS if pa.types.is_string(stamp.type)
    }
    return pa.schema([pa.field(f.name, dictionary) if f.name in coded else f for f in schema])

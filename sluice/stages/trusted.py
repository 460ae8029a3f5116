"""Trusted: typed, de-duplicated, scored records, split by event day; bad rows set aside.

Every input row ends in exactly one of three places, so `rows_in = trusted + quarantined +
duplicates` holds for every file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.contracts import Contract
from sluice.stages.coerce import ARROW_TYPES, coerce

ROW = "_row"
REASONS = "reason_codes"


@dataclass(frozen=True)
class RunContext:
    """Lineage stamped onto every record this run writes."""

    source_file: str
    source_version: str
    pipeline_version: str
    processed_at: datetime


@dataclass
class TrustedResult:
    trusted: dict[date, pa.Table] = field(default_factory=dict)
    quarantined: dict[date, pa.Table] = field(default_factory=dict)
    rows_in: int = 0
    rows_trusted: int = 0
    rows_quarantined: int = 0
    duplicates: int = 0

    def check_accounting(self) -> None:
        total = self.rows_trusted + self.rows_quarantined + self.duplicates
        if total != self.rows_in:
            raise AssertionError(
                f"row accounting broken: {self.rows_in} in, {self.rows_trusted} trusted + "
                f"{self.rows_quarantined} quarantined + {self.duplicates} duplicates = {total}"
            )


def _reasons(
    table: pa.Table, contract: Contract
) -> tuple[dict[str, pa.Array], list[tuple[str, pa.Array]]]:
    """Typed columns and the (reason code, row mask) pairs that reject rows."""
    typed: dict[str, pa.Array] = {}
    checks: list[tuple[str, pa.Array]] = []
    for col in contract.columns:
        if col.name not in table.column_names:
            typed[col.name] = pa.nulls(table.num_rows, ARROW_TYPES[col.type])
            if col.required:
                checks.append((f"MISSING:{col.name}", pa.array([True] * table.num_rows)))
            continue
        result = coerce(table.column(col.name), col.type)
        typed[col.name] = result.values
        checks.append((f"TYPE_MISMATCH:{col.name}", result.invalid))
        if col.required:
            missing = pc.and_(pc.is_null(result.values), pc.invert(result.invalid))
            checks.append((f"REQUIRED_NULL:{col.name}", missing))
    return typed, [(code, mask) for code, mask in checks if pc.any(mask).as_py()]


def _reason_codes(checks: list[tuple[str, pa.Array]], n: int) -> tuple[pa.Array, pa.Array]:
    """(rejected mask, reason codes of each rejected row as a list)."""
    if not checks:
        return pa.array(np.zeros(n, dtype=bool)), pa.array([], pa.list_(pa.string()))
    masks = np.column_stack([m.to_numpy(zero_copy_only=False) for _, m in checks])
    rejected = masks.any(axis=1)
    codes = [c for c, _ in checks]
    per_row = [[codes[i] for i in np.flatnonzero(row)] for row in masks[rejected]]
    return pa.array(rejected), pa.array(per_row, pa.list_(pa.string()))


def _keep_first(table: pa.Table, keys: list[str]) -> pa.Table:
    """Rows of `table` that are the first (lowest `_row`) of their `keys` group."""
    firsts = table.group_by(keys, use_threads=False).aggregate([(ROW, "min")])
    return table.filter(pc.is_in(table[ROW], firsts[f"{ROW}_min"]))


def quality_score(table: pa.Table, contract: Contract) -> pa.Array:
    """Completeness: the share of the contract's columns that hold a value, in [0, 1]."""
    if not contract.columns:
        return pa.array([1.0] * table.num_rows, pa.float64())
    present = [pc.cast(pc.is_valid(table[c.name]), pa.float64()) for c in contract.columns]
    total = present[0]
    for item in present[1:]:
        total = pc.add(total, item)
    return pc.round(pc.divide(total, float(len(present))), 4)


def _split_by_day(table: pa.Table, day_column: pa.Array, fallback: date) -> dict[date, pa.Table]:
    """One slice per day; rows keep their file order within a day (the sort is stable)."""
    days = pc.fill_null(pc.cast(day_column, pa.date32()), pa.scalar(fallback, pa.date32()))
    order = pc.sort_indices(days)
    ordered = table.take(order)
    counts = pc.value_counts(days).to_pylist()
    result: dict[date, pa.Table] = {}
    offset = 0
    for item in sorted(counts, key=lambda c: c["values"]):
        result[item["values"]] = ordered.slice(offset, item["counts"])
        offset += item["counts"]
    return result


def transform(table: pa.Table, contract: Contract, ctx: RunContext) -> TrustedResult:
    """Apply the contract to staged rows: types, required values, duplicates, score, lineage."""
    result = TrustedResult(rows_in=table.num_rows)
    rows = pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
    typed_columns, checks = _reasons(table, contract)
    typed = pa.table({**typed_columns, ROW: rows})
    rejected, reasons = _reason_codes(checks, table.num_rows)
    good = typed.filter(pc.invert(rejected))
    fallback = ctx.processed_at.date()

    # The earliest row in the file wins. Exact duplicates share their primary key, so with a
    # key one pass removes both kinds; without one, whole rows are compared.
    keys = list(contract.primary_key) or contract.names
    deduped = _keep_first(good, keys) if good.num_rows else good
    deduped = deduped.sort_by(ROW)
    result.duplicates = good.num_rows - deduped.num_rows

    n = deduped.num_rows
    trusted = deduped.drop_columns([ROW]).append_column(
        "data_quality_score", quality_score(deduped, contract)
    )
    stamps = {
        "processed_timestamp": pa.repeat(
            pa.scalar(ctx.processed_at, pa.timestamp("us", tz="UTC")), n
        ),
        "source_file": pa.repeat(pa.scalar(ctx.source_file, pa.string()), n),
        "source_version": pa.repeat(pa.scalar(ctx.source_version, pa.string()), n),
        "pipeline_version": pa.repeat(pa.scalar(ctx.pipeline_version, pa.string()), n),
        "processing_layer": pa.repeat(pa.scalar("trusted", pa.string()), n),
    }
    for name, values in stamps.items():
        trusted = trusted.append_column(name, values)
    day_source = trusted[contract.event_date] if contract.event_date else pa.nulls(n, pa.date32())
    result.trusted = _split_by_day(trusted, day_source, fallback)
    result.rows_trusted = n

    if pc.any(rejected).as_py():
        bad_rows = pc.filter(rows, rejected)
        bad = table.filter(rejected)
        bad = bad.append_column(ROW, bad_rows)
        bad = bad.append_column(REASONS, reasons)
        bad = bad.append_column(
            "quarantined_timestamp",
            pa.array([ctx.processed_at] * bad.num_rows, pa.timestamp("us", tz="UTC")),
        )
        bad = bad.append_column("source_file", pa.array([ctx.source_file] * bad.num_rows))
        bad_days = (
            pc.filter(typed_columns[contract.event_date], rejected)
            if contract.event_date
            else pa.nulls(bad.num_rows, pa.date32())
        )
        result.quarantined = _split_by_day(bad, bad_days, fallback)
        result.rows_quarantined = bad.num_rows
    result.check_accounting()
    return result

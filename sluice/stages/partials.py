"""Partial summaries: each TRUSTED file's exact share of its days' summaries, and the
DAILY_SUMMARY rows they combine into."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.contracts import Contract
from sluice.stages.coerce import ARROW_TYPES
from sluice.stages.record_types import summary_schema


def partial_summary(trusted_day: pa.Table, contract: Contract) -> pa.Table:
    """One file's share of a day's summary: per group, the counts, sums, minima and maxima
    that combine exactly with other files' shares (means are divided out at the end)."""
    return partial_summaries(trusted_day, contract, np.zeros(trusted_day.num_rows, np.int32), 1)[0]


_DAY = "__day"


def partial_summaries(
    trusted: pa.Table, contract: Contract, day_ids: np.ndarray, days: int
) -> list[pa.Table]:
    """`partial_summary` of each of several days' rows at once (`day_ids`: each row's day,
    0 to `days` - 1, ascending): one grouping for all of them."""
    groups = list(contract.group_by)
    aggregations: list[tuple[str, str]] = [
        ("data_quality_score", "count"),
        ("data_quality_score", "sum"),
    ]
    for m in contract.measures:
        aggregations += [(m, "count"), (m, "sum"), (m, "min"), (m, "max")]
    source: dict[str, pa.Array | pa.ChunkedArray] = {_DAY: pa.array(day_ids, pa.int32())}
    for name in {*groups, "data_quality_score", *contract.measures}:
        column = trusted[name]
        if pa.types.is_dictionary(column.type):  # bands: group by their text
            column = pc.cast(column, column.type.value_type)
        source[name] = column
    grouped = (
        pa.table(source)
        .group_by([_DAY, *groups], use_threads=False)
        .aggregate(aggregations)
        .sort_by(_DAY)
    )
    columns: dict[str, pa.Array | pa.ChunkedArray] = {g: grouped[g] for g in groups}
    columns["record_count"] = pc.cast(grouped["data_quality_score_count"], pa.int64())
    columns["score_sum"] = pc.cast(grouped["data_quality_score_sum"], pa.float64())
    for m in contract.measures:
        columns[f"{m}_count"] = pc.cast(grouped[f"{m}_count"], pa.int64())
        for stat in ("sum", "min", "max"):
            columns[f"{m}_{stat}"] = grouped[f"{m}_{stat}"]
    keys = list(zip(*(grouped[c].to_pylist() for c in (_DAY, *groups)), strict=True))
    for m in contract.measures:
        if contract.column(m).type == "float":
            exact = _exact_sums(source, m, groups)
            if exact is not None:
                found = [exact.get(k) for k in keys]
                columns[f"{m}_sum"] = pa.array([None if f is None else float(f) for f in found])
                columns[f"{m}_sum_exact"] = pa.array(
                    [None if f is None else str(f) for f in found], pa.string()
                )
    schema = partial_schema(contract)
    table = pa.table(columns).select(schema.names).cast(schema)
    ends = np.searchsorted(grouped[_DAY].to_numpy(), np.arange(1, days + 1))
    starts = np.concatenate(([0], ends[:-1]))
    return [table.slice(int(s), int(e - s)) for s, e in zip(starts, ends, strict=True)]


_MANTISSA_BITS = 53
_HALF = 26


def _exact_sums(
    source: dict[str, pa.Array | pa.ChunkedArray], measure: str, groups: list[str]
) -> dict[tuple[Any, ...], Fraction] | None:
    """The exact sum of a float measure per (day, group): every float is an integer mantissa
    times a power of two, so mantissas are added as integers per exponent (in two halves, so
    int64 cannot overflow) and the few (group, exponent) totals are combined as fractions.
    None when a value is not finite (it has no exact sum)."""
    values = source[measure]
    valid = pc.is_valid(values)
    kept = pc.filter(values, valid).to_numpy()
    if not np.isfinite(kept).all():
        return None
    fraction, exponent = np.frexp(kept)
    mantissa = (fraction * float(1 << _MANTISSA_BITS)).astype(np.int64)
    table = pa.table(
        {
            **{c: pc.filter(source[c], valid) for c in (_DAY, *groups)},
            "__e": exponent.astype(np.int32) - _MANTISSA_BITS,
            "__hi": mantissa >> _HALF,
            "__lo": mantissa & ((1 << _HALF) - 1),
        }
    )
    totals = table.group_by([_DAY, *groups, "__e"], use_threads=False).aggregate(
        [("__hi", "sum"), ("__lo", "sum")]
    )
    sums: dict[tuple[Any, ...], Fraction] = {}
    for row in totals.to_pylist():
        key = tuple(row[c] for c in (_DAY, *groups))
        whole = (int(row["__hi_sum"]) << _HALF) + int(row["__lo_sum"])
        sums[key] = sums.get(key, Fraction(0)) + whole * Fraction(2) ** int(row["__e"])
    return sums


def daily_summary(partials: pa.Table, contract: Contract, day: date) -> pa.Table:
    """count, sum, mean, min and max of each measure for one day, per the contract's groups,
    from the partial summaries of *all* the day's TRUSTED files, so it is right however many
    files fed the day."""
    groups = list(contract.group_by)
    aggregations: list[tuple[str, str]] = [("record_count", "sum"), ("score_sum", "sum")]
    for m in contract.measures:
        aggregations += [(f"{m}_count", "sum"), (f"{m}_sum", "sum")]
        aggregations += [(f"{m}_min", "min"), (f"{m}_max", "max")]
    grouped = partials.group_by(groups, use_threads=False).aggregate(aggregations)
    n = grouped.num_rows
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        "summary_date": pa.array([day] * n, pa.date32())
    }
    for g in groups:
        columns[g] = grouped[g]
    records = pc.cast(grouped["record_count_sum"], pa.int64())
    columns["record_count"] = records
    for m in contract.measures:
        total = grouped[f"{m}_sum_sum"]
        counted = pc.cast(grouped[f"{m}_count_sum"], pa.float64())
        columns[f"{m}_sum"] = total
        columns[f"{m}_mean"] = pc.if_else(
            pc.greater(counted, 0),
            pc.divide(pc.cast(total, pa.float64()), counted),
            pa.scalar(None, pa.float64()),
        )
        columns[f"{m}_min"] = grouped[f"{m}_min_min"]
        columns[f"{m}_max"] = grouped[f"{m}_max_max"]
    columns["avg_quality_score"] = pc.divide(
        grouped["score_sum_sum"], pc.cast(records, pa.float64())
    )
    table = pa.table(columns)
    table = table.sort_by([(g, "ascending") for g in groups]) if groups else table
    return table.cast(summary_schema(contract))


def partial_schema(contract: Contract) -> pa.Schema:
    fields = [pa.field(g, ARROW_TYPES[contract.column(g).type]) for g in contract.group_by]
    fields += [pa.field("record_count", pa.int64()), pa.field("score_sum", pa.float64())]
    for m in contract.measures:
        measure = ARROW_TYPES[contract.column(m).type]
        fields += [
            pa.field(f"{m}_count", pa.int64()),
            pa.field(f"{m}_sum", measure),
            pa.field(f"{m}_min", measure),
            pa.field(f"{m}_max", measure),
        ]
        if contract.column(m).type == "float":  # the float sum, and the sum it rounds
            fields.append(pa.field(f"{m}_sum_exact", pa.string()))
    return pa.schema(fields)


PARTIAL_DAY = "summary_date"  # in a file's partials object: the day a partial row belongs to


def partials_schema(contract: Contract) -> pa.Schema:
    """One source object's partial summaries of all its days, in one table."""
    return pa.schema([pa.field(PARTIAL_DAY, pa.date32()), *partial_schema(contract)])


def split_partials(table: pa.Table, day: date | None = None) -> dict[date, tuple[str, pa.Table]]:
    """A partials object's rows by day, each with the digest of its content (a table without
    `summary_date` is one day's partial, `day`'s)."""
    if PARTIAL_DAY not in table.column_names:
        return {} if day is None else {day: (_content_digest(table), table)}
    table = table.sort_by(PARTIAL_DAY)  # (stable: each day's rows keep their order)
    days = table[PARTIAL_DAY].to_pylist()
    rest = table.drop_columns([PARTIAL_DAY])
    found: dict[date, tuple[str, pa.Table]] = {}
    start = 0
    for end in range(1, len(days) + 1):
        if end == len(days) or days[end] != days[start]:
            part = rest.slice(start, end - start)
            found[days[start]] = (_content_digest(part), part)
            start = end
    return found


def _content_digest(partial: pa.Table) -> str:
    """The identity of one day's partial: its rows, so a rerun that makes the same is the same."""
    rows = json.dumps(partial.to_pylist(), sort_keys=True, default=str)
    return hashlib.sha256(rows.encode()).hexdigest()[:32]

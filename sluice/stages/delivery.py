"""Delivery: analysis-ready detail records and daily summaries recomputed from TRUSTED."""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc

from sluice.contracts import Contract

DETAIL = "DETAIL"
DAILY_SUMMARY = "DAILY_SUMMARY"
RECORD_TYPES = (DETAIL, DAILY_SUMMARY)


def detail(trusted: pa.Table, delivered_at: datetime, pipeline_version: str) -> pa.Table:
    """Trusted records with the delivery layer's columns."""
    n = trusted.num_rows
    table = trusted.drop_columns(
        [c for c in ("processing_layer", "pipeline_version") if c in trusted.column_names]
    )
    table = table.append_column(
        "delivery_timestamp", pa.array([delivered_at] * n, pa.timestamp("us", tz="UTC"))
    )
    table = table.append_column("processing_layer", pa.array(["delivery"] * n, pa.string()))
    return table.append_column("pipeline_version", pa.array([pipeline_version] * n, pa.string()))


def daily_summary(trusted_day: pa.Table, contract: Contract, day: date) -> pa.Table:
    """count, sum, mean, min and max of each measure for one day, per the contract's groups.

    `trusted_day` must hold *all* TRUSTED rows of the day, so the summary is right however
    many files fed it.
    """
    groups = [g for g in contract.group_by if g in trusted_day.column_names]
    measures = [m for m in contract.measures if m in trusted_day.column_names]
    aggregations: list[tuple[str, str]] = [("data_quality_score", "count")]
    for m in measures:
        aggregations += [(m, "sum"), (m, "mean"), (m, "min"), (m, "max")]
    aggregations.append(("data_quality_score", "mean"))
    grouped = trusted_day.group_by(groups, use_threads=False).aggregate(aggregations)
    columns: dict[str, pa.Array] = {"summary_date": pa.array([day] * grouped.num_rows, pa.date32())}
    for g in groups:
        columns[g] = grouped[g]
    columns["record_count"] = pc.cast(grouped["data_quality_score_count"], pa.int64())
    for m in measures:
        for stat in ("sum", "mean", "min", "max"):
            values = grouped[f"{m}_{stat}"]
            if stat == "mean":
                values = pc.cast(values, pa.float64())
            columns[f"{m}_{stat}"] = values
    columns["avg_quality_score"] = grouped["data_quality_score_mean"]
    table = pa.table(columns)
    return table.sort_by([(g, "ascending") for g in groups]) if groups else table

"""Delivery: analysis-ready detail records, and daily summaries kept from TRUSTED's partials."""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sluice.contracts import Contract
from sluice.errors import SluiceError
from sluice.stages.coerce import ARROW_TYPES

DETAIL = "DETAIL"
DAILY_SUMMARY = "DAILY_SUMMARY"
QUALITY = "QUALITY"
RECORD_TYPES = (DETAIL, DAILY_SUMMARY, QUALITY)
# `record_type` is the partition column (`record_type=<TYPE>/` in the key): Athena and DuckDB
# take it from the path, so it is not repeated inside the files.


def _stamps(n: int, delivered_at: datetime, pipeline_version: str) -> dict[str, pa.Array]:
    return {
        "delivery_timestamp": pa.repeat(pa.scalar(delivered_at, pa.timestamp("us", tz="UTC")), n),
        "processing_layer": pa.repeat(pa.scalar("delivery", pa.string()), n),
        "pipeline_version": pa.repeat(pa.scalar(pipeline_version, pa.string()), n),
    }


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


def detail(trusted: pa.Table, delivered_at: datetime, pipeline_version: str) -> pa.Table:
    """Trusted records with the delivery layer's columns."""
    table = trusted.drop_columns(
        [c for c in ("processing_layer", "pipeline_version") if c in trusted.column_names]
    )
    for name, values in _stamps(table.num_rows, delivered_at, pipeline_version).items():
        table = table.append_column(name, values)
    return table.cast(detail_schema(trusted.schema))


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
    schema = _partial_schema(contract)
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


# --------------------------------------------------------------------------- day state
# A day's summary as a state that one file's partial summary can be merged into.
#
# The state holds, per group, exact running totals of what the day's files contributed (counts,
# sums as fractions, minima, maxima), and which contributions it includes: each TRUSTED partial
# summary's key with a digest of its content. So adding a file costs that file's partial, not
# the day's other files; a rerun of a contribution already in changes nothing; and the summary
# rendered from it is the same whatever order the files arrived in, or whether it was
# recomputed from all the day's partials (sums are exact fractions, rounded once).
#
# A key whose content changed or vanished cannot be subtracted (minima and maxima do not
# undo), so the caller recomputes the state from all the day's partials then. A key that left
# the day stays as a tombstone (an empty digest): a late, stale merge of its old content then
# meets a mismatch and recomputes instead of adding rows that are gone.

REMOVED = ""  # the digest of a contribution that left the day
_CONTRIBUTIONS = b"sluice.contributions"
_GENERATION = b"sluice.generation"
# The DAILY_SUMMARY file's key-value metadata entry holding its day's state.
_STATE = "sluice.state"

GroupKey = tuple[Any, ...]


@dataclass
class _Totals:
    """One group's exact running totals (`None`: no value seen yet)."""

    records: int = 0
    score: Fraction = Fraction(0)
    counts: list[int] = field(default_factory=list)
    sums: list[Fraction | None] = field(default_factory=list)
    minima: list[Any] = field(default_factory=list)
    maxima: list[Any] = field(default_factory=list)


def _fraction(value: Any) -> Fraction:
    return Fraction(value)  # exact for int, float and Decimal alike


def _add(total: Fraction | None, value: Any) -> Fraction | None:
    if value is None:
        return total
    return _fraction(value) if total is None else total + _fraction(value)


def _lower(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def _upper(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else max(a, b)


@dataclass(frozen=True)
class DayState:
    """The running totals of one day, the contributions they include, and a generation that
    grows with every change, so the summary published from it can tell older from newer."""

    contributions: dict[str, str]
    totals: dict[GroupKey, _Totals]
    generation: int = 0

    @classmethod
    def empty(cls) -> DayState:
        return cls({}, {})

    @property
    def has_rows(self) -> bool:
        return bool(self.totals)

    # ------------------------------------------------------------------ changes

    def merged(self, key: str, content: str, partial: pa.Table, contract: Contract) -> DayState:
        """This state with one more contribution added (its key must not be in yet)."""
        assert key not in self.contributions
        totals = copy.deepcopy(self.totals)
        _accumulate(totals, partial, contract)
        return DayState({**self.contributions, key: content}, totals, self.generation + 1)

    def unchanged(self) -> DayState:
        """The same totals, one generation on: a rerun still commits, so a recompute that read
        the day's partials before it cannot overwrite what it confirmed."""
        return replace(self, generation=self.generation + 1)

    def without(self, key: str) -> DayState:
        """A contribution that was never in left the day: remember it as gone."""
        return replace(
            self,
            contributions={**self.contributions, key: REMOVED},
            generation=self.generation + 1,
        )

    def recomputed(self, partials: dict[str, tuple[str, pa.Table]], contract: Contract) -> DayState:
        """The state of exactly these partials (key -> (digest, table)), keeping tombstones."""
        totals: dict[GroupKey, _Totals] = {}
        for key in sorted(partials):
            _accumulate(totals, partials[key][1], contract)
        contributions = {k: REMOVED for k in self.contributions if k not in partials}
        contributions.update({k: d for k, (d, _) in partials.items()})
        return DayState(contributions, totals, self.generation + 1)

    # ------------------------------------------------------------------ outputs

    def summary(self, contract: Contract, day: date) -> pa.Table:
        """The DAILY_SUMMARY rows: what `delivery.daily_summary` makes of all the partials."""
        return daily_summary(self._combined(contract), contract, day)

    def _combined(self, contract: Contract) -> pa.Table:
        """One partial summary row per group holding the day's totals (sums rounded once)."""
        rows = self._rows(contract, float, lambda total, m: _rounded(total, contract, m))
        return pa.Table.from_pylist(rows, schema=_partial_schema(contract))

    def _rows(
        self,
        contract: Contract,
        score: Callable[[Fraction], Any],
        total: Callable[[Fraction | None, str], Any],
    ) -> list[dict[str, Any]]:
        """One row per group, in a fixed order: the totals, with the score's sum and each
        measure's sum as `score` and `total` render them."""
        rows: list[dict[str, Any]] = []
        for key in sorted(self.totals, key=_sort_key):
            t = self.totals[key]
            row: dict[str, Any] = dict(zip(contract.group_by, key, strict=True))
            row["record_count"] = t.records
            row["score_sum"] = score(t.score)
            for i, m in enumerate(contract.measures):
                row[f"{m}_count"] = t.counts[i]
                row[f"{m}_sum"] = total(t.sums[i], m)
                row[f"{m}_min"] = t.minima[i]
                row[f"{m}_max"] = t.maxima[i]
            rows.append(row)
        return rows

    def encode(self, contract: Contract) -> bytes:
        """The state as an Arrow IPC stream: exact totals (fractions as text), contributions in
        its metadata. (Arrow IPC, not Parquet: a thirtieth of the time to write and read for a
        few rows, and the state is read and written once per file and day.)"""
        schema = _state_schema(contract)
        rows = self._rows(contract, str, lambda total, _: None if total is None else str(total))
        metadata = {
            _CONTRIBUTIONS: json.dumps(self.contributions, sort_keys=True).encode(),
            _GENERATION: str(self.generation).encode(),
        }
        table = pa.Table.from_pylist(rows, schema=schema.with_metadata(metadata))
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return bytes(sink.getvalue().to_pybytes())

    @classmethod
    def decode(cls, body: bytes, contract: Contract) -> DayState:
        table = pa.ipc.open_stream(body).read_all()
        metadata = table.schema.metadata or {}
        measures = list(contract.measures)
        totals: dict[GroupKey, _Totals] = {}
        for row in table.to_pylist():
            key = tuple(row[g] for g in contract.group_by)
            totals[key] = _Totals(
                records=int(row["record_count"]),
                score=Fraction(row["score_sum"]),
                counts=[int(row[f"{m}_count"]) for m in measures],
                sums=[
                    None if row[f"{m}_sum"] is None else Fraction(row[f"{m}_sum"]) for m in measures
                ],
                minima=[row[f"{m}_min"] for m in measures],
                maxima=[row[f"{m}_max"] for m in measures],
            )
        contributions = json.loads(metadata.get(_CONTRIBUTIONS, b"{}"))
        return cls(contributions, totals, int(metadata.get(_GENERATION, b"0")))

    def summary_object(self, contract: Contract, day: date) -> bytes:
        """The day's DAILY_SUMMARY object: its rows (none once every contribution has left),
        and this state (`encode`, deflated, in base64) in the file's key-value metadata, where
        the next merge reads it. Readers of the table see only the rows."""
        table = (
            self.summary(contract, day) if self.has_rows else summary_schema(contract).empty_table()
        )
        # (compressed: most of a busy day's state is its contributions' keys and digests, which
        # every reader of the file fetches with its footer)
        state = base64.b64encode(zlib.compress(self.encode(contract))).decode("ascii")
        sink = io.BytesIO()
        with pq.ParquetWriter(sink, table.schema, compression="zstd") as writer:
            writer.write_table(table, row_group_size=1 << 20)
            writer.add_key_value_metadata({_STATE: state})
        return sink.getvalue()

    @classmethod
    def of_summary(cls, body: bytes, contract: Contract) -> DayState:
        """The state a DAILY_SUMMARY object (`summary_object`) carries."""
        metadata = pq.ParquetFile(pa.BufferReader(body)).metadata.metadata or {}
        state = metadata.get(_STATE.encode())
        if state is None:
            raise SluiceError(
                "a DAILY_SUMMARY object holds no summary state (it was not written by Sluice's "
                "Delivery): remove it and rerun the day's executions to rebuild it"
            )
        return cls.decode(zlib.decompress(base64.b64decode(state)), contract)

    def summary_rows(self) -> int | None:
        """The DAILY_SUMMARY's row count; None when the day has no rows."""
        return len(self.totals) if self.has_rows else None


def _accumulate(totals: dict[GroupKey, _Totals], partial: pa.Table, contract: Contract) -> None:
    measures = list(contract.measures)
    for row in partial.to_pylist():
        key = tuple(row.get(g) for g in contract.group_by)
        t = totals.get(key)
        if t is None:
            n = len(measures)
            t = totals[key] = _Totals(
                counts=[0] * n, sums=[None] * n, minima=[None] * n, maxima=[None] * n
            )
        t.records += int(row["record_count"])
        if row["score_sum"] is not None:
            t.score += _fraction(row["score_sum"])
        for i, m in enumerate(measures):
            t.counts[i] += int(row[f"{m}_count"] or 0)
            exact = row.get(f"{m}_sum_exact")
            t.sums[i] = _add(t.sums[i], row[f"{m}_sum"] if exact is None else Fraction(exact))
            t.minima[i] = _lower(t.minima[i], row[f"{m}_min"])
            t.maxima[i] = _upper(t.maxima[i], row[f"{m}_max"])


def _rounded(total: Fraction | None, contract: Contract, measure: str) -> Any:
    if total is None:
        return None
    kind = contract.column(measure).type
    if kind == "int":
        return int(total)
    if kind == "decimal":
        with localcontext() as ctx:
            ctx.prec = 80
            return Decimal(total.numerator) / Decimal(total.denominator)
    return float(total)  # correctly rounded: int / int division in Python is


def _sort_key(key: GroupKey) -> tuple[tuple[bool, str], ...]:
    """Any group key sorts (None first); the rendered summary is sorted by Arrow anyway."""
    return tuple((v is not None, repr(v)) for v in key)


def _partial_schema(contract: Contract) -> pa.Schema:
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
    return pa.schema([pa.field(PARTIAL_DAY, pa.date32()), *_partial_schema(contract)])


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


def _state_schema(contract: Contract) -> pa.Schema:
    exact = {"score_sum", *(f"{m}_sum" for m in contract.measures)}
    return pa.schema(
        [
            pa.field(f.name, pa.string()) if f.name in exact else f
            for f in _partial_schema(contract)
            if not f.name.endswith("_sum_exact")  # (the state's sums are exact themselves)
        ]
    )


def read_parquet_bytes(body: bytes) -> pa.Table:
    """A whole Parquet object already in memory. `pq.read_table` would import Arrow's dataset
    layer (and pandas, where it is installed) on a function's first read: a second or so of
    a cold Delivery for nothing a single file needs."""
    return pq.ParquetFile(pa.BufferReader(body)).read()


def backoff(attempt: int, base: float = 0.05, cap: float = 2.0) -> float:
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


def lineage_table(manifest: dict[str, Any]) -> pa.Table:
    """The lineage manifest as rows of the `lineage` table: one per output file."""
    source = manifest["source"]
    durations = manifest["durations_ms"]
    common = {
        "execution": manifest["execution"],
        "dataset": manifest["dataset"],
        "raw_bucket": source["bucket"],
        "raw_key": source["key"],
        "raw_version": source.get("version_id") or None,
        "raw_etag": source.get("etag") or None,
        "contract_version": manifest["contract"]["version"],
        "contract_inferred": bool(manifest["contract"].get("inferred", False)),
        "rows_in": manifest["counts"]["rows_in"],
        "validate_ms": durations.get("validate"),
        "trusted_ms": durations.get("trusted"),
        "delivery_ms": durations.get("delivery"),
        "delivered_at": datetime.fromisoformat(manifest["delivered_at"]),
    }
    rows = [
        {
            **common,
            "layer": item["layer"],
            "record_type": item.get("record_type"),
            "output_bucket": item["bucket"],
            "output_key": item["key"],
            "output_day": date.fromisoformat(item["day"]),
            "output_rows": item["rows"],
        }
        for item in manifest["outputs"]
    ]
    return pa.Table.from_pylist(rows, schema=LINEAGE_SCHEMA)

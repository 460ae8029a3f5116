"""Trusted: typed, de-duplicated, checked, enriched and scored records, one file per day.

The staged rows stream through in Arrow batches, so memory stays flat in the file's size:

1. Each batch is judged by its contract (types, null policy, rules). Rejected rows go to a
   quarantine spill per day with their reason codes; kept rows go to a trusted spill per day,
   and only their de-duplication key and outlier inputs stay in memory (a few bytes a row).
2. Over the whole file: which rows repeat an earlier key (the first row in the file wins), and
   the outlier fences of each group of kept rows.
3. Each day's spill is read back in large chunks, duplicates dropped, outliers flagged, bands,
   derived fields, the quality score and lineage added, and written as one Parquet file with
   large row groups.

Every input row ends in exactly one of three places, so `rows_in = trusted + quarantined +
duplicates` holds for every file and is checked on every run.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sluice.contracts import Contract
from sluice.memory import use_returning_pool
from sluice.stages import keys as keys_mod
from sluice.stages import rules
from sluice.stages.coerce import ARROW_TYPES
from sluice.stages.delivery import partial_summary
from sluice.stages.outliers import Fences, GroupCodes, fences_by_group, split_by_group
from sluice.stages.spill import DaySpill, split_by_day

ROW = "_row"
REASONS = "reason_codes"
FLAGS = "quality_flags"
SCORE = "data_quality_score"
OUTLIER = "is_outlier"
BATCH_ROWS = 1 << 17
ROW_GROUP_ROWS = 1 << 18
WORKERS = min(4, os.cpu_count() or 1)
PARQUET_COMPRESSION = "zstd"
_ORD = "__ordinal"
_PRESENT = "__present"


def _flag_column(i: int) -> str:
    return f"__flag{i}"


def _group_column(i: int) -> str:
    return f"__group{i}"


@dataclass(frozen=True)
class RunContext:
    """Lineage stamped onto every record this run writes."""

    source_file: str
    source_version: str
    pipeline_version: str
    processed_at: datetime


@dataclass(frozen=True)
class DayFile:
    path: Path
    rows: int
    # TRUSTED days only: the file's share of the day's summary (`delivery.partial_summary`)
    partial: pa.Table | None = None


@dataclass
class DayQuality:
    """What happened to one event day's rows of one file (DELIVERY's QUALITY records)."""

    trusted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    nulls: dict[str, int] = field(default_factory=dict)
    outliers: int = 0
    score_sum: float = 0.0
    score_min: float | None = None
    score_max: float | None = None

    @property
    def rows_in(self) -> int:
        return self.trusted + self.quarantined + self.duplicates

    def add_scores(self, scores: np.ndarray) -> None:
        if len(scores) == 0:
            return
        self.score_sum += float(scores.sum())
        low, high = float(scores.min()), float(scores.max())
        self.score_min = low if self.score_min is None else min(self.score_min, low)
        self.score_max = high if self.score_max is None else max(self.score_max, high)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_trusted": self.trusted,
            "rows_quarantined": self.quarantined,
            "duplicates": self.duplicates,
            "quarantined_by_reason": dict(sorted(self.reasons.items())),
            "null_counts": dict(sorted(self.nulls.items())),
            "outliers": self.outliers,
            "quality_score_mean": round(self.score_sum / self.trusted, 4) if self.trusted else None,
            "quality_score_min": self.score_min,
            "quality_score_max": self.score_max,
        }


@dataclass
class TrustedResult:
    trusted: dict[date, DayFile] = field(default_factory=dict)
    quarantined: dict[date, DayFile] = field(default_factory=dict)
    rows_in: int = 0
    rows_trusted: int = 0
    rows_quarantined: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    nulls: dict[str, int] = field(default_factory=dict)
    outliers: int = 0
    days: dict[date, DayQuality] = field(default_factory=dict)

    def day(self, day: date) -> DayQuality:
        return self.days.setdefault(day, DayQuality())

    def check_accounting(self) -> None:
        total = self.rows_trusted + self.rows_quarantined + self.duplicates
        if total != self.rows_in:
            raise AssertionError(
                f"row accounting broken: {self.rows_in} in, {self.rows_trusted} trusted + "
                f"{self.rows_quarantined} quarantined + {self.duplicates} duplicates = {total}"
            )
        per_day = sum(q.rows_in for q in self.days.values())
        if per_day != self.rows_in:
            raise AssertionError(
                f"row accounting broken: {per_day} rows over days, {self.rows_in} in"
            )

    def read(self, day: date, quarantine: bool = False) -> pa.Table:
        """One day's output as a table (for tests and tools; the pipeline uploads the file)."""
        return pq.read_table((self.quarantined if quarantine else self.trusted)[day].path)

    def counts(self) -> dict[str, int]:
        return {
            "rows_in": self.rows_in,
            "rows_trusted": self.rows_trusted,
            "rows_quarantined": self.rows_quarantined,
            "duplicates": self.duplicates,
        }


class _Growable:
    """A numpy array appended to batch by batch, sized up front when the row count is known."""

    def __init__(self, dtype: type[np.generic], capacity: int) -> None:
        self.data = np.empty(max(capacity, 1024), dtype=dtype)
        self.size = 0

    def append(self, values: np.ndarray) -> None:
        end = self.size + len(values)
        if end > len(self.data):
            grown = np.empty(max(end, 2 * len(self.data)), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : end] = values
        self.size = end

    def view(self) -> np.ndarray:
        return self.data[: self.size]


@dataclass
class _Prepared:
    """One batch after step 1's per-row work, waiting to be committed in file order."""

    kept: int = 0
    rejected: int = 0
    nulls: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    parts: list[tuple[date, pa.RecordBatch]] = field(default_factory=list)
    bad_parts: list[tuple[date, pa.RecordBatch]] = field(default_factory=list)


def _add_count(counter: dict[str, int], key: str, value: int) -> None:
    if value:
        counter[key] = counter.get(key, 0) + value


class _Transformer:
    """One file's pass through the stage; see the module docstring for the three steps."""

    def __init__(
        self, contract: Contract, ctx: RunContext, workdir: Path, expected_rows: int = 0
    ) -> None:
        self.contract = contract
        self.ctx = ctx
        self.workdir = workdir
        self.fallback_day = ctx.processed_at.date()
        self.flag_codes = rules.flag_codes(contract)
        self.schema = output_schema(contract)
        self.scored = [self.flag_codes.index(code) for code in rules.scored_flags(contract)]
        self.result = TrustedResult()
        self.lock = threading.Lock()
        self.kept_spill = DaySpill(workdir / "kept")
        self.bad_spill = DaySpill(workdir / "bad")
        pk = contract.primary_key
        self.int_key = (
            len(pk) == 1
            and contract.column(pk[0]).type == "int"
            and contract.column(pk[0]).nulls == "reject"
        )
        # The only per-row state held for the whole file: 8 bytes of key. (Outlier fences
        # read their inputs back from the spill once the keys are gone.)
        self.keys = _Growable(np.int64 if self.int_key else np.uint64, expected_rows)
        self.groups = [GroupCodes() for _ in contract.outliers]
        self.kept_rows = 0

    # ------------------------------------------------------------------ step 1: per batch

    def prepare(self, batch: pa.RecordBatch, first_row: int) -> _Prepared:
        """The batch judged and split by day; touches no shared state but the group codes."""
        n = batch.num_rows
        prepared = _Prepared()
        if n == 0:
            return prepared
        checked = rules.check_batch(batch, self.contract, self.ctx.processed_at)
        prepared.nulls = checked.nulls
        rejected = checked.rejected
        if rejected.any():
            self._quarantine(batch, checked, rejected, first_row, prepared)
        kept = ~rejected
        count = int(kept.sum())
        prepared.kept = count
        if count == 0:
            return prepared
        take = None if count == n else pa.array(np.flatnonzero(kept))

        def pick(values: pa.Array) -> pa.Array:
            return values if take is None else values.take(take)

        typed = {name: pick(values) for name, values in checked.typed.items()}
        columns: dict[str, pa.Array] = dict(typed)
        columns[_ORD] = pa.array(np.arange(count, dtype=np.int64))  # made absolute in commit
        columns[_PRESENT] = pa.array(checked.present[kept])
        for i, code in enumerate(self.flag_codes):
            mask = checked.flags.get(code)
            if mask is not None:
                columns[_flag_column(i)] = pa.array(mask[kept])
        for i, spec in enumerate(self.contract.outliers):
            with self.lock:
                codes = self.groups[i].encode([typed[g] for g in spec.by], count)
            columns[_group_column(i)] = pa.array(codes)
        prepared.keys = self._keys(typed)
        kept_batch = pa.RecordBatch.from_pydict(columns)
        days = typed[self.contract.event_date] if self.contract.event_date else pa.nulls(count)
        prepared.parts = list(split_by_day(kept_batch, days, self.fallback_day))
        return prepared

    def commit(self, prepared: _Prepared) -> None:
        """Record a prepared batch, in file order (keys and spills keep the file's order)."""
        for name, count in prepared.nulls.items():
            _add_count(self.result.nulls, name, count)
        for code, count in prepared.reasons.items():
            _add_count(self.result.reasons, code, count)
        self.result.rows_quarantined += prepared.rejected
        for day, part in prepared.bad_parts:
            self.bad_spill.append(day, part)
            quality = self.result.day(day)
            quality.quarantined += part.num_rows
            codes = pc.value_counts(pc.list_flatten(part.column(REASONS))).to_pylist()
            for item in codes:
                _add_count(quality.reasons, item["values"], item["counts"])
            for name in self.contract.names:
                if name in part.schema.names:
                    _add_count(quality.nulls, name, part.column(name).null_count)
        if not prepared.kept:
            return
        offset = pa.scalar(self.kept_rows, pa.int64())
        position = prepared.parts[0][1].schema.get_field_index(_ORD)
        for day, part in prepared.parts:
            ordinals = pc.add(part.column(position), offset)
            self.kept_spill.append(day, part.set_column(position, _ORD, ordinals))
        self.keys.append(prepared.keys)
        self.kept_rows += prepared.kept

    def _keys(self, typed: dict[str, pa.Array]) -> np.ndarray:
        pk = self.contract.primary_key
        if self.int_key:
            return np.asarray(typed[pk[0]].to_numpy(zero_copy_only=False), dtype=np.int64)
        names = list(pk) or self.contract.names
        return keys_mod.row_keys([typed[name] for name in names])

    def _quarantine(
        self,
        batch: pa.RecordBatch,
        checked: rules.Checked,
        rejected: np.ndarray,
        first_row: int,
        prepared: _Prepared,
    ) -> None:
        rows = np.flatnonzero(rejected)
        take = pa.array(rows)
        codes = [code for code, _ in checked.rejects]
        masks = [mask[rows] for _, mask in checked.rejects]
        prepared.reasons = {code: int(mask.sum()) for code, mask in zip(codes, masks, strict=True)}
        bad = pa.Table.from_batches([batch]).take(take)
        n = len(rows)
        extra = {
            ROW: pa.array(rows + first_row, pa.int64()),
            REASONS: rules.code_lists(codes, masks, n),
            "quarantined_timestamp": pa.repeat(
                pa.scalar(self.ctx.processed_at, pa.timestamp("us", tz="UTC")), n
            ),
            "source_file": pa.repeat(pa.scalar(self.ctx.source_file, pa.string()), n),
        }
        for name, values in extra.items():
            bad = bad.drop_columns([name]) if name in bad.column_names else bad
            bad = bad.append_column(name, values)
        event = self.contract.event_date
        days = checked.typed[event].take(take) if event else pa.nulls(n, pa.date32())
        prepared.rejected = n
        for batch_part in bad.combine_chunks().to_batches():
            prepared.bad_parts += split_by_day(batch_part, days, self.fallback_day)

    # ------------------------------------------------------------------ step 2: whole file

    def _whole_file(self, pool: ThreadPoolExecutor) -> tuple[np.ndarray, list[Fences]]:
        dropped = np.zeros(self.kept_rows, dtype=bool)
        dropped[keys_mod.later_copies(self.keys.view())] = True
        del self.keys
        self.result.duplicates = int(dropped.sum())
        found = []
        for i, spec in enumerate(self.contract.outliers):
            chunks: dict[int, list[np.ndarray]] = {}
            days = self.kept_spill.days()
            inputs = pool.map(functools.partial(self._outlier_inputs, i=i, dropped=dropped), days)
            for per_day in inputs:
                for code, part in per_day:
                    chunks.setdefault(code, []).append(part)
            found.append(fences_by_group(spec, chunks, len(self.groups[i].codes)))
        return dropped, found

    def _outlier_inputs(
        self, day: date, i: int, dropped: np.ndarray
    ) -> list[tuple[int, np.ndarray]]:
        """One day's kept, present values of outlier check `i`, by group."""
        spec = self.contract.outliers[i]
        columns = [spec.column, _group_column(i), _ORD]
        table = pa.Table.from_batches(self.kept_spill.batches(day)).select(columns)
        number = pc.cast(table[spec.column], pa.float64()).combine_chunks()
        values = np.asarray(number.to_numpy(zero_copy_only=False), np.float64)
        ordinals = table[_ORD].combine_chunks().to_numpy()
        keep = ~dropped[ordinals] & ~np.isnan(values)
        codes = table[_group_column(i)].combine_chunks().to_numpy()[keep]
        return list(split_by_group(values[keep], codes))

    # ------------------------------------------------------------------ step 3: per day

    def _enrich(
        self, day: date, chunk: pa.Table, dropped: np.ndarray, found: list[Fences]
    ) -> pa.Table:
        ordinals = chunk[_ORD].to_numpy()
        keep = ~dropped[ordinals]
        duplicates = len(keep) - int(keep.sum())
        if duplicates:
            chunk = chunk.filter(pa.array(keep))
        n = chunk.num_rows
        flags = [
            chunk[_flag_column(i)].to_numpy().astype(bool)
            if _flag_column(i) in chunk.column_names
            else np.zeros(n, dtype=bool)
            for i in range(len(self.flag_codes))
        ]
        outlier_any = np.zeros(n, dtype=bool)
        for i, spec in enumerate(self.contract.outliers):
            codes = chunk[_group_column(i)].to_numpy()
            flagged = found[i].flag(chunk[spec.column].combine_chunks(), codes)
            flags[self.flag_codes.index(spec.code)] = flagged
            outlier_any |= flagged
        flag_counts = {
            code: int(mask.sum()) for code, mask in zip(self.flag_codes, flags, strict=True)
        }
        failed = np.sum([flags[i] for i in self.scored], axis=0) if self.scored else 0
        score = rules.quality_score(
            chunk[_PRESENT].to_numpy(),
            np.asarray(failed),
            len(self.contract.columns),
            len(self.scored),
            self.contract.completeness_weight,
        )
        out: dict[str, pa.Array | pa.ChunkedArray] = {
            name: chunk[name] for name in self.contract.names
        }
        for band in self.contract.bands:
            out[band.name] = rules.band(band, chunk[band.column].combine_chunks())
        for item in self.contract.derived:
            out[item.name] = rules.derive(item, chunk[item.column].combine_chunks())
        if self.contract.outliers:
            out[OUTLIER] = pa.array(outlier_any)
        out[FLAGS] = rules.code_lists(self.flag_codes, flags, n)
        out[SCORE] = pa.array(score, pa.float64())
        with self.lock:  # days are enriched in parallel
            quality = self.result.day(day)
            quality.trusted += n
            quality.duplicates += duplicates
            quality.outliers += int(outlier_any.sum())
            quality.add_scores(score)
            for code, count in flag_counts.items():
                _add_count(self.result.flags, code, count)
                kind, _, column = code.partition(":")
                if kind in ("NULL", "FILLED"):
                    _add_count(quality.nulls, column, count)
            self.result.outliers += int(outlier_any.sum())
        ctx = self.ctx
        values = [ctx.processed_at, ctx.source_file, ctx.source_version, ctx.pipeline_version]
        for stamp, value in zip(STAMPS, [*values, "trusted"], strict=True):
            out[stamp.name] = pa.repeat(pa.scalar(value, stamp.type), n)
        return pa.table(out).cast(self.schema)

    def _write_day(
        self, kind: str, day: date, dropped: np.ndarray, found: list[Fences]
    ) -> tuple[str, date, DayFile | None]:
        path = self.workdir / "out" / f"{kind}-{day.isoformat()}.parquet"
        partials: list[pa.Table] = []
        if kind == "trusted":

            def enriched() -> Iterator[pa.Table]:
                # The summary share is taken from the rows on their way to the file.
                for chunk in self.kept_spill.chunks(day, ROW_GROUP_ROWS):
                    table = self._enrich(day, chunk, dropped, found)
                    if table.num_rows:
                        partials.append(partial_summary(table, self.contract))
                    yield table

            rows = _write_chunks(path, enriched(), self.contract)
        else:
            rows = _write_chunks(path, self.bad_spill.chunks(day, ROW_GROUP_ROWS))
        if not rows:
            path.unlink(missing_ok=True)
            return kind, day, None
        partial = pa.concat_tables(partials) if partials else None
        return kind, day, DayFile(path, rows, partial)

    def finish(self) -> TrustedResult:
        (self.workdir / "out").mkdir(parents=True, exist_ok=True)
        self.kept_spill.close()
        self.bad_spill.close()
        none = np.zeros(0, dtype=bool)
        # Days are independent, and Arrow and the Parquet writer release the GIL: use the cores.
        # Quarantined days need nothing from step 2, so they are written while it runs.
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            quarantine = [
                pool.submit(self._write_day, "quarantine", day, none, [])
                for day in self.bad_spill.days()
            ]
            dropped, found = self._whole_file(pool)
            trusted = [
                pool.submit(self._write_day, "trusted", day, dropped, found)
                for day in self.kept_spill.days()
            ]
            written = [job.result() for job in trusted + quarantine]
        for kind, day, item in written:
            if item is None:
                continue
            if kind == "trusted":
                self.result.trusted[day] = item
                self.result.rows_trusted += item.rows
            else:
                self.result.quarantined[day] = item
        self.result.check_accounting()
        return self.result


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


def parquet_options(contract: Contract | None, schema: pa.Schema) -> dict[str, Any]:
    """Encodings that suit each column: an integer primary key is delta-encoded (ids rise),
    measures are stored plain (nearly every value differs), the rest dictionary-encoded."""
    if contract is None:
        return {"compression": PARQUET_COMPRESSION}
    pk = set(contract.primary_key) if len(contract.primary_key) == 1 else set()
    delta = {c.name for c in contract.columns if c.name in pk and c.type == "int"}
    plain = delta | {
        c.name
        for c in contract.columns
        if c.type in ("float", "decimal", "timestamp") and c.name not in contract.group_by
    }
    return {
        "compression": PARQUET_COMPRESSION,
        "use_dictionary": [n for n in schema.names if n not in plain],
        "column_encoding": dict.fromkeys(sorted(delta), "DELTA_BINARY_PACKED"),
    }


def _write_chunks(path: Path, chunks: Iterator[pa.Table], contract: Contract | None = None) -> int:
    """Write tables to one Parquet file, one row group per chunk; the rows written."""
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        for chunk in chunks:
            if chunk.num_rows == 0:
                continue
            if writer is None:
                writer = pq.ParquetWriter(
                    path, chunk.schema, **parquet_options(contract, chunk.schema)
                )
            writer.write_table(chunk, row_group_size=max(chunk.num_rows, 1))
            rows += chunk.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


def transform_batches(
    batches: Iterable[pa.RecordBatch],
    contract: Contract,
    ctx: RunContext,
    workdir: Path,
    expected_rows: int = 0,
) -> TrustedResult:
    """Apply the contract to staged batches; outputs are Parquet files under `workdir`."""
    use_returning_pool()
    transformer = _Transformer(contract, ctx, workdir, expected_rows)
    try:
        # Batches are judged in parallel (Arrow kernels release the GIL) and committed in file
        # order; at most WORKERS + 1 are in flight, so memory stays bounded.
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            in_flight: deque[Future[_Prepared]] = deque()
            for batch in batches:
                first_row = transformer.result.rows_in + 1
                in_flight.append(pool.submit(transformer.prepare, batch, first_row))
                transformer.result.rows_in += batch.num_rows
                if len(in_flight) > WORKERS:
                    transformer.commit(in_flight.popleft().result())
            while in_flight:
                transformer.commit(in_flight.popleft().result())
        return transformer.finish()
    finally:
        transformer.kept_spill.close()
        transformer.bad_spill.close()


def transform_file(
    staged: Path, contract: Contract, ctx: RunContext, workdir: Path, batch_rows: int = BATCH_ROWS
) -> TrustedResult:
    """Stream a staged Parquet file through the stage."""
    source = pq.ParquetFile(staged)
    return transform_batches(
        source.iter_batches(batch_size=batch_rows),
        contract,
        ctx,
        workdir,
        source.metadata.num_rows,
    )


def transform(
    table: pa.Table,
    contract: Contract,
    ctx: RunContext,
    workdir: Path | None = None,
    batch_rows: int = BATCH_ROWS,
) -> TrustedResult:
    """`transform_batches` over an in-memory table (tests and small files)."""
    folder = workdir or Path(tempfile.mkdtemp(prefix="sluice-trusted-"))
    return transform_batches(table.to_batches(max_chunksize=batch_rows), contract, ctx, folder)

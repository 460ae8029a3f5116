"""Trusted: typed, de-duplicated, checked, enriched and scored records, one file per day.

The staged rows stream through in Arrow batches, one row group at a time, so memory stays flat
in the file's size (what grows with the file waits on local disk):

1. Each batch is judged by its contract (types, null policy, rules) and sorted by event day.
   Rejected rows, with their reason codes, go to a quarantine spill on local disk; kept rows go
   to a trusted spill, and their de-duplication keys to key partitions (`keys.KeyPartitions`).
2. Over the whole file: which rows repeat an earlier key (the first row in the file wins), one
   partition at a time, kept as a bit per row; and the outlier fences of each group of kept
   rows, from values read back from the spill and put aside per group (`outliers.GroupValues`).
3. The spilled days are read back in groups of about one batch (a big day alone, in large
   chunks): duplicates dropped, outliers flagged, bands, derived fields, the quality score and
   lineage added, and each day written as one Parquet file with large row groups.

Every input row ends in exactly one of three places, so `rows_in = trusted + quarantined +
duplicates` holds for every file and is checked on every run.
"""

from __future__ import annotations

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
from sluice.memory import release_freed, use_returning_pool
from sluice.stages import keys as keys_mod
from sluice.stages import rules
from sluice.stages.coerce import ARROW_TYPES
from sluice.stages.delivery import partial_summaries, partial_summary
from sluice.stages.outliers import (
    Fences,
    GroupCodes,
    GroupValues,
    fences_of_groups,
    split_by_group,
)
from sluice.stages.spill import DaySlices, DaySpill, by_day, day_of, runs

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

    @property
    def mean_quality_score(self) -> float | None:
        """The mean `data_quality_score` of the file's TRUSTED rows, rounded as each score is."""
        if not self.rows_trusted:
            return None
        return round(sum(q.score_sum for q in self.days.values()) / self.rows_trusted, 4)


@dataclass
class _Prepared:
    """One batch after step 1's per-row work, waiting to be committed in file order."""

    kept: int = 0
    rejected: int = 0
    nulls: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    kept_batch: pa.RecordBatch | None = None  # sorted by day
    kept_days: DaySlices = field(default_factory=list)
    bad_batch: pa.RecordBatch | None = None  # sorted by day
    bad_days: DaySlices = field(default_factory=list)
    # per quarantined day: reason code counts and null counts of the contract's columns
    bad_quality: list[tuple[dict[str, int], dict[str, int]]] = field(default_factory=list)


def _add_count(counter: dict[str, int], key: str, value: int) -> None:
    if value:
        counter[key] = counter.get(key, 0) + value


def _per_day(mask: np.ndarray, starts: np.ndarray) -> list[int]:
    """How many rows of each day (rows sorted by day, days starting at `starts`) are set."""
    if not len(mask):
        return []
    return [int(v) for v in np.add.reduceat(mask.astype(np.int64), starts)]


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
        self.write_schema = _write_schema(contract, output_schema(contract))
        self.scored = [self.flag_codes.index(code) for code in rules.scored_flags(contract)]
        self.result = TrustedResult()
        self.lock = threading.Lock()
        self.kept_spill = DaySpill(workdir / "kept.arrow")
        self.bad_spill = DaySpill(workdir / "bad.arrow")
        pk = contract.primary_key
        self.int_key = (
            len(pk) == 1
            and contract.column(pk[0]).type == "int"
            and contract.column(pk[0]).nulls == "reject"
        )
        # Each kept row's de-duplication key goes to a partition on disk as its batch is
        # committed (a small file's stay in memory); duplicates are found partition by partition.
        self.keys = keys_mod.KeyPartitions(
            workdir / "keys", expected_rows, np.int64 if self.int_key else np.uint64
        )
        self.groups = [GroupCodes() for _ in contract.outliers]
        self.kept_rows = 0

    # ------------------------------------------------------------------ step 1: per batch

    def _day_numbers(self, typed: dict[str, pa.Array], n: int) -> np.ndarray:
        """Each row's event day as days since 1970; the run's day where it has none."""
        fallback = pa.scalar(self.fallback_day, pa.date32())
        event = self.contract.event_date
        if not event:
            return np.full(n, fallback.value, dtype=np.int32)
        days = pc.fill_null(pc.cast(typed[event], pa.date32()), fallback)
        return np.asarray(days.view(pa.int32()).to_numpy(zero_copy_only=False), np.int32)

    def prepare(self, batch: pa.RecordBatch, first_row: int) -> _Prepared:
        """The batch judged and sorted by day; touches no shared state but the group codes."""
        n = batch.num_rows
        prepared = _Prepared()
        if n == 0:
            return prepared
        checked = rules.check_batch(batch, self.contract, self.ctx.processed_at)
        prepared.nulls = checked.nulls
        numbers = self._day_numbers(checked.typed, n)
        rejected = checked.rejected
        kept_rows: np.ndarray | None = None  # None: every row is kept
        if rejected.any():
            self._quarantine(batch, checked, rejected, numbers, first_row, prepared)
            kept_rows = np.flatnonzero(~rejected)
            numbers = numbers[kept_rows]
        count = n - prepared.rejected
        prepared.kept = count
        if count == 0:
            return prepared
        order, days = by_day(numbers)
        # One take puts the kept rows in day order; `order` is each row's place among the
        # batch's kept rows in file order (made file-wide in commit).
        rows = kept_rows if order is None else order if kept_rows is None else kept_rows[order]
        take = None if rows is None else pa.array(rows)

        def pick(values: np.ndarray) -> np.ndarray:
            return values if rows is None else values[rows]

        columns: dict[str, pa.Array] = {
            name: values if take is None else values.take(take)
            for name, values in checked.typed.items()
        }
        columns[_ORD] = pa.array(np.arange(count) if order is None else order, pa.int64())
        columns[_PRESENT] = pa.array(pick(checked.present))
        for i, code in enumerate(self.flag_codes):
            mask = checked.flags.get(code)
            if mask is not None:
                columns[_flag_column(i)] = pa.array(pick(mask))
        for i, spec in enumerate(self.contract.outliers):
            with self.lock:
                codes = self.groups[i].encode([columns[g] for g in spec.by], count)
            columns[_group_column(i)] = pa.array(codes)
        prepared.keys = self._keys(checked.typed, kept_rows)
        prepared.kept_batch = pa.RecordBatch.from_pydict(columns)
        prepared.kept_days = [(day_of(number), start, size) for number, start, size in days]
        return prepared

    def commit(self, prepared: _Prepared) -> None:
        """Record a prepared batch, in file order (keys and spills keep the file's order)."""
        for name, count in prepared.nulls.items():
            _add_count(self.result.nulls, name, count)
        for code, count in prepared.reasons.items():
            _add_count(self.result.reasons, code, count)
        self.result.rows_quarantined += prepared.rejected
        if prepared.bad_batch is not None:
            self.bad_spill.append(prepared.bad_batch, prepared.bad_days)
            for (day, _, size), (reasons, nulls) in zip(
                prepared.bad_days, prepared.bad_quality, strict=True
            ):
                quality = self.result.day(day)
                quality.quarantined += size
                for code, count in reasons.items():
                    _add_count(quality.reasons, code, count)
                for name, count in nulls.items():
                    _add_count(quality.nulls, name, count)
        if prepared.kept_batch is None:
            return
        batch = prepared.kept_batch
        position = batch.schema.get_field_index(_ORD)
        ordinals = pc.add(batch.column(position), pa.scalar(self.kept_rows, pa.int64()))
        self.kept_spill.append(batch.set_column(position, _ORD, ordinals), prepared.kept_days)
        self.keys.append(prepared.keys)
        self.kept_rows += prepared.kept

    def _keys(self, typed: dict[str, pa.Array], rows: np.ndarray | None) -> np.ndarray:
        """The de-duplication key of each kept row (`rows`; None for all), in file order."""
        pk = self.contract.primary_key
        if self.int_key:
            ids = pc.fill_null(typed[pk[0]], 0)  # rejected rows' nulls: never picked
            keys = np.asarray(ids.to_numpy(zero_copy_only=False), dtype=np.int64)
        else:
            keys = keys_mod.row_keys([typed[name] for name in list(pk) or self.contract.names])
        return keys if rows is None else keys[rows]

    def _quarantine(
        self,
        batch: pa.RecordBatch,
        checked: rules.Checked,
        rejected: np.ndarray,
        numbers: np.ndarray,
        first_row: int,
        prepared: _Prepared,
    ) -> None:
        rows = np.flatnonzero(rejected)
        order, days = by_day(numbers[rows])
        if order is not None:
            rows = rows[order]
        n = len(rows)
        prepared.rejected = n
        codes = [code for code, _ in checked.rejects]
        masks = [mask[rows] for _, mask in checked.rejects]
        prepared.reasons = {code: int(mask.sum()) for code, mask in zip(codes, masks, strict=True)}
        bad = batch.take(pa.array(rows))
        extra = {
            ROW: pa.array(rows + first_row, pa.int64()),
            REASONS: rules.code_lists(codes, masks, n),
            "quarantined_timestamp": pa.repeat(
                pa.scalar(self.ctx.processed_at, pa.timestamp("us", tz="UTC")), n
            ),
            "source_file": pa.repeat(pa.scalar(self.ctx.source_file, pa.string()), n),
        }
        columns = {name: bad.column(name) for name in bad.schema.names if name not in extra}
        prepared.bad_batch = pa.RecordBatch.from_pydict({**columns, **extra})
        prepared.bad_days = [(day_of(number), start, size) for number, start, size in days]
        starts = np.array([start for _, start, _ in days])
        by_code = {code: _per_day(mask, starts) for code, mask in zip(codes, masks, strict=True)}
        nulls = {
            name: _per_day(
                np.asarray(columns[name].is_null().to_numpy(zero_copy_only=False)), starts
            )
            for name in self.contract.names
            if name in columns and columns[name].null_count
        }
        prepared.bad_quality = [
            (
                {code: counts[i] for code, counts in by_code.items()},
                {name: counts[i] for name, counts in nulls.items()},
            )
            for i in range(len(days))
        ]

    # ------------------------------------------------------------------ step 2: whole file

    def _duplicates(self) -> keys_mod.RowMarks:
        """Per kept row (by ordinal), whether an earlier row had its key: one bit a row."""
        dropped = self.keys.later_copies()
        self.result.duplicates = dropped.count
        return dropped

    def _fences(self, pool: ThreadPoolExecutor, dropped: keys_mod.RowMarks) -> list[Fences]:
        """Per outlier check, its groups' fences. The kept, present values are read back from
        the spill in runs (a few at once on the pool), put aside per group on local disk, then
        each group's fences computed from its values alone."""
        runs = self.kept_spill.groups(list(range(len(self.kept_spill.sizes))), BATCH_ROWS)
        found = []
        for i, spec in enumerate(self.contract.outliers):
            values = GroupValues(self.workdir / f"outlier-values-{i}.bin")
            reads: deque[Future[list[tuple[int, np.ndarray]]]] = deque()
            for run in [*runs, None]:
                if run is not None:
                    reads.append(pool.submit(self._outlier_inputs, run, i, dropped))
                while reads and (run is None or len(reads) > WORKERS):
                    for code, part in reads.popleft().result():
                        values.append(code, part)
            values.close()
            found.append(fences_of_groups(spec, values, len(self.groups[i].codes), pool.map))
            values.path.unlink()
        return found

    def _outlier_inputs(
        self, run: list[int], i: int, dropped: keys_mod.RowMarks
    ) -> list[tuple[int, np.ndarray]]:
        """Some spilled record batches' kept, present values of outlier check `i`, by group."""
        spec = self.contract.outliers[i]
        table = self.kept_spill.read_batches(run, [spec.column, _group_column(i), _ORD])
        number = pc.cast(table[spec.column], pa.float64())
        values = np.asarray(number.to_numpy(zero_copy_only=False), np.float64)
        keep = ~dropped[table[_ORD].to_numpy()] & ~np.isnan(values)
        codes = table[_group_column(i)].to_numpy()[keep]
        return list(split_by_group(values[keep], codes))

    # ------------------------------------------------------------------ step 3: per day

    def _enrich(
        self,
        days: list[date],
        counts: list[int],
        chunk: pa.Table,
        dropped: keys_mod.RowMarks,
        found: list[Fences],
    ) -> tuple[pa.Table, np.ndarray]:
        """Rows of `days` (in day order, `counts` rows each) de-duplicated, flagged, scored and
        stamped: the table to write, and how many of its rows belong to each day."""
        spilled = np.asarray(counts, dtype=np.int64)
        day_ids = np.repeat(np.arange(len(days)), spilled)
        keep = ~dropped[chunk[_ORD].to_numpy()]
        if not keep.all():
            chunk = chunk.filter(pa.array(keep))
            day_ids = day_ids[keep]
        kept = np.bincount(day_ids, minlength=len(days))
        n = chunk.num_rows
        flags = [
            np.asarray(chunk[_flag_column(i)].to_numpy(), dtype=bool)
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
        ctx = self.ctx
        values = [ctx.processed_at, ctx.source_file, ctx.source_version, ctx.pipeline_version]
        for stamp, value in zip(STAMPS, [*values, "trusted"], strict=True):
            out[stamp.name] = _constant(value, stamp.type, n)
        self._record(days, day_ids, spilled - kept, kept, flags, outlier_any, score)
        return pa.table(out).cast(self.write_schema), kept

    def _record(
        self,
        days: list[date],
        day_ids: np.ndarray,
        duplicates: np.ndarray,
        kept: np.ndarray,
        flags: list[np.ndarray],
        outlier_any: np.ndarray,
        score: np.ndarray,
    ) -> None:
        """Add what happened to each day's rows to the run's and the days' quality."""
        bounds = np.concatenate(([0], np.cumsum(kept)))
        per_flag = [np.bincount(day_ids, weights=mask, minlength=len(days)) for mask in flags]
        outliers = np.bincount(day_ids, weights=outlier_any, minlength=len(days))
        with self.lock:  # days are enriched in parallel
            for d, day in enumerate(days):
                quality = self.result.day(day)
                quality.trusted += int(kept[d])
                quality.duplicates += int(duplicates[d])
                quality.outliers += int(outliers[d])
                quality.add_scores(score[bounds[d] : bounds[d + 1]])
                for code, counts in zip(self.flag_codes, per_flag, strict=True):
                    kind, _, column = code.partition(":")
                    if kind in ("NULL", "FILLED"):
                        _add_count(quality.nulls, column, int(counts[d]))
            for code, counts in zip(self.flag_codes, per_flag, strict=True):
                _add_count(self.result.flags, code, int(counts.sum()))
            self.result.outliers += int(outlier_any.sum())

    def _path(self, kind: str, day: date) -> Path:
        return self.workdir / "out" / f"{kind}-{day.isoformat()}.parquet"

    def _write_trusted(
        self, days: list[date], dropped: keys_mod.RowMarks, found: list[Fences]
    ) -> list[tuple[str, date, DayFile]]:
        """Write the TRUSTED file of each of `days` (a few small days, or one big one)."""
        spill = self.kept_spill
        options = parquet_options(self.contract, self.write_schema)
        if len(days) == 1 and spill.rows[days[0]] > ROW_GROUP_ROWS:
            day = days[0]
            partials: list[pa.Table] = []

            def enriched() -> Iterator[pa.Table]:
                for chunk in spill.chunks(day, ROW_GROUP_ROWS):
                    table, _ = self._enrich(days, [chunk.num_rows], chunk, dropped, found)
                    if table.num_rows:
                        partials.append(partial_summary(table, self.contract))
                    yield table

            path = self._path("trusted", day)
            rows = _write_chunks(path, enriched(), options)
            if not rows:
                return []
            return [("trusted", day, DayFile(path, rows, pa.concat_tables(partials)))]
        counts = [spill.rows[day] for day in days]
        table, kept = self._enrich(days, counts, spill.read(days), dropped, found)
        day_ids = np.repeat(np.arange(len(days)), kept)
        summaries = partial_summaries(table, self.contract, day_ids, len(days))
        written = []
        start = 0
        for d, day in enumerate(days):
            rows = int(kept[d])
            if rows:
                path = self._path("trusted", day)
                _write_table(path, table.slice(start, rows), options)
                written.append(("trusted", day, DayFile(path, rows, summaries[d])))
            start += rows
        return written

    def _write_quarantine(self, days: list[date]) -> list[tuple[str, date, DayFile]]:
        """Write the quarantine file of each of `days` (a few small days, or one big one)."""
        spill = self.bad_spill
        options = parquet_options(None, None)
        if len(days) == 1 and spill.rows[days[0]] > ROW_GROUP_ROWS:
            path = self._path("quarantine", days[0])
            rows = _write_chunks(path, spill.chunks(days[0], ROW_GROUP_ROWS), options)
            return [("quarantine", days[0], DayFile(path, rows))]
        table = spill.read(days)
        written = []
        start = 0
        for day in days:
            rows = spill.rows[day]
            path = self._path("quarantine", day)
            _write_table(path, table.slice(start, rows), options)
            written.append(("quarantine", day, DayFile(path, rows)))
            start += rows
        return written

    def finish(self) -> TrustedResult:
        (self.workdir / "out").mkdir(parents=True, exist_ok=True)
        self.kept_spill.close()
        self.bad_spill.close()
        # Days are independent, and Arrow and the Parquet writer release the GIL: use the cores.
        # Quarantined days need nothing from step 2: their own thread writes them meanwhile,
        # filling the cores whenever step 2 leaves one idle.
        with (
            ThreadPoolExecutor(max_workers=WORKERS) as pool,
            ThreadPoolExecutor(max_workers=1) as background,
        ):
            quarantine = [
                background.submit(self._write_quarantine, days) for days in _tasks(self.bad_spill)
            ]
            # Each phase starts from what the last one left, not from its peak.
            release_freed()
            dropped = self._duplicates()
            release_freed()
            found = self._fences(pool, dropped)
            release_freed()
            trusted = [
                pool.submit(self._write_trusted, days, dropped, found)
                for days in _tasks(self.kept_spill)
            ]
            written = [item for job in trusted + quarantine for item in job.result()]
        for kind, day, item in written:
            if kind == "trusted":
                self.result.trusted[day] = item
                self.result.rows_trusted += item.rows
            else:
                self.result.quarantined[day] = item
        self.result.check_accounting()
        return self.result


def _tasks(spill: DaySpill) -> list[list[date]]:
    """The spill's days in groups of about BATCH_ROWS rows, enriched and written together
    (per-call costs are paid once a group, not once a day); a bigger day is a group alone."""
    return runs(spill.days(), spill.rows.__getitem__, BATCH_ROWS, alone=ROW_GROUP_ROWS)


def _constant(value: Any, arrow_type: pa.DataType, n: int) -> pa.Array:
    """`n` copies of `value`; text as a one-entry dictionary, which Parquet stores as is."""
    if pa.types.is_string(arrow_type):
        return pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32)), pa.array([value], pa.string())
        )
    return pa.repeat(pa.scalar(value, arrow_type), n)


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


def _write_schema(contract: Contract, schema: pa.Schema) -> pa.Schema:
    """`schema` as the rows are handed to the Parquet writer: bands and lineage text as
    dictionaries, which the writer stores without hashing every value (readers see text)."""
    dictionary = pa.dictionary(pa.int32(), pa.string())
    coded = {band.name for band in contract.bands} | {
        stamp.name for stamp in STAMPS if pa.types.is_string(stamp.type)
    }
    return pa.schema([pa.field(f.name, dictionary) if f.name in coded else f for f in schema])


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


def _write_table(path: Path, table: pa.Table, options: dict[str, Any]) -> None:
    """One Parquet file, one row group."""
    pq.write_table(table, path, row_group_size=max(table.num_rows, 1), **options)


def _write_chunks(path: Path, chunks: Iterator[pa.Table], options: dict[str, Any]) -> int:
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
        transformer.keys.close()


def transform_file(
    staged: Path, contract: Contract, ctx: RunContext, workdir: Path, batch_rows: int = BATCH_ROWS
) -> TrustedResult:
    """Stream a staged Parquet file through the stage, one row group at a time: a reader over
    the whole file keeps what it has decoded of the row groups it has passed (its resident
    memory grew with the file, ~3 MB a 128k-row batch), a reader per row group frees it."""
    use_returning_pool()
    source = pq.ParquetFile(staged)

    def batch_size(index: int) -> int:
        # Validate's row groups are a little over BATCH_ROWS: one batch each, not one and a tail.
        rows = source.metadata.row_group(index).num_rows
        return rows if rows <= batch_rows * 5 // 4 else batch_rows

    batches = (
        batch
        for index in range(source.num_row_groups)
        for batch in source.iter_batches(batch_size=batch_size(index), row_groups=[index])
    )
    return transform_batches(batches, contract, ctx, workdir, source.metadata.num_rows)


def transform(
    table: pa.Table,
    contract: Contract,
    ctx: RunContext,
    workdir: Path | None = None,
    batch_rows: int = BATCH_ROWS,
) -> TrustedResult:
    """`transform_batches` over an in-memory table (tests and small files)."""
    folder = workdir or Path(tempfile.mkdtemp(prefix="sluice-trusted-"))
    batches = table.to_batches(max_chunksize=batch_rows)
    return transform_batches(batches, contract, ctx, folder, table.num_rows)

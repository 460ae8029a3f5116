"""Step 1 of Trusted, per batch: the rows judged by their contract and sorted by event day."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.contracts import Contract
from sluice.stages import keys as keys_mod
from sluice.stages import rules
from sluice.stages.outliers import GroupCodes
from sluice.stages.spill import DaySlices, by_day, day_of
from sluice.stages.trusted.arrays import per_day
from sluice.stages.trusted.results import RunContext
from sluice.stages.trusted.schema import ORD, PRESENT, REASONS, ROW, flag_column, group_column


@dataclass
class Prepared:
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


class BatchJudge:
    """Step 1's per-row work on one file's batches, several at once (on the engine's threads)."""

    def __init__(self, contract: Contract, ctx: RunContext, flag_codes: list[str]) -> None:
        self.contract = contract
        self.ctx = ctx
        self.fallback_day = ctx.processed_at.date()
        self.flag_codes = flag_codes
        self.lock = threading.Lock()
        pk = contract.primary_key
        self.int_key = (
            len(pk) == 1
            and contract.column(pk[0]).type == "int"
            and contract.column(pk[0]).nulls == "reject"
        )
        self.groups = [GroupCodes() for _ in contract.outliers]

    def _day_numbers(self, typed: dict[str, pa.Array], n: int) -> np.ndarray:
        """Each row's event day as days since 1970; the run's day where it has none."""
        fallback = pa.scalar(self.fallback_day, pa.date32())
        event = self.contract.event_date
        if not event:
            return np.full(n, fallback.value, dtype=np.int32)
        days = pc.fill_null(pc.cast(typed[event], pa.date32()), fallback)
        return np.asarray(days.view(pa.int32()).to_numpy(zero_copy_only=False), np.int32)

    def prepare(self, batch: pa.RecordBatch, first_row: int) -> Prepared:
        """The batch judged and sorted by day; touches no shared state but the group codes."""
        n = batch.num_rows
        prepared = Prepared()
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
        columns[ORD] = pa.array(np.arange(count) if order is None else order, pa.int64())
        columns[PRESENT] = pa.array(pick(checked.present))
        for i, code in enumerate(self.flag_codes):
            mask = checked.flags.get(code)
            if mask is not None:
                columns[flag_column(i)] = pa.array(pick(mask))
        for i, spec in enumerate(self.contract.outliers):
            with self.lock:
                codes = self.groups[i].encode([columns[g] for g in spec.by], count)
            columns[group_column(i)] = pa.array(codes)
        prepared.keys = self._keys(checked.typed, kept_rows)
        prepared.kept_batch = pa.RecordBatch.from_pydict(columns)
        prepared.kept_days = [(day_of(number), start, size) for number, start, size in days]
        return prepared

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
        prepared: Prepared,
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
        by_code = {code: per_day(mask, starts) for code, mask in zip(codes, masks, strict=True)}
        nulls = {
            name: per_day(
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

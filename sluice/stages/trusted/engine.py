"""Trusted's engine: one file's pass through the stage's three steps (see the package
docstring), with the spills, the keys, the outlier fences, the threads and the files."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.contracts import Contract
from sluice.memory import release_freed
from sluice.stages import keys as keys_mod
from sluice.stages import rules
from sluice.stages.delivery import partial_summaries, partial_summary
from sluice.stages.outliers import Fences, GroupValues, fences_of_groups, split_by_group
from sluice.stages.spill import DaySpill, runs
from sluice.stages.trusted.arrays import add_count
from sluice.stages.trusted.enrich import Enricher
from sluice.stages.trusted.judge import BatchJudge, Prepared
from sluice.stages.trusted.results import DayFile, RunContext, TrustedResult
from sluice.stages.trusted.schema import ORD, group_column
from sluice.stages.trusted.writers import parquet_options, write_chunks, write_table

BATCH_ROWS = 1 << 17
ROW_GROUP_ROWS = 1 << 18
WORKERS = min(4, os.cpu_count() or 1)


class Transformer:
    """One file's pass through the stage; see the package docstring for the three steps."""

    def __init__(
        self, contract: Contract, ctx: RunContext, workdir: Path, expected_rows: int = 0
    ) -> None:
        self.contract = contract
        self.workdir = workdir
        flag_codes = rules.flag_codes(contract)
        self.result = TrustedResult()
        # Step 1's per-row work, and step 3's
        self.judge = BatchJudge(contract, ctx, flag_codes)
        self.enricher = Enricher(contract, ctx, flag_codes, self.result)
        self.kept_spill = DaySpill(workdir / "kept.arrow")
        self.bad_spill = DaySpill(workdir / "bad.arrow")
        # Each kept row's de-duplication key goes to a partition on disk as its batch is
        # committed (a small file's stay in memory); duplicates are found partition by partition.
        self.keys = keys_mod.KeyPartitions(
            workdir / "keys", expected_rows, np.int64 if self.judge.int_key else np.uint64
        )
        self.kept_rows = 0

    # ------------------------------------------------------------------ step 1: per batch

    def commit(self, prepared: Prepared) -> None:
        """Record a prepared batch, in file order (keys and spills keep the file's order)."""
        for name, count in prepared.nulls.items():
            add_count(self.result.nulls, name, count)
        for code, count in prepared.reasons.items():
            add_count(self.result.reasons, code, count)
        self.result.rows_quarantined += prepared.rejected
        if prepared.bad_batch is not None:
            self.bad_spill.append(prepared.bad_batch, prepared.bad_days)
            for (day, _, size), (reasons, nulls) in zip(
                prepared.bad_days, prepared.bad_quality, strict=True
            ):
                quality = self.result.day(day)
                quality.quarantined += size
                for code, count in reasons.items():
                    add_count(quality.reasons, code, count)
                for name, count in nulls.items():
                    add_count(quality.nulls, name, count)
        if prepared.kept_batch is None:
            return
        batch = prepared.kept_batch
        position = batch.schema.get_field_index(ORD)
        ordinals = pc.add(batch.column(position), pa.scalar(self.kept_rows, pa.int64()))
        self.kept_spill.append(batch.set_column(position, ORD, ordinals), prepared.kept_days)
        self.keys.append(prepared.keys)
        self.kept_rows += prepared.kept

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
            found.append(fences_of_groups(spec, values, len(self.judge.groups[i].codes), pool.map))
            values.path.unlink()
        return found

    def _outlier_inputs(
        self, run: list[int], i: int, dropped: keys_mod.RowMarks
    ) -> list[tuple[int, np.ndarray]]:
        """Some spilled record batches' kept, present values of outlier check `i`, by group."""
        spec = self.contract.outliers[i]
        table = self.kept_spill.read_batches(run, [spec.column, group_column(i), ORD])
        number = pc.cast(table[spec.column], pa.float64())
        values = np.asarray(number.to_numpy(zero_copy_only=False), np.float64)
        keep = ~dropped[table[ORD].to_numpy()] & ~np.isnan(values)
        codes = table[group_column(i)].to_numpy()[keep]
        return list(split_by_group(values[keep], codes))

    # ------------------------------------------------------------------ step 3: per day

    def _path(self, kind: str, day: date) -> Path:
        return self.workdir / "out" / f"{kind}-{day.isoformat()}.parquet"

    def _write_trusted(
        self, days: list[date], dropped: keys_mod.RowMarks, found: list[Fences]
    ) -> list[tuple[str, date, DayFile]]:
        """Write the TRUSTED file of each of `days` (a few small days, or one big one)."""
        spill = self.kept_spill
        options = parquet_options(self.contract, self.enricher.write_schema)
        if len(days) == 1 and spill.rows[days[0]] > ROW_GROUP_ROWS:
            day = days[0]
            partials: list[pa.Table] = []

            def enriched() -> Iterator[pa.Table]:
                for chunk in spill.chunks(day, ROW_GROUP_ROWS):
                    table, _ = self.enricher.enrich(days, [chunk.num_rows], chunk, dropped, found)
                    if table.num_rows:
                        partials.append(partial_summary(table, self.contract))
                    yield table

            path = self._path("trusted", day)
            rows = write_chunks(path, enriched(), options)
            if not rows:
                return []
            return [("trusted", day, DayFile(path, rows, pa.concat_tables(partials)))]
        counts = [spill.rows[day] for day in days]
        table, kept = self.enricher.enrich(days, counts, spill.read(days), dropped, found)
        day_ids = np.repeat(np.arange(len(days)), kept)
        summaries = partial_summaries(table, self.contract, day_ids, len(days))
        written = []
        start = 0
        for d, day in enumerate(days):
            rows = int(kept[d])
            if rows:
                path = self._path("trusted", day)
                write_table(path, table.slice(start, rows), options)
                written.append(("trusted", day, DayFile(path, rows, summaries[d])))
            start += rows
        return written

    def _write_quarantine(self, days: list[date]) -> list[tuple[str, date, DayFile]]:
        """Write the quarantine file of each of `days` (a few small days, or one big one)."""
        spill = self.bad_spill
        options = parquet_options(None, None)
        if len(days) == 1 and spill.rows[days[0]] > ROW_GROUP_ROWS:
            path = self._path("quarantine", days[0])
            rows = write_chunks(path, spill.chunks(days[0], ROW_GROUP_ROWS), options)
            return [("quarantine", days[0], DayFile(path, rows))]
        table = spill.read(days)
        written = []
        start = 0
        for day in days:
            rows = spill.rows[day]
            path = self._path("quarantine", day)
            write_table(path, table.slice(start, rows), options)
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
                background.submit(self._write_quarantine, days) for days in tasks(self.bad_spill)
            ]
            # Each phase starts from what the last one left, not from its peak.
            release_freed()
            dropped = self._duplicates()
            release_freed()
            found = self._fences(pool, dropped)
            release_freed()
            trusted = [
                pool.submit(self._write_trusted, days, dropped, found)
                for days in tasks(self.kept_spill)
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


def tasks(spill: DaySpill) -> list[list[date]]:
    """The spill's days in groups of about BATCH_ROWS rows, enriched and written together
    (per-call costs are paid once a group, not once a day); a bigger day is a group alone."""
    return runs(spill.days(), spill.rows.__getitem__, BATCH_ROWS, alone=ROW_GROUP_ROWS)

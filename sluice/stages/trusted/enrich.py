"""Step 3 of Trusted, per group of days: the kept rows de-duplicated, flagged, scored and
stamped, and what happened to them added to the run's and the days' quality."""

from __future__ import annotations

import threading
from datetime import date

import numpy as np
import pyarrow as pa

from sluice.contracts import Contract
from sluice.reasons import RowCode
from sluice.stages import keys as keys_mod
from sluice.stages import rules
from sluice.stages.outliers import Fences
from sluice.stages.trusted.arrays import add_count, constant
from sluice.stages.trusted.results import RunContext, TrustedResult
from sluice.stages.trusted.schema import (
    FLAGS,
    ORD,
    OUTLIER,
    PRESENT,
    SCORE,
    STAMPS,
    flag_column,
    group_column,
    output_schema,
    write_schema,
)


class Enricher:
    """Turns spilled rows into TRUSTED rows; several groups of days at once, on threads."""

    def __init__(
        self, contract: Contract, ctx: RunContext, flag_codes: list[str], result: TrustedResult
    ) -> None:
        self.contract = contract
        self.ctx = ctx
        self.flag_codes = flag_codes
        self.write_schema = write_schema(contract, output_schema(contract))
        self.scored = [self.flag_codes.index(code) for code in rules.scored_flags(contract)]
        self.result = result
        self.lock = threading.Lock()

    def enrich(
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
        keep = ~dropped[chunk[ORD].to_numpy()]
        if not keep.all():
            chunk = chunk.filter(pa.array(keep))
            day_ids = day_ids[keep]
        kept = np.bincount(day_ids, minlength=len(days))
        n = chunk.num_rows
        flags = [
            np.asarray(chunk[flag_column(i)].to_numpy(), dtype=bool)
            if flag_column(i) in chunk.column_names
            else np.zeros(n, dtype=bool)
            for i in range(len(self.flag_codes))
        ]
        outlier_any = np.zeros(n, dtype=bool)
        for i, spec in enumerate(self.contract.outliers):
            codes = chunk[group_column(i)].to_numpy()
            flagged = found[i].flag(chunk[spec.column].combine_chunks(), codes)
            flags[self.flag_codes.index(spec.code)] = flagged
            outlier_any |= flagged
        failed = np.sum([flags[i] for i in self.scored], axis=0) if self.scored else 0
        score = rules.quality_score(
            chunk[PRESENT].to_numpy(),
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
            out[stamp.name] = constant(value, stamp.type, n)
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
                    if kind in (RowCode.NULL, RowCode.FILLED):
                        add_count(quality.nulls, column, int(counts[d]))
            for code, counts in zip(self.flag_codes, per_flag, strict=True):
                add_count(self.result.flags, code, int(counts.sum()))
            self.result.outliers += int(outlier_any.sum())

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

The modules, in the order the data meets them: `judge` (step 1, per batch), `engine` (one file's
pass: the spills, keys, outlier fences, threads and files), `enrich` (step 3's rows), `schema`
(the output's columns), `writers` (the Parquet policy), `results` (what the stage hands back),
`arrays` (small helpers). This module runs the stage over a file, a table or batches.
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sluice.contracts import Contract
from sluice.memory import use_returning_pool
from sluice.stages.trusted.engine import BATCH_ROWS, WORKERS, Transformer
from sluice.stages.trusted.judge import Prepared
from sluice.stages.trusted.results import DayFile, DayQuality, RunContext, TrustedResult
from sluice.stages.trusted.schema import (
    FLAGS,
    OUTLIER,
    REASONS,
    ROW,
    SCORE,
    STAMPS,
    output_schema,
)
from sluice.stages.trusted.writers import PARQUET_COMPRESSION, parquet_options

__all__ = [
    "BATCH_ROWS",
    "FLAGS",
    "OUTLIER",
    "PARQUET_COMPRESSION",
    "REASONS",
    "ROW",
    "SCORE",
    "STAMPS",
    "WORKERS",
    "DayFile",
    "DayQuality",
    "RunContext",
    "TrustedResult",
    "output_schema",
    "parquet_options",
    "transform",
    "transform_batches",
    "transform_file",
]


def transform_batches(
    batches: Iterable[pa.RecordBatch],
    contract: Contract,
    ctx: RunContext,
    workdir: Path,
    expected_rows: int = 0,
) -> TrustedResult:
    """Apply the contract to staged batches; outputs are Parquet files under `workdir`."""
    use_returning_pool()
    transformer = Transformer(contract, ctx, workdir, expected_rows)
    try:
        # Batches are judged in parallel (Arrow kernels release the GIL) and committed in file
        # order; at most WORKERS + 1 are in flight, so memory stays bounded.
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            in_flight: deque[Future[Prepared]] = deque()
            for batch in batches:
                first_row = transformer.result.rows_in + 1
                in_flight.append(pool.submit(transformer.judge.prepare, batch, first_row))
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

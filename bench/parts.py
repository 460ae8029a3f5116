"""What the reading and writing Validate+Trusted must do cost by themselves, next to the floor.

    python -m bench.parts [--rows 1m] [--repeat 3]

Each part runs on the same generated CSV in this one process, best of `--repeat` runs:

- floor: `pyarrow.csv.read_csv` + one `write_table` (zstd), as in `bench.run`
- Validate's read: Arrow's streaming CSV reader, every column as text (`formats.open_file`)
- staged hand-over: Validate writing the staged Parquet file, Trusted reading it back
- TRUSTED files: the trusted rows Sluice produced, written as one file per day (its options)
- QUARANTINE files: the quarantined rows, one file per day
- sluice: the whole Validate+Trusted (`bench.impls.sluice`)

The parts are what the design requires before any typing, rule, duplicate, outlier or
enrichment work: their sum over the floor is the least `sluice / floor` could be.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench import impls
from bench.generate import generate, parse_rows
from bench.run import DATA
from sluice.config import CONTRACTS_DIR
from sluice.contracts import find_contract
from sluice.edges.validate import write_staged
from sluice.formats import open_file
from sluice.lake import day_of_key
from sluice.stages import trusted
from sluice.stages.trusted.schema import write_schema as trusted_write_schema
from sluice.stages.trusted.writers import write_table


def best(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def _write_days(tables: dict[date, pa.Table], folder: Path, options: dict[str, Any]) -> None:
    def one(item: tuple[date, pa.Table]) -> None:
        day, table = item
        write_table(folder / f"{day}.parquet", table, options)

    with ThreadPoolExecutor(max_workers=trusted.WORKERS) as pool:
        list(pool.map(one, tables.items()))


def _day(path: Path) -> date:
    day = day_of_key(path.as_posix())
    assert day is not None, path
    return day


def _as_written(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A trusted file read back, with the column types Trusted hands to the writer."""
    columns = [
        pc.dictionary_encode(table[f.name]).cast(f.type)
        if pa.types.is_dictionary(f.type)
        else table[f.name]
        for f in schema
    ]
    return pa.table(columns, schema=schema)


def measure(csv: Path, repeat: int) -> dict[str, float]:
    contract = find_contract("transactions", CONTRACTS_DIR)
    assert contract is not None
    work = Path(tempfile.mkdtemp(prefix="sluice-parts-"))
    try:
        times: dict[str, float] = {}
        times["floor"] = best(repeat, lambda: impls.floor(csv, work / "floor"))

        def read() -> None:
            for _ in open_file(csv, csv.name).batches:
                pass

        times["Validate's read (CSV to text)"] = best(repeat, read)
        text = pa.Table.from_batches(list(open_file(csv, csv.name).batches))
        staged = work / "staged.parquet"

        def hand_over() -> None:
            # Exactly Validate's write and Trusted's read of the staged file.
            write_staged(staged, text.schema, text, iter(()))
            for _ in pq.ParquetFile(staged).iter_batches(batch_size=trusted.BATCH_ROWS):
                pass

        times["staged hand-over (write + read)"] = best(repeat, hand_over)

        # Sluice's own output, held in memory, to time the per-day writes alone.
        out = work / "sluice"
        impls.sluice(csv, out)
        schema = trusted.output_schema(contract)
        write_schema = trusted_write_schema(contract, schema)
        kept = {
            _day(path): _as_written(pq.read_table(path), write_schema)
            for path in (out / "trusted").rglob("*.parquet")
        }
        bad = {_day(path): pq.read_table(path) for path in (out / "quarantine").rglob("*.parquet")}
        days = work / "days"
        days.mkdir()
        trusted_options = trusted.parquet_options(contract, write_schema)
        times[f"TRUSTED files ({len(kept)} days)"] = best(
            repeat, lambda: _write_days(kept, days, trusted_options)
        )
        times[f"QUARANTINE files ({len(bad)} days)"] = best(
            repeat, lambda: _write_days(bad, days, trusted.parquet_options(None, None))
        )

        def whole() -> None:
            shutil.rmtree(work / "run", ignore_errors=True)
            impls.sluice(csv, work / "run")

        times["sluice (Validate+Trusted)"] = best(repeat, whole)
        return times
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=parse_rows, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    label = {100_000: "100k", 1_000_000: "1m", 5_000_000: "5m"}.get(args.rows, str(args.rows))
    csv = DATA / f"tx_{label}.csv"
    if not csv.exists():
        generate(args.rows, csv)
    times = measure(csv, args.repeat)
    floor = times["floor"]
    required = [k for k in times if k not in ("floor", "sluice (Validate+Trusted)")]
    print(f"{args.rows:,} rows, best of {args.repeat}")
    print(f"{'part':40} {'seconds':>8} {'x floor':>8}")
    for name, seconds in times.items():
        print(f"{name:40} {seconds:8.3f} {seconds / floor:7.2f}x")
    total = sum(times[k] for k in required)
    print(f"{'reading and writing alone (sum)':40} {total:8.3f} {total / floor:7.2f}x")


if __name__ == "__main__":
    main()

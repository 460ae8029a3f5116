"""Peak memory of Validate and Trusted in the file's size, measured as the functions run.

    python -m bench.memory                      # 1M, 5M and 20M rows of CSV
    python -m bench.memory --rows 1m,20m --json --out bench/data/memory.json

Each size runs in a local cloud of its own (`sluice.local.LocalCloud`), so every stage's worker
is a fresh process: a first small file loads the stage (as a Lambda's init and first request
would), then the measured file runs and each stage's `max_memory_mb` is read back, as
`bench.sizing` does it (the runtime samples the worker's resident memory every 10 ms; Lambda's
limits are set at their maximum so nothing is cut short). Inputs are `bench.sizing`'s cached
CSVs (`bench/data/sizing/`, git-ignored; 20M rows are about 950 MB and take ~40 s to make).

The issue's target is flat memory in the file's size: each stage's peak at the largest size
within 1.3x of its peak at the smallest (1M rows), reported PASS or MISS. A miss never fails the
run: this is a measurement.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.generate import parse_rows
from bench.sizing import (
    UNLIMITED,
    WARM_UP_ROWS,
    Measurement,
    TmpSampler,
    machine,
    make_input,
    measure,
)
from sluice.config import WORKFLOW_STAGES

STAGES = ("validate", "trusted")
TARGET = 1.3
DEFAULT_ROWS = "1m,5m,20m"


def measure_fresh(rows: int) -> Measurement:
    """One CSV of `rows` rows through a local cloud started for it alone."""
    from sluice.local import LocalCloud

    sampler = TmpSampler().start()
    try:
        stages = dict.fromkeys(WORKFLOW_STAGES, UNLIMITED)
        with LocalCloud(stages=stages, max_file_bytes=100 * 2**30) as cloud:
            measure("csv", WARM_UP_ROWS, cloud, sampler)
            return measure("csv", rows, cloud, sampler)
    finally:
        sampler.stop()


def summary(results: list[Measurement]) -> list[dict[str, Any]]:
    """Per size and stage: peak MB and its ratio to the smallest size's, with the verdict."""
    base = min(results, key=lambda m: m.rows)
    rows = []
    for m in sorted(results, key=lambda m: m.rows):
        row: dict[str, Any] = {"rows": m.rows, "mb": round(m.bytes / 2**20, 1), "status": m.status}
        for stage in STAGES:
            peak = m.stages[stage].max_memory_mb if stage in m.stages else None
            first = base.stages[stage].max_memory_mb if stage in base.stages else None
            ratio = round(peak / first, 2) if peak and first else None
            row[stage] = {
                "max_memory_mb": peak,
                "ratio": ratio,
                "verdict": "-" if ratio is None else "PASS" if ratio <= TARGET else "MISS",
            }
        rows.append(row)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"| rows | CSV MB | {' | '.join(f'{s} MB (× smallest)' for s in STAGES)} |")
    print("|---:|---:|" + "---:|" * len(STAGES))
    for row in rows:
        cells = []
        for stage in STAGES:
            cell = row[stage]
            if cell["max_memory_mb"] is None:
                cells.append("–")
            else:
                cells.append(f"{cell['max_memory_mb']} ({cell['ratio']:.2f} {cell['verdict']})")
        print(f"| {row['rows']:,} | {row['mb']:,.0f} | {' | '.join(cells)} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=DEFAULT_ROWS, help="comma-separated, e.g. 1m,20m")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--out", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    sizes = [parse_rows(r) for r in args.rows.split(",") if r.strip()]
    for rows in sizes:
        make_input("csv", rows)
    results = []
    for rows in sizes:
        started = time.monotonic()
        result = measure_fresh(rows)
        results.append(result)
        peaks = {s: u.max_memory_mb for s, u in result.stages.items()}
        took = time.monotonic() - started
        print(f"{rows:,} rows: {result.status}, {peaks} MB ({took:.0f} s)", flush=True)
    rows_table = summary(results)
    document = {
        "machine": machine(),
        "target": f"max_memory_mb at the largest size / at the smallest <= {TARGET}",
        "summary": rows_table,
        "results": [asdict(m) for m in results],
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(document, indent=2))
        return
    print_table(rows_table)
    m = document["machine"]
    print(
        f"\n{m['cpus']} CPUs ({m['cpu']}), {m['memory_gb']} GB; Python {m['python']}, "
        f"pyarrow {m['pyarrow']}, numpy {m['numpy']}; commit {m['commit']}"
    )


if __name__ == "__main__":
    main()

"""The pipeline through the local cloud's S3, against a floor taken through the same S3.

    python -m bench.through_s3 [--sizes 1m] [--repeat 3] [--runs 3] [--threads 16] [--json]

For each size a fresh `sluice.local.LocalCloud` (`dev` sizes) holds both measurements:

- the floor: one GET of the CSV, `pyarrow.csv.read_csv`, then one zstd Parquet PUT per event
  day over a pool of `--threads` threads, signed as the administrator, in this process;
- the pipeline: the same CSV uploaded to RAW under a new key each time; each stage's duration
  is that of its Lambda invocation (`LambdaRuntime.invocations`: from the invoke reaching the
  local Lambda service to its answer, as Lambda bills it).

Then `sluice run FILE --lake DIR --json` runs as a user runs it (a child process: import, cloud
start, upload, the execution, the lake copied out, stop), `--runs` times; its wall time is
compared with the stages of the same run, read from its report.

Time figures are the best of `--repeat` (floor, stages) and `--runs` (`sluice run`) runs.
Targets (PASS/MISS; a miss does not fail the run): Validate+Trusted ≤ 3× the floor, all three
stages ≤ 5× the floor, `sluice run` wall ≤ its stages + 5 s. A failed execution fails the run.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bench.common import ROOT, Result, machine, machine_line, markdown, target, transactions_csv
from bench.generate import parse_rows
from sluice import lake
from sluice.config import WORKFLOW_STAGES

FLOOR_BUCKET = "bench-floor"
MB = 1024 * 1024


def floor_once(s3: Any, key: str, threads: int) -> Result:
    """GET, read_csv, one zstd Parquet PUT per day over `threads` threads: seconds per step."""
    started = time.perf_counter()
    body = s3.get_object(Bucket=FLOOR_BUCKET, Key=key)["Body"].read()
    got = time.perf_counter()
    table = pacsv.read_csv(pa.py_buffer(body))
    read = time.perf_counter()
    order = pc.sort_indices(table["date"])
    days = table["date"].take(order).to_numpy(zero_copy_only=False)
    ordered = table.take(order)
    _, starts = np.unique(days, return_index=True)
    ends = [*starts[1:], len(days)]

    def put(n: int) -> int:
        part = ordered.slice(int(starts[n]), int(ends[n] - starts[n]))
        out = io.BytesIO()
        pq.write_table(part, out, compression="zstd")
        s3.put_object(
            Bucket=FLOOR_BUCKET, Key=f"floor/{key}/day={n:05d}.parquet", Body=out.getvalue()
        )
        return out.tell()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        written = sum(pool.map(put, range(len(starts))))
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "get_seconds": got - started,
        "read_seconds": read - got,
        "put_seconds": done - read,
        "days": len(starts),
        "rows": table.num_rows,
        "parquet_bytes": written,
    }


def pipeline_once(cloud: Any, path: Path, key: str) -> Result:
    """One execution of the CSV uploaded under `key`: each stage's invocation."""
    before = len(cloud.runtime.invocations)
    started = time.perf_counter()
    source = cloud.upload(path, "transactions", key=key)
    described = cloud.wait(source, timeout=1800)
    wall = time.perf_counter() - started
    invocations = cloud.runtime.invocations[before:]
    stages: dict[str, Result] = {}
    for stage in WORKFLOW_STAGES:
        mine = [i for i in invocations if i.function == cloud.names.function(stage)]
        stages[stage] = {
            "seconds": sum(i.duration_ms for i in mine) / 1000,
            "invocations": len(mine),
            "max_memory_mb": max((i.max_memory_mb for i in mine), default=0),
            "cold_start": any(i.cold_start for i in mine),
            "errors": [i.error_type for i in mine if i.error_type],
        }
    return {"status": described["status"], "wall_seconds": wall, "stages": stages}


def sluice_run_once(path: Path) -> Result:
    """`sluice run FILE --lake DIR --json` as a user runs it: wall time and its stages."""
    with tempfile.TemporaryDirectory(prefix="bench-lake-") as lake:
        command = [
            sys.executable,
            "-c",
            "import sys; from sluice.cli import main; sys.exit(main())",
            "run",
            str(path),
            "--lake",
            lake,
            "--json",
            "--timeout",
            "1800",
        ]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return {"error": last, "wall_seconds": wall}
    report = json.loads(done.stdout)["files"][0]
    stages = {s["name"]: s["duration_ms"] / 1000 for s in report["stages"]}
    return {
        "wall_seconds": wall,
        "status": report["execution"]["status"],
        "stages": stages,
        "stages_seconds": sum(stages.values()),
        "overhead_seconds": wall - sum(stages.values()),
    }


def bench_size(label: str, repeat: int, runs: int, threads: int) -> Result:
    from sluice.local import LocalCloud

    path = transactions_csv(label)
    floors: list[Result] = []
    pipelines: list[Result] = []
    with LocalCloud() as cloud:
        s3 = cloud.client("s3")
        s3.create_bucket(Bucket=FLOOR_BUCKET)
        s3.upload_file(str(path), FLOOR_BUCKET, path.name)
        for n in range(repeat):
            print(f"  {label} floor {n + 1}/{repeat}...", file=sys.stderr, flush=True)
            floors.append(floor_once(s3, path.name, threads))
        for n in range(repeat):
            print(f"  {label} pipeline {n + 1}/{repeat}...", file=sys.stderr, flush=True)
            key = lake.raw_key("transactions", f"run{n:02d}_{path.name}", date(2024, 4, 1))
            pipelines.append(pipeline_once(cloud, path, key))
    failed = [p["status"] for p in pipelines if p["status"] != "SUCCEEDED"]
    cli: list[Result] = []
    for n in range(runs):
        print(f"  {label} sluice run {n + 1}/{runs}...", file=sys.stderr, flush=True)
        cli.append(sluice_run_once(path))
    best_floor = min(floors, key=lambda f: f["seconds"])
    stage_best = {
        stage: min(p["stages"][stage]["seconds"] for p in pipelines) for stage in WORKFLOW_STAGES
    }
    fastest = min(pipelines, key=lambda p: sum(s["seconds"] for s in p["stages"].values()))
    ok_cli = [c for c in cli if "error" not in c and c["status"] == "SUCCEEDED"]
    best_cli = min(ok_cli, key=lambda c: c["overhead_seconds"]) if ok_cli else None
    vt = fastest["stages"]["validate"]["seconds"] + fastest["stages"]["trusted"]["seconds"]
    every = sum(s["seconds"] for s in fastest["stages"].values())
    return {
        "size": label,
        "rows": parse_rows(label),
        "csv_bytes": path.stat().st_size,
        "floor": best_floor,
        "floor_runs": floors,
        "stages_best": stage_best,
        "fastest_run": fastest,
        "pipeline_runs": pipelines,
        "validate_trusted_seconds": vt,
        "all_stages_seconds": every,
        "x_floor_validate_trusted": vt / best_floor["seconds"],
        "x_floor_all_stages": every / best_floor["seconds"],
        "sluice_run": best_cli,
        "sluice_run_runs": cli,
        "failed": failed + [c.get("error", c.get("status")) for c in cli if c not in ok_cli],
    }


def targets(results: list[Result]) -> list[Result]:
    checks = []
    for r in results:
        size = r["size"].upper()
        checks.append(
            target(
                f"{size} through S3: Validate+Trusted / floor <= 3",
                r["x_floor_validate_trusted"],
                3,
                unit="×",
            )
        )
        checks.append(
            target(
                f"{size} through S3: all stages / floor <= 5", r["x_floor_all_stages"], 5, unit="×"
            )
        )
        overhead = r["sluice_run"]["overhead_seconds"] if r["sluice_run"] else None
        checks.append(
            target(f"{size}: `sluice run` wall - its stages <= 5 s", overhead, 5, unit=" s")
        )
    return checks


def tables(results: list[Result]) -> str:
    """Markdown: the floor's steps, the stages, `sluice run`."""
    out = []
    rows = []
    for r in results:
        f = r["floor"]
        rows.append(
            [
                f"{r['size']} ({r['csv_bytes'] / MB:.1f} MB, {f['days']} days)",
                f"{f['get_seconds']:.2f}",
                f"{f['read_seconds']:.2f}",
                f"{f['put_seconds']:.2f}",
                f"**{f['seconds']:.2f}**",
            ]
        )
    out.append("Floor through S3 (seconds, best run)\n")
    out.append(markdown(["size", "GET", "read_csv", "PUT per day", "floor"], rows))
    rows = []
    for r in results:
        fr = r["fastest_run"]["stages"]
        floor = r["floor"]["seconds"]
        rows.append(
            [
                r["size"],
                *(f"{fr[s]['seconds']:.2f}" for s in WORKFLOW_STAGES),
                f"{r['validate_trusted_seconds']:.2f} ({r['x_floor_validate_trusted']:.1f}×)",
                f"{r['all_stages_seconds']:.2f} ({r['x_floor_all_stages']:.1f}×)",
                f"{floor:.2f}",
                " / ".join(str(fr[s]["max_memory_mb"]) for s in WORKFLOW_STAGES),
            ]
        )
    out.append("\nStages through the local cloud (seconds, fastest run; × floor)\n")
    out.append(
        markdown(
            [
                "size",
                "Validate",
                "Trusted",
                "Delivery",
                "V+T",
                "all stages",
                "floor",
                "peak MB V / T / D",
            ],
            rows,
        )
    )
    rows = []
    for r in results:
        c = r["sluice_run"]
        if c is None:
            rows.append([r["size"], "failed", "–", "–"])
            continue
        rows.append(
            [
                r["size"],
                f"{c['wall_seconds']:.2f}",
                f"{c['stages_seconds']:.2f}",
                f"{c['overhead_seconds']:.2f}",
            ]
        )
    out.append("\n`sluice run FILE` (seconds, the run with the least overhead)\n")
    out.append(markdown(["size", "wall", "its stages", "wall - stages"], rows))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1m", help="comma-separated, e.g. 1m,5m")
    parser.add_argument("--repeat", type=int, default=3, help="floor and pipeline runs (best)")
    parser.add_argument("--runs", type=int, default=2, help="`sluice run` runs (best)")
    parser.add_argument("--threads", type=int, default=16, help="the floor's PUT threads")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [
        bench_size(label, args.repeat, args.runs, args.threads)
        for label in (s.strip().lower() for s in args.sizes.split(",") if s.strip())
    ]
    checks = targets(results)
    if args.json:
        print(json.dumps({"machine": machine(), "results": results, "targets": checks}, indent=2))
    else:
        print(machine_line(machine()))
        print(tables(results))
        print()
        for c in checks:
            print(f"  {c['verdict']:4}  {c['target']:60} {c['value']}")
    failed = [f for r in results for f in r["failed"]]
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

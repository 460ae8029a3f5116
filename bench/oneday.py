"""Delivery's memory on a file whose rows all fall on one day (a daily extract).

`bench.sizing` measures files spread over 90 days, so each TRUSTED day file is a ninetieth of
the file. A daily extract makes one day file as large as the whole file; this runs such files
through the local cloud with the `dev` sizes of cdk.json (what is deployed) and prints what
each stage used: `max_memory_mb` and duration of its invocation, and the largest use of its
`/tmp` (sampled as `bench.sizing` samples it).

    python -m bench.oneday                       # 1M and 3M rows
    python -m bench.oneday --rows 10k,1m,3m,5m --out bench/data/oneday.json
    python -m bench.oneday --fit bench/oneday-2026-12-03.json   # Delivery's one-day line

The fit is Delivery's memory over the staged MB (as `bench.sizing` fits it) of the files of at
least a DETAIL row group's rows (`sluice.delivery_edge.DETAIL_ROWS`): below that, a day's memory
grows to one row group's working set; from there on it stays nearly flat.

Inputs are `bench.generate`'s transactions with every date set to 2024-01-15, cached in
`bench/data/oneday/` (git-ignored).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path

import pyarrow as pa

from bench.generate import parse_rows, write_csv
from bench.generate import table as transactions
from bench.sizing import Measurement, StageUse, TmpSampler, fit_line, machine
from sluice import lake
from sluice.config import WORKFLOW_STAGES

DATA = Path("bench/data/oneday")
DAY = "2024-01-15"
DEFAULT_ROWS = (1_000_000, 3_000_000)


def make_input(rows: int) -> Path:
    """`rows` transactions, every one dated `DAY`, as CSV (cached)."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"tx_oneday_{rows}.csv"
    if path.exists():
        return path
    data = transactions(rows)
    data = data.set_column(
        data.schema.get_field_index("date"), "date", pa.repeat(pa.scalar(DAY), rows)
    )
    return write_csv(data, path)


def measure(rows: int, cloud: object, sampler: TmpSampler) -> Measurement:
    from sluice.local import LocalCloud

    assert isinstance(cloud, LocalCloud)
    path = make_input(rows)
    before = len(cloud.runtime.invocations)
    sampler.reset()
    time.sleep(0.5)
    source = cloud.upload(path, "transactions", day=date(2024, 4, 1))
    described = cloud.wait(source, timeout=3600)
    invocations = cloud.runtime.invocations[before:]
    time.sleep(0.1)
    cpu = sampler.cpu_seconds()
    stages: dict[str, StageUse] = {}
    for stage in WORKFLOW_STAGES:
        mine = [i for i in invocations if i.function == cloud.names.function(stage)]
        if mine:
            # The largest of the stage's invocations: a failed first attempt is the finding.
            peak = max(mine, key=lambda i: i.max_memory_mb)
            stages[stage] = StageUse(
                peak.max_memory_mb,
                round(peak.duration_ms, 1),
                round(sampler.peak.get(stage, 0) / 2**20, 1),
                round(cpu.get(stage, 0.0), 2),
            )
            errors = [i.error_type for i in mine if i.error_type]
            if errors:
                print(f"  {stage}: {len(mine)} invocations, errors {errors}", flush=True)
    staged_bytes = 0
    try:
        head = cloud.client("s3").head_object(
            Bucket=cloud.buckets["trusted"], Key=lake.staged_key("transactions", source)
        )
        staged_bytes = int(head["ContentLength"])
    except Exception:  # a run that failed early has no staged file
        pass
    size = path.stat().st_size
    return Measurement("csv", rows, size, size, staged_bytes, str(described["status"]), stages)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(str(r) for r in DEFAULT_ROWS))
    parser.add_argument("--env", default="dev")
    parser.add_argument(
        "--delivery-mb", type=int, default=None, help="Delivery's memory instead of the env's"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/data/oneday.json"))
    parser.add_argument("--fit", type=Path, default=None, help="print the line fitted to a file")
    args = parser.parse_args(argv)
    if args.fit is not None:
        from sluice.edges.delivery import DETAIL_ROWS

        results = json.loads(args.fit.read_text(encoding="utf-8"))["results"]
        points = [
            (r["staged_bytes"] / 2**20, r["stages"]["delivery"]["max_memory_mb"])
            for r in results
            if r["status"] == "SUCCEEDED" and r["rows"] >= DETAIL_ROWS
        ]
        base, per_mb = fit_line(points)
        print(f"delivery one_day_memory_mb over staged MB: base {base}, per MB {per_mb}")
        return
    from sluice.local import LocalCloud

    plan = [parse_rows(r) for r in args.rows.split(",") if r]
    for rows in plan:
        make_input(rows)
    results: list[Measurement] = []
    stages = None
    if args.delivery_mb:
        from sluice.environments import EnvironmentSettings

        delivery = EnvironmentSettings.load(args.env).stages["delivery"]
        stages = {"delivery": dataclasses.replace(delivery, memory_mb=args.delivery_mb)}
    with LocalCloud(env=args.env, stages=stages) as cloud:
        sampler = TmpSampler({s: cloud.stages[s].ephemeral_storage_mb for s in WORKFLOW_STAGES})
        sampler.start()
        try:
            time.sleep(5)  # every stage warm: no init phase in the figures
            for rows in plan:
                result = measure(rows, cloud, sampler)
                results.append(result)
                print(json.dumps(asdict(result)), flush=True)
        finally:
            sampler.stop()
    print("| rows | CSV MB | staged MB | status | delivery MB | delivery /tmp MB | delivery s |")
    print("|---:|---:|---:|---|---:|---:|---:|")
    for m in results:
        d = m.stages.get("delivery")
        cells = (
            "– | – | –"
            if d is None
            else (f"{d.max_memory_mb} | {d.max_tmp_mb:.0f} | {d.duration_ms / 1000:.1f}")
        )
        print(
            f"| {m.rows:,} | {m.bytes / 1e6:.1f} | {m.staged_bytes / 1e6:.1f} | {m.status} | "
            + cells
            + " |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "machine": machine(),
        "env": args.env,
        "delivery_mb": cloud.stages["delivery"].memory_mb,
        "results": [asdict(m) for m in results],
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

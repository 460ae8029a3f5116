"""One file whose rows span many event days, through the local cloud: what a day costs.

    python -m bench.manydays [--days 300,3000] [--rows 30000] [--timeout 1200] [--json]

For each D a fresh `sluice.local.LocalCloud` (`dev` sizes, every stage's timeout raised to
`--stage-timeout` so a slow stage is measured rather than killed) gets one CSV of `--rows` rows
spread evenly over D days from 2015-01-01 (categories Sales and Travel, distinct ids, no
rejects). Reported per D: wall seconds from the upload to the execution's end, each stage's
duration (its Lambda invocations), the requests each stage made (per service and method),
and the objects each bucket holds afterwards. The DAILY_SUMMARY of the first, a middle and the
last day is checked against the generated rows: counts, minima and maxima exactly, sums to
within float rounding (and whether they are the exact sum rounded once is reported); a wrong
summary or a failed execution fails the run, times are measurements.

Targets: time(3000 days) ≤ 12 × time(300 days), and 3000 days in under a minute.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    Result,
    Summary,
    exact_summary,
    machine,
    machine_line,
    markdown,
    summary_of,
    target,
)
from sluice.config import WORKFLOW_STAGES

FIRST_DAY = date(2015, 1, 1)
HEADER = "id,name,amount,date,category\n"
CATEGORIES = ("Sales", "Travel")


def row(i: int, days: int) -> tuple[int, date, str, str]:
    """(id, day, amount text, category) of row i: deterministic, every day used evenly."""
    ident = i + 1
    return (
        ident,
        FIRST_DAY + timedelta(days=i % days),
        f"{ident % 997}.{ident % 100:02d}",
        (CATEGORIES[(i // days) % 2]),
    )


def write_csv(path: Path, rows: int, days: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for i in range(rows):
            ident, day, amount, category = row(i, days)
            out.write(f"{ident},N{ident},{amount},{day.isoformat()},{category}\n")


def expected(rows: int, days: int, day: date) -> Summary:
    return exact_summary(row(i, days)[2:] for i in range((day - FIRST_DAY).days, rows, days))


def _agrees(got: tuple[Any, ...], want: tuple[Any, ...]) -> bool:
    """Counts, minima and maxima equal; the sum equal up to float rounding (whether it is the
    exact sum rounded once, as Delivery makes it, is reported on its own)."""
    count, total, low, high = got
    return (count, low, high) == (want[0], want[2], want[3]) and math.isclose(
        total, want[1], rel_tol=1e-12
    )


def objects_per_bucket(cloud: Any) -> dict[str, int]:
    s3 = cloud.client("s3")
    counts = {}
    for layer, bucket in cloud.buckets.items():
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        counts[layer] = sum(len(page.get("Contents", [])) for page in pages)
    return counts


def run(days: int, rows: int, timeout: float, stage_timeout: int) -> Result:
    from sluice.environments import EnvironmentSettings
    from sluice.local import LocalCloud

    sizes = {
        stage: replace(size, timeout_seconds=stage_timeout)
        for stage, size in EnvironmentSettings.load(None).stages.items()
    }
    with tempfile.TemporaryDirectory(prefix="manydays-") as tmp, LocalCloud(stages=sizes) as cloud:
        path = Path(tmp) / f"manydays_{days}.csv"
        write_csv(path, rows, days)
        before = len(cloud.runtime.invocations)
        cloud.reset_requests()
        started = time.perf_counter()
        source = cloud.upload(path, "transactions", day=date(2024, 4, 1))
        described = cloud.wait(source, timeout=timeout)
        seconds = time.perf_counter() - started
        invocations = cloud.runtime.invocations[before:]
        requests = cloud.requests_by_role()
        objects = objects_per_bucket(cloud)
        checked = sorted(
            {FIRST_DAY, FIRST_DAY + timedelta(days=days // 2), FIRST_DAY + timedelta(days=days - 1)}
        )
        got = {d.isoformat(): summary_of(cloud, d) for d in checked}
    stages = {}
    for stage in WORKFLOW_STAGES:
        mine = [i for i in invocations if i.function == cloud.names.function(stage)]
        stages[stage] = {
            "seconds": round(sum(i.duration_ms for i in mine) / 1000, 2),
            "invocations": len(mine),
            "errors": [i.error_type for i in mine if i.error_type],
            "requests": requests.get(stage, {}),
        }
    want = {d.isoformat(): expected(rows, days, d) for d in checked}
    agree = all(
        set(got[d]) == set(want[d]) and all(_agrees(got[d][c], want[d][c]) for c in want[d])
        for d in want
    )
    return {
        "days": days,
        "rows": rows,
        "status": described["status"],
        "seconds": round(seconds, 2),
        "stages": stages,
        "objects": objects,
        "summary_right": agree,
        "sums_correctly_rounded": got == want,
        "summary": got,
        "expected": want,
    }


def targets(results: list[Result]) -> list[Result]:
    by = {r["days"]: r for r in results if r["status"] == "SUCCEEDED"}
    small, large = by.get(300), by.get(3000)
    ratio = large["seconds"] / small["seconds"] if small and large else None
    return [
        target("days per file: time(3000 days) / time(300 days) <= 12", ratio, 12, unit="×"),
        target(
            "days per file: 3000 days < 60 s", large["seconds"] if large else None, 60, unit=" s"
        ),
    ]


def _requests_text(requests: dict[str, int]) -> str:
    s3 = {k.split()[1]: v for k, v in requests.items() if k.startswith("s3 ")}
    return " / ".join(f"{s3.get(m, 0)}" for m in ("GET", "PUT", "HEAD"))


def table(results: list[Result]) -> str:
    rows = []
    for r in results:
        s = r["stages"]
        rows.append(
            [
                f"{r['days']:,}",
                f"{r['seconds']:.1f}",
                *(f"{s[stage]['seconds']:.2f}" for stage in WORKFLOW_STAGES),
                *(_requests_text(s[stage]["requests"]) for stage in ("trusted", "delivery")),
                " / ".join(
                    str(r["objects"][layer]) for layer in ("trusted", "delivery", "quarantine")
                ),
                "yes" if r["summary_right"] else "**no**",
                "yes" if r["sums_correctly_rounded"] else "no",
            ]
        )
    return markdown(
        [
            "days",
            "upload → end s",
            "Validate s",
            "Trusted s",
            "Delivery s",
            "Trusted S3 GET / PUT / HEAD",
            "Delivery S3 GET / PUT / HEAD",
            "objects trusted / delivery / quarantine",
            "summaries right",
            "sums correctly rounded",
        ],
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", default="300,3000", help="comma-separated day counts")
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per execution")
    parser.add_argument("--stage-timeout", type=int, default=900, help="each function's timeout")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = []
    for days in (int(d) for d in args.days.split(",") if d.strip()):
        print(f"  {days} days...", file=sys.stderr, flush=True)
        try:
            results.append(run(days, args.rows, args.timeout, args.stage_timeout))
        except TimeoutError as exc:
            results.append(
                {"days": days, "rows": args.rows, "status": "TIMEOUT", "error": str(exc)}
            )
        print(f"  {days} days: {results[-1].get('seconds', '-')} s", file=sys.stderr, flush=True)
    checks = targets(results)
    done = [r for r in results if "stages" in r]
    if args.json:
        print(json.dumps({"machine": machine(), "results": results, "targets": checks}, indent=2))
    else:
        print(machine_line(machine()))
        print(table(done))
        for r in results:
            if "error" in r:
                print(f"{r['days']} days: {r['error']}")
        for c in checks:
            print(f"  {c['verdict']:4}  {c['target']:60} {c['value']}")
    ok = all(r["status"] == "SUCCEEDED" and r["summary_right"] for r in done) and len(done) == len(
        results
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

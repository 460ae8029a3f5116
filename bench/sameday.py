"""Many small files for one event day through the local cloud: what each file costs.

    python -m bench.sameday [--sizes 10,100,1000] [--rows 5] [--window 100] [--json]

For each N a fresh `sluice.local.LocalCloud` is started, N small CSV files (`--rows` rows
each, every row of 2024-01-15, categories Sales and Travel) are uploaded, at once or keeping
at most `--window` executions running (0: no limit), and the clock runs until every execution
has finished. (The local cloud runs at most `max_concurrency` environments per function; moto's
interpreter gives up on a Lambda invoke that waits 60 s for one, so a thousand executions
started at once fail there whatever the stages do.) Reported per N: wall seconds, mean seconds per
file, mean Delivery duration of the first and the last tenth of the files to finish (from the
lineage manifests), and whether the day's DAILY_SUMMARY is exact: record counts, sums (the
exact sum of the amounts, rounded once), minima and maxima per category, checked against the
generated rows. A wrong summary fails the run; times are measurements only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.common import Summary, exact_summary, summary_of
from sluice import lake
from sluice.local import LocalCloud

DAY = date(2024, 1, 15)
HEADER = "id,name,amount,date,category\n"
CATEGORIES = ("Sales", "Travel")


def rows_of(file: int, rows: int) -> list[tuple[int, str, str]]:
    """(id, amount text, category) of one file's rows: deterministic, distinct ids."""
    out = []
    for r in range(rows):
        ident = file * rows + r + 1
        out.append((ident, f"{ident % 997}.{ident % 100:02d}", CATEGORIES[ident % 2]))
    return out


def expected(files: int, rows: int) -> Summary:
    return exact_summary((a, c) for f in range(files) for _, a, c in rows_of(f, rows))


def running(cloud: LocalCloud) -> int:
    # One page: moto's next-page token names an execution, which may have finished meanwhile.
    answer = cloud.client("stepfunctions").list_executions(
        stateMachineArn=cloud.state_machine_arn, statusFilter="RUNNING", maxResults=1000
    )
    return len(answer["executions"])


def finished(cloud: LocalCloud, count: int, timeout: float) -> list[dict[str, Any]]:
    sfn = cloud.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [
            e
            for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=cloud.state_machine_arn
            )
            for e in page["executions"]
        ]
        if len(found) >= count and all(e["status"] != "RUNNING" for e in found):
            return found
        time.sleep(0.2)
    raise TimeoutError(f"{count} executions did not finish in {timeout:.0f} s")


def delivery_ms(cloud: LocalCloud) -> list[int]:
    """Delivery's duration per file, in the order the files finished."""
    s3 = cloud.client("s3")
    bucket = cloud.buckets["delivery"]
    manifests = []
    prefix = f"{lake.LINEAGE_MANIFESTS}/transactions/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            manifest = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            manifests.append((manifest["delivered_at"], manifest["durations_ms"]["delivery"]))
    return [ms for _, ms in sorted(manifests)]


def run(files: int, rows: int, window: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sameday-") as tmp, LocalCloud() as cloud:
        paths = []
        for f in range(files):
            path = Path(tmp) / f"sameday_{f:05d}.csv"
            lines = "".join(f"{i},N{i},{a},{DAY.isoformat()},{c}\n" for i, a, c in rows_of(f, rows))
            path.write_text(HEADER + lines, encoding="utf-8")
            paths.append(path)
        started = time.perf_counter()
        for n, path in enumerate(paths):
            # (an upload's execution starts a moment later: the window counts those too)
            while window and n % 10 == 0 and running(cloud) + 10 > window:
                time.sleep(0.2)
            cloud.upload(path, "transactions", day=date(2024, 3, 1))
        found = finished(cloud, files, timeout=max(600.0, files * 5.0))
        seconds = time.perf_counter() - started
        statuses = sorted({e["status"] for e in found})
        got = summary_of(cloud, DAY)
        durations = delivery_ms(cloud)
    tenth = max(1, files // 10)
    want = expected(files, rows)
    return {
        "files": files,
        "rows_per_file": rows,
        "window": window,
        "seconds": round(seconds, 1),
        "seconds_per_file": round(seconds / files, 3),
        "delivery_ms_first_tenth": round(sum(durations[:tenth]) / tenth),
        "delivery_ms_last_tenth": round(sum(durations[-tenth:]) / tenth),
        "statuses": statuses,
        "summary_exact": got == want,
        "summary": got,
        "expected": want,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--rows", type=int, default=5)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    ok = True
    for n in (int(s) for s in args.sizes.split(",")):
        result = run(n, args.rows, args.window)
        ok = ok and result["summary_exact"] and result["statuses"] == ["SUCCEEDED"]
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            print(
                f"N={n:>5} window {args.window}  {result['seconds']:>7.1f} s"
                f"  {result['seconds_per_file']:.3f} s/file"
                f"  delivery {result['delivery_ms_first_tenth']} ms (first tenth)"
                f" / {result['delivery_ms_last_tenth']} ms (last tenth)"
                f"  {','.join(result['statuses'])}  summary exact: {result['summary_exact']}",
                flush=True,
            )
            if not result["summary_exact"]:
                print(f"  got      {result['summary']}\n  expected {result['expected']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

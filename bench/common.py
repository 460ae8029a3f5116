"""What the benchmark sections share: the generated files, the machine, tables and verdicts."""

from __future__ import annotations

import importlib.metadata
import io
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from sluice import lake

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
PACKAGES = ("pyarrow", "numpy", "polars", "pandas", "duckdb", "moto", "boto3", "botocore")

Result = dict[str, Any]
# A DAILY_SUMMARY as the benchmarks check it: per category (count, sum, min, max)
Summary = dict[str, tuple[int, float, float, float]]


def exact_summary(rows: Iterable[tuple[str, str]]) -> Summary:
    """What a day's DAILY_SUMMARY must say of these (amount text, category) rows: the count,
    the exact sum of the amounts rounded once, the minimum and the maximum, per category."""
    totals: dict[str, list[Any]] = {}
    for amount, category in rows:
        value = float(amount)
        t = totals.setdefault(category, [0, Fraction(0), value, value])
        t[0] += 1
        t[1] += Fraction(value)
        t[2], t[3] = min(t[2], value), max(t[3], value)
    return {c: (t[0], float(t[1]), t[2], t[3]) for c, t in sorted(totals.items())}


def summary_of(cloud: Any, day: date) -> Summary:
    """What the local cloud's DAILY_SUMMARY of transactions on `day` says, as `Summary`."""
    key = lake.delivery_key("transactions", "DAILY_SUMMARY", day, None)
    body = cloud.client("s3").get_object(Bucket=cloud.buckets["delivery"], Key=key)["Body"]
    table = pq.read_table(io.BytesIO(body.read()))
    return {
        r["category"]: (r["record_count"], r["amount_sum"], r["amount_min"], r["amount_max"])
        for r in table.to_pylist()
    }


def transactions_csv(label: str) -> Path:
    """`bench/data/tx_<label>.csv`, generated (seeded) the first time it is asked for."""
    path = DATA / f"tx_{label}.csv"
    if not path.exists():
        print(f"generating {path.relative_to(ROOT)}...", file=sys.stderr, flush=True)
        # In a child: a process started from this one would inherit the generator's peak
        # RSS (Linux keeps `ru_maxrss` across fork and exec).
        subprocess.run(
            [sys.executable, "-m", "bench.generate", "--rows", label, "--out", str(path)],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return path


def target(name: str, value: float | None, limit: float, le: bool = True, unit: str = "") -> Result:
    """One target with its measured value: PASS, MISS, or SKIP when it was not measured."""
    if value is None:
        return {"target": name, "value": None, "limit": limit, "verdict": "SKIP", "unit": unit}
    ok = value <= limit if le else value >= limit
    return {
        "target": name,
        "value": round(value, 3),
        "limit": limit,
        "verdict": "PASS" if ok else "MISS",
        "unit": unit,
    }


def markdown(headers: list[str], rows: list[list[Any]], right: set[int] | None = None) -> str:
    """A GitHub table; columns in `right` (default: all but the first) align right."""
    right = set(range(1, len(headers))) if right is None else right
    align = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join("–" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def targets_table(checks: list[Result]) -> str:
    rows = []
    for c in checks:
        value = "–" if c["value"] is None else f"{c['value']:g}{c.get('unit', '')}"
        verdict = c["verdict"] if c["verdict"] != "MISS" else "**MISS**"
        rows.append([c["target"], value, verdict])
    return markdown(["target", "measured", "verdict"], rows, right={1})


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return 0.0


def _commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def machine() -> Result:
    """Where and with what the figures were taken."""
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "ram_gb": _ram_gb(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": _commit(),
        "versions": versions,
    }


def machine_line(info: Result) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    return (
        f"{info['nproc']} vCPU {info['cpu']} (`nproc` = {info['nproc']}), {info['ram_gb']} GB RAM, "
        f"load average {' / '.join(str(x) for x in info['load_average'])}; "
        f"Python {info['python']}, {versions}; Sluice at `{info['commit']}`"
    )

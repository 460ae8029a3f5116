"""Validate+Trusted against the floor, polars, pandas and DuckDB on the same generated files.

    python -m bench.run [--sizes 100k,1m,5m] [--repeat 1] [--apply-max-rows 100000]
                        [--impls floor,sluice,polars,...] [--json]

Each implementation runs in its own child process (`bench.impls`), so its peak RSS is its own.
Targets are reported PASS/MISS; a miss never fails the run, this is a measurement.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import transactions_csv
from bench.generate import parse_rows

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
ORDER = ["floor", "sluice", "polars", "pandas_vectorized", "pandas_apply", "duckdb", "duckdb_zstd"]
MB = 1024 * 1024

Result = dict[str, Any]


def run_child(impl: str, source: Path, out: Path) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.impls", impl, str(source), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return {"impl": impl, "error": last}
    result: Result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def measure(impl: str, source: Path, out: Path, repeat: int) -> Result:
    """Best time of `repeat` runs; the highest peak RSS seen."""
    runs = [run_child(impl, source, out) for _ in range(repeat)]
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[0]
    best = min(ok, key=lambda r: r["seconds"])
    return {**best, "peak_rss_mb": max(r["peak_rss_mb"] for r in ok), "runs": len(ok)}


def bench_size(
    label: str, rows: int, repeat: int, apply_max_rows: int, impls: list[str] = ORDER
) -> list[Result]:
    source = transactions_csv(label)
    results = []
    for impl in [i for i in ORDER if i in impls]:
        if impl == "pandas_apply" and rows > apply_max_rows:
            continue
        out = DATA / "out" / label / impl
        # DuckDB re-writes Sluice's trusted rows: its yardstick is bytes, not time.
        given = DATA / "out" / label / "sluice" / "trusted" if impl.startswith("duckdb") else source
        print(f"  {label} {impl}...", file=sys.stderr)
        results.append({"size": label, "rows": rows, **measure(impl, given, out, repeat)})
    floor = next((r for r in results if r["impl"] == "floor" and "seconds" in r), None)
    for r in results:
        if floor and "seconds" in r and not r["impl"].startswith("duckdb"):
            r["x_floor"] = r["seconds"] / floor["seconds"]
    return results


def _by(results: list[Result], size: str, impl: str) -> Result | None:
    found = [r for r in results if r["size"] == size and r["impl"] == impl and "seconds" in r]
    return found[0] if found else None


def targets(results: list[Result]) -> list[Result]:
    """The issue's targets, each with its measured value, or skipped if a size was not run."""
    checks: list[Result] = []

    def check(
        name: str, a: Result | None, b: Result | None, key: str, limit: float, le: bool
    ) -> None:
        if a is None or b is None:
            checks.append({"target": name, "value": None, "verdict": "SKIP"})
            return
        value = a[key] / b[key]
        ok = value <= limit if le else value >= limit
        checks.append(
            {"target": name, "value": round(value, 2), "verdict": "PASS" if ok else "MISS"}
        )

    s1, f1 = _by(results, "1m", "sluice"), _by(results, "1m", "floor")
    check("1M: sluice time / floor time <= 3", s1, f1, "seconds", 3, True)
    check(
        "1M: pandas_vectorized time / sluice time >= 4",
        _by(results, "1m", "pandas_vectorized"),
        s1,
        "seconds",
        4,
        False,
    )
    check(
        "sluice peak RSS 5M / 1M <= 1.3", _by(results, "5m", "sluice"), s1, "peak_rss_mb", 1.3, True
    )
    for size in ("1m", "5m"):
        sluice, peer = _by(results, size, "sluice"), _by(results, size, "polars")
        check(f"{size.upper()}: sluice time / polars time <= 1", sluice, peer, "seconds", 1, True)
        check(
            f"{size.upper()}: sluice peak RSS / polars peak RSS <= 1",
            sluice,
            peer,
            "peak_rss_mb",
            1,
            True,
        )
    for size in dict.fromkeys(r["size"] for r in results):
        check(
            f"{size}: sluice trusted bytes / duckdb bytes <= 1.2",
            _by(results, size, "sluice"),
            _by(results, size, "duckdb"),
            "trusted_bytes",
            1.2,
            True,
        )
        # Not the target: the same comparison with both sides using zstd.
        check(
            f"{size}: (info) sluice trusted bytes / duckdb zstd bytes <= 1.2",
            _by(results, size, "sluice"),
            _by(results, size, "duckdb_zstd"),
            "trusted_bytes",
            1.2,
            True,
        )
    return checks


def print_table(results: list[Result]) -> None:
    head = (
        f"{'implementation':18} {'seconds':>8} {'x floor':>8} {'peak RSS MB':>11} "
        f"{'out MB':>7} {'trusted MB':>10} {'trusted':>9} {'quarant.':>8} {'dupes':>7}"
    )
    for size in dict.fromkeys(r["size"] for r in results):
        rows = [r for r in results if r["size"] == size]
        print(f"\n{size} rows ({rows[0]['rows']:,})\n{head}\n{'-' * len(head)}")
        for r in rows:
            if "error" in r:
                print(f"{r['impl']:18} FAILED: {r['error']}")
                continue
            ratio = f"{r['x_floor']:.1f}x" if "x_floor" in r else "-"
            counts = [f"{r[k]:,}" if k in r else "-" for k in ("trusted", "quarantined")]
            dupes = f"{r['duplicates']:,}" if "duplicates" in r else "-"
            print(
                f"{r['impl']:18} {r['seconds']:8.2f} {ratio:>8} {r['peak_rss_mb']:11.0f} "
                f"{r['output_bytes'] / MB:7.1f} {r['trusted_bytes'] / MB:10.1f} "
                f"{counts[0]:>9} {counts[1]:>8} {dupes:>7}"
            )
        agree = {
            (r["trusted"], r["quarantined"], r["duplicates"]) for r in rows if "duplicates" in r
        }
        print("row counts agree across implementations" if len(agree) == 1 else "ROW COUNTS DIFFER")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1m,5m", help="comma-separated, e.g. 100k,1m")
    parser.add_argument("--repeat", type=int, default=1, help="runs per implementation (best)")
    parser.add_argument("--apply-max-rows", type=parse_rows, default=100_000)
    parser.add_argument(
        "--impls", default=",".join(ORDER), help="comma-separated, of " + ", ".join(ORDER)
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args(argv)
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    results: list[Result] = []
    for label in [s.strip().lower() for s in args.sizes.split(",") if s.strip()]:
        results += bench_size(label, parse_rows(label), args.repeat, args.apply_max_rows, impls)
    checks = targets(results)
    if args.json:
        print(json.dumps({"results": results, "targets": checks}, indent=2))
        return
    print_table(results)
    print("\ntargets")
    for c in checks:
        value = "-" if c["value"] is None else f"{c['value']:.2f}"
        print(f"  {c['verdict']:4}  {c['target']:60} {value:>6}")


if __name__ == "__main__":
    main()

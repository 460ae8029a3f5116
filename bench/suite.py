"""`make bench`: every section, one targets table, one JSON file of all the results.

    python -m bench.suite [--sections inprocess,through_s3,sameday,manydays,coldstart,memory]
                          [--quick] [--out bench/data/bench-<date>.json]

Each section runs as its own child process (`python -m bench.<module> ... --json`), as it runs
alone, so a section's memory and its local cloud are its own:

| section | module | what |
|---|---|---|
| inprocess | `bench.run` | Validate+Trusted in one process vs the floor, polars, pandas, DuckDB |
| through_s3 | `bench.through_s3` | the stages through the local cloud vs a floor through its S3 |
| sameday | `bench.sameday` | N = 10, 100, 1,000 small files of one day |
| manydays | `bench.manydays` | 30k rows over 300 and over 3,000 days in one file |
| coldstart | `bench.coldstart` | each handler's import |
| memory | `bench.memory` | peak memory of Validate and Trusted at 1M and 20M rows (when present) |

`--quick` runs small sizes (a smoke test of the whole suite, minutes instead of half an hour);
its figures are not the targets' sizes. A section that fails is reported and the others still
run; the exit status says whether any failed. Targets are PASS/MISS/SKIP and never fail the run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import DATA, ROOT, Result, machine, machine_line, target, targets_table

SECTIONS = ("inprocess", "through_s3", "sameday", "manydays", "coldstart", "memory")
MODULES = {
    "inprocess": "bench.run",
    "through_s3": "bench.through_s3",
    "sameday": "bench.sameday",
    "manydays": "bench.manydays",
    "coldstart": "bench.coldstart",
    "memory": "bench.memory",
}
ARGS = {
    "inprocess": ["--sizes", "100k,1m,5m", "--repeat", "3"],
    "through_s3": ["--sizes", "1m", "--repeat", "3", "--runs", "2"],
    "sameday": ["--sizes", "10,100,1000", "--window", "100"],
    "manydays": ["--days", "300,3000"],
    "coldstart": ["--repeat", "7"],
    "memory": [],
}
QUICK = {
    "inprocess": ["--sizes", "100k", "--repeat", "1"],
    "through_s3": ["--sizes", "100k", "--repeat", "1", "--runs", "1"],
    "sameday": ["--sizes", "10,20", "--window", "100"],
    "manydays": ["--days", "30,300", "--rows", "3000"],
    "coldstart": ["--repeat", "2", "--traces", "1"],
    "memory": [],
}
COLDSTART_LIMIT = 0.3


def has_memory_section() -> bool:
    return importlib.util.find_spec("bench.memory") is not None


def run_section(name: str, args: list[str]) -> Result:
    """One section in a child process: its JSON (the last document it printed) and its time."""
    command = [sys.executable, "-m", MODULES[name], *args, "--json"]
    print(f"== {name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - started
    output = done.stdout.strip()
    try:
        if name == "sameday":  # one JSON document per line, one per N
            document: Any = [json.loads(line) for line in output.splitlines() if line.strip()]
        else:
            document = json.loads(output)
    except json.JSONDecodeError:
        document = None
    return {
        "section": name,
        "command": command[1:],
        "exit_status": done.returncode,
        "seconds": round(seconds, 1),
        "output": document if document is not None else output[-2000:],
    }


def _of(sections: dict[str, Result], name: str) -> Any:
    section = sections.get(name)
    if section is None or not isinstance(section["output"], dict | list):
        return None
    return section["output"]


def sameday_targets(runs: list[Result] | None) -> list[Result]:
    by = {r["files"]: r for r in runs or []}
    small, large = by.get(10), by.get(1000)
    ratio = large["seconds_per_file"] / small["seconds_per_file"] if small and large else None
    wrong = [r for r in runs or [] if not r["summary_exact"] or r["statuses"] != ["SUCCEEDED"]]
    sizes = ", ".join(str(n) for n in sorted(by))
    return [
        target("same day: s/file at N=1000 / s/file at N=10 <= 2", ratio, 2, unit="×"),
        target(
            f"same day: N with an inexact summary or a failed execution = 0 (N = {sizes})",
            float(len(wrong)) if runs else None,
            0,
        ),
    ]


def coldstart_targets(loads: list[Result] | None) -> list[Result]:
    if not loads:
        return [target(f"cold start: every handler imports in <= {COLDSTART_LIMIT} s", None, 0.3)]
    return [
        target(
            f"cold start: {load['stage']} imports in <= {COLDSTART_LIMIT} s",
            load["seconds"],
            COLDSTART_LIMIT,
            unit=" s",
        )
        for load in loads
    ]


def memory_targets(document: Any) -> list[Result]:
    """What `bench.memory --json` reports as its targets (its own verdicts), else SKIP."""
    if isinstance(document, dict) and isinstance(document.get("targets"), list):
        return list(document["targets"])
    return [
        target(f"memory: {stage} RSS(20M) / RSS(1M) <= 1.3", None, 1.3)
        for stage in ("Validate", "Trusted")
    ]


def all_targets(sections: dict[str, Result]) -> list[Result]:
    checks: list[Result] = []
    inprocess = _of(sections, "inprocess")
    checks += inprocess["targets"] if inprocess else []
    through = _of(sections, "through_s3")
    checks += through["targets"] if through else []
    checks += sameday_targets(_of(sections, "sameday"))
    manydays = _of(sections, "manydays")
    checks += manydays["targets"] if manydays else []
    checks += coldstart_targets(_of(sections, "coldstart"))
    checks += memory_targets(_of(sections, "memory"))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--out", type=Path, help="JSON file (default bench/data/bench-<time>.json)")
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    info = machine()
    started = datetime.now(UTC)
    sections: dict[str, Result] = {}
    for name in wanted:
        if name == "memory" and not has_memory_section():
            print("== memory: bench/memory.py is not there, skipped", file=sys.stderr)
            continue
        sections[name] = run_section(name, (QUICK if args.quick else ARGS)[name])
    checks = all_targets({k: v for k, v in sections.items() if k in wanted})
    # A target whose section was not asked for is left out rather than shown as SKIP.
    checks = [c for c in checks if _asked(c["target"], wanted)]
    document = {
        "started": started.isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": info,
        "machine_after": {"load_average": machine()["load_average"]},
        "sections": sections,
        "targets": checks,
    }
    out = args.out or DATA / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    print(machine_line(info))
    print()
    print(targets_table(checks))
    print()
    for name, section in sections.items():
        state = "ok" if section["exit_status"] == 0 else f"FAILED (exit {section['exit_status']})"
        print(f"{name}: {state}, {section['seconds']:.0f} s")
    print(f"results: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0 if all(s["exit_status"] == 0 for s in sections.values()) else 1


def _asked(name: str, wanted: list[str]) -> bool:
    prefixes = {
        "same day": "sameday",
        "days per file": "manydays",
        "cold start": "coldstart",
        "memory": "memory",
    }
    for prefix, section in prefixes.items():
        if name.startswith(prefix):
            return section in wanted
    if "through S3" in name or "sluice run" in name:
        return "through_s3" in wanted
    return "inprocess" in wanted


if __name__ == "__main__":
    sys.exit(main())

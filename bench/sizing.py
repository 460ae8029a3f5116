"""What each stage needs, measured as the functions run: memory, /tmp and time per input byte.

Every file goes through the local cloud (`sluice.local.LocalCloud`), whose functions run in
worker processes with Lambda's limits enforced; here the limits are set at Lambda's maximum so
nothing is cut short, and what each invocation used is read back:

- memory: the `max_memory_mb` of the stage's `Invocation` (the runtime samples the worker's
  resident memory every 10 ms, as Lambda's REPORT line reports it);
- duration: the invocation's `duration_ms` (this machine's CPUs, not Lambda's: see
  `sluice.sizing` for how it is scaled);
- /tmp: the largest use of the worker's tmpfs seen while it ran, sampled every 20 ms through
  `/proc/<pid>/root` (the tmpfs lives in the worker's own mount namespace);
- the staged Parquet's size (the `_staging/` object in TRUSTED, as Validate reports it).

    python -m bench.sizing                         # every format, the default sizes
    python -m bench.sizing --formats csv,xlsx --out bench/data/sizing.json
    python -m bench.sizing --fit bench/sizing-2026-12-03.json   # the lines for sluice.sizing
    python -m bench.sizing --table                 # docs/deploy.md's table from the model

Inputs are cached in `bench/data/sizing/` (git-ignored). The rows are `bench.generate`'s
transactions in each format: CSV, gzip CSV, JSON Lines, a JSON array, xlsx (openpyxl
write-only) and Parquet (Snappy, text columns as the generator makes them).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import math
import os
import platform
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.generate import generate, parse_rows
from bench.generate import table as transactions
from sluice import sizing
from sluice.config import WORKFLOW_STAGES
from sluice.environments import StageSettings
from sluice.state import ExecutionState

DATA = Path("bench/data/sizing")
# Rows per format: 3-4 sizes each. The whole-file readers (JSON, xlsx) hold every value as a
# Python object, so they get smaller files; xlsx is also slow to write and to read.
SIZES: dict[str, tuple[int, ...]] = {
    "csv": (500_000, 1_000_000, 2_500_000, 5_000_000),
    "csv.gz": (500_000, 1_000_000, 2_500_000, 5_000_000),
    "jsonl": (100_000, 250_000, 500_000, 1_000_000),
    "json": (100_000, 250_000, 500_000, 1_000_000),
    "xlsx": (25_000, 50_000, 100_000),
    "parquet": (1_000_000, 2_500_000, 5_000_000, 10_000_000),
}
FORMATS = tuple(SIZES)
# Lambda's largest function: nothing measured here is cut short by a limit.
UNLIMITED = StageSettings(
    memory_mb=sizing.MEMORY_RANGE[1],
    timeout_seconds=sizing.MAX_TIMEOUT_SECONDS,
    ephemeral_storage_mb=sizing.EPHEMERAL_RANGE[1],
)
TMP_SAMPLE_SECONDS = 0.02
WARM_UP_ROWS = 10_000
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class StageUse:
    max_memory_mb: int
    duration_ms: float
    max_tmp_mb: float
    cpu_seconds: float


@dataclass(frozen=True)
class Measurement:
    format: str
    rows: int
    bytes: int
    inflated_bytes: int
    staged_bytes: int
    status: str
    stages: dict[str, StageUse]


# --------------------------------------------------------------------------- inputs


def _records(rows: int) -> Iterator[dict[str, Any]]:
    """The generator's rows as a JSON or spreadsheet export types them: numbers as numbers."""
    data = transactions(rows).to_pylist()
    for row in data:
        record: dict[str, Any] = dict(row)
        record["id"] = int(row["id"])
        # Unreadable amounts stay text, as an export would carry them.
        with contextlib.suppress(ValueError, TypeError):
            record["amount"] = float(row["amount"])
        yield record


def make_input(fmt: str, rows: int) -> Path:
    """The cached input file of `rows` transactions in `fmt`."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"tx_{rows}.{fmt}"
    if path.exists():
        return path
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "csv":
        generate(rows, tmp)
    elif fmt == "csv.gz":
        plain = make_input("csv", rows)
        with plain.open("rb") as src, gzip.open(tmp, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 8 * 1024 * 1024)
    elif fmt == "jsonl":
        with tmp.open("w", encoding="utf-8") as out:
            for record in _records(rows):
                out.write(json.dumps(record) + "\n")
    elif fmt == "json":
        with tmp.open("w", encoding="utf-8") as out:
            out.write("[\n")
            for i, record in enumerate(_records(rows)):
                out.write(("," if i else "") + json.dumps(record) + "\n")
            out.write("]\n")
    elif fmt == "xlsx":
        import openpyxl

        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet()
        sheet.append(["id", "name", "amount", "date", "category"])
        for record in _records(rows):
            sheet.append(list(record.values()))
        book.save(tmp)
    elif fmt == "parquet":
        pq.write_table(transactions(rows), tmp, compression="snappy")
    else:
        raise ValueError(f"unknown format {fmt!r}")
    tmp.replace(path)
    return path


def inflated_size(path: Path) -> int:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as stream:
            return sum(len(chunk) for chunk in iter(lambda: stream.read(8 << 20), b""))
    return path.stat().st_size


# --------------------------------------------------------------------------- /tmp sampling


class TmpSampler:
    """The largest /tmp use of each stage's worker processes since the last `reset`, and the
    CPU seconds they used since then (what Lambda's CPU share bounds)."""

    def __init__(self, tmp_mb: dict[str, int] | None = None) -> None:
        # Each stage's tmpfs size: a worker whose /tmp is not yet its own shows the host's.
        self.tmp_mb = tmp_mb or {}
        self.peak: dict[str, int] = {}
        self._cpu_at_reset: dict[int, float] = {}
        self._cpu: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TmpSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def reset(self) -> None:
        with self._lock:
            self.peak = {}
            self._cpu_at_reset = {pid: cpu for pid, (_, cpu) in self._cpu.items()}

    def cpu_seconds(self) -> dict[str, float]:
        used: dict[str, float] = {}
        with self._lock:
            for pid, (stage, cpu) in self._cpu.items():
                used[stage] = used.get(stage, 0.0) + cpu - self._cpu_at_reset.get(pid, cpu)
        return used

    def _workers(self) -> list[tuple[int, str, str]]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if b"sluice.local.worker" not in argv:
                    continue
                # This cloud's workers only: other clouds may run on the machine.
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != os.getpid():
                    continue
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            tmp = next((e[7:].decode() for e in environ if e.startswith(b"TMPDIR=")), "")
            stage = argv[argv.index(b"sluice.local.worker") + 2].decode()
            if tmp and stage in WORKFLOW_STAGES:
                found.append((int(entry.name), stage, tmp))
        return found

    def _run(self) -> None:
        workers: list[tuple[int, str, str]] = []
        refreshed = 0.0
        while not self._stop.wait(TMP_SAMPLE_SECONDS):
            if time.monotonic() - refreshed > 0.2:
                workers, refreshed = self._workers(), time.monotonic()
            for pid, stage, tmp in workers:
                try:
                    stat = os.statvfs(f"/proc/{pid}/root{tmp}")
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                # utime and stime (fields 14 and 15 of /proc/<pid>/stat), in clock ticks.
                cpu = (int(fields[11]) + int(fields[12])) / _TICKS
                with self._lock:
                    self._cpu[pid] = (stage, cpu)
                    self._cpu_at_reset.setdefault(pid, cpu)
                # Only the worker's own tmpfs counts (a worker not yet mounted shows the host's).
                expected = self.tmp_mb.get(stage, UNLIMITED.ephemeral_storage_mb)
                if stat.f_blocks * stat.f_frsize != expected * 2**20:
                    continue
                used = (stat.f_blocks - stat.f_bfree) * stat.f_frsize
                with self._lock:
                    self.peak[stage] = max(self.peak.get(stage, 0), used)


# --------------------------------------------------------------------------- running


def measure(fmt: str, rows: int, cloud: Any, sampler: TmpSampler) -> Measurement:
    path = make_input(fmt, rows)
    before = len(cloud.runtime.invocations)
    sampler.reset()
    time.sleep(0.5)  # the sampler sees each worker's starting point before the file arrives
    source = cloud.upload(path, "transactions", day=date(2024, 4, 1))
    described = cloud.wait(source, timeout=3600)
    invocations = cloud.runtime.invocations[before:]
    time.sleep(0.1)  # one more sample of each worker's CPU after its invocation
    cpu = sampler.cpu_seconds()
    stages: dict[str, StageUse] = {}
    for stage in WORKFLOW_STAGES:
        name = cloud.names.function(stage)
        mine = [i for i in invocations if i.function == name]
        if mine:
            last = mine[-1]
            stages[stage] = StageUse(
                last.max_memory_mb,
                round(last.duration_ms, 1),
                round(sampler.peak.get(stage, 0) / 2**20, 1),
                round(cpu.get(stage, 0.0), 2),
            )
    # (the staged object is removed once Trusted's outputs are in: Validate says its size)
    validated = ExecutionState.from_dict(json.loads(described["output"])).validated()
    staged_bytes = validated.bytes_out
    return Measurement(
        fmt,
        rows,
        path.stat().st_size,
        inflated_size(path),
        staged_bytes,
        str(described["status"]),
        stages,
    )


def machine() -> dict[str, Any]:
    import numpy
    import openpyxl

    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "python": platform.python_version(),
        "pyarrow": pa.__version__,
        "numpy": numpy.__version__,
        "openpyxl": openpyxl.__version__,
        "commit": commit,
    }


def print_table(results: list[Measurement]) -> None:
    print(
        "| format | rows | MB | inflated MB | staged MB | status | "
        + " | ".join(f"{s} MB mem / s / CPU s / MB tmp" for s in WORKFLOW_STAGES)
        + " |"
    )
    print("|---|---:|---:|---:|---:|---|" + "---:|" * len(WORKFLOW_STAGES))
    for m in results:
        cells = []
        for stage in WORKFLOW_STAGES:
            use = m.stages.get(stage)
            cells.append(
                "–"
                if use is None
                else f"{use.max_memory_mb} / {use.duration_ms / 1000:.2f} / "
                f"{use.cpu_seconds:.2f} / {use.max_tmp_mb:.0f}"
            )
        print(
            f"| {m.format} | {m.rows:,} | {m.bytes / 1e6:.1f} | {m.inflated_bytes / 1e6:.1f} | "
            f"{m.staged_bytes / 1e6:.1f} | {m.status} | " + " | ".join(cells) + " |"
        )


# --------------------------------------------------------------------------- the model


def fit_line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(base, per MB): the least-squares slope (never below 0), its base lifted until the line
    is at or above every point, so the model never promises less than was measured."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    slope = max(0.0, sum((x - mean_x) * (y - mean_y) for x, y in points) / var) if var else 0.0
    base = max(y - slope * x for x, y in points)
    return round(base, 3), round(slope, 5)


def _points(
    results: list[dict[str, Any]], stage: str, field: str, scale: float = 1.0, x: str = "inflated"
) -> list[tuple[float, float]]:
    """(MB, measured value) of one stage's field in each result; MB of the input as inflated,
    or of the staged Parquet (`x="staged"`)."""
    key = "inflated_bytes" if x == "inflated" else "staged_bytes"
    return [(r[key] / 2**20, r["stages"][stage][field] * scale) for r in results]


FIELDS = {
    "memory_mb": ("max_memory_mb", 1.0),
    "tmp_mb": ("max_tmp_mb", 1.0),
    "cpu_seconds": ("cpu_seconds", 1.0),
    "wall_seconds": ("duration_ms", 1 / 1000),
}
# Trusted and Delivery read the staged Parquet, which is the same whatever the RAW format: their
# lines are fitted over staged MB with every format's results, then scaled by each format's
# staged MB per input MB. (Fitted per format, the small xlsx files would extrapolate noise.)
STAGED_STAGES = ("trusted", "delivery")


def fit(results: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    """Per format and stage, the (base, per input MB) lines of memory, /tmp, CPU and wall
    seconds."""
    done = [r for r in results if r["status"] == "SUCCEEDED"]
    # A warm environment keeps some of what its largest file so far made it allocate: each
    # file's memory is set against the largest staged file before it (results are in run
    # order), so a small file measured after a big one does not lift the base of the line.
    warm = []
    for i, r in enumerate(done):
        largest = max(d["staged_bytes"] for d in done[: i + 1])
        warm.append({**r, "staged_bytes": largest})
    staged_lines = {
        stage: {
            name: fit_line(
                _points(warm if name == "memory_mb" else done, stage, field, scale, "staged")
            )
            for name, (field, scale) in FIELDS.items()
        }
        for stage in STAGED_STAGES
    }
    lines: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    for fmt in dict.fromkeys(r["format"] for r in done):
        mine = [r for r in done if r["format"] == fmt]
        staged_per_mb = max(r["staged_bytes"] / r["inflated_bytes"] for r in mine)
        lines[fmt] = {
            "validate": {
                name: fit_line(_points(mine, "validate", field, scale))
                for name, (field, scale) in FIELDS.items()
            }
        }
        for stage in STAGED_STAGES:
            lines[fmt][stage] = {
                name: (base, round(per_mb * staged_per_mb, 5))
                for name, (base, per_mb) in staged_lines[stage].items()
            }
    if "csv.gz" in lines and "csv" in lines:
        # A gzip may hardly compress: its download is bounded by its inflated size only, so
        # Validate's /tmp is taken as a plain CSV's of the same inflated size.
        lines["csv.gz"]["validate"]["tmp_mb"] = lines["csv"]["validate"]["tmp_mb"]
    return lines


def print_costs(lines: dict[str, dict[str, dict[str, tuple[float, float]]]]) -> None:
    """The fitted lines as `sluice.sizing.COSTS` spells them."""
    # Trusted's and Delivery's bases are the same for every format: `_trusted` and `_delivery`
    # hold them, and each format names its slopes.
    for stage in STAGED_STAGES:
        fields = next(iter(lines.values()))[stage]
        bases = ", ".join(f"{name} {b}" for name, (b, _) in fields.items())
        print(f"# _{stage}'s bases: {bases}")
    print("COSTS: dict[str, dict[str, StageCost]] = {")
    for fmt, stages in lines.items():
        print(f"    {fmt!r}: {{")
        for stage, fields in stages.items():
            if stage in STAGED_STAGES:
                # Delivery writes nothing to /tmp; its one-day memory is `bench.oneday`'s fit.
                slopes = ", ".join(
                    f"{_SLOPE_NAMES[name]}={k}"
                    for name, (_, k) in fields.items()
                    if not (stage == "delivery" and name == "tmp_mb")
                )
                extra = ", one_day_memory=..." if stage == "delivery" else ""
                print(f"        {stage!r}: _{stage}({slopes}{extra}),")
            else:
                cells = ", ".join(f"{name}=_line({b}, {k})" for name, (b, k) in fields.items())
                print(f"        {stage!r}: StageCost({cells}),")
        print("    },")
    print("}")


_SLOPE_NAMES = {
    "memory_mb": "memory",
    "tmp_mb": "tmp",
    "cpu_seconds": "cpu",
    "wall_seconds": "wall",
}


MEMORY_SETTINGS = (512, 1024, 1769, 3008, 10_240)


def print_sizing_table() -> None:
    """docs/deploy.md's table, from `sluice.sizing`: per format and memory (all three stages),
    the largest file with Lambda's largest /tmp and timeout, the /tmp and timeout that file
    needs, and what it costs."""
    from sluice import sizing
    from sluice.formats import LIMIT_FORMATS

    print(
        "| format | memory MB | largest file MB | ephemeral MB (validate / trusted / delivery) "
        "| timeout s (validate / trusted / delivery) | GB-s |"
    )
    print("|---|---:|---:|---|---|---:|")
    # gzip JSON and JSON Lines take the plain formats' lines (sluice.sizing.cost).
    for fmt in [f for f in LIMIT_FORMATS if f not in ("json.gz", "jsonl.gz")]:
        for memory in MEMORY_SETTINGS:
            roomy = StageSettings(memory, sizing.MAX_TIMEOUT_SECONDS, sizing.EPHEMERAL_RANGE[1])
            stages = dict.fromkeys(WORKFLOW_STAGES, roomy)
            size = sizing.largest_file(fmt, stages)
            mb = size / sizing.MB
            if size == 0:
                print(f"| {fmt} | {memory} | none | – | – | – |")
                continue
            costs = sizing.cost(fmt)
            tmp = [
                max(sizing.EPHEMERAL_RANGE[0], math.ceil(costs[s].tmp_needed(mb)))
                for s in WORKFLOW_STAGES
            ]
            seconds = [math.ceil(costs[s].seconds(mb, memory)) for s in WORKFLOW_STAGES]
            print(
                f"| {fmt} | {memory} | {mb:,.0f} | {' / '.join(str(t) for t in tmp)} | "
                f"{' / '.join(str(t) for t in seconds)} | "
                f"{sizing.gb_seconds(fmt, size, stages):,.0f} |"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--max-rows", type=int, default=None, help="skip larger sizes")
    parser.add_argument("--rows", default="", help="these row counts instead (e.g. 10m,20m)")
    parser.add_argument("--out", type=Path, default=Path("bench/data/sizing.json"))
    parser.add_argument(
        "--fit", type=Path, nargs="*", default=None, help="print the model fitted to results files"
    )
    parser.add_argument(
        "--table", action="store_true", help="print docs/deploy.md's table from sluice.sizing"
    )
    args = parser.parse_args(argv)
    if args.fit is not None:
        results = [
            r for path in args.fit for r in json.loads(path.read_text(encoding="utf-8"))["results"]
        ]
        print_costs(fit(results))
        return
    if args.table:
        print_sizing_table()
        return
    from sluice.local import LocalCloud

    formats = [f for f in args.formats.split(",") if f]
    plan = [
        (fmt, rows)
        for fmt in formats
        for rows in ([parse_rows(r) for r in args.rows.split(",")] if args.rows else SIZES[fmt])
        if args.max_rows is None or rows <= args.max_rows
    ]
    for fmt, rows in plan:
        make_input(fmt, rows)
    results: list[Measurement] = []
    sampler = TmpSampler().start()
    stages = dict.fromkeys(WORKFLOW_STAGES, UNLIMITED)
    try:
        with LocalCloud(stages=stages, max_file_bytes=100 * 2**30) as cloud:
            # Every stage warm before the first measurement: no init phase in the figures.
            time.sleep(5)
            measure("csv", WARM_UP_ROWS, cloud, sampler)
            for fmt, rows in plan:
                result = measure(fmt, rows, cloud, sampler)
                results.append(result)
                print(json.dumps(asdict(result)), flush=True)
    finally:
        sampler.stop()
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    document = {"machine": machine(), "results": [asdict(m) for m in results]}
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

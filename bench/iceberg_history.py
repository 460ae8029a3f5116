"""Does one Sluice commit to an Iceberg table (pyiceberg) stay flat as history grows?

    python -m bench.iceberg_history [--sections history,batch,concurrency,s3]
        [--marks 10,100,300,1000] [--configs a,b,c,d] [--budget 300] [--batch 1,10,50]
        [--batch-n 300] [--writers 50] [--s3-n 300] [--s3-config d] [--json out.json]

The write Sluice would make per execution: one source object -> 1,000 rows over 1-3 days;
one transaction `overwrite(df, overwrite_filter=EqualTo("source_file", X))` (a delete that
drops the source's previous whole data files -- each holds one source's rows of one day --
plus an append). Table partitioned by `day(event_date)`. New sources each commit, every 10th
commit a rerun of an earlier source. Every commit is a fresh `load_table` + transaction, as a
Lambda would make it.

- history: a local-filesystem warehouse (`file://`, PyArrowFileIO) and an SqlCatalog on
  sqlite; per config the ms/commit (mean of the 10 commits before each mark), metadata.json
  bytes, manifest-list entries, and the files pyiceberg opened per commit (manifests,
  manifest lists, metadata.json), snapshots, snapshot log, metadata log, files on disk.
  Configs: a defaults; b manifest merge; c b + metadata cleanup (previous-versions-max 10);
  d c + `expire_snapshots` every 50 commits keeping the last 20. `--budget` seconds per
  config: a config that runs out stops at the last mark it reached.
- batch: one committer commits B executions in one transaction (`overwrite` with
  `In("source_file", [...])` + the append of all B executions' rows), config d, `--batch-n`
  executions; ms per execution and rows exactly once.
- concurrency: `--writers` threads each replace one source (v1 -> v2) at once: pyiceberg's
  retry off (`commit.retry.num-retries=0`) and Sluice's own retry of CommitFailedException
  (full jitter, base 0.1 s, cap 5 s, 20 attempts, the table reloaded each attempt), against
  pyiceberg's built-in retry (default properties, one call).
- s3: the history of one config against the local S3 of `sluice.local.cloud.LocalCloud`,
  with S3 requests per commit.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.iceberg_probe import (
    DAY0,
    NAMESPACE,
    SCHEMA,
    Requests,
    catalog,
    local_cloud,
    object_bytes,
)

CONFIGS: dict[str, dict[str, str]] = {
    "a": {},
    "b": {
        "commit.manifest-merge.enabled": "true",
        "commit.manifest.min-count-to-merge": "100",
        "commit.manifest.target-size-bytes": str(8 * 2**20),
    },
}
CONFIGS["c"] = {
    **CONFIGS["b"],
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "10",
}
CONFIGS["d"] = dict(CONFIGS["c"])
# e: d, the delete filter also naming the source's days (partition values), so that
# manifests whose partition summaries miss those days are not read; f: e without the merge.
CONFIGS["e"] = dict(CONFIGS["d"])
CONFIGS["f"] = {
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "10",
}
EXPIRE = dict.fromkeys("def", (50, 20))  # every 50 commits keep the last 20 snapshots
SCOPED = {"e", "f"}
ROWS = 1000
TABLE_SCHEMA = (
    SCHEMA.append(pa.field("year", pa.string(), nullable=False))
    .append(pa.field("month", pa.string(), nullable=False))
    .append(pa.field("day", pa.string(), nullable=False))
)


# -- what pyiceberg opens ------------------------------------------------------------------

OPENED: Counter[str] = Counter()
_LOCK = threading.Lock()


def kind(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    if name.endswith(".metadata.json"):
        return "metadata.json"
    if name.startswith("snap-") and name.endswith(".avro"):
        return "manifest list"
    if re.search(r"-m\d+\.avro$", name):
        return "manifest"
    if name.endswith(".parquet"):
        return "data"
    return "other"


def count_io() -> None:
    """Count every input pyiceberg's PyArrowFileIO opens and every output it creates."""
    from pyiceberg.io.pyarrow import PyArrowFileIO

    if getattr(PyArrowFileIO, "_counted", False):
        return
    new_input, new_output = PyArrowFileIO.new_input, PyArrowFileIO.new_output

    def counted_input(self: Any, location: str) -> Any:
        with _LOCK:
            OPENED["read " + kind(location)] += 1
        return new_input(self, location)

    def counted_output(self: Any, location: str) -> Any:
        with _LOCK:
            OPENED["write " + kind(location)] += 1
        return new_output(self, location)

    PyArrowFileIO.new_input = counted_input  # type: ignore[method-assign]
    PyArrowFileIO.new_output = counted_output  # type: ignore[method-assign]
    PyArrowFileIO._counted = True  # type: ignore[attr-defined]


def take_io() -> dict[str, int]:
    with _LOCK:
        got = dict(OPENED)
        OPENED.clear()
    return got


# -- the table and the workload --------------------------------------------------------------


def local_catalog(work: Path, name: str) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    (work / f"wh-{name}").mkdir(parents=True, exist_ok=True)
    return SqlCatalog(
        "sluice",
        uri=f"sqlite:///{work}/{name}.db",
        warehouse=f"file://{work}/wh-{name}",
        **{"py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO"},
    )


def create_day_table(cat: Any, name: str, properties: dict[str, str]) -> Any:
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import IdentityTransform
    from pyiceberg.types import DateType, DoubleType, LongType, NestedField, StringType

    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "source_file", StringType(), required=True),
        NestedField(3, "event_date", DateType(), required=True),
        NestedField(4, "amount", DoubleType(), required=False),
        NestedField(5, "category", StringType(), required=False),
        NestedField(6, "year", StringType(), required=True),
        NestedField(7, "month", StringType(), required=True),
        NestedField(8, "day", StringType(), required=True),
        identifier_field_ids=[1],
    )
    # day(event_date) needs pyiceberg-core (Rust) for the write; identity on strings does not.
    spec = PartitionSpec(
        *(
            PartitionField(f, 1000 + i, IdentityTransform(), n)
            for i, (f, n) in enumerate(((6, "year"), (7, "month"), (8, "day")))
        )
    )
    cat.create_namespace_if_not_exists(NAMESPACE)
    return cat.create_table(
        f"{NAMESPACE}.{name}",
        schema,
        partition_spec=spec,
        properties={"format-version": "2", **properties},
    )


def source_rows(
    k: int, version: int, days: int | None = None, day0: date | None = None
) -> pa.Table:
    """Source k's 1,000 rows (ids k*1000..), over 1-3 days from DAY0 + k // 10."""
    n_days = days or 1 + k % 3
    first = day0 or DAY0 + timedelta(days=k // 10)
    day_of = [first + timedelta(days=i % n_days) for i in range(ROWS)]
    return pa.table(
        {
            "id": pa.array(range(k * ROWS, (k + 1) * ROWS), pa.int64()),
            "source_file": pa.array([f"s3://raw/src{k}.csv"] * ROWS),
            "event_date": pa.array(day_of, pa.date32()),
            "amount": pa.array([float(version) + i % 7 for i in range(ROWS)], pa.float64()),
            "category": pa.array(["Sales" if i % 2 else "Travel" for i in range(ROWS)]),
            "year": pa.array([f"{d.year:04d}" for d in day_of]),
            "month": pa.array([f"{d.month:02d}" for d in day_of]),
            "day": pa.array([f"{d.day:02d}" for d in day_of]),
        },
        schema=TABLE_SCHEMA,
    )


def executions(n: int, seed: int = 7) -> list[tuple[int, int]]:
    """(source, version) per execution: a new source each time, every 10th a rerun."""
    rng = random.Random(seed)
    out: list[tuple[int, int]] = []
    versions: dict[int, int] = {}
    fresh = 0
    for i in range(n):
        if i % 10 == 9 and fresh > 0:
            k = rng.randrange(fresh)
        else:
            k, fresh = fresh, fresh + 1
        versions[k] = versions.get(k, 0) + 1
        out.append((k, versions[k]))
    return out


def day_filter(df: pa.Table) -> Any:
    """The partitions `df` falls in, as a predicate on year/month/day."""
    from pyiceberg.expressions import And, EqualTo, Or

    days = sorted(
        set(zip(*(df.column(c).to_pylist() for c in ("year", "month", "day")), strict=True))
    )
    parts = [And(EqualTo("year", y), EqualTo("month", m), EqualTo("day", d)) for y, m, d in days]
    return parts[0] if len(parts) == 1 else Or(*parts)


def commit(table: Any, batch: list[tuple[int, int]], execution: str, scoped: bool = False) -> None:
    """One transaction: drop the previous rows of each source in `batch`, append the new.
    `scoped`: the filter also names the days (the previous version's days are the new
    version's here; Sluice would keep the previous contribution's days in its state)."""
    from pyiceberg.expressions import And, EqualTo, In

    latest: dict[int, int] = {}
    for k, v in batch:  # a source twice in one batch: the later execution wins
        latest[k] = v
    sources = [f"s3://raw/src{k}.csv" for k in latest]
    df = pa.concat_tables([source_rows(k, v) for k, v in latest.items()])
    flt = EqualTo("source_file", sources[0]) if len(sources) == 1 else In("source_file", sources)
    if scoped:
        flt = And(flt, day_filter(df))
    props = {"sluice.execution": execution, "sluice.sources": str(len(sources))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Delete operation did not match any records"
        with table.transaction() as tx:
            tx.overwrite(df, overwrite_filter=flt, snapshot_properties=props)


def file_bytes(location: str, cloud: Any = None) -> int:
    if location.startswith("s3://"):
        return object_bytes(cloud, location)
    return Path(location.removeprefix("file://")).stat().st_size


def check_rows(table: Any, expected: dict[int, int]) -> dict[str, Any]:
    data = table.scan(selected_fields=("id", "source_file", "amount")).to_arrow()
    ids = data.column("id").to_pylist()
    amounts = data.column("amount").to_pylist()
    got_version: dict[int, set[int]] = {}
    for i, a in zip(ids, amounts, strict=True):
        got_version.setdefault(i // ROWS, set()).add(round(a - (i % ROWS) % 7))
    stale = sum(1 for k, v in expected.items() if got_version.get(k) != {v})
    return {
        "rows": data.num_rows,
        "expected_rows": len(expected) * ROWS,
        "distinct_ids": len(set(ids)),
        "sources_with_wrong_version": stale,
    }


# -- history ---------------------------------------------------------------------------------


def run_history(
    cat: Any,
    name: str,
    config: str,
    marks: list[int],
    budget: float,
    cloud: Any = None,
) -> dict[str, Any]:
    create_day_table(cat, name, CONFIGS[config])
    ident = f"{NAMESPACE}.{name}"
    plan = executions(max(marks))
    req = Requests(cloud, "admin") if cloud else None
    per: list[dict[str, Any]] = []
    points: dict[int, Any] = {}
    expire_ms: list[float] = []
    started_all = time.perf_counter()
    expected: dict[int, int] = {}
    table = None
    for i, (k, v) in enumerate(plan):
        take_io()
        if req:
            req.reset()
        started = time.perf_counter()
        table = cat.load_table(ident)
        commit(table, [(k, v)], f"x{i}", scoped=config in SCOPED)
        seconds = time.perf_counter() - started
        expected[k] = v
        per.append({"s": seconds, "io": take_io(), "req": req.take() if req else {}})
        if config in EXPIRE and (i + 1) % EXPIRE[config][0] == 0:
            t0 = time.perf_counter()
            table = cat.load_table(ident)
            ids = [s.snapshot_id for s in table.metadata.snapshots]
            keep = EXPIRE[config][1]
            if len(ids) > keep:
                table.maintenance.expire_snapshots().by_ids(ids[:-keep]).commit()
            expire_ms.append((time.perf_counter() - t0) * 1000)
            take_io()
        if i + 1 in marks:
            table = cat.load_table(ident)
            snap = table.current_snapshot()
            window = per[-min(10, len(per)) :]
            io_mean: Counter[str] = Counter()
            for p in window:
                io_mean.update(p["io"])
            req_mean = sum(sum(p["req"].values()) for p in window) / len(window)
            meta_dir = table.location().removeprefix("file://") + "/metadata"
            on_disk = [p.name for p in Path(meta_dir).iterdir()] if not cloud else []
            point = {
                "ms_per_commit": 1000 * sum(p["s"] for p in window) / len(window),
                "opened_per_commit": {k2: v2 / len(window) for k2, v2 in sorted(io_mean.items())},
                "s3_requests_per_commit": req_mean if cloud else None,
                "metadata_json_bytes": file_bytes(table.metadata_location, cloud),
                "manifest_list_bytes": file_bytes(snap.manifest_list, cloud),
                "manifest_list_entries": len(snap.manifests(table.io)),
                "snapshots": len(table.metadata.snapshots),
                "snapshot_log": len(table.metadata.snapshot_log),
                "metadata_log": len(table.metadata.metadata_log),
                "metadata_files_on_disk": sum(1 for f in on_disk if f.endswith(".json")),
                "avro_files_on_disk": sum(1 for f in on_disk if f.endswith(".avro")),
                "elapsed_s": time.perf_counter() - started_all,
            }
            take_io()
            points[i + 1] = point
            opened = point["opened_per_commit"]
            print(
                f"  {name:10s} N={i + 1:5d} {point['ms_per_commit']:7.1f} ms/commit  read "
                f"manifests {opened.get('read manifest', 0):6.1f} lists "
                f"{opened.get('read manifest list', 0):4.1f} json "
                f"{opened.get('read metadata.json', 0):3.1f}"
                + (f"  S3 req {req_mean:5.1f}" if cloud else "")
                + f"  metadata.json {point['metadata_json_bytes']:8d} B  list entries "
                f"{point['manifest_list_entries']:4d}  snapshots {point['snapshots']:4d}  "
                f"snap-log {point['snapshot_log']:4d}  meta-log {point['metadata_log']:3d}  "
                f"on disk json {point['metadata_files_on_disk']:4d} avro "
                f"{point['avro_files_on_disk']:5d}",
                flush=True,
            )
        if time.perf_counter() - started_all > budget and i + 1 < max(marks):
            print(f"  {name}: budget {budget:.0f} s spent after {i + 1} commits", flush=True)
            break
    reached = sorted(points)
    out: dict[str, Any] = {"points": points, "commits": len(per)}
    if len(reached) > 1:
        out["ratio"] = points[reached[-1]]["ms_per_commit"] / points[reached[0]]["ms_per_commit"]
        out["ratio_of"] = f"N={reached[-1]}/N={reached[0]}"
        print(f"  {name:10s} ms/commit {out['ratio_of']}: {out['ratio']:.2f}", flush=True)
    if expire_ms:
        out["expire_ms_mean"] = sum(expire_ms) / len(expire_ms)
        out["expire_ms_last"] = expire_ms[-1]
        print(f"  {name:10s} expiry: {out['expire_ms_mean']:.1f} ms mean, last {expire_ms[-1]:.1f}")
    table = cat.load_table(ident)
    out["check"] = check_rows(table, expected)
    print(f"  {name:10s} rows: {out['check']}", flush=True)
    return out


# -- batching --------------------------------------------------------------------------------


def run_batch(work: Path, sizes: list[int], n: int, config: str = "d") -> dict[str, Any]:
    out: dict[str, Any] = {}
    plan = executions(n)
    for b in sizes:
        cat = local_catalog(work, f"batch{b}")
        name = f"batch_{b}"
        create_day_table(cat, name, CONFIGS[config])
        ident = f"{NAMESPACE}.{name}"
        expected: dict[int, int] = {}
        started = time.perf_counter()
        commits = 0
        for j in range(0, n, b):
            group = plan[j : j + b]
            commit(cat.load_table(ident), group, f"b{j}", scoped=config in SCOPED)
            commits += 1
            for k, v in group:
                expected[k] = v
            if commits % 50 == 0:
                table = cat.load_table(ident)
                ids = [s.snapshot_id for s in table.metadata.snapshots]
                if len(ids) > 20:
                    table.maintenance.expire_snapshots().by_ids(ids[:-20]).commit()
        seconds = time.perf_counter() - started
        table = cat.load_table(ident)
        out[b] = {
            "commits": commits,
            "seconds": seconds,
            "ms_per_execution": 1000 * seconds / n,
            "ms_per_commit": 1000 * seconds / commits,
            "snapshots": len(table.metadata.snapshots),
            "check": check_rows(table, expected),
        }
        print(
            f"  B={b:3d}: {commits:4d} commits, {seconds:6.1f} s, "
            f"{out[b]['ms_per_execution']:7.1f} ms/execution, "
            f"{out[b]['ms_per_commit']:7.1f} ms/commit  {out[b]['check']}",
            flush=True,
        )
    return out


# -- concurrency -----------------------------------------------------------------------------


class Retries(logging.Handler):
    """pyiceberg's own retries, from its "Commit failed due to a concurrent update" log."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "concurrent update" in record.getMessage():
            with _LOCK:
                self.count += 1


def run_concurrency(work: Path, writers: int, mode: str) -> dict[str, Any]:
    """`writers` threads each replace source k (v1 -> v2) at once. mode: "sluice" (pyiceberg
    retry off, Sluice's loop), "pyiceberg" (built-in retry, one call), "both"."""
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.expressions import EqualTo
    from pyiceberg.io.pyarrow import _dataframe_to_data_files

    props = dict(CONFIGS["d"])
    if mode == "sluice":
        props["commit.retry.num-retries"] = "0"
    name = f"conc_{mode}"
    cat = local_catalog(work, name)
    table = create_day_table(cat, name, props)
    ident = f"{NAMESPACE}.{name}"
    # v1 of each source in its own data file (as Sluice lays them out), one snapshot.
    with table.transaction() as tx, tx.update_snapshot().fast_append() as ap:
        for k in range(writers):
            for f in _dataframe_to_data_files(
                table.metadata, source_rows(k, 1, days=1, day0=DAY0), table.io, uuid.uuid4()
            ):
                ap.append_data_file(f)
    assert len(cat.load_table(f"{NAMESPACE}.{name}").inspect.files()) == writers
    handler = Retries()
    logging.getLogger("pyiceberg.table").addHandler(handler)
    attempts: list[int] = []
    failed: list[str] = []
    errors: Counter[str] = Counter()
    samples: dict[str, str] = {}
    gate = threading.Barrier(writers)
    own_loop = mode in ("sluice", "both")

    def writer(k: int) -> None:
        wcat = local_catalog(work, name)
        t = wcat.load_table(ident)
        src = f"s3://raw/src{k}.csv"
        props = {"sluice.execution": f"w{k}"}
        # The data file is written once; only the metadata commit is retried.
        files = list(
            _dataframe_to_data_files(
                t.metadata, source_rows(k, 2, days=1, day0=DAY0), t.io, uuid.uuid4()
            )
        )
        gate.wait()
        for attempt in range(1, 21 if own_loop else 2):
            try:
                t = wcat.load_table(ident)
                with t.transaction() as tx:
                    tx.delete(EqualTo("source_file", src), snapshot_properties=props)
                    with tx.update_snapshot(snapshot_properties=props).fast_append() as ap:
                        for f in files:
                            ap.append_data_file(f)
                with _LOCK:
                    attempts.append(attempt)
                return
            except CommitFailedException as exc:
                err = f"CommitFailedException: {str(exc)[:160]}"
            except Exception as exc:  # sqlite "database is locked", ValidationException
                err = f"{type(exc).__name__}: {str(exc)[:160]}"
            with _LOCK:
                errors[err.split(":")[0]] += 1
                samples.setdefault(err.split(":")[0], err)
            time.sleep(random.uniform(0, min(5.0, 0.1 * 2**attempt)))
        with _LOCK:
            failed.append(f"w{k}: {err}")

    started = time.perf_counter()
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    logging.getLogger("pyiceberg.table").removeHandler(handler)
    table = cat.load_table(ident)
    expected = {k: 2 for k in range(writers) if f"w{k}" not in {f.split(":")[0] for f in failed}}
    check = check_rows(table, {k: expected.get(k, 1) for k in range(writers)})
    out = {
        "mode": mode,
        "writers": writers,
        "seconds": seconds,
        "committed": len(attempts),
        "failed": len(failed),
        "failed_first": failed[:3],
        "sluice_attempts_mean": sum(attempts) / max(1, len(attempts)),
        "sluice_attempts_max": max(attempts, default=0),
        "pyiceberg_retries": handler.count,
        "errors_by_type": dict(errors),
        "error_samples": samples,
        "check": check,
    }
    print(
        f"  {mode:9s} {writers} writers: {seconds:6.1f} s, committed {out['committed']}, failed "
        f"{out['failed']}, Sluice attempts mean {out['sluice_attempts_mean']:.1f} max "
        f"{out['sluice_attempts_max']}, pyiceberg retries {handler.count}, errors "
        f"{dict(errors)}, {check}\n    samples {samples}",
        flush=True,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="history,batch,concurrency")
    parser.add_argument("--marks", default="10,100,300,1000")
    parser.add_argument("--configs", default="a,b,c,d")
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--batch", default="1,10,50")
    parser.add_argument("--batch-n", type=int, default=300)
    parser.add_argument("--batch-config", default="d")
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--modes", default="sluice,pyiceberg")
    parser.add_argument("--s3-n", type=int, default=300)
    parser.add_argument("--s3-config", default="d")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    sections = args.sections.split(",")
    from importlib import metadata

    found: dict[str, Any] = {
        "python": sys.version.split()[0],
        "nproc": os.cpu_count(),
        "versions": {p: metadata.version(p) for p in ("pyiceberg", "pyarrow", "sqlalchemy")},
        "argv": sys.argv[1:] if argv is None else argv,
    }
    print(f"python {found['python']}, {found['nproc']} cpus, {found['versions']}", flush=True)
    count_io()
    marks = [int(m) for m in args.marks.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "history" in sections:
            print("history (file:// warehouse, sqlite SqlCatalog):", flush=True)
            found["history"] = {
                c: run_history(local_catalog(work, f"hist_{c}"), f"hist_{c}", c, marks, args.budget)
                for c in args.configs.split(",")
            }
        if "batch" in sections:
            print(f"batch (config {args.batch_config}, {args.batch_n} executions):", flush=True)
            found["batch"] = run_batch(
                work, [int(b) for b in args.batch.split(",")], args.batch_n, args.batch_config
            )
        if "concurrency" in sections:
            print("concurrency:", flush=True)
            found["concurrency"] = [
                run_concurrency(work, args.writers, m) for m in args.modes.split(",")
            ]
        if "s3" in sections:
            print(f"s3 (LocalCloud, config {args.s3_config}):", flush=True)
            with local_cloud() as cloud:
                cat = catalog(cloud, work / "s3.db", cloud.credentials, "trusted")
                s3_marks = sorted({m for m in (10, 100, args.s3_n) if m <= args.s3_n})
                found["s3"] = run_history(
                    cat, f"s3_{args.s3_config}", args.s3_config, s3_marks, args.budget, cloud
                )
    if args.json:
        args.json.write_text(json.dumps(found, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

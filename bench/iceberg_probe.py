"""A probe: could TRUSTED and DELIVERY be Apache Iceberg tables written with pyiceberg?

    python -m bench.iceberg_probe [--sections imports,layer,history,rewrite,concurrency,duckdb]
        [--commits 100] [--rows 10000,100000] [--writers 20] [--layer-dir /tmp/icelayer-x86_64]
        [--json]

Not wired into anything: it needs pyiceberg (`pip install 'pyiceberg[sql-sqlite,pyarrow]'`),
which Sluice does not depend on. Each section prints what it measured; times are for ratios
within one run (a busy 2-core machine moves absolute figures).

- imports: fresh-interpreter import seconds (best of 5) of pyarrow.parquet, pydantic, and what
  a writer needs (SQL or Glue catalog, table, PyArrow FileIO); the top `-X importtime` entries.
- layer: unzipped size of a `pip install --target` of pyiceberg for Lambda (made beforehand,
  `--layer-dir`), without `__pycache__` and tests, by package.
- history: a LocalCloud, an SqlCatalog (sqlite file) with its warehouse in the local TRUSTED
  bucket; `--commits` appends of one 1,000-row, one-day file, each a fresh `load_table` +
  append as a Lambda would make it; per commit the seconds and the S3 requests
  (`LocalCloud.requests_by_role`), metadata.json and manifest-list bytes, in three table
  configurations (default; manifest merge; merge + metadata cleanup + snapshot expiry).
- rewrite: tables of M rows (1,000-row source files over 100 days) and the cost of an append,
  an overwrite of one source's rows (filter on `source_file`, with and without its day), an
  upsert on the key, and a delete of one source's rows over 3 days.
- concurrency: `--writers` threads append a 100-row file each to one day of one table, each
  writing its data file once and retrying the metadata commit with jittered backoff. pyiceberg
  0.12 retries a conflicting commit itself first (`commit.retry.num-retries`, default 4, from
  100 ms doubling, +10% jitter; it logs "Commit failed due to a concurrent update"): the
  attempts counted here are the probe's own, each of which may hide up to 5 of pyiceberg's.
- duckdb: whether DuckDB's iceberg extension loads (offline it cannot be downloaded), and a
  pyiceberg scan handed to DuckDB as Arrow.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
DAY0 = date(2024, 1, 1)
NAMESPACE = "sluice"

IMPORTS = {
    "pyarrow.parquet": "import pyarrow.parquet",
    "pydantic": "import pydantic",
    "boto3": "import boto3",
    "pyiceberg.catalog.sql+table": "import pyiceberg.catalog.sql, pyiceberg.table",
    "writer (sql)": "import pyarrow.parquet, pyiceberg.catalog.sql, pyiceberg.table, "
    "pyiceberg.io.pyarrow, pyiceberg.expressions",
    "writer (glue)": "import pyarrow.parquet, boto3, pyiceberg.catalog.glue, pyiceberg.table, "
    "pyiceberg.io.pyarrow, pyiceberg.expressions",
}
CHILD = (
    "import time, sys; t = time.perf_counter(); exec(sys.argv[1]); "
    "print(time.perf_counter() - t, len(sys.modules))"
)


def import_seconds(statement: str, repeat: int = 5) -> tuple[float, int]:
    best, modules = float("inf"), 0
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, statement],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout.split()
        if float(out[0]) < best:
            best, modules = float(out[0]), int(out[1])
    return best, modules


def importtime_top(statement: str, top: int = 12) -> list[tuple[str, float]]:
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stderr
    rows = []
    for line in err.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(3)) <= 2:  # top-level packages only
            rows.append((m.group(4), int(m.group(2)) / 1e6))
    return sorted(rows, key=lambda r: -r[1])[:top]


def section_imports() -> dict[str, Any]:
    seconds = {name: import_seconds(stmt) for name, stmt in IMPORTS.items()}
    for name, (s, n) in seconds.items():
        print(f"  import {name:32s} {s:6.3f} s  {n:4d} modules")
    top = importtime_top(IMPORTS["writer (sql)"])
    print("  -X importtime, writer (sql), top-level cumulative:")
    for name, s in top:
        print(f"    {name:28s} {s:6.3f} s")
    return {"seconds": {k: v[0] for k, v in seconds.items()}, "importtime_top": top}


def section_layer(folder: Path) -> dict[str, Any]:
    if not folder.exists():
        print(
            f"  {folder} missing: pip install --platform manylinux2014_x86_64 "
            f"--only-binary=:all: --python-version 3.12 --target {folder} pyiceberg"
        )
        return {}
    sizes: dict[str, int] = {}
    for path in folder.rglob("*"):
        parts = path.relative_to(folder).parts
        if path.is_file() and "__pycache__" not in parts and "tests" not in parts:
            top = parts[0].split("-")[0] if parts[0].endswith(".dist-info") else parts[0]
            sizes[top] = sizes.get(top, 0) + path.stat().st_size
    total = sum(sizes.values())
    print(f"  {folder}: {total / 2**20:.1f} MiB unzipped (no __pycache__, no tests)")
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:12]:
        print(f"    {name:28s} {size / 2**20:6.1f} MiB")
    return {"total_bytes": total, "by_package": sizes}


# -- the local cloud and the catalog -------------------------------------------------------


@contextmanager
def local_cloud() -> Iterator[Any]:
    from sluice.local import LocalCloud

    with LocalCloud(publish_stack=False) as cloud:
        yield cloud


def catalog(cloud: Any, db: Path, creds: dict[str, str], bucket: str) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(
        "sluice",
        uri=f"sqlite:///{db}",
        warehouse=f"s3://{bucket}/_iceberg",
        **{
            "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO",
            "s3.endpoint": cloud.endpoint_url,
            "s3.region": "us-east-1",
            "s3.access-key-id": creds["AWS_ACCESS_KEY_ID"],
            "s3.secret-access-key": creds["AWS_SECRET_ACCESS_KEY"],
            **(
                {"s3.session-token": creds["AWS_SESSION_TOKEN"]}
                if creds.get("AWS_SESSION_TOKEN")
                else {}
            ),
        },
    )


SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("event_date", pa.date32(), nullable=False),
        pa.field("amount", pa.float64()),
        pa.field("category", pa.string()),
    ]
)


def rows(first_id: int, n: int, source: str, day: date, amount: float = 1.0) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(first_id, first_id + n), pa.int64()),
            "source_file": pa.array([source] * n),
            "event_date": pa.array([day] * n, pa.date32()),
            "amount": pa.array([amount + i % 7 for i in range(n)], pa.float64()),
            "category": pa.array(["Sales" if i % 2 else "Travel" for i in range(n)]),
        },
        schema=SCHEMA,
    )


def create_table(cat: Any, name: str, properties: dict[str, str] | None = None) -> Any:
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import IdentityTransform
    from pyiceberg.types import (
        DateType,
        DoubleType,
        LongType,
        NestedField,
        StringType,
    )

    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "source_file", StringType(), required=True),
        NestedField(3, "event_date", DateType(), required=True),
        NestedField(4, "amount", DoubleType(), required=False),
        NestedField(5, "category", StringType(), required=False),
        identifier_field_ids=[1],
    )
    spec = PartitionSpec(PartitionField(3, 1000, IdentityTransform(), "event_date"))
    cat.create_namespace_if_not_exists(NAMESPACE)
    return cat.create_table(
        f"{NAMESPACE}.{name}",
        schema,
        partition_spec=spec,
        properties={"format-version": "2", **(properties or {})},
    )


class Requests:
    """S3 requests the local cloud answered for one signer, between `reset` and `take`."""

    def __init__(self, cloud: Any, who: str) -> None:
        self.cloud, self.who = cloud, who

    def reset(self) -> None:
        self.cloud.reset_requests()

    def take(self) -> dict[str, int]:
        got = self.cloud.requests_by_role().get(self.who, {})
        return {k.removeprefix("s3 "): v for k, v in sorted(got.items()) if k.startswith("s3")}


def object_bytes(cloud: Any, url: str) -> int:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return int(cloud.client("s3").head_object(Bucket=bucket, Key=key)["ContentLength"])


def section_wiring(cloud: Any, work: Path) -> dict[str, Any]:
    """Which credentials can write a table: the Trusted role's (its grants as deployed), then
    the administrator's."""
    found: dict[str, Any] = {}
    for who, creds in (("trusted", cloud.role_credentials["trusted"]), ("admin", None)):
        cat = catalog(cloud, work / f"wiring-{who}.db", creds or cloud.credentials, "trusted")
        try:
            table = create_table(cat, f"wiring_{who}")
            table.append(rows(0, 1000, "s3://raw/a.csv", DAY0))
            table = cat.load_table(f"{NAMESPACE}.wiring_{who}")
            count = table.scan().to_arrow().num_rows
            found[who] = f"ok ({count} rows read back)"
        except Exception as exc:  # a probe reports what failed
            found[who] = f"{type(exc).__name__}: {str(exc)[:300]}"
        print(f"  write+read as {who}: {found[who]}")
    # A file larger than pyarrow's multipart threshold (S3FileSystem uploads in 10 MiB parts)
    cat = catalog(cloud, work / "wiring-admin.db", cloud.credentials, "trusted")
    table = cat.load_table(f"{NAMESPACE}.wiring_admin")
    cloud.reset_requests()
    big = pa.concat_tables(
        [rows(i * 200_000, 200_000, f"s3://raw/big{i}.csv", DAY0, i) for i in range(8)]
    )
    table.append(big)
    found["big_file_requests"] = Requests(cloud, "admin").take()
    found["big_rows_back"] = cat.load_table(f"{NAMESPACE}.wiring_admin").scan().to_arrow().num_rows
    print(
        f"  1.6M-row append: requests {found['big_file_requests']}, "
        f"rows back {found['big_rows_back']}"
    )
    return found


# -- cost vs history ---------------------------------------------------------------------------

CONFIGS = {
    "default": {},
    "merge": {"commit.manifest-merge.enabled": "true"},
    "tidy": {
        "commit.manifest-merge.enabled": "true",
        "write.metadata.delete-after-commit.enabled": "true",
        "write.metadata.previous-versions-max": "10",
    },
}
EXPIRE_EVERY = 10


def section_history(cloud: Any, work: Path, commits: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    marks = sorted({m for m in (10, 100, 1000, commits) if m <= commits})
    for config, properties in CONFIGS.items():
        cat = catalog(cloud, work / f"history-{config}.db", cloud.credentials, "trusted")
        name = f"history_{config}"
        create_table(cat, name, properties)
        req = Requests(cloud, "admin")
        per: list[dict[str, Any]] = []
        for i in range(commits):
            df = rows(i * 1000, 1000, f"s3://raw/f{i}.csv", DAY0)
            req.reset()
            started = time.perf_counter()
            table = cat.load_table(f"{NAMESPACE}.{name}")
            table.append(
                df,
                snapshot_properties={
                    "sluice.execution": f"x{i}",
                    "sluice.source": f"s3://raw/f{i}.csv",
                    "sluice.source-version": "v1",
                },
            )
            seconds = time.perf_counter() - started
            counted = req.take()
            if config == "tidy" and (i + 1) % EXPIRE_EVERY == 0:
                keep = table.metadata.snapshots[-EXPIRE_EVERY].timestamp_ms
                older = datetime.fromtimestamp(keep / 1000, UTC)
                table.maintenance.expire_snapshots().older_than(older).commit()
            per.append({"s": seconds, "req": counted})
            if i + 1 in marks:
                snap = table.current_snapshot()
                assert snap is not None
                window = per[-min(10, len(per)) :]
                point = {
                    "seconds_per_commit": sum(p["s"] for p in window) / len(window),
                    "requests_per_commit": sum(sum(p["req"].values()) for p in window)
                    / len(window),
                    "requests": window[-1]["req"],
                    "metadata_json_bytes": object_bytes(cloud, table.metadata_location),
                    "manifest_list_bytes": object_bytes(cloud, snap.manifest_list),
                    "manifests": len(snap.manifests(table.io)),
                    "snapshots": len(table.metadata.snapshots),
                    "metadata_log": len(table.metadata.metadata_log),
                }
                out.setdefault(config, {})[i + 1] = point
                print(
                    f"  {config:8s} N={i + 1:5d} {point['seconds_per_commit'] * 1000:7.1f} ms"
                    f"/commit  {point['requests_per_commit']:5.1f} req {point['requests']}"
                    f"  metadata.json {point['metadata_json_bytes']:8d} B  manifest list "
                    f"{point['manifest_list_bytes']:7d} B  manifests {point['manifests']:4d}"
                    f"  snapshots {point['snapshots']:4d}"
                )
        lo, hi = marks[0], marks[-1]
        ratio = out[config][hi]["seconds_per_commit"] / out[config][lo]["seconds_per_commit"]
        out[config]["ratio"] = ratio
        print(f"  {config:8s} seconds/commit N={hi} / N={lo}: {ratio:.2f}")
    # Lineage: the snapshot summary of the last commit, and time travel to the first.
    table = catalog(cloud, work / "history-default.db", cloud.credentials, "trusted").load_table(
        f"{NAMESPACE}.history_default"
    )
    first = table.metadata.snapshots[0]
    summary = table.current_snapshot().summary  # type: ignore[union-attr]
    out["lineage"] = {
        k: v for k, v in summary.additional_properties.items() if k.startswith("sluice.")
    }
    out["time_travel_rows"] = table.scan(snapshot_id=first.snapshot_id).to_arrow().num_rows
    print(
        f"  lineage in snapshot summary: {out['lineage']}; "
        f"rows at first snapshot: {out['time_travel_rows']}"
    )
    return out


# -- append / overwrite / upsert / delete vs table size -----------------------------------------

DAYS = 100
FILE_ROWS = 1000


def build(cloud: Any, cat: Any, name: str, total: int) -> Any:
    """A table of `total` rows: 1,000-row source files, file i on day i % 100, ids in file
    order, added as data files in one commit (written here, then `add_files`)."""
    import pyarrow.parquet as pq
    from pyarrow import fs

    table = create_table(cat, name)
    s3 = fs.S3FileSystem(
        endpoint_override=cloud.endpoint_url,
        region="us-east-1",
        access_key=cloud.credentials["AWS_ACCESS_KEY_ID"],
        secret_key=cloud.credentials["AWS_SECRET_ACCESS_KEY"],
    )
    paths = []
    location = table.location().removeprefix("s3://")
    for i in range(total // FILE_ROWS):
        day = DAY0 + timedelta(days=i % DAYS)
        path = f"{location}/data/event_date={day}/f{i}.parquet"
        pq.write_table(
            rows(i * FILE_ROWS, FILE_ROWS, f"s3://raw/f{i}.csv", day), path, filesystem=s3
        )
        paths.append(f"s3://{path}")
    # One source file over 3 days (for the delete).
    for d in range(3):
        day = DAY0 + timedelta(days=d)
        path = f"{location}/data/event_date={day}/three-{d}.parquet"
        pq.write_table(
            rows(10**9 + d * FILE_ROWS, FILE_ROWS, "s3://raw/three.csv", day), path, filesystem=s3
        )
        paths.append(f"s3://{path}")
    table.add_files(paths)
    return cat.load_table(f"{NAMESPACE}.{name}")


def timed(cloud: Any, fn: Callable[[], Any]) -> dict[str, Any]:
    req = Requests(cloud, "admin")
    req.reset()
    started = time.perf_counter()
    fn()
    return {"s": time.perf_counter() - started, "req": req.take()}


def operations(cat: Any, ident: str) -> dict[str, Callable[[], Any]]:
    """What a new file, a new version of file 5 (day 5, ids 5000..5999) and the removal of a
    3-day source cost."""
    from pyiceberg.expressions import And, EqualTo

    day = DAY0 + timedelta(days=5)
    src = "s3://raw/f5.csv"
    new_version = rows(5 * FILE_ROWS, FILE_ROWS, src, day, amount=100.0)
    return {
        "append 1 file": lambda: cat.load_table(ident).append(
            rows(2 * 10**9, FILE_ROWS, "s3://raw/new.csv", day)
        ),
        "overwrite source": lambda: cat.load_table(ident).overwrite(
            new_version, overwrite_filter=EqualTo("source_file", src)
        ),
        "overwrite source+day": lambda: cat.load_table(ident).overwrite(
            new_version,
            overwrite_filter=And(
                EqualTo("source_file", src), EqualTo("event_date", day.isoformat())
            ),
        ),
        "upsert on id": lambda: cat.load_table(ident).upsert(
            rows(5 * FILE_ROWS + 500, FILE_ROWS, src, day, amount=7.0), join_cols=["id"]
        ),
        "delete source 3 days": lambda: cat.load_table(ident).delete(
            EqualTo("source_file", "s3://raw/three.csv")
        ),
    }


def section_rewrite(cloud: Any, work: Path, sizes: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for total in sizes:
        cat = catalog(cloud, work / f"rewrite-{total}.db", cloud.credentials, "trusted")
        name = f"rewrite_{total}"
        t0 = time.perf_counter()
        build(cloud, cat, name, total)
        built = time.perf_counter() - t0
        ident = f"{NAMESPACE}.{name}"
        ops = operations(cat, ident)
        result: dict[str, Any] = {"build_s": built}
        for op, fn in ops.items():
            result[op] = timed(cloud, fn)
            snap = cat.load_table(ident).current_snapshot()
            s = snap.summary.additional_properties if snap and snap.summary else {}
            result[op]["summary"] = {
                k: s.get(k)
                for k in (
                    "added-data-files",
                    "deleted-data-files",
                    "added-records",
                    "deleted-records",
                )
            }
            print(
                f"  M={total:8d} {op:22s} {result[op]['s'] * 1000:8.1f} ms  "
                f"{result[op]['req']}  {result[op]['summary']}"
            )
        table = cat.load_table(ident)
        n = table.scan().to_arrow().num_rows
        # + the new file; the upsert only updates (ids 5500..6499 exist once M >= 7,000)
        expected = total + FILE_ROWS
        result["rows_after"] = n
        print(f"  M={total:8d} rows after: {n} (expected {expected})")
        out[total] = result
    return out


# -- concurrent commits -----------------------------------------------------------------------


def section_concurrency(cloud: Any, work: Path, writers: int) -> dict[str, Any]:
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.io.pyarrow import _dataframe_to_data_files

    db = work / f"concurrency-{writers}.db"
    name = f"concurrent_{writers}"
    create_table(catalog(cloud, db, cloud.credentials, "trusted"), name)
    ident = f"{NAMESPACE}.{name}"
    attempts: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    gate = threading.Barrier(writers)

    def writer(k: int) -> None:
        cat = catalog(cloud, db, cloud.credentials, "trusted")
        table = cat.load_table(ident)
        df = rows(k * 100, 100, f"s3://raw/w{k}.csv", DAY0)
        # The data file is written once; only the metadata commit is retried.
        files = list(_dataframe_to_data_files(table.metadata, df, table.io, uuid.uuid4()))
        gate.wait()
        for attempt in range(1, 101):
            try:
                table = cat.load_table(ident)
                with (
                    table.transaction() as tx,
                    tx.update_snapshot(
                        snapshot_properties={"sluice.execution": f"w{k}"}
                    ).fast_append() as append,
                ):
                    for f in files:
                        append.append_data_file(f)
                with lock:
                    attempts.append(attempt)
                return
            except CommitFailedException:
                time.sleep(random.uniform(0, min(2.0, 0.05 * 2 ** min(attempt, 6))))
            except Exception as exc:  # sqlite "database is locked" and the like
                with lock:
                    errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
                time.sleep(random.uniform(0, 0.1))
        with lock:
            errors.append("gave up after 100 attempts")

    started = time.perf_counter()
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    table = catalog(cloud, db, cloud.credentials, "trusted").load_table(ident)
    data = table.scan().to_arrow()
    out = {
        "writers": writers,
        "seconds": seconds,
        "committed": len(attempts),
        "attempts_mean": sum(attempts) / max(1, len(attempts)),
        "attempts_max": max(attempts, default=0),
        "rows": data.num_rows,
        "distinct_ids": len(set(data.column("id").to_pylist())),
        "snapshots": len(table.metadata.snapshots),
        "errors": sorted(set(errors))[:5],
        "error_count": len(errors),
    }
    print(
        f"  {writers} writers: {seconds:.1f} s, committed {out['committed']}, attempts mean "
        f"{out['attempts_mean']:.1f} max {out['attempts_max']}, rows {out['rows']} "
        f"(expected {writers * 100}, distinct ids {out['distinct_ids']}), "
        f"other errors {out['error_count']} {out['errors']}"
    )
    return out


def section_duckdb(cloud: Any, work: Path) -> dict[str, Any]:
    import duckdb

    out: dict[str, Any] = {"duckdb": duckdb.__version__}
    try:
        duckdb.sql("INSTALL iceberg; LOAD iceberg")
        out["extension"] = "loaded"
    except Exception as exc:
        out["extension"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    table = catalog(cloud, work / "history-default.db", cloud.credentials, "trusted").load_table(
        f"{NAMESPACE}.history_default"
    )
    arrow = table.scan(row_filter=f"event_date = '{DAY0.isoformat()}'").to_arrow()
    con = duckdb.connect()
    con.register("day_rows", arrow)
    got = con.sql(
        "SELECT category, COUNT(*) AS n, SUM(amount) AS s FROM day_rows "
        "GROUP BY category ORDER BY category"
    ).fetchall()
    out["via_arrow"] = [list(r) for r in got]
    print(
        f"  duckdb {out['duckdb']}: iceberg extension: {out['extension']}; "
        f"pyiceberg scan -> Arrow -> DuckDB: {out['via_arrow']}"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sections", default="imports,layer,wiring,history,rewrite,concurrency,duckdb"
    )
    parser.add_argument("--commits", type=int, default=100)
    parser.add_argument("--rows", default="10000,100000")
    parser.add_argument("--writers", default="20")
    parser.add_argument("--layer-dir", type=Path, default=Path("/tmp/icelayer-x86_64"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    sections = args.sections.split(",")
    found: dict[str, Any] = {"python": sys.version.split()[0], "nproc": os.cpu_count()}
    from importlib import metadata

    found["versions"] = {
        p: metadata.version(p)
        for p in ("pyiceberg", "pyarrow", "pydantic", "moto", "duckdb", "sqlalchemy")
    }
    print(f"python {found['python']}, {found['nproc']} cpus, {found['versions']}")
    if "imports" in sections:
        print("imports:")
        found["imports"] = section_imports()
    if "layer" in sections:
        print("layer:")
        found["layer"] = section_layer(args.layer_dir)
    cloud_sections = {"wiring", "history", "rewrite", "concurrency", "duckdb"} & set(sections)
    if cloud_sections:
        with tempfile.TemporaryDirectory() as tmp, local_cloud() as cloud:
            work = Path(tmp)
            if "wiring" in sections:
                print("wiring:")
                found["wiring"] = section_wiring(cloud, work)
            if "history" in sections:
                print("history:")
                found["history"] = section_history(cloud, work, args.commits)
            if "rewrite" in sections:
                print("rewrite:")
                found["rewrite"] = section_rewrite(
                    cloud, work, [int(x) for x in args.rows.split(",")]
                )
            if "concurrency" in sections:
                print("concurrency:")
                found["concurrency"] = [
                    section_concurrency(cloud, work, int(w)) for w in args.writers.split(",")
                ]
            if "duckdb" in sections and "history" in sections:
                print("duckdb:")
                found["duckdb"] = section_duckdb(cloud, work)
    if args.json:
        args.json.write_text(json.dumps(found, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Contributions committed to an Iceberg table in the local cloud's Glue catalog and S3, as a
role holding only what a committer needs: each execution's rows once, a rerun replacing its own,
every snapshot's lineage, concurrent committers losing nothing, and a bounded history."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import date

import pyarrow as pa
import pytest
from botocore.exceptions import ClientError
from pyiceberg.catalog.glue import GlueCatalog

from sluice import lake, retries
from sluice.lake import SourceObject
from sluice.local import LocalCloud
from sluice.local.cloud import ACCOUNT, REGION
from sluice.tables.catalog import TableCatalog, TableName, open_catalog
from sluice.tables.commit import (
    Contribution,
    commit_contributions,
    create_table_for,
    lineage,
)
from sluice.tables.maintenance import expire_snapshots, read_as_of

GLUE = f"arn:aws:glue:{REGION}:{ACCOUNT}"
DAY = date(2024, 1, 15)
SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64()),
        pa.field("source_file", pa.string()),
        pa.field("amount", pa.float64()),
        pa.field("year", pa.string()),
        pa.field("month", pa.string()),
        pa.field("day", pa.string()),
    ]
)
# pyiceberg's GlueCatalog reads the database before each commit (is it an S3 Tables catalog?).
COMMITTER = ["glue:GetDatabase", "glue:GetTable", "glue:UpdateTable"]
# A source's first contribution deletes nothing, and pyiceberg says so.
pytestmark = pytest.mark.filterwarnings("ignore:Delete operation did not match any records")


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(publish_stack=False) as running:
        yield running


def committer_statements(
    cloud: LocalCloud, name: TableName, glue: list[str]
) -> list[dict[str, object]]:
    """What a committer of `name` is granted: `glue` on its catalog, database and table ARNs,
    and its objects under the table's prefix (a key not yet written is listed: pyarrow checks
    that a new metadata file does not exist, and without ListBucket S3 answers 403, not 404)."""
    return [
        {
            "Effect": "Allow",
            "Action": glue,
            "Resource": [
                f"{GLUE}:catalog",
                f"{GLUE}:database/{name.database}",
                f"{GLUE}:table/{name.database}/{name.dataset}",
            ],
        },
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": f"arn:aws:s3:::{name.bucket}/{lake.table_prefix(name.dataset)}*",
        },
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{name.bucket}",
            "Condition": {"StringLike": {"s3:prefix": f"{lake.table_prefix(name.dataset)}*"}},
        },
    ]


def new_table(
    cloud: LocalCloud, dataset: str, glue: list[str] = COMMITTER
) -> tuple[TableName, GlueCatalog]:
    """A table created by the administrator, and the catalog of a role granted `glue` on it."""
    name = TableName(layer="trusted", dataset=dataset, bucket=cloud.buckets["trusted"])
    admin = open_catalog(TableCatalog.local(cloud.endpoint_url, cloud.credentials, REGION))
    create_table_for(admin, name, SCHEMA)
    keys = cloud.role_granting(f"committer-{dataset}", committer_statements(cloud, name, glue))
    return name, open_catalog(TableCatalog.local(cloud.endpoint_url, keys, REGION))


def source(key: str, version: str = "v1") -> SourceObject:
    return SourceObject(bucket="raw", key=f"transactions/{key}", version_id=version)


def contribution(
    execution: str, src: SourceObject, ids: range, day: date = DAY, amount: float = 1.0
) -> Contribution:
    year, month, dom = lake.day_partition_values(day)
    n = len(ids)
    rows = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "source_file": [lake.source_file(src)] * n,
            "amount": [amount] * n,
            "year": [year] * n,
            "month": [month] * n,
            "day": [dom] * n,
        },
        schema=SCHEMA,
    )
    return Contribution(execution=execution, source=src, days=(day,), rows=rows)


def rows_of(table: pa.Table) -> list[tuple[int, str, float]]:
    return sorted(
        zip(
            table.column("id").to_pylist(),
            table.column("source_file").to_pylist(),
            table.column("amount").to_pylist(),
            strict=True,
        )
    )


def test_two_executions_of_different_sources_for_one_day_are_each_read_once(
    cloud: LocalCloud,
) -> None:
    # Given a table and a committer's role
    name, catalog = new_table(cloud, "two_sources")
    a, b = source("a.csv"), source("b.csv")
    # When two executions of different sources for one day commit, one after the other
    commit_contributions(catalog, name.identifier, [contribution("exec-a", a, range(0, 3))])
    commit_contributions(catalog, name.identifier, [contribution("exec-b", b, range(3, 5))])
    # Then each row is read back exactly once
    table = catalog.load_table(name.identifier)
    assert rows_of(read_as_of(table)) == [
        (0, "s3://raw/transactions/a.csv", 1.0),
        (1, "s3://raw/transactions/a.csv", 1.0),
        (2, "s3://raw/transactions/a.csv", 1.0),
        (3, "s3://raw/transactions/b.csv", 1.0),
        (4, "s3://raw/transactions/b.csv", 1.0),
    ]
    # and the lineage lists both executions, each with its source's version
    assert [(s.executions, s.sources) for s in lineage(table)] == [
        (("exec-a",), (a,)),
        (("exec-b",), (b,)),
    ]


def test_a_rerun_replaces_exactly_its_own_rows_in_one_commit_and_the_old_rows_stay_readable(
    cloud: LocalCloud,
) -> None:
    # Given a table holding two sources' rows of one day
    name, catalog = new_table(cloud, "rerun")
    a, b = source("a.csv"), source("b.csv")
    first = commit_contributions(
        catalog,
        name.identifier,
        [contribution("exec-a1", a, range(0, 3)), contribution("exec-b1", b, range(10, 12))],
    )
    before = catalog.load_table(name.identifier)
    # When a new version of source a runs, its rows now other ids and amounts, the days known
    a2 = source("a.csv", version="v2")
    rerun = contribution("exec-a2", a2, range(0, 2), amount=9.0)
    rerun = Contribution(
        execution=rerun.execution,
        source=a2,
        days=rerun.days,
        rows=rerun.rows,
        previous_days=(DAY,),
    )
    committed = commit_contributions(catalog, name.identifier, [rerun])
    table = catalog.load_table(name.identifier)
    # Then a's rows are the new version's alone, b's untouched
    assert rows_of(read_as_of(table)) == [
        (0, "s3://raw/transactions/a.csv", 9.0),
        (1, "s3://raw/transactions/a.csv", 9.0),
        (10, "s3://raw/transactions/b.csv", 1.0),
        (11, "s3://raw/transactions/b.csv", 1.0),
    ]
    # in one catalog commit: a's data file deleted, the new one appended, both in the lineage
    assert len(table.metadata.metadata_log) == len(before.metadata.metadata_log) + 1
    assert committed.attempts == 1
    assert [(s.executions, s.sources) for s in lineage(table)][-2:] == [
        (("exec-a2",), (a2,)),
        (("exec-a2",), (a2,)),
    ]
    deleted, appended = (table.snapshot_by_id(i) for i in committed.snapshot_ids)
    assert deleted is not None and appended is not None and deleted.summary and appended.summary
    assert (deleted.summary["deleted-data-files"], deleted.summary["deleted-records"]) == ("1", "3")
    assert (appended.summary["added-data-files"], appended.summary["added-records"]) == ("1", "2")
    # and time travel to the earlier snapshot reads the old rows
    old = read_as_of(table, snapshot_id=first.snapshot_ids[-1])
    assert rows_of(old) == rows_of(read_as_of(before))
    assert [r[2] for r in rows_of(old) if r[1].endswith("a.csv")] == [1.0, 1.0, 1.0]


def test_a_batch_of_five_contributions_commits_in_one_snapshot(cloud: LocalCloud) -> None:
    # Given a table and five executions of five sources, over two days
    name, catalog = new_table(cloud, "batch")
    days = (DAY, date(2024, 1, 16))
    batch = [
        contribution(f"exec-{k}", source(f"s{k}.csv"), range(k * 10, k * 10 + 4), days[k % 2])
        for k in range(5)
    ]
    # When they are committed together
    committed = commit_contributions(catalog, name.identifier, batch)
    table = catalog.load_table(name.identifier)
    # Then the table has one snapshot, holding one data file a source, and all 20 rows once
    assert len(committed.snapshot_ids) == 1 and len(table.metadata.snapshots) == 1
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert (snapshot.summary["added-data-files"], snapshot.summary["added-records"]) == ("5", "20")
    assert sorted(r[0] for r in rows_of(read_as_of(table))) == [
        k * 10 + i for k in range(5) for i in range(4)
    ]
    # and its lineage names the five executions and their sources
    (only,) = lineage(table)
    assert only.executions == tuple(f"exec-{k}" for k in range(5))
    assert only.sources == tuple(source(f"s{k}.csv") for k in range(5))


def test_eight_committers_at_once_lose_no_contribution(cloud: LocalCloud) -> None:
    # Given a table and eight committers, each with its own catalog, and one source each
    name, catalog = new_table(cloud, "racing")
    keys = cloud.role_granting("committer-racing-8", committer_statements(cloud, name, COMMITTER))
    catalogs = [
        open_catalog(TableCatalog.local(cloud.endpoint_url, keys, REGION)) for _ in range(8)
    ]
    start = threading.Barrier(8)
    attempts: dict[int, int] = {}
    failures: list[BaseException] = []

    def commit(k: int) -> None:
        start.wait()
        try:
            done = commit_contributions(
                catalogs[k],
                name.identifier,
                [contribution(f"exec-{k}", source(f"w{k}.csv"), range(k * 100, k * 100 + 5))],
            )
            attempts[k] = done.attempts
        except BaseException as exc:  # a thread's failure is the test's
            failures.append(exc)

    # When they all commit at once
    threads = [threading.Thread(target=commit, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then every one committed, within the policy's attempts, some after a conflict
    assert failures == []
    assert sorted(attempts) == list(range(8))
    assert all(1 <= n <= retries.TABLE_COMMIT.attempts for n in attempts.values())
    assert sum(attempts.values()) > 8
    # and every row is in the table exactly once, each execution in the lineage once
    table = catalog.load_table(name.identifier)
    ids = Counter(read_as_of(table).column("id").to_pylist())
    assert ids == Counter(k * 100 + i for k in range(8) for i in range(5))
    assert sorted(e for s in lineage(table) for e in s.executions) == [
        f"exec-{k}" for k in range(8)
    ]


def test_expiry_keeps_the_last_snapshots_and_the_rows(cloud: LocalCloud) -> None:
    # Given a table after five commits
    name, catalog = new_table(cloud, "expiry")
    for k in range(5):
        commit_contributions(
            catalog,
            name.identifier,
            [contribution(f"exec-{k}", source(f"e{k}.csv"), range(k, k + 1))],
        )
    table = catalog.load_table(name.identifier)
    ids = [s.snapshot_id for s in table.metadata.snapshots]
    # When all but the last two snapshots are expired
    expired = expire_snapshots(table, keep_last=2)
    table = catalog.load_table(name.identifier)
    # Then the three oldest are gone, the last two kept, and the rows are all still there
    assert expired == tuple(ids[:3])
    assert [s.snapshot_id for s in table.metadata.snapshots] == ids[3:]
    assert sorted(read_as_of(table).column("id").to_pylist()) == [0, 1, 2, 3, 4]
    # and an expired snapshot can no longer be read
    with pytest.raises(LookupError):
        read_as_of(table, snapshot_id=ids[0])


def test_a_role_without_update_table_may_not_commit(cloud: LocalCloud) -> None:
    # Given a table, and a role granted all a committer needs but glue:UpdateTable
    name, catalog = new_table(cloud, "refused", glue=["glue:GetDatabase", "glue:GetTable"])
    # When it commits, Then Glue refuses the update, and the table has no snapshot
    with pytest.raises(ClientError) as refused:
        commit_contributions(
            catalog, name.identifier, [contribution("exec-x", source("x.csv"), range(3))]
        )
    assert "not authorized to perform: glue:UpdateTable" in str(refused.value)
    assert catalog.load_table(name.identifier).metadata.snapshots == []


def test_rows_that_do_not_fit_the_table_are_refused_before_any_file_is_written(
    cloud: LocalCloud,
) -> None:
    # Given a table, and a contribution whose amounts are text
    name, catalog = new_table(cloud, "misfit")
    src = source("m.csv")
    fits = contribution("exec-m", src, range(2))
    rows = fits.rows.set_column(2, "amount", pa.array(["1.0", "2.0"]))
    misfit = Contribution(execution="exec-m", source=src, days=fits.days, rows=rows)
    # When it is committed, Then it is refused, naming the column and both types
    with pytest.raises(ValueError) as refused:
        commit_contributions(catalog, name.identifier, [misfit])
    assert str(refused.value) == "exec-m: column amount is double, the rows' string"
    # and the table has no snapshot and its data folder no file
    assert catalog.load_table(name.identifier).metadata.snapshots == []
    listed = cloud.client("s3").list_objects_v2(
        Bucket=name.bucket, Prefix=f"{lake.table_prefix(name.dataset)}data/"
    )
    assert listed["KeyCount"] == 0

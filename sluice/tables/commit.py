"""Executions' contributions committed to an Iceberg table: each replaces its source's rows.

A contribution is what one execution made of one source object: its rows, every one carrying
the object's `source_file`. `commit_contributions` commits any number of them in one
transaction, one catalog update: a delete of the data files their sources' previous versions
left (the filter names the sources and, where known, the days those versions and the new ones
cover, so planning reads only those days' manifests) and one append of the new rows. Each data
file holds one contribution's rows of one day, written here with pyarrow at a key of its own
before the first attempt and added by path (`Transaction.add_files`), and the table keeps exact
`source_file` bounds, so the delete drops whole files and never rewrites one. The snapshots
carry their lineage: which executions and which source versions they hold (`lineage`).
"""

from __future__ import annotations

import json
import random
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import reduce
from typing import TYPE_CHECKING
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, ResolveError, ValidationException
from pyiceberg.expressions import And, BooleanExpression, EqualTo, In, Or
from pyiceberg.io.pyarrow import pyarrow_to_schema
from pyiceberg.schema import Schema, promote
from pyiceberg.table import Table, TableProperties
from pyiceberg.transforms import IdentityTransform

from sluice import lake, retries
from sluice.lake import SourceObject
from sluice.state import source_of
from sluice.tables.catalog import TableName

if TYPE_CHECKING:
    from pyiceberg.types import NestedField

SOURCE_FILE = "source_file"
EXECUTIONS = "sluice.executions"
SOURCES = "sluice.sources"

# What keeps a commit's cost flat as the table's history grows (bench/iceberg_history.py,
# config e): manifests merged on append, old metadata.json files deleted, the source's bounds
# exact (the default truncates strings to 16 characters: every `s3://raw/...` alike), and
# pyiceberg's own retry off (TABLE_COMMIT retries instead).
TABLE_PROPERTIES = {
    "format-version": "2",
    "commit.manifest-merge.enabled": "true",
    "commit.manifest.min-count-to-merge": "100",
    "commit.manifest.target-size-bytes": str(8 * 2**20),
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "10",
    f"write.metadata.metrics.column.{SOURCE_FILE}": "full",
    "commit.retry.num-retries": "0",
}

# pyiceberg warns of a delete that matched nothing: a source's first contribution.
warnings.filterwarnings("ignore", message="Delete operation did not match any records")


@dataclass(frozen=True)
class Contribution:
    """The rows one execution made of one source object, over `days`; `previous_days`: the
    days the source's rows now in the table cover, when known (None: any day)."""

    execution: str
    source: SourceObject
    days: tuple[date, ...]
    rows: pa.Table
    previous_days: tuple[date, ...] | None = None

    def __post_init__(self) -> None:
        column = self.rows.column(SOURCE_FILE) if SOURCE_FILE in self.rows.schema.names else None
        expected = lake.source_file(self.source)
        if column is None or (
            self.rows.num_rows and not pc.all(pc.equal(column, expected)).as_py()
        ):
            raise ValueError(f"{self.execution}: every row's {SOURCE_FILE} must be {expected}")


@dataclass(frozen=True)
class Committed:
    """What a commit added: its snapshots (a delete, when there was one to make, then the
    append), and the attempts it took."""

    snapshot_ids: tuple[int, ...]
    attempts: int


@dataclass(frozen=True)
class SnapshotLineage:
    snapshot_id: int
    timestamp: datetime
    executions: tuple[str, ...]
    sources: tuple[SourceObject, ...]


def create_table_for(
    catalog: Catalog,
    name: TableName,
    schema: pa.Schema,
    partition_columns: Sequence[str] = lake.DATE_PARTITIONS,
) -> Table:
    """A new format-version 2 table at `name`'s location, partitioned by the identity of each of
    `partition_columns` (string columns, as Athena's queries compare them)."""
    for column in partition_columns:
        if column not in schema.names or schema.field(column).type != pa.string():
            raise ValueError(f"partition column {column} must be a string column of the schema")
    catalog.create_namespace_if_not_exists(name.database)
    tx = catalog.create_table_transaction(
        name.identifier, schema, location=name.location, properties=TABLE_PROPERTIES
    )
    with tx.update_spec() as spec:
        for column in partition_columns:
            spec.add_identity(column)
    tx.commit_transaction()
    return catalog.load_table(name.identifier)


def commit_contributions(
    catalog: Catalog,
    identifier: tuple[str, str],
    contributions: Sequence[Contribution],
    policy: retries.Retry = retries.TABLE_COMMIT,
    sleep: Callable[[float], None] = time.sleep,
) -> Committed:
    """Replace each contribution's source's rows with its own, in one transaction; retried as
    `policy` says when another commit won (the table reloaded, the data files kept).

    A commit that finally gives up leaves its data files in S3, referenced by no snapshot: the
    orphan-file sweep is to remove them (not built yet)."""
    latest = _latest_per_source(contributions)
    table = catalog.load_table(identifier)
    fitted = [_fitted(table.schema(), c) for c in latest]
    paths = [p for c, rows in zip(latest, fitted, strict=True) for p in _write(table, c, rows)]
    properties = _lineage_properties(latest)
    delete_filter = _replaced(latest)
    for attempt in range(1, policy.attempts + 1):
        before = {s.snapshot_id for s in table.metadata.snapshots}
        try:
            with table.transaction() as tx:
                tx.delete(delete_filter, snapshot_properties=properties)
                if paths:
                    # Every path is a new uuid of this commit's, so no snapshot can hold it yet:
                    # the duplicate check would only read every data manifest of the table, a
                    # cost that grows with its history.
                    tx.add_files(paths, snapshot_properties=properties, check_duplicate_files=False)
        except (CommitFailedException, ValidationException):
            if attempt == policy.attempts:
                raise
            sleep(_full_jitter(policy, attempt))
            table = catalog.load_table(identifier)
            continue
        added = [s.snapshot_id for s in table.metadata.snapshots if s.snapshot_id not in before]
        return Committed(snapshot_ids=tuple(added), attempts=attempt)
    raise AssertionError("unreachable: the last attempt raises")


def lineage(table: Table) -> list[SnapshotLineage]:
    """Each snapshot of `table`, oldest first, with the executions and sources it committed."""
    found = []
    for snapshot in table.metadata.snapshots:
        extra = snapshot.summary.additional_properties if snapshot.summary else {}
        found.append(
            SnapshotLineage(
                snapshot_id=snapshot.snapshot_id,
                timestamp=datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC),
                executions=tuple(json.loads(extra.get(EXECUTIONS, "[]"))),
                sources=tuple(
                    source_of(s, f"{SOURCES}[{i}]")
                    for i, s in enumerate(json.loads(extra.get(SOURCES, "[]")))
                ),
            )
        )
    return found


def _latest_per_source(contributions: Sequence[Contribution]) -> list[Contribution]:
    """One contribution per source location: of two in one batch, the later one wins."""
    if not contributions:
        raise ValueError("nothing to commit")
    by_source = {lake.source_file(c.source): c for c in contributions}
    return list(by_source.values())


def _fitted(schema: Schema, contribution: Contribution) -> pa.Table:
    """The contribution's rows in the table's Arrow schema (its field ids, so the files map to
    the table's columns by id), or a ValueError naming what does not fit: a column the table
    lacks, a required one missing or nullable, a type the table's cannot be promoted from."""
    rows = contribution.rows
    extra = sorted(set(rows.schema.names) - {f.name for f in schema.fields})
    if extra:
        raise ValueError(f"{contribution.execution}: the table has no column {', '.join(extra)}")
    provided = pyarrow_to_schema(rows.schema, name_mapping=schema.name_mapping)
    target = schema.as_arrow()
    columns = []
    for field in schema.fields:
        if field.name not in rows.schema.names:
            if field.required:
                raise ValueError(f"{contribution.execution}: required column {field.name} missing")
            columns.append(pa.nulls(rows.num_rows, target.field(field.name).type))
            continue
        _check_fits(contribution.execution, field, provided.find_field(field.name))
        columns.append(rows.column(field.name).cast(target.field(field.name).type))
    return pa.Table.from_arrays(columns, schema=target)


def _check_fits(execution: str, table_field: NestedField, row_field: NestedField) -> None:
    if table_field.required and not row_field.required:
        raise ValueError(f"{execution}: column {table_field.name} is required, the rows' nullable")
    if table_field.field_type == row_field.field_type:
        return
    try:
        promote(row_field.field_type, table_field.field_type)
    except ResolveError as refused:
        raise ValueError(
            f"{execution}: column {table_field.name} is {table_field.field_type}, "
            f"the rows' {row_field.field_type}"
        ) from refused


def _write(table: Table, contribution: Contribution, rows: pa.Table) -> list[str]:
    """The contribution's rows as Parquet files of their own, one a partition (day), through the
    table's FileIO, with column statistics (`add_files` takes each file's partition from its
    min and max, and refuses a file spanning two); written once, so a retry adds the same."""
    if rows.num_rows == 0:
        return []
    columns = _partition_columns(table)
    codec = table.properties.get(
        TableProperties.PARQUET_COMPRESSION, TableProperties.PARQUET_COMPRESSION_DEFAULT
    )
    keys = rows.select(columns).group_by(columns).aggregate([]).to_pylist() if columns else [{}]
    paths = []
    for key in keys:
        matches = [_matches(rows, c, v) for c, v in key.items()]
        part = rows.filter(reduce(pc.and_, matches)) if matches else rows
        hive = "".join(f"/{c}={quote(str(v) if v is not None else 'null')}" for c, v in key.items())
        path = f"{table.location()}/data{hive}/{contribution.execution}-{uuid.uuid4()}.parquet"
        # A new uuid's key exists nowhere: no existence check (a HEAD) before writing it.
        with table.io.new_output(path).create(overwrite=True) as stream:
            pq.write_table(part, stream, compression="none" if codec == "uncompressed" else codec)
        paths.append(path)
    return paths


def _partition_columns(table: Table) -> list[str]:
    """The columns the table's spec partitions by; identity transforms only (a file's bounds
    then name its partition, as `add_files` needs)."""
    columns = []
    for field in table.spec().fields:
        if not isinstance(field.transform, IdentityTransform):
            raise ValueError(f"partition field {field.name}: only identity transforms are written")
        columns.append(table.schema().find_column_name(field.source_id) or field.name)
    return columns


def _matches(rows: pa.Table, column: str, value: object) -> pa.ChunkedArray:
    values = rows.column(column)
    return pc.is_null(values) if value is None else pc.equal(values, value)


def _lineage_properties(contributions: Sequence[Contribution]) -> dict[str, str]:
    sources = [{k: v for k, v in c.source.to_dict().items() if k != "size"} for c in contributions]
    return {
        EXECUTIONS: json.dumps([c.execution for c in contributions]),
        SOURCES: json.dumps(sources, sort_keys=True),
    }


def _replaced(contributions: Sequence[Contribution]) -> BooleanExpression:
    """The rows the contributions replace: their sources', on the days either version covers
    when every previous version's days are known."""
    sources = sorted({lake.source_file(c.source) for c in contributions})
    by_source = _in(SOURCE_FILE, sources)
    if any(c.previous_days is None for c in contributions):
        return by_source
    days = sorted({d for c in contributions for d in (*c.days, *(c.previous_days or ()))})
    if not days:
        return by_source
    return And(by_source, reduce(Or, [_day(d) for d in days]))


def _day(day: date) -> BooleanExpression:
    year, month, dom = lake.day_partition_values(day)
    return And(_eq(lake.YEAR, year), _eq(lake.MONTH, month), _eq(lake.DAY, dom))


# pyiceberg's predicates are pydantic models: mypy sees their fields as the constructor, not the
# `(term, literal)` / `(term, values)` their own __init__ takes.
def _eq(column: str, value: str) -> BooleanExpression:
    return EqualTo(column, value)  # type: ignore[call-arg, arg-type]


def _in(column: str, values: Sequence[str]) -> BooleanExpression:
    return In(column, values)  # type: ignore[call-arg, arg-type]


def _full_jitter(policy: retries.Retry, attempt: int) -> float:
    """Full jitter: a wait drawn from [0, interval * backoff^(attempt-1)], capped."""
    base = policy.interval_seconds or 0.0
    ceiling = base * policy.backoff ** (attempt - 1)
    if policy.max_interval_seconds is not None:
        ceiling = min(ceiling, policy.max_interval_seconds)
    return random.uniform(0, ceiling)

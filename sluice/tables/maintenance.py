"""Keeping a table's history bounded, and reading what it held before.

pyiceberg 0.12's `ExpireSnapshots` removes the snapshots it is given from the metadata (never a
branch's or tag's head) and deletes no file: the data and manifests only they referenced stay
in S3 until an orphan-file sweep removes them (not built yet).
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.table import Table


def expire_snapshots(
    table: Table, keep_last: int, older_than: datetime | None = None
) -> tuple[int, ...]:
    """Expire every snapshot but the newest `keep_last`, of those taken before `older_than`
    (any, when None); the ids expired, oldest first."""
    if keep_last < 1:
        raise ValueError("keep_last must keep at least the current snapshot")
    snapshots = sorted(table.metadata.snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number))
    candidates = snapshots[:-keep_last]
    if older_than is not None:
        limit = older_than.timestamp() * 1000
        candidates = [s for s in candidates if s.timestamp_ms < limit]
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    expired = tuple(s.snapshot_id for s in candidates if s.snapshot_id not in protected)
    if expired:
        table.maintenance.expire_snapshots().by_ids(list(expired)).commit()
    return expired


def read_as_of(
    table: Table,
    snapshot_id: int | None = None,
    as_of: datetime | None = None,
    row_filter: BooleanExpression | str | None = None,
) -> pa.Table:
    """The rows `table` held at `snapshot_id`, or at the time `as_of`, or now (neither given),
    that match `row_filter`."""
    if snapshot_id is not None and as_of is not None:
        raise ValueError("give a snapshot id or a time, not both")
    if as_of is not None:
        found = table.snapshot_as_of_timestamp(int(as_of.timestamp() * 1000))
        if found is None:
            raise LookupError(f"{table.name()} had no snapshot at {as_of.isoformat()}")
        snapshot_id = found.snapshot_id
    elif snapshot_id is not None and table.snapshot_by_id(snapshot_id) is None:
        raise LookupError(f"{table.name()} has no snapshot {snapshot_id}")
    scan = table.scan(row_filter=row_filter or AlwaysTrue(), snapshot_id=snapshot_id)
    return scan.to_arrow()

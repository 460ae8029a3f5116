"""A daily summary written while another execution adds to the same day still ends right."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sluice import lake, pipeline
from sluice.config import CONTRACTS_DIR, Settings
from sluice.contracts import find_contract
from sluice.errors import SluiceTransientError
from sluice.stages import delivery, trusted

CONTRACT = find_contract("transactions", CONTRACTS_DIR)
DAY = date(2024, 1, 15)
SETTINGS = Settings(
    raw_bucket="raw", trusted_bucket="trusted", delivery_bucket="delivery", quarantine_bucket="q"
)


class RacingStore:
    """An in-memory bucket store where another execution's file lands at a chosen moment."""

    def __init__(self, arrivals: dict[int, tuple[str, bytes]]) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.arrivals = arrivals  # list call number -> (trusted key, body)
        self.lists = 0

    def list_versions(self, bucket: str, prefix: str) -> list[tuple[str, str]]:
        self.lists += 1
        if self.lists in self.arrivals:
            key, body = self.arrivals[self.lists]
            self.objects[("trusted", key)] = body
        return [
            (k, str(hash(v)))
            for (b, k), v in sorted(self.objects.items())
            if b == bucket and k.startswith(prefix)
        ]

    def get_bytes(self, bucket: str, key: str) -> bytes:
        return self.objects[(bucket, key)]

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.objects[(bucket, key)] = body

    def delete(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)


def trusted_file(tmp_path: Path, rows: list[tuple[str, ...]]) -> bytes:
    """The partial summary Trusted writes next to its day file for these rows."""
    assert CONTRACT is not None
    names = ["id", "name", "amount", "date", "category"]
    table = pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})
    ctx = trusted.RunContext("s3://raw/x", "v", "t", datetime(2024, 3, 1, tzinfo=UTC))
    result = trusted.transform(table, CONTRACT, ctx, tmp_path)
    partial = delivery.partial_summary(result.read(DAY), CONTRACT)
    sink = io.BytesIO()
    pq.write_table(partial, sink)
    return sink.getvalue()


def summary_of(store: RacingStore, key: str) -> list[Any]:
    table = pq.read_table(io.BytesIO(store.objects[("delivery", key)]))
    return table.select(["category", "record_count", "amount_sum"]).to_pylist()


def test_a_file_landing_during_the_write_is_included(tmp_path: Path) -> None:
    assert CONTRACT is not None
    prefix = lake.partial_prefix("transactions", DAY)
    late = trusted_file(tmp_path / "b", [("2", "B", "50", "2024-01-15", "Sales")])
    # Given a day with one file, and another execution's file landing right after our read
    store = RacingStore({2: (prefix + "b.parquet", late)})
    store.objects[("trusted", prefix + "a.parquet")] = trusted_file(
        tmp_path / "a", [("1", "A", "100", "2024-01-15", "Sales")]
    )
    key = lake.delivery_key("transactions", "DAILY_SUMMARY", DAY, None)
    # When the summary is written
    pipeline._write_summary(store, SETTINGS, CONTRACT, "transactions", DAY, key)  # type: ignore[arg-type]
    # Then it was recomputed and covers both files
    assert summary_of(store, key) == [{"category": "Sales", "record_count": 2, "amount_sum": 150.0}]
    assert store.lists == 4  # read, check (changed), read again, check (same)


def test_a_day_that_never_settles_is_a_transient_error(tmp_path: Path) -> None:
    assert CONTRACT is not None
    prefix = lake.partial_prefix("transactions", DAY)
    body = trusted_file(tmp_path, [("1", "A", "100", "2024-01-15", "Sales")])
    store = RacingStore({n: (f"{prefix}{n}.parquet", body) for n in range(2, 20, 2)})
    store.objects[("trusted", prefix + "a.parquet")] = body
    key = lake.delivery_key("transactions", "DAILY_SUMMARY", DAY, None)
    with pytest.raises(SluiceTransientError, match="kept changing"):
        pipeline._write_summary(store, SETTINGS, CONTRACT, "transactions", DAY, key)  # type: ignore[arg-type]

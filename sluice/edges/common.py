"""What every stage edge uses: Parquet in and out of S3, and the bytes a stage puts."""

from __future__ import annotations

import dataclasses
import io
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from sluice.lazy import LazyModule
from sluice.ports import StageStore

CONTRACT_METADATA = b"sluice.contract"
PARQUET_COMPRESSION = "zstd"
PARQUET = "application/vnd.apache.parquet"
# The hand-over's file metadata: whose rows it holds (a stale one is not used).
DAY_ROWS_SOURCE = "sluice.source"

if TYPE_CHECKING:
    from sluice.stages import delivery as delivery_stage
    from sluice.stages import trusted as trusted_stage
else:
    # Each Lambda runs one stage: the Trusted and Delivery handlers import their stage's logic
    # at init, and no other Lambda imports it.
    delivery_stage = LazyModule("sluice.stages.delivery")
    trusted_stage = LazyModule("sluice.stages.trusted")


def write_parquet(table: pa.Table, metadata: Mapping[str, str] | None = None) -> bytes:
    """The table as one Parquet object; `metadata` goes into the file's key-value metadata
    (once: not also into the Arrow schema stored beside it)."""
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, table.schema, compression=PARQUET_COMPRESSION) as writer:
        writer.write_table(table, row_group_size=1 << 20)
        if metadata:
            writer.add_key_value_metadata(dict(metadata))
    return sink.getvalue()


def read_parquet(store: StageStore, bucket: str, key: str) -> pa.Table:
    return delivery_stage.read_parquet_bytes(store.get_bytes(bucket, key))


@dataclass
class Outputs:
    """Puts a stage's objects and counts their bytes as written: the stage's `bytes_out`
    (from any of the transfer pool's threads)."""

    store: StageStore
    byte_count: int = 0
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def count(self, size: int) -> None:
        with self._lock:
            self.byte_count += size

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.store.put_bytes(bucket, key, body, content_type)
        self.count(len(body))

    def put_file(self, bucket: str, key: str, path: Path) -> None:
        self.store.put_file(bucket, key, path)
        self.count(path.stat().st_size)

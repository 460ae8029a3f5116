"""DETAIL is written a row group at a time: a TRUSTED day file as large as a whole daily extract
is read by ranged GETs, one row group each, and the DETAIL file is uploaded in parts, with the
same rows as delivering the whole table at once."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from sluice import pipeline
from sluice.aws import ObjectStore, RangedReader, StreamingUpload
from sluice.edges import common
from sluice.edges import delivery as delivery_edge
from sluice.stages import delivery as delivery_stage
from sluice.state import DayPointer, OutputFile

DELIVERED_AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
VERSION = "0.1.0"
DAY_ROWS = 300_000
TRUSTED_ROW_GROUP = 50_000


class CountingStore(ObjectStore):
    """Objects in memory; every ranged GET and uploaded part is recorded."""

    def __init__(self) -> None:
        super().__init__(s3=None)  # type: ignore[arg-type]
        self.objects: dict[tuple[str, str], bytes] = {}
        self.gets: list[tuple[int, int]] = []
        self.puts: list[tuple[str, int]] = []
        self.parts: dict[str, list[bytes]] = {}
        self.aborted: list[str] = []

    def size(self, bucket: str, key: str) -> int:
        return len(self.objects[(bucket, key)])

    def get_range(self, bucket: str, key: str, start: int, length: int) -> bytes:
        self.gets.append((start, length))
        return self.objects[(bucket, key)][start : start + length]

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.puts.append((key, len(body)))
        self.objects[(bucket, key)] = body

    def start_upload(self, bucket: str, key: str, content_type: str) -> str:
        upload_id = f"u{len(self.parts) + 1}"
        self.parts[upload_id] = []
        return upload_id

    def upload_part(self, bucket: str, key: str, upload_id: str, number: int, body: bytes) -> str:
        assert number == len(self.parts[upload_id]) + 1
        self.parts[upload_id].append(body)
        return f"etag{number}"

    def complete_upload(self, bucket: str, key: str, upload_id: str, etags: list[str]) -> None:
        assert etags == [f"etag{n}" for n in range(1, len(self.parts[upload_id]) + 1)]
        self.objects[(bucket, key)] = b"".join(self.parts[upload_id])

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self.aborted.append(upload_id)


def trusted_day(rows: int) -> pa.Table:
    """A TRUSTED day file's kinds of columns: keys, measures, dictionaries, stamps."""
    rng = np.random.default_rng(3)
    categories = pa.array(["Sales", "Marketing", "Travel"])
    return pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "name": pa.array([f"Customer {i % 2000:04d}" for i in range(rows)]),
            "amount": pa.array(np.round(rng.lognormal(3.5, 1.0, rows), 2)),
            "category": pa.DictionaryArray.from_arrays(
                pa.array(rng.integers(0, 3, rows), pa.int32()), categories
            ),
            "data_quality_score": pa.array(rng.random(rows)),
            "processed_at": pa.repeat(
                pa.scalar(datetime(2026, 12, 3, tzinfo=UTC), pa.timestamp("us", tz="UTC")), rows
            ),
            "processing_layer": pa.repeat(pa.scalar("trusted"), rows),
            "pipeline_version": pa.repeat(pa.scalar(VERSION), rows),
        }
    )


def parquet_bytes(table: pa.Table, row_group_size: int) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", row_group_size=row_group_size)
    return sink.getvalue()


@pytest.fixture
def day_file() -> tuple[CountingStore, pa.Table, bytes]:
    store = CountingStore()
    table = trusted_day(DAY_ROWS)
    body = parquet_bytes(table, TRUSTED_ROW_GROUP)
    store.objects[("trusted", "t/day.parquet")] = body
    return store, table, body


def test_detail_of_a_day_file_in_row_groups_has_exactly_the_rows_of_the_whole_table(
    day_file: tuple[CountingStore, pa.Table, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a TRUSTED day file of 300k rows in six row groups of 50k, and DETAIL row groups of
    # at least 100k rows gathered from batches of 40k (which do not divide a row group)
    store, _, body = day_file
    monkeypatch.setattr(delivery_edge, "DETAIL_ROWS", 100_000)
    monkeypatch.setattr(delivery_edge, "DETAIL_BATCH_ROWS", 40_000)
    out = common.Outputs(store)
    item = DayPointer("trusted", "t/day.parquet", "2024-01-15")

    # When Delivery writes its DETAIL file
    pointer = delivery_edge.put_detail(
        out, item, "delivery", "d/day.parquet", DELIVERED_AT, VERSION
    )

    # Then the DETAIL file holds exactly what detail() makes of the whole table, with its schema
    written = store.objects[("delivery", "d/day.parquet")]
    detail = pq.read_table(io.BytesIO(written))
    expected = delivery_stage.detail(pq.read_table(io.BytesIO(body)), DELIVERED_AT, VERSION)
    assert detail.schema == expected.schema
    assert detail.equals(expected)
    assert pointer == OutputFile(
        "delivery", "delivery", "d/day.parquet", "2024-01-15", 300_000, "DETAIL"
    )
    # with row groups of at least 100k rows, each gathered from 40k + 10k + 40k + 10k
    metadata = pq.ParquetFile(io.BytesIO(written)).metadata
    groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert groups == [100_000, 100_000, 100_000]
    # and bytes_out is the object's size
    assert out.byte_count == len(written)


def test_the_day_file_is_read_by_ranges_one_row_group_at_a_time(
    day_file: tuple[CountingStore, pa.Table, bytes],
) -> None:
    # Given the same day file
    store, _, body = day_file
    metadata = pq.ParquetFile(io.BytesIO(body)).metadata
    groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
    spans = [
        (
            g.column(0).data_page_offset
            if g.column(0).dictionary_page_offset is None
            else min(g.column(0).data_page_offset, g.column(0).dictionary_page_offset),
            sum(g.column(c).total_compressed_size for c in range(g.num_columns)),
        )
        for g in groups
    ]

    # When Delivery writes its DETAIL file
    delivery_edge.put_detail(
        common.Outputs(store),
        DayPointer("trusted", "t/day.parquet", "2024-01-15"),
        "delivery",
        "d/day.parquet",
        DELIVERED_AT,
        VERSION,
    )

    # Then it made one GET for the footer (its last 64 KiB) and one per row group, of exactly
    # that row group's bytes: what it held at once is a row group, not the file
    assert store.gets == [(len(body) - 65_536, 65_536), *spans]
    assert len(spans) == 6
    assert max(length for _, length in store.gets) == max(length for _, length in spans)
    assert max(length for _, length in store.gets) < len(body) // 5
    # and the DETAIL file, smaller than a part, is one PutObject
    assert store.puts == [("d/day.parquet", len(store.objects[("delivery", "d/day.parquet")]))]
    assert store.parts == {}


def test_a_day_smaller_than_a_detail_row_group_is_one_row_group(
    day_file: tuple[CountingStore, pa.Table, bytes],
) -> None:
    # Given the day file of 300k rows in six row groups, fewer than a DETAIL row group's 512k
    store, _, _ = day_file
    item = DayPointer("trusted", "t/day.parquet", "2024-01-15")

    # When Delivery writes its DETAIL file
    pointer = delivery_edge.put_detail(
        common.Outputs(store), item, "delivery", "d/day.parquet", DELIVERED_AT, VERSION
    )

    # Then it is one row group of all 300k rows
    written = pq.ParquetFile(io.BytesIO(store.objects[("delivery", "d/day.parquet")]))
    assert delivery_edge.DETAIL_ROWS == 524_288
    assert (written.metadata.num_row_groups, written.metadata.row_group(0).num_rows) == (1, 300_000)
    assert pointer.rows == 300_000


def test_a_streaming_upload_sends_full_parts_and_the_rest_last() -> None:
    # Given an upload with 10-byte parts
    store = CountingStore()
    upload = StreamingUpload(store, "delivery", "k", "application/octet-stream", part_bytes=10)

    # When 25 bytes are written in uneven pieces and it is completed
    for piece in (b"abcdefg", b"hijklmnopqrs", b"tuvwxy"):
        upload.write(piece)
    upload.complete()

    # Then two full parts went while writing and the remaining 5 bytes last, as one object
    assert store.parts == {"u1": [b"abcdefghij", b"klmnopqrst", b"uvwxy"]}
    assert store.objects[("delivery", "k")] == b"abcdefghijklmnopqrstuvwxy"
    assert (upload.byte_count, store.puts, store.aborted) == (25, [], [])


def test_a_streaming_upload_that_fails_leaves_no_object_and_aborts_its_parts() -> None:
    # Given an upload that has sent a part
    store = CountingStore()

    # When the writing fails before it completes
    upload = StreamingUpload(store, "delivery", "k", "x", part_bytes=10)
    with pytest.raises(RuntimeError, match="boom"), upload:
        upload.write(b"0123456789abc")
        raise RuntimeError("boom")

    # Then its parts are aborted and no object exists
    assert store.aborted == ["u1"]
    assert store.objects == {}
    assert store.puts == []


def test_an_abort_that_fails_does_not_hide_the_error_that_stopped_the_upload() -> None:
    # Given an upload that has sent a part, to a store that refuses the abort
    class RefusingAbort(CountingStore):
        def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
            error = {"Error": {"Code": "AccessDenied", "Message": "no"}}
            raise ClientError(error, "AbortMultipartUpload")  # type: ignore[arg-type]

    store = RefusingAbort()
    upload = StreamingUpload(store, "delivery", "k", "x", part_bytes=10)

    # When the writing fails before it completes
    # Then the writing's own error is the one raised, and no object exists
    with pytest.raises(RuntimeError, match="boom"), upload:
        upload.write(b"0123456789abc")
        raise RuntimeError("boom")
    assert (store.objects, upload.closed) == ({}, True)


def test_on_s3_a_multipart_detail_upload_and_ranged_reads_round_trip(s3: Any) -> None:
    # Given 11 MiB of bytes that do not compress, written through S3's smallest part size
    body = np.random.default_rng(5).bytes(11 * 2**20)
    store = ObjectStore(s3)
    with StreamingUpload(store, "delivery", "big", pipeline.PARQUET, part_bytes=5 * 2**20) as up:
        up.write(body)
        up.complete()

    # Then S3 has the object whole, in three parts, with its content type
    head = s3.head_object(Bucket="delivery", Key="big")
    assert (head["ContentLength"], head["ContentType"]) == (len(body), pipeline.PARQUET)
    assert head["ETag"].endswith('-3"')
    # and a ranged reader reads any span of it, and to its end
    reader = RangedReader(store, "delivery", "big")
    reader.seek(7 * 2**20)
    assert reader.read(100) == body[7 * 2**20 : 7 * 2**20 + 100]
    reader.seek(-10, io.SEEK_END)
    assert (reader.read(), reader.read(5), reader.tell()) == (body[-10:], b"", len(body))

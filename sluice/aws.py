"""The edge to AWS: botocore clients, an S3 object store, and error translation.

Clients are botocore's: boto3 (and its transfer manager, s3transfer) is imported only where a
stage moves a whole file (`ObjectStore.download`, a large `put_file`), so a Lambda that never
does (the starter, Delivery) does not load it: ~70 ms of its cold start.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from sluice.errors import SluiceTransientError
from sluice.ports import ReadsRanges, UploadsParts

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
}

# Transfers a stage makes at once: one pool per process, shared by every `ObjectStore.each`.
# (A small S3 request spends its tens of milliseconds waiting; 16 in flight is where the
# through-S3 floor of docs/performance.md measures its PUTs.)
TRANSFER_THREADS = 16

# A file up to this size is put in one request (s3transfer's own multipart threshold).
SINGLE_PUT_BYTES = 8 * 1024 * 1024

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    # A connection per transfer thread, and a few for the stage's own calls besides.
    max_pool_connections=TRANSFER_THREADS + 4,
)

T = TypeVar("T")
R = TypeVar("R")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_in_pool = threading.local()


def _transfer_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(TRANSFER_THREADS, thread_name_prefix="sluice-s3")
        return _pool


def _run_in_pool(work: Callable[[T], R], item: T) -> R:
    _in_pool.active = True
    try:
        return work(item)
    finally:
        _in_pool.active = False


_session: botocore.session.Session | None = None


def client(service: str, endpoint_url: str | None = None) -> Any:
    """A client (botocore's, as boto3 makes them); `AWS_ENDPOINT_URL` (or `endpoint_url`)
    points it at a local cloud."""
    global _session
    with _pool_lock:
        if _session is None:
            _session = botocore.session.get_session()
        session = _session
    return session.create_client(
        service,
        endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
        config=_CONFIG,
    )


def _transfer(s3: S3Client) -> Any:
    """boto3's managed transfers (threaded ranged GETs, multipart PUTs) over this client."""
    from boto3.s3.transfer import S3Transfer

    return S3Transfer(client=s3)


def is_transient(exc: BaseException) -> bool:
    if isinstance(
        exc,
        EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError | ConnectionClosedError,
    ):
        return True
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in _TRANSIENT_CODES or status >= 500
    return False


@contextmanager
def transient_aws_errors() -> Iterator[None]:
    """Re-raise throttling and outages as `SluiceTransientError`, which the workflow retries."""
    try:
        yield
    except Exception as exc:
        if is_transient(exc):
            raise SluiceTransientError(f"{type(exc).__name__}: {exc}") from exc
        raise


class ObjectStore:
    """The few S3 operations the stages need."""

    def __init__(self, s3: S3Client) -> None:
        self.s3 = s3

    def each(self, work: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`work(item)` for every item, at most `TRANSFER_THREADS` at once; the results in the
        items' order. The first failure is raised once the work already running has ended
        (what had not started is not started). Called from inside such work, it runs the items
        one after another: the pool never waits on itself."""
        todo = list(items)
        if len(todo) <= 1 or getattr(_in_pool, "active", False):
            return [work(item) for item in todo]
        pool = _transfer_pool()
        futures: list[Future[R]] = [pool.submit(_run_in_pool, work, item) for item in todo]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in futures if f in done and f.exception() is not None]
        if failed:
            for future in pending:
                future.cancel()
            wait(pending)
            raise failed[0].exception()  # type: ignore[misc]
        return [f.result() for f in futures]

    def head(self, bucket: str, key: str, version_id: str = "") -> dict[str, Any]:
        extra = {"VersionId": version_id} if version_id else {}
        return dict(self.s3.head_object(Bucket=bucket, Key=key, **extra))  # type: ignore[arg-type]

    def download(self, bucket: str, key: str, path: Path, version_id: str = "") -> None:
        extra = {"VersionId": version_id} if version_id else None
        _transfer(self.s3).download_file(bucket, key, str(path), extra_args=extra)

    def download_if_exists(self, bucket: str, key: str, path: Path) -> bool:
        """Download the object to `path`; False (and no file) when there is no such key."""
        try:
            _transfer(self.s3).download_file(bucket, key, str(path))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                path.unlink(missing_ok=True)
                return False
            raise
        return True

    def get_bytes(self, bucket: str, key: str) -> bytes:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def get_bytes_if_exists(self, bucket: str, key: str, limit: int | None = None) -> bytes | None:
        """The object's bytes, or None; with `limit`, at most its first `limit` bytes."""
        try:
            if limit is None:
                return self.get_bytes(bucket, key)
            answer = self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{limit - 1}")
            return answer["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404"):
                return None
            if code == "InvalidRange":  # an empty object has no first byte to give
                return b""
            raise

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def get_if_exists(self, bucket: str, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag (the ETag a conditional put then names), or None."""
        try:
            answer = self.s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return answer["Body"].read(), answer["ETag"]

    def head_if_exists(self, bucket: str, key: str) -> tuple[str, dict[str, str]] | None:
        """The object's ETag and user metadata, or None."""
        try:
            answer = self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return answer["ETag"], dict(answer.get("Metadata", {}))

    def put_if(
        self,
        bucket: str,
        key: str,
        body: bytes,
        content_type: str,
        etag: str | None,
        metadata: dict[str, str] | None = None,
    ) -> bool:
        """Put only over the version read (`etag`), or only where nothing is (`etag` None):
        S3's compare-and-swap. False when another writer got there first."""
        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            self.s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                Metadata=metadata or {},
                **condition,  # type: ignore[arg-type]
            )
        except ClientError as exc:
            # 412 for a changed object; 404 (If-Match) or 409 (a concurrent conditional write)
            # when it vanished or is being written meanwhile.
            if exc.response.get("Error", {}).get("Code") in (
                "PreconditionFailed",
                "NoSuchKey",
                "ConditionalRequestConflict",
            ):
                return False
            raise
        return True

    def put_file(self, bucket: str, key: str, path: Path) -> None:
        """One PUT of a file up to `SINGLE_PUT_BYTES`, a multipart upload above."""
        if path.stat().st_size <= SINGLE_PUT_BYTES:
            # (`upload_file` makes a transfer manager with its own threads each call: for a
            # small day file that costs more than the PUT. The body is streamed from the file,
            # so the pool's threads do not hold their files in memory.)
            with path.open("rb") as body:
                self.s3.put_object(Bucket=bucket, Key=key, Body=body)
            return
        _transfer(self.s3).upload_file(str(path), bucket, key)

    def size(self, bucket: str, key: str) -> int:
        return int(self.head(bucket, key)["ContentLength"])

    def get_range(self, bucket: str, key: str, start: int, length: int) -> bytes:
        """`length` bytes of the object from `start` (one ranged GET)."""
        end = start + length - 1
        response = self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")
        return response["Body"].read()

    def start_upload(self, bucket: str, key: str, content_type: str) -> str:
        """A multipart upload's id: its parts become one object when it is completed."""
        upload = self.s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)
        return upload["UploadId"]

    def upload_part(self, bucket: str, key: str, upload_id: str, number: int, body: bytes) -> str:
        """Part `number` (from 1) of the upload; its ETag."""
        part = self.s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return part["ETag"]

    def complete_upload(self, bucket: str, key: str, upload_id: str, etags: list[str]) -> None:
        parts: list[CompletedPartTypeDef] = [
            {"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, start=1)
        ]
        self.s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self.s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

    def copy(
        self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, version_id: str = ""
    ) -> None:
        source: dict[str, str] = {"Bucket": src_bucket, "Key": src_key}
        if version_id:
            source["VersionId"] = version_id
        self.s3.copy_object(CopySource=source, Bucket=dst_bucket, Key=dst_key)  # type: ignore[arg-type]

    def delete(self, bucket: str, key: str) -> None:
        self.s3.delete_object(Bucket=bucket, Key=key)

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return [key for key, _ in self.list_versions(bucket, prefix)]

    def list_between(
        self, bucket: str, prefix: str, after: str, last: str, pages: int
    ) -> tuple[list[str], str]:
        """The keys under `prefix` after `after` up to `last`, in at most `pages` LIST requests:
        the keys found, and the key the listing is complete up to (`last` when it got there;
        keys after it were not looked at)."""
        found: list[str] = []
        seen = after
        token: dict[str, str] = {}
        for _ in range(pages):
            page = self.s3.list_objects_v2(
                Bucket=bucket,
                Prefix=prefix,
                StartAfter=after,
                **token,  # type: ignore[arg-type]
            )
            keys = [obj["Key"] for obj in page.get("Contents", [])]
            found.extend(k for k in keys if k <= last)
            seen = keys[-1] if keys else seen
            if not page.get("IsTruncated") or seen >= last:
                return found, last
            token = {"ContinuationToken": page["NextContinuationToken"]}
        return found, seen

    def list_versions(self, bucket: str, prefix: str) -> list[tuple[str, str]]:
        """(key, ETag) of every object under `prefix`: what is there, and which content."""
        found: list[tuple[str, str]] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend((obj["Key"], obj.get("ETag", "")) for obj in page.get("Contents", []))
        return found


class RangedReader(io.RawIOBase):
    """An S3 object as a seekable, read-only file: each `read` is one ranged GET.

    A Parquet reader over it fetches the footer and then only the row groups it reads, so a
    stage holds one row group of a large object at a time, never the whole object, and needs
    no `/tmp` for it.
    """

    def __init__(self, store: ReadsRanges, bucket: str, key: str, size: int | None = None) -> None:
        super().__init__()
        self.store, self.bucket, self.key = store, bucket, key
        self.length = store.size(bucket, key) if size is None else size
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self.position = base + offset
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        end = self.length if size is None or size < 0 else min(self.length, self.position + size)
        if end <= self.position:
            return b""
        data = self.store.get_range(self.bucket, self.key, self.position, end - self.position)
        self.position += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


# S3's smallest part is 5 MiB (but the last); parts of 8 MiB, as boto3's transfers use.
PART_BYTES = 8 * 1024 * 1024


class StreamingUpload(io.RawIOBase):
    """A write-only file that becomes one S3 object on `complete`, held a part at a time.

    Bytes are uploaded as multipart parts as soon as a part's worth is written, so a stage
    writing a large object holds at most one part of it and needs no `/tmp` for it. An object
    smaller than a part is one PutObject. The object appears whole when `complete` returns, or
    not at all: closing it uncompleted (an exception in a `with` block) aborts the upload.
    """

    def __init__(
        self,
        store: UploadsParts,
        bucket: str,
        key: str,
        content_type: str,
        part_bytes: int = PART_BYTES,
    ) -> None:
        super().__init__()
        self.store, self.bucket, self.key = store, bucket, key
        self.content_type = content_type
        self.part_bytes = part_bytes
        self.byte_count = 0
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._etags: list[str] = []

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.byte_count

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._buffer += view
        self.byte_count += len(view)
        while len(self._buffer) >= self.part_bytes:
            self._send(bytes(self._buffer[: self.part_bytes]))
            del self._buffer[: self.part_bytes]
        return len(view)

    def _send(self, part: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self.store.start_upload(self.bucket, self.key, self.content_type)
        number = len(self._etags) + 1
        self._etags.append(
            self.store.upload_part(self.bucket, self.key, self._upload_id, number, part)
        )

    def complete(self) -> None:
        """Put what was written as the object."""
        if self._upload_id is None:
            self.store.put_bytes(self.bucket, self.key, bytes(self._buffer), self.content_type)
        else:
            if self._buffer:
                self._send(bytes(self._buffer))
            self.store.complete_upload(self.bucket, self.key, self._upload_id, self._etags)
            self._upload_id = None
        self._buffer = bytearray()
        super().close()

    def close(self) -> None:
        """Without `complete`: leave no object and no parts behind."""
        if self.closed:
            return
        upload_id, self._upload_id = self._upload_id, None
        self._buffer = bytearray()
        super().close()
        if upload_id is not None:
            # A refused or failed abort must not hide the error that stopped the upload; the
            # buckets' lifecycle rule removes parts an upload left after 7 days.
            with suppress(ClientError, BotoCoreError):
                self.store.abort_upload(self.bucket, self.key, upload_id)

"""`ObjectStore`: the few S3 operations the stages need, and the pool their transfers share."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

# Transfers a stage makes at once: one pool per process, shared by every `ObjectStore.each`.
# (A small S3 request spends its tens of milliseconds waiting; 16 in flight is where the
# through-S3 floor of docs/performance.md measures its PUTs.)
TRANSFER_THREADS = 16

# A file up to this size is put in one request (s3transfer's own multipart threshold).
SINGLE_PUT_BYTES = 8 * 1024 * 1024

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


def _transfer(s3: S3Client) -> Any:
    """boto3's managed transfers (threaded ranged GETs, multipart PUTs) over this client."""
    from boto3.s3.transfer import S3Transfer

    return S3Transfer(client=s3)


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

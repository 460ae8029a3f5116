"""In-memory stand-ins for the stage edges' ports (`sluice.ports`): an object store and a
workflow client that answer as S3 and Step Functions do, in microseconds and without moto."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from sluice.ports import StageStore, WorkflowClient

T = TypeVar("T")
R = TypeVar("R")

Key = tuple[str, str]  # (bucket, key)

# What one LIST request returns at most, as S3's ListObjectsV2.
LIST_PAGE = 1000


def _missing(operation: str, code: str) -> ClientError:
    """The error botocore raises for a key (or version) S3 does not have."""
    return ClientError({"Error": {"Code": code, "Message": "Not Found"}}, operation)


class MemoryStore:
    """An in-memory S3 that counts requests and honours conditional puts as S3 does.

    `objects` holds each current object as (bytes, user metadata); an object's ETag is the MD5
    of its bytes, quoted, as S3's of a single PUT. A bucket named in `versioned` keeps every
    version of its keys, and `head` answers its objects' `VersionId`s. A missing key raises
    botocore's `ClientError` where `sluice.aws.ObjectStore` would.

    `requests` counts by operation: `get` (every GET, whole or ranged), `put` (every PUT, plain
    or conditional), `head`, `list` (one per LIST page), `delete`, `copy`, and the multipart
    upload's `start_upload`, `upload_part`, `complete_upload` and `abort_upload`.

    `before_put` runs just before a conditional put is judged: another execution can change
    the object right between a delivery's read and its put. `each` runs the items one after
    another, in their order.
    """

    def __init__(self, versioned: Iterable[str] = ()) -> None:
        self.objects: dict[Key, tuple[bytes, dict[str, str]]] = {}
        self.content_types: dict[Key, str] = {}
        self.versioned = set(versioned)
        self.versions: dict[Key, dict[str, bytes]] = {}
        self.requests: Counter[str] = Counter()
        self.before_put: Callable[[str], None] = lambda key: None
        self._version_ids = (f"v{n}" for n in itertools.count(1))
        self._uploads: dict[str, tuple[Key, str, dict[int, bytes]]] = {}

    @staticmethod
    def etag(body: bytes) -> str:
        return f'"{hashlib.md5(body).hexdigest()}"'

    # what a test reads and writes directly: not requests
    def body(self, bucket: str, key: str) -> bytes:
        return self.objects[(bucket, key)][0]

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        return sorted(k for b, k in self.objects if b == bucket and k.startswith(prefix))

    def _store(
        self, bucket: str, key: str, body: bytes, content_type: str, metadata: dict[str, str]
    ) -> None:
        self.objects[(bucket, key)] = (body, dict(metadata))
        self.content_types[(bucket, key)] = content_type
        if bucket in self.versioned:
            self.versions.setdefault((bucket, key), {})[next(self._version_ids)] = body

    def _body(self, operation: str, bucket: str, key: str, version_id: str = "") -> bytes:
        if version_id:
            found = self.versions.get((bucket, key), {}).get(version_id)
            if found is None:
                raise _missing(operation, "NoSuchVersion")
            return found
        current = self.objects.get((bucket, key))
        if current is None:
            raise _missing(operation, "NoSuchKey")
        return current[0]

    def _current_version(self, bucket: str, key: str) -> str:
        versions = self.versions.get((bucket, key))
        return next(reversed(versions)) if versions and (bucket, key) in self.objects else ""

    def each(self, work: Callable[[T], R], items: Iterable[T]) -> list[R]:
        return [work(item) for item in items]

    def head(self, bucket: str, key: str, version_id: str = "") -> dict[str, Any]:
        self.requests["head"] += 1
        try:
            body = self._body("HeadObject", bucket, key, version_id)
        except ClientError:
            raise _missing("HeadObject", "404") from None  # a HEAD answer has no error code
        answer: dict[str, Any] = {
            "ContentLength": len(body),
            "ETag": self.etag(body),
            "ContentType": self.content_types.get((bucket, key), "binary/octet-stream"),
            "Metadata": dict(self.objects.get((bucket, key), (b"", {}))[1]),
        }
        if bucket in self.versioned:
            answer["VersionId"] = version_id or self._current_version(bucket, key)
        return answer

    def size(self, bucket: str, key: str) -> int:
        return int(self.head(bucket, key)["ContentLength"])

    def get_bytes(self, bucket: str, key: str) -> bytes:
        self.requests["get"] += 1
        return self._body("GetObject", bucket, key)

    def get_bytes_if_exists(self, bucket: str, key: str, limit: int | None = None) -> bytes | None:
        self.requests["get"] += 1
        found = self.objects.get((bucket, key))
        if found is None:
            return None
        return found[0] if limit is None else found[0][:limit]

    def get_if_exists(self, bucket: str, key: str) -> tuple[bytes, str] | None:
        self.requests["get"] += 1
        found = self.objects.get((bucket, key))
        return (found[0], self.etag(found[0])) if found else None

    def get_range(self, bucket: str, key: str, start: int, length: int) -> bytes:
        self.requests["get"] += 1
        return self._body("GetObject", bucket, key)[start : start + length]

    def download(self, bucket: str, key: str, path: Path, version_id: str = "") -> None:
        self.requests["get"] += 1
        # (s3transfer heads the object first: its error for a missing one is a 404)
        try:
            body = self._body("HeadObject", bucket, key, version_id)
        except ClientError:
            raise _missing("HeadObject", "404") from None
        path.write_bytes(body)

    def download_if_exists(self, bucket: str, key: str, path: Path) -> bool:
        try:
            self.download(bucket, key, path)
        except ClientError:
            path.unlink(missing_ok=True)
            return False
        return True

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.requests["put"] += 1
        self._store(bucket, key, body, content_type, {})

    def put_file(self, bucket: str, key: str, path: Path) -> None:
        self.requests["put"] += 1
        self._store(bucket, key, path.read_bytes(), "binary/octet-stream", {})

    def put_if(
        self,
        bucket: str,
        key: str,
        body: bytes,
        content_type: str,
        etag: str | None,
        metadata: dict[str, str] | None = None,
    ) -> bool:
        self.requests["put"] += 1
        self.before_put(key)
        found = self.objects.get((bucket, key))
        if (etag is None) != (found is None) or (found and self.etag(found[0]) != etag):
            return False
        self._store(bucket, key, body, content_type, metadata or {})
        return True

    def start_upload(self, bucket: str, key: str, content_type: str) -> str:
        self.requests["start_upload"] += 1
        upload_id = f"upload-{len(self._uploads) + 1}"
        self._uploads[upload_id] = ((bucket, key), content_type, {})
        return upload_id

    def upload_part(self, bucket: str, key: str, upload_id: str, number: int, body: bytes) -> str:
        self.requests["upload_part"] += 1
        self._uploads[upload_id][2][number] = body
        return self.etag(body)

    def complete_upload(self, bucket: str, key: str, upload_id: str, etags: list[str]) -> None:
        self.requests["complete_upload"] += 1
        (bucket, key), content_type, parts = self._uploads.pop(upload_id)
        assert [self.etag(parts[n]) for n in sorted(parts)] == etags
        self._store(bucket, key, b"".join(parts[n] for n in sorted(parts)), content_type, {})

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self.requests["abort_upload"] += 1
        self._uploads.pop(upload_id, None)

    def copy(
        self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, version_id: str = ""
    ) -> None:
        self.requests["copy"] += 1
        body = self._body("CopyObject", src_bucket, src_key, version_id)
        content_type = self.content_types.get((src_bucket, src_key), "binary/octet-stream")
        self._store(dst_bucket, dst_key, body, content_type, {})

    def delete(self, bucket: str, key: str) -> None:
        self.requests["delete"] += 1
        self.objects.pop((bucket, key), None)
        self.content_types.pop((bucket, key), None)

    def list_between(
        self, bucket: str, prefix: str, after: str, last: str, pages: int
    ) -> tuple[list[str], str]:
        """As `ObjectStore.list_between`, a page of `LIST_PAGE` keys at a time."""
        keys = [k for k in self.keys(bucket, prefix) if k > after]
        found: list[str] = []
        seen = after
        for page in range(pages):
            self.requests["list"] += 1
            batch = keys[page * LIST_PAGE : (page + 1) * LIST_PAGE]
            found.extend(k for k in batch if k <= last)
            seen = batch[-1] if batch else seen
            if len(keys) <= (page + 1) * LIST_PAGE or seen >= last:
                return found, last
        return found, seen


class ExecutionAlreadyExists(Exception):
    """Step Functions' answer to a second execution of one name."""


@dataclass
class WorkflowErrors:
    ExecutionAlreadyExists: type[Exception] = ExecutionAlreadyExists


@dataclass
class MemoryWorkflow:
    """A Step Functions client that records the executions it was asked to start (by name, its
    input decoded) and refuses a name it has seen, as StartExecution does."""

    executions: dict[str, str] = field(default_factory=dict)
    exceptions: WorkflowErrors = field(default_factory=WorkflowErrors)

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict[str, str]:
        if name in self.executions:
            raise self.exceptions.ExecutionAlreadyExists(name)
        self.executions[name] = input
        return {"executionArn": f"{stateMachineArn}:{name}"}


if TYPE_CHECKING:  # (for mypy: the fakes are what the edges take)
    _store: StageStore = MemoryStore()
    _workflow: WorkflowClient = MemoryWorkflow()

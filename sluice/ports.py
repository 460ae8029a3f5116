"""What the stage edges ask of the outside world, as structural types: the object store and the
workflow client.

`sluice.aws.ObjectStore` (S3) satisfies `StageStore` and every smaller protocol here without
naming them; so does the tests' in-memory store (`tests/fakes.py`), and a boto3/botocore Step
Functions client satisfies `WorkflowClient`. Each protocol holds exactly the methods its users
call: a method an edge starts to call is added here first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class HeadsObjects(Protocol):
    """An object's metadata (`ContentLength`, `ETag`, `VersionId`, ...): the starter's one
    question, whether an event's object is still the current one."""

    def head(self, bucket: str, key: str, version_id: str = "") -> dict[str, Any]: ...


class ReadsRanges(Protocol):
    """What `sluice.aws.RangedReader` reads an object with: its size and ranged GETs."""

    def size(self, bucket: str, key: str) -> int: ...

    def get_range(self, bucket: str, key: str, start: int, length: int) -> bytes: ...


class UploadsParts(Protocol):
    """What `sluice.aws.StreamingUpload` writes an object with: one PUT when it is small, a
    multipart upload otherwise."""

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None: ...

    def start_upload(self, bucket: str, key: str, content_type: str) -> str: ...

    def upload_part(
        self, bucket: str, key: str, upload_id: str, number: int, body: bytes
    ) -> str: ...

    def complete_upload(self, bucket: str, key: str, upload_id: str, etags: list[str]) -> None: ...

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None: ...


class StageStore(HeadsObjects, ReadsRanges, UploadsParts, Protocol):
    """Everything the stage edges (`sluice.edges`) do with objects."""

    def each(self, work: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`work(item)` for every item (perhaps several at once); the results in the items'
        order."""
        ...

    def get_bytes(self, bucket: str, key: str) -> bytes: ...

    def get_bytes_if_exists(
        self, bucket: str, key: str, limit: int | None = None
    ) -> bytes | None: ...

    def get_if_exists(self, bucket: str, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or None."""
        ...

    def put_if(
        self,
        bucket: str,
        key: str,
        body: bytes,
        content_type: str,
        etag: str | None,
        metadata: dict[str, str] | None = None,
    ) -> bool:
        """Put only over the version whose ETag is `etag`, or only where nothing is (`etag`
        None); False when another writer got there first."""
        ...

    def put_file(self, bucket: str, key: str, path: Path) -> None: ...

    def download(self, bucket: str, key: str, path: Path, version_id: str = "") -> None: ...

    def download_if_exists(self, bucket: str, key: str, path: Path) -> bool: ...

    def copy(
        self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, version_id: str = ""
    ) -> None: ...

    def delete(self, bucket: str, key: str) -> None: ...

    def list_between(
        self, bucket: str, prefix: str, after: str, last: str, pages: int
    ) -> tuple[list[str], str]:
        """The keys under `prefix` after `after` up to `last`, in at most `pages` LIST
        requests, and the key the listing is complete up to."""
        ...


class WorkflowErrors(Protocol):
    """The errors of a workflow client the starter tells apart."""

    @property
    def ExecutionAlreadyExists(self) -> type[Exception]: ...


class WorkflowClient(Protocol):
    """What the starter asks of Step Functions: one StartExecution per object."""

    @property
    def exceptions(self) -> WorkflowErrors: ...

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> Any: ...

"""The edge to AWS: boto3 clients, an S3 object store, and error translation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from sluice.errors import SluiceTransientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

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

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5)


def client(service: str, endpoint_url: str | None = None) -> Any:
    """A boto3 client; `AWS_ENDPOINT_URL` (or `endpoint_url`) points it at a local cloud."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
        config=_CONFIG,
    )


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

    def head(self, bucket: str, key: str, version_id: str = "") -> dict[str, Any]:
        extra = {"VersionId": version_id} if version_id else {}
        return dict(self.s3.head_object(Bucket=bucket, Key=key, **extra))  # type: ignore[arg-type]

    def download(self, bucket: str, key: str, path: Path, version_id: str = "") -> None:
        extra = {"VersionId": version_id} if version_id else None
        self.s3.download_file(bucket, key, str(path), ExtraArgs=extra)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def get_bytes_if_exists(self, bucket: str, key: str) -> bytes | None:
        try:
            return self.get_bytes(bucket, key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
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
        self.s3.upload_file(str(path), bucket, key)

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

    def list_versions(self, bucket: str, prefix: str) -> list[tuple[str, str]]:
        """(key, ETag) of every object under `prefix`: what is there, and which content."""
        found: list[tuple[str, str]] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend((obj["Key"], obj.get("ETag", "")) for obj in page.get("Contents", []))
        return found

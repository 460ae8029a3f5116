"""The edge to AWS: botocore clients, an S3 object store, and error translation.

Clients are botocore's: boto3 (and its transfer manager, s3transfer) is imported only where a
stage moves a whole file (`ObjectStore.download`, a large `put_file`), so a Lambda that never
does (the starter, Delivery) does not load it: ~70 ms of its cold start.

`ObjectStore` is in `sluice.object_store`, its objects as files in `sluice.object_files`
(both re-exported here).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from sluice import retries
from sluice.errors import SluiceTransientError
from sluice.object_files import PART_BYTES as PART_BYTES
from sluice.object_files import RangedReader as RangedReader
from sluice.object_files import StreamingUpload as StreamingUpload
from sluice.object_store import SINGLE_PUT_BYTES as SINGLE_PUT_BYTES
from sluice.object_store import TRANSFER_THREADS as TRANSFER_THREADS
from sluice.object_store import ObjectStore as ObjectStore

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

_CONFIG = Config(
    retries={"mode": retries.BOTOCORE_MODE, "max_attempts": retries.BOTOCORE.attempts},
    connect_timeout=5,
    # A connection per transfer thread, and a few for the stage's own calls besides.
    max_pool_connections=TRANSFER_THREADS + 4,
)


_session: botocore.session.Session | None = None
_session_lock = threading.Lock()


def client(service: str, endpoint_url: str | None = None) -> Any:
    """A client (botocore's, as boto3 makes them); `AWS_ENDPOINT_URL` (or `endpoint_url`)
    points it at a local cloud."""
    global _session
    with _session_lock:
        if _session is None:
            _session = botocore.session.get_session()
        session = _session
    return session.create_client(
        service,
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

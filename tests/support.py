"""What tests share that belongs to no one layer: waiting for something to happen, running a
stage edge on a state as the workflow carries it, an environment in which boto3 talks to moto
in-process as it would to AWS, and a check that a cloud enforcing IAM refuses keys it does not
know."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from sluice.config import Settings
from sluice.ports import StageStore
from sluice.state import ExecutionState, Section


def eventually(
    check: Callable[[], Any], timeout: float = 60, what: str = "condition", every: float = 0.05
) -> Any:
    """Call `check` until it returns something true, and return that; `TimeoutError(what)`
    if it has not within `timeout` seconds. The one way a test waits for an event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise TimeoutError(what)


def run_edge(
    edge: Callable[..., Section],
    state: dict[str, Any],
    store: StageStore,
    settings: Settings,
    *args: Any,
) -> dict[str, Any]:
    """`edge` (`sluice.pipeline.validate`, `.trusted`, `.deliver`) on `state` as JSON, as the
    handler calls it: the state parsed once, the stage's section back as the JSON it puts in
    the state."""
    return edge(ExecutionState.from_dict(state), store, settings, *args).to_dict()


def as_aws(monkeypatch: pytest.MonkeyPatch, region: str) -> None:
    """Credentials and `region`, with no endpoint or profile of the user's: what moto's
    in-process mock answers as AWS."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_REGION", region)


def assert_unknown_keys_refused(endpoint_url: str) -> None:
    """An S3 client signed with keys the cloud at `endpoint_url` does not know is refused."""
    import boto3
    from botocore.exceptions import ClientError

    stranger = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    with pytest.raises(ClientError) as refused:
        stranger.list_objects_v2(Bucket="raw")
    assert refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"

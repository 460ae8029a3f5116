"""Uploading files to RAW, finding the executions they start, and waiting for those to end."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sluice import lake
from sluice.config import RUNNING, SUCCEEDED
from sluice.lake import SourceObject
from sluice.ops.executions import TERMINAL, confirmed_status, report_of
from sluice.ops.progress import Progress
from sluice.ops.target import Target, aws_errors

MULTIPART_BYTES = 8 * 1024 * 1024
# How long `sluice upload` waits for an execution to start, and with `--wait` for it to end.
START_WAIT = 10.0
DEFAULT_UPLOAD_WAIT = 900.0


def upload(
    target: Target,
    paths: list[Path],
    dataset: str,
    *,
    wait_seconds: float = START_WAIT,
    progress: bool = True,
    today: date | None = None,
) -> list[dict[str, Any]]:
    """Put files into RAW under the upload-date partition; each object's key and execution."""
    from boto3.s3.transfer import TransferConfig

    s3 = target.client("s3")
    config = TransferConfig(
        multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES
    )
    uploaded = []
    for path in paths:
        key = lake.raw_key(dataset, path.name, today or datetime.now(UTC).date())
        size = path.stat().st_size
        callback = Progress(path.name, size) if progress and size >= MULTIPART_BYTES else None
        with aws_errors(f"upload {path.name}"):
            s3.upload_file(str(path), target.raw_bucket, key, Config=config, Callback=callback)
            head = s3.head_object(Bucket=target.raw_bucket, Key=key)
        source = SourceObject(
            target.raw_bucket,
            key,
            str(head.get("VersionId") or ""),
            str(head["ETag"]).strip('"'),
            int(head["ContentLength"]),
        )
        name, started = _find_execution(target, source, dataset, wait_seconds)
        uploaded.append(
            {
                "file": str(path),
                "bucket": source.bucket,
                "key": key,
                "version_id": source.version_id,
                "execution": name,
                "started": started,
            }
        )
    return uploaded


def _find_execution(
    target: Target, source: SourceObject, dataset: str, wait_seconds: float
) -> tuple[str, bool]:
    """The execution the object's event starts (its name is known in advance)."""
    import time

    sfn = target.client("stepfunctions")
    candidates = [lake.execution_name(source, dataset)]
    by_etag = lake.execution_name(
        SourceObject(source.bucket, source.key, etag=source.etag), dataset
    )
    if by_etag not in candidates:
        candidates.append(by_etag)
    deadline = time.monotonic() + wait_seconds
    while True:
        for name in candidates:
            try:
                sfn.describe_execution(executionArn=target.execution_arn(name))
                return name, True
            except sfn.exceptions.ExecutionDoesNotExist:
                continue
        if time.monotonic() >= deadline:
            return candidates[0], False
        time.sleep(0.1)


def await_uploads(
    target: Target,
    items: list[dict[str, Any]],
    wait_seconds: float,
    *,
    poll_seconds: float | None = None,
) -> list[dict[str, Any]]:
    """Wait until each uploaded object's execution has ended, or `wait_seconds` have passed.

    Each item gets its `outcome`: the execution's final status, `RUNNING` when the wait ran
    out, `NOT_STARTED` when no execution had started; and, unless it SUCCEEDED or still runs,
    its `failure` (execution, stage, reason code, message; the whole cause is in
    `sluice executions show`)."""
    import time

    sfn = target.client("stepfunctions")
    poll = poll_seconds if poll_seconds is not None else (0.1 if target.local else 2.0)
    for item in items:
        item["outcome"] = RUNNING if item["started"] else "NOT_STARTED"
    pending = list(items)
    seen_bare_success: set[str] = set()
    deadline = time.monotonic() + wait_seconds
    while True:
        for item in list(pending):
            arn = target.execution_arn(item["execution"])
            with aws_errors(f"describe {item['execution']}"):
                try:
                    description = sfn.describe_execution(executionArn=arn)
                except sfn.exceptions.ExecutionDoesNotExist:
                    continue
            item["started"] = True
            status = confirmed_status(
                arn, str(description["status"]), description, seen_bare_success
            )
            item["outcome"] = status
            if status in TERMINAL:
                pending.remove(item)
                if status != SUCCEEDED:
                    _, report = report_of(target, arn)
                    failure = report.failure
                    item["failure"] = failure.to_dict() if failure else None
        if not pending or time.monotonic() >= deadline:
            for item in pending:
                item["outcome"] = RUNNING if item["started"] else "NOT_STARTED"
            return items
        time.sleep(poll)

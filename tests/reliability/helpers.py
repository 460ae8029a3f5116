"""What the reliability cases share: putting files in, waiting, and counting what came out."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from sluice.lake import SourceObject
from sluice.local import LocalCloud
from tests.support import eventually

HEADER = "id,name,amount,date,category\n"


def csv_rows(count: int, start: int = 1, day: str = "2024-01-15") -> str:
    return HEADER + "".join(f"{i},N{i},{i}.5,{day},Sales\n" for i in range(start, start + count))


def put(cloud: LocalCloud, tmp: Path, name: str, text: str | bytes, dataset: str) -> SourceObject:
    path = tmp / name.replace("/", "_")
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return cloud.upload(path, dataset)


def put_with_fault(
    cloud: LocalCloud,
    fault: Callable[[str, dict[str, Any]], None] | str,
    tmp: Path,
    name: str,
    text: str | bytes,
    dataset: str,
) -> list[dict[str, Any]]:
    """The finished executions of one file put under `dataset` while `fault` (a function, or a
    worker fault's `module:function`) is in the runtime; the faults are cleared after."""
    if isinstance(fault, str):
        cloud.runtime.add_worker_fault(fault)
    else:
        cloud.runtime.add_fault(fault)
    try:
        put(cloud, tmp, name, text, dataset)
        return finished(cloud, f"{dataset}-", 1)
    finally:
        cloud.runtime.clear_faults()


def executions(cloud: LocalCloud, prefix: str = "") -> list[dict[str, Any]]:
    sfn = cloud.client("stepfunctions")
    found = []
    for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=cloud.state_machine_arn
    ):
        found += [e for e in page["executions"] if e["name"].startswith(prefix)]
    return found


def finished(
    cloud: LocalCloud, prefix: str, count: int, timeout: float = 60
) -> list[dict[str, Any]]:
    """Wait until `count` executions with the prefix exist and none is running."""

    def check() -> list[dict[str, Any]] | None:
        found = executions(cloud, prefix)
        if len(found) >= count and all(e["status"] != "RUNNING" for e in found):
            return found
        return None

    result: list[dict[str, Any]] = eventually(
        check, timeout, what=f"{count} executions of {prefix}"
    )
    return result


def queue_depth(cloud: LocalCloud, which: str) -> tuple[int, int]:
    attrs = cloud.client("sqs").get_queue_attributes(
        QueueUrl=cloud.queue_urls[which],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def drained(cloud: LocalCloud) -> None:
    eventually(lambda: queue_depth(cloud, "ingest") == (0, 0), what="ingest queue drained")


def keys(cloud: LocalCloud, bucket: str, prefix: str = "") -> list[str]:
    s3 = cloud.client("s3")
    found: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [o["Key"] for o in page.get("Contents", [])]
    return sorted(found)


def parquet_rows(cloud: LocalCloud, bucket: str, prefix: str) -> list[dict[str, Any]]:
    s3 = cloud.client("s3")
    rows: list[dict[str, Any]] = []
    for key in keys(cloud, bucket, prefix):
        if key.endswith(".parquet"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            rows += pq.read_table(io.BytesIO(body)).to_pylist()
    return rows


def accounted(cloud: LocalCloud, dataset: str) -> int:
    """Rows found again for a dataset: trusted + quarantined + duplicates, from the manifests."""
    s3 = cloud.client("s3")
    total = 0
    for key in keys(cloud, "trusted", f"_staging/{dataset}/"):
        if key.endswith(".trusted.json"):
            counts = json.loads(s3.get_object(Bucket="trusted", Key=key)["Body"].read())["counts"]
            total += counts["rows_trusted"] + counts["rows_quarantined"] + counts["duplicates"]
    return total


def s3_event(
    source: SourceObject,
    bucket: str | None = None,
    key: str | None = None,
    with_version: bool = False,
) -> str:
    """The S3 event for an object. moto's own events carry no versionId (AWS's do, on a
    versioned bucket): `with_version` writes one, as AWS would."""
    from urllib.parse import quote_plus

    obj: dict[str, Any] = {"key": quote_plus(key or source.key), "size": source.size}
    if source.etag:
        obj["eTag"] = source.etag
    if with_version and source.version_id:
        obj["versionId"] = source.version_id
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": bucket or source.bucket}, "object": obj},
                }
            ]
        }
    )


def empty(cloud: LocalCloud, which: str) -> int:
    """Receive and delete everything in a queue (PurgeQueue allows one call a minute)."""
    sqs = cloud.client("sqs")
    removed = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=cloud.queue_urls[which], MaxNumberOfMessages=10, VisibilityTimeout=30
        ).get("Messages", [])
        if not messages:
            return removed
        for message in messages:
            sqs.delete_message(
                QueueUrl=cloud.queue_urls[which], ReceiptHandle=message["ReceiptHandle"]
            )
            removed += 1

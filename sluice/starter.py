"""The starter's work: one Step Functions execution per object an S3 event names.

Kept apart from `sluice.pipeline`, so the starter's Lambda loads no Arrow, contracts or stage
logic: it only reads events and calls StartExecution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from sluice import lake
from sluice.aws import ObjectStore
from sluice.config import Settings
from sluice.errors import SluiceDataError
from sluice.events import parse_s3_notification
from sluice.lake import SourceObject


@dataclass
class StartOutcome:
    started: list[str] = field(default_factory=list)
    already_handled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    test_events: int = 0


def _superseded(store: ObjectStore | None, source: SourceObject) -> bool:
    """Whether the event names a version that is no longer the object's current one.

    A late event for an old version must not reprocess it over the newer version's outputs.
    (Events without a version id, from unversioned buckets, are never superseded.)
    """
    if store is None or not source.version_id:
        return False
    try:
        current = store.head(source.bucket, source.key).get("VersionId") or ""
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return True  # deleted since: nothing current to process
        raise
    return bool(current) and current != source.version_id


def start_executions(
    body: str, sfn: Any, settings: Settings, store: ObjectStore | None = None
) -> StartOutcome:
    """One StartExecution per object in one SQS message; a repeat of a known object is done."""
    outcome = StartOutcome()
    events = parse_s3_notification(body)
    if not events:
        outcome.test_events += 1
    for event in events:
        source = event.source
        if source.key.startswith("_"):
            # Pipeline files in RAW (contracts under `_contracts/`) are not data.
            outcome.skipped.append(source.key)
            continue
        if source.bucket != settings.raw_bucket:
            raise SluiceDataError(
                "UNEXPECTED_BUCKET", f"event for bucket {source.bucket!r}, not the RAW bucket"
            )
        dataset = lake.dataset_from_key(source.key)
        if not lake.is_valid_dataset(dataset):
            raise SluiceDataError(
                "NO_DATASET", "RAW keys must start with '<dataset>/'", key_hash=source.object_id
            )
        name = lake.execution_name(source, dataset)
        if _superseded(store, source):
            outcome.superseded.append(name)
            continue
        state = {"execution": name, "dataset": dataset, "source": source.to_dict()}
        try:
            sfn.start_execution(
                stateMachineArn=settings.state_machine_arn, name=name, input=json.dumps(state)
            )
            outcome.started.append(name)
        except sfn.exceptions.ExecutionAlreadyExists:
            outcome.already_handled.append(name)
    return outcome

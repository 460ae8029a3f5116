"""The starter's work: one Step Functions execution per object an S3 event names.

Kept apart from `sluice.pipeline`, so the starter's Lambda loads no Arrow, contracts or stage
logic: it only reads events and calls StartExecution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from sluice import lake
from sluice.config import Settings
from sluice.errors import SluiceDataError
from sluice.events import parse_s3_notification
from sluice.lake import SourceObject
from sluice.ports import HeadsObjects, WorkflowClient
from sluice.reasons import EventReason


@dataclass
class StartOutcome:
    started: list[str] = field(default_factory=list)
    already_handled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    # Objects deleted (or versions removed) before their event was handled: nothing to run.
    gone: list[str] = field(default_factory=list)
    test_events: int = 0


_MISSING = ("404", "NoSuchKey", "NotFound", "NoSuchVersion")


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _MISSING


def _standing(store: HeadsObjects | None, source: SourceObject) -> str:
    """Whether the event's object is still there to process: `current`, `superseded` (a newer
    version is current: a late event for an old version must not reprocess it over the newer
    version's outputs) or `gone` (the key has no current object, or the version the event
    names no longer exists: deleted before the starter ran). Events without a version id, from
    unversioned buckets, are never superseded."""
    if store is None:
        return "current"
    try:
        current = str(store.head(source.bucket, source.key).get("VersionId") or "")
    except ClientError as exc:
        if _missing(exc):
            return "gone"
        raise
    if not source.version_id or not current or current == source.version_id:
        return "current"
    try:
        store.head(source.bucket, source.key, source.version_id)
    except ClientError as exc:
        if _missing(exc):
            return "gone"
        raise
    return "superseded"


def start_executions(
    body: str, sfn: WorkflowClient, settings: Settings, store: HeadsObjects | None = None
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
                EventReason.UNEXPECTED_BUCKET,
                f"event for bucket {source.bucket!r}, not the RAW bucket",
            )
        dataset = lake.dataset_from_key(source.key)
        if not lake.is_valid_dataset(dataset):
            raise SluiceDataError(
                EventReason.NO_DATASET,
                "RAW keys must start with '<dataset>/'",
                key_hash=source.object_id,
            )
        name = lake.execution_name(source, dataset)
        standing = _standing(store, source)
        if standing == "superseded":
            outcome.superseded.append(name)
            continue
        if standing == "gone":
            outcome.gone.append(name)
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

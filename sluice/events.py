"""Parse S3 event notifications as they arrive through SQS."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event

from sluice.lake import SourceObject


@dataclass(frozen=True)
class ObjectEvent:
    """One `ObjectCreated` record of an S3 notification."""

    event_name: str
    source: SourceObject


class EventError(ValueError):
    """The message is not an S3 notification Sluice can act on."""


def parse_s3_notification(body: str) -> list[ObjectEvent]:
    """Object-created records of one SQS message body; `[]` for `s3:TestEvent`."""
    try:
        document: Any = json.loads(body)
    except json.JSONDecodeError as exc:
        raise EventError(f"message body is not JSON: {exc.msg}") from exc
    if not isinstance(document, dict):
        raise EventError("message body is not a JSON object")
    if document.get("Event") == "s3:TestEvent":
        return []
    if not isinstance(document.get("Records"), list):
        raise EventError("message has no 'Records' list")
    events = []
    for record in S3Event(document).records:
        name = str(record.get("eventName", ""))
        if not name.startswith("ObjectCreated"):
            continue
        try:
            obj = record.s3.get_object
            source = SourceObject(
                bucket=record.s3.bucket.name,
                # S3 URL-encodes keys in notifications, with '+' for a space.
                key=unquote_plus(obj.key),
                version_id=obj.version_id or "",
                etag=obj.etag or "",
                size=int(obj.size or 0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EventError(f"malformed S3 record: missing or bad {exc}") from exc
        events.append(ObjectEvent(event_name=name, source=source))
    return events

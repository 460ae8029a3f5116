from __future__ import annotations

import json

import pytest

from sluice.events import EventError, parse_s3_notification
from tests.conftest import load_event


def test_test_event_is_acknowledged_without_records() -> None:
    # Given S3's TestEvent
    # When it is parsed, Then it holds no records
    assert parse_s3_notification(json.dumps(load_event("s3_test_event.json"))) == []


def test_keys_are_url_decoded_and_only_created_objects_kept() -> None:
    # Given a notification with two created objects and one removal
    body = json.dumps(load_event("s3_put_two_records.json"))
    # When it is parsed
    events = parse_s3_notification(body)
    # Then '+' is a space, %2B a plus, %25 a percent, UTF-8 decoded, and the removal ignored
    assert [e.source.key for e in events] == [
        "transactions/year=2024/month=01/day=15/my file + more%.csv",
        "orders/year=2024/month=01/day=15/café.jsonl",
    ]
    first, second = events
    assert first.source.version_id == "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
    assert first.source.size == 152
    assert second.source.version_id == ""
    assert second.event_name == "ObjectCreated:CompleteMultipartUpload"


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"foo": 1}'])
def test_other_messages_are_errors(body: str) -> None:
    # Given a message that is not JSON, not an object, or not a notification
    # When it is parsed, Then it is an EventError
    with pytest.raises(EventError):
        parse_s3_notification(body)

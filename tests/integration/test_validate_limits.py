"""Validate holds a file to its format's size limit, known from the name or, when the name
says nothing, from the first bytes; the limits reach it through its environment."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from sluice import pipeline
from sluice.aws import ObjectStore
from sluice.config import Settings
from sluice.errors import SluiceDataError
from sluice.lake import SourceObject
from tests.emf import SETTINGS
from tests.support import run_edge

LIMITS = {"csv": 4000, "jsonl": 1000}
LIMITED = dataclasses.replace(SETTINGS, max_file_bytes=4000, file_limits=LIMITS)
JSONL = b"".join(
    json.dumps({"id": i, "name": "A", "amount": 1.5, "date": "2024-01-15"}).encode() + b"\n"
    for i in range(30)
)


def test_the_file_limits_reach_a_function_through_its_environment() -> None:
    # Given settings with per-format limits
    # When they are written to a function's environment and read back
    env = LIMITED.to_env()

    # Then the limits are the same, and a format without one is held to max_file_bytes
    assert env["SLUICE_FILE_LIMITS"] == '{"csv": 4000, "jsonl": 1000}'
    back = Settings.from_env(env)
    assert back.file_limits == LIMITS
    assert (back.file_limit("jsonl"), back.file_limit("xlsx"), back.file_limit(None)) == (
        1000,
        4000,
        4000,
    )


def test_a_name_without_a_format_is_held_to_its_contents_limit(s3: Any) -> None:
    # Given JSON Lines over the JSON Lines limit, under CSV's, named without an extension
    assert LIMITS["jsonl"] < len(JSONL) < LIMITS["csv"]
    key = "transactions/year=2024/month=03/day=01/export"
    s3.put_object(Bucket="raw", Key=key, Body=JSONL)
    head = s3.head_object(Bucket="raw", Key=key)
    source = SourceObject("raw", key, etag=head["ETag"], size=head["ContentLength"])
    state = {"execution": "e", "dataset": "transactions", "source": source.to_dict()}

    # When Validate runs
    with pytest.raises(SluiceDataError) as refused:
        run_edge(pipeline.validate, state, ObjectStore(s3), LIMITED)

    # Then it is FILE_TOO_LARGE against JSON Lines' limit, quarantined with its reason
    assert refused.value.to_dict() == {
        "reason": "FILE_TOO_LARGE",
        "message": f"{len(JSONL)} bytes is over the jsonl limit of 1000; raise "
        "max_file_bytes_by_format.jsonl (with stage sizes that serve it)",
        "size": len(JSONL),
        "format": "jsonl",
        "limit": 1000,
        "raise_setting": "max_file_bytes_by_format.jsonl",
    }
    quarantined = [o["Key"] for o in s3.list_objects_v2(Bucket="quarantine")["Contents"]]
    assert sorted(k.rsplit("/", 1)[1] for k in quarantined) == ["export", "reason.json"]

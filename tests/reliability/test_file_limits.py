"""A file too big for its functions is quarantined as FILE_TOO_LARGE before it is read, with a
reason that says its format's limit and what to raise; one just under that limit goes through.

The functions are sized so that JSON Lines' limit (`sluice.sizing`, from Validate's memory) is a
under 100 KB while CSV's is the configured `max_file_bytes`: each format is held to its own.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice import sizing
from sluice.environments import EnvironmentSettings, StageSettings
from sluice.local import LocalCloud
from tests.reliability.conftest import Ledger, case
from tests.reliability.helpers import csv_rows, keys

JSONL_LIMIT_MB = 0.05
ROOMY = StageSettings(memory_mb=1024, timeout_seconds=300, ephemeral_storage_mb=512)
STAGES = {
    "validate": dataclasses.replace(
        ROOMY,
        memory_mb=math.ceil(sizing.cost("jsonl")["validate"].memory_needed(JSONL_LIMIT_MB)),
    ),
    "trusted": ROOMY,
    "delivery": ROOMY,
}
MAX_FILE_BYTES = 512 * 1024
# As the stack deploys them: dev's per-format settings, capped by what the stages serve.
BY_FORMAT = EnvironmentSettings.load("dev").max_file_bytes_by_format
LIMITS = sizing.file_limits(MAX_FILE_BYTES, BY_FORMAT, STAGES)


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(stages=STAGES, max_file_bytes=MAX_FILE_BYTES) as running:
        # the local cloud gives each format the limit the stack would, from these sizes
        assert running.settings.file_limits == LIMITS
        yield running


def jsonl_of(size: int) -> bytes:
    """JSON Lines transactions of at most `size` bytes, within 100 bytes of it."""
    lines: list[bytes] = []
    total = 0
    while True:
        line = (
            json.dumps(
                {
                    "id": len(lines) + 1,
                    "name": "A",
                    "amount": 10.5,
                    "date": "2024-01-15",
                    "category": "Sales",
                }
            ).encode()
            + b"\n"
        )
        if total + len(line) > size:
            return b"".join(lines)
        lines.append(line)
        total += len(line)


def run(cloud: LocalCloud, tmp: Path, name: str, body: bytes) -> dict[str, Any]:
    path = tmp / name
    path.write_bytes(body)
    source = cloud.upload(path, "transactions")
    described = cloud.wait(source, timeout=120)
    s3 = cloud.client("s3")
    # RAW is untouched: the same bytes, one version
    assert s3.get_object(Bucket="raw", Key=source.key)["Body"].read() == body
    versions = s3.list_object_versions(Bucket="raw", Prefix=source.key).get("Versions", [])
    assert len(versions) == 1
    found = [k for k in keys(cloud, "quarantine", "transactions/files/") if source.stem in k]
    reason = next((k for k in found if k.endswith("reason.json")), None)
    cause = json.loads(described["cause"]) if described.get("cause") else {}
    return {
        "status": described["status"],
        "error": (cause.get("errorType"), cause.get("errorMessage")) if cause else None,
        "reason": json.loads(s3.get_object(Bucket="quarantine", Key=reason)["Body"].read())
        if reason
        else None,
        "copies": [k for k in found if k.endswith(f"/{source.name}")],
    }


def test_the_stage_sizes_give_json_lines_a_smaller_limit_than_csv() -> None:
    # Given Validate sized for 0.05 MB of JSON Lines and a general limit of 512 KiB
    # When each format's limit is computed
    # Then JSON Lines' comes from the sizes (a few KB over 0.05 MB, as memory is whole MB) and
    # CSV's is the configured one
    assert LIMITS["jsonl"] == sizing.largest_file("jsonl", STAGES)
    assert int(JSONL_LIMIT_MB * 2**20) <= LIMITS["jsonl"] < 2 * int(JSONL_LIMIT_MB * 2**20)
    assert LIMITS["csv"] == MAX_FILE_BYTES


@case(14, "a file over its format's limit is quarantined before it is read")
def test_a_file_over_its_formats_limit_is_too_large(
    cloud: LocalCloud, tmp_path: Path, ledger: Ledger
) -> None:
    # Given JSON Lines one line over its limit
    limit = LIMITS["jsonl"]
    body = jsonl_of(limit + 100)
    assert len(body) > limit

    # When it lands in RAW
    result = run(cloud, tmp_path, "over.jsonl", body)

    # Then it is quarantined as FILE_TOO_LARGE with the limit, its format and what to raise
    message = (
        f"{len(body)} bytes is over the jsonl limit of {limit}; raise "
        "max_file_bytes_by_format.jsonl (with stage sizes that serve it)"
    )
    assert result["status"] == "FAILED"
    assert result["error"] == ("SluiceDataError", f"FILE_TOO_LARGE: {message}")
    reason = result["reason"]
    assert {k: reason[k] for k in ("reason", "message", "size", "format", "limit")} == {
        "reason": "FILE_TOO_LARGE",
        "message": message,
        "size": len(body),
        "format": "jsonl",
        "limit": limit,
    }
    assert reason["raise_setting"] == "max_file_bytes_by_format.jsonl"
    assert len(result["copies"]) == 1


@case(14, "a file just under its format's limit goes through")
def test_a_file_just_under_its_formats_limit_passes(
    cloud: LocalCloud, tmp_path: Path, ledger: Ledger
) -> None:
    # Given JSON Lines just under its limit, and a CSV larger than that limit (under its own)
    body = jsonl_of(LIMITS["jsonl"])
    text = csv_rows(3000).encode()
    assert LIMITS["jsonl"] - 100 < len(body) <= LIMITS["jsonl"] < len(text) < LIMITS["csv"]

    # When they land in RAW
    # Then both succeed, nothing quarantined as a file
    assert run(cloud, tmp_path, "under.jsonl", body) == {
        "status": "SUCCEEDED",
        "error": None,
        "reason": None,
        "copies": [],
    }
    assert run(cloud, tmp_path, "larger.csv", text)["status"] == "SUCCEEDED"


@case(14, "a gzip that inflates past its format's limit is stopped while it is read")
def test_a_gzip_inflating_past_its_limit_is_too_large(
    cloud: LocalCloud, tmp_path: Path, ledger: Ledger
) -> None:
    # Given gzip JSON Lines far under the limit compressed, over it inflated
    limit = LIMITS["jsonl.gz"]
    body = gzip.compress(jsonl_of(4 * limit))
    assert len(body) < limit

    # When it lands in RAW
    result = run(cloud, tmp_path, "inflates.jsonl.gz", body)

    # Then it is FILE_TOO_LARGE on its inflated bytes
    assert result["status"] == "FAILED"
    assert result["reason"]["reason"] == "FILE_TOO_LARGE"
    assert result["reason"]["message"] == (
        f"inflates past the jsonl.gz limit of {limit} bytes; raise "
        "max_file_bytes_by_format.jsonl.gz (with stage sizes that serve it)"
    )
    assert len(result["copies"]) == 1

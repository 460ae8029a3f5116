from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import as_aws

FIXTURES = Path(__file__).parent / "fixtures"


def load_event(name: str) -> Any:
    return json.loads((FIXTURES / "events" / name).read_text(encoding="utf-8"))


@pytest.fixture
def write_file(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a small input file and return its path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    return _write


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An in-process moto S3 with the four lake buckets, and no user AWS configuration."""
    import boto3
    from moto import mock_aws

    from sluice.config import LAYERS

    as_aws(monkeypatch, "us-east-1")
    with mock_aws():
        client = boto3.client("s3")
        for bucket in LAYERS:
            client.create_bucket(Bucket=bucket)
        yield client

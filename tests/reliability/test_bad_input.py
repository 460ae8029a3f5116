"""Bad input: a typed error, no retry, a quarantine copy with its reason, RAW untouched."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice import ops
from sluice.lake import SourceObject
from sluice.local import LocalCloud
from tests.hostile import padded, with_entities, xlsx
from tests.reliability.conftest import Ledger, case
from tests.reliability.helpers import (
    HEADER,
    accounted,
    csv_rows,
    drained,
    empty,
    eventually,
    executions,
    keys,
    queue_depth,
    s3_event,
)

SIZE_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(max_file_bytes=SIZE_LIMIT) as running:
        yield running


def zip_bomb(tmp: Path) -> bytes:
    return padded(xlsx(tmp / "bomb.xlsx", [["id"], [1]]), 32).read_bytes()


def entity_bomb(tmp: Path) -> bytes:
    plain = xlsx(tmp / "plain.xlsx", [["id"], [1]])
    return with_entities(plain, tmp / "entities.xlsx").read_bytes()


def run_bad(cloud: LocalCloud, tmp: Path, name: str, body: bytes) -> dict[str, Any]:
    """Upload, wait, and return what `sluice execution show` says plus the quarantine record."""
    path = tmp / name
    path.write_bytes(body)
    source = cloud.upload(path, "transactions")
    description = cloud.wait(source, timeout=60)
    target = ops.resolve(None, cloud.endpoint_url)
    shown = ops.show(target, description["name"])
    s3 = cloud.client("s3")
    # RAW is untouched: the same bytes, one version
    assert s3.get_object(Bucket="raw", Key=source.key)["Body"].read() == body
    versions = s3.list_object_versions(Bucket="raw", Prefix=source.key).get("Versions", [])
    assert len(versions) == 1
    reasons = [
        k
        for k in keys(cloud, "quarantine", "transactions/files/")
        if k.endswith("reason.json") and source.stem in k
    ]
    record = (
        json.loads(s3.get_object(Bucket="quarantine", Key=reasons[0])["Body"].read())
        if reasons
        else None
    )
    copies = [
        k for k in keys(cloud, "quarantine", "transactions/files/") if k.endswith(f"/{source.name}")
    ]
    return {"shown": shown, "reason": record, "copy": copies, "source": source}


BAD_FILES: list[tuple[str, Any, str]] = [
    ("corrupt.csv", bytes(range(256)) * 4, "UNREADABLE_ENCODING"),
    ("empty.csv", b"", "EMPTY_FILE"),
    ("header_only.csv", HEADER.encode(), "HEADER_ONLY"),
    ("wrong_delimiter.csv", (HEADER + "1;A;10;2024-01-15;Sales\n").encode(), "MALFORMED_CSV"),
    ("utf16.csv", csv_rows(2).encode("utf-16"), "UNREADABLE_ENCODING"),
    ("truncated.csv.gz", gzip.compress(csv_rows(500).encode())[:200], "UNREADABLE"),
    ("drifted.csv", b"id,name,value,when,category\n1,A,1,2024-01-15,S\n", "MISSING_COLUMNS"),
]


@case(13, "corrupt, empty, header-only, delimiter, encoding, gzip, drifted files")
@pytest.mark.parametrize(("name", "body", "reason"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files(
    cloud: LocalCloud, tmp_path: Path, ledger: Ledger, name: str, body: bytes, reason: str
) -> None:
    result = run_bad(cloud, tmp_path, name, body)
    shown = result["shown"]
    validate = next(s for s in shown["stages"] if s["name"] == "validate")
    assert (shown["status"], shown["failed_stage"], shown["error"]) == (
        "FAILED",
        "validate",
        "SluiceDataError",
    )
    # a data error is never retried: the stage's run, and its run once more after the letter
    assert validate["attempts"] == 2
    assert validate["errors"][0] == validate["errors"][1]
    assert shown["cause"].startswith(f"SluiceDataError: {reason}")
    assert result["reason"]["reason"] == reason
    assert len(result["copy"]) == 1


@case(13, "BOM and Latin-1 files are read, not rejected")
@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("bom.csv", b"\xef\xbb\xbf" + csv_rows(2).encode()),
        ("latin1.csv", (HEADER + "1,Caf\xe9,10,2024-01-15,Sales\n").encode("latin-1")),
    ],
    ids=["bom", "latin-1"],
)
def test_readable_encodings(cloud: LocalCloud, tmp_path: Path, name: str, body: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(body)
    source = cloud.upload(path, "encodings")
    assert cloud.wait(source, timeout=60)["status"] == "SUCCEEDED"


@case(14, "a file over the size limit is quarantined before it is read")
def test_too_large(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    body = csv_rows(4000).encode()
    assert len(body) > SIZE_LIMIT
    result = run_bad(cloud, tmp_path, "huge.csv", body)
    assert result["reason"]["reason"] == "FILE_TOO_LARGE"
    assert result["reason"]["size"] == len(body)
    assert (result["reason"]["format"], result["reason"]["limit"]) == ("csv", SIZE_LIMIT)
    assert result["shown"]["cause"] == (
        f"SluiceDataError: FILE_TOO_LARGE: {len(body)} bytes is over the csv limit of "
        f"{SIZE_LIMIT}; raise max_file_bytes_by_format.csv (with stage sizes that serve it)"
    )


@case(15, "an xlsx zip bomb and an XML entity bomb are rejected as unsafe")
@pytest.mark.parametrize("kind", ["zip", "entities"])
def test_bombs(cloud: LocalCloud, tmp_path: Path, kind: str) -> None:
    body = zip_bomb(tmp_path) if kind == "zip" else entity_bomb(tmp_path)
    assert len(body) < SIZE_LIMIT
    result = run_bad(cloud, tmp_path, f"{kind}_bomb.xlsx", body)
    assert result["reason"]["reason"] == "UNSAFE_ARCHIVE"
    assert result["shown"]["stages"][0]["attempts"] == 2  # no retry; once more after the letter


TRAVERSAL_KEYS = [
    "transactions/../escape.csv",
    "transactions/%2e%2e/escape.csv",
    "transactions/ctl\x07bell.csv",
    "transactions/" + "k" * 990 + ".csv",
]


@case(16, "path traversal and odd keys stay under their dataset prefix")
def test_path_traversal(cloud: LocalCloud, ledger: Ledger) -> None:
    s3 = cloud.client("s3")
    for key in TRAVERSAL_KEYS:
        s3.put_object(Bucket="raw", Key=key, Body=csv_rows(1).encode())

    def odd_runs() -> list[dict[str, Any]] | None:
        found = [
            e
            for e in executions(cloud, "transactions-")
            if any(part in e["name"] for part in ("escape", "ctl", "kkkk"))
        ]
        done = len(found) == 4 and all(e["status"] != "RUNNING" for e in found)
        return found if done else None

    found = eventually(odd_runs, 60, "four executions for the odd keys")
    assert [e["status"] for e in found] == ["SUCCEEDED"] * 4
    for bucket in ("trusted", "delivery", "quarantine"):
        for key in keys(cloud, bucket):
            assert key.startswith(
                ("transactions/", "encodings/", "_staging/transactions/", "_staging/encodings/",
                 "_summaries/transactions/", "_summaries/encodings/", "_lineage/",
                 "_state/transactions/", "_state/encodings/")
            ), key  # fmt: skip
            assert ".." not in key.split("/") and "\x07" not in key
    ledger.record(4, 4)


@case(16, "an absolute key has no dataset and is rejected, not processed")
def test_absolute_key(cloud: LocalCloud) -> None:
    before = len(executions(cloud))
    cloud.client("s3").put_object(Bucket="raw", Key="/transactions/abs.csv", Body=b"id\n1\n")
    eventually(lambda: queue_depth(cloud, "ingest_dlq")[0] >= 1, 60, "rejected event in the DLQ")
    assert len(executions(cloud)) == before
    log = "\n".join(cloud.runtime.logs["sluice-starter"])
    assert '"reason":"NO_DATASET"' in log
    assert empty(cloud, "ingest_dlq") == 1


@case(17, "an event for an unexpected bucket is rejected and reported")
def test_unexpected_bucket(cloud: LocalCloud) -> None:
    before = {b: keys(cloud, b) for b in ("trusted", "delivery", "quarantine")}
    count = len(executions(cloud))
    event = s3_event(SourceObject("someone-elses-bucket", "transactions/x.csv", etag="e", size=9))
    cloud.client("sqs").send_message(QueueUrl=cloud.queue_urls["ingest"], MessageBody=event)
    eventually(lambda: queue_depth(cloud, "ingest_dlq")[0] >= 1, 60, "rejected event in the DLQ")
    assert len(executions(cloud)) == count
    assert {b: keys(cloud, b) for b in before} == before
    log = "\n".join(cloud.runtime.logs["sluice-starter"])
    assert '"reason":"UNEXPECTED_BUCKET"' in log
    assert empty(cloud, "ingest_dlq") == 1


@case(18, "logs hold keys, counts and hashes, never row values")
def test_no_row_values_in_logs(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    secret_name, secret_amount, secret_bad = "SECRET-NAME-4711", "98765.43", "SECRET-BAD-VALUE"
    text = HEADER + (
        f"1,{secret_name},{secret_amount},2024-01-15,Sales\n2,B,{secret_bad},2024-01-15,Sales\n"
    )
    path = tmp_path / "private.csv"
    path.write_text(text, encoding="utf-8")
    source = cloud.upload(path, "private")
    assert cloud.wait(source, timeout=60)["status"] == "SUCCEEDED"
    drained(cloud)
    every_line = "\n".join(line for lines in cloud.runtime.logs.values() for line in lines)
    assert source.key in every_line  # keys are logged
    for value in (secret_name, secret_amount, secret_bad):
        assert value not in every_line
    ledger.record(2, accounted(cloud, "private"))

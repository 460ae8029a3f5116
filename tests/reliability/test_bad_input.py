"""Bad input: a typed error, no retry, a quarantine copy with its reason, RAW untouched."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice import ops
from sluice.formats import LIMIT_FORMATS
from sluice.lake import SourceObject
from sluice.local import LocalCloud
from tests.hostile import padded, utf8_with_one_bad_byte, with_entities, workbook, xlsx
from tests.reliability.conftest import Ledger, case
from tests.reliability.helpers import (
    HEADER,
    accounted,
    csv_rows,
    drained,
    empty,
    executions,
    keys,
    parquet_rows,
    queue_depth,
    s3_event,
)
from tests.support import eventually

SIZE_LIMIT = 64 * 1024
# gzip CSV is held to a larger limit (on its inflated bytes): the cases of files over a MiB
# run as gzip, in the same cloud.
GZIP_CSV_LIMIT = 32 * 1024 * 1024


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    limits = dict.fromkeys(LIMIT_FORMATS, SIZE_LIMIT) | {"csv.gz": GZIP_CSV_LIMIT}
    with LocalCloud(max_file_bytes=SIZE_LIMIT, file_limits=limits) as running:
        yield running


def zip_bomb(tmp: Path) -> bytes:
    return padded(xlsx(tmp / "bomb.xlsx", [["id"], [1]]), 32).read_bytes()


def entity_bomb(tmp: Path) -> bytes:
    plain = xlsx(tmp / "plain.xlsx", [["id"], [1]])
    return with_entities(plain, tmp / "entities.xlsx").read_bytes()


def run_bad(
    cloud: LocalCloud, tmp: Path, name: str, body: bytes, dataset: str = "transactions"
) -> dict[str, Any]:
    """Upload, wait, and return what `sluice executions show` says plus the quarantine record."""
    path = tmp / name
    path.write_bytes(body)
    source = cloud.upload(path, dataset)
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
        for k in keys(cloud, "quarantine", f"{dataset}/files/")
        if k.endswith("reason.json") and source.stem in k
    ]
    record = (
        json.loads(s3.get_object(Bucket="quarantine", Key=reasons[0])["Body"].read())
        if reasons
        else None
    )
    copies = [
        k for k in keys(cloud, "quarantine", f"{dataset}/files/") if k.endswith(f"/{source.name}")
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
    # Given a bad file of this kind
    # When it is uploaded and its execution shown
    result = run_bad(cloud, tmp_path, name, body)
    shown = result["shown"]
    validate = next(s for s in shown["stages"] if s["name"] == "validate")
    # Then it failed at Validate as a data error, naming its reason
    assert (shown["status"], shown["failed_stage"], shown["error"]) == (
        "FAILED",
        "validate",
        "SluiceDataError",
    )
    # a data error is never retried: the stage's run, and its run once more after the letter
    assert validate["attempts"] == 2
    assert validate["errors"][0] == validate["errors"][1]
    assert shown["cause"].startswith(f"SluiceDataError: {reason}")
    # And it is quarantined once, with its reason
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
    # Given a file with a BOM, or in Latin-1
    path = tmp_path / name
    path.write_bytes(body)
    # When it is uploaded
    source = cloud.upload(path, "encodings")
    # Then its execution succeeds
    assert cloud.wait(source, timeout=60)["status"] == "SUCCEEDED"


@case(14, "a file over the size limit is quarantined before it is read")
def test_too_large(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    # Given a CSV over the size limit
    body = csv_rows(4000).encode()
    assert len(body) > SIZE_LIMIT
    # When it is uploaded
    result = run_bad(cloud, tmp_path, "huge.csv", body)
    # Then it is quarantined as FILE_TOO_LARGE, with its size, format and limit, and the fix named
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
    # Given an xlsx zip bomb, or one of XML entities, under the size limit
    body = zip_bomb(tmp_path) if kind == "zip" else entity_bomb(tmp_path)
    assert len(body) < SIZE_LIMIT
    # When it is uploaded
    result = run_bad(cloud, tmp_path, f"{kind}_bomb.xlsx", body)
    # Then it is quarantined as UNSAFE_ARCHIVE, without a retry
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
    # Given files put under keys that climb out, are escaped, hold a control character or are very
    # long
    s3 = cloud.client("s3")
    for key in TRAVERSAL_KEYS:
        s3.put_object(Bucket="raw", Key=key, Body=csv_rows(1).encode())

    # When their executions have finished
    def odd_runs() -> list[dict[str, Any]] | None:
        found = [
            e
            for e in executions(cloud, "transactions-")
            if any(part in e["name"] for part in ("escape", "ctl", "kkkk"))
        ]
        done = len(found) == 4 and all(e["status"] != "RUNNING" for e in found)
        return found if done else None

    found = eventually(odd_runs, 60, "four executions for the odd keys")
    # Then each succeeded, and every output stays under its dataset's prefix
    assert [e["status"] for e in found] == ["SUCCEEDED"] * 4
    for bucket in ("trusted", "delivery", "quarantine"):
        for key in keys(cloud, bucket):
            assert key.startswith(
                ("transactions/", "encodings/", "_staging/transactions/", "_staging/encodings/",
                 "_summaries/transactions/", "_summaries/encodings/", "_lineage/")
            ), key  # fmt: skip
            assert ".." not in key.split("/") and "\x07" not in key
    ledger.record(4, 4)


@case(16, "an absolute key has no dataset and is rejected, not processed")
def test_absolute_key(cloud: LocalCloud) -> None:
    # Given an object put under a key that starts with a slash
    before = len(executions(cloud))
    cloud.client("s3").put_object(Bucket="raw", Key="/transactions/abs.csv", Body=b"id\n1\n")
    # When its event has been rejected to the DLQ
    eventually(lambda: queue_depth(cloud, "ingest_dlq")[0] >= 1, 60, "rejected event in the DLQ")
    # Then no execution started, and the starter logged NO_DATASET
    assert len(executions(cloud)) == before
    log = "\n".join(cloud.runtime.logs["sluice-starter"])
    assert '"reason":"NO_DATASET"' in log
    assert empty(cloud, "ingest_dlq") == 1


@case(17, "an event for an unexpected bucket is rejected and reported")
def test_unexpected_bucket(cloud: LocalCloud) -> None:
    # Given an event for an object in another bucket
    before = {b: keys(cloud, b) for b in ("trusted", "delivery", "quarantine")}
    count = len(executions(cloud))
    event = s3_event(SourceObject("someone-elses-bucket", "transactions/x.csv", etag="e", size=9))
    # When it is sent to the ingest queue and rejected to the DLQ
    cloud.client("sqs").send_message(QueueUrl=cloud.queue_urls["ingest"], MessageBody=event)
    eventually(lambda: queue_depth(cloud, "ingest_dlq")[0] >= 1, 60, "rejected event in the DLQ")
    # Then no execution started, nothing was written, and the starter logged UNEXPECTED_BUCKET
    assert len(executions(cloud)) == count
    assert {b: keys(cloud, b) for b in before} == before
    log = "\n".join(cloud.runtime.logs["sluice-starter"])
    assert '"reason":"UNEXPECTED_BUCKET"' in log
    assert empty(cloud, "ingest_dlq") == 1


@case(18, "logs hold keys, counts and hashes, never row values")
def test_no_row_values_in_logs(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    # Given a file whose rows hold secret values, one of them invalid
    secret_name, secret_amount, secret_bad = "SECRET-NAME-4711", "98765.43", "SECRET-BAD-VALUE"
    text = HEADER + (
        f"1,{secret_name},{secret_amount},2024-01-15,Sales\n2,B,{secret_bad},2024-01-15,Sales\n"
    )
    path = tmp_path / "private.csv"
    path.write_text(text, encoding="utf-8")
    # When it is uploaded and runs
    source = cloud.upload(path, "private")
    assert cloud.wait(source, timeout=60)["status"] == "SUCCEEDED"
    drained(cloud)
    # Then the logs name its key but none of its values
    every_line = "\n".join(line for lines in cloud.runtime.logs.values() for line in lines)
    assert source.key in every_line  # keys are logged
    for value in (secret_name, secret_amount, secret_bad):
        assert value not in every_line
    ledger.record(2, accounted(cloud, "private"))


def assert_typed_once(result: dict[str, Any], reason: str) -> None:
    """Failed at Validate with `reason`, not retried, one quarantine copy with its reason."""
    shown = result["shown"]
    assert (shown["status"], shown["failed_stage"], shown["error"]) == (
        "FAILED",
        "validate",
        "SluiceDataError",
    )
    assert shown["stages"][0]["attempts"] == 2  # no retry; once more after the letter
    assert shown["cause"].startswith(f"SluiceDataError: {reason}: ")
    assert result["reason"]["reason"] == reason
    assert len(result["copy"]) == 1


def put_contract(cloud: LocalCloud, dataset: str, text: str) -> None:
    cloud.client("s3").put_object(Bucket="raw", Key=f"_contracts/{dataset}.yaml", Body=text)


@case(21, "a UTF-8 file with one bad byte past the first MiB: UNREADABLE_ENCODING at its offset")
def test_bad_byte_past_the_first_mebibyte(cloud: LocalCloud, tmp_path: Path) -> None:
    # Given a 1.5 MB UTF-8 file (gzipped) whose one byte that is not UTF-8 is past the first MiB
    body, offset = utf8_with_one_bad_byte(80_000, 70_000)
    assert offset > 1024 * 1024
    # When it runs, Then it fails typed at that byte, quarantined, RAW untouched, no retry
    result = run_bad(cloud, tmp_path, "bad_byte.csv.gz", gzip.compress(body), "encodings")
    assert_typed_once(result, "UNREADABLE_ENCODING")
    assert (result["reason"]["encoding"], result["reason"]["offset"]) == ("utf-8", offset)


@case(21, "a cp1252 file read in the contract's encoding: every character as written")
def test_contract_encoding(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    # Given a contract that says cp1252, and a file with curly quotes, an accent and a euro
    put_contract(
        cloud,
        "windows",
        "dataset: windows\nencoding: cp1252\ncolumns:\n  id: {type: int, required: true}\n"
        "  name: {type: string}\nprimary_key: [id]\n",
    )
    path = tmp_path / "quotes.csv"
    path.write_bytes("id,name\n1,\u201cCaf\u00e9\u201d\n2,\u20ac 5\n".encode("cp1252"))
    # When it runs, Then TRUSTED holds every character as the file wrote it
    source = cloud.upload(path, "windows")
    assert cloud.wait(source, timeout=60)["status"] == "SUCCEEDED"
    rows = parquet_rows(cloud, "trusted", "windows/")
    assert sorted((r["id"], r["name"]) for r in rows) == [
        (1, "\u201cCaf\u00e9\u201d"),
        (2, "\u20ac 5"),
    ]
    ledger.record(2, accounted(cloud, "windows"))


@case(22, "an xlsx with a cover page and data on two sheets: both read, the others reported")
def test_every_sheet_accounted_for(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    # Given a workbook: a cover page, two sheets of rows, a lookup sheet, an empty sheet
    put_contract(
        cloud,
        "sheets",
        "dataset: sheets\ncolumns:\n  id: {type: int, required: true}\n"
        "  amount: {type: float}\nprimary_key: [id]\n",
    )
    path = workbook(
        tmp_path / "book.xlsx",
        [
            ("Cover", [["Quarterly figures"], ["Prepared by finance"]]),
            ("Jan", [["id", "amount"], [1, 1.5], [2, 2.5]]),
            ("Lookup", [["code", "label"], ["a", "A"]]),
            ("Feb", [["amount", "id"], [3.5, 3]]),
            ("Blank", []),
        ],
    )
    source = cloud.upload(path, "sheets")
    # When it runs
    description = cloud.wait(source, timeout=60)
    # Then it succeeds with the rows of Jan and Feb, and says why each other sheet was skipped
    assert description["status"] == "SUCCEEDED"
    validate = json.loads(description["output"])["validate"]
    assert validate["rows_in"] == 3
    assert validate["sheets"] == {
        "read": ["Jan", "Feb"],
        "read_count": 2,
        "skipped": [
            {"sheet": "Cover", "why": "header lacks the contract's required columns: id"},
            {"sheet": "Lookup", "why": "header lacks the contract's required columns: id"},
            {"sheet": "Blank", "why": "empty"},
        ],
        "skipped_count": 3,
    }
    rows = parquet_rows(cloud, "trusted", "sheets/")
    assert sorted((r["id"], r["amount"]) for r in rows) == [(1, 1.5), (2, 2.5), (3, 3.5)]
    ledger.record(3, accounted(cloud, "sheets"))


@case(23, "a valid CSV with one 5 MB field: read, the field whole")
def test_huge_field(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    before = accounted(cloud, "transactions")
    # Given a CSV (gzipped) whose one quoted field, with a newline in it, is 5 MB
    huge = "x" * 2_500_000 + "\n" + "y" * 2_500_000
    text = csv_rows(2) + f'3,"{huge}",3.5,2024-01-15,Sales\n' + csv_rows(2, start=4)[len(HEADER) :]
    path = tmp_path / "huge_field.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    source = cloud.upload(path, "transactions")
    # When it runs, Then every row is in TRUSTED and the field is whole (flagged TOO_LONG)
    assert cloud.wait(source, timeout=120)["status"] == "SUCCEEDED"
    rows = {
        r["id"]: r
        for r in parquet_rows(cloud, "trusted", "transactions/")
        if r["source_file"].endswith(source.key)
    }
    assert sorted(rows) == [1, 2, 3, 4, 5]
    assert rows[3]["name"] == huge
    assert list(rows[3]["quality_flags"]) == ["TOO_LONG:name"]
    ledger.record(5, accounted(cloud, "transactions") - before)


DEEP_FILES: list[tuple[str, bytes, str]] = [
    ("deep.json", b"[" * 20_000 + b"]" * 20_000, "TOO_DEEP"),
    ("deep.jsonl", b'{"id": 1}\n{"id": ' + b"[" * 10_000 + b"]" * 10_000 + b"}\n", "TOO_DEEP"),
    ("dupkey.json", b'[{"id": 1, "id": 2}]', "MALFORMED_JSON"),
    ("scalar.json", b"12", "MALFORMED_JSON"),
]


@case(24, "JSON nested thousands deep, duplicate keys, a scalar document: typed data errors")
@pytest.mark.parametrize(("name", "body", "reason"), DEEP_FILES, ids=[d[0] for d in DEEP_FILES])
def test_json_oddities(
    cloud: LocalCloud, tmp_path: Path, name: str, body: bytes, reason: str
) -> None:
    # Given a JSON file nested thousands deep, with a duplicate key, or a scalar document
    assert len(body) < SIZE_LIMIT
    # When it is uploaded
    result = run_bad(cloud, tmp_path, name, body)
    # Then it fails typed at Validate, once, and is quarantined
    assert_typed_once(result, reason)


@case(25, "a MALFORMED_CSV reason names the row and field counts, never the row's values")
def test_malformed_csv_keeps_values_out(cloud: LocalCloud, tmp_path: Path) -> None:
    # Given a CSV whose fourth row has an extra field holding a secret
    secret = "SECRET-EXTRA-0042"
    body = (csv_rows(3) + f"4,N4,4.5,2024-01-15,Sales,{secret}\n").encode()
    # When it is uploaded
    result = run_bad(cloud, tmp_path, "extra_field.csv", body)
    # Then it fails typed at Validate as MALFORMED_CSV, naming the row and the field counts
    assert_typed_once(result, "MALFORMED_CSV")
    message = "row 4 (line 5 of the file) has 6 fields, expected 5"
    assert result["shown"]["cause"] == f"SluiceDataError: MALFORMED_CSV: {message}"
    assert {k: result["reason"][k] for k in ("message", "row", "line")} == (
        {"message": message, "row": 4, "line": 5}
    )
    # And the secret is in no log, no reason record and no execution
    every_line = "\n".join(line for lines in cloud.runtime.logs.values() for line in lines)
    assert secret not in every_line
    assert secret not in json.dumps(result["reason"]) + json.dumps(result["shown"])

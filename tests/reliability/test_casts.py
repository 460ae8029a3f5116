"""Values that do not fit their contract type, and failures that are the input's fault: each
file runs through Validate, Trusted (and Delivery, where the summary is asserted) in process
on moto's S3."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sluice import lake, pipeline
from sluice.aws import ObjectStore
from sluice.errors import SluiceDataError
from sluice.lake import SourceObject
from sluice.stages import trusted
from sluice.state import source_of
from tests.emf import SETTINGS
from tests.reliability.conftest import Ledger, case
from tests.support import run_edge

HEADER = ["id", "name", "amount", "date", "category"]


def put_raw(s3: Any, key: str, body: bytes) -> dict[str, Any]:
    s3.put_object(Bucket="raw", Key=key, Body=body)
    head = s3.head_object(Bucket="raw", Key=key)
    source = SourceObject("raw", key, etag=head["ETag"], size=head["ContentLength"])
    return {"execution": "e", "dataset": key.split("/")[0], "source": source.to_dict()}


def run_stages(s3: Any, state: dict[str, Any], *stages: str) -> dict[str, Any]:
    store = ObjectStore(s3)
    functions = {
        "validate": pipeline.validate,
        "trusted": pipeline.trusted,
        "delivery": pipeline.deliver,
    }
    for stage in stages:
        state[stage] = run_edge(functions[stage], state, store, SETTINGS)
    return state


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def read_objects(s3: Any, bucket: str, prefix: str) -> pa.Table:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    tables = [
        pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())) for k in keys
    ]
    return pa.concat_tables(tables, promote_options="permissive")


def quarantined_file(s3: Any, state: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    source = source_of(state["source"])
    prefix = lake.quarantine_file_prefix(state["dataset"], source)
    copy = s3.get_object(Bucket="quarantine", Key=prefix + source.name)["Body"].read()
    reason = s3.get_object(Bucket="quarantine", Key=prefix + "reason.json")["Body"].read()
    return copy, json.loads(reason)


def no_quarantined_file(s3: Any, state: dict[str, Any]) -> bool:
    prefix = lake.quarantine_file_prefix(state["dataset"], source_of(state["source"]))
    return "Contents" not in s3.list_objects_v2(Bucket="quarantine", Prefix=prefix)


# --------------------------------------------------------------------------- non-finite

AMOUNTS = ["10", "1e400", "20.5", "NaN", "-Infinity"]  # 2 finite: 30.5


def xlsx_with_numbers(amounts: list[str], numeric: set[int] | None = None) -> bytes:
    """A workbook whose amount cells hold `amounts`: numbers as numeric cells written as given
    (openpyxl writes no 1e400, so the sheet's XML is edited), words as text cells. (openpyxl
    reads no numeric cell holding NaN or Infinity: such a workbook is UNREADABLE.)"""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    numbers = {
        i: a
        for i, a in enumerate(amounts, start=1)
        if (a[-1].isdigit() if numeric is None else i in numeric)
    }
    for i, amount in enumerate(amounts, start=1):
        cell = 900_000 + i if i in numbers else amount
        sheet.append([i, f"N{i}", cell, "2024-01-15", "Sales"])
    raw = io.BytesIO()
    book.save(raw)
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as source, zipfile.ZipFile(out, "w") as sink:
        for info in source.infolist():
            body = source.read(info.filename)
            if info.filename.startswith("xl/worksheets/"):
                for i, number in numbers.items():
                    body = body.replace(
                        f"<v>{900_000 + i}</v>".encode(), f"<v>{number}</v>".encode()
                    )
            sink.writestr(info, body)
    return out.getvalue()


def non_finite_file(fmt: str) -> tuple[str, bytes]:
    rows = [[str(i), f"N{i}", a, "2024-01-15", "Sales"] for i, a in enumerate(AMOUNTS, start=1)]
    if fmt == "csv":
        lines = [",".join(HEADER)] + [",".join(r) for r in rows]
        return "nonfinite.csv", ("\n".join(lines) + "\n").encode()
    if fmt == "json":  # Python's json, like many exporters, writes NaN and Infinity bare
        records = [dict(zip(HEADER, r, strict=True)) | {"amount": float(r[2])} for r in rows]
        return "nonfinite.json", json.dumps(records).encode()
    if fmt == "xlsx":
        return "nonfinite.xlsx", xlsx_with_numbers(["10", "1e400", "20.5", "NaN", "-1e400"])
    table = pa.table(
        {
            "id": pa.array(range(1, 6), pa.int64()),
            "name": [r[1] for r in rows],
            "amount": pa.array([float(a) for a in AMOUNTS], pa.float64()),
            "date": pa.array([date(2024, 1, 15)] * 5, pa.date32()),
            "category": ["Sales"] * 5,
        }
    )
    return "nonfinite.parquet", parquet_bytes(table)


@case(27, "NaN and infinities in text, JSON, xlsx and Parquet floats are NON_FINITE rows")
@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx", "parquet"])
def test_non_finite_numbers_are_rejected_rows(s3: Any, ledger: Ledger, fmt: str) -> None:
    # Given a file whose amounts are 10, 1e400, 20.5, NaN and -Infinity
    name, body = non_finite_file(fmt)
    state = put_raw(s3, f"transactions/{name}", body)
    # When it runs through Validate, Trusted and Delivery
    run_stages(s3, state, "validate", "trusted", "delivery")
    # Then the three non-finite rows are quarantined with NON_FINITE:amount
    result = state["trusted"]
    assert (result["rows_in"], result["rows_trusted"], result["rows_quarantined"]) == (5, 2, 3)
    bad = read_objects(s3, "quarantine", "transactions/rows/").sort_by("_row")
    assert bad["_row"].to_pylist() == [2, 4, 5]
    assert bad["reason_codes"].to_pylist() == [["NON_FINITE:amount"]] * 3
    # and TRUSTED and the day's summary hold only the finite amounts
    kept = read_objects(s3, "trusted", "transactions/year=")
    assert sorted(kept["amount"].to_pylist()) == [10.0, 20.5]
    summary = read_objects(s3, "delivery", "transactions/record_type=DAILY_SUMMARY/")
    assert summary.select(["record_count", "amount_sum", "amount_mean"]).to_pylist() == [
        {"record_count": 2, "amount_sum": 30.5, "amount_mean": 15.25}
    ]
    ledger.record(5, result["rows_trusted"] + result["rows_quarantined"] + result["duplicates"])


# --------------------------------------------------------------------------- ISO timestamps

EVENTS_CONTRACT = b"""\
dataset: events
columns:
  id: {type: int, required: true}
  at: {type: timestamp, required: true}
  seen: {type: date, required: true}
event_date: at
"""
EVENTS = [
    ("2024-01-31T23:30:00-05:00", "2024-01-31", datetime(2024, 2, 1, 4, 30)),
    ("2024-01-31T10:00:00.123456789Z", "20240131", datetime(2024, 1, 31, 10, 0, 0, 123456)),
    ("2024-01-31 10:00:00+0530", "2024-031", datetime(2024, 1, 31, 4, 30)),
    (
        '"20240131T100000,5+01"',
        "2024-01-31T00:00:00Z",
        datetime(2024, 1, 31, 9, 0, 0, 500000),
    ),  # quoted: a comma
    ("2024-01-31T10:00:00", "2024/01/31", datetime(2024, 1, 31, 10)),
]


@case(28, "ISO 8601 timestamps with offsets and nanoseconds, and ISO dates, are read as UTC")
def test_iso_timestamps_are_read_as_utc(s3: Any, ledger: Ledger) -> None:
    # Given a contract with a timestamp and a date column, and a file of ISO 8601 forms
    s3.put_object(Bucket="raw", Key="_contracts/events.yaml", Body=EVENTS_CONTRACT)
    lines = ["id,at,seen"] + [f"{i},{at},{on}" for i, (at, on, _) in enumerate(EVENTS, start=1)]
    state = put_raw(s3, "events/iso.csv", ("\n".join(lines) + "\n").encode())
    # When it runs through Validate and Trusted
    run_stages(s3, state, "validate", "trusted")
    # Then every row is kept, its time in UTC, partitioned by its UTC day
    assert (state["trusted"]["rows_trusted"], state["trusted"]["rows_quarantined"]) == (5, 0)
    kept = read_objects(s3, "trusted", "events/year=").sort_by("id")
    assert kept["at"].to_pylist() == [when for _, _, when in EVENTS]
    assert kept["seen"].to_pylist() == [date(2024, 1, 31)] * 5
    days = [o["day"] for o in json.loads(
        ObjectStore(s3).get_bytes(**state["trusted"]["manifest"])
    )["trusted"]]  # fmt: skip
    assert days == ["2024-01-31", "2024-02-01"]
    ledger.record(5, 5)


@case(28, "dates and times outside years 1 to 9999 (once in UTC) are TYPE_MISMATCH rows")
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_times_outside_the_calendar_are_type_mismatches(s3: Any, ledger: Ledger, fmt: str) -> None:
    # Given a timestamp and a date column holding year 0, a time that is in year 10000 or
    # year 0 once in UTC, and the calendar's first and last instants
    s3.put_object(Bucket="raw", Key="_contracts/events.yaml", Body=EVENTS_CONTRACT)
    ats = [
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
    ]
    seen = ["2024-01-31", "2024-01-31", "2024-01-31", "0000-01-01", "9999-12-31"]
    if fmt == "csv":
        pairs = enumerate(zip(ats, seen, strict=True), start=1)
        lines = ["id,at,seen"] + [f"{i},{a},{d}" for i, (a, d) in pairs]
        name, body = "calendar.csv", ("\n".join(lines) + "\n").encode()
    else:  # Parquet holds the instants natively (microseconds since 1970 reach far past both)
        micros = [-62_167_219_200_000_000, 253_402_304_399_000_000, -62_135_600_400_000_000,
                  -62_135_596_800_000_000, 253_402_300_799_999_999]  # fmt: skip
        table = pa.table(
            {
                "id": pa.array(range(1, 6), pa.int64()),
                "at": pa.array(micros, pa.timestamp("us", tz="UTC")),
                "seen": pa.array([19753, 19753, 19753, -719_528, 2_932_896], pa.date32()),
            }
        )
        name, body = "calendar.parquet", parquet_bytes(table)
    state = put_raw(s3, f"events/{name}", body)
    # When it runs through Validate and Trusted
    run_stages(s3, state, "validate", "trusted")
    # Then the values outside years 1 to 9999 are TYPE_MISMATCH rows (not a failed stage),
    # and the last instant of 9999 is kept, in its day
    result = state["trusted"]
    assert (result["rows_in"], result["rows_trusted"], result["rows_quarantined"]) == (5, 1, 4)
    bad = read_objects(s3, "quarantine", "events/rows/").sort_by("_row")
    assert bad["_row"].to_pylist() == [1, 2, 3, 4]
    assert bad["reason_codes"].to_pylist() == [["TYPE_MISMATCH:at"]] * 3 + [["TYPE_MISMATCH:seen"]]
    kept = read_objects(s3, "trusted", "events/year=9999/month=12/day=31/")
    assert kept["at"].to_pylist() == [datetime(9999, 12, 31, 23, 59, 59, 999999)]
    ledger.record(5, result["rows_trusted"] + result["rows_quarantined"] + result["duplicates"])


# --------------------------------------------------------------------------- nested columns


def nested_file(kind: str) -> tuple[pa.Table, str, list[int]]:
    """A Parquet table of the transactions columns where one column holds `kind` values; the
    column that mismatches and the rows (1-based) that do."""
    n = 4
    columns: dict[str, pa.Array] = {
        "id": pa.array(range(1, n + 1), pa.int64()),
        "name": pa.array([f"N{i}" for i in range(1, n + 1)]),
        "amount": pa.array([1.5, 2.5, 3.5, 4.5]),
        "date": pa.array([date(2024, 1, 15)] * n, pa.date32()),
        "category": pa.array(["Sales"] * n),
    }
    if kind == "struct":
        columns["amount"] = pa.array([{"v": 1.5}, {"v": 2.5}, None, {"v": 4.5}])
        return pa.table(columns), "amount", [1, 2, 4]  # row 3's null: NULL:amount
    if kind == "list":
        columns["date"] = pa.array([["2024-01-15"], [], ["x"], ["2024-01-15"]])
        return pa.table(columns), "date", [1, 2, 3, 4]
    if kind == "map":
        columns["amount"] = pa.array(
            [[("v", 1.0)], [], [("w", 2.0)], [("v", 1.0)]], pa.map_(pa.string(), pa.float64())
        )
        return pa.table(columns), "amount", [1, 2, 3, 4]
    columns["name"] = pa.array([b"N1", b"\xff\xfe", b"N3", b"\xc3"], pa.binary())
    return pa.table(columns), "name", [2, 4]


@case(29, "Parquet struct, list, map and binary columns are TYPE_MISMATCH rows, not errors")
@pytest.mark.parametrize("kind", ["struct", "list", "map", "binary"])
def test_nested_columns_are_type_mismatches(s3: Any, ledger: Ledger, kind: str) -> None:
    # Given a Parquet file whose column the contract types as a number, date or string holds
    # nested values (or bytes that are not all UTF-8)
    table, column, mismatched = nested_file(kind)
    state = put_raw(s3, f"transactions/{kind}.parquet", parquet_bytes(table))
    # When it runs through Validate and Trusted
    run_stages(s3, state, "validate", "trusted")
    # Then it succeeds; the rows whose value is not of the type are TYPE_MISMATCH
    result = state["trusted"]
    bad = read_objects(s3, "quarantine", "transactions/rows/").sort_by("_row")
    codes = bad["reason_codes"].to_pylist()
    assert [r for r, c in zip(bad["_row"].to_pylist(), codes, strict=True)
            if f"TYPE_MISMATCH:{column}" in c] == mismatched  # fmt: skip
    assert result["rows_in"] == 4
    assert result["rows_trusted"] == 4 - result["rows_quarantined"]
    assert result["rows_quarantined"] == len(bad)
    # and the quarantined rows keep the values as the file had them
    original = table.to_pylist()
    assert [row[column] for row in bad.to_pylist()] == [
        original[r - 1][column] for r in bad["_row"].to_pylist()
    ]
    ledger.record(4, result["rows_trusted"] + result["rows_quarantined"] + result["duplicates"])


NATIVE_CONTRACT = b"""\
dataset: native
columns:
  id: {type: int, required: true}
  n: int
  f: float
  d: date
  ok: bool
  s: string
primary_key: [id]
"""


@case(29, "Parquet times in number columns, numbers in bool columns, views: read as text is")
def test_native_values_read_as_their_text_would(s3: Any, ledger: Ledger) -> None:
    # Given a contract of an int, a float, a date and a bool column, and a Parquet file whose
    # int column holds timestamps (with a zone), its float column durations, its date column
    # timestamps (midnight, and a time of day), its bool column small ints, its string a view
    s3.put_object(Bucket="raw", Key="_contracts/native.yaml", Body=NATIVE_CONTRACT)
    new_york = "America/New_York"
    table = pa.table(
        {
            "id": pa.array([1, 2, 3, 4], pa.int64()),
            "n": pa.array([None, None, None, 1_706_745_600], pa.timestamp("s", tz=new_york)),
            "f": pa.array([None, None, 5, None], pa.duration("s")),
            "d": pa.array(
                [datetime(2024, 1, 31), datetime(2024, 1, 31, 23, 30), None, None],
                pa.timestamp("us"),
            ),
            "ok": pa.array([1, -1, 0, None], pa.int8()),
            "s": pa.array(["a", "b", "c", "d"], pa.string_view()),
        }
    )
    state = put_raw(s3, "native/native.parquet", parquet_bytes(table))
    # When it runs through Validate and Trusted
    run_stages(s3, state, "validate", "trusted")
    # Then a time is no number, a bool is 1 or 0, and a timestamp is a date only at midnight:
    # each other value is TYPE_MISMATCH, as its text would be, and the view reads as text
    result = state["trusted"]
    assert (result["rows_in"], result["rows_trusted"], result["rows_quarantined"]) == (4, 1, 3)
    bad = read_objects(s3, "quarantine", "native/rows/").sort_by("_row")
    assert bad["_row"].to_pylist() == [2, 3, 4]
    assert bad["reason_codes"].to_pylist() == [
        ["TYPE_MISMATCH:d", "TYPE_MISMATCH:ok"],
        ["TYPE_MISMATCH:f"],
        ["TYPE_MISMATCH:n"],
    ]
    kept = read_objects(s3, "trusted", "native/year=")
    assert kept.select(["id", "d", "ok", "s"]).to_pylist() == [
        {"id": 1, "d": date(2024, 1, 31), "ok": True, "s": "a"}
    ]
    ledger.record(4, result["rows_trusted"] + result["rows_quarantined"] + result["duplicates"])


# --------------------------------------------------------------------------- one mapping


def csv_body(rows: int = 3) -> bytes:
    lines = [",".join(HEADER)] + [f"{i},N{i},{i}.5,2024-01-15,Sales" for i in range(1, rows + 1)]
    return ("\n".join(lines) + "\n").encode()


def assert_quarantined(s3: Any, state: dict[str, Any], body: bytes, reason: str) -> None:
    copy, document = quarantined_file(s3, state)
    assert copy == body
    assert document["reason"] == reason
    assert s3.get_object(Bucket="raw", Key=state["source"]["key"])["Body"].read() == body


@case(30, "what bad input makes a reader raise is a typed data error, quarantined")
@pytest.mark.parametrize(
    ("name", "body", "reason", "message"),
    [
        (
            "nan.xlsx",
            xlsx_with_numbers(["1", "NaN"], numeric={1, 2}),
            "UNREADABLE",
            "a worksheet is not readable xlsx (ValueError)",
        ),
    ],
    ids=["xlsx-nan-cell"],
)
def test_reader_failures_are_typed_data_errors_at_validate(
    s3: Any, name: str, body: bytes, reason: str, message: str
) -> None:
    # Given a file a reader library fails on: an xlsx numeric cell holding NaN (openpyxl
    # reads no such cell; JSON nested too deep is the reader's own TOO_DEEP, case 24)
    state = put_raw(s3, f"transactions/{name}", body)
    # When Validate runs
    with pytest.raises(SluiceDataError) as caught:
        run_stages(s3, state, "validate")
    # Then it fails with the reason code, naming the library's exception only by its type,
    # and the file is quarantined with its reason; RAW is untouched
    assert caught.value.reason == reason
    assert caught.value.message == message
    assert_quarantined(s3, state, body, reason)


@case(30, "a contract pattern RE2 cannot compile is INVALID_CONTRACT; fixed, the rerun succeeds")
def test_a_regex_re2_cannot_compile_is_invalid_contract(s3: Any, ledger: Ledger) -> None:
    # Given a RAW contract whose pattern Python compiles and RE2 does not (a lookahead)
    contract = "dataset: codes\ncolumns:\n  id: {{type: int, required: true}}\n  code:\n"
    contract += "    type: string\n    rules: [{{regex: '{}'}}]\n"
    s3.put_object(Bucket="raw", Key="_contracts/codes.yaml", Body=contract.format("(?=A)A+"))
    body = b"id,code\n1,AA\n2,B\n"
    state = put_raw(s3, "codes/c.csv", body)
    # When the file runs through Validate and Trusted
    with pytest.raises(SluiceDataError) as raised:
        run_stages(s3, state, "validate", "trusted")
    # Then it fails as INVALID_CONTRACT, quarantined with its reason, RAW untouched
    assert raised.value.reason == "INVALID_CONTRACT"
    assert_quarantined(s3, state, body, "INVALID_CONTRACT")
    # and once the contract is fixed, the same file runs again and succeeds
    s3.put_object(Bucket="raw", Key="_contracts/codes.yaml", Body=contract.format("A+"))
    run_stages(s3, state, "validate", "trusted")
    assert (state["trusted"]["rows_trusted"], state["trusted"]["rows_quarantined"]) == (1, 1)
    ledger.record(2, 2)


@case(
    30, "a cast failing in Trusted is UNPROCESSABLE and quarantined; memory, AWS and bugs are not"
)
@pytest.mark.parametrize(
    ("raised", "reason"),
    [
        (pa.ArrowInvalid("Failed to parse string: 'x' as a scalar of type int64"), "UNPROCESSABLE"),
        (pa.ArrowNotImplementedError("Unsupported cast from struct to utf8"), "UNPROCESSABLE"),
        (MemoryError(), None),
        (pa.ArrowMemoryError("malloc of size 1 failed"), None),
        (OSError(28, "No space left on device"), None),
        (KeyError("amount"), None),
    ],
    ids=["invalid", "not-implemented", "memory", "arrow-memory", "disk-full", "bug"],
)
def test_trusted_maps_only_bad_input(
    s3: Any, monkeypatch: pytest.MonkeyPatch, raised: Exception, reason: str | None
) -> None:
    # Given a staged file, and judging its values that raises `raised`
    body = csv_body()
    state = run_stages(s3, put_raw(s3, "transactions/t.csv", body), "validate")

    def judge(*args: Any, **kwargs: Any) -> trusted.TrustedResult:
        raise raised

    monkeypatch.setattr(trusted, "transform_file", judge)
    # When Trusted runs
    with pytest.raises(Exception) as caught:
        run_stages(s3, state, "trusted")
    if reason is None:
        # Then what is not the input's fault leaves as it is: not quarantined, retried or a bug
        assert caught.value is raised
        assert no_quarantined_file(s3, state)
        return
    # Then bad input is a data error naming the exception, the file quarantined with it
    assert isinstance(caught.value, SluiceDataError) and caught.value.reason == reason
    assert caught.value.message == f"the file could not be judged ({type(raised).__name__})"
    assert_quarantined(s3, state, body, reason)
    _, document = quarantined_file(s3, state)
    assert document["error_type"] == f"pyarrow.lib.{type(raised).__name__}"
    assert document["detail"] == str(raised)

"""The stage edges (Validate, Trusted, Delivery) and the starter against the in-memory store and
workflow of `tests.fakes`: what each puts, where, and what it removes, without moto."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from sluice import lake, pipeline, starter
from sluice.config import CONTRACTS_DIR, Settings
from sluice.errors import SluiceDataError
from sluice.lake import SourceObject
from tests.fakes import MemoryStore, MemoryWorkflow
from tests.support import run_edge

SETTINGS = Settings(
    raw_bucket="raw",
    trusted_bucket="trusted",
    delivery_bucket="delivery",
    quarantine_bucket="quarantine",
    state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:sluice",
)
HEADER = "id,name,amount,date,category\n"
KEY = "transactions/year=2024/month=03/day=01/sales.csv"
# The file's outputs are named after its location (`lake`): its stem and a digest of it.
NAME = "sales-0124e6c4a48b"
STAGED = f"_staging/transactions/{NAME}.parquet"
MANIFEST = f"_staging/transactions/{NAME}.trusted.json"
PARTIALS = f"_summaries/transactions/{NAME}.parquet"
LINEAGE = f"_lineage/manifests/transactions/{NAME}.json"
LINEAGE_RECORDS = f"_lineage/records/transactions-{NAME}.parquet"
QUARANTINED = f"transactions/files/{NAME}/"
RAW_CONTRACT = (
    'dataset: transactions\nversion: "9"\ncolumns:\n  id: {type: int, required: true}\n'
    "  name: string\n  amount: {type: float, required: true}\n"
    "  date: {type: date, required: true}\n  category: string\nevent_date: date\n"
    "summary: {measures: [amount], group_by: [category]}\n"
)


def day(day_of_month: int) -> str:
    return f"year=2024/month=01/day={day_of_month:02d}"


def trusted_file(day_of_month: int) -> str:
    return f"transactions/{day(day_of_month)}/{NAME}.parquet"


def delivered(record_type: str, day_of_month: int) -> str:
    name = "daily_summary" if record_type == "DAILY_SUMMARY" else NAME
    return f"transactions/record_type={record_type}/{day(day_of_month)}/{name}.parquet"


def upload(store: MemoryStore, body: str, key: str = KEY) -> SourceObject:
    """Put an object into RAW; the source an event names it by (and no request counted)."""
    store.put_bytes("raw", key, body.encode(), "text/csv")
    head = store.head("raw", key)
    store.requests.clear()
    return SourceObject(
        "raw", key, version_id=head["VersionId"], etag=head["ETag"], size=head["ContentLength"]
    )


def state_of(source: SourceObject, dataset: str = "transactions") -> dict[str, Any]:
    return {"execution": f"e-{source.version_id}", "dataset": dataset, "source": source.to_dict()}


def run(store: MemoryStore, source: SourceObject) -> dict[str, Any]:
    """The three stages on one RAW object, as the workflow runs them."""
    state = state_of(source)
    state["validate"] = run_edge(pipeline.validate, state, store, SETTINGS)
    state["trusted"] = run_edge(pipeline.trusted, state, store, SETTINGS)
    state["delivery"] = run_edge(pipeline.deliver, state, store, SETTINGS)
    return state


def rows(store: MemoryStore, bucket: str, key: str, *columns: str) -> list[dict[str, Any]]:
    table = pq.read_table(io.BytesIO(store.body(bucket, key)))
    found: list[dict[str, Any]] = table.select(list(columns)).to_pylist()
    return found


def sizes(store: MemoryStore, bucket: str, *keys: str) -> int:
    return sum(len(store.body(bucket, key)) for key in keys)


def test_a_small_csv_goes_through_validate_trusted_and_delivery() -> None:
    # Given a CSV of three rows over two days in RAW, one of them with a negative amount
    store = MemoryStore(versioned={"raw"})
    body = (
        f"{HEADER}1,A,10.5,2024-01-15,Sales\n2,B,20,2024-01-16,Travel\n3,C,-5,2024-01-16,Travel\n"
    )
    source = upload(store, body)
    state = state_of(source)

    # When Validate runs
    state["validate"] = run_edge(pipeline.validate, state, store, SETTINGS)
    # Then it read the object and looked for a RAW contract (.yaml, .yml) before the bundled
    # one, and staged the file in TRUSTED as Parquet that carries the contract
    assert dict(store.requests) == {"head": 1, "get": 3, "put": 1}
    assert state["validate"] == {
        "staged": {"bucket": "trusted", "key": STAGED},
        "format": "csv",
        "rows_in": 3,
        "bytes_in": len(body),
        "bytes_out": sizes(store, "trusted", STAGED),
        "contract": {"dataset": "transactions", "version": "2", "inferred": False},
    }
    assert store.keys("trusted") == [STAGED]

    # When Trusted runs
    store.requests.clear()
    state["trusted"] = run_edge(pipeline.trusted, state, store, SETTINGS)
    # Then it put a day file per day, the refused row in QUARANTINE, its partial summaries and
    # its manifest, and removed the staged hand-over
    assert dict(store.requests) == {"get": 2, "put": 5, "delete": 1}
    assert store.keys("trusted") == [MANIFEST, PARTIALS, trusted_file(15), trusted_file(16)]
    quarantined_rows = f"transactions/rows/{day(16)}/{NAME}.parquet"
    assert store.keys("quarantine") == [quarantined_rows]
    assert state["trusted"] == {
        "manifest": {"bucket": "trusted", "key": MANIFEST},
        "rows_in": 3,
        "rows_trusted": 2,
        "rows_quarantined": 1,
        "duplicates": 0,
        "days": 2,
        "bytes_out": sizes(store, "trusted", *store.keys("trusted"))
        + sizes(store, "quarantine", quarantined_rows),
        "mean_quality_score": 1.0,
    }
    assert rows(store, "trusted", trusted_file(16), "id", "amount") == [{"id": 2, "amount": 20.0}]
    assert rows(store, "quarantine", quarantined_rows, "id") == [{"id": "3"}]  # (as read)

    # When Delivery runs
    store.requests.clear()
    state["delivery"] = run_edge(pipeline.deliver, state, store, SETTINGS)
    # Then it read the manifest, each day file, the partials once and each day's summary (none
    # yet), and put per day DETAIL, QUALITY and the summary, then the lineage
    assert dict(store.requests) == {"get": 6, "put": 8}
    outputs = [delivered(t, d) for t in ("DAILY_SUMMARY", "DETAIL", "QUALITY") for d in (15, 16)]
    assert store.keys("delivery") == [LINEAGE, LINEAGE_RECORDS, *outputs]
    assert state["delivery"] == {
        "lineage": {"bucket": "delivery", "key": LINEAGE},
        "detail_files": 2,
        "summary_files": 2,
        "quality_files": 2,
        "rows_out": 2,
        "bytes_out": sizes(store, "delivery", *store.keys("delivery")),
    }
    assert rows(store, "delivery", delivered("DETAIL", 15), "id", "amount", "category") == [
        {"id": 1, "amount": 10.5, "category": "Sales"}
    ]
    columns = ("category", "record_count", "amount_sum")
    assert rows(store, "delivery", delivered("DAILY_SUMMARY", 16), *columns) == [
        {"category": "Travel", "record_count": 1, "amount_sum": 20.0}
    ]
    lineage = json.loads(store.body("delivery", LINEAGE))
    assert (lineage["execution"], lineage["source"]) == ("e-v1", source.to_dict())
    assert [(o["layer"], o["key"]) for o in lineage["outputs"]] == [
        ("trusted", trusted_file(15)),
        ("trusted", trusted_file(16)),
        ("quarantine", quarantined_rows),
        *(
            ("delivery", delivered(t, d))
            for t in ("DETAIL", "QUALITY", "DAILY_SUMMARY")
            for d in (15, 16)
        ),
    ]
    # And RAW is as it was
    assert store.keys("raw") == [KEY]
    assert store.body("raw", KEY) == body.encode()


def test_a_new_version_with_fewer_days_removes_its_old_days_outputs() -> None:
    # Given a file of three days delivered
    store = MemoryStore(versioned={"raw"})
    three_days = "1,A,10,2024-01-15,Sales\n2,B,20,2024-01-16,Travel\n3,C,30,2024-01-17,Sales\n"
    run(store, upload(store, HEADER + three_days))
    # When a new version of the object, with only the first day, goes through the stages
    state = run(store, upload(store, f"{HEADER}1,A,11,2024-01-15,Sales\n"))
    # Then its old days' TRUSTED, DETAIL and QUALITY files are gone, and their summaries hold
    # no rows of it; the remaining day has the new version's rows
    assert store.keys("trusted", "transactions/") == [trusted_file(15)]
    assert store.keys("delivery", "transactions/record_type=DETAIL/") == [delivered("DETAIL", 15)]
    assert store.keys("delivery", "transactions/record_type=QUALITY/") == [delivered("QUALITY", 15)]
    columns = ("category", "record_count", "amount_sum")
    assert rows(store, "delivery", delivered("DAILY_SUMMARY", 15), *columns) == [
        {"category": "Sales", "record_count": 1, "amount_sum": 11.0}
    ]
    assert rows(store, "delivery", delivered("DAILY_SUMMARY", 16), *columns) == []
    assert rows(store, "delivery", delivered("DAILY_SUMMARY", 17), *columns) == []
    manifest = json.loads(store.body("trusted", MANIFEST))
    assert manifest["stale_days"] == manifest["stale_quality_days"] == ["2024-01-16", "2024-01-17"]
    assert (state["trusted"]["days"], state["delivery"]["detail_files"]) == (1, 1)
    assert rows(store, "delivery", delivered("DETAIL", 15), "id", "amount") == [
        {"id": 1, "amount": 11.0}
    ]


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_a_contract_in_raw_wins_over_the_bundled_one(suffix: str) -> None:
    # Given the dataset's contract in RAW (version 9) besides the bundled one (version 2)
    store = MemoryStore(versioned={"raw"})
    store.put_bytes("raw", f"_contracts/transactions{suffix}", RAW_CONTRACT.encode(), "text/yaml")
    source = upload(store, f"{HEADER}1,A,10,2024-01-15,Sales\n")
    # When Validate runs
    section = run_edge(pipeline.validate, state_of(source), store, SETTINGS)
    # Then the file is judged by RAW's, and staged with it
    assert section["contract"] == {"dataset": "transactions", "version": "9", "inferred": False}
    staged = pq.read_schema(io.BytesIO(store.body("trusted", STAGED))).metadata
    assert json.loads(staged[b"sluice.contract"])["version"] == "9"


def test_the_bundled_contract_wins_over_an_inferred_one() -> None:
    # Given a contract once inferred for the dataset in TRUSTED, and the bundled one
    store = MemoryStore(versioned={"raw"})
    inferred = RAW_CONTRACT.replace('version: "9"', 'version: "1"').encode()
    store.put_bytes("trusted", "transactions/_inferred_contract.yaml", inferred, "text/yaml")
    source = upload(store, f"{HEADER}1,A,10,2024-01-15,Sales\n")
    # When Validate runs
    section = run_edge(pipeline.validate, state_of(source), store, SETTINGS, CONTRACTS_DIR)
    # Then the file is judged by the bundled contract, and the inferred one is left as it was
    assert section["contract"] == {"dataset": "transactions", "version": "2", "inferred": False}
    assert store.body("trusted", "transactions/_inferred_contract.yaml") == inferred


def test_without_a_contract_the_first_files_inferred_one_is_adopted_for_the_next(
    tmp_path: Path,
) -> None:
    # Given a dataset with no contract in RAW nor bundled
    store = MemoryStore(versioned={"raw"})
    first = upload(store, "id,amount\n1,2.5\n", "ledger/year=2024/month=03/day=01/a.csv")
    # When its first file is validated
    section = run_edge(pipeline.validate, state_of(first, "ledger"), store, SETTINGS, tmp_path)
    # Then a contract is inferred from it and put in TRUSTED where none was
    assert section["contract"] == {"dataset": "ledger", "version": "1", "inferred": True}
    adopted = store.body("trusted", "ledger/_inferred_contract.yaml")
    assert b"dataset: ledger\n" in adopted
    # When a second file, whose amounts would be inferred as int, is validated
    second = upload(store, "id,amount\n2,3\n", "ledger/year=2024/month=03/day=01/b.csv")
    store.requests.clear()
    section = run_edge(pipeline.validate, state_of(second, "ledger"), store, SETTINGS, tmp_path)
    # Then it is judged by the adopted contract, which stays as it was
    assert section["contract"] == {"dataset": "ledger", "version": "1", "inferred": True}
    assert store.body("trusted", "ledger/_inferred_contract.yaml") == adopted
    staged = pq.read_schema(io.BytesIO(store.body("trusted", lake.staged_key("ledger", second))))
    assert json.loads(staged.metadata[b"sluice.contract"])["columns"]["amount"]["type"] == "float"


def event(source: SourceObject) -> str:
    """The S3 notification of `source`, as it arrives through SQS."""
    obj = {"key": source.key, "size": source.size, "eTag": source.etag.strip('"')}
    record = {
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": source.bucket},
            "object": {**obj, "versionId": source.version_id},
        },
    }
    return json.dumps({"Records": [record]})


def test_a_late_event_for_a_superseded_version_starts_nothing() -> None:
    # Given an object uploaded twice: its first version is no longer the current one
    store = MemoryStore(versioned={"raw"})
    old = upload(store, f"{HEADER}1,A,10,2024-01-15,Sales\n")
    new = upload(store, f"{HEADER}1,A,11,2024-01-15,Sales\n")
    workflow = MemoryWorkflow()
    # When the new version's event arrives, then the old one's, late
    started = starter.start_executions(event(new), workflow, SETTINGS, store)
    late = starter.start_executions(event(old), workflow, SETTINGS, store)
    # Then one execution runs, for the new version; the old one is superseded
    name = lake.execution_name(new, "transactions")
    assert started.started == [name]
    # (a notification's ETag is unquoted)
    named = {**new.to_dict(), "etag": new.etag.strip('"')}
    assert workflow.executions == {
        name: json.dumps({"execution": name, "dataset": "transactions", "source": named})
    }
    assert (late.started, late.superseded) == ([], [lake.execution_name(old, "transactions")])
    # When the new version's event comes again, and an event of an object since deleted
    again = starter.start_executions(event(new), workflow, SETTINGS, store)
    store.delete("raw", KEY)
    gone = starter.start_executions(event(new), workflow, SETTINGS, store)
    # Then the repeat is already handled, and the deleted object is gone: nothing started
    assert (again.started, again.already_handled) == ([], [name])
    assert (gone.started, gone.gone) == ([], [name])
    assert list(workflow.executions) == [name]


def test_a_file_refused_whole_is_copied_to_quarantine_with_its_reason() -> None:
    # Given a file without a required column
    store = MemoryStore(versioned={"raw"})
    body = "id,name,date,category\n1,A,2024-01-15,Sales\n"
    source = upload(store, body)
    # When Validate runs
    with pytest.raises(SluiceDataError, match="required columns missing: amount") as refused:
        run_edge(pipeline.validate, state_of(source), store, SETTINGS)
    # Then the original (the version the event named) is copied to QUARANTINE with a reason,
    # nothing is staged, and RAW keeps the object
    assert refused.value.reason == "MISSING_COLUMNS"
    assert store.keys("quarantine") == [f"{QUARANTINED}reason.json", f"{QUARANTINED}sales.csv"]
    assert store.body("quarantine", f"{QUARANTINED}sales.csv") == body.encode()
    reason = json.loads(store.body("quarantine", f"{QUARANTINED}reason.json"))
    assert reason.pop("quarantined_at").startswith("20")
    assert reason == {
        "reason": "MISSING_COLUMNS",
        "message": "required columns missing: amount",
        "missing": ["amount"],
        "found": ["id", "name", "date", "category"],
        "source": source.to_dict(),
        "dataset": "transactions",
    }
    assert store.keys("trusted") == []
    assert store.body("raw", KEY) == body.encode()


def test_a_raw_contract_that_does_not_load_quarantines_the_file() -> None:
    # Given a RAW contract that is not a contract
    store = MemoryStore(versioned={"raw"})
    store.put_bytes("raw", "_contracts/transactions.yaml", b"dataset: [", "text/yaml")
    source = upload(store, f"{HEADER}1,A,10,2024-01-15,Sales\n")
    # When Validate runs
    with pytest.raises(SluiceDataError) as refused:
        run_edge(pipeline.validate, state_of(source), store, SETTINGS)
    # Then the file is quarantined with the contract's error, to rerun once it is fixed
    assert refused.value.reason == "INVALID_CONTRACT"
    reason = json.loads(store.body("quarantine", f"{QUARANTINED}reason.json"))
    assert (reason["reason"], reason["contract"]) == (
        "INVALID_CONTRACT",
        "s3://raw/_contracts/transactions.yaml",
    )
    assert store.keys("trusted") == []

"""Hostile contracts and datasets without one: a contract that cannot be used fails its file
typed and quarantined before anything is built from it, and the files of an uncontracted
dataset, however close together they arrive, are all judged by one adopted contract.

The stages run in-process on moto S3 (the `s3` fixture), threads playing the executions."""

from __future__ import annotations

import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from sluice import lake, pipeline
from sluice.aws import ObjectStore
from sluice.errors import SluiceDataError
from sluice.grants import INFERRED_CONTRACT
from sluice.lake import SourceObject
from sluice.stages import delivery
from sluice.state import source_of
from tests.emf import SETTINGS
from tests.reliability.conftest import Ledger, case
from tests.support import run_edge

DAY = date(2024, 1, 15)


def put_raw(s3: Any, key: str, body: bytes) -> dict[str, Any]:
    """Put a file in RAW; the state an execution for it starts with."""
    s3.put_object(Bucket="raw", Key=key, Body=body)
    head = s3.head_object(Bucket="raw", Key=key)
    source = SourceObject("raw", key, etag=head["ETag"], size=head["ContentLength"])
    return {"execution": key, "dataset": key.split("/")[0], "source": source.to_dict()}


def parquet(store: ObjectStore, bucket: str, key: str) -> pa.Table:
    return pq.read_table(io.BytesIO(store.get_bytes(bucket, key)))


def keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def laughs(levels: int, width: int) -> str:
    """A 'billion laughs' document: each level an anchored list of `width` aliases of the last."""
    lines = ["dataset: orders", "l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


GOOD = "dataset: orders\ncolumns:\n  id: {type: int, required: true}\n  code: string\n"
HOSTILE = {
    "alias bomb": (laughs(9, 10), "YAML: more than 32 aliases"),
    "RE2 lookahead": (
        GOOD.replace("code: string", "code: {type: string, rules: [{regex: 'A(?=B)'}]}"),
        "columns.code.rules[0].regex: RE2 cannot compile 'A(?=B)'",
    ),
    "backtick name": (
        GOOD.replace("code: string", "'code` bigint, `x': string"),
        "columns: 'code` bigint, `x' is not a safe name",
    ),
    "over the size cap": (GOOD + "#" + "x" * (256 * 1024) + "\n", "file: over the limit"),
    # YAML keeps the last of a key given twice: the first `code` (or `columns`) would be gone
    "a column given twice": (
        GOOD + "  code: int\n",
        "YAML: the key 'code' is given twice (again at line 5)",
    ),
    "columns given twice": (
        GOOD + "columns:\n  code: int\n",
        "YAML: the key 'columns' is given twice (again at line 5)",
    ),
}


@case(31, "a hostile contract: INVALID_CONTRACT, quarantined, rerun once fixed")
@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_contract_fails_its_file_typed_and_quarantined(
    s3: Any, kind: str, ledger: Ledger
) -> None:
    # Given a hostile contract uploaded for a dataset, and a file of that dataset in RAW
    text, problem = HOSTILE[kind]
    s3.put_object(Bucket="raw", Key="_contracts/orders.yaml", Body=text.encode())
    body = b"id,code\n1,AB\n2,CD\n"
    state = put_raw(s3, "orders/in.csv", body)
    store = ObjectStore(s3)

    # When Validate runs
    with pytest.raises(SluiceDataError) as err:
        run_edge(pipeline.validate, state, store, SETTINGS)

    # Then the error is typed, names the contract and the field, and nothing was staged
    assert err.value.reason == "INVALID_CONTRACT"
    assert err.value.message.startswith(f"s3://raw/_contracts/orders.yaml: {problem}")
    assert err.value.details == {"contract": "s3://raw/_contracts/orders.yaml"}
    assert keys(s3, "trusted", "") == []
    # And the file is quarantined with its reason; RAW holds the same bytes
    source = source_of(state["source"])
    prefix = lake.quarantine_file_prefix("orders", source)
    assert keys(s3, "quarantine", "") == [prefix + "in.csv", prefix + "reason.json"]
    reason = json.loads(store.get_bytes("quarantine", prefix + "reason.json"))
    assert (reason["reason"], reason["message"]) == ("INVALID_CONTRACT", err.value.message)
    assert store.get_bytes("quarantine", prefix + "in.csv") == body
    assert store.get_bytes("raw", "orders/in.csv") == body

    # And once the contract is fixed, the same file runs
    s3.put_object(Bucket="raw", Key="_contracts/orders.yaml", Body=GOOD.encode())
    state["validate"] = run_edge(pipeline.validate, state, store, SETTINGS)
    state["trusted"] = run_edge(pipeline.trusted, state, store, SETTINGS)
    assert (state["trusted"]["rows_trusted"], state["trusted"]["rows_quarantined"]) == (2, 0)
    ledger.record(2, 2)


FLOAT_FILE = b"id,temp,date\n1,1.5,2024-01-15\n2,2.5,2024-01-15\n"
TEXT_FILE = b"id,temp,date\n3,20,2024-01-15\n4,warm,2024-01-15\n"


class RacingStore(ObjectStore):
    """moto S3 where both files' adoptions meet: neither conditional put of the dataset's
    contract is sent until both files have inferred theirs, and then `first`'s goes first."""

    def __init__(self, s3: Any, first: str) -> None:
        super().__init__(s3)
        self.first = first
        self.both_inferred = threading.Barrier(2, timeout=30)
        self.first_done = threading.Event()

    def put_if(
        self,
        bucket: str,
        key: str,
        body: bytes,
        content_type: str,
        etag: str | None,
        metadata: dict[str, str] | None = None,
    ) -> bool:
        if not key.endswith(INFERRED_CONTRACT):
            return super().put_if(bucket, key, body, content_type, etag, metadata)
        self.both_inferred.wait()
        mine = threading.current_thread().name == self.first
        if not mine:
            assert self.first_done.wait(30)
        try:
            return super().put_if(bucket, key, body, content_type, etag, metadata)
        finally:
            if mine:
                self.first_done.set()


def contract_doc(temp: str, measures: list[str]) -> dict[str, Any]:
    return {
        "dataset": "readings",
        "version": "1",
        "columns": {
            "id": {"type": "int", "required": True},
            "temp": {"type": temp},
            "date": {"type": "date", "required": True},
        },
        "primary_key": ["id"],
        "event_date": "date",
        **({"summary": {"measures": measures, "group_by": []}} if measures else {}),
    }


# first file -> (adopted contract, TRUSTED temp type, TRUSTED (id, temp), quarantined rows'
# ids and reasons, the day's summary rows)
ADOPTIONS = {
    "float.csv": (
        contract_doc("float", ["temp"]),
        pa.float64(),
        [(1, 1.5), (2, 2.5), (3, 20.0)],
        [("4", ["TYPE_MISMATCH:temp"])],
        [
            {
                "summary_date": DAY,
                "record_count": 3,
                "temp_sum": 24.0,
                "temp_mean": 8.0,
                "temp_min": 1.5,
                "temp_max": 20.0,
                "avg_quality_score": 1.0,
            }
        ],
    ),
    "text.csv": (
        contract_doc("string", []),
        pa.string(),
        [(1, "1.5"), (2, "2.5"), (3, "20"), (4, "warm")],
        [],
        [{"summary_date": DAY, "record_count": 4, "avg_quality_score": 1.0}],
    ),
}


@case(32, "uncontracted files at once: one adopted contract judges both")
@pytest.mark.parametrize("first", list(ADOPTIONS))
def test_files_arriving_at_once_are_judged_by_one_adopted_contract(
    s3: Any, first: str, ledger: Ledger
) -> None:
    # Given a dataset without a contract whose two files infer different types for `temp`
    # (float in one, text in the other), both in RAW
    contract, temp_type, kept, quarantined, summary = ADOPTIONS[first]
    states = {
        "float.csv": put_raw(s3, "readings/float.csv", FLOAT_FILE),
        "text.csv": put_raw(s3, "readings/text.csv", TEXT_FILE),
    }
    store = RacingStore(s3, first)

    # When both Validates run at once, each inferring its contract before either adopts one
    # (and `first`'s conditional write lands first)
    def validate(name: str) -> dict[str, Any]:
        threading.current_thread().name = name
        return run_edge(pipeline.validate, states[name], store, SETTINGS)

    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(states, pool.map(validate, states), strict=True))
    for name, state in states.items():
        state["validate"] = results[name]
        state["trusted"] = run_edge(pipeline.trusted, state, store, SETTINGS)
        state["delivery"] = run_edge(pipeline.deliver, state, store, SETTINGS)

    # Then the dataset's contract is the first file's, saved once
    saved = store.get_bytes("trusted", f"readings/{INFERRED_CONTRACT}")
    assert yaml.safe_load(saved) == contract
    # And TRUSTED holds `temp` in that one type, with every row that reads as it
    trusted_keys = keys(s3, "trusted", "readings/year=")
    assert len(trusted_keys) == 2
    tables = [parquet(store, "trusted", k) for k in trusted_keys]
    assert {t.schema.field("temp").type for t in tables} == {temp_type}
    rows = sorted((r["id"], r["temp"]) for t in tables for r in t.to_pylist())
    assert rows == kept
    # And the rows that do not are quarantined with the reason, as with a declared contract
    rows_prefix = f"readings/rows/{lake.date_partition(DAY)}/"
    bad = [
        row
        for k in keys(s3, "quarantine", rows_prefix)
        for row in parquet(store, "quarantine", k).to_pylist()
    ]
    assert [(r["id"], r["reason_codes"]) for r in bad] == quarantined
    # And the day's summary covers both files' rows
    key = lake.delivery_key("readings", delivery.DAILY_SUMMARY, DAY, None)
    assert parquet(store, "delivery", key).to_pylist() == summary
    found = sum(
        s["trusted"]["rows_trusted"] + s["trusted"]["rows_quarantined"] for s in states.values()
    )
    ledger.record(4, found)


def test_the_adopted_contract_is_kept_for_later_files(s3: Any) -> None:
    # Given a dataset whose first file's contract was adopted (temp float)
    store = ObjectStore(s3)
    first = put_raw(s3, "readings/float.csv", FLOAT_FILE)
    run_edge(pipeline.validate, first, store, SETTINGS)
    adopted = store.get_bytes("trusted", f"readings/{INFERRED_CONTRACT}")

    # When a later file that would infer temp as text is validated
    later = put_raw(s3, "readings/text.csv", TEXT_FILE)
    section = run_edge(pipeline.validate, later, store, SETTINGS)

    # Then the saved contract is unchanged and the file is staged to be judged by it
    assert store.get_bytes("trusted", f"readings/{INFERRED_CONTRACT}") == adopted
    staged = pq.read_schema(io.BytesIO(store.get_bytes("trusted", section["staged"]["key"])))
    judged_by = json.loads(staged.metadata[pipeline.CONTRACT_METADATA])
    assert judged_by["columns"]["temp"] == {"type": "float"}
    assert section["contract"] == {"dataset": "readings", "version": "1", "inferred": True}


def test_a_file_no_contract_can_be_inferred_from_adopts_nothing(s3: Any) -> None:
    # Given the first file of a dataset without a contract, whose every column has a name a
    # contract cannot take (reserved, or one that would end SQL quoting)
    body = b"year,a`b\n2024,x\n"
    state = put_raw(s3, "odd/in.csv", body)
    store = ObjectStore(s3)

    # When Validate runs
    with pytest.raises(SluiceDataError) as err:
        run_edge(pipeline.validate, state, store, SETTINGS)

    # Then it fails typed, saying why and what to do, adopts nothing and is quarantined
    assert err.value.reason == "INVALID_CONTRACT"
    assert err.value.message == (
        "odd has no contract and no column of the file can be one of its columns: each is "
        "reserved or not a safe name (fix: rename the file's columns as docs/contracts.md, "
        "Loading limits, says, or write the dataset's contract)"
    )
    assert keys(s3, "trusted", "") == []
    prefix = lake.quarantine_file_prefix("odd", source_of(state["source"]))
    assert keys(s3, "quarantine", "") == [prefix + "in.csv", prefix + "reason.json"]

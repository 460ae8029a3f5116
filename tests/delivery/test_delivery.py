"""DELIVERY stays right however files arrive: many per day, the same file twice, a new version,
a rerun; the seed's example queries return the expected numbers; lineage accounts for all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from sluice import catalog, query
from sluice.config import CONTRACTS_DIR
from sluice.contracts import find_contract
from sluice.lake import SourceObject
from sluice.local import LocalCloud
from tests.support import eventually

HEADER = "id,name,amount,date,category\n"
FILE_A = HEADER + (
    "1,A1,100,2024-01-15,Sales\n"
    "2,A2,50,2024-01-15,Sales\n"
    "3,A3,30,2024-01-15,Marketing\n"
    "4,,20,2024-01-15,Travel\n"  # no name: score 0.5 * 4/5 + 0.5 = 0.9
    "5,A5,-7,2024-01-15,Sales\n"  # negative: quarantined
)
FILE_B = HEADER + (
    "10,B10,10,2024-01-15,Sales\n"
    "11,B11,70,2024-01-16,Marketing\n"
    "12,B12,5,2024-01-16,Travel\n"
    "10,B10,10,2024-01-15,Sales\n"  # duplicate
)
FILE_B2 = HEADER + "10,B10,40,2024-01-15,Sales\n"  # a new version: day 16 is gone
FILE_C = HEADER + "20,C20,1000,2024-02-01,Sales\n"

SEED_PER_RECORD_TYPE = """
SELECT record_type, COUNT(*) as total_records
FROM sluice.delivery_transactions
WHERE year = '2024' AND month = '01' AND day = '15'
GROUP BY record_type
ORDER BY record_type
"""
SEED_QUALITY = """
SELECT
    AVG(data_quality_score) as avg_quality,
    MIN(data_quality_score) as min_quality,
    MAX(data_quality_score) as max_quality
FROM sluice.trusted_transactions
WHERE year = '2024' AND month = '01'
"""
SEED_TOP_CATEGORIES = """
SELECT
    category,
    SUM(amount) as total_amount,
    COUNT(*) as transaction_count
FROM sluice.trusted_transactions
WHERE year = '2024'
GROUP BY category
ORDER BY total_amount DESC
"""


@dataclass
class Scenario:
    lakes: dict[str, Path]
    sources: dict[str, SourceObject]


def _drain(cloud: LocalCloud) -> None:
    """Wait until the ingest queue has nothing waiting or in flight."""
    sqs = cloud.client("sqs")

    def drained() -> bool:
        attrs = sqs.get_queue_attributes(
            QueueUrl=cloud.queue_urls["ingest"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return attrs == {
            "ApproximateNumberOfMessages": "0",
            "ApproximateNumberOfMessagesNotVisible": "0",
        }

    eventually(drained, 30, "ingest queue drained")


def _upload(cloud: LocalCloud, tmp: Path, name: str, text: str) -> tuple[SourceObject, Any]:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    source = cloud.upload(path, "transactions", day=date(2024, 3, 1))
    described = cloud.wait(source, timeout=60)
    assert described["status"] == "SUCCEEDED", described
    return source, described


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("delivery")
    lakes: dict[str, Path] = {}
    sources: dict[str, SourceObject] = {}
    with LocalCloud() as cloud:
        # Three files; two of them feed 2024-01-15
        sources["a"], _ = _upload(cloud, tmp, "tx_a.csv", FILE_A)
        sources["b"], _ = _upload(cloud, tmp, "tx_b.csv", FILE_B)
        sources["c"], described_c = _upload(cloud, tmp, "tx_c.csv", FILE_C)
        cloud.snapshot(lakes.setdefault("first", tmp / "lake-first"))
        # The same file again, to the same key
        _upload(cloud, tmp, "tx_a.csv", FILE_A)
        _drain(cloud)
        cloud.snapshot(lakes.setdefault("same_again", tmp / "lake-same"))
        # A new version of tx_b.csv
        sources["b2"], _ = _upload(cloud, tmp, "tx_b.csv", FILE_B2)
        cloud.snapshot(lakes.setdefault("new_version", tmp / "lake-v2"))
        # A rerun of tx_c.csv's execution, from its original input
        sfn = cloud.client("stepfunctions")
        rerun = sfn.start_execution(
            stateMachineArn=cloud.state_machine_arn,
            name=described_c["name"] + "-r1",
            input=described_c["input"],
        )
        eventually(
            lambda: (
                sfn.describe_execution(executionArn=rerun["executionArn"])["status"] != "RUNNING"
            ),
            60,
            "the rerun finished",
        )
        cloud.snapshot(lakes.setdefault("rerun", tmp / "lake-rerun"))
    yield Scenario(lakes, sources)


def _summary(lake: Path, day: str) -> list[dict[str, Any]]:
    path = (
        lake
        / "delivery/transactions/record_type=DAILY_SUMMARY"
        / f"year={day[:4]}/month={day[5:7]}/day={day[8:]}/daily_summary.parquet"
    )
    if not path.exists():
        return []
    rows = pq.read_table(path).select(["category", "record_count", "amount_sum"]).to_pylist()
    return [(r["category"], r["record_count"], r["amount_sum"]) for r in rows]  # type: ignore[misc]


def test_two_files_for_one_day_give_one_summary_covering_both(scenario: Scenario) -> None:
    # Given the lake after three files, two of which feed 2024-01-15
    lake = scenario.lakes["first"]
    # When each day's summary is read
    # Then 2024-01-15's covers both files' rows, and each other day its own
    assert _summary(lake, "2024-01-15") == [
        ("Marketing", 1, 30.0),
        ("Sales", 3, 160.0),
        ("Travel", 1, 20.0),
    ]
    assert _summary(lake, "2024-01-16") == [("Marketing", 1, 70.0), ("Travel", 1, 5.0)]
    assert _summary(lake, "2024-02-01") == [("Sales", 1, 1000.0)]


def test_the_same_file_twice_changes_nothing(scenario: Scenario) -> None:
    # Given the lake before and after the same file was uploaded again to the same key
    first, again = scenario.lakes["first"], scenario.lakes["same_again"]
    # When their files are listed, layer by layer
    for layer in ("trusted", "delivery", "quarantine"):
        files = sorted(p.relative_to(first) for p in (first / layer).rglob("*.parquet"))
        # Then they are the same files, and the summary is unchanged
        assert files == sorted(p.relative_to(again) for p in (again / layer).rglob("*.parquet"))
    assert _summary(again, "2024-01-15") == _summary(first, "2024-01-15")


def test_a_new_version_replaces_its_own_rows(scenario: Scenario) -> None:
    # Given the lake after a new version of tx_b.csv
    lake = scenario.lakes["new_version"]
    # When 2024-01-15's summary is read
    # Then the new version's rows replace the old version's
    assert _summary(lake, "2024-01-15") == [
        ("Marketing", 1, 30.0),
        ("Sales", 3, 190.0),
        ("Travel", 1, 20.0),
    ]
    # day 16 only had rows of the old version: its detail, quality and summary are gone
    assert _summary(lake, "2024-01-16") == []
    assert not (
        lake / "delivery/transactions/record_type=DETAIL/year=2024/month=01/day=16"
    ).exists()
    assert not (lake / "trusted/transactions/year=2024/month=01/day=16").exists()


def test_a_rerun_gives_identical_outputs(scenario: Scenario) -> None:
    # Given the lake before and after a rerun of tx_c.csv's execution
    before, after = scenario.lakes["new_version"], scenario.lakes["rerun"]
    # (lineage differs, as it should: another execution, other durations)
    # When each TRUSTED and DELIVERY file is read, without its run-time stamps
    for layer in ("trusted/transactions", "delivery/transactions"):
        old = {p.relative_to(before): p for p in (before / layer).rglob("*.parquet")}
        # Then the rerun wrote the same files, with the same rows
        new = {p.relative_to(after): p for p in (after / layer).rglob("*.parquet")}
        assert sorted(old) == sorted(new)
        for rel, path in old.items():
            drop = [
                c
                for c in ("processed_timestamp", "delivery_timestamp", "execution")
                if c in pq.read_schema(path).names
            ]
            assert (
                pq.read_table(path)
                .drop_columns(drop)
                .equals(pq.read_table(new[rel]).drop_columns(drop))
            ), rel


def test_the_seed_queries_return_the_expected_numbers(scenario: Scenario) -> None:
    # Given the lake after the three files
    lake = scenario.lakes["first"]
    # When the seed's example queries are run on it
    per_type = query.run(lake, SEED_PER_RECORD_TYPE)
    # Then they return the expected counts, quality and categories
    assert per_type.rows == [("DAILY_SUMMARY", 3), ("DETAIL", 5), ("QUALITY", 2)]
    quality = query.run(lake, SEED_QUALITY)
    (avg, low, high) = quality.rows[0]
    assert (round(avg, 6), low, high) == (round((6 * 1.0 + 0.9) / 7, 6), 0.9, 1.0)
    top = query.run(lake, SEED_TOP_CATEGORIES)
    assert top.columns == ["category", "total_amount", "transaction_count"]
    assert top.rows == [("Sales", 1160.0, 4), ("Marketing", 100.0, 2), ("Travel", 25.0, 2)]


def test_quality_records_count_every_row_of_their_day(scenario: Scenario) -> None:
    # Given the lake after the three files
    # When its QUALITY records are queried
    rows = query.run(
        scenario.lakes["first"],
        "SELECT source_file, quality_date, rows_in, rows_trusted, rows_quarantined, duplicates,"
        " quarantined_by_reason, quality_score_min FROM delivery_transactions"
        " WHERE record_type = 'QUALITY' ORDER BY source_file, quality_date",
    ).records()
    assert [
        (
            r["source_file"].rsplit("/", 1)[1],
            # Then each file's day counts every row it had: trusted, quarantined (by reason) or
            # duplicate
            r["quality_date"].isoformat(),
            r["rows_in"],
            r["rows_trusted"],
            r["rows_quarantined"],
            r["duplicates"],
            r["quarantined_by_reason"],
            r["quality_score_min"],
        )
        for r in rows
    ] == [
        ("tx_a.csv", "2024-01-15", 5, 4, 1, 0, {"NEGATIVE:amount": 1}, 0.9),
        ("tx_b.csv", "2024-01-15", 2, 1, 0, 1, {}, 1.0),
        ("tx_b.csv", "2024-01-16", 2, 2, 0, 0, {}, 1.0),
        ("tx_c.csv", "2024-02-01", 1, 1, 0, 0, {}, 1.0),
    ]


def test_lineage_accounts_for_every_output_file_and_input_row(scenario: Scenario) -> None:
    # Given the lake after the three files, and the Parquet files on disk
    lake = scenario.lakes["first"]
    manifests = sorted((lake / "delivery/_lineage/manifests/transactions").glob("*.json"))
    assert len(manifests) == 3
    on_disk = {
        p.relative_to(lake / layer).as_posix()
        for layer in ("trusted", "delivery", "quarantine")
        for p in (lake / layer / "transactions").rglob("*.parquet")
    }
    listed: set[str] = set()
    links = 0
    # When each manifest is read
    for path in manifests:
        manifest = json.loads(path.read_text())
        counts = manifest["counts"]
        # Then its counts add up, its outputs hold every trusted and quarantined row, with every
        # stage timed
        assert counts["rows_in"] == (
            counts["rows_trusted"] + counts["rows_quarantined"] + counts["duplicates"]
        )
        by_layer: dict[str, int] = {}
        for output in manifest["outputs"]:
            listed.add(output["key"])
            links += 1
            if output.get("record_type") in (None, "DETAIL"):
                by_layer[output["layer"]] = by_layer.get(output["layer"], 0) + output["rows"]
        assert by_layer["trusted"] == counts["rows_trusted"] == by_layer["delivery"]
        assert by_layer.get("quarantine", 0) == counts["rows_quarantined"]
        assert set(manifest["durations_ms"]) == {"validate", "trusted", "delivery"}
        assert all(isinstance(v, int) for v in manifest["durations_ms"].values())
    # And together they list exactly the files on disk
    assert listed == on_disk
    # and the lineage table holds the same links (a day's summary is listed by every file in it)
    table = query.run(
        lake,
        "SELECT count(*), count(DISTINCT output_key), count(DISTINCT execution) FROM lineage",
    )
    assert table.rows == [(links, len(listed), 3)]


def test_the_ddl_declares_exactly_the_columns_written(scenario: Scenario) -> None:
    # Given the catalog's tables for the transactions contract, and the lake after the three files
    contract = find_contract("transactions", CONTRACTS_DIR)
    assert contract is not None
    trusted, delivery = catalog.tables(contract)
    lake = scenario.lakes["first"]

    def declared(table: catalog.Table) -> dict[str, str]:
        return {f.name: catalog.athena_type(f.type) for f in table.schema}

    # When each TRUSTED, DELIVERY and lineage file's schema is read
    for path in (lake / "trusted/transactions").rglob("*.parquet"):
        written = {f.name: catalog.athena_type(f.type) for f in pq.read_schema(path)}
        # Then it declares exactly the columns the DDL has (DELIVERY's record types together cover
        # its union)
        assert written == declared(trusted), path
    union = declared(delivery)
    seen: set[str] = set()
    for path in (lake / "delivery/transactions").rglob("*.parquet"):
        written = {f.name: catalog.athena_type(f.type) for f in pq.read_schema(path)}
        assert written.items() <= union.items(), path
        seen |= set(written)
    assert seen == set(union)
    for path in (lake / "delivery/_lineage/records").glob("*.parquet"):
        written = {f.name: catalog.athena_type(f.type) for f in pq.read_schema(path)}
        assert written == declared(catalog.lineage_table())

from __future__ import annotations

import re
from datetime import date

from sluice import lake
from sluice.lake import SourceObject

NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def test_execution_name_reads_well_and_fits_the_console_limits() -> None:
    # Given an object under the transactions dataset
    source = SourceObject("raw", "transactions/year=2024/month=01/day=15/sales_jan.csv", etag="abc")
    # When it is named
    name = lake.execution_name(source, "transactions")
    # Then the name is dataset, stem and a 16-hex hash
    assert re.fullmatch(r"transactions-sales_jan-[0-9a-f]{16}", name)
    assert NAME.match(name)


def test_execution_name_is_stable_and_unique_per_version() -> None:
    # Given one key in two versions, and the first version again with another ETag
    v1 = SourceObject("raw", "t/x.csv", version_id="v1")
    v1_again = SourceObject("raw", "t/x.csv", version_id="v1", etag="other")
    v2 = SourceObject("raw", "t/x.csv", version_id="v2")
    # When their execution names are taken
    # Then one version has one name whatever its ETag, and another version another
    assert lake.execution_name(v1, "t") == lake.execution_name(v1_again, "t")
    assert lake.execution_name(v1, "t") != lake.execution_name(v2, "t")
    # And without versioning the ETag (quotes or not) identifies the content
    assert lake.execution_name(
        SourceObject("raw", "t/x.csv", etag='"e1"'), "t"
    ) == lake.execution_name(SourceObject("raw", "t/x.csv", etag="e1"), "t")
    assert lake.execution_name(
        SourceObject("raw", "t/x.csv", etag="e1"), "t"
    ) != lake.execution_name(SourceObject("raw", "t/x.csv", etag="e2"), "t")


def test_execution_name_survives_hostile_keys() -> None:
    # Given keys long, escaped, climbing out, with control characters, or with no name
    keys = [
        "t/" + "ü" * 300 + ".csv",
        "t/a b+c%25 (1).csv",
        "t/../../etc/passwd",
        "t/\x00\x1f.csv",
        "t/" + "x" * 1000,
        "t/.csv",
    ]
    # When their execution names are taken
    names = {
        lake.execution_name(SourceObject("raw", key, etag="e"), "transactions") for key in keys
    }
    # Then each is its own, and every one a valid Step Functions name
    assert len(names) == len(keys)
    assert all(NAME.match(name) for name in names)


def test_object_id_ignores_version_so_a_new_version_replaces_outputs() -> None:
    # Given two versions of one key
    a = SourceObject("raw", "t/x.csv", version_id="v1")
    b = SourceObject("raw", "t/x.csv", version_id="v2")
    # When their object ids are taken, Then they are the same
    assert a.object_id == b.object_id
    # And its TRUSTED key is the day's folder, the file's stem and that id
    assert (
        lake.trusted_key("t", date(2024, 1, 15), a)
        == "t/year=2024/month=01/day=15/x-" + a.object_id + ".parquet"
    )


def test_keys_follow_the_lake_layout() -> None:
    # Given a RAW object of the lake layout, and a day
    src = SourceObject("raw", "transactions/year=2026/month=11/day=29/transactions.csv")
    day = date(2024, 1, 5)
    oid = src.object_id
    # When each key is built from them
    # Then RAW, DETAIL, DAILY_SUMMARY and quarantined rows keys follow the layout, and the day reads
    # back
    assert lake.raw_key("transactions", "/tmp/transactions.csv", date(2026, 11, 29)) == src.key
    assert lake.delivery_key("transactions", "DETAIL", day, src) == (
        f"transactions/record_type=DETAIL/year=2024/month=01/day=05/transactions-{oid}.parquet"
    )
    assert lake.delivery_key("transactions", "DAILY_SUMMARY", day, None) == (
        "transactions/record_type=DAILY_SUMMARY/year=2024/month=01/day=05/daily_summary.parquet"
    )
    assert lake.quarantine_rows_key("transactions", day, src).startswith(
        "transactions/rows/year=2024/"
    )
    assert lake.day_of_key("a/year=2024/month=01/day=05/x") == day


def test_dataset_names() -> None:
    # Given file names with years, dots and leading digits, and keys with and without a folder
    # When a dataset name is taken from each
    # Then it is the file's name less its year and suffixes, lower-cased and made a safe name, or
    # the key's first folder (none without one); a name climbing out is not valid
    assert lake.dataset_from_filename("transactions_2024.csv") == "transactions"
    assert lake.dataset_from_filename("Sales.Report.xlsx") == "sales"
    assert lake.dataset_from_filename("2024-data.csv") == "d_2024_data"
    assert lake.dataset_from_key("orders/year=2024/x.csv") == "orders"
    assert lake.dataset_from_key("loose.csv") == ""
    assert not lake.is_valid_dataset("../etc")

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from sluice.config import CONTRACTS_DIR
from sluice.contracts import ContractError, find_contract, load_contract_text
from sluice.errors import SluiceDataError
from sluice.formats import read_file
from sluice.stages import delivery, trusted
from sluice.stages.validate import check_table

CONTRACT = find_contract("transactions", CONTRACTS_DIR)
CTX = trusted.RunContext(
    source_file="s3://raw/transactions/x.csv",
    source_version="v1",
    pipeline_version="0.1.0",
    processed_at=datetime(2026, 11, 29, 12, 0, tzinfo=UTC),
)


def staged(rows: list[tuple[str | None, ...]]) -> pa.Table:
    names = ["id", "name", "amount", "date", "category"]
    return pa.table({n: pa.array([r[i] for r in rows], pa.string()) for i, n in enumerate(names)})


def test_shipped_contract_matches_the_sample() -> None:
    # Given the shipped transactions contract
    assert CONTRACT is not None
    # Then it names the sample's columns, its key and its event date
    assert CONTRACT.names == ["id", "name", "amount", "date", "category"]
    assert CONTRACT.primary_key == ("id",)
    assert CONTRACT.event_date == "date"


def test_trusted_types_dedupes_and_splits_by_day() -> None:
    # Given an exact duplicate, a duplicate id with other values, and a bad amount
    table = staged(
        [
            ("1", "A", "150.50", "2024-01-15", "Sales"),
            ("1", "A", "150.50", "2024-01-15", "Sales"),
            ("2", "B", "75.25", "2024-01-16", "Marketing"),
            ("2", "B2", "80.00", "2024-01-16", "Marketing"),
            ("3", "C", "abc", "2024-01-17", "Sales"),
            ("4", "D", "10", "2024-01-15", None),
        ]
    )
    # When Trusted applies the contract
    assert CONTRACT is not None
    result = trusted.transform(table, CONTRACT, CTX)
    # Then every row is accounted for exactly once
    assert (result.rows_in, result.rows_trusted, result.rows_quarantined, result.duplicates) == (
        6,
        3,
        1,
        2,
    )
    assert sorted(result.trusted) == [date(2024, 1, 15), date(2024, 1, 16)]
    day15 = result.read(date(2024, 1, 15))
    assert day15["id"].to_pylist() == [1, 4]
    assert day15["amount"].to_pylist() == [150.5, 10.0]
    assert day15.schema.field("date").type == pa.date32()
    # the first row of a duplicate id wins
    assert result.read(date(2024, 1, 16))["name"].to_pylist() == ["B"]
    # a missing category is filled with the contract's default and flagged
    assert day15["category"].to_pylist() == ["Sales", "Uncategorized"]
    assert day15["quality_flags"].to_pylist() == [[], ["FILLED:category"]]
    # 0.5 * completeness + 0.5 * conformance: 1.0, and 0.5 * 4/5 + 0.5 * 1 where filled
    assert day15["data_quality_score"].to_pylist() == [1.0, 0.9]
    assert day15["source_file"].to_pylist() == ["s3://raw/transactions/x.csv"] * 2
    assert day15["processing_layer"].to_pylist() == ["trusted"] * 2
    bad = result.read(date(2024, 1, 17), quarantine=True)
    assert bad["_row"].to_pylist() == [5]
    assert bad["amount"].to_pylist() == ["abc"]
    assert bad["reason_codes"].to_pylist() == [["TYPE_MISMATCH:amount"]]


def test_required_nulls_and_unparseable_dates_are_quarantined_with_every_reason() -> None:
    # Given a row missing its id and amount with a bad date, and a row with an impossible date
    table = staged(
        [(None, "A", None, "15/13/2024", "Sales"), ("7", "B", "1", "2024-02-30", "Sales")]
    )
    assert CONTRACT is not None
    # When Trusted applies the contract
    result = trusted.transform(table, CONTRACT, CTX)
    # Then no row is trusted, and each is quarantined with every one of its reasons
    assert result.rows_trusted == 0
    rows = pa.concat_tables(
        result.read(day, quarantine=True) for day in result.quarantined
    ).sort_by("_row")
    assert rows["reason_codes"].to_pylist() == [
        ["NULL:id", "NULL:amount", "TYPE_MISMATCH:date"],
        ["TYPE_MISMATCH:date"],
    ]
    # a row without a readable date is kept under the processing day
    assert list(result.quarantined) == [date(2026, 11, 29)]


def test_daily_summary_has_exact_statistics_per_group() -> None:
    # Given three rows of one day in two categories, through Trusted
    assert CONTRACT is not None
    result = trusted.transform(
        staged(
            [
                ("1", "A", "150.50", "2024-01-15", "Sales"),
                ("2", "B", "49.50", "2024-01-15", "Sales"),
                ("3", "C", "10", "2024-01-15", "Marketing"),
            ]
        ),
        CONTRACT,
        CTX,
    )
    # When the day's summary is taken from their partial summary
    partial = delivery.partial_summary(result.read(date(2024, 1, 15)), CONTRACT)
    summary = delivery.daily_summary(partial, CONTRACT, date(2024, 1, 15))
    # Then each category has its exact count, sum, mean, minimum and maximum
    assert summary.to_pylist() == [
        {
            "summary_date": date(2024, 1, 15),
            "category": "Marketing",
            "record_count": 1,
            "amount_sum": 10.0,
            "amount_mean": 10.0,
            "amount_min": 10.0,
            "amount_max": 10.0,
            "avg_quality_score": 1.0,
        },
        {
            "summary_date": date(2024, 1, 15),
            "category": "Sales",
            "record_count": 2,
            "amount_sum": 200.0,
            "amount_mean": 100.0,
            "amount_min": 49.5,
            "amount_max": 150.5,
            "avg_quality_score": 1.0,
        },
    ]


def test_detail_adds_delivery_columns() -> None:
    # Given a trusted row
    assert CONTRACT is not None
    result = trusted.transform(staged([("1", "A", "1", "2024-01-15", "S")]), CONTRACT, CTX)
    at = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)
    # When it is written as DETAIL at a given time by a given version
    table = delivery.detail(result.read(date(2024, 1, 15)), at, "9.9.9")
    row = table.to_pylist()[0]
    # Then the row carries the delivery layer, that version and that time
    assert (row["processing_layer"], row["pipeline_version"], row["delivery_timestamp"]) == (
        "delivery",
        "9.9.9",
        at,
    )


def test_validate_rejects_header_only_and_missing_columns(write_file) -> None:  # type: ignore[no-untyped-def]
    # Given a file with only the header
    assert CONTRACT is not None
    _, header_only = read_file(write_file("h.csv", "id,name,amount,date,category\n"), "h.csv")
    # When it is checked against the contract, Then it is HEADER_ONLY
    with pytest.raises(SluiceDataError) as empty:
        check_table(header_only, "transactions", CONTRACT)
    assert empty.value.reason == "HEADER_ONLY"
    # And a file missing columns is MISSING_COLUMNS, naming them
    _, partial = read_file(write_file("p.csv", "id,name\n1,a\n"), "p.csv")
    with pytest.raises(SluiceDataError) as missing:
        check_table(partial, "transactions", CONTRACT)
    assert missing.value.reason == "MISSING_COLUMNS"
    assert missing.value.details["missing"] == ["amount", "date"]


def test_empty_file_is_a_data_error(write_file) -> None:  # type: ignore[no-untyped-def]
    # Given a file of no bytes
    # When it is read, Then it is EMPTY_FILE
    with pytest.raises(SluiceDataError) as err:
        read_file(write_file("e.csv", b""), "e.csv")
    assert err.value.reason == "EMPTY_FILE"


def test_csv_reader_handles_bom_semicolons_latin1_and_quoted_newlines(write_file) -> None:  # type: ignore[no-untyped-def]
    # Given a UTF-8 CSV with a BOM, semicolons, a decimal comma and a quoted newline
    text = 'id;name;amount\n1;"Caf\u00e9\nBar";1,5\n'
    path: Path = write_file("x.csv", b"\xef\xbb\xbf" + text.encode("utf-8"))
    # When it is read
    fmt, table = read_file(path, "x.csv")
    # Then it is CSV with its three columns, the newline kept inside the field
    assert fmt == "csv"
    assert table.column_names == ["id", "name", "amount"]
    assert table.to_pylist() == [{"id": "1", "name": "Caf\u00e9\nBar", "amount": "1,5"}]
    # And the same text in Latin-1 reads the same
    _, latin = read_file(write_file("l.csv", text.encode("latin-1")), "l.csv")
    assert latin["name"].to_pylist() == ["Caf\u00e9\nBar"]


def test_json_and_jsonl_readers_keep_values_as_text(write_file) -> None:  # type: ignore[no-untyped-def]
    # Given a JSON array of records with a number, a boolean, a null and a list
    # When it is read
    _, arr = read_file(
        write_file("a.json", '[{"id": 1, "ok": true, "x": null}, {"id": 2, "tags": [1]}]'), "a.json"
    )
    # Then every value is its text, the list its JSON, a missing key null
    assert arr.to_pylist() == [
        {"id": "1", "ok": "true", "x": None, "tags": None},
        {"id": "2", "ok": None, "x": None, "tags": "[1]"},
    ]
    # And a JSON-lines file with a blank line reads its two records
    _, lines = read_file(write_file("a.jsonl", '{"id": 1}\n\n{"id": 2.5}\n'), "a.jsonl")
    assert lines["id"].to_pylist() == ["1", "2.5"]


def test_contract_errors_name_file_field_and_fix() -> None:
    # Given a contract whose column names a type that does not exist
    # When it is loaded
    with pytest.raises(ContractError) as err:
        load_contract_text("dataset: t\ncolumns:\n  id: {type: integer}\n", "contracts/t.yaml")
    # Then the error names the file, the field and the fix
    assert str(err.value) == (
        "contracts/t.yaml: columns.id.type: 'integer' is not a type "
        "(fix: use one of int, float, decimal, string, bool, date, timestamp)"
    )
    # And a primary key that is no column is refused
    with pytest.raises(ContractError, match=r"primary_key: 'nope' is not a column"):
        load_contract_text("dataset: t\ncolumns: {id: int}\nprimary_key: [nope]\n", "t.yaml")


def test_inferred_contract_guesses_types_and_roles() -> None:
    # Given a table of ids, dates, totals and categories with no contract
    table = pa.table(
        {
            "order_id": ["10", "11"],
            "when": ["2024-01-01", "2024-01-02"],
            "total": ["1.5", "2"],
            "category": ["a", "b"],
        }
    )
    # When a contract is inferred for it
    contract = check_table(table, "orders", None)
    # Then the types are guessed, and so are its key, event date, measures and groups
    assert contract.inferred
    assert [(c.name, c.type) for c in contract.columns] == [
        ("order_id", "int"),
        ("when", "date"),
        ("total", "float"),
        ("category", "string"),
    ]
    assert (contract.primary_key, contract.event_date, contract.measures, contract.group_by) == (
        ("order_id",),
        "when",
        ("total",),
        ("category",),
    )


def test_an_inferred_contract_leaves_out_names_a_contract_cannot_take() -> None:
    # Given a file with a column whose name would end SQL quoting, one differing from an
    # earlier one only in case, and names as spreadsheets write them
    table = pa.table(
        {
            "id": ["1", "2"],
            "a` bigint, `b": ["x", "y"],
            "Unit Price": ["1.5", "2"],
            "unit price": ["3", "4"],
        }
    )

    # When its contract is inferred
    contract = check_table(table, "orders", None)

    # Then the unsafe and the case-twin columns are left out (they stay in RAW), and the
    # inferred contract loads back as it was saved
    assert contract.names == ["id", "Unit Price"]
    assert load_contract_text(contract.to_yaml(), "again").names == ["id", "Unit Price"]

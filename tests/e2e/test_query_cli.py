"""`sluice query` and `sluice run --query` from the user's side."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sluice.cli import main
from sluice.config import PROJECT_ROOT

SAMPLE = PROJECT_ROOT / "samples" / "transactions.csv"
TOP = (
    "SELECT category, SUM(amount) AS total_amount, COUNT(*) AS transaction_count "
    "FROM sluice.trusted_transactions WHERE year = '2024' GROUP BY category "
    "ORDER BY total_amount DESC"
)


def query(capsys, sql: str, lake_dir: Path, fmt: str | None = None) -> str:  # type: ignore[no-untyped-def]
    """What `sluice query` prints for `sql` on the lake at `lake_dir` (in `fmt`): it exits 0."""
    assert main(["query", sql, "--lake", str(lake_dir), *(["--format", fmt] if fmt else [])]) == 0
    out: str = capsys.readouterr().out
    return out


def test_run_then_query_in_every_format(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    lake_dir = tmp_path / "lake"
    # Given the sample run with a query afterwards
    assert main(["run", str(SAMPLE), "--lake", str(lake_dir), "--query", TOP]) == 0
    out = capsys.readouterr().out
    # Then the report ends with the query's table
    assert out.rstrip().endswith(
        "category   total_amount  transaction_count\n"
        "---------  ------------  -----------------\n"
        "Sales             450.5                  2\n"
        "Marketing         75.25                  1\n"
        "(2 rows)"
    )
    # And the lake can be queried again, as JSON and CSV
    assert json.loads(query(capsys, TOP, lake_dir, "json")) == [
        {"category": "Sales", "total_amount": 450.5, "transaction_count": 2},
        {"category": "Marketing", "total_amount": 75.25, "transaction_count": 1},
    ]
    assert query(capsys, TOP, lake_dir, "csv") == (
        "category,total_amount,transaction_count\nSales,450.5,2\nMarketing,75.25,1\n"
    )
    # And `run --json --query` keeps every digit of a decimal
    wide = "SELECT CAST('12345678901234567890.123456789' AS DECIMAL(38, 9)) AS d"
    assert main(["run", str(SAMPLE), "--lake", str(lake_dir), "--json", "--query", wide]) == 0
    document = json.loads(capsys.readouterr().out, parse_float=Decimal)
    assert document["query"] == {
        "sql": wide,
        "rows": [{"d": Decimal("12345678901234567890.123456789")}],
    }


def test_a_bad_query_is_one_clear_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # Given a lake the sample was run into
    lake_dir = tmp_path / "lake"
    assert main(["run", str(SAMPLE), "--lake", str(lake_dir)]) == 0
    capsys.readouterr()
    # When a query names a table that does not exist
    assert main(["query", "SELECT * FROM trusted_nope", "--lake", str(lake_dir)]) == 1
    # Then it exits 1 with one line naming the error and the tables there are
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("sluice: Catalog Error: Table with name trusted_nope does not exist")
    assert err.endswith("(tables: delivery_transactions, lineage, trusted_transactions)")
    # And a query of a lake that does not exist says so
    assert main(["query", "SELECT 1", "--lake", str(tmp_path / "missing")]) == 1
    assert "no lake at" in capsys.readouterr().err


def _readings_lake(root: Path) -> Path:
    """A lake with one trusted file of numbers that 6 significant digits cannot hold."""
    day = root / "trusted" / "readings" / "year=2024" / "month=01" / "day=15"
    day.mkdir(parents=True)
    readings = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "amount": pa.array([5196000.125, 650.125, 0.1 + 0.2], pa.float64()),
            "price": pa.array(
                [Decimal("12345678901234.5678"), Decimal("0.0001"), Decimal("-1.5000")],
                pa.decimal128(20, 4),
            ),
            "big": pa.array([2**53 + 1, 2**63 - 1, -1], pa.int64()),
            "ratio": pa.array([0.1, 2.5, None], pa.float32()),
        }
    )
    pq.write_table(readings, day / "part.parquet")
    return root


ROWS = "SELECT id, amount, price, big, ratio FROM trusted_readings ORDER BY id"
SUMS = (
    "SELECT sum(amount) AS total, sum(price) AS price_total, sum(big) AS big_total, "
    "1e-7::DOUBLE AS tiny, 1e16::DOUBLE AS huge FROM trusted_readings WHERE id <= 2"
)


def test_every_number_is_printed_exactly_in_every_format(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # Given doubles, a decimal, integers past 2**53 and a 32-bit float in the lake
    lake_dir = _readings_lake(tmp_path / "lake")
    # When they are queried as a table
    # Then each double has its shortest round-tripping digits, a decimal all of its digits,
    # an integer all of its digits, and a FLOAT the shortest digits that read back as it
    assert query(capsys, ROWS, lake_dir) == (
        "id               amount                price                  big  ratio\n"
        "--  -------------------  -------------------  -------------------  -----\n"
        " 1          5196000.125  12345678901234.5678     9007199254740993    0.1\n"
        " 2              650.125               0.0001  9223372036854775807    2.5\n"
        " 3  0.30000000000000004              -1.5000                   -1   NULL\n"
        "(3 rows)\n"
    )
    # And the same as CSV
    assert query(capsys, ROWS, lake_dir, "csv") == (
        "id,amount,price,big,ratio\n"
        "1,5196000.125,12345678901234.5678,9007199254740993,0.1\n"
        "2,650.125,0.0001,9223372036854775807,2.5\n"
        "3,0.30000000000000004,-1.5000,-1,\n"
    )
    # And as JSON, where the decimal is a number with its digits as written, not a string
    out = query(capsys, ROWS, lake_dir, "json")
    assert '"price": 12345678901234.5678,' in out
    assert json.loads(out, parse_float=Decimal) == [
        {
            "id": 1,
            "amount": Decimal("5196000.125"),
            "price": Decimal("12345678901234.5678"),
            "big": 9007199254740993,
            "ratio": Decimal("0.1"),
        },
        {
            "id": 2,
            "amount": Decimal("650.125"),
            "price": Decimal("0.0001"),
            "big": 9223372036854775807,
            "ratio": Decimal("2.5"),
        },
        {
            "id": 3,
            "amount": Decimal("0.30000000000000004"),
            "price": Decimal("-1.5000"),
            "big": -1,
            "ratio": None,
        },
    ]


def test_sums_keep_every_digit(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # Given the same lake
    lake_dir = _readings_lake(tmp_path / "lake")
    # When a double, a decimal and a 128-bit integer are summed, beside a tiny and a huge double
    # Then no format rounds them (the double sum was once printed as 5.19665e+06)
    assert query(capsys, SUMS, lake_dir, "csv") == (
        "total,price_total,big_total,tiny,huge\n"
        "5196650.25,12345678901234.5679,9232379236109516800,1e-07,1e+16\n"
    )
    assert query(capsys, SUMS, lake_dir) == (
        "     total          price_total            big_total   tiny   huge\n"
        "----------  -------------------  -------------------  -----  -----\n"
        "5196650.25  12345678901234.5679  9232379236109516800  1e-07  1e+16\n"
        "(1 row)\n"
    )
    assert query(capsys, SUMS, lake_dir, "json") == (
        "[\n"
        "  {\n"
        '    "total": 5196650.25,\n'
        '    "price_total": 12345678901234.5679,\n'
        '    "big_total": 9232379236109516800,\n'
        '    "tiny": 1e-07,\n'
        '    "huge": 1e+16\n'
        "  }\n"
        "]\n"
    )


def test_json_stays_valid_for_values_not_finite_and_nested(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # Given a query whose answers are not finite, or nested
    lake_dir = _readings_lake(tmp_path / "lake")
    sql = (
        "SELECT 'nan'::DOUBLE AS n, '-inf'::DOUBLE AS low, [1.25::DECIMAL(5,2), NULL] AS l, "
        "{'at': DATE '2024-01-15', 'x': 0.5} AS s"
    )
    # When it is printed as JSON
    # Then it is valid JSON: NaN and infinities as strings, nested numbers exact
    out = query(capsys, sql, lake_dir, "json")
    assert json.loads(out, parse_float=Decimal, parse_constant=lambda c: c) == [
        {
            "n": "nan",
            "low": "-inf",
            "l": [Decimal("1.25"), None],
            "s": {"at": "2024-01-15", "x": Decimal("0.5")},
        }
    ]
    # And a table shows them the same way
    assert query(capsys, sql, lake_dir, "csv") == (
        'n,low,l,s\nnan,-inf,"[1.25, null]","{""at"": ""2024-01-15"", ""x"": 0.5}"\n'
    )

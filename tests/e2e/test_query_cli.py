"""`sluice query` and `sluice run --query` from the user's side."""

from __future__ import annotations

import json
from pathlib import Path

from sluice.cli import main
from sluice.config import PROJECT_ROOT

SAMPLE = PROJECT_ROOT / "samples" / "transactions.csv"
TOP = (
    "SELECT category, SUM(amount) AS total_amount, COUNT(*) AS transaction_count "
    "FROM sluice.trusted_transactions WHERE year = '2024' GROUP BY category "
    "ORDER BY total_amount DESC"
)


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
    assert main(["query", TOP, "--lake", str(lake_dir), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"category": "Sales", "total_amount": 450.5, "transaction_count": 2},
        {"category": "Marketing", "total_amount": 75.25, "transaction_count": 1},
    ]
    assert main(["query", TOP, "--lake", str(lake_dir), "--format", "csv"]) == 0
    assert capsys.readouterr().out == (
        "category,total_amount,transaction_count\nSales,450.5,2\nMarketing,75.25,1\n"
    )


def test_a_bad_query_is_one_clear_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    lake_dir = tmp_path / "lake"
    assert main(["run", str(SAMPLE), "--lake", str(lake_dir)]) == 0
    capsys.readouterr()
    assert main(["query", "SELECT * FROM trusted_nope", "--lake", str(lake_dir)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("sluice: Catalog Error: Table with name trusted_nope does not exist")
    assert err.endswith("(tables: delivery_transactions, lineage, trusted_transactions)")
    assert main(["query", "SELECT 1", "--lake", str(tmp_path / "missing")]) == 1
    assert "no lake at" in capsys.readouterr().err

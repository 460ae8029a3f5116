"""Other formats and user contracts, end to end on the local cloud."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

import openpyxl
import pyarrow.parquet as pq

from sluice.cli import main
from sluice.local import LocalCloud


def trusted_rows(lake_dir: Path, dataset: str) -> list[dict[str, object]]:
    files = sorted((lake_dir / "trusted" / dataset).rglob("*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def test_a_jsonl_file_runs_with_an_inferred_contract(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # Given JSON Lines for a dataset with no contract
    path = tmp_path / "orders_2024.jsonl"
    records = [
        {"order_id": 1, "total": 10.5, "order_date": "2024-02-01", "status": "paid"},
        {"order_id": 2, "total": -3, "order_date": "2024-02-01", "status": "refund"},
        {"order_id": 2, "total": -3, "order_date": "2024-02-01", "status": "refund"},
        {"order_id": 3, "total": None, "order_date": "2024-02-02", "status": "paid"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    lake_dir = tmp_path / "lake"
    # When it is run
    assert main(["run", str(path), "--lake", str(lake_dir), "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)["files"]
    # Then rows are typed by the inferred contract, the repeated order is dropped,
    # and the guessed non-negative rule only flags
    assert report["counts"] == {
        "rows_in": 4,
        "rows_trusted": 3,
        "rows_quarantined": 0,
        "duplicates": 1,
    }
    rows = trusted_rows(lake_dir, "orders")
    assert [(r["order_id"], r["total"], r["quality_flags"]) for r in rows] == [
        (1, 10.5, []),
        (2, -3.0, ["NEGATIVE:total"]),
        (3, None, ["NULL:total"]),
    ]
    inferred = (lake_dir / "trusted" / "orders" / "_inferred_contract.yaml").read_text()
    # order_id repeats, so it is not guessed as the primary key: whole rows are compared
    assert "primary_key" not in inferred
    assert "event_date: order_date\n" in inferred


def test_an_xlsx_file_runs_through_sluice_run(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # Given the seed's sample as a spreadsheet, with one negative amount
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["id", "name", "amount", "date", "category"])
    sheet.append([1, "Transaction A", 150.5, datetime(2024, 1, 15), "Sales"])
    sheet.append([2, "Transaction B", 75.25, datetime(2024, 1, 16), "Marketing"])
    sheet.append([3, "Transaction C", -300, datetime(2024, 1, 17), "Sales"])
    path = tmp_path / "transactions_q1.xlsx"
    book.save(path)
    lake_dir = tmp_path / "lake"
    # When it is run
    assert main(["run", str(path), "--lake", str(lake_dir), "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)["files"]
    # Then the two good rows are trusted, banded and scored; the negative one quarantined
    assert report["counts"] == {
        "rows_in": 3,
        "rows_trusted": 2,
        "rows_quarantined": 1,
        "duplicates": 0,
    }
    rows = trusted_rows(lake_dir, "transactions")
    assert [(r["id"], r["amount_category"], r["data_quality_score"]) for r in rows] == [
        (1, "MEDIUM", 1.0),
        (2, "LOW", 1.0),
    ]
    bad = pq.read_table(
        next((lake_dir / "quarantine" / "transactions" / "rows").rglob("*.parquet"))
    )
    assert bad.select(["id", "reason_codes"]).to_pylist() == [
        {"id": "3", "reason_codes": ["NEGATIVE:amount"]}
    ]


def test_a_contract_in_raw_wins_and_a_broken_one_fails_the_file_clearly(tmp_path: Path) -> None:
    with LocalCloud() as cloud:
        s3 = cloud.client("s3")
        # Given a user contract in RAW that rejects amounts over 100 (no redeploy)
        contract = (
            "dataset: transactions\ncolumns:\n  id: {type: int, required: true}\n"
            "  amount: {type: float, rules: [{max: 100}]}\n  date: {type: date}\n"
            "primary_key: [id]\nevent_date: date\n"
        )
        s3.put_object(Bucket="raw", Key="_contracts/transactions.yaml", Body=contract.encode())
        path = tmp_path / "t.csv"
        path.write_text("id,amount,date\n1,50,2024-01-15\n2,500,2024-01-15\n", encoding="utf-8")
        # When a file arrives
        first = cloud.wait(cloud.upload(path, "transactions"), timeout=60)
        # Then the RAW contract judged it
        assert first["status"] == "SUCCEEDED"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="quarantine")["Contents"]]
        (rows_key,) = [k for k in keys if "/rows/" in k]
        body = s3.get_object(Bucket="quarantine", Key=rows_key)["Body"].read()
        bad = pq.read_table(io.BytesIO(body))
        assert bad["reason_codes"].to_pylist() == [["ABOVE_MAX:amount"]]
        # the contract upload itself started nothing
        executions = cloud.client("stepfunctions").list_executions(
            stateMachineArn=cloud.state_machine_arn
        )["executions"]
        assert len(executions) == 1

        # When the contract is broken and another file arrives
        s3.put_object(
            Bucket="raw", Key="_contracts/transactions.yaml", Body=b"dataset: transactions\n"
        )
        path2 = tmp_path / "t2.csv"
        path2.write_text("id,amount,date\n3,5,2024-01-16\n", encoding="utf-8")
        second = cloud.wait(cloud.upload(path2, "transactions"), timeout=60)
        # Then the file fails at Validate with the contract's error, and is quarantined
        assert second["status"] == "FAILED"
        reason_keys = [
            o["Key"]
            for o in s3.list_objects_v2(Bucket="quarantine")["Contents"]
            if o["Key"].endswith("reason.json")
        ]
        (reason_key,) = reason_keys
        reason = json.loads(s3.get_object(Bucket="quarantine", Key=reason_key)["Body"].read())
        assert reason["reason"] == "INVALID_CONTRACT"
        assert reason["message"] == (
            "s3://raw/_contracts/transactions.yaml: columns: missing or empty "
            "(fix: list each column as '<name>: {type: <type>}')"
        )

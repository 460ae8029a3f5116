"""`sluice run` from the user's side: files in, report out, lake on disk."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sluice import lake
from sluice.cli import main
from sluice.config import PROJECT_ROOT
from sluice.lake import SourceObject
from sluice.local import LocalCloud
from tests.support import eventually

HEADER = "id,name,amount,date,category\n"
SAMPLE = PROJECT_ROOT / "samples" / "transactions.csv"


def test_sample_runs_end_to_end(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # Given the seed's three-row sample
    lake_dir = tmp_path / "lake"
    # When it is run with --json
    code = main(["run", str(SAMPLE), "--lake", str(lake_dir), "--json"])
    # Then it succeeded with every row trusted
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["lake"] == str(lake_dir)
    (file_report,) = report["files"]
    assert file_report["dataset"] == "transactions"
    assert file_report["execution"]["status"] == "SUCCEEDED"
    assert [(s["name"], s["status"], s["attempts"]) for s in file_report["stages"]] == [
        ("validate", "SUCCEEDED", 1),
        ("trusted", "SUCCEEDED", 1),
        ("delivery", "SUCCEEDED", 1),
    ]
    assert file_report["counts"] == {
        "rows_in": 3,
        "rows_trusted": 3,
        "rows_quarantined": 0,
        "duplicates": 0,
    }
    # and the lake holds TRUSTED and DELIVERY Parquet per day
    trusted = sorted(
        p.relative_to(lake_dir / "trusted").as_posix()
        for p in (lake_dir / "trusted" / "transactions").rglob("*.parquet")
    )
    assert [t.rsplit("/", 1)[0] for t in trusted] == [
        "transactions/year=2024/month=01/day=15",
        "transactions/year=2024/month=01/day=16",
        "transactions/year=2024/month=01/day=17",
    ]
    day15 = pq.read_table(lake_dir / "trusted" / trusted[0])
    assert day15.select(["id", "name", "amount", "category"]).to_pylist() == [
        {"id": 1, "name": "Transaction A", "amount": 150.5, "category": "Sales"}
    ]
    summary = pq.read_table(
        lake_dir
        / "delivery/transactions/record_type=DAILY_SUMMARY"
        / "year=2024/month=01/day=17/daily_summary.parquet"
    )
    assert summary.select(["category", "record_count", "amount_sum"]).to_pylist() == [
        {"category": "Sales", "record_count": 1, "amount_sum": 300.0}
    ]
    layers = {o["layer"] for o in file_report["outputs"]}
    assert layers == {"trusted", "delivery"}
    assert (lake_dir / "raw").is_dir() and (lake_dir / "_logs" / "sluice-validate.log").is_file()


def test_duplicates_and_a_bad_row_are_reported_and_set_aside(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # Given a file with an exact duplicate, a repeated id and a non-numeric amount
    path = tmp_path / "payments_jan.csv"
    path.write_text(
        "id,name,amount,date,category\n"
        "1,A,10.00,2024-01-15,Sales\n"
        "1,A,10.00,2024-01-15,Sales\n"
        "2,B,20.00,2024-01-15,Sales\n"
        "2,B-late,99.00,2024-01-15,Sales\n"
        "3,C,not-a-number,2024-01-16,Sales\n",
        encoding="utf-8",
    )
    lake_dir = tmp_path / "lake"
    # When it runs as the transactions dataset
    code = main(["run", str(path), "--dataset", "transactions", "--lake", str(lake_dir), "--json"])
    # Then the run succeeds, with the accounting in the report
    assert code == 0
    (file_report,) = json.loads(capsys.readouterr().out)["files"]
    assert file_report["counts"] == {
        "rows_in": 5,
        "rows_trusted": 2,
        "rows_quarantined": 1,
        "duplicates": 2,
    }
    quarantined = [o for o in file_report["outputs"] if o["layer"] == "quarantine"]
    assert [(o["rows"], o["key"].split("/")[1]) for o in quarantined] == [(1, "rows")]
    bad = pq.read_table(lake_dir / "quarantine" / quarantined[0]["key"])
    assert bad.select(["id", "amount", "reason_codes"]).to_pylist() == [
        {"id": "3", "amount": "not-a-number", "reason_codes": ["TYPE_MISMATCH:amount"]}
    ]
    kept = pq.read_table(
        lake_dir
        / "trusted"
        / next(o["key"] for o in file_report["outputs"] if o["layer"] == "trusted")
    )
    assert kept.select(["id", "name", "amount"]).to_pylist() == [
        {"id": 1, "name": "A", "amount": 10.0},
        {"id": 2, "name": "B", "amount": 20.0},
    ]


def test_a_failed_file_makes_the_run_exit_nonzero(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # Given an empty file
    path = tmp_path / "transactions_empty.csv"
    path.write_text("", encoding="utf-8")
    # When it is run
    code = main(["run", str(path), "--lake", str(tmp_path / "lake")])
    # Then the run fails, and the failure is one line: execution, stage, reason code, message
    captured = capsys.readouterr()
    key = captured.out.splitlines()[0].split("s3://raw/", 1)[1]
    name = lake.execution_name(
        SourceObject("raw", key, etag=hashlib.md5(b"").hexdigest()), "transactions"
    )
    assert code == 1
    assert f"  execution  {name}  FAILED" in captured.out.splitlines()
    assert "  error      validate: EMPTY_FILE: file has no content" in captured.out.splitlines()
    assert "1 file(s): 0 succeeded, 1 failed" in captured.out
    # and the terminal gets no interpreter dump: the progress lines and that one line
    assert captured.err.splitlines()[2:] == [
        f"{name} FAILED at validate: EMPTY_FILE: file has no content"
    ]
    assert "Exception=" not in captured.err and "stackTrace" not in captured.err


def test_two_inputs_of_one_name_are_refused_before_anything_is_uploaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two files called x.csv in different folders
    for folder, rows in (("a", "1,A,1,2024-01-15,S\n"), ("b", "2,B,2,2024-01-16,S\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.csv").write_text(HEADER + rows, encoding="utf-8")
    lake_dir = tmp_path / "lake"
    # When they are run as one dataset
    code = main(
        ["run", str(tmp_path / "a/x.csv"), str(tmp_path / "b/x.csv"), "--dataset", "transactions",
         "--lake", str(lake_dir)]
    )  # fmt: skip
    # Then nothing runs and one line says which files would have been one object
    (line,) = capsys.readouterr().err.splitlines()
    assert code == 2
    assert line.startswith(
        f"sluice: {tmp_path / 'a/x.csv'} and {tmp_path / 'b/x.csv'} would both be "
        "s3://raw/transactions/year="
    )
    assert line.endswith(
        "/x.csv (one file's rows would replace the other's): rename one, or run them apart"
    )
    assert not lake_dir.exists()


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_run_replaces_its_own_datasets_in_the_lake_and_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a lake holding another dataset, a file of the user's, and an earlier run's
    # transactions
    lake_dir = tmp_path / "lake"
    kept = {
        "trusted/orders/year=2024/month=01/day=02/orders-1.parquet": b"orders trusted",
        "delivery/orders/record_type=DETAIL/year=2024/month=01/day=02/orders-1.parquet": b"od",
        "delivery/_lineage/records/orders-orders-1.parquet": b"orders lineage",
        "delivery/_lineage/manifests/orders/orders-1.json": b"{}",
        "delivery/orders/record_type=DAILY_SUMMARY/year=2024/month=01/day=02/summary.parquet": b"s",
        "raw/orders/year=2026/month=01/day=01/orders.csv": b"order_id\n1\n",
        "notes.txt": b"mine",
    }
    earlier = {
        "trusted/transactions/year=2020/month=01/day=01/old-1.parquet": b"old",
        "delivery/_lineage/records/transactions-old-1.parquet": b"old lineage",
        "trusted/_summaries/transactions/old-1.parquet": b"old partials",
        "quarantine/transactions/files/old-1/reason.json": b"{}",
    }
    for name, body in {**kept, **earlier}.items():
        (lake_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (lake_dir / name).write_bytes(body)
    # When a transactions file is run into it
    path = tmp_path / "transactions_new.csv"
    path.write_text(HEADER + "7,G,7.5,2024-02-01,Sales\n", encoding="utf-8")
    assert main(["run", str(path), "--lake", str(lake_dir), "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)["files"]
    # Then everything not of transactions is as it was, byte for byte
    after = files_under(lake_dir)
    assert {name: after.get(name) for name in kept} == kept
    # and transactions holds exactly this run's files: the earlier run's are gone
    ours = {name for name in after if name not in kept and not name.startswith("_logs/")}
    (raw,) = [n for n in ours if n.startswith("raw/")]
    file_id = lake.safe_token("transactions_new", 60) + "-" + SourceObject("raw", raw[4:]).object_id
    day = "year=2024/month=02/day=01"
    assert report["execution"]["status"] == "SUCCEEDED"
    assert ours == {
        raw,
        f"trusted/transactions/{day}/{file_id}.parquet",
        f"trusted/_staging/transactions/{file_id}.trusted.json",
        f"trusted/_summaries/transactions/{file_id}.parquet",
        f"delivery/transactions/record_type=DETAIL/{day}/{file_id}.parquet",
        f"delivery/transactions/record_type=QUALITY/{day}/{file_id}.parquet",
        f"delivery/transactions/record_type=DAILY_SUMMARY/{day}/daily_summary.parquet",
        f"delivery/_lineage/records/transactions-{file_id}.parquet",
        f"delivery/_lineage/manifests/transactions/{file_id}.json",
    }


def test_the_same_event_delivered_twice_gives_one_execution(tmp_path: Path) -> None:
    with LocalCloud() as cloud:
        # Given a file processed once
        path = tmp_path / "dup.csv"
        path.write_text("id,name,amount,date,category\n1,A,1,2024-01-15,S\n", encoding="utf-8")
        source = cloud.upload(path, "transactions")
        first = cloud.wait(source, timeout=60)
        trusted_before = sorted(
            o["Key"] for o in cloud.client("s3").list_objects_v2(Bucket="trusted")["Contents"]
        )
        # When S3 delivers the same event again
        event = {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": source.bucket},
                        "object": {"key": source.key, "size": source.size, "eTag": source.etag},
                    },
                }
            ]
        }
        sqs = cloud.client("sqs")
        sqs.send_message(QueueUrl=cloud.queue_urls["ingest"], MessageBody=json.dumps(event))
        batches = cloud.pump.batches

        def received_and_deleted() -> bool:
            attrs = sqs.get_queue_attributes(
                QueueUrl=cloud.queue_urls["ingest"],
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            return cloud.pump.batches != batches and (
                attrs["ApproximateNumberOfMessages"],
                attrs["ApproximateNumberOfMessagesNotVisible"],
            ) == ("0", "0")

        eventually(received_and_deleted, 60, "the starter took the event and it was deleted")
        # Then there is still one execution, the message is gone, and the outputs are unchanged
        executions = cloud.client("stepfunctions").list_executions(
            stateMachineArn=cloud.state_machine_arn
        )["executions"]
        assert [e["name"] for e in executions] == [first["name"]]
        assert first["name"] == lake.execution_name(
            source.__class__(source.bucket, source.key, etag=source.etag), "transactions"
        )
        attrs = sqs.get_queue_attributes(
            QueueUrl=cloud.queue_urls["ingest"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert (
            attrs["ApproximateNumberOfMessages"],
            attrs["ApproximateNumberOfMessagesNotVisible"],
        ) == ("0", "0")
        assert (
            sorted(
                o["Key"] for o in cloud.client("s3").list_objects_v2(Bucket="trusted")["Contents"]
            )
            == trusted_before
        )
        dlq = sqs.receive_message(QueueUrl=cloud.queue_urls["ingest_dlq"]).get("Messages", [])
        assert dlq == []
        starter_log = "\n".join(cloud.runtime.logs["sluice-starter"])
        assert f'"already_handled":["{first["name"]}"]' in starter_log


def test_every_sample_succeeds_as_make_run_runs_them(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # Given the files `make run` processes
    samples = sorted(str(p) for p in (PROJECT_ROOT / "samples").iterdir())
    # When they run together
    code = main(["run", *samples, "--lake", str(tmp_path / "lake"), "--json"])
    # Then each succeeds; the dataset without a contract gets an inferred one
    assert code == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert {
        (f["dataset"], f["execution"]["status"], f["counts"]["rows_trusted"]) for f in files
    } == {
        ("orders", "SUCCEEDED", 4),
        ("transactions", "SUCCEEDED", 3),
    }
    inferred = (tmp_path / "lake/trusted/orders/_inferred_contract.yaml").read_text(
        encoding="utf-8"
    )
    assert "primary_key:\n- order_id\nevent_date: order_date\n" in inferred


def test_a_failing_starter_is_reported_instead_of_waited_on(tmp_path: Path) -> None:
    # Given a starter that fails on every batch
    with LocalCloud(visibility_timeout=1, max_receive_count=2) as cloud:

        def broken(stage: str, event: object) -> None:
            if stage == "starter":
                raise ImportError("No module named 'numpy'")

        cloud.runtime.add_fault(broken)
        path = tmp_path / "t.csv"
        path.write_text("id\n1\n", encoding="utf-8")
        source = cloud.upload(path, "transactions")
        # When the run waits for the execution
        # Then it stops with the starter's error rather than waiting out the timeout
        try:
            cloud.wait(source, timeout=60)
        except RuntimeError as exc:
            assert str(exc) == "the starter function is failing: No module named 'numpy'"
        else:
            raise AssertionError("wait() returned for an object that never got an execution")

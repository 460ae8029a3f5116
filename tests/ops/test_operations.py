"""Operating the pipeline through the CLI, against the local cloud like against AWS."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from sluice import ops
from sluice.cli import main
from sluice.local import LocalCloud
from tests.support import eventually

HEADER = "id,name,amount,date,category\n"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    """Run the CLI; its JSON document (or text). The in-process functions' metric lines
    (single-line JSON written to stdout) may share the capture, so the document is found by
    its shape: it starts and ends with an unindented bracket line."""
    code = main(list(argv))
    out = capsys.readouterr().out
    if "--json" not in argv:
        return code, out
    lines = out.splitlines()
    for start, line in enumerate(lines):
        if line in ("[]", "{}"):
            return code, json.loads(line)
        if line in ("[", "{"):
            end = next(i for i in range(start + 1, len(lines)) if lines[i] in ("]", "}"))
            return code, json.loads("\n".join(lines[start : end + 1]))
    raise AssertionError(out)


def wait_for(cloud: LocalCloud, name: str, timeout: float = 60) -> str:
    sfn = cloud.client("stepfunctions")

    def finished() -> str | None:
        try:
            described = sfn.describe_execution(executionArn=cloud.execution_arn(name))
            status = described["status"]
        except sfn.exceptions.ExecutionDoesNotExist:
            status = "MISSING"
            described = {}
        # (moto may mark an execution SUCCEEDED a moment before it records the output)
        if status not in ("RUNNING", "MISSING") and (
            status != "SUCCEEDED" or "output" in described
        ):
            return str(status)
        return None

    status: str = eventually(finished, timeout, name)
    return status


def outputs_of(cloud: LocalCloud, dataset: str) -> dict[str, Any]:
    """Every TRUSTED and DELIVERY Parquet file of the dataset, minus run-time stamps."""
    s3 = cloud.client("s3")
    found = {}
    for bucket in ("trusted", "delivery"):
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=f"{dataset}/").get("Contents", []):
            if not item["Key"].endswith(".parquet"):
                continue
            table = pq.read_table(
                io.BytesIO(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            )
            stamps = [
                c
                for c in ("processed_timestamp", "delivery_timestamp", "execution")
                if c in table.column_names
            ]
            found[f"{bucket}/{item['Key']}"] = table.drop_columns(stamps).to_pylist()
    return found


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud() as running:
        yield running


@pytest.fixture
def endpoint(cloud: LocalCloud) -> list[str]:
    return ["--endpoint-url", cloud.endpoint_url]


def test_upload_starts_a_run_that_executions_lists(
    cloud: LocalCloud, endpoint: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file
    path = tmp_path / "sales_jan.csv"
    path.write_text(HEADER + "1,A,10,2024-01-15,Sales\n", encoding="utf-8")
    # When it is uploaded
    code, uploaded = run_cli(capsys, "upload", str(path), "--dataset", "sales", "--json", *endpoint)
    # Then it lands in RAW under the upload date and its execution has started
    assert code == 0
    (item,) = uploaded
    assert set(item) == {"file", "bucket", "key", "version_id", "execution", "started"}
    assert item["key"].startswith("sales/year=") and item["key"].endswith("/sales_jan.csv")
    assert item["started"] is True
    assert wait_for(cloud, item["execution"]) == "SUCCEEDED"
    # And `executions` lists it with its source key
    code, rows = run_cli(capsys, "executions", "list", "--dataset", "sales", "--json", *endpoint)
    assert [(r["name"], r["status"], r["source_key"], r["failed_stage"]) for r in rows] == [
        (item["execution"], "SUCCEEDED", item["key"], "")
    ]
    assert set(rows[0]) == {
        "name", "status", "start", "duration_s", "failed_stage", "source_key", "arn"
    }  # fmt: skip
    code, text = run_cli(
        capsys, "executions", "list", "--status", "FAILED", "--dataset", "sales", *endpoint
    )
    assert "(0 executions)" in text


def test_ingest_dlq_redrive_loses_nothing_when_a_send_fails(
    cloud: LocalCloud, endpoint: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three uploads whose events ended in the ingest DLQ before any execution started
    sqs = cloud.client("sqs")
    cloud.pump.stop()
    keys = []
    for n in range(3):
        path = tmp_path / f"parked_{n}.csv"
        path.write_text(HEADER + f"{n},X,1,2024-02-0{n + 1},Sales\n", encoding="utf-8")
        keys.append(cloud.upload(path, "parked").key)
    moved = 0
    while moved < 3:
        for message in sqs.receive_message(
            QueueUrl=cloud.queue_urls["ingest"], MaxNumberOfMessages=10
        ).get("Messages", []):
            if "parked" in message["Body"]:
                sqs.send_message(
                    QueueUrl=cloud.queue_urls["ingest_dlq"], MessageBody=message["Body"]
                )
                moved += 1
            sqs.delete_message(
                QueueUrl=cloud.queue_urls["ingest"], ReceiptHandle=message["ReceiptHandle"]
            )
    cloud.pump.start()
    _, letters = run_cli(capsys, "dlq", "list", "ingest", "--json", *endpoint)
    assert sorted(k for d in letters for k in d["keys"]) == sorted(keys)

    # When the redrive's second send fails
    target = ops.resolve(None, cloud.endpoint_url)
    sent: list[str] = []

    def flaky_send(body: str) -> None:
        if len(sent) == 1:
            raise OSError("connection reset")
        sqs.send_message(QueueUrl=cloud.queue_urls["ingest"], MessageBody=body)
        sent.append(body)

    results = ops.dlq_redrive(target, "ingest", send=flaky_send)
    # Then one message moved, and the failed one and the rest are still in the DLQ
    assert [(r.done, r.error) for r in results] == [
        (True, None),
        (False, "connection reset"),
        (False, None),
    ]
    assert len(ops.dlq_list(target, "ingest")) == 2
    # When it is redriven again (through the CLI)
    code, second = run_cli(capsys, "dlq", "redrive", "ingest", "--json", *endpoint)
    assert code == 0 and [r["done"] for r in second] == [True, True]

    # Then every upload ran exactly once, and both DLQs are empty
    def three_executions() -> set[str] | None:
        names = {e["name"] for e in ops.executions(target, dataset="parked")}
        return names if len(names) >= 3 else None

    names: set[str] = eventually(three_executions, 60, "three executions of the uploads", 0.1)
    assert len(names) == 3
    assert {wait_for(cloud, name) for name in names} == {"SUCCEEDED"}
    assert ops.dlq_list(target, "ingest") == []


def test_status_reports_queues_executions_and_latest_metrics(
    cloud: LocalCloud, endpoint: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file uploaded through the CLI whose execution succeeded
    path = tmp_path / "status_one.csv"
    path.write_text(HEADER + "1,A,10,2024-01-15,Sales\n", encoding="utf-8")
    _, (item,) = run_cli(capsys, "upload", str(path), "--dataset", "status", "--json", *endpoint)
    assert wait_for(cloud, item["execution"]) == "SUCCEEDED"
    # When `sluice status --json` runs
    code, state = run_cli(capsys, "status", "--json", *endpoint)
    # Then it reports the stack, the three queues, the day's executions and the latest run's stages
    assert code == 0
    assert set(state) == {"stack", "queues", "executions_24h", "latest"}
    assert state["stack"] == "Sluice-local"
    assert set(state["queues"]) == {"ingest", "ingest_dlq", "failures"}
    assert state["executions_24h"]["SUCCEEDED"] >= 1
    assert set(state["latest"]["stages"]) == {"validate", "trusted", "delivery"}
    assert state["latest"]["stages"]["trusted"]["rows_in"] >= 1


def test_errors_are_one_line(
    cloud: LocalCloud, endpoint: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack that does not exist
    # When a command asks for it, Then it exits 1 with one line saying so and what to do
    assert main(["executions", "list", "--stack", "Sluice-nope", *endpoint]) == 1
    err = capsys.readouterr().err.strip()
    where = cloud.endpoint_url
    assert err == f"sluice: stack Sluice-nope not found in {where} (deploy it, or pass --stack)"
    # And asked for an execution that does not exist, one line naming the error
    assert main(["executions", "show", "no-such-execution", *endpoint]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ExecutionDoesNotExist" in err


def test_upload_wait_exits_nonzero_unless_every_execution_succeeded(
    cloud: LocalCloud, endpoint: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a good file and an empty one
    good = tmp_path / "waited_ok.csv"
    good.write_text(HEADER + "1,A,10,2024-01-15,Sales\n", encoding="utf-8")
    bad = tmp_path / "waited_empty.csv"
    bad.write_text("", encoding="utf-8")
    # When the good one is uploaded with --wait
    code, text = run_cli(capsys, "upload", str(good), "--dataset", "waited", "--wait", *endpoint)
    # Then the command waited for its end and says it SUCCEEDED
    (ok,) = ops.executions(ops.resolve(None, cloud.endpoint_url), dataset="waited")
    assert code == 0
    assert text.splitlines()[-1] == (
        f"waited_ok.csv → s3://raw/{ok['source_key']}  execution {ok['name']}  SUCCEEDED"
    )
    # When the empty one is uploaded with --wait
    code, text = run_cli(capsys, "upload", str(bad), "--dataset", "waited", "--wait", *endpoint)
    # Then it exits 1 with one line naming the execution, the stage, the reason and the message
    failed = next(
        e
        for e in ops.executions(ops.resolve(None, cloud.endpoint_url), dataset="waited")
        if e["name"] != ok["name"]
    )
    assert code == 1
    assert text.splitlines()[-1] == (
        f"waited_empty.csv → s3://raw/{failed['source_key']}  execution {failed['name']}  "
        "FAILED at validate: EMPTY_FILE: file has no content"
    )
    # and --json, for the same bytes again (the same execution: already handled), gives the
    # same outcome, with the whole cause left to `executions show`
    code, (item,) = run_cli(
        capsys, "upload", str(bad), "--dataset", "waited", "--wait", "--json", *endpoint
    )
    assert (code, item["execution"], item["outcome"], item["failure"]) == (
        1,
        failed["name"],
        "FAILED",
        {
            "execution": failed["name"],
            "status": "FAILED",
            "stage": "validate",
            "reason": "EMPTY_FILE",
            "message": "file has no content",
        },
    )
    assert ops.show(ops.resolve(None, cloud.endpoint_url), item["execution"])["cause"] == (
        "SluiceDataError: EMPTY_FILE: file has no content"
    )
    letters = ops.dlq_list(ops.resolve(None, cloud.endpoint_url), "failures")
    assert [(i["execution"], i["stage"]) for i in letters] == [(failed["name"], "validate")]
    empty_failures(cloud)


def empty_failures(cloud: LocalCloud) -> None:
    sqs = cloud.client("sqs")
    while messages := sqs.receive_message(
        QueueUrl=cloud.queue_urls["failures"], MaxNumberOfMessages=10, VisibilityTimeout=30
    ).get("Messages", []):
        for message in messages:
            sqs.delete_message(
                QueueUrl=cloud.queue_urls["failures"], ReceiptHandle=message["ReceiptHandle"]
            )


def test_upload_refuses_two_files_that_would_be_one_object(
    cloud: LocalCloud, endpoint: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two files of the same name in different folders
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "clash.csv").write_text(
            HEADER + "1,A,10,2024-01-15,Sales\n", encoding="utf-8"
        )
    first, second = tmp_path / "a" / "clash.csv", tmp_path / "b" / "clash.csv"
    # When they are uploaded together
    code = main(["upload", str(first), str(second), "--dataset", "clash", *endpoint])
    # Then nothing is uploaded and one line says why
    (line,) = capsys.readouterr().err.splitlines()
    assert code == 2
    assert line.startswith(f"sluice: {first} and {second} would both be s3://raw/clash/year=")
    assert line.endswith(
        "/clash.csv (one file's rows would replace the other's): rename one, or run them apart"
    )
    assert cloud.client("s3").list_objects_v2(Bucket="raw", Prefix="clash/")["KeyCount"] == 0


def test_the_commands_read_noun_then_verb_and_a_failed_rerun_exits_1(
    cloud: LocalCloud, endpoint: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an execution that failed (an empty file) and its letter in the failure DLQ
    empty = tmp_path / "guess_empty.csv"
    empty.write_text("", encoding="utf-8")
    _, (item,) = run_cli(capsys, "upload", str(empty), "--dataset", "guess", "--json", *endpoint)
    name = item["execution"]
    assert wait_for(cloud, name) == "FAILED"
    # When it is looked up with `executions list` and `executions show`, by name and by ARN
    listed_code, listed = run_cli(capsys, "executions", "list", "--dataset", "guess", "--json",
                                  *endpoint)  # fmt: skip
    by_name = run_cli(capsys, "executions", "show", name, "--json", *endpoint)
    by_arn = run_cli(capsys, "executions", "show", cloud.execution_arn(name), "--json", *endpoint)
    # Then each exits 0 and finds it, failed at validate
    assert (listed_code, [(r["name"], r["status"], r["failed_stage"]) for r in listed]) == (
        0,
        [(name, "FAILED", "validate")],
    )
    for code, shown in (by_name, by_arn):
        assert (code, shown["name"], shown["status"], shown["failed_stage"]) == (
            0,
            name,
            "FAILED",
            "validate",
        )
    # When `dlq list` (the failure DLQ by default) and `dlq redrive failures --dry-run` run
    code, letters = run_cli(capsys, "dlq", "list", "--json", *endpoint)
    mine = [(d["execution"], d["stage"]) for d in letters if d["execution"] == name]
    assert (code, mine) == (0, [(name, "validate")])
    code, planned = run_cli(capsys, "dlq", "redrive", "failures", "--dry-run", "--json", *endpoint)
    # Then the dry run plans a rerun of it, exits 0 and leaves the letter where it was
    assert code == 0
    assert [(p["what"], p["done"]) for p in planned if name in p["what"]] == [
        (f"rerun {name}", False)
    ]
    _, letters = run_cli(capsys, "dlq", "list", "failures", "--json", *endpoint)
    assert [d["execution"] for d in letters if d["execution"] == name] == [name]
    # When it is rerun (the same empty file: the rerun fails again) and awaited
    code, text = run_cli(capsys, "rerun", name, "--wait", "60", *endpoint)
    # Then the command exits 1 and says the rerun FAILED again
    assert code == 1
    assert f"{name}-r1" in text and "FAILED again" in text
    empty_failures(cloud)

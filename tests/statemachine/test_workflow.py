"""The real ASL file, executed by moto's interpreter against the in-process Lambdas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sluice.errors import SluiceTransientError
from sluice.local import LocalCloud
from sluice.report import build_report, execution_history, unfinished_states

SAMPLE = (
    "id,name,amount,date,category\n1,A,150.50,2024-01-15,Sales\n2,B,75.25,2024-01-16,Marketing\n"
)


def run(cloud: LocalCloud, path: Path, dataset: str) -> tuple[dict[str, Any], Any]:
    source = cloud.upload(path, dataset)
    described = cloud.wait(source, timeout=60)
    sfn = cloud.client("stepfunctions")
    return described, build_report(described, execution_history(sfn, described["executionArn"]))


def drain(cloud: LocalCloud, queue: str) -> list[dict[str, Any]]:
    sqs = cloud.client("sqs")
    got = sqs.receive_message(QueueUrl=cloud.queue_urls[queue], MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def test_happy_path_runs_three_stages_once(cloud: LocalCloud, write_file) -> None:  # type: ignore[no-untyped-def]
    # Given a valid file in RAW
    path = write_file("happy.csv", SAMPLE)
    # When the workflow runs
    described, report = run(cloud, path, "happy")
    # Then every stage succeeded at the first attempt and the counts are in the output
    assert described["status"] == "SUCCEEDED"
    assert [(s.name, s.status, s.attempts) for s in report.stages] == [
        ("validate", "SUCCEEDED", 1),
        ("trusted", "SUCCEEDED", 1),
        ("delivery", "SUCCEEDED", 1),
    ]
    assert report.counts == {
        "rows_in": 2,
        "rows_trusted": 2,
        "rows_quarantined": 0,
        "duplicates": 0,
    }
    # and the state stayed small: pointers and counts only
    assert len(described["output"]) < 4096
    assert report.output["delivery"]["detail_files"] == 2


@pytest.mark.slow
def test_transient_error_is_retried_then_succeeds(cloud: LocalCloud, write_file) -> None:  # type: ignore[no-untyped-def]
    # Given a trusted stage that fails once with a transient error
    failures = []

    def flaky(stage: str, event: dict[str, Any]) -> None:
        if stage == "trusted" and event.get("dataset") == "flaky" and not failures:
            failures.append(stage)
            raise SluiceTransientError("S3 SlowDown")

    cloud.runtime.add_fault(flaky)
    # When the workflow runs
    described, report = run(cloud, write_file("flaky.csv", SAMPLE), "flaky")
    # Then the Retry policy ran it again and the execution succeeded
    assert described["status"] == "SUCCEEDED"
    trusted = next(s for s in report.stages if s.name == "trusted")
    assert (trusted.attempts, trusted.errors, trusted.status) == (
        2,
        ["SluiceTransientError"],
        "SUCCEEDED",
    )


def test_data_error_is_not_retried_and_reaches_the_failure_dlq(
    cloud: LocalCloud, write_file
) -> None:  # type: ignore[no-untyped-def]
    # Given a header-only file
    path = write_file("broken.csv", "id,name,amount,date,category\n")
    # When the workflow runs
    described, report = run(cloud, path, "broken")
    # Then validate failed with no retry, left its letter, ran once more (2 runs in all) and
    # the execution FAILED with its error, stopped in the Task a redrive starts again
    assert described["status"] == "FAILED"
    assert described["error"] == "SluiceDataError"
    assert [(s.name, s.status, s.attempts) for s in report.stages] == [
        ("validate", "FAILED", 2),
        ("trusted", "NOT_RUN", 0),
        ("delivery", "NOT_RUN", 0),
    ]
    history = execution_history(cloud.client("stepfunctions"), described["executionArn"])
    assert [
        e["stateEnteredEventDetails"]["name"] for e in history if e["type"] == "TaskStateEntered"
    ] == ["Validate", "ValidateFailed", "ValidateAgain"]
    assert unfinished_states(history) == [("Task", "ValidateAgain")]
    # and a dead letter names the execution, stage, error, cause and input
    letters = [m for m in drain(cloud, "failures") if m["execution_name"] == described["name"]]
    assert len(letters) == 1
    letter = letters[0]
    assert letter["stage"] == "validate"
    assert letter["error"] == "SluiceDataError"
    assert (
        json.loads(letter["cause"])["errorMessage"] == "HEADER_ONLY: file has a header but no rows"
    )
    assert letter["input"]["source"]["key"].endswith("/broken.csv")
    assert letter["execution"] == described["executionArn"]
    # and the file is quarantined with its reason, RAW untouched
    s3 = cloud.client("s3")
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket="quarantine", Prefix="broken/files/")["Contents"]
    ]
    assert [k.rsplit("/", 1)[1] for k in sorted(keys)] == ["broken.csv", "reason.json"]
    reason = json.loads(s3.get_object(Bucket="quarantine", Key=sorted(keys)[1])["Body"].read())
    assert reason["reason"] == "HEADER_ONLY"
    raw = s3.get_object(Bucket="raw", Key=letter["input"]["source"]["key"])["Body"].read()
    assert raw == path.read_bytes()


def test_unexpected_error_is_caught_into_the_dlq(cloud: LocalCloud, write_file) -> None:  # type: ignore[no-untyped-def]
    # Given a Delivery stage that raises a bug's KeyError for this dataset
    def crash(stage: str, event: dict[str, Any]) -> None:
        if stage == "delivery" and event.get("dataset") == "crash":
            raise KeyError("boom")

    cloud.runtime.add_fault(crash)
    # When a file of it runs
    described, report = run(cloud, write_file("crash.csv", SAMPLE), "crash")
    # Then the execution failed at Delivery with that error, and its one letter is in the failures
    # DLQ
    assert (described["status"], described["error"], report.failed_stage) == (
        "FAILED",
        "KeyError",
        "delivery",
    )
    letters = [m for m in drain(cloud, "failures") if m["execution_name"] == described["name"]]
    assert [(m["stage"], m["error"]) for m in letters] == [("delivery", "KeyError")]

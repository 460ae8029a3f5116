"""The AWS side of the CLI: the stack found by name, RedriveExecution where it is allowed."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from moto import mock_aws

from sluice import ops
from sluice.cli import main
from tests.support import as_aws

ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:sluice-dev-pipeline"
EXECUTION = ARN.replace(":stateMachine:", ":execution:") + ":transactions-a-0123456789abcdef"
OUTPUTS = {
    "RawBucketName": "sluice-dev-raw-abc",
    "TrustedBucketName": "sluice-dev-trusted-abc",
    "DeliveryBucketName": "sluice-dev-delivery-abc",
    "QuarantineBucketName": "sluice-dev-quarantine-abc",
    "IngestQueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/sluice-dev-ingest",
    "IngestDeadLetterQueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/sluice-dev-ingest-dlq",
    "FailureQueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/sluice-dev-failures",
    "StateMachineArn": ARN,
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in-process, as AWS: credentials and a region, no endpoint."""
    as_aws(monkeypatch, "eu-west-1")
    with mock_aws():
        yield


def deploy_stack(name: str = "Sluice-dev") -> None:
    import boto3

    template = {
        "Resources": {"Marker": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {k: {"Value": v} for k, v in OUTPUTS.items()},
    }
    with warnings.catch_warnings():
        # moto cannot build this placeholder resource type, and says so; it is only a marker.
        warnings.simplefilter("ignore", UserWarning)
        boto3.client("cloudformation").create_stack(
            StackName=name, TemplateBody=json.dumps(template)
        )


def test_the_default_stack_is_found_by_name_and_its_outputs_name_everything(aws: None) -> None:
    # Given the dev stack deployed under its default name
    deploy_stack()
    # When the target is resolved without naming a stack
    target = ops.resolve()
    # Then it is that stack, in its region, and its outputs name the buckets, queues and console
    # pages
    assert (target.stack, target.region, target.local) == ("Sluice-dev", "eu-west-1", False)
    assert target.outputs == OUTPUTS
    assert target.raw_bucket == "sluice-dev-raw-abc"
    assert target.queue_url("failures").endswith("/sluice-dev-failures")
    assert target.console_url(EXECUTION) == (
        "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1"
        f"#/v2/executions/details/{EXECUTION}"
    )


def test_a_missing_stack_is_one_line(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    # Given no stack named Sluice-prod
    # When a command asks for it, Then it exits 1 with one line saying so and what to do
    assert main(["status", "--stack", "Sluice-prod"]) == 1
    assert capsys.readouterr().err.strip() == (
        "sluice: stack Sluice-prod not found in eu-west-1 (deploy it, or pass --stack)"
    )


def test_no_credentials_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no AWS credentials anywhere: no environment, no files, no instance metadata
    for name in (
        "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # When a command needs them, Then it exits 1 with one line saying how to set them
    assert main(["executions", "list"]) == 1
    assert capsys.readouterr().err.strip().startswith("sluice: no AWS credentials: set AWS_PROFILE")


def history(*states: tuple[str, str, bool]) -> dict[str, Any]:
    """An execution history: (state type, name, exited) in order, after ExecutionStarted."""
    at = datetime.now(UTC)
    events: list[dict[str, Any]] = [{"id": 1, "timestamp": at, "type": "ExecutionStarted"}]
    for kind, name, exited in states:
        details = {"name": name, "input": "{}"}
        events.append(
            {
                "id": len(events) + 1,
                "timestamp": at,
                "type": f"{kind}StateEntered",
                "stateEnteredEventDetails": details,
            }
        )
        if exited:
            events.append(
                {
                    "id": len(events) + 1,
                    "timestamp": at,
                    "type": f"{kind}StateExited",
                    "stateExitedEventDetails": {"name": name, "output": "{}"},
                }
            )
    events.append({"id": len(events) + 1, "timestamp": at, "type": "ExecutionFailed"})
    return {"events": events}


def failed_summary(started: datetime) -> dict[str, Any]:
    return {
        "executionArn": EXECUTION,
        "stateMachineArn": ARN,
        "name": "transactions-a-0123456789abcdef",
        "status": "FAILED",
        "startDate": started,
    }


BY_ARN = {"executionArn": EXECUTION}


def failed_execution(
    age: timedelta, described: dict[str, Any], stopped: dict[str, Any] | None = None
) -> tuple[ops.Target, Stubber, dict[str, Any]]:
    """The deployed stack's target, and a Stubber of its Step Functions client that lists one
    execution that failed `age` ago, describes it with `described` and, given `stopped`,
    answers with that history."""
    deploy_stack()
    target = ops.resolve()
    summary = failed_summary(datetime.now(UTC) - age)
    stub = Stubber(target.client("stepfunctions"))
    stub.add_response("list_executions", {"executions": [summary]}, {"stateMachineArn": ARN})
    stub.add_response("describe_execution", {**summary, **described}, BY_ARN)
    if stopped is not None:
        stub.add_response("get_execution_history", stopped, BY_ARN)
    return target, stub, summary


def test_a_redrivable_failure_is_redriven_and_awaited_until_the_redrive_finishes(
    aws: None,
) -> None:
    # Given the deployed stack and a failed, redrivable execution stopped in TrustedAgain,
    # the Task a redrive starts again (moto lacks redrive: stubbed)
    stopped = history(
        ("Task", "Validate", True),
        ("Task", "Trusted", True),
        ("Task", "TrustedFailed", True),
        ("Task", "TrustedAgain", False),
    )
    target, stub, summary = failed_execution(
        timedelta(hours=2),
        {"input": "{}", "redriveStatus": "REDRIVABLE", "redriveCount": 0},
        stopped,
    )
    with stub:
        stub.add_response("redrive_execution", {"redriveDate": datetime.now(UTC)}, BY_ARN)
        # the redrive has not shown yet, then runs, then succeeds
        stub.add_response("describe_execution", {**summary, "input": "{}"}, BY_ARN)
        stub.add_response(
            "describe_execution",
            {**summary, "status": "RUNNING", "input": "{}", "redriveCount": 1},
            BY_ARN,
        )
        stub.add_response(
            "describe_execution",
            {**summary, "status": "SUCCEEDED", "input": "{}", "output": "{}", "redriveCount": 1},
            BY_ARN,
        )
        # When failed executions are rerun and awaited
        plans = ops.rerun(target, ops.plan_rerun(target, [], failed=True))
        plans = ops.await_reruns(target, plans, 60, poll_seconds=0)
        stub.assert_no_pending_responses()
    # Then RedriveExecution was called for it, not a new execution, and its outcome is the
    # redrive's, not the failed attempt's status it still showed at first
    assert [(p.execution, p.action, p.done, p.new_execution, p.outcome) for p in plans] == [
        ("transactions-a-0123456789abcdef", "redrive", True, None, "SUCCEEDED")
    ]
    assert plans[0].reason == "redrivable: only the failed stage reruns"


def test_an_execution_stopped_at_a_fail_state_gets_a_new_execution(aws: None) -> None:
    # Given a redrivable execution of the earlier definition, stopped in its Fail state
    stopped = history(
        ("Task", "Trusted", True),
        ("Pass", "TrustedFailed", True),
        ("Task", "NotifyFailure", True),
        ("Fail", "Failed", False),
    )
    target, stub, _ = failed_execution(
        timedelta(hours=2), {"input": "{}", "redriveStatus": "REDRIVABLE"}, stopped
    )
    with stub:
        # When the rerun is planned
        plans = ops.plan_rerun(target, [], failed=True)
        stub.assert_no_pending_responses()
    # Then it is a new execution: a redrive would re-enter the Fail state and fail again
    assert [(p.action, p.new_execution, p.reason) for p in plans] == [
        (
            "new",
            "transactions-a-0123456789abcdef-r1",
            "stopped at Fail state Failed: a redrive would fail again",
        )
    ]


def test_an_old_failure_gets_a_new_execution_from_its_input(aws: None) -> None:
    # Given the deployed stack, and a failed execution 20 days old that can no longer be redriven
    original = '{"execution": "transactions-a-0123456789abcdef"}'
    target, stub, summary = failed_execution(
        timedelta(days=20),
        {
            "input": original,
            "redriveStatus": "NOT_REDRIVABLE",
            "redriveStatusReason": "Execution is older than 14 days",
        },
    )
    with stub:
        stub.add_response("describe_execution", {**summary, "input": original}, BY_ARN)
        stub.add_response(
            "start_execution",
            {"executionArn": EXECUTION + "-r1", "startDate": datetime.now(UTC)},
            {
                "stateMachineArn": ARN,
                "name": "transactions-a-0123456789abcdef-r1",
                "input": original,
            },
        )
        # When the failed executions of the last 30 days are rerun
        plans = ops.rerun(target, ops.plan_rerun(target, [], failed=True, since="30d"))
        # Then a new execution started from its original input, saying why
        stub.assert_no_pending_responses()
    assert [(p.action, p.new_execution, p.reason, p.done) for p in plans] == [
        ("new", "transactions-a-0123456789abcdef-r1", "Execution is older than 14 days", True)
    ]

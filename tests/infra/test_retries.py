"""Every retry is where `sluice.retries` lists it: the workflow's Retry blocks, botocore's, a
summary's compare-and-swap, the ingest queue's redrive, and Lambda's own (none)."""

from __future__ import annotations

import inspect
import json
from typing import Any

from sluice import aws, retries
from sluice.config import ASL_PATH, PROJECT_ROOT
from sluice.edges import summary
from sluice.local.cloud import LocalCloud
from sluice.stages import delivery
from sluice.tables import commit
from tests.infra.synth import Synth

ARCHITECTURE = PROJECT_ROOT / "docs" / "architecture.md"


def _tasks() -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = json.loads(ASL_PATH.read_text(encoding="utf-8"))["States"]
    return {name: state for name, state in states.items() if state["Type"] == "Task"}


def test_every_task_of_the_workflow_retries_exactly_as_listed() -> None:
    # Given the Task states of statemachine/pipeline.asl.json
    tasks = _tasks()
    # Then they are the stage tasks and the dead-letter tasks the list names
    assert set(tasks) == {*retries.STAGE_TASKS, *retries.DEAD_LETTER_TASKS}
    # And each one's Retry is the list's, entry for entry and in order
    for name, state in tasks.items():
        assert state["Retry"] == retries.workflow_retry(name), name


def test_the_workflow_policies_are_the_ones_step_functions_sees() -> None:
    # Given the three workflow policies
    # Then they are written in the ASL as these entries
    assert retries.LAMBDA_SERVICE_ERRORS.asl() == {
        "ErrorEquals": [
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
            "Lambda.ClientExecutionTimeoutException",
            "Lambda.TooManyRequestsException",
        ],
        "IntervalSeconds": 2,
        "MaxAttempts": 6,
        "BackoffRate": 2,
        "JitterStrategy": "FULL",
    }
    assert retries.TRANSIENT.asl() == {
        "ErrorEquals": ["SluiceTransientError"],
        "IntervalSeconds": 1,
        "MaxAttempts": 3,
        "BackoffRate": 2,
        "JitterStrategy": "FULL",
    }
    assert retries.DEAD_LETTER.asl() == {
        "ErrorEquals": ["States.ALL"],
        "IntervalSeconds": 1,
        "MaxAttempts": 3,
        "BackoffRate": 2,
    }


def test_the_aws_clients_retry_as_listed() -> None:
    # Given the botocore Config every client is made with
    # Then it retries in standard mode, five attempts in all
    assert aws._CONFIG.retries == {"mode": "standard", "max_attempts": 5}
    assert retries.BOTOCORE.attempts == 5


def test_a_tables_commit_retries_as_listed() -> None:
    # Given the committer's default policy and the table properties it creates tables with
    policy = inspect.signature(commit.commit_contributions).parameters["policy"].default
    # Then it is the list's, and pyiceberg's own retry is off underneath it
    assert policy is retries.TABLE_COMMIT
    assert commit.TABLE_PROPERTIES["commit.retry.num-retries"] == "0"
    assert retries.TABLE_COMMIT.errors == ("CommitFailedException", "ValidationException")


def test_a_summarys_compare_and_swap_retries_as_listed() -> None:
    # Given the summary edge's attempts and the stage's backoff
    backoff = inspect.signature(delivery.backoff).parameters
    # Then they are the list's: 10 attempts, 50 ms doubling up to 2 s
    assert summary.SUMMARY_ATTEMPTS == retries.SUMMARY_CAS.attempts == 10
    assert backoff["base"].default == retries.SUMMARY_CAS.interval_seconds == 0.05
    assert backoff["cap"].default == retries.SUMMARY_CAS.max_interval_seconds == 2


def test_the_ingest_queue_redrives_as_listed(dev: Synth) -> None:
    # Given the ingest queue, the starter's timeout and the local cloud's defaults
    queue = dev.properties(dev.queue_id(dev.names.ingest_queue))
    starter_timeout = dev.properties(dev.function_id("starter"))["Timeout"]
    local = inspect.signature(LocalCloud).parameters
    # Then both redrive after the listed receives, the stack's after six starter timeouts
    assert queue["RedrivePolicy"]["maxReceiveCount"] == retries.MAX_RECEIVE_COUNT == 5
    assert queue["VisibilityTimeout"] == (
        retries.VISIBILITY_TIMEOUT_FACTOR * starter_timeout
        + dev.settings.max_batching_window_seconds
    )
    assert local["max_receive_count"].default == retries.MAX_RECEIVE_COUNT
    assert local["visibility_timeout"].default == retries.LOCAL_VISIBILITY_TIMEOUT_SECONDS


def test_lambda_retries_nothing_of_its_own(dev: Synth, prod: Synth) -> None:
    # Given both stacks
    for stack in (dev, prod):
        # Then no function has an asynchronous-invoke config, nor its event source a retry count
        configs = stack.resources("AWS::Lambda::EventInvokeConfig")
        assert len(configs) == retries.ASYNC_INVOKE_CONFIGS
        for mapping in stack.resources("AWS::Lambda::EventSourceMapping").values():
            assert "MaximumRetryAttempts" not in mapping["Properties"]


def test_the_docs_point_to_the_one_list_and_state_its_numbers() -> None:
    # Given docs/architecture.md
    text = ARCHITECTURE.read_text(encoding="utf-8")
    (row,) = [line for line in text.splitlines() if line.startswith("| where retries are set |")]
    # Then its map sends "where retries are set" to sluice/retries.py
    assert "`sluice/retries.py`" in row
    # And its Errors section gives the workflow's intervals, rates and attempts
    for policy in (retries.TRANSIENT, retries.LAMBDA_SERVICE_ERRORS):
        assert (
            f"retried: {policy.interval_seconds:g} s, ×{policy.backoff:g}, "
            f"{policy.attempts} attempts, full jitter"
        ) in text.replace("Retried:", "retried:")

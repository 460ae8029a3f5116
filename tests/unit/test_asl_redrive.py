"""The definition's graph: whichever stage fails, the execution leaves a dead letter and stops
where a redrive re-runs that stage and nothing that had succeeded (see tests/asl_model.py for
what the AWS documentation says a redrive does with each kind of state)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from sluice import retries
from sluice.config import ASL_PATH, WORKFLOW_STAGES
from sluice.report import STAGE_STATES
from tests.asl_model import CONTEXT, ERROR, Model, stage_of

INPUT = {"execution": "execution", "dataset": "d", "source": {"key": "k"}}
# Every stage Task's retries (their values are pinned once, in tests/infra/test_retries.py).
LAMBDA_RETRY = [retries.LAMBDA_SERVICE_ERRORS.asl(), retries.TRANSIENT.asl()]


def definition() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    return document


def letter(stage: str) -> dict[str, Any]:
    return {
        "execution": CONTEXT["$$.Execution.Id"],
        "execution_name": CONTEXT["$$.Execution.Name"],
        "stage": stage,
        "error": ERROR["Error"],
        "cause": ERROR["Cause"],
        "input": CONTEXT["$$.Execution.Input"],
    }


def clean_output() -> dict[str, Any]:
    return {**INPUT, **{stage: {"ran": stage} for stage in WORKFLOW_STAGES}}


def test_without_a_failure_each_stage_runs_once_and_no_letter_is_sent() -> None:
    # Given the workflow's definition and no stage that fails
    # When an execution runs
    run = Model(definition(), failing=()).start(INPUT)
    # Then each stage ran once, it stopped nowhere, no letter was sent, and its output is a clean
    # run's
    assert (run.stop, run.stages_run, run.letters) == (None, list(WORKFLOW_STAGES), [])
    assert run.output == clean_output()


@pytest.mark.parametrize("stage", WORKFLOW_STAGES)
def test_a_failed_stage_leaves_its_letter_and_stops_where_a_redrive_reruns_it(stage: str) -> None:
    before = list(WORKFLOW_STAGES[: WORKFLOW_STAGES.index(stage)])
    after = list(WORKFLOW_STAGES[WORKFLOW_STAGES.index(stage) :])
    # Given a stage whose Lambda fails however often it is retried
    failed = Model(definition(), failing={stage}).start(INPUT)

    # Then the execution failed with the stage's error, after one letter naming the stage
    assert failed.stop is not None
    assert failed.stop.error == ERROR["Error"]
    assert failed.letters == [letter(stage)]
    # and it stopped in a Task state that runs the stage (a redrive "Schedules and starts
    # the Task state again"), not in a Fail state (which it "Reenters ... and fails again")
    states = definition()["States"]
    assert [name for name, _ in failed.stop.states] == [f"{stage.capitalize()}Again"]
    assert stage_of(states[failed.stop.innermost]) == stage
    assert failed.stages_run == [*before, stage, stage]

    # When the cause is fixed and the execution is redriven
    redriven = Model(definition(), failing=()).redrive(failed.stop)
    # Then the failed stage and the ones after it run, none that had succeeded, and the
    # state passed on is a clean run's
    assert (redriven.stop, redriven.stages_run, redriven.letters) == (None, after, [])
    assert redriven.output == clean_output()

    # When it is redriven with the cause not fixed
    again = Model(definition(), failing={stage}).redrive(failed.stop)
    # Then it stops at the same state, having re-run the stage, and sends no second letter
    assert again.stop is not None
    assert (again.stop.innermost, again.stages_run, again.letters) == (
        failed.stop.innermost,
        [stage],
        [],
    )


def test_every_stage_task_keeps_its_retry_policy_and_the_report_knows_it() -> None:
    # Given the workflow's definition
    states = definition()["States"]
    # When its stage tasks are found
    tasks = {name: stage_of(state) for name, state in states.items() if stage_of(state)}
    # Then each stage has its run and its run after the letter, with the same Retry policy
    assert tasks == STAGE_STATES
    assert all(states[name]["Retry"] == LAMBDA_RETRY for name in tasks)
    # and only the first run catches: the one after the letter is where a failure stops
    assert {name for name in tasks if "Catch" in states[name]} == {
        stage.capitalize() for stage in WORKFLOW_STAGES
    }


# --- the shapes this definition replaces, as negative controls of the model -------------------


def caught_into_a_fail_state() -> dict[str, Any]:
    """The previous definition's shape: Task → Catch → <Stage>Failed → NotifyFailure → Fail."""
    states: dict[str, Any] = {}
    for i, stage in enumerate(WORKFLOW_STAGES):
        title = stage.capitalize()
        states[title] = {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": f"${{{title}FunctionArn}}", "Payload.$": "$"},
            "OutputPath": "$.Payload",
            "Catch": [
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": f"{title}Failed"}
            ],
            **(
                {"Next": WORKFLOW_STAGES[i + 1].capitalize()}
                if i + 1 < len(WORKFLOW_STAGES)
                else {"End": True}
            ),
        }
        states[f"{title}Failed"] = {
            "Type": "Pass",
            "Result": stage,
            "ResultPath": "$.failed_stage",
            "Next": "NotifyFailure",
        }
    states["NotifyFailure"] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage",
        "Parameters": {
            "MessageBody": {
                "execution.$": "$$.Execution.Id",
                "execution_name.$": "$$.Execution.Name",
                "stage.$": "$.failed_stage",
                "error.$": "$.error.Error",
                "cause.$": "$.error.Cause",
                "input.$": "$$.Execution.Input",
            }
        },
        "ResultPath": None,
        "Next": "Failed",
    }
    states["Failed"] = {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}
    return {"StartAt": "Validate", "States": states}


def each_stage_in_a_parallel() -> dict[str, Any]:
    """Each stage as a one-branch Parallel holding Task → Catch → Notify → Fail."""
    old = caught_into_a_fail_state()["States"]
    states: dict[str, Any] = {}
    for i, stage in enumerate(WORKFLOW_STAGES):
        title = stage.capitalize()
        task = {k: v for k, v in old[title].items() if k not in ("Next", "End")}
        task["Catch"][0]["Next"] = "Notify"
        notify = copy.deepcopy(old["NotifyFailure"])
        notify["Parameters"]["MessageBody"]["stage"] = stage
        del notify["Parameters"]["MessageBody"]["stage.$"]
        branch = {
            "StartAt": title,
            "States": {
                title: {**task, "End": True},
                "Notify": {**notify, "Next": "Fail"},
                "Fail": old["Failed"],
            },
        }
        states[f"{title}Stage"] = {
            "Type": "Parallel",
            "Branches": [branch],
            "ResultSelector": {"state.$": "$[0]"},
            "OutputPath": "$.state",
            **(
                {"Next": f"{WORKFLOW_STAGES[i + 1].capitalize()}Stage"}
                if i + 1 < len(WORKFLOW_STAGES)
                else {"End": True}
            ),
        }
    return {"StartAt": "ValidateStage", "States": states}


@pytest.mark.parametrize(
    ("shape", "stopped_at"),
    [(caught_into_a_fail_state, ["Failed"]), (each_stage_in_a_parallel, ["TrustedStage", "Fail"])],
    ids=["caught-into-fail", "parallel-with-fail-inside"],
)
def test_a_failure_caught_into_a_fail_state_is_not_rerun_by_a_redrive(
    shape: Any, stopped_at: list[str]
) -> None:
    # Given a shape that catches the stage's error, sends the letter, then fails in a Fail state
    failed = Model(shape(), failing={"trusted"}).start(INPUT)
    assert failed.stop is not None
    assert [name for name, _ in failed.stop.states] == stopped_at
    assert [m["stage"] for m in failed.letters] == ["trusted"]
    # When it is redriven after the cause is fixed
    redriven = Model(shape(), failing=()).redrive(failed.stop)
    # Then the Fail state is re-entered and fails again; the failed stage never runs
    assert redriven.stop is not None
    assert (redriven.stop.innermost, redriven.stages_run) == (stopped_at[-1], [])

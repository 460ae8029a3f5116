"""What happened in an execution, read from its history as the Step Functions console shows it."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sluice.config import DATA_ERROR, FAILED, RUNNING, SUCCEEDED, WORKFLOW_STAGES
from sluice.state import (
    ExecutionState,
    RowCounts,
    StateError,
    TrustedSection,
    ValidateSection,
    is_caught_error,
    metrics_of,
)

# The Task states that run each stage (statemachine/pipeline.asl.json): its run, and its run
# once more after the dead letter, where a failed execution stops and a redrive resumes.
STAGE_STATES = {
    f"{stage.capitalize()}{suffix}": stage for stage in WORKFLOW_STAGES for suffix in ("", "Again")
}


@dataclass
class StageReport:
    name: str
    status: str = "NOT_RUN"
    duration_ms: int = 0
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)
    entered: datetime | None = None
    exited: datetime | None = None


@dataclass
class ExecutionReport:
    name: str
    status: str
    stages: list[StageReport]
    counts: dict[str, int]
    error: str = ""
    cause: str = ""
    output: dict[str, Any] = field(default_factory=dict)
    # The output as the stages' typed state (None where it is not one).
    state: ExecutionState | None = None

    @property
    def failed_stage(self) -> str:
        return next((s.name for s in self.stages if s.status == FAILED), "")

    @property
    def failure(self) -> Failure | None:
        """Why the execution did not succeed, in a few words (None when it did or still runs)."""
        if self.status in (SUCCEEDED, RUNNING):
            return None
        return failure_of(self.name, self.status, self.failed_stage, self.error, self.cause)

    def to_dict(self) -> dict[str, Any]:
        return {
            "execution": {"name": self.name, "status": self.status},
            "stages": [
                {
                    k: v
                    for k, v in asdict(s).items()
                    if k not in ("errors", "causes", "entered", "exited")
                }
                for s in self.stages
            ],
            "counts": self.counts,
            **({"error": {"error": self.error, "cause": self.cause}} if self.error else {}),
            **({"failure": failure.to_dict()} if (failure := self.failure) else {}),
        }


def _ms(start: datetime, end: datetime) -> int:
    return round((end - start).total_seconds() * 1000)


def build_report(description: dict[str, Any], history: list[dict[str, Any]]) -> ExecutionReport:
    stages = {name: StageReport(name) for name in WORKFLOW_STAGES}
    current: str | None = None
    entered: datetime | None = None
    last_output: dict[str, Any] = {}
    for event in history:
        kind = event["type"]
        if kind == "TaskStateEntered":
            current = STAGE_STATES.get(event["stateEnteredEventDetails"]["name"])
            entered = event["timestamp"]
            if current:
                stages[current].status = RUNNING
                stages[current].entered = stages[current].entered or entered
        elif current is None:
            continue
        elif kind == "TaskScheduled":
            stages[current].attempts += 1
        elif kind in ("TaskFailed", "TaskTimedOut"):
            details = (
                event.get("taskFailedEventDetails") or event.get("taskTimedOutEventDetails") or {}
            )
            stages[current].errors.append(str(details.get("error", kind)))
            stages[current].causes.append(error_message(str(details.get("cause", ""))))
            stages[current].status = FAILED
        elif kind == "TaskSucceeded":
            stages[current].status = SUCCEEDED
        elif kind == "TaskStateExited":
            if entered is not None:
                stages[current].duration_ms += _ms(entered, event["timestamp"])
            stages[current].exited = event["timestamp"]
            with contextlib.suppress(json.JSONDecodeError):
                last_output = json.loads(event["stateExitedEventDetails"].get("output") or "{}")
            current = None
    raw = json.loads(description.get("output") or "null") or last_output
    state = _state(raw)
    counts = RowCounts()
    if state is not None and isinstance(state.trusted, TrustedSection):
        counts = state.trusted.counts
    elif state is not None and isinstance(state.validate, ValidateSection):
        counts = RowCounts(rows_in=state.validate.rows_in)
    return ExecutionReport(
        name=str(description["name"]),
        status=str(description["status"]),
        stages=list(stages.values()),
        counts=counts.to_dict(),
        error=str(description.get("error") or ""),
        cause=str(description.get("cause") or ""),
        output=_results(raw),
        state=state,
    )


def _state(output: object) -> ExecutionState | None:
    """The execution's last state, typed; None for one that is not a Sluice state."""
    try:
        return ExecutionState.from_dict(output, lenient=True)
    except StateError:
        return None


def stage_metrics(report: ExecutionReport, stage: str) -> dict[str, int | float]:
    """The numbers (counts, bytes, durations) a stage put in the execution's state."""
    return {} if report.state is None else metrics_of(report.state.section(stage))


def _results(state: Any) -> dict[str, Any]:
    """The state without the stages' caught errors (a Catch puts `{Error, Cause}` in the section
    the stage would have written)."""
    if not isinstance(state, dict):
        return {}
    return {k: v for k, v in state.items() if not (k in WORKFLOW_STAGES and is_caught_error(v))}


def unfinished_states(history: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(type, name) of each state the execution entered and never left since it last started
    or was redriven: where it stopped, the states a redrive takes up again."""
    since = max((i for i, e in enumerate(history) if e["type"] == "ExecutionRedriven"), default=-1)
    open_states: dict[str, str] = {}
    for event in history[since + 1 :]:
        kind = str(event["type"])
        if kind.endswith("StateEntered"):
            name = str(event["stateEnteredEventDetails"]["name"])
            open_states[name] = kind.removesuffix("StateEntered")
        elif kind.endswith("StateExited"):
            open_states.pop(str(event["stateExitedEventDetails"]["name"]), None)
    return [(kind, name) for name, kind in open_states.items()]


# A failure line carries at most this much of the error's message; the whole cause stays in the
# execution's history (`sluice executions show`, `--json`).
FAILURE_MESSAGE_CHARS = 300
# How a SluiceDataError's message starts: its reason code (`EMPTY_FILE: file has no content`).
_REASON = re.compile(r"([A-Z][A-Z0-9_]+): (.*)", re.DOTALL)


@dataclass(frozen=True)
class Failure:
    """A failed execution in one line: which, where, the reason code and the message."""

    execution: str
    status: str
    stage: str
    reason: str
    message: str

    def summary(self) -> str:
        return f"{self.status} at {self.stage or '?'}: {self.reason}: {self.message}"

    def line(self) -> str:
        return f"{self.execution} {self.summary()}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def failure_of(execution: str, status: str, stage: str, error: str, cause: str) -> Failure:
    """The reason code of a `SluiceDataError` (the start of its message), else the error's own
    name (`Runtime.OutOfMemory`, `States.Timeout`); the message on one line, cut short."""
    error_type, message = error or status, cause
    with contextlib.suppress(json.JSONDecodeError):
        document = json.loads(cause)
        if isinstance(document, dict) and "errorMessage" in document:
            error_type = str(document.get("errorType") or error_type)
            message = str(document["errorMessage"])
    reason = error_type
    matched = _REASON.fullmatch(message)
    if matched and error_type == DATA_ERROR:
        reason, message = matched.group(1), matched.group(2)
    message = " ".join(message.split()) or "-"
    if len(message) > FAILURE_MESSAGE_CHARS:
        message = message[: FAILURE_MESSAGE_CHARS - 1] + "…"
    return Failure(execution, status, stage, reason, message)


def error_message(cause: str) -> str:
    """The readable part of a Lambda error cause (`errorType: errorMessage`)."""
    try:
        document = json.loads(cause)
    except json.JSONDecodeError:
        return cause
    if isinstance(document, dict) and "errorMessage" in document:
        return f"{document.get('errorType', 'Error')}: {document['errorMessage']}"
    return cause


def execution_history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events.extend(page["events"])
    return events

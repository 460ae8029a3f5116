"""A model of how Step Functions runs and redrives a definition, for checks on its graph.

It follows control flow and the few data paths the definition reads, not the Lambdas' work: a
stage's Lambda either fails (its fault persists through every Retry) or returns the state with
its own section added, as `sluice.handlers.run_stage` does.

Redrive follows https://docs.aws.amazon.com/step-functions/latest/dg/redrive-executions.html:
it "continues the failed execution from the unsuccessful step and uses the same input", the
state that was entered and never exited (redrive-map-run.html: "no `<stateType>Exited` event
corresponding to the `<stateType>Entered` event"). From its table "Redrive behavior of
individual states":

- Task: "Schedules and starts the Task state again."
- Fail: "Reenters the Fail state and fails again."
- Pass: "If a preceding step fails ..., the Pass state is exited and isn't executed on redrive."
- Parallel: "Reschedules and redrives only those branches that failed or aborted", each from
  "the step that failed" inside it (the page's console example).

So resuming at the unfinished state, with the input it had, is the whole of a redrive here.
Choice, Wait and Map states are not modelled (the definition has none)."""

from __future__ import annotations

import copy
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

LAMBDA = "arn:aws:states:::lambda:invoke"
SQS = "arn:aws:states:::sqs:sendMessage"
# Stand-ins for what the context object holds.
CONTEXT = {
    "$$.Execution.Id": "arn:execution",
    "$$.Execution.Name": "execution",
    "$$.Execution.Input": {"source": "input"},
}
ERROR = {"Error": "StageError", "Cause": "the stage's cause"}
_PLACEHOLDER = re.compile(r"^\$\{([A-Z][a-z]+)FunctionArn\}$")


def stage_of(state: dict[str, Any]) -> str | None:
    """The stage a Task state runs: the `${<Stage>FunctionArn}` its Lambda invoke names."""
    if state.get("Type") != "Task" or state.get("Resource") != LAMBDA:
        return None
    match = _PLACEHOLDER.match(str(state.get("Parameters", {}).get("FunctionName", "")))
    return match.group(1).lower() if match else None


@dataclass
class Stop:
    """Where a failed execution stopped: the unfinished states from the outside in, each with
    the input it had."""

    states: list[tuple[str, dict[str, Any]]]
    error: str

    @property
    def innermost(self) -> str:
        return self.states[-1][0]


@dataclass
class Run:
    stages_run: list[str] = field(default_factory=list)  # each Lambda run, in order
    letters: list[dict[str, Any]] = field(default_factory=list)
    stop: Stop | None = None  # None: the execution succeeded
    output: dict[str, Any] | None = None


class _Failure(Exception):
    def __init__(self, error: dict[str, str], inner: list[tuple[str, dict[str, Any]]]) -> None:
        super().__init__(error["Error"])
        self.error = error
        self.inner = inner


def resolve(path: str, value: Any) -> Any:
    """A reference path: `$`, `$.a.b`, `$[0]`, `$[0].a`; context paths from CONTEXT."""
    if path.startswith("$$."):
        return CONTEXT[path]
    for part in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", path.removeprefix("$")):
        key, index = part
        value = value[key] if key else value[int(index)]
    return value


def _put(data: dict[str, Any], path: str | None, result: Any) -> dict[str, Any]:
    """Apply a ResultPath."""
    if path is None:
        return data
    if path == "$":
        return dict(result)
    keys = path.removeprefix("$.").split(".")
    merged = copy.deepcopy(data)
    target = merged
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = result
    return merged


def _template(template: Any, data: dict[str, Any]) -> Any:
    """Parameters, MessageBody or ResultSelector: `key.$` fields are paths."""
    if not isinstance(template, dict):
        return template
    filled = {}
    for key, value in template.items():
        if key.endswith(".$"):
            filled[key[:-2]] = resolve(str(value), data)
        else:
            filled[key] = _template(value, data)
    return filled


class Model:
    def __init__(self, definition: dict[str, Any], failing: Collection[str]) -> None:
        self.definition = definition
        self.failing = set(failing)
        self.run = Run()

    def start(self, data: dict[str, Any]) -> Run:
        return self._top(lambda: self._program(self.definition, data, []))

    def redrive(self, stop: Stop) -> Run:
        return self._top(lambda: self._program(self.definition, {}, stop.states))

    def _top(self, body: Any) -> Run:
        try:
            self.run.output = body()
        except _Failure as failure:
            self.run.stop = Stop(failure.inner, failure.error["Error"])
        return self.run

    def _program(
        self,
        program: dict[str, Any],
        data: dict[str, Any],
        resume: list[tuple[str, dict[str, Any]]],
    ) -> dict[str, Any]:
        # A redrive takes each unfinished state up again with the input it had.
        name = resume[0][0] if resume else str(program["StartAt"])
        if resume:
            data = copy.deepcopy(resume[0][1])
        inner = resume[1:]
        while True:
            state = program["States"][name]
            try:
                data = self._state(state, data, inner)
            except _Failure as failure:
                catch = next(
                    (
                        c
                        for c in state.get("Catch", [])
                        if "States.ALL" in c["ErrorEquals"]
                        or failure.error["Error"] in c["ErrorEquals"]
                    ),
                    None,
                )
                if catch is None:
                    raise _Failure(failure.error, [(name, data), *failure.inner]) from None
                data = _put(data, catch.get("ResultPath", "$"), failure.error)
                name, inner = str(catch["Next"]), []
                continue
            inner = []
            if state.get("End") or state["Type"] == "Succeed":
                return data
            name = str(state["Next"])

    def _state(
        self, state: dict[str, Any], data: dict[str, Any], resume: list[tuple[str, Any]]
    ) -> dict[str, Any]:
        kind = state["Type"]
        if kind == "Fail":
            error = state.get("Error") or resolve(state.get("ErrorPath", "$.Error"), data)
            cause = state.get("Cause") or resolve(state.get("CausePath", "$.Cause"), data)
            raise _Failure({"Error": str(error), "Cause": str(cause)}, [])
        if kind == "Pass":
            return self._output(state, data, state.get("Result", data))
        if kind == "Task" and state["Resource"] == LAMBDA:
            stage = stage_of(state)
            assert stage is not None, state
            self.run.stages_run.append(stage)
            if stage in self.failing:
                raise _Failure(dict(ERROR), [])
            payload = resolve(state["Parameters"]["Payload.$"], data)
            return self._output(state, data, {"Payload": {**payload, stage: {"ran": stage}}})
        if kind == "Task" and state["Resource"] == SQS:
            self.run.letters.append(_template(state["Parameters"]["MessageBody"], data))
            return self._output(state, data, {"MessageId": "m"})
        if kind == "Parallel":
            outputs = []
            for branch in state["Branches"]:
                names = set(branch["States"])
                if resume and resume[0][0] not in names:
                    outputs.append(copy.deepcopy(data))  # succeeded: not redriven
                    continue
                outputs.append(self._program(branch, copy.deepcopy(data), resume))
            return self._output(state, data, outputs)
        raise NotImplementedError(kind)

    @staticmethod
    def _output(state: dict[str, Any], data: dict[str, Any], result: Any) -> dict[str, Any]:
        if "ResultSelector" in state:
            result = _template(state["ResultSelector"], result)
        merged = _put(data, state.get("ResultPath", "$"), result)
        output = resolve(state.get("OutputPath", "$"), merged)
        assert isinstance(output, dict), output
        return output

"""Rerunning failed executions: a redrive where Step Functions allows one, else a new execution
with the same input (`<name>-r<N>`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sluice.config import RUNNING, SUCCEEDED
from sluice.ops.executions import (
    RERUNNABLE,
    TERMINAL,
    aware,
    confirmed_status,
    describe,
    list_executions,
    parse_since,
)
from sluice.ops.target import OpsError, Target, aws_errors
from sluice.report import execution_history, unfinished_states

# Step Functions keeps an execution redrivable for 14 days.
REDRIVE_WINDOW = timedelta(days=14)
# How long `sluice rerun` and `sluice dlq redrive` wait for reruns to finish, by default.
DEFAULT_RERUN_WAIT = 900.0
_RERUN_SUFFIX = re.compile(r"-r(\d+)$")


def base_name(name: str) -> str:
    return _RERUN_SUFFIX.sub("", name)


def _rerun_name(base: int | str, n: int) -> str:
    base = str(base)
    suffix = f"-r{n}"
    if len(base) + len(suffix) > 80:
        # Keep the dataset, the start of the stem and the identifying hash.
        base = base[: 80 - len(suffix) - 17] + "-" + base[-16:]
    return base + suffix


@dataclass
class Rerun:
    execution: str
    arn: str
    status: str
    action: str  # redrive | new | skip
    new_execution: str | None = None
    reason: str = ""
    done: bool = False  # the redrive or the new execution was started
    error: str | None = None
    # The rerun's status when waiting ended: SUCCEEDED, FAILED, TIMED_OUT, ABORTED, or RUNNING
    # when it had not finished within the wait. None while not started or not awaited.
    outcome: str | None = None
    # A redriven execution keeps its ARN and its old status until the redrive shows: its
    # redrive count before the redrive tells the two apart.
    redrive_count: int = field(default=0, repr=False)
    # The execution of the same family that already SUCCEEDED, when that is why it is skipped.
    rerun_by: str | None = None

    @property
    def rerun_arn(self) -> str:
        """The execution that carries the rerun: the same one when redriven."""
        if self.action == "new" and self.new_execution:
            return self.arn.rsplit(":", 1)[0] + f":{self.new_execution}"
        return self.arn

    @property
    def succeeded(self) -> bool:
        return self.outcome == SUCCEEDED

    @property
    def settled(self) -> bool:
        """Nothing is left to rerun: this rerun, the execution itself or an earlier rerun of it
        SUCCEEDED."""
        return self.succeeded or self.status == SUCCEEDED or self.rerun_by is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "execution": self.execution,
            "status": self.status,
            "action": self.action,
            "new_execution": self.new_execution,
            "reason": self.reason,
            "done": self.done,
            "error": self.error,
            "outcome": self.outcome,
        }


def plan_rerun(
    target: Target,
    names: list[str],
    *,
    failed: bool = False,
    since: str | None = None,
    dataset: str | None = None,
) -> list[Rerun]:
    """What `sluice rerun` would do for each execution, without doing it."""
    everything = list_executions(target, None, None)
    by_base: dict[str, list[dict[str, Any]]] = {}
    for item in everything:
        by_base.setdefault(base_name(item["name"]), []).append(item)
    chosen: list[dict[str, Any]] = []
    if failed:
        moment = parse_since(since or "7d")
        seen = set()
        for item in everything:
            base = base_name(item["name"])
            if (
                item["status"] in RERUNNABLE
                and (moment is None or aware(item["startDate"]) >= moment)
                and (not dataset or item["name"].startswith(f"{dataset}-"))
                and base not in seen
            ):
                seen.add(base)
                chosen.append(item)
    for name in names:
        arn = target.execution_arn(name)
        description = describe(target, arn)
        chosen.append(
            {
                "name": description["name"],
                "executionArn": arn,
                "status": description["status"],
                "startDate": description["startDate"],
            }
        )
    plans = []
    for item in chosen:
        base = base_name(item["name"])
        family = by_base.get(base, [])
        succeeded = [f["name"] for f in family if f["status"] == SUCCEEDED]
        running = [f["name"] for f in family if f["status"] == RUNNING]
        plan = Rerun(item["name"], item["executionArn"], item["status"], "skip")
        if item["status"] not in RERUNNABLE:
            plan.reason = f"{item['status']}: nothing to rerun"
        elif succeeded:
            plan.rerun_by = succeeded[0]
            plan.reason = f"already rerun by {succeeded[0]}"
        elif running:
            plan.reason = f"already being rerun by {running[0]}"
        else:
            description = describe(target, item["executionArn"])
            young = datetime.now(UTC) - aware(item["startDate"]) < REDRIVE_WINDOW
            redrivable = (
                not target.local and young and description.get("redriveStatus") == "REDRIVABLE"
            )
            at_fail = _stopped_at_fail(target, item["executionArn"]) if redrivable else None
            if redrivable and at_fail is None:
                plan.action = "redrive"
                plan.reason = "redrivable: only the failed stage reruns"
                plan.redrive_count = int(description.get("redriveCount") or 0)
            else:
                used = [int(m.group(1)) for f in family if (m := _RERUN_SUFFIX.search(f["name"]))]
                plan.action = "new"
                plan.new_execution = _rerun_name(base, max(used, default=0) + 1)
                if target.local:
                    plan.reason = "the local cloud has no redrive"
                elif at_fail is not None:
                    plan.reason = f"stopped at Fail state {at_fail}: a redrive would fail again"
                else:
                    plan.reason = str(description.get("redriveStatusReason") or "not redrivable")
        plans.append(plan)
    return plans


def _stopped_at_fail(target: Target, arn: str) -> str | None:
    """The Fail state the execution stopped at, if it did. A redrive re-enters a Fail state and
    fails again without rerunning anything (executions of definitions before the current one,
    which caught every error into a Fail state, stopped there)."""
    with aws_errors("execution history"):
        history = execution_history(target.client("stepfunctions"), arn)
    return next((name for kind, name in unfinished_states(history) if kind == "Fail"), None)


def rerun(target: Target, plans: list[Rerun]) -> list[Rerun]:
    """Start the plans' reruns (`await_reruns` waits for them); the outputs of a rerun replace
    the failed run's, key for key."""
    sfn = target.client("stepfunctions")
    for plan in plans:
        try:
            with aws_errors(f"rerun {plan.execution}"):
                if plan.action == "redrive":
                    sfn.redrive_execution(executionArn=plan.arn)
                    plan.done = True
                elif plan.action == "new":
                    original = describe(target, plan.arn)
                    sfn.start_execution(
                        stateMachineArn=target.state_machine_arn,
                        name=plan.new_execution,
                        input=original["input"],
                    )
                    plan.done = True
        except OpsError as exc:
            plan.error = str(exc)
    return plans


def await_reruns(
    target: Target,
    plans: list[Rerun],
    wait_seconds: float = DEFAULT_RERUN_WAIT,
    *,
    poll_seconds: float | None = None,
) -> list[Rerun]:
    """Wait until every started rerun has a terminal status, or `wait_seconds` have passed;
    each plan's `outcome` is the status it had then (RUNNING if it had not finished)."""
    import time

    sfn = target.client("stepfunctions")
    poll = poll_seconds if poll_seconds is not None else (0.2 if target.local else 2.0)
    pending = [p for p in plans if p.done and p.action != "skip"]
    seen_bare_success: set[str] = set()
    deadline = time.monotonic() + wait_seconds
    while True:
        for plan in list(pending):
            with aws_errors(f"describe {plan.new_execution or plan.execution}"):
                description = sfn.describe_execution(executionArn=plan.rerun_arn)
            status = str(description["status"])
            if plan.action == "redrive" and int(description.get("redriveCount") or 0) <= (
                plan.redrive_count
            ):
                status = RUNNING  # the status is still the failed attempt's
            status = confirmed_status(plan.rerun_arn, status, description, seen_bare_success)
            plan.outcome = status
            if status in TERMINAL:
                pending.remove(plan)
        if not pending or time.monotonic() >= deadline:
            return plans
        time.sleep(poll)

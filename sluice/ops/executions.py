"""Looking at executions: the list, one execution in full, and the statuses they can have."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sluice.config import ABORTED, FAILED, RUNNING, SUCCEEDED, TERMINAL_STATUSES, TIMED_OUT
from sluice.ops.target import Target, UsageError, aws_errors
from sluice.report import (
    ExecutionReport,
    build_report,
    error_message,
    execution_history,
    stage_metrics,
)
from sluice.state import ExecutionState, StateError

TERMINAL = TERMINAL_STATUSES
RERUNNABLE = (FAILED, TIMED_OUT, ABORTED)
STATUSES = (RUNNING, *TERMINAL)


def parse_since(text: str | None) -> datetime | None:
    """`24h`, `7d`, `30m` as the moment that long ago."""
    if not text:
        return None
    match = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if not match:
        raise UsageError(f"--since {text!r}: write a number and m, h or d (30m, 24h, 7d)")
    amount, unit = int(match.group(1)), match.group(2)
    delta = {
        "m": timedelta(minutes=amount),
        "h": timedelta(hours=amount),
        "d": timedelta(days=amount),
    }
    return datetime.now(UTC) - delta[unit]


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def list_executions(
    target: Target, status: str | None, since: datetime | None
) -> list[dict[str, Any]]:
    sfn = target.client("stepfunctions")
    kwargs: dict[str, Any] = {"stateMachineArn": target.state_machine_arn}
    if status:
        kwargs["statusFilter"] = status
    found = []
    with aws_errors("list executions"):
        for page in sfn.get_paginator("list_executions").paginate(**kwargs):
            found += [
                e for e in page["executions"] if since is None or aware(e["startDate"]) >= since
            ]
    return sorted(found, key=lambda e: aware(e["startDate"]), reverse=True)


def describe(target: Target, arn: str) -> dict[str, Any]:
    with aws_errors("describe execution"):
        return dict(target.client("stepfunctions").describe_execution(executionArn=arn))


def error_text(error: str, cause: str) -> str:
    """`error: cause`, without repeating the error name the cause already starts with."""
    if not cause:
        return error
    return cause if cause.startswith(error) else f"{error}: {cause}"


def _source_key(description: dict[str, Any]) -> str:
    try:
        state = ExecutionState.from_dict(json.loads(description.get("input") or "{}"), lenient=True)
        return state.source.key
    except (StateError, ValueError):
        return ""


def confirmed_status(arn: str, status: str, description: dict[str, Any], seen: set[str]) -> str:
    """`status`, except that the first SUCCEEDED seen of an execution without its output counts
    as RUNNING: the local cloud may say SUCCEEDED a moment before it records the output.
    `seen` holds the executions already looked at so, across the looks of one wait."""
    if status == SUCCEEDED and "output" not in description and arn not in seen:
        seen.add(arn)
        return RUNNING
    return status


def report_of(target: Target, arn: str) -> tuple[dict[str, Any], ExecutionReport]:
    description = describe(target, arn)
    with aws_errors("execution history"):
        history = execution_history(target.client("stepfunctions"), arn)
    return description, build_report(description, history)


def executions(
    target: Target,
    status: str | None = None,
    since: str | None = None,
    dataset: str | None = None,
) -> list[dict[str, Any]]:
    """One row per execution, newest first: what `sluice executions list` shows."""
    rows = []
    for item in list_executions(target, status, parse_since(since)):
        if dataset and not item["name"].startswith(f"{dataset}-"):
            continue
        description = describe(target, item["executionArn"])
        failed_stage = ""
        if item["status"] in RERUNNABLE:
            _, report = report_of(target, item["executionArn"])
            failed_stage = report.failed_stage
        start = aware(item["startDate"])
        stop = description.get("stopDate")
        rows.append(
            {
                "name": item["name"],
                "status": item["status"],
                "start": start.isoformat(),
                "duration_s": round((aware(stop) - start).total_seconds(), 1) if stop else None,
                "failed_stage": failed_stage,
                "source_key": _source_key(description),
                "arn": item["executionArn"],
            }
        )
    return rows


def show(target: Target, name_or_arn: str) -> dict[str, Any]:
    """What the console shows about one execution."""
    arn = target.execution_arn(name_or_arn)
    description, report = report_of(target, arn)
    start = aware(description["startDate"])
    stop = description.get("stopDate")
    output = report.output
    return {
        "name": description["name"],
        "arn": arn,
        "status": description["status"],
        "start": start.isoformat(),
        "stop": aware(stop).isoformat() if stop else None,
        "duration_s": round((aware(stop) - start).total_seconds(), 3) if stop else None,
        "stages": [
            {
                "name": s.name,
                "status": s.status,
                "entered": s.entered.isoformat() if s.entered else None,
                "exited": s.exited.isoformat() if s.exited else None,
                "duration_ms": s.duration_ms,
                "attempts": s.attempts,
                "errors": [error_text(e, c) for e, c in zip(s.errors, s.causes, strict=True)],
                "metrics": stage_metrics(report, s.name),
            }
            for s in report.stages
        ],
        "error": report.error or None,
        "cause": error_message(report.cause) if report.cause else None,
        "failed_stage": report.failed_stage or None,
        "input": json.loads(description.get("input") or "null"),
        "output": output or None,
        "counts": report.counts,
        "console_url": target.console_url(arn),
    }

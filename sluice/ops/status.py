"""The pipeline at a glance: queue depths, the last day's executions, the latest metrics."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sluice.config import SUCCEEDED
from sluice.ops.executions import (
    STATUSES,
    list_executions,
    parse_since,
    report_of,
)
from sluice.ops.target import Target, aws_errors
from sluice.report import stage_metrics


def status(target: Target) -> dict[str, Any]:
    sqs = target.client("sqs")
    queues = {}
    with aws_errors("queue attributes"):
        for which in ("ingest", "ingest_dlq", "failures"):
            attrs = sqs.get_queue_attributes(
                QueueUrl=target.queue_url(which),
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            queues[which] = {
                "waiting": int(attrs["ApproximateNumberOfMessages"]),
                "in_flight": int(attrs["ApproximateNumberOfMessagesNotVisible"]),
            }
    recent = list_executions(target, None, parse_since("24h"))
    by_status = Counter(e["status"] for e in recent)
    latest: dict[str, Any] = {}
    succeeded = [e for e in recent if e["status"] == SUCCEEDED] or list_executions(
        target, SUCCEEDED, None
    )[:1]
    if succeeded:
        description, report = report_of(target, succeeded[0]["executionArn"])
        latest = {
            "execution": description["name"],
            "stages": {s.name: stage_metrics(report, s.name) for s in report.stages},
        }
    return {
        "stack": target.stack,
        "queues": queues,
        "executions_24h": {s: by_status.get(s, 0) for s in STATUSES},
        "latest": latest,
    }

"""Dead letters: list them with their reasons, and send them back (an ingest letter to the ingest
queue, a failure letter as a rerun of its execution)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sluice.config import SUCCEEDED
from sluice.events import parse_s3_notification
from sluice.ops.executions import error_text
from sluice.ops.rerun import DEFAULT_RERUN_WAIT, Rerun, await_reruns, base_name, plan_rerun, rerun
from sluice.ops.target import OpsError, Target, aws_errors
from sluice.report import error_message

# SQS's longest visibility timeout: a dead letter stays hidden while its rerun is awaited.
MAX_VISIBILITY = 12 * 60 * 60

DLQS = {"ingest": "ingest_dlq", "failures": "failures"}


def _receive_all(target: Target, which: str, visibility: int) -> list[dict[str, Any]]:
    sqs = target.client("sqs")
    url = target.queue_url(DLQS[which])
    found: dict[str, dict[str, Any]] = {}
    quiet = 0
    with aws_errors(f"read the {which} DLQ"):
        while quiet < 3 and len(found) < 1000:
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=visibility,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
            ).get("Messages", [])
            new = [m for m in messages if m["MessageId"] not in found]
            quiet = 0 if new else quiet + 1
            found.update({m["MessageId"]: m for m in new})
    return list(found.values())


def _describe_message(which: str, message: dict[str, Any], full: bool) -> dict[str, Any]:
    attributes = message.get("Attributes", {})
    item: dict[str, Any] = {
        "id": message["MessageId"],
        "sent": datetime.fromtimestamp(
            int(attributes.get("SentTimestamp", 0)) / 1000, UTC
        ).isoformat(),
        "receives": int(attributes.get("ApproximateReceiveCount", 0)),
    }
    body = message.get("Body", "")
    if which == "failures":
        try:
            document = json.loads(body)
        except json.JSONDecodeError:
            document = {}
        item.update(
            {
                "execution": document.get("execution_name") or document.get("execution"),
                "stage": document.get("stage"),
                "reason": error_text(
                    str(document.get("error")), error_message(str(document.get("cause", "")))
                ),
            }
        )
    else:
        try:
            keys = [e.source.key for e in parse_s3_notification(body)]
            reason = f"the starter failed on it {item['receives']} times"
        except (ValueError, KeyError, TypeError) as exc:
            keys, reason = [], f"not an S3 event: {exc}"
        item.update({"keys": keys, "reason": reason})
    if full:
        item["body"] = body
    return item


def dlq_list(target: Target, which: str, peek: bool = False) -> list[dict[str, Any]]:
    """Dead letters with their reasons; reading them hides nothing (visibility 0)."""
    return [_describe_message(which, m, peek) for m in _receive_all(target, which, 0)]


@dataclass
class Redrive:
    id: str
    what: str
    done: bool = False  # redriven and deleted from the DLQ
    error: str | None = None
    # For a failure letter: its rerun's status when waiting ended (see `Rerun.outcome`).
    outcome: str | None = None


def dlq_redrive(
    target: Target,
    which: str,
    *,
    dry_run: bool = False,
    send: Callable[[str], None] | None = None,
    wait_seconds: float = DEFAULT_RERUN_WAIT,
) -> list[Redrive]:
    """Send dead letters back: ingest DLQ → ingest queue; failure DLQ → a rerun of the named
    execution. An ingest letter is deleted once it is sent; a failure letter once its rerun
    SUCCEEDED (or an earlier rerun already had). A failure to send or to start a rerun stops
    the run and leaves that letter and every later one in the DLQ; a rerun that fails again,
    or is still running after `wait_seconds`, keeps its letter."""
    if which == "ingest":
        return _redrive_ingest(target, dry_run=dry_run, send=send)
    return _redrive_failures(target, dry_run=dry_run, wait_seconds=wait_seconds)


def _release(target: Target, which: str, message: dict[str, Any]) -> None:
    """Make a kept letter visible again at once."""
    target.client("sqs").change_message_visibility(
        QueueUrl=target.queue_url(DLQS[which]),
        ReceiptHandle=message["ReceiptHandle"],
        VisibilityTimeout=0,
    )


def _delete(target: Target, which: str, message: dict[str, Any]) -> None:
    with aws_errors("delete from the DLQ"):
        target.client("sqs").delete_message(
            QueueUrl=target.queue_url(DLQS[which]), ReceiptHandle=message["ReceiptHandle"]
        )


def _redrive_ingest(
    target: Target, *, dry_run: bool, send: Callable[[str], None] | None
) -> list[Redrive]:
    sqs = target.client("sqs")
    messages = _receive_all(target, "ingest", 0 if dry_run else 120)
    results = []
    failed = False
    for message in messages:
        described = _describe_message("ingest", message, False)
        result = Redrive(message["MessageId"], ", ".join(described.get("keys", [])))
        results.append(result)
        if dry_run:
            continue
        if failed:
            _release(target, "ingest", message)
            continue
        try:
            body = message["Body"]
            if send is not None:
                send(body)
            else:
                with aws_errors("send to the ingest queue"):
                    sqs.send_message(QueueUrl=target.queue_url("ingest"), MessageBody=body)
            _delete(target, "ingest", message)
            result.done = True
        except (OpsError, RuntimeError, OSError) as exc:
            result.error = str(exc)
            failed = True
            _release(target, "ingest", message)
    return results


def _redrive_failures(target: Target, *, dry_run: bool, wait_seconds: float) -> list[Redrive]:
    # Hidden for as long as their reruns are awaited, so no one else takes them meanwhile.
    visibility = 0 if dry_run else min(MAX_VISIBILITY, int(wait_seconds) + 300)
    messages = _receive_all(target, "failures", visibility)
    results: list[Redrive] = []
    # One rerun per execution family (`name`, `name-r1`, ...): its letters share the outcome.
    families: dict[str, list[tuple[dict[str, Any], Redrive]]] = {}
    for message in messages:
        execution = _describe_message("failures", message, False).get("execution")
        result = Redrive(message["MessageId"], f"rerun {execution}")
        results.append(result)
        families.setdefault(base_name(str(execution or "")), []).append((message, result))
    if dry_run:
        return results
    started: list[tuple[Rerun, list[tuple[dict[str, Any], Redrive]]]] = []
    failed = False
    for base, letters in families.items():
        if failed:
            for message, _ in letters:
                _release(target, "failures", message)
            continue
        try:
            if not base:
                raise OpsError("the message names no execution")
            execution = str(_describe_message("failures", letters[0][0], False)["execution"])
            (plan,) = rerun(target, plan_rerun(target, [execution]))
            if plan.error:
                raise OpsError(plan.error)
        except (OpsError, RuntimeError, OSError) as exc:
            failed = True
            for message, result in letters:
                result.error = str(exc)
                _release(target, "failures", message)
            continue
        if plan.action == "skip":
            _settle(target, letters, plan)
        else:
            for _, result in letters:
                result.what += f" → {plan.new_execution or plan.action}"
            started.append((plan, letters))
    await_reruns(target, [plan for plan, _ in started], wait_seconds)
    for plan, letters in started:
        _settle(target, letters, plan)
    return results


def _settle(target: Target, letters: list[tuple[dict[str, Any], Redrive]], plan: Rerun) -> None:
    """Delete the letters whose work is done; keep the others, visible again."""
    resolved = plan.settled
    for message, result in letters:
        if plan.action == "skip" and resolved:
            result.what += (
                " (already succeeded)" if plan.status == SUCCEEDED else " (already rerun)"
            )
        elif plan.action == "skip":
            result.what += f" ({plan.reason})"
        result.outcome = plan.outcome or (SUCCEEDED if resolved else None)
        if resolved:
            _delete(target, "failures", message)
            result.done = True
        else:
            _release(target, "failures", message)

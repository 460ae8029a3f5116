"""Operating the pipeline: upload, look at executions, rerun failures, drain dead letters.

Every function works on a `Target`: the deployed CDK stack (found by name; its outputs give the
bucket, queue and state machine names) or the local cloud (`sluice up`), which publishes the
same outputs as a stack of its own. AWS errors become `OpsError`s with one readable line.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from sluice import lake
from sluice.config import DEFAULT_STACK_ENV, LOCAL_STACK
from sluice.events import parse_s3_notification
from sluice.lake import SourceObject
from sluice.report import (
    ExecutionReport,
    build_report,
    error_message,
    execution_history,
    unfinished_states,
)

LOCAL_REGION = "us-east-1"
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
RERUNNABLE = ("FAILED", "TIMED_OUT", "ABORTED")
STATUSES = ("RUNNING", *TERMINAL)
# Step Functions keeps an execution redrivable for 14 days.
REDRIVE_WINDOW = timedelta(days=14)
MULTIPART_BYTES = 8 * 1024 * 1024
# How long `sluice upload` waits for an execution to start, and with `--wait` for it to end.
START_WAIT = 10.0
DEFAULT_UPLOAD_WAIT = 900.0
# How long `sluice rerun` and `sluice dlq redrive` wait for reruns to finish, by default.
DEFAULT_RERUN_WAIT = 900.0
# SQS's longest visibility timeout: a dead letter stays hidden while its rerun is awaited.
MAX_VISIBILITY = 12 * 60 * 60
_RERUN_SUFFIX = re.compile(r"-r(\d+)$")


class OpsError(RuntimeError):
    """A failure to report in one line (no traceback)."""


@contextmanager
def aws_errors(what: str = "") -> Iterator[None]:
    """Turn botocore's exceptions into one-line `OpsError`s."""
    try:
        yield
    except NoCredentialsError as exc:
        raise OpsError(
            "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or point at the local cloud with --endpoint-url"
        ) from exc
    except NoRegionError as exc:
        raise OpsError("no AWS region: set AWS_REGION or AWS_DEFAULT_REGION") from exc
    except EndpointConnectionError as exc:
        raise OpsError(f"cannot reach {exc.kwargs.get('endpoint_url')}: is it running?") from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Error"), error.get("Message", str(exc))
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            raise OpsError(f"access denied{f' ({what})' if what else ''}: {message}") from exc
        raise OpsError(f"{what + ': ' if what else ''}{code}: {message}") from exc
    except BotoCoreError as exc:
        raise OpsError(str(exc)) from exc


@dataclass
class Target:
    """Where the pipeline runs and what its resources are called."""

    stack: str
    outputs: dict[str, str]
    session: Any
    region: str
    endpoint_url: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        return self.endpoint_url is not None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url
            )
        return self._clients[service]

    def output(self, key: str) -> str:
        try:
            return self.outputs[key]
        except KeyError:
            raise OpsError(f"stack {self.stack} has no output {key}") from None

    @property
    def raw_bucket(self) -> str:
        return self.output("RawBucketName")

    @property
    def state_machine_arn(self) -> str:
        return self.output("StateMachineArn")

    def queue_url(self, which: str) -> str:
        key = {
            "ingest": "IngestQueueUrl",
            "ingest_dlq": "IngestDeadLetterQueueUrl",
            "failures": "FailureQueueUrl",
        }[which]
        return self.output(key)

    def execution_arn(self, name_or_arn: str) -> str:
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name_or_arn}"

    def console_url(self, execution_arn: str) -> str | None:
        if self.local:
            return None
        return (
            f"https://{self.region}.console.aws.amazon.com/states/home?region={self.region}"
            f"#/v2/executions/details/{execution_arn}"
        )


def resolve(stack: str | None = None, endpoint_url: str | None = None) -> Target:
    """The target named by the options, the environment and `cdk.json`'s default environment."""
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    name = stack or (LOCAL_STACK if endpoint else f"Sluice-{DEFAULT_STACK_ENV}")
    if endpoint:
        # The local cloud accepts any credentials; a developer may have none configured.
        session = boto3.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            region_name=os.environ.get("AWS_REGION") or LOCAL_REGION,
        )
    else:
        session = boto3.Session()
    region = session.region_name or os.environ.get("AWS_REGION")
    if not region:
        raise OpsError("no AWS region: set AWS_REGION or AWS_DEFAULT_REGION")
    target = Target(name, {}, session, region, endpoint)
    try:
        with aws_errors():
            stacks = target.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except OpsError as exc:
        if "does not exist" in str(exc):
            where = endpoint or region
            raise OpsError(
                f"stack {name} not found in {where} (deploy it, or pass --stack)"
            ) from exc
        raise
    target.outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return target


# --------------------------------------------------------------------------- upload


class Progress:
    """A progress bar on stderr for one upload (boto3 calls it from its transfer threads)."""

    def __init__(self, name: str, size: int, stream: Any = None) -> None:
        self.name, self.size, self.done = name, max(size, 1), 0
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()

    def __call__(self, sent: int) -> None:
        with self.lock:
            self.done += sent
            share = min(self.done / self.size, 1.0)
            bar = "#" * int(share * 30)
            self.stream.write(
                f"\r{self.name} [{bar:<30}] {share:6.1%} "
                f"{self.done / 1e6:.1f}/{self.size / 1e6:.1f} MB"
            )
            if self.done >= self.size:
                self.stream.write("\n")
            self.stream.flush()


def upload(
    target: Target,
    paths: list[Path],
    dataset: str,
    *,
    wait_seconds: float = START_WAIT,
    progress: bool = True,
    today: date | None = None,
) -> list[dict[str, Any]]:
    """Put files into RAW under the upload-date partition; each object's key and execution."""
    from boto3.s3.transfer import TransferConfig

    s3 = target.client("s3")
    config = TransferConfig(
        multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES
    )
    uploaded = []
    for path in paths:
        key = lake.raw_key(dataset, path.name, today or datetime.now(UTC).date())
        size = path.stat().st_size
        callback = Progress(path.name, size) if progress and size >= MULTIPART_BYTES else None
        with aws_errors(f"upload {path.name}"):
            s3.upload_file(str(path), target.raw_bucket, key, Config=config, Callback=callback)
            head = s3.head_object(Bucket=target.raw_bucket, Key=key)
        source = SourceObject(
            target.raw_bucket,
            key,
            str(head.get("VersionId") or ""),
            str(head["ETag"]).strip('"'),
            int(head["ContentLength"]),
        )
        name, started = _find_execution(target, source, dataset, wait_seconds)
        uploaded.append(
            {
                "file": str(path),
                "bucket": source.bucket,
                "key": key,
                "version_id": source.version_id,
                "execution": name,
                "started": started,
            }
        )
    return uploaded


def _find_execution(
    target: Target, source: SourceObject, dataset: str, wait_seconds: float
) -> tuple[str, bool]:
    """The execution the object's event starts (its name is known in advance)."""
    import time

    sfn = target.client("stepfunctions")
    candidates = [lake.execution_name(source, dataset)]
    by_etag = lake.execution_name(
        SourceObject(source.bucket, source.key, etag=source.etag), dataset
    )
    if by_etag not in candidates:
        candidates.append(by_etag)
    deadline = time.monotonic() + wait_seconds
    while True:
        for name in candidates:
            try:
                sfn.describe_execution(executionArn=target.execution_arn(name))
                return name, True
            except sfn.exceptions.ExecutionDoesNotExist:
                continue
        if time.monotonic() >= deadline:
            return candidates[0], False
        time.sleep(0.1)


def await_uploads(
    target: Target,
    items: list[dict[str, Any]],
    wait_seconds: float,
    *,
    poll_seconds: float | None = None,
) -> list[dict[str, Any]]:
    """Wait until each uploaded object's execution has ended, or `wait_seconds` have passed.

    Each item gets its `outcome`: the execution's final status, `RUNNING` when the wait ran
    out, `NOT_STARTED` when no execution had started; and, unless it SUCCEEDED or still runs,
    its `failure` (execution, stage, reason code, message; the whole cause is in
    `sluice execution show`)."""
    import time

    sfn = target.client("stepfunctions")
    poll = poll_seconds if poll_seconds is not None else (0.1 if target.local else 2.0)
    for item in items:
        item["outcome"] = "RUNNING" if item["started"] else "NOT_STARTED"
    pending = list(items)
    # The local cloud may say SUCCEEDED a moment before it records the output.
    seen_bare_success: set[str] = set()
    deadline = time.monotonic() + wait_seconds
    while True:
        for item in list(pending):
            arn = target.execution_arn(item["execution"])
            with aws_errors(f"describe {item['execution']}"):
                try:
                    description = sfn.describe_execution(executionArn=arn)
                except sfn.exceptions.ExecutionDoesNotExist:
                    continue
            item["started"] = True
            status = str(description["status"])
            bare = status == "SUCCEEDED" and "output" not in description
            if bare and arn not in seen_bare_success:
                seen_bare_success.add(arn)
                status = "RUNNING"
            item["outcome"] = status
            if status in TERMINAL:
                pending.remove(item)
                if status != "SUCCEEDED":
                    _, report = report_of(target, arn)
                    failure = report.failure
                    item["failure"] = failure.to_dict() if failure else None
        if not pending or time.monotonic() >= deadline:
            for item in pending:
                item["outcome"] = "RUNNING" if item["started"] else "NOT_STARTED"
            return items
        time.sleep(poll)


# --------------------------------------------------------------------------- executions


def _since(text: str | None) -> datetime | None:
    """`24h`, `7d`, `30m` as the moment that long ago."""
    if not text:
        return None
    match = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if not match:
        raise OpsError(f"--since {text!r}: write a number and m, h or d (30m, 24h, 7d)")
    amount, unit = int(match.group(1)), match.group(2)
    delta = {
        "m": timedelta(minutes=amount),
        "h": timedelta(hours=amount),
        "d": timedelta(days=amount),
    }
    return datetime.now(UTC) - delta[unit]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _list(target: Target, status: str | None, since: datetime | None) -> list[dict[str, Any]]:
    sfn = target.client("stepfunctions")
    kwargs: dict[str, Any] = {"stateMachineArn": target.state_machine_arn}
    if status:
        kwargs["statusFilter"] = status
    found = []
    with aws_errors("list executions"):
        for page in sfn.get_paginator("list_executions").paginate(**kwargs):
            found += [
                e for e in page["executions"] if since is None or _aware(e["startDate"]) >= since
            ]
    return sorted(found, key=lambda e: _aware(e["startDate"]), reverse=True)


def _describe(target: Target, arn: str) -> dict[str, Any]:
    with aws_errors("describe execution"):
        return dict(target.client("stepfunctions").describe_execution(executionArn=arn))


def _error_text(error: str, cause: str) -> str:
    """`error: cause`, without repeating the error name the cause already starts with."""
    if not cause:
        return error
    return cause if cause.startswith(error) else f"{error}: {cause}"


def _source_key(description: dict[str, Any]) -> str:
    try:
        return str(json.loads(description.get("input") or "{}")["source"]["key"])
    except (KeyError, TypeError, json.JSONDecodeError):
        return ""


def report_of(target: Target, arn: str) -> tuple[dict[str, Any], ExecutionReport]:
    description = _describe(target, arn)
    with aws_errors("execution history"):
        history = execution_history(target.client("stepfunctions"), arn)
    return description, build_report(description, history)


def executions(
    target: Target,
    status: str | None = None,
    since: str | None = None,
    dataset: str | None = None,
) -> list[dict[str, Any]]:
    """One row per execution, newest first: what `sluice executions` shows."""
    rows = []
    for item in _list(target, status, _since(since)):
        if dataset and not item["name"].startswith(f"{dataset}-"):
            continue
        description = _describe(target, item["executionArn"])
        failed_stage = ""
        if item["status"] in RERUNNABLE:
            _, report = report_of(target, item["executionArn"])
            failed_stage = report.failed_stage
        start = _aware(item["startDate"])
        stop = description.get("stopDate")
        rows.append(
            {
                "name": item["name"],
                "status": item["status"],
                "start": start.isoformat(),
                "duration_s": round((_aware(stop) - start).total_seconds(), 1) if stop else None,
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
    start = _aware(description["startDate"])
    stop = description.get("stopDate")
    output = report.output
    return {
        "name": description["name"],
        "arn": arn,
        "status": description["status"],
        "start": start.isoformat(),
        "stop": _aware(stop).isoformat() if stop else None,
        "duration_s": round((_aware(stop) - start).total_seconds(), 3) if stop else None,
        "stages": [
            {
                "name": s.name,
                "status": s.status,
                "entered": s.entered.isoformat() if s.entered else None,
                "exited": s.exited.isoformat() if s.exited else None,
                "duration_ms": s.duration_ms,
                "attempts": s.attempts,
                "errors": [_error_text(e, c) for e, c in zip(s.errors, s.causes, strict=True)],
                "metrics": {
                    k: v
                    for k, v in (output.get(s.name) or {}).items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                },
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


# --------------------------------------------------------------------------- rerun


def _base_name(name: str) -> str:
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
        return self.outcome == "SUCCEEDED"

    @property
    def settled(self) -> bool:
        """Nothing is left to rerun: this rerun, the execution itself or an earlier rerun of it
        SUCCEEDED."""
        return self.succeeded or self.status == "SUCCEEDED" or self.rerun_by is not None

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
    everything = _list(target, None, None)
    by_base: dict[str, list[dict[str, Any]]] = {}
    for item in everything:
        by_base.setdefault(_base_name(item["name"]), []).append(item)
    chosen: list[dict[str, Any]] = []
    if failed:
        moment = _since(since or "7d")
        seen = set()
        for item in everything:
            base = _base_name(item["name"])
            if (
                item["status"] in RERUNNABLE
                and (moment is None or _aware(item["startDate"]) >= moment)
                and (not dataset or item["name"].startswith(f"{dataset}-"))
                and base not in seen
            ):
                seen.add(base)
                chosen.append(item)
    for name in names:
        arn = target.execution_arn(name)
        description = _describe(target, arn)
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
        base = _base_name(item["name"])
        family = by_base.get(base, [])
        succeeded = [f["name"] for f in family if f["status"] == "SUCCEEDED"]
        running = [f["name"] for f in family if f["status"] == "RUNNING"]
        plan = Rerun(item["name"], item["executionArn"], item["status"], "skip")
        if item["status"] not in RERUNNABLE:
            plan.reason = f"{item['status']}: nothing to rerun"
        elif succeeded:
            plan.rerun_by = succeeded[0]
            plan.reason = f"already rerun by {succeeded[0]}"
        elif running:
            plan.reason = f"already being rerun by {running[0]}"
        else:
            description = _describe(target, item["executionArn"])
            young = datetime.now(UTC) - _aware(item["startDate"]) < REDRIVE_WINDOW
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
                    original = _describe(target, plan.arn)
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
    # The local cloud may say SUCCEEDED a moment before it records the output.
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
                status = "RUNNING"  # the status is still the failed attempt's
            bare = status == "SUCCEEDED" and "output" not in description
            if bare and plan.rerun_arn not in seen_bare_success:
                seen_bare_success.add(plan.rerun_arn)
                status = "RUNNING"
            plan.outcome = status
            if status in TERMINAL:
                pending.remove(plan)
        if not pending or time.monotonic() >= deadline:
            return plans
        time.sleep(poll)


# --------------------------------------------------------------------------- dead letters

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
                "reason": _error_text(
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
        families.setdefault(_base_name(str(execution or "")), []).append((message, result))
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
                " (already succeeded)" if plan.status == "SUCCEEDED" else " (already rerun)"
            )
        elif plan.action == "skip":
            result.what += f" ({plan.reason})"
        result.outcome = plan.outcome or ("SUCCEEDED" if resolved else None)
        if resolved:
            _delete(target, "failures", message)
            result.done = True
        else:
            _release(target, "failures", message)


# --------------------------------------------------------------------------- status


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
    recent = _list(target, None, _since("24h"))
    by_status = Counter(e["status"] for e in recent)
    latest: dict[str, Any] = {}
    succeeded = [e for e in recent if e["status"] == "SUCCEEDED"] or _list(
        target, "SUCCEEDED", None
    )[:1]
    if succeeded:
        description, report = report_of(target, succeeded[0]["executionArn"])
        latest = {
            "execution": description["name"],
            "stages": {
                s.name: {
                    k: v
                    for k, v in (report.output.get(s.name) or {}).items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                }
                for s in report.stages
            },
        }
    return {
        "stack": target.stack,
        "queues": queues,
        "executions_24h": {s: by_status.get(s, 0) for s in STATUSES},
        "latest": latest,
    }

"""What each role may do: the one definition the CDK stack deploys and the local cloud enforces.

Every statement names its resources symbolically (a lake bucket and key pattern, a function, the
failure queue, ...). `infra/functions.py` resolves them to CloudFormation tokens; `sluice.local`
resolves them to the local cloud's ARNs and creates each role with exactly these statements, so
a call a deployed function would be refused is refused locally too (moto checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sluice.config import STAGES, STAGING_PREFIX, WORKFLOW_STAGES
from sluice.lake import RECORD_TYPE

# The key a dataset without a contract keeps its inferred contract under, in TRUSTED.
INFERRED_CONTRACT = "_inferred_contract.yaml"


@dataclass(frozen=True)
class Objects:
    """Objects of one lake bucket whose keys match `pattern` (IAM wildcards)."""

    layer: str
    pattern: str = "*"


@dataclass(frozen=True)
class Bucket:
    """A lake bucket itself (ListBucket)."""

    layer: str


@dataclass(frozen=True)
class Function:
    stage: str


@dataclass(frozen=True)
class LogGroup:
    """A function's own log group (its streams)."""

    stage: str


@dataclass(frozen=True)
class FailureQueue:
    pass


@dataclass(frozen=True)
class IngestQueue:
    pass


@dataclass(frozen=True)
class StateMachine:
    pass


@dataclass(frozen=True)
class Key:
    """A customer-managed KMS key: `data` (buckets) or `messaging` (queues); absent with SSE-S3."""

    purpose: str


Resource = Objects | Bucket | Function | LogGroup | FailureQueue | IngestQueue | StateMachine | Key


@dataclass(frozen=True)
class Grant:
    actions: tuple[str, ...]
    resources: tuple[Resource, ...]


_READ = ("s3:GetObject", "s3:GetObjectVersion")
_WRITE = ("s3:PutObject", "s3:DeleteObject")
_INFERRED = Objects("trusted", f"*/{INFERRED_CONTRACT}")


def _logs(stage: str) -> Grant:
    return Grant(("logs:CreateLogStream", "logs:PutLogEvents"), (LogGroup(stage),))


def _data_key() -> Grant:
    return Grant(("kms:Decrypt", "kms:GenerateDataKey"), (Key("data"),))


# ListBucket lets a missing key read as 404 (not 403): contracts and manifests are optional. It
# is granted on the bucket, never with a wildcard.
STAGE_GRANTS: Mapping[str, tuple[Grant, ...]] = {
    "starter": (
        _logs("starter"),
        # The starter looks up an object's current version, to skip late events for old ones.
        Grant(_READ, (Objects("raw"),)),
        Grant(("s3:ListBucket",), (Bucket("raw"),)),
        Grant(("states:StartExecution",), (StateMachine(),)),
        # HeadObject on an SSE-KMS object needs no key use; the starter never reads data.
    ),
    "validate": (
        _logs("validate"),
        Grant(_READ, (Objects("raw"),)),
        Grant(("s3:ListBucket",), (Bucket("raw"), Bucket("trusted"))),
        # Validate only stages its Parquet; promoting it into TRUSTED is the Trusted stage's job.
        Grant(("s3:PutObject",), (Objects("trusted", f"{STAGING_PREFIX}/*"),)),
        # A dataset without a contract keeps the one inferred from its first file.
        Grant(("s3:GetObject", "s3:PutObject"), (_INFERRED,)),
        Grant(("s3:PutObject",), (Objects("quarantine", "*/files/*"),)),
        _data_key(),
    ),
    "trusted": (
        _logs("trusted"),
        Grant(("s3:GetObject",), (Objects("trusted", f"{STAGING_PREFIX}/*"),)),
        Grant(("s3:ListBucket",), (Bucket("trusted"),)),
        Grant(_WRITE, (Objects("trusted"),)),
        Grant(_WRITE, (Objects("quarantine", "*/rows/*"),)),
        _data_key(),
    ),
    "delivery": (
        _logs("delivery"),
        Grant(("s3:GetObject",), (Objects("trusted"),)),
        # Trusted's hand-over of a file's small days' rows is removed once delivered.
        Grant(("s3:DeleteObject",), (Objects("trusted", f"{STAGING_PREFIX}/*"),)),
        Grant(("s3:ListBucket",), (Bucket("trusted"), Bucket("delivery"))),
        # DETAIL files are uploaded in parts as they are written; a failed one aborts its parts.
        Grant((*_WRITE, "s3:AbortMultipartUpload"), (Objects("delivery"),)),
        # A day's summary is kept by compare-and-swap: Delivery reads it (and the day's state
        # it carries) before putting it back.
        Grant(("s3:GetObject",), (Objects("delivery", f"*/{RECORD_TYPE}=DAILY_SUMMARY/*"),)),
        _data_key(),
    ),
}

# What the starter's SQS event source polls the ingest queue with, in the starter's own role.
# CDK's `SqsEventSource` grants exactly these on the stack (tests/infra/test_grants.py checks
# it); the local cloud's pump polls with them.
EVENT_SOURCE_GRANTS: tuple[Grant, ...] = (
    Grant(
        (
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        ),
        (IngestQueue(),),
    ),
    Grant(("kms:Decrypt",), (Key("messaging"),)),
)

# The state machine's own role: it invokes the stage functions (unqualified ARNs, never a
# version) and leaves dead letters.
STATE_MACHINE_GRANTS: tuple[Grant, ...] = (
    Grant(("lambda:InvokeFunction",), tuple(Function(s) for s in WORKFLOW_STAGES)),
    Grant(("sqs:SendMessage",), (FailureQueue(),)),
    Grant(("kms:GenerateDataKey", "kms:Decrypt"), (Key("messaging"),)),
)

assert set(STAGE_GRANTS) == set(STAGES)

# Resolves a resource to its ARN in one target; None: the target has no such resource.
Resolver = Callable[[Resource], str | None]


def statements(grants: Iterable[Grant], resolve: Resolver) -> list[dict[str, Any]]:
    """IAM policy statements for `grants`; a grant whose resources are all absent is left out."""
    out: list[dict[str, Any]] = []
    for grant in grants:
        arns = [arn for arn in (resolve(r) for r in grant.resources) if arn is not None]
        if arns:
            out.append(
                {
                    "Effect": "Allow",
                    "Action": list(grant.actions) if len(grant.actions) > 1 else grant.actions[0],
                    "Resource": arns if len(arns) > 1 else arns[0],
                }
            )
    return out


def policy(grants: Iterable[Grant], resolve: Resolver) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements(grants, resolve)}

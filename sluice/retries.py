"""Every retry in the pipeline, in one list: what is retried, on which errors, how often, where.

The code that applies a policy reads it from here where that code is Python: the CDK
constructs (the ingest queue's redrive and visibility timeout), the botocore clients
(`sluice.aws`). The state machine's `Retry` blocks stay literal in
`statemachine/pipeline.asl.json`, so the definition reads the same in the repository and in the
Step Functions console; `tests/infra/test_retries.py` holds every Task's `Retry` equal to
`WORKFLOW` here, and the other numbers equal to what applies them.

This module imports nothing but the standard library: every handler loads it at init.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# Step Functions' two jitter strategies; None leaves the ASL field out (no jitter).
Jitter = Literal["FULL", "NONE"]


@dataclass(frozen=True)
class Retry:
    """One retry policy: up to `attempts` of `what` on `errors`, waiting `interval_seconds`
    first and `backoff` times longer each time (at most `max_interval_seconds`, when set),
    randomized by `jitter`; `where` names the places it applies. (`attempts` counts what each
    place counts: Step Functions' MaxAttempts the retries after the first try, botocore's
    max_attempts and the others every try.) An interval of None is set where `note` says."""

    what: str
    errors: tuple[str, ...]
    attempts: int
    interval_seconds: float | None
    backoff: float
    jitter: Jitter | None
    where: tuple[str, ...]
    max_interval_seconds: float | None = None
    note: str = ""

    def asl(self) -> dict[str, Any]:
        """The policy as a Step Functions `Retry` entry (field for field as the ASL writes it)."""
        assert self.interval_seconds is not None, f"{self.what}: no interval"
        entry: dict[str, Any] = {
            "ErrorEquals": list(self.errors),
            "IntervalSeconds": _number(self.interval_seconds),
            "MaxAttempts": self.attempts,
            "BackoffRate": _number(self.backoff),
        }
        if self.max_interval_seconds is not None:
            entry["MaxDelaySeconds"] = _number(self.max_interval_seconds)
        if self.jitter is not None:
            entry["JitterStrategy"] = self.jitter
        return entry


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


# --- the workflow (statemachine/pipeline.asl.json) -------------------------------------------

STAGE_TASKS = tuple(
    state for stage in ("Validate", "Trusted", "Delivery") for state in (stage, f"{stage}Again")
)
DEAD_LETTER_TASKS = ("ValidateFailed", "TrustedFailed", "DeliveryFailed")

# What Step Functions advises to retry on every Lambda task: the service's own errors, which
# say nothing about the function's work.
LAMBDA_SERVICE_ERRORS = Retry(
    what="a stage's Lambda invocation, when the Lambda service failed it",
    errors=(
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.TooManyRequestsException",
    ),
    attempts=6,
    interval_seconds=2,
    backoff=2,
    jitter="FULL",
    where=STAGE_TASKS,
)
# Throttling, timeouts and 5xx from AWS, once botocore's own retries gave up (sluice.aws).
TRANSIENT = Retry(
    what="a stage, when it raised SluiceTransientError",
    errors=("SluiceTransientError",),
    attempts=3,
    interval_seconds=1,
    backoff=2,
    jitter="FULL",
    where=STAGE_TASKS,
)
# The dead letter must get out whatever went wrong sending it.
DEAD_LETTER = Retry(
    what="sending a failed execution's dead letter to the failure DLQ (sqs:sendMessage)",
    errors=("States.ALL",),
    attempts=3,
    interval_seconds=1,
    backoff=2,
    jitter=None,
    where=DEAD_LETTER_TASKS,
)
WORKFLOW = (LAMBDA_SERVICE_ERRORS, TRANSIENT, DEAD_LETTER)


def workflow_retry(state: str) -> list[dict[str, Any]]:
    """The `Retry` of the Task state `state`, in the order the ASL lists it."""
    return [policy.asl() for policy in WORKFLOW if state in policy.where]


# --- the AWS clients (sluice.aws) ------------------------------------------------------------

# botocore's "standard" mode: throttling, transient and 5xx errors, exponential backoff with
# full jitter from 1 s (at most 20 s); `max_attempts` counts the first call.
BOTOCORE = Retry(
    what="every AWS API call a function makes (botocore's standard retry mode)",
    errors=("throttling", "transient connection errors", "5xx"),
    attempts=5,
    interval_seconds=1,
    backoff=2,
    jitter="FULL",
    max_interval_seconds=20,
    where=("sluice.aws.client",),
)
BOTOCORE_MODE: Literal["standard"] = "standard"


# The local cloud's state machine interpreter calls Lambda and SQS once per attempt: the
# definition's Retry (WORKFLOW) retries, as Step Functions does, not botocore underneath it.
LOCAL_INTERPRETER = Retry(
    what="the local interpreter's lambda:invoke and sqs:sendMessage calls",
    errors=(),
    attempts=1,
    interval_seconds=None,
    backoff=1,
    jitter=None,
    where=("sluice.local._moto_iam (botocore total_max_attempts)",),
    note="no retry of its own: the definition's Retry applies",
)


# --- a day's summary (sluice.edges.summary) --------------------------------------------------

# A compare-and-swap that another delivery won is read again and redone; after the last
# attempt the stage raises SluiceTransientError, which the workflow retries (TRANSIENT).
SUMMARY_CAS = Retry(
    what="putting a day's DAILY_SUMMARY over the version it read (If-Match / If-None-Match)",
    errors=("PreconditionFailed",),
    attempts=10,
    interval_seconds=0.05,
    backoff=2,
    jitter="FULL",
    max_interval_seconds=2,
    where=("sluice.edges.summary.keep_summary", "sluice.stages.delivery.backoff"),
)


# --- an Iceberg table's commit (sluice.tables.commit) ----------------------------------------

# pyiceberg's own retry is off for Sluice's tables (`commit.retry.num-retries=0`): its backoff
# has a 10% jitter, so writers that collided collide again. This one reloads the table, checks
# it again, and commits the same data files over the new head (bench/iceberg_history.py).
TABLE_COMMIT = Retry(
    what="committing contributions to an Iceberg table, when another commit won the race",
    errors=("CommitFailedException", "ValidationException"),
    attempts=20,
    interval_seconds=0.1,
    backoff=2,
    jitter="FULL",
    max_interval_seconds=5,
    where=("sluice.tables.commit.commit_contributions",),
)

# --- the ingest queue (infra/ingest.py, sluice.local) ----------------------------------------

# Lambda's advice for SQS event sources: a visibility timeout of at least six times the
# function timeout, so a message is not handed out again while throttled retries still run.
VISIBILITY_TIMEOUT_FACTOR = 6
# An event that failed this many starter invocations is not transient: park it in the DLQ.
INGEST_RECEIVES = Retry(
    what="an S3 event the starter failed (a batchItemFailures entry), redelivered by SQS",
    errors=("any record the starter reports failed",),
    attempts=5,
    interval_seconds=None,
    backoff=1,
    jitter=None,
    where=("infra.ingest.Ingest (maxReceiveCount)", "sluice.local.LocalCloud"),
    note=(
        "redelivered when the queue's visibility timeout ends: on AWS "
        f"{VISIBILITY_TIMEOUT_FACTOR} x the starter's timeout + the batching window, "
        "locally 2 s"
    ),
)
MAX_RECEIVE_COUNT = INGEST_RECEIVES.attempts
# The local cloud redelivers after 2 s instead, so a local retry is quick.
LOCAL_VISIBILITY_TIMEOUT_SECONDS = 2

# --- Lambda's own retries ---------------------------------------------------------------------

# Every function is invoked synchronously (Step Functions' lambda:invoke, the SQS event source),
# so Lambda's asynchronous retries (2 by default) and the event source's never apply: the stack
# sets no EventInvokeConfig and no MaximumRetryAttempts. tests/infra/test_retries.py holds that.
ASYNC_INVOKE_CONFIGS = 0

ALL = (*WORKFLOW, BOTOCORE, LOCAL_INTERPRETER, SUMMARY_CAS, TABLE_COMMIT, INGEST_RECEIVES)

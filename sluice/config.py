"""Names and settings shared by the CDK app, the local cloud and the Lambda handlers.

One place decides what every resource is called, so `infra/` and `sluice.local` cannot drift.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASL_PATH = PROJECT_ROOT / "statemachine" / "pipeline.asl.json"
CONTRACTS_DIR = PROJECT_ROOT / "contracts"

LAYERS = ("raw", "trusted", "delivery", "quarantine")
STAGES = ("starter", "validate", "trusted", "delivery")
# The stages the state machine runs, in order (the starter runs before it).
WORKFLOW_STAGES = ("validate", "trusted", "delivery")

# Error names the state machine matches in Retry/Catch (errorType of a Python Lambda failure).
DATA_ERROR = "SluiceDataError"
TRANSIENT_ERROR = "SluiceTransientError"

METRICS_NAMESPACE = "Sluice"
# The environment `cdk deploy` builds without `-c env=...`; its stack is `Sluice-<env>`.
DEFAULT_STACK_ENV = "dev"
# The local cloud publishes its resource names as a CloudFormation stack of this name, with
# the outputs the CDK stack has, so the CLI finds either the same way.
LOCAL_STACK = "Sluice-local"
STAGING_PREFIX = "_staging"
# The file size limit of settings made without one (a handler environment without
# SLUICE_MAX_FILE_BYTES, settings built in code). cdk.json sets each environment's; an
# environment without it gets what its stages serve (sluice.environments).
DEFAULT_MAX_FILE_BYTES = 2 * 1024**3

# Step Functions' execution statuses: an execution is RUNNING until it ends in a terminal one.
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
TIMED_OUT = "TIMED_OUT"
ABORTED = "ABORTED"
TERMINAL_STATUSES = (SUCCEEDED, FAILED, TIMED_OUT, ABORTED)


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of the execution `name` of the state machine `state_machine_arn`."""
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"


@dataclass(frozen=True)
class PipelineNames:
    """Physical names derived from one prefix (`sluice` locally, `sluice-<env>` on AWS)."""

    prefix: str = "sluice"

    def function(self, stage: str) -> str:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
        return f"{self.prefix}-{stage}"

    @property
    def state_machine(self) -> str:
        return f"{self.prefix}-pipeline"

    @property
    def ingest_queue(self) -> str:
        return f"{self.prefix}-ingest"

    @property
    def ingest_dlq(self) -> str:
        return f"{self.prefix}-ingest-dlq"

    @property
    def failure_dlq(self) -> str:
        return f"{self.prefix}-failures"


# The `${...}` placeholders of `statemachine/pipeline.asl.json`: each workflow stage's function
# ARN, and the failure dead-letter queue's URL.
ASL_FUNCTION_ARN_KEYS = {
    "validate": "ValidateFunctionArn",
    "trusted": "TrustedFunctionArn",
    "delivery": "DeliveryFunctionArn",
}
ASL_FAILURE_QUEUE_KEY = "FailureQueueUrl"


def asl_substitution_keys() -> dict[str, str]:
    """The `${...}` placeholders of `statemachine/pipeline.asl.json` and what each stands for."""
    return {
        **{key: f"ARN of the {stage} function" for stage, key in ASL_FUNCTION_ARN_KEYS.items()},
        ASL_FAILURE_QUEUE_KEY: "URL of the failure dead-letter queue",
    }


def asl_substitutions(function_arns: Mapping[str, str], failure_queue_url: str) -> dict[str, str]:
    """Each placeholder's value, from each workflow stage's function ARN and the queue's URL."""
    return {
        **{key: function_arns[stage] for stage, key in ASL_FUNCTION_ARN_KEYS.items()},
        ASL_FAILURE_QUEUE_KEY: failure_queue_url,
    }


@dataclass(frozen=True)
class Settings:
    """What a handler needs at run time, read from its environment on first call."""

    raw_bucket: str
    trusted_bucket: str
    delivery_bucket: str
    quarantine_bucket: str
    state_machine_arn: str = ""
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    pipeline_version: str = ""
    # Each format's size limit (keys of `sluice.formats.LIMIT_FORMATS`; a gzip stream's is on
    # its inflated bytes), as `EnvironmentSettings.file_limits` computes them from the stage
    # sizes. A format without one is held to `max_file_bytes`.
    file_limits: Mapping[str, int] = field(default_factory=dict)

    def file_limit(self, fmt: str | None) -> int:
        """The size limit of a file of `fmt`; of any format (the largest) when it is unknown."""
        if fmt is None:
            return max(self.file_limits.values(), default=self.max_file_bytes)
        return self.file_limits.get(fmt, self.max_file_bytes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        missing = [
            name
            for name in (
                "SLUICE_RAW_BUCKET",
                "SLUICE_TRUSTED_BUCKET",
                "SLUICE_DELIVERY_BUCKET",
                "SLUICE_QUARANTINE_BUCKET",
            )
            if not env.get(name)
        ]
        if missing:
            raise RuntimeError(f"missing environment variables: {', '.join(missing)}")
        from sluice import __version__

        return cls(
            raw_bucket=env["SLUICE_RAW_BUCKET"],
            trusted_bucket=env["SLUICE_TRUSTED_BUCKET"],
            delivery_bucket=env["SLUICE_DELIVERY_BUCKET"],
            quarantine_bucket=env["SLUICE_QUARANTINE_BUCKET"],
            state_machine_arn=env.get("SLUICE_STATE_MACHINE_ARN", ""),
            max_file_bytes=int(env.get("SLUICE_MAX_FILE_BYTES", str(DEFAULT_MAX_FILE_BYTES))),
            pipeline_version=env.get("SLUICE_PIPELINE_VERSION", __version__),
            file_limits={
                str(fmt): int(limit)
                for fmt, limit in json.loads(env.get("SLUICE_FILE_LIMITS") or "{}").items()
            },
        )

    def to_env(self) -> dict[str, str]:
        return {
            "SLUICE_RAW_BUCKET": self.raw_bucket,
            "SLUICE_TRUSTED_BUCKET": self.trusted_bucket,
            "SLUICE_DELIVERY_BUCKET": self.delivery_bucket,
            "SLUICE_QUARANTINE_BUCKET": self.quarantine_bucket,
            "SLUICE_STATE_MACHINE_ARN": self.state_machine_arn,
            "SLUICE_MAX_FILE_BYTES": str(self.max_file_bytes),
            "SLUICE_PIPELINE_VERSION": self.pipeline_version,
            "SLUICE_FILE_LIMITS": json.dumps(dict(sorted(self.file_limits.items()))),
        }


def function_environment(stage: str, settings: Settings) -> dict[str, str]:
    """The environment variables a stage function is deployed with (CDK and the local cloud).

    Only the starter starts executions, so only it is told the state machine's ARN.
    """
    environment = settings.to_env()
    if stage != "starter" or not settings.state_machine_arn:
        del environment["SLUICE_STATE_MACHINE_ARN"]
    environment["POWERTOOLS_SERVICE_NAME"] = f"sluice-{stage}"
    environment["POWERTOOLS_METRICS_NAMESPACE"] = METRICS_NAMESPACE
    return environment

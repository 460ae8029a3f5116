"""Where the pipeline runs: the deployed CDK stack (found by name; its outputs give the bucket,
queue and state machine names) or the local cloud (`sluice up`), which publishes the same outputs
as a stack of its own. AWS errors become `OpsError`s with one readable line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from sluice.config import DEFAULT_STACK_ENV, LOCAL_STACK, execution_arn

LOCAL_REGION = "us-east-1"


class OpsError(RuntimeError):
    """A failure to report in one line (no traceback)."""


class UsageError(OpsError):
    """A request that cannot be understood (a bad option value): the command's usage is wrong."""


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
        return execution_arn(self.state_machine_arn, name_or_arn)

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

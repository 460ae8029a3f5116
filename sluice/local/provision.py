"""The local cloud's resources, created in moto as the CDK app deploys them: buckets, queues,
roles and their sessions, functions, the state machine, and the stack's outputs."""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sluice import asl, grants
from sluice.config import (
    LOCAL_STACK,
    STAGES,
    WORKFLOW_STAGES,
    PipelineNames,
    Settings,
    asl_substitutions,
    function_environment,
)
from sluice.environments import EnvironmentSettings, StageSettings
from sluice.local.runtime import FunctionConfig

ACCOUNT = "123456789012"
REGION = "us-east-1"


class Provisioning:
    """What `LocalCloud` creates, and how it names it (the attributes are `LocalCloud`'s)."""

    names: PipelineNames
    publish_stack: bool
    visibility_timeout: int
    max_receive_count: int
    environment: EnvironmentSettings
    stages: dict[str, StageSettings]
    buckets: dict[str, str]
    endpoint_url: str
    queue_urls: dict[str, str]
    state_machine_arn: str
    credentials: dict[str, str]
    role_credentials: dict[str, dict[str, str]]
    _setup_url: str

    if TYPE_CHECKING:  # LocalCloud's

        def client(self, service: str, credentials: Mapping[str, str] | None = None) -> Any: ...

        def function_arn(self, stage: str) -> str: ...

        def _queue_arn(self, url: str) -> str: ...

        @property
        def settings(self) -> Settings: ...

    def _provision(self, roles: dict[str, str]) -> None:
        """Everything but the roles (`_start` creates those first)."""
        self._create_buckets()
        self._create_queues()
        self._create_functions(roles)
        self._create_state_machine(roles["pipeline"])
        if self.publish_stack:
            self._publish_stack()
        self._create_administrator()

    def _function_configs(self) -> list[FunctionConfig]:
        configs = []
        for stage in STAGES:
            size = self.stages[stage]
            configs.append(
                FunctionConfig(
                    name=self.names.function(stage),
                    stage=stage,
                    memory_mb=size.memory_mb,
                    timeout_seconds=size.timeout_seconds,
                    ephemeral_storage_mb=size.ephemeral_storage_mb,
                    environment=function_environment(stage, self.settings),
                    concurrency=self.environment.max_concurrency,
                )
            )
        return configs

    def _credentials_of(self, stage: str) -> dict[str, str]:
        return self.role_credentials[stage]

    @property
    def outputs(self) -> dict[str, str]:
        """The deployed stack's outputs, as the CDK app names them."""
        return {
            "RawBucketName": self.buckets["raw"],
            "TrustedBucketName": self.buckets["trusted"],
            "DeliveryBucketName": self.buckets["delivery"],
            "QuarantineBucketName": self.buckets["quarantine"],
            "IngestQueueUrl": self.queue_urls["ingest"],
            "IngestDeadLetterQueueUrl": self.queue_urls["ingest_dlq"],
            "FailureQueueUrl": self.queue_urls["failures"],
            "StateMachineArn": self.state_machine_arn,
        }

    def _publish_stack(self) -> None:
        template = {
            "Resources": {"Marker": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {key: {"Value": value} for key, value in self.outputs.items()},
        }
        with warnings.catch_warnings():
            # moto keeps a resource type it cannot build as a placeholder; that is all it is.
            warnings.simplefilter("ignore", UserWarning)
            self.client("cloudformation").create_stack(
                StackName=LOCAL_STACK, TemplateBody=json.dumps(template)
            )

    def _create_buckets(self) -> None:
        s3 = self.client("s3")
        for bucket in self.buckets.values():
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    def _create_queues(self) -> None:
        sqs = self.client("sqs")
        dlq = sqs.create_queue(QueueName=self.names.ingest_dlq)["QueueUrl"]
        redrive = {
            "deadLetterTargetArn": self._queue_arn(dlq),
            "maxReceiveCount": str(self.max_receive_count),
        }
        ingest = sqs.create_queue(
            QueueName=self.names.ingest_queue,
            Attributes={
                "VisibilityTimeout": str(self.visibility_timeout),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        failures = sqs.create_queue(QueueName=self.names.failure_dlq)["QueueUrl"]
        # moto names a queue's URL after the host asked; the cloud's own is the one to publish.
        self.queue_urls = {
            which: url.replace(self._setup_url or self.endpoint_url, self.endpoint_url, 1)
            for which, url in {"ingest": ingest, "ingest_dlq": dlq, "failures": failures}.items()
        }
        self.client("s3").put_bucket_notification_configuration(
            Bucket=self.buckets["raw"],
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": self._queue_arn(ingest), "Events": ["s3:ObjectCreated:*"]}
                ]
            },
        )

    def arn_of(self, resource: grants.Resource) -> str | None:
        """A resource of the grant definition, as this cloud names it (None: not here)."""
        match resource:
            case grants.Objects(layer, pattern):
                return f"arn:aws:s3:::{self.buckets[layer]}/{pattern}"
            case grants.Bucket(layer):
                return f"arn:aws:s3:::{self.buckets[layer]}"
            case grants.Function(stage):
                return self.function_arn(stage)
            case grants.LogGroup(stage):
                group = f"/aws/lambda/{self.names.function(stage)}"
                return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*"
            case grants.FailureQueue():
                return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.names.failure_dlq}"
            case grants.IngestQueue():
                return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.names.ingest_queue}"
            case grants.StateMachine():
                return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{self.names.state_machine}"
            case grants.Key():
                return None  # no KMS here: the buckets and queues are unencrypted
        raise ValueError(f"no resource for {resource!r}")

    def role_policies(self) -> dict[str, dict[str, Any]]:
        """Each role's one policy: the function roles and `pipeline` (the state machine's)."""
        policies = {
            stage: grants.policy(grants.STAGE_GRANTS[stage], self.arn_of) for stage in STAGES
        }
        # The event source mapping polls the ingest queue as the starter.
        policies["starter"] = grants.policy(
            grants.STAGE_GRANTS["starter"] + grants.EVENT_SOURCE_GRANTS, self.arn_of
        )
        policies["pipeline"] = grants.policy(grants.STATE_MACHINE_GRANTS, self.arn_of)
        return policies

    def _create_roles(self) -> dict[str, str]:
        arns: dict[str, str] = {}
        for who, document in self.role_policies().items():
            service = "states" if who == "pipeline" else "lambda"
            name = f"{self.names.prefix}-{who}-role"
            arns[who] = self._create_role(name, {"Service": f"{service}.amazonaws.com"}, document)
        return arns

    def _create_role(self, name: str, principal: dict[str, str], document: dict[str, Any]) -> str:
        """A role that `principal` may assume, holding `document` as its one policy."""
        iam = self.client("iam")
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
        }
        role = iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=43200
        )
        iam.put_role_policy(RoleName=name, PolicyName="grants", PolicyDocument=json.dumps(document))
        return str(role["Role"]["Arn"])

    def role_granting(self, name: str, statements: list[dict[str, Any]]) -> dict[str, str]:
        """The session credentials of a new role `name` holding exactly `statements`: what a
        principal granted them may do in this cloud (the administrator assumes it, so it may be
        created while IAM is enforced)."""
        admin = self.client("sts").get_caller_identity()["Arn"]
        document = {"Version": "2012-10-17", "Statement": statements}
        return self._session(self._create_role(name, {"AWS": str(admin)}, document), name)

    def _assume_roles(self, roles: dict[str, str]) -> None:
        """Each role's session, as the Lambda and Step Functions services would take it."""
        for who, arn in roles.items():
            self.role_credentials[who] = self._session(arn, f"{who}-local")

    def _session(self, arn: str, name: str) -> dict[str, str]:
        session = self.client("sts").assume_role(
            RoleArn=arn, RoleSessionName=name, DurationSeconds=43200
        )["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": str(session["AccessKeyId"]),
            "AWS_SECRET_ACCESS_KEY": str(session["SecretAccessKey"]),
            "AWS_SESSION_TOKEN": str(session["SessionToken"]),
        }

    def _create_administrator(self) -> None:
        iam = self.client("iam")
        name = f"{self.names.prefix}-admin"
        iam.create_user(UserName=name)
        everything = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        iam.put_user_policy(
            UserName=name, PolicyName="administrator", PolicyDocument=json.dumps(everything)
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        self.credentials = {
            "AWS_ACCESS_KEY_ID": str(key["AccessKeyId"]),
            "AWS_SECRET_ACCESS_KEY": str(key["SecretAccessKey"]),
        }

    def _create_functions(self, roles: dict[str, str]) -> None:
        # The code runs in the local runtime; moto only needs a function to route invokes to.
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("README.txt", "Runs in sluice.local.runtime from functions/<stage>/")
        lam = self.client("lambda")
        for stage in STAGES:
            size = self.stages[stage]
            lam.create_function(
                FunctionName=self.names.function(stage),
                Runtime="python3.12",
                Role=roles[stage],
                Handler=f"functions/{stage}/handler.handler",
                Code={"ZipFile": archive.getvalue()},
                Timeout=size.timeout_seconds,
                MemorySize=size.memory_mb,
                EphemeralStorage={"Size": size.ephemeral_storage_mb},
            )

    def _create_state_machine(self, role: str) -> None:
        definition = asl.render(
            asl_substitutions(
                {stage: self.function_arn(stage) for stage in WORKFLOW_STAGES},
                self.queue_urls["failures"],
            )
        )
        created = self.client("stepfunctions").create_state_machine(
            name=self.names.state_machine, definition=definition, roleArn=role, type="STANDARD"
        )
        # The functions were given the ARN before the state machine existed (see _start).
        if created["stateMachineArn"] != self.state_machine_arn:
            raise RuntimeError(f"state machine ARN {created['stateMachineArn']} is not the one")

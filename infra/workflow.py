"""The stage functions, the state machine that runs them, and the failure dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

import sluice
from infra.ingest import DLQ_REDRIVE_SUPPRESSION, MAX_MESSAGE_BYTES, queue_encryption
from infra.layer import DependencyLayer
from infra.settings import EnvironmentSettings, stage_timeout
from infra.storage import Storage
from infra.tracing import FUNCTION_TRACING, STATE_MACHINE_TRACING, TRACING_SUPPRESSION
from sluice import grants
from sluice.config import (
    ASL_PATH,
    PROJECT_ROOT,
    STAGES,
    WORKFLOW_STAGES,
    PipelineNames,
    Settings,
    asl_substitution_keys,
    asl_substitutions,
    function_environment,
)

PYTHON_RUNTIME = lambda_.Runtime.PYTHON_3_12
# The dependency layer is built for this version (infra/layer.py).
PYTHON_VERSION = "3.12"

# The function package is the project root minus everything but what a handler imports.
# Allow-list patterns: ignore all, then re-admit the three folders (and their contents).
CODE_ROOT = PROJECT_ROOT
CODE_FOLDERS = ("sluice", "functions", "contracts")
CODE_EXCLUDE = [
    "*",
    ".*",
    *(pattern for folder in CODE_FOLDERS for pattern in (f"!{folder}", f"!{folder}/**")),
    "__pycache__",
    "*.pyc",
]

_RUNTIME_REASON = (
    "The runtime is pinned to the Python version the dependency layer is built for (3.12); "
    "moving to a newer runtime is a deliberate change of requirements/lambda.txt and the layer."
)


# Object ARNs end in a key pattern: the prefix is the boundary, the file names are per object.
_OBJECT_KEYS_SUPPRESSION = NagPackSuppression(
    id="AwsSolutions-IAM5",
    reason=(
        "Object keys are per source file and day; each statement is bounded to its bucket and "
        "prefix or key name (RAW, TRUSTED _staging/ or */_inferred_contract.yaml, QUARANTINE "
        "*/files/ or */rows/, DELIVERY)."
    ),
    applies_to=[RegexAppliesTo(regex="/^Resource::<Storage[A-Za-z]+[0-9A-F]{8}\\.Arn>\\/.*$/g")],
)
# A log group's ARN ends in `:*` (its streams); the statement names the function's own group.
_LOG_STREAMS_SUPPRESSION = NagPackSuppression(
    id="AwsSolutions-IAM5",
    reason="Log streams are created per function instance inside the function's own log group.",
    applies_to=[
        RegexAppliesTo(regex="/^Resource::<Workflow[A-Za-z]+Logs[0-9A-F]{8}\\.Arn>:\\*$/g")
    ],
)


class Workflow(Construct):
    """The four stage functions and the Standard state machine that runs validate → delivery."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        names: PipelineNames,
        storage: Storage,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self._names = names
        self._storage = storage
        self._code = lambda_.Code.from_asset(str(CODE_ROOT), exclude=CODE_EXCLUDE)
        self._layers = self._runtime_layers()
        self._log_groups: dict[str, logs.LogGroup] = {}
        self.failure_queue = self._failure_queue()
        self.functions = {stage: self._function(stage) for stage in STAGES}
        self.state_machine = self._state_machine()
        self._grant_data_access()
        self._grant_orchestration()

    @property
    def starter(self) -> lambda_.Function:
        """The starter's function, built with the others; Ingest feeds it and points it at the
        state machine."""
        return self.functions["starter"]

    def _runtime_layers(self) -> list[lambda_.ILayerVersion]:
        dependencies = DependencyLayer(
            self, "Dependencies", architecture=self._settings.architecture_name
        )
        self.dependency_layer = dependencies
        return [dependencies.layer]

    def _failure_queue(self) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            "FailureQueue",
            queue_name=self._names.failure_dlq,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            max_message_size_bytes=MAX_MESSAGE_BYTES,
            **queue_encryption(self._storage.messaging_key),  # type: ignore[arg-type]
        )
        NagSuppressions.add_resource_suppressions(
            queue,
            [
                NagPackSuppression(
                    id="AwsSolutions-SQS3",
                    reason=(
                        "This queue is the pipeline's dead-letter queue: the state machine "
                        "sends each failed execution here; nothing consumes it automatically."
                    ),
                ),
                DLQ_REDRIVE_SUPPRESSION,
            ],
        )
        return queue

    def _function(self, stage: str) -> lambda_.Function:
        stage_settings = self._settings.stage(stage)
        function_name = self._names.function(stage)
        title = stage.capitalize()
        log_group = logs.LogGroup(
            self,
            f"{title}Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=self._settings.log_retention,
            removal_policy=self._settings.removal_policy,
        )
        # An own role instead of AWSLambdaBasicExecutionRole: that managed policy may create any
        # log group; this role may only write to the function's own.
        role = iam.Role(
            self,
            f"{title}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Sluice {stage} stage function",
        )
        self._log_groups[stage] = log_group
        function = lambda_.Function(
            self,
            title,
            role=role,
            function_name=function_name,
            description=f"Sluice {stage} stage",
            runtime=PYTHON_RUNTIME,
            architecture=self._settings.architecture,
            code=self._code,
            handler=f"functions/{stage}/handler.handler",
            memory_size=stage_settings.memory_mb,
            timeout=stage_timeout(stage_settings),
            layers=self._layers,
            environment=self._environment(stage),
            log_group=log_group,
            tracing=FUNCTION_TRACING,
            ephemeral_storage_size=Size.mebibytes(stage_settings.ephemeral_storage_mb),
        )
        NagSuppressions.add_resource_suppressions(
            function,
            [
                NagPackSuppression(id="AwsSolutions-L1", reason=_RUNTIME_REASON),
                NagPackSuppression(id="Serverless-LambdaLatestVersion", reason=_RUNTIME_REASON),
                NagPackSuppression(
                    id="Serverless-LambdaDLQ",
                    reason=(
                        "Invoked synchronously only (by Step Functions, or by the SQS event "
                        "source for the starter): a failure goes to the failure DLQ through the "
                        "state machine's Catch, or to the ingest DLQ through the queue's redrive "
                        "policy. An asynchronous-invoke DLQ would never receive anything."
                    ),
                ),
                TRACING_SUPPRESSION,
            ],
            apply_to_children=True,
        )
        NagSuppressions.add_resource_suppressions(
            role,
            [_LOG_STREAMS_SUPPRESSION, TRACING_SUPPRESSION],
            apply_to_children=True,
        )
        return function

    def _environment(self, stage: str) -> dict[str, str]:
        buckets = self._storage
        runtime_settings = Settings(
            raw_bucket=buckets.raw.bucket_name,
            trusted_bucket=buckets.trusted.bucket_name,
            delivery_bucket=buckets.delivery.bucket_name,
            quarantine_bucket=buckets.quarantine.bucket_name,
            max_file_bytes=self._settings.max_file_bytes,
            file_limits=self._settings.file_limits,
            pipeline_version=sluice.__version__,
        )
        # The starter learns the state machine's ARN from Ingest, which wires it to its queue.
        return function_environment(stage, runtime_settings)

    def _state_machine(self) -> sfn.StateMachine:
        substitutions = asl_substitutions(
            {stage: self.functions[stage].function_arn for stage in WORKFLOW_STAGES},
            self.failure_queue.queue_url,
        )
        missing = sorted(set(asl_substitution_keys()) - set(substitutions))
        if missing:
            raise ValueError(f"{ASL_PATH.name} placeholders without a value: {', '.join(missing)}")
        log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            # The vended-logs prefix keeps CloudWatch's resource policy from outgrowing its limit.
            log_group_name=f"/aws/vendedlogs/states/{self._names.state_machine}",
            retention=self._settings.log_retention,
            removal_policy=self._settings.removal_policy,
        )
        state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self._names.state_machine,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(ASL_PATH)),
            definition_substitutions=substitutions,
            logs=sfn.LogOptions(
                destination=log_group,
                level=sfn.LogLevel.ALL,
                # Execution data holds object keys and error causes; history keeps them anyway.
                include_execution_data=self._settings.log_execution_data,
            ),
            tracing_enabled=STATE_MACHINE_TRACING,
        )
        NagSuppressions.add_resource_suppressions(
            state_machine, [TRACING_SUPPRESSION], apply_to_children=True
        )
        return state_machine

    def _arn(self, resource: grants.Resource) -> str | None:
        """A resource of the one grant definition, as this stack's CloudFormation token."""
        storage = self._storage
        buckets = {
            "raw": storage.raw,
            "trusted": storage.trusted,
            "delivery": storage.delivery,
            "quarantine": storage.quarantine,
        }
        match resource:
            case grants.Objects(layer, pattern):
                return buckets[layer].arn_for_objects(pattern)
            case grants.Bucket(layer):
                return buckets[layer].bucket_arn
            case grants.Function(stage):
                return self.functions[stage].function_arn
            case grants.LogGroup(stage):
                return self._log_groups[stage].log_group_arn
            case grants.FailureQueue():
                return self.failure_queue.queue_arn
            case grants.IngestQueue():
                return None  # the starter's SqsEventSource grants its own (grants.py)
            case grants.StateMachine():
                return self.state_machine.state_machine_arn
            case grants.Key("data"):
                return storage.key.key_arn if storage.key is not None else None
            case grants.Key("messaging"):
                key = storage.messaging_key
                return key.key_arn if key is not None else None
        raise ValueError(f"no resource for {resource!r}")

    def _grant(self, principal: iam.IGrantable, definition: tuple[grants.Grant, ...]) -> None:
        for statement in grants.statements(definition, self._arn):
            actions, resources = statement["Action"], statement["Resource"]
            principal.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=[actions] if isinstance(actions, str) else actions,
                    resources=[resources] if isinstance(resources, str) else resources,
                )
            )

    def _grant_data_access(self) -> None:
        """Each stage may touch only its own buckets and prefixes, with the exact actions
        (sluice/grants.py, which the local cloud enforces too)."""
        for stage in STAGES:
            self._grant(self.functions[stage], grants.STAGE_GRANTS[stage])
            NagSuppressions.add_resource_suppressions(
                self.functions[stage].role,  # type: ignore[arg-type]
                [_OBJECT_KEYS_SUPPRESSION],
                apply_to_children=True,
            )

    def _grant_orchestration(self) -> None:
        self._grant(self.state_machine, grants.STATE_MACHINE_GRANTS)

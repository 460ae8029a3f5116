"""The stage functions, the state machine that runs them, and the failure dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

import sluice
from infra.settings import EnvironmentSettings
from infra.storage import Storage
from sluice.config import (
    ASL_PATH,
    METRICS_NAMESPACE,
    PROJECT_ROOT,
    STAGES,
    STAGING_PREFIX,
    WORKFLOW_STAGES,
    PipelineNames,
    Settings,
    asl_substitution_keys,
)

PYTHON_RUNTIME = lambda_.Runtime.PYTHON_3_12
# Managed layers are built per Python version; keep these in step with PYTHON_RUNTIME.
_PANDAS_LAYER = (
    "arn:{partition}:lambda:{region}:336392948345:layer:AWSSDKPandas-Python312{arch}:{v}"
)
_POWERTOOLS_LAYER = (
    "arn:{partition}:lambda:{region}:017000801446:layer:"
    "AWSLambdaPowertoolsPythonV3-python312-{arch}:{v}"
)

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

# Each workflow stage's placeholder in statemachine/pipeline.asl.json.
_ASL_FUNCTION_KEYS = {
    "validate": "ValidateFunctionArn",
    "trusted": "TrustedFunctionArn",
    "delivery": "DeliveryFunctionArn",
}
_ASL_FAILURE_QUEUE_KEY = "FailureQueueUrl"

# What CDK grants for X-Ray tracing and state machine log delivery is `Resource: *` by necessity.
_TRACING_SUPPRESSION = NagPackSuppression(
    id="AwsSolutions-IAM5",
    reason=(
        "X-Ray (PutTraceSegments, PutTelemetryRecords, GetSampling*) and CloudWatch Logs "
        "vended-log delivery actions do not support resource-level permissions."
    ),
    applies_to=["Resource::*"],
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
        self.failure_queue = self._failure_queue()
        self.functions = {stage: self._function(stage) for stage in STAGES}
        self.state_machine = self._state_machine()
        self._grant_data_access()
        self._grant_orchestration()

    @property
    def starter(self) -> lambda_.Function:
        return self.functions["starter"]

    def _runtime_layers(self) -> list[lambda_.ILayerVersion]:
        stack = Stack.of(self)
        arm = self._settings.architecture_name == "arm64"
        pandas_arn = _PANDAS_LAYER.format(
            partition=stack.partition,
            region=stack.region,
            arch="-Arm64" if arm else "",
            v=self._settings.pandas_layer_version,
        )
        powertools_arn = _POWERTOOLS_LAYER.format(
            partition=stack.partition,
            region=stack.region,
            arch="arm64" if arm else "x86_64",
            v=self._settings.powertools_layer_version,
        )
        return [
            lambda_.LayerVersion.from_layer_version_arn(self, "PandasLayer", pandas_arn),
            lambda_.LayerVersion.from_layer_version_arn(self, "PowertoolsLayer", powertools_arn),
        ]

    def _failure_queue(self) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            "FailureQueue",
            queue_name=self._names.failure_dlq,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
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
                )
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
        function = lambda_.Function(
            self,
            title,
            function_name=function_name,
            description=f"Sluice {stage} stage",
            runtime=PYTHON_RUNTIME,
            architecture=self._settings.architecture,
            code=self._code,
            handler=f"functions/{stage}/handler.handler",
            memory_size=stage_settings.memory_mb,
            timeout=stage_settings.timeout,
            layers=self._layers,
            environment=self._environment(stage),
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
        )
        NagSuppressions.add_resource_suppressions(
            function,
            [
                NagPackSuppression(
                    id="AwsSolutions-L1",
                    reason=(
                        "The runtime is pinned to the Python version the managed pandas and "
                        "Powertools layers are built for (python312)."
                    ),
                ),
                _TRACING_SUPPRESSION,
            ],
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
            pipeline_version=sluice.__version__,
        )
        environment = runtime_settings.to_env()
        # Only the starter starts executions; it learns the ARN once the state machine exists.
        del environment["SLUICE_STATE_MACHINE_ARN"]
        environment["POWERTOOLS_SERVICE_NAME"] = f"sluice-{stage}"
        environment["POWERTOOLS_METRICS_NAMESPACE"] = METRICS_NAMESPACE
        return environment

    def _state_machine(self) -> sfn.StateMachine:
        substitutions = {
            key: self.functions[stage].function_arn for stage, key in _ASL_FUNCTION_KEYS.items()
        }
        substitutions[_ASL_FAILURE_QUEUE_KEY] = self.failure_queue.queue_url
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
                include_execution_data=False,
            ),
            tracing_enabled=True,
        )
        NagSuppressions.add_resource_suppressions(
            state_machine, [_TRACING_SUPPRESSION], apply_to_children=True
        )
        self.starter.add_environment("SLUICE_STATE_MACHINE_ARN", state_machine.state_machine_arn)
        return state_machine

    def _grant_data_access(self) -> None:
        raw, trusted = self._storage.raw, self._storage.trusted
        delivery, quarantine = self._storage.delivery, self._storage.quarantine
        validate = self.functions["validate"]
        raw.grant_read(validate)
        # Validate only stages its Parquet; promoting it into TRUSTED is the Trusted stage's job.
        trusted.grant_write(validate, f"{STAGING_PREFIX}/*")
        quarantine.grant_write(validate)

        trusted_fn = self.functions["trusted"]
        trusted.grant_read_write(trusted_fn)
        quarantine.grant_write(trusted_fn)

        delivery_fn = self.functions["delivery"]
        trusted.grant_read(delivery_fn)
        delivery.grant_read_write(delivery_fn)

    def _grant_orchestration(self) -> None:
        self.state_machine.grant_start_execution(self.starter)
        for stage in WORKFLOW_STAGES:
            self.functions[stage].grant_invoke(self.state_machine)
        self.failure_queue.grant_send_messages(self.state_machine)

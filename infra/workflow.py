"""The workflow stages' functions, the state machine that runs them, and the failure dead-letter
queue."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.functions import StageFunctions
from infra.ingest import DLQ_REDRIVE_SUPPRESSION, MAX_MESSAGE_BYTES, queue_encryption
from infra.layer import DependencyLayer
from infra.settings import EnvironmentSettings
from infra.storage import Storage
from infra.tracing import STATE_MACHINE_TRACING, TRACING_SUPPRESSION
from sluice import grants
from sluice.config import (
    ASL_PATH,
    WORKFLOW_STAGES,
    PipelineNames,
    asl_substitution_keys,
    asl_substitutions,
)


class Workflow(Construct):
    """The validate, trusted and delivery functions and the Standard state machine that runs
    them; the dependency layer and the builder every stage function comes from (Ingest builds
    the starter with it)."""

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
        # One layer and one builder for the stack's four functions; the stack hands the builder on.
        self.dependency_layer = DependencyLayer(
            self, "Dependencies", architecture=settings.architecture_name
        )
        self.stage_functions = StageFunctions(
            settings=settings, names=names, storage=storage, layers=[self.dependency_layer.layer]
        )
        self.failure_queue = self._failure_queue()
        self.functions: dict[str, lambda_.Function] = {
            stage: self.stage_functions.build(self, stage) for stage in WORKFLOW_STAGES
        }
        self.state_machine = self._state_machine()
        self._grant_orchestration()

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

    def _grant_orchestration(self) -> None:
        resources: dict[grants.Resource, str] = {
            grants.Function(stage): self.functions[stage].function_arn for stage in WORKFLOW_STAGES
        }
        resources[grants.FailureQueue()] = self.failure_queue.queue_arn
        self.stage_functions.grant(self.state_machine, grants.STATE_MACHINE_GRANTS, resources)

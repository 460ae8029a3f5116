"""The Sluice stack: wires storage, workflow and ingest together and publishes their names."""

from __future__ import annotations

from typing import Any

from aws_cdk import App, Aspects, CfnOutput, Environment, Stack, Tags
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import Construct

from infra.catalog import Catalog
from infra.ingest import Ingest
from infra.monitoring import Monitoring
from infra.settings import EnvironmentSettings
from infra.storage import Storage
from infra.workflow import Workflow
from sluice.config import CONTRACTS_DIR, PipelineNames
from sluice.contracts import Contract, find_contract


def bundled_contracts() -> list[Contract]:
    """The contracts shipped in `contracts/`: each gets its tables in the catalog."""
    found = [
        find_contract(path.stem, CONTRACTS_DIR) for path in sorted(CONTRACTS_DIR.glob("*.yaml"))
    ]
    return [c for c in found if c is not None]


def stack_name(settings: EnvironmentSettings) -> str:
    return f"Sluice-{settings.name}"


def create_stack(app: App) -> SluiceStack:
    """What `app.py` builds: the stack of the env named in context, checked by cdk-nag.

    Findings are reported, not fatal, until the hardening work suppresses or fixes the rest.
    """
    settings = EnvironmentSettings.from_context(app)
    stack = SluiceStack(app, stack_name(settings), settings=settings)
    Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    Aspects.of(app).add(ServerlessChecks(verbose=True))
    return stack


class SluiceStack(Stack):
    """One environment of the pipeline (`Sluice-dev`, `Sluice-prod`)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        **kwargs: Any,
    ) -> None:
        if settings.account or settings.region:
            kwargs.setdefault("env", Environment(account=settings.account, region=settings.region))
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        names = PipelineNames(settings.prefix)

        self.storage = Storage(self, "Storage", settings=settings)
        self.workflow = Workflow(
            self, "Workflow", settings=settings, names=names, storage=self.storage
        )
        self.ingest = Ingest(
            self,
            "Ingest",
            settings=settings,
            names=names,
            raw_bucket=self.storage.raw,
            stage_functions=self.workflow.stage_functions,
            state_machine=self.workflow.state_machine,
            key=self.storage.messaging_key,
        )

        self.catalog = Catalog(
            self, "Catalog", settings=settings, storage=self.storage, contracts=bundled_contracts()
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            key=self.storage.messaging_key,
            functions={"starter": self.ingest.starter, **self.workflow.functions},
            state_machine=self.workflow.state_machine,
            queues={
                "ingest": self.ingest.queue,
                "ingest_dlq": self.ingest.dead_letter_queue,
                "failures": self.workflow.failure_queue,
            },
        )

        Tags.of(self).add("project", "sluice")
        Tags.of(self).add("environment", settings.name)
        self._outputs()

    def _outputs(self) -> None:
        for layer, bucket in self.storage.buckets.items():
            CfnOutput(
                self,
                f"{layer.capitalize()}BucketName",
                value=bucket.bucket_name,
                description=f"{layer.upper()} bucket",
            )
        CfnOutput(self, "IngestQueueUrl", value=self.ingest.queue.queue_url)
        CfnOutput(self, "IngestDeadLetterQueueUrl", value=self.ingest.dead_letter_queue.queue_url)
        CfnOutput(self, "FailureQueueUrl", value=self.workflow.failure_queue.queue_url)
        CfnOutput(self, "StateMachineArn", value=self.workflow.state_machine.state_machine_arn)
        CfnOutput(self, "GlueDatabaseName", value=self.catalog.database_name)
        CfnOutput(self, "AthenaWorkGroupName", value=self.catalog.workgroup.name)
        CfnOutput(self, "AthenaResultsBucketName", value=self.catalog.results.bucket_name)
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
        CfnOutput(self, "DashboardUrl", value=self.monitoring.dashboard_url)

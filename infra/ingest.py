"""RAW object events → ingest queue → starter function → the state machine."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.functions import StageFunctions
from infra.settings import EnvironmentSettings
from sluice.config import PipelineNames
from sluice.retries import MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_FACTOR

__all__ = ["MAX_RECEIVE_COUNT", "VISIBILITY_TIMEOUT_FACTOR", "Ingest", "queue_encryption"]

# The longest SQS keeps a message; a parked event must wait for a human that long.
DLQ_RETENTION = Duration.days(14)
_NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler"
# S3 event notifications are a few KB; SQS' largest message size leaves room for long keys.
MAX_MESSAGE_BYTES = 262_144


# A dead-letter queue has no dead-letter queue of its own.
DLQ_REDRIVE_SUPPRESSION = NagPackSuppression(
    id="Serverless-SQSRedrivePolicy",
    reason="A dead-letter queue is the end of the line: `sluice dlq redrive` redrives it.",
)


def queue_encryption(key: kms.IKey | None) -> dict[str, object]:
    """Queue properties for the pipeline's key, or SQS-managed encryption without one."""
    if key is None:
        return {"encryption": sqs.QueueEncryption.SQS_MANAGED}
    return {
        "encryption": sqs.QueueEncryption.KMS,
        "encryption_master_key": key,
        # Reuse a data key for 5 minutes: far fewer KMS calls at the same protection.
        "data_key_reuse": Duration.minutes(5),
    }


class Ingest(Construct):
    """The ingest queue and its DLQ, fed by RAW's object-created events, and their consumer: the
    starter function, which starts one execution of the state machine per object.

    The starter is built like every stage function (`StageFunctions`: the stack's one code asset
    and layer, an own role and log group), here, next to the queue it drains.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        names: PipelineNames,
        raw_bucket: s3.IBucket,
        stage_functions: StageFunctions,
        state_machine: sfn.IStateMachine,
        key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self._names = names
        self._encryption = queue_encryption(key)
        self.dead_letter_queue = self._dead_letter_queue()
        self.queue = self._queue()
        self._subscribe(raw_bucket)
        self.starter = stage_functions.build(self, "starter", state_machine=state_machine)
        self._drain_with(self.starter)

    def _dead_letter_queue(self) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=self._names.ingest_dlq,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
            max_message_size_bytes=MAX_MESSAGE_BYTES,
            **self._encryption,  # type: ignore[arg-type]
        )
        NagSuppressions.add_resource_suppressions(queue, [DLQ_REDRIVE_SUPPRESSION])
        return queue

    def _queue(self) -> sqs.Queue:
        starter_timeout = self._settings.stage("starter").timeout_seconds
        return sqs.Queue(
            self,
            "Queue",
            queue_name=self._names.ingest_queue,
            enforce_ssl=True,
            max_message_size_bytes=MAX_MESSAGE_BYTES,
            **self._encryption,  # type: ignore[arg-type]
            visibility_timeout=Duration.seconds(
                VISIBILITY_TIMEOUT_FACTOR * starter_timeout
                + self._settings.max_batching_window_seconds
            ),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVE_COUNT
            ),
        )

    def _subscribe(self, raw_bucket: s3.IBucket) -> None:
        # With a key, SqsDestination adds the key-policy grant S3 needs to publish.
        destination = s3n.SqsDestination(self.queue)
        if self._settings.datasets:
            for dataset in self._settings.datasets:
                raw_bucket.add_event_notification(
                    s3.EventType.OBJECT_CREATED,
                    destination,
                    s3.NotificationKeyFilter(prefix=f"{dataset}/"),
                )
        else:
            raw_bucket.add_event_notification(s3.EventType.OBJECT_CREATED, destination)
        # CDK applies bucket notifications through a singleton Lambda of its own at stack level.
        for handler in Stack.of(self).node.children:
            if handler.node.id.startswith(_NOTIFICATIONS_HANDLER_ID):
                NagSuppressions.add_resource_suppressions(
                    handler,
                    [
                        NagPackSuppression(
                            id="AwsSolutions-IAM4",
                            reason=(
                                "CDK's bucket-notifications handler comes with "
                                "AWSLambdaBasicExecutionRole; only its log permissions are used."
                            ),
                            applies_to=[
                                "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                                "AWSLambdaBasicExecutionRole"
                            ],
                        )
                    ],
                    apply_to_children=True,
                )

    def _drain_with(self, starter: lambda_.Function) -> None:
        source = event_sources.SqsEventSource(
            self.queue,
            batch_size=self._settings.batch_size,
            max_batching_window=self._settings.max_batching_window,
            # One bad record must not send its whole batch back to the queue.
            report_batch_item_failures=True,
            max_concurrency=self._settings.max_concurrency,
        )
        starter.add_event_source(source)
        NagSuppressions.add_resource_suppressions(
            starter,
            [
                NagPackSuppression(
                    id="Serverless-LambdaEventSourceMappingDestination",
                    reason=(
                        "SQS event sources take no on-failure destination: a message that keeps "
                        "failing goes to the ingest DLQ through the queue's redrive policy."
                    ),
                )
            ],
            apply_to_children=True,
        )

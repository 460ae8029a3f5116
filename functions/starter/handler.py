"""The starter: one Step Functions execution per object named in an SQS batch of S3 events."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from sluice import metrics as published
from sluice.errors import SluiceDataError
from sluice.handlers import runtime
from sluice.starter import start_executions

logger = Logger(service="sluice-starter")
metrics = published.for_service(published.STARTER)
# A batch where every record failed is still answered with batchItemFailures, so each
# message is retried on its own and reaches the ingest DLQ after maxReceiveCount.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> None:
    rt = runtime()
    try:
        outcome = start_executions(record.body, rt.sfn, rt.settings, rt.store)
    except SluiceDataError as error:
        # Reported here; the message itself goes back and, after maxReceiveCount, to the DLQ.
        logger.error(
            "event rejected",
            extra={"message_id": record.message_id, "reason": error.reason, "detail": str(error)},
        )
        raise
    published.add(metrics, published.EXECUTIONS_STARTED, len(outcome.started))
    published.add(metrics, published.DUPLICATE_EVENTS, len(outcome.already_handled))
    published.add(metrics, published.OBJECTS_GONE, len(outcome.gone))
    for name in outcome.gone:
        # Acknowledged, not retried: no execution could read the object.
        logger.warning("object gone", extra={"message_id": record.message_id, "execution": name})
    logger.info(
        "message handled",
        extra={
            "message_id": record.message_id,
            "started": outcome.started,
            "already_handled": outcome.already_handled,
            "superseded": outcome.superseded,
            "gone": outcome.gone,
            "test_event": bool(outcome.test_events),
        },
    )


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )

"""The delivery stage of the workflow (see sluice.edges.delivery)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

# This stage's edge (sluice.pipeline loads each edge when first asked for).
import sluice.edges.delivery

# This stage's logic, imported at init: the edges import each stage's on first use.
import sluice.stages.delivery  # noqa: F401
from sluice import metrics as published
from sluice import pipeline
from sluice.handlers import run_stage

logger = Logger(service="sluice-delivery")
metrics = published.for_service("delivery")


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_stage("delivery", pipeline.deliver, event, logger, metrics)

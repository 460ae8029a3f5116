"""The trusted stage of the workflow (see sluice.edges.trusted)."""

from __future__ import annotations

from typing import Any

# Trusted downloads its staged file with boto3's managed transfers: imported at init.
import boto3.s3.transfer  # noqa: F401
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

# This stage's edge (sluice.pipeline loads each edge when first asked for).
import sluice.edges.trusted

# This stage's logic, imported at init: the edges import each stage's on first use.
import sluice.stages.trusted  # noqa: F401
from sluice import metrics as published
from sluice import pipeline
from sluice.handlers import run_stage

logger = Logger(service="sluice-trusted")
metrics = published.for_service("trusted")


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_stage("trusted", pipeline.trusted, event, logger, metrics)

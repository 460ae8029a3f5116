"""The validate stage of the workflow (see sluice.edges.validate)."""

from __future__ import annotations

from typing import Any

# Validate reads contracts' YAML and downloads the RAW object with boto3's managed transfers:
# imported at init, as the stage always needs them.
import boto3.s3.transfer  # noqa: F401
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

import sluice.contracts.load
import sluice.edges.validate  # noqa: F401  (this stage's edge, at init)
from sluice import metrics as published
from sluice import pipeline
from sluice.handlers import run_stage

logger = Logger(service="sluice-validate")
metrics = published.for_service("validate")


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_stage("validate", pipeline.validate, event, logger, metrics)

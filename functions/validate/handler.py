"""The validate stage of the workflow (see sluice.edges.validate)."""

from __future__ import annotations

# Validate reads contracts' YAML and downloads the RAW object with boto3's managed transfers:
# imported at init, as the stage always needs them.
import boto3.s3.transfer  # noqa: F401

import sluice.contracts.load
import sluice.edges.validate  # noqa: F401  (this stage's edge, at init)
from sluice import pipeline
from sluice.stage_handler import stage_handler

validate = stage_handler("validate", lambda: pipeline.validate)
logger, metrics, handler = validate.logger, validate.metrics, validate.handler

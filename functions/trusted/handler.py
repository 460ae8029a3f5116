"""The trusted stage of the workflow (see sluice.edges.trusted)."""

from __future__ import annotations

# Trusted downloads its staged file with boto3's managed transfers: imported at init.
import boto3.s3.transfer  # noqa: F401

# This stage's edge (sluice.pipeline loads each edge when first asked for).
import sluice.edges.trusted

# This stage's logic, imported at init: the edges import each stage's on first use.
import sluice.stages.trusted  # noqa: F401
from sluice import pipeline
from sluice.stage_handler import stage_handler

trusted = stage_handler("trusted", lambda: pipeline.trusted)
logger, metrics, handler = trusted.logger, trusted.metrics, trusted.handler

"""The delivery stage of the workflow (see sluice.edges.delivery)."""

from __future__ import annotations

# This stage's edge (sluice.pipeline loads each edge when first asked for).
import sluice.edges.delivery

# This stage's logic, imported at init: the edges import each stage's on first use.
import sluice.stages.delivery  # noqa: F401
from sluice import pipeline
from sluice.stage_handler import stage_handler

delivery = stage_handler("delivery", lambda: pipeline.deliver)
logger, metrics, handler = delivery.logger, delivery.metrics, delivery.handler

"""The three workflow handlers' shared shape: a Powertools logger and metrics for the stage,
and a `handler` that runs the stage's library function through `sluice.handlers.run_stage`.

Each `functions/<stage>/handler.py` still imports its own edge and stage modules at init (what
the stage always needs, loaded in the init phase Lambda does not bill as duration), then asks
this module for its handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from sluice import metrics as published
from sluice.handlers import StageFunction, run_stage


class LambdaHandler(Protocol):
    def __call__(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]: ...


@dataclass(frozen=True)
class StageHandler:
    logger: Logger
    metrics: Metrics
    handler: LambdaHandler


def stage_handler(stage: str, work: Callable[[], StageFunction]) -> StageHandler:
    """The Lambda handler of the workflow stage `stage`, which runs the stage function `work`
    gives (asked on each call, `lambda: pipeline.deliver`, so a test may replace it), with the
    Lambda context but not the event in its logs, and its metrics flushed after every
    invocation."""
    logger = Logger(service=f"sluice-{stage}")
    metrics = published.for_service(stage)

    @logger.inject_lambda_context(log_event=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return run_stage(stage, work(), event, logger, metrics)

    return StageHandler(logger, metrics, handler)

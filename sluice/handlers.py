"""What every Lambda handler shares: lazily built settings and clients, and stage bookkeeping.

Configuration is read on the first invocation, not at import, so a handler module imports
cleanly anywhere (tests, the local runtime) and fails with a clear message only when called.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from sluice import metrics as published
from sluice.aws import ObjectStore, client, transient_aws_errors
from sluice.config import Settings
from sluice.errors import SluiceDataError
from sluice.ports import StageStore, WorkflowClient
from sluice.state import ExecutionState, Section


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    store: ObjectStore
    sfn: WorkflowClient


@cache
def runtime() -> Runtime:
    return Runtime(
        settings=Settings.from_env(), store=ObjectStore(client("s3")), sfn=client("stepfunctions")
    )


def reset_runtime() -> None:
    """Forget cached settings and clients (the local cloud calls this when it restarts)."""
    runtime.cache_clear()


StageFunction = Callable[[ExecutionState, StageStore, Settings], Section]


def run_stage(
    stage: str, fn: StageFunction, event: dict[str, Any], logger: Logger, metrics: Metrics
) -> dict[str, Any]:
    """Run one workflow stage and return the state with that stage's section added.

    The event is parsed here, once (`ExecutionState`), and the stage works on the typed state;
    what comes back is the event as it came with the stage's section put in as JSON."""
    rt = runtime()
    raw_source = event.get("source")
    logger.append_keys(
        execution=event.get("execution"),
        dataset=event.get("dataset"),
        stage=stage,
        source_key=raw_source.get("key") if isinstance(raw_source, dict) else None,
    )
    # Before the stage runs, so its errors are counted per dataset too.
    published.add_dataset(metrics, stage, event.get("dataset"))
    started = time.perf_counter()
    try:
        # A state without the shape (a hand-made input) is a stage error, before any work.
        state = ExecutionState.from_dict(event)
        with transient_aws_errors():
            section = fn(state, rt.store, rt.settings)
    except SluiceDataError as error:
        # Keys, reasons and counts only: row values never reach the logs.
        logger.warning("data error", extra={"reason": error.reason, "key": state.source.key})
        published.add(metrics, published.DATA_ERRORS, 1)
        raise
    except Exception:
        published.add(metrics, published.STAGE_ERRORS, 1)
        raise
    duration_ms = (time.perf_counter() - started) * 1000
    published.add(metrics, published.DURATION_MS, duration_ms)
    # Carried in the state, so lineage records how long each stage took.
    if section.duration_ms is None:
        section = replace(section, duration_ms=round(duration_ms))
    result = section.to_dict()
    published.add_result(metrics, stage, result)
    logger.info(
        "stage done", extra={"result": {k: v for k, v in result.items() if k != "contract"}}
    )
    return {**event, stage: result}

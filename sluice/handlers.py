"""What every Lambda handler shares: lazily built settings and clients, and stage bookkeeping.

Configuration is read on the first invocation, not at import, so a handler module imports
cleanly anywhere (tests, the local runtime) and fails with a clear message only when called.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from sluice.aws import ObjectStore, client, transient_aws_errors
from sluice.config import Settings
from sluice.errors import SluiceDataError


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    store: ObjectStore
    sfn: Any


@cache
def runtime() -> Runtime:
    return Runtime(
        settings=Settings.from_env(), store=ObjectStore(client("s3")), sfn=client("stepfunctions")
    )


def reset_runtime() -> None:
    """Forget cached settings and clients (the local cloud calls this when it restarts)."""
    runtime.cache_clear()


StageFunction = Callable[[dict[str, Any], ObjectStore, Settings], dict[str, Any]]

_COUNT_METRICS = {
    "rows_in": "RowsIn",
    "rows_trusted": "RowsOut",
    "rows_out": "RowsOut",
    "rows_quarantined": "RowsRejected",
    "duplicates": "Duplicates",
}


def run_stage(
    stage: str, fn: StageFunction, event: dict[str, Any], logger: Logger, metrics: Metrics
) -> dict[str, Any]:
    """Run one workflow stage and return the state with that stage's section added."""
    rt = runtime()
    source = event.get("source", {})
    logger.append_keys(
        execution=event.get("execution"),
        dataset=event.get("dataset"),
        stage=stage,
        source_key=source.get("key"),
    )
    started = time.perf_counter()
    try:
        with transient_aws_errors():
            result = fn(event, rt.store, rt.settings)
    except SluiceDataError as error:
        # Keys, reasons and counts only: row values never reach the logs.
        logger.warning("data error", extra={"reason": error.reason, "key": source.get("key")})
        metrics.add_metric(name="DataErrors", unit=MetricUnit.Count, value=1)
        raise
    except Exception:
        metrics.add_metric(name="StageErrors", unit=MetricUnit.Count, value=1)
        raise
    duration_ms = (time.perf_counter() - started) * 1000
    metrics.add_metric(name="DurationMs", unit=MetricUnit.Milliseconds, value=duration_ms)
    # Carried in the state, so lineage records how long each stage took.
    result.setdefault("duration_ms", round(duration_ms))
    for field, metric in _COUNT_METRICS.items():
        if field in result:
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=result[field])
    if "bytes_in" in result:
        metrics.add_metric(name="BytesIn", unit=MetricUnit.Bytes, value=result["bytes_in"])
    logger.info(
        "stage done", extra={"result": {k: v for k, v in result.items() if k != "contract"}}
    )
    return {**event, stage: result}

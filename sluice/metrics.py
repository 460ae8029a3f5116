"""The metrics Sluice publishes: one definition for the handlers that emit them (Powertools EMF)
and for the alarms and the dashboard that read them (infra/monitoring.py).

Each metric says its name, unit, which handlers publish it, and, for what a stage reports about
the data, which field of that stage's result feeds it. The `service` dimension is the handler's
name (Powertools `Metrics(service=...)`); stage metrics also carry the file's `dataset`.

CloudWatch matches an alarm or a graphed metric to a time series by its exact set of dimensions:
an alarm on `{service}` never sees data published only as `{service, dataset}`, and an alarm per
dataset would need every dataset known when the stack is built. So a stage publishes each
metric once, in one EMF document, under two dimension sets: `[service]`, which alarms and the
per-stage graphs read whatever the dataset, and `[service, dataset]`, which the per-dataset
graphs find with a SEARCH expression as datasets appear.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from sluice.config import METRICS_NAMESPACE, WORKFLOW_STAGES

NAMESPACE = METRICS_NAMESPACE
SERVICE = "service"
DATASET = "dataset"
STARTER = "starter"

BY_SERVICE: tuple[str, ...] = (SERVICE,)
BY_DATASET: tuple[str, ...] = (SERVICE, DATASET)

# CloudWatch statistics, as alarms and dashboard widgets name them.
SUM = "Sum"
AVERAGE = "Average"
MINIMUM = "Minimum"


@dataclass(frozen=True)
class Metric:
    name: str
    unit: MetricUnit
    # How a period of it reads: counts and bytes add up, durations and scores are averaged.
    statistic: str
    # The handlers that publish it: the values of its `service` dimension.
    services: tuple[str, ...]
    # Per stage, the field of the stage's result that feeds it; empty for what the handler
    # measures itself (durations, errors, executions started).
    fields: Mapping[str, str] = field(default_factory=dict, hash=False)
    dimension_sets: tuple[tuple[str, ...], ...] = (BY_SERVICE, BY_DATASET)


def _from_result(name: str, unit: MetricUnit, statistic: str, **fields: str) -> Metric:
    return Metric(name, unit, statistic, services=tuple(fields), fields=fields)


ROWS_IN = _from_result("RowsIn", MetricUnit.Count, SUM, validate="rows_in", trusted="rows_in")
ROWS_OUT = _from_result(
    "RowsOut", MetricUnit.Count, SUM, trusted="rows_trusted", delivery="rows_out"
)
ROWS_REJECTED = _from_result("RowsRejected", MetricUnit.Count, SUM, trusted="rows_quarantined")
DUPLICATES = _from_result("Duplicates", MetricUnit.Count, SUM, trusted="duplicates")
BYTES_IN = _from_result("BytesIn", MetricUnit.Bytes, SUM, validate="bytes_in")
BYTES_OUT = _from_result(
    "BytesOut",
    MetricUnit.Bytes,
    SUM,
    validate="bytes_out",
    trusted="bytes_out",
    delivery="bytes_out",
)
# The mean `data_quality_score` of the rows a file kept in TRUSTED (none when it kept none).
MEAN_QUALITY_SCORE = _from_result(
    "MeanQualityScore", MetricUnit.NoUnit, AVERAGE, trusted="mean_quality_score"
)
DURATION_MS = Metric("DurationMs", MetricUnit.Milliseconds, AVERAGE, services=WORKFLOW_STAGES)
# A SluiceDataError: the file is wrong and was quarantined.
DATA_ERRORS = Metric("DataErrors", MetricUnit.Count, SUM, services=WORKFLOW_STAGES)
# Any other exception: the stage failed for a reason that is not the data.
STAGE_ERRORS = Metric("StageErrors", MetricUnit.Count, SUM, services=WORKFLOW_STAGES)
# One SQS batch holds objects of several datasets and the starter publishes one EMF document
# per batch, so its metrics have the `service` dimension only.
EXECUTIONS_STARTED = Metric(
    "ExecutionsStarted", MetricUnit.Count, SUM, services=(STARTER,), dimension_sets=(BY_SERVICE,)
)
DUPLICATE_EVENTS = Metric(
    "DuplicateEvents", MetricUnit.Count, SUM, services=(STARTER,), dimension_sets=(BY_SERVICE,)
)

# Events for objects deleted (or versions removed) before the starter ran: acknowledged, not run.
OBJECTS_GONE = Metric(
    "ObjectsGone", MetricUnit.Count, SUM, services=(STARTER,), dimension_sets=(BY_SERVICE,)
)

STAGE_METRICS = (
    ROWS_IN,
    ROWS_OUT,
    ROWS_REJECTED,
    DUPLICATES,
    BYTES_IN,
    BYTES_OUT,
    MEAN_QUALITY_SCORE,
    DURATION_MS,
    DATA_ERRORS,
    STAGE_ERRORS,
)
STARTER_METRICS = (EXECUTIONS_STARTED, DUPLICATE_EVENTS, OBJECTS_GONE)
ALL = STAGE_METRICS + STARTER_METRICS
BY_NAME = {metric.name: metric for metric in ALL}


def for_service(service: str) -> Metrics:
    """The Powertools metrics a handler publishes with: this namespace, `service` = its name."""
    return Metrics(namespace=NAMESPACE, service=service)


def add(metrics: Metrics, metric: Metric, value: float) -> None:
    metrics.add_metric(name=metric.name, unit=metric.unit, value=value)


def add_dataset(metrics: Metrics, stage: str, dataset: Any) -> None:
    """Publish this invocation's metrics under [service, dataset] as well as [service]."""
    if isinstance(dataset, str) and dataset:
        metrics.add_dimensions(**{SERVICE: stage, DATASET: dataset})


def add_result(metrics: Metrics, stage: str, result: Mapping[str, Any]) -> None:
    """The metrics fed by a stage's result; a field that is absent or None is not published."""
    for metric in STAGE_METRICS:
        name = metric.fields.get(stage)
        value = result.get(name) if name else None
        if value is not None:
            add(metrics, metric, value)

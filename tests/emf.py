"""Run a Lambda handler with its library call stubbed and read the EMF documents it prints
(shared by the handler metric tests and the CDK test of what alarms and widgets read)."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from typing import Any

import pytest

from sluice import handlers, pipeline
from sluice.config import WORKFLOW_STAGES, Settings
from sluice.errors import SluiceDataError
from sluice.state import (
    DeliverySection,
    ExecutionState,
    Section,
    TrustedSection,
    ValidateSection,
)

SETTINGS = Settings(
    raw_bucket="raw",
    trusted_bucket="trusted",
    delivery_bucket="delivery",
    quarantine_bucket="quarantine",
)
# The library function each workflow handler calls (sluice.pipeline.<name>).
PIPELINE_FUNCTIONS = {"validate": "validate", "trusted": "trusted", "delivery": "deliver"}
SECTIONS: dict[str, type[Section]] = {
    "validate": ValidateSection,
    "trusted": TrustedSection,
    "delivery": DeliverySection,
}
# A section of each stage as sluice.pipeline returns it, every field present
# (tests/integration/test_stage_outputs.py checks the real ones have these fields).
RESULTS: dict[str, dict[str, Any]] = {
    "validate": {
        "staged": {"bucket": "trusted", "key": "_staging/transactions/sales-0123.parquet"},
        "format": "csv",
        "rows_in": 5,
        "bytes_in": 180,
        "bytes_out": 2048,
        "contract": {"dataset": "transactions", "version": "1", "inferred": False},
    },
    "trusted": {
        "manifest": {"bucket": "trusted", "key": "_staging/transactions/sales-0123.trusted.json"},
        "rows_in": 5,
        "rows_trusted": 3,
        "rows_quarantined": 1,
        "duplicates": 1,
        "days": 2,
        "bytes_out": 9000,
        "mean_quality_score": 0.975,
    },
    "delivery": {
        "lineage": {"bucket": "delivery", "key": "_lineage/manifests/transactions/sales.json"},
        "detail_files": 2,
        "summary_files": 2,
        "quality_files": 2,
        "rows_out": 3,
        "bytes_out": 12000,
    },
}


class Clock:
    """sluice.handlers' `time`: perf_counter() reads 1.0 when the stage starts, 1.25 after."""

    def __init__(self) -> None:
        self.readings = iter((1.0, 1.25))

    def perf_counter(self) -> float:
        return next(self.readings)


@dataclass
class Context:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = "request-1"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:eu-west-1:123456789012:function:{self.function_name}"


def emf_documents(out: str) -> list[dict[str, Any]]:
    """The EMF documents among printed lines (Powertools logs are JSON lines too)."""
    documents = []
    for line in out.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            documents.append(document)
    return documents


def without_timestamp(document: dict[str, Any]) -> dict[str, Any]:
    aws = dict(document["_aws"])
    assert isinstance(aws.pop("Timestamp"), int)
    return {**document, "_aws": aws}


def _metrics_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)


def run_stage_handler(
    stage: str,
    outcome: dict[str, Any] | Exception,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    dataset: str | None = "transactions",
) -> list[dict[str, Any]]:
    """Invoke functions/<stage>/handler.py with a stage function that returns `outcome` (or
    raises it); the EMF documents it printed, without their timestamps."""
    _metrics_enabled(monkeypatch)
    module = importlib.import_module(f"functions.{stage}.handler")
    runtime = handlers.Runtime(settings=SETTINGS, store=None, sfn=None)  # type: ignore[arg-type]
    monkeypatch.setattr(handlers, "runtime", lambda: runtime)
    monkeypatch.setattr(handlers, "time", Clock())

    def stage_function(state: ExecutionState, store: Any, settings: Settings) -> Section:
        if isinstance(outcome, Exception):
            raise outcome
        return SECTIONS[stage].from_dict(outcome)

    monkeypatch.setattr(pipeline, PIPELINE_FUNCTIONS[stage], stage_function)
    event: dict[str, Any] = {
        "execution": "transactions-sales-0123456789abcdef",
        "source": {"bucket": "raw", "key": "transactions/sales.csv", "etag": '"e"'},
    }
    if dataset is not None:
        event["dataset"] = dataset
    capsys.readouterr()
    try:
        module.handler(event, Context(f"sluice-{stage}"))
    except Exception as error:
        if error is not outcome:
            raise
    return [without_timestamp(d) for d in emf_documents(capsys.readouterr().out)]


def run_starter(
    outcomes: list[pipeline.StartOutcome],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> list[dict[str, Any]]:
    """Invoke the starter on one SQS message per outcome; the EMF documents it printed."""
    _metrics_enabled(monkeypatch)
    module = importlib.import_module("functions.starter.handler")
    runtime = handlers.Runtime(settings=SETTINGS, store=None, sfn=None)  # type: ignore[arg-type]
    monkeypatch.setattr(module, "runtime", lambda: runtime)
    answers = iter(outcomes)
    monkeypatch.setattr(module, "start_executions", lambda *args: next(answers))
    event = {
        "Records": [
            {
                "messageId": f"message-{i}",
                "receiptHandle": f"handle-{i}",
                "body": "{}",
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:sluice-ingest",
                "awsRegion": "eu-west-1",
            }
            for i in range(len(outcomes))
        ]
    }
    capsys.readouterr()
    module.handler(event, Context("sluice-starter"))
    return [without_timestamp(d) for d in emf_documents(capsys.readouterr().out)]


def published_series(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> set[tuple[str, str, str, tuple[str, ...]]]:
    """(namespace, metric name, service, dimension names) of every series the handlers publish:
    each workflow stage run once to the end with every field in its result, once into a data
    error and once into another error; the starter on one message."""
    documents = run_starter([pipeline.StartOutcome(started=["a"])], monkeypatch, capsys)
    for stage in WORKFLOW_STAGES:
        for outcome in (RESULTS[stage], SluiceDataError("EMPTY", "no rows"), OSError("disk")):
            documents += run_stage_handler(stage, outcome, monkeypatch, capsys)
    return {
        (directive["Namespace"], metric["Name"], document["service"], tuple(dimensions))
        for document in documents
        for directive in document["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
        for dimensions in directive["Dimensions"]
    }

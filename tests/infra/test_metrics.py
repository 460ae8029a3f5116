"""The alarms and the dashboard read the metrics the handlers publish: every Sluice metric they
name is in sluice.metrics, and a handler publishes it under the dimensions they ask for."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.monitoring import QUALITY_SCORE_FLOOR
from sluice import metrics
from sluice.config import PROJECT_ROOT
from tests.emf import published_series
from tests.infra.synth import Synth

pytestmark = pytest.mark.slow

# SEARCH('{Namespace,Dim1,Dim2} MetricName="X" dim="value"', 'Statistic', period)
_SEARCH = re.compile(r"SEARCH\('\{([^}]*)\} ([^']*)', '(\w+)', (\d+)\)")
_TERM = re.compile(r'(\w+)="([^"]*)"')

# (namespace, metric name, service or None for any, dimension names, statistic)
Reference = tuple[str, str, str | None, tuple[str, ...], str]


def _dashboard_body(dev: Synth) -> dict[str, Any]:
    """The dashboard's JSON, with CloudFormation tokens (region, ARNs) as placeholders."""
    (dashboard,) = dev.resources("AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    body: dict[str, Any] = json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts))
    return body


def _widget_references(dev: Synth) -> list[Reference]:
    references: list[Reference] = []
    for widget in _dashboard_body(dev)["widgets"]:
        for line in widget["properties"].get("metrics", []):
            if isinstance(line[0], dict):
                match = _SEARCH.fullmatch(line[0]["expression"])
                assert match, line[0]["expression"]
                namespace, *dimensions = match[1].split(",")
                terms = dict(_TERM.findall(match[2]))
                references.append(
                    (
                        namespace,
                        terms.pop("MetricName"),
                        terms.pop(metrics.SERVICE, None),
                        tuple(dimensions),
                        match[3],
                    )
                )
                assert terms == {}, f"unexpected search terms {terms}"
                continue
            *path, options = line if isinstance(line[-1], dict) else [*line, {}]
            namespace, name, *pairs = path
            dims = dict(zip(pairs[::2], pairs[1::2], strict=True))
            references.append(
                (
                    namespace,
                    name,
                    dims.get(metrics.SERVICE),
                    tuple(dims),
                    options.get("stat", "Average"),
                )
            )
    return references


def _alarm_references(dev: Synth) -> list[Reference]:
    references: list[Reference] = []
    for alarm in dev.resources("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        assert "Metrics" not in props, "an alarm on metric math: read its MetricStat here"
        dims = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
        references.append(
            (
                props["Namespace"],
                props["MetricName"],
                dims.get(metrics.SERVICE),
                tuple(dims),
                props["Statistic"],
            )
        )
    return references


def test_alarms_and_widgets_read_series_the_handlers_publish(
    dev: Synth, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given what the handlers really publish: (namespace, name, service, dimension names)
    published = published_series(monkeypatch, capsys)

    # When the Sluice metrics the alarms and the dashboard read are listed
    references = [
        r for r in _alarm_references(dev) + _widget_references(dev) if r[0] == metrics.NAMESPACE
    ]

    # Then each is defined, and published by its service with exactly those dimension names
    assert references
    for namespace, name, service, dimensions, _ in references:
        assert name in metrics.BY_NAME, name
        assert any(
            (p_namespace, p_name, p_dimensions) == (namespace, name, dimensions)
            and (service is None or p_service == service)
            for p_namespace, p_name, p_service, p_dimensions in published
        ), (name, service, dimensions)


def test_the_dashboard_graphs_every_metric_as_defined_for_the_stage_and_per_dataset(
    dev: Synth,
) -> None:
    # Given the Sluice lines of the dashboard
    lines = [r for r in _widget_references(dev) if r[0] == metrics.NAMESPACE]

    # Then every defined metric has a line per service that publishes it, with its statistic
    per_service = {
        (name, service, stat)
        for _, name, service, dims, stat in lines
        if dims == metrics.BY_SERVICE
    }
    assert per_service == {
        (metric.name, service, metric.statistic)
        for metric in metrics.ALL
        for service in metric.services
    }
    # and the per-dataset graphs search the [service, dataset] set
    searched = [r for r in lines if r[3] == metrics.BY_DATASET]
    assert [(name, service, stat) for _, name, service, _, stat in searched] == [
        ("RowsIn", "validate", "Sum"),
        ("RowsOut", "trusted", "Sum"),
        ("RowsRejected", "trusted", "Sum"),
        ("MeanQualityScore", "trusted", "Average"),
        ("BytesOut", "delivery", "Sum"),
        ("DataErrors", None, "Sum"),
    ]


def test_the_quality_alarm_watches_every_datasets_files(dev: Synth) -> None:
    # Given the quality alarm
    (alarm,) = [
        a["Properties"]
        for a in dev.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == "sluice-dev-trusted-quality-score"
    ]

    # Then it reads the worst file's mean score of the [service] series, so any dataset counts
    assert {k: alarm[k] for k in ("Namespace", "MetricName", "Dimensions", "Statistic")} == {
        "Namespace": "Sluice",
        "MetricName": "MeanQualityScore",
        "Dimensions": [{"Name": "service", "Value": "trusted"}],
        "Statistic": "Minimum",
    }
    assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["Period"]) == (
        "LessThanThreshold",
        QUALITY_SCORE_FLOOR,
        300,
    )


def test_deploy_doc_counts_the_alarms_and_custom_metrics_the_stack_has(dev: Synth) -> None:
    # Given the cost notes of docs/deploy.md
    text = (PROJECT_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    (alarms,) = re.findall(r"(\d+) alarms", text)
    ((per_service, per_dataset),) = re.findall(
        r"(\d+) for the stages and the starter, and (\d+) more for each dataset", text
    )

    # Then they count the stack's alarms and the series of each dimension set
    def series(dimensions: tuple[str, ...]) -> int:
        return sum(len(m.services) for m in metrics.ALL if dimensions in m.dimension_sets)

    assert int(alarms) == len(dev.resources("AWS::CloudWatch::Alarm"))
    assert (int(per_service), int(per_dataset)) == (
        series(metrics.BY_SERVICE),
        series(metrics.BY_DATASET),
    )

"""Each handler run prints exactly the EMF document its stage's outcome calls for: the metrics
of sluice.metrics, under [service] and [service, dataset]."""

from __future__ import annotations

import re

import pytest

from sluice import metrics
from sluice.config import PROJECT_ROOT
from sluice.errors import SluiceDataError, SluiceTransientError
from sluice.pipeline import StartOutcome
from sluice.state import StateError
from tests.emf import RESULTS, emf_documents, published_series, run_stage_handler, run_starter


def _document(service: str, series: list[tuple[str, str, list[float]]]) -> dict[str, object]:
    """The EMF document of one stage run for the `transactions` dataset."""
    return {
        "_aws": {
            "CloudWatchMetrics": [
                {
                    "Namespace": "Sluice",
                    "Dimensions": [["service"], ["service", "dataset"]],
                    "Metrics": [{"Name": name, "Unit": unit} for name, unit, _ in series],
                }
            ]
        },
        "service": service,
        "dataset": "transactions",
        **{name: values for name, _, values in series},
    }


def test_validate_publishes_duration_rows_and_bytes_per_stage_and_dataset(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a validate stage that read 5 rows from 180 bytes and wrote 2048
    # When its handler runs (250 ms by the stubbed clock)
    documents = run_stage_handler("validate", RESULTS["validate"], monkeypatch, capsys)

    # Then one EMF document holds its metrics, for the stage and for the dataset
    assert documents == [
        _document(
            "validate",
            [
                ("DurationMs", "Milliseconds", [250.0]),
                ("RowsIn", "Count", [5.0]),
                ("BytesIn", "Bytes", [180.0]),
                ("BytesOut", "Bytes", [2048.0]),
            ],
        )
    ]


def test_trusted_publishes_what_happened_to_the_rows_and_their_mean_quality_score(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a trusted stage: 5 rows in, 3 kept with a mean score of 0.975, 1 rejected, 1 duplicate
    # When its handler runs
    documents = run_stage_handler("trusted", RESULTS["trusted"], monkeypatch, capsys)

    # Then the score is published without a unit, next to the counts and the bytes written
    assert documents == [
        _document(
            "trusted",
            [
                ("DurationMs", "Milliseconds", [250.0]),
                ("RowsIn", "Count", [5.0]),
                ("RowsOut", "Count", [3.0]),
                ("RowsRejected", "Count", [1.0]),
                ("Duplicates", "Count", [1.0]),
                ("BytesOut", "Bytes", [9000.0]),
                ("MeanQualityScore", "None", [0.975]),
            ],
        )
    ]


def test_delivery_publishes_rows_and_bytes_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a delivery stage that delivered 3 DETAIL rows in 12000 bytes of files
    # When its handler runs
    documents = run_stage_handler("delivery", RESULTS["delivery"], monkeypatch, capsys)

    # Then file counts stay in the state only; rows and bytes are metrics
    assert documents == [
        _document(
            "delivery",
            [
                ("DurationMs", "Milliseconds", [250.0]),
                ("RowsOut", "Count", [3.0]),
                ("BytesOut", "Bytes", [12000.0]),
            ],
        )
    ]


def test_a_file_with_no_trusted_rows_publishes_no_quality_score(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a trusted run whose every row was rejected (no score to average)
    result = {
        **RESULTS["trusted"],
        "rows_trusted": 0,
        "rows_quarantined": 5,
        "duplicates": 0,
        "mean_quality_score": None,
    }
    # When its handler runs
    (document,) = run_stage_handler("trusted", result, monkeypatch, capsys)

    # Then it publishes its counts but no MeanQualityScore, rather than a made-up 0
    names = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert names == ["DurationMs", "RowsIn", "RowsOut", "RowsRejected", "Duplicates", "BytesOut"]
    assert (document["RowsOut"], document["RowsRejected"]) == ([0.0], [5.0])


def test_a_data_error_is_counted_for_the_stage_and_the_dataset(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a validate stage that finds the file has no rows
    error = SluiceDataError("HEADER_ONLY", "file has a header but no rows")
    # When its handler runs
    documents = run_stage_handler("validate", error, monkeypatch, capsys)

    # Then DataErrors is the only metric, still under both dimension sets
    assert documents == [_document("validate", [("DataErrors", "Count", [1.0])])]


def test_any_other_error_is_a_stage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a delivery stage that S3 keeps throttling
    # When its handler runs
    documents = run_stage_handler("delivery", SluiceTransientError("SlowDown"), monkeypatch, capsys)

    # Then it counts a StageError, not a DataError
    assert documents == [_document("delivery", [("StageErrors", "Count", [1.0])])]


def test_an_event_without_a_dataset_publishes_per_stage_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an event that names no dataset
    # When the trusted handler runs
    with pytest.raises(StateError, match=r"state\.dataset: expected str, got None"):
        run_stage_handler("trusted", RESULTS["trusted"], monkeypatch, capsys, None)

    # Then the state is refused before any work, as a stage error; the metrics keep their
    # [service] series and no empty dataset is made up
    (document,) = emf_documents(capsys.readouterr().out)
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert "dataset" not in document
    assert document["StageErrors"] == [1.0]


def test_a_warm_function_publishes_each_invocation_under_its_own_dataset(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a validate function that has just handled a `transactions` file
    run_stage_handler("validate", RESULTS["validate"], monkeypatch, capsys)
    # When the same process handles an `orders` file
    (document,) = run_stage_handler("validate", RESULTS["validate"], monkeypatch, capsys, "orders")

    # Then its document has the two dimension sets once, and only the new dataset
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["service"],
        ["service", "dataset"],
    ]
    assert (document["service"], document["dataset"]) == ("validate", "orders")


def test_starter_counts_started_and_duplicate_events_per_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a batch of two messages: one starts two executions, one repeats a known object
    outcomes = [StartOutcome(started=["a", "b"]), StartOutcome(already_handled=["a"])]
    # When the starter handles it
    documents = run_starter(outcomes, monkeypatch, capsys)

    # Then one document per invocation holds a value per message, per service only
    assert documents == [
        {
            "_aws": {
                "CloudWatchMetrics": [
                    {
                        "Namespace": "Sluice",
                        "Dimensions": [["service"]],
                        "Metrics": [
                            {"Name": "ExecutionsStarted", "Unit": "Count"},
                            {"Name": "DuplicateEvents", "Unit": "Count"},
                            {"Name": "ObjectsGone", "Unit": "Count"},
                        ],
                    }
                ]
            },
            "service": "starter",
            "ExecutionsStarted": [2.0, 0.0],
            "DuplicateEvents": [0.0, 1.0],
            "ObjectsGone": [0.0, 0.0],
        }
    ]


def test_the_handlers_publish_exactly_the_defined_metrics(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the definition: each metric, the services that publish it and its dimension sets
    defined = {
        (metrics.NAMESPACE, metric.name, service, dimensions)
        for metric in metrics.ALL
        for service in metric.services
        for dimensions in metric.dimension_sets
    }
    # When every handler runs to the end, into a data error and into another error
    published = published_series(monkeypatch, capsys)

    # Then they publish every defined series and nothing else
    assert published == defined


def test_the_operations_doc_lists_each_metric_as_defined() -> None:
    # Given the metrics table of docs/operations.md
    text = (PROJECT_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| ([\w, ]+) \|", text, flags=re.MULTILINE)

    # Then it names every metric once, with its unit and the handlers that publish it
    assert rows == [
        (metric.name, metric.unit.value, ", ".join(metric.services)) for metric in metrics.ALL
    ]

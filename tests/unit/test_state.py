"""The typed state between stages (`sluice.state`): parsed once from the workflow's JSON, given
back as the same JSON, and refused, naming the field, where it does not have the shape."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sluice.lake import SourceObject
from sluice.state import (
    CaughtError,
    DayPointer,
    DeliverySection,
    ExecutionState,
    LineageManifest,
    Pointer,
    RowCounts,
    StateError,
    TrustedManifest,
    TrustedSection,
    ValidateSection,
    metrics_of,
)
from tests.emf import RESULTS

SOURCE = {"bucket": "raw", "key": "sales/a.csv", "version_id": "v1", "etag": '"e"', "size": 10}
# The sections as the stages return them (every field), with a workbook's sheets and durations.
VALIDATE = {
    **RESULTS["validate"],
    "sheets": {
        "read": ["Jan"],
        "read_count": 1,
        "skipped": [{"sheet": "Cover", "why": "empty"}],
        "skipped_count": 1,
    },
    "duration_ms": 41,
}
TRUSTED = {**RESULTS["trusted"], "duration_ms": 70}
DELIVERY = {**RESULTS["delivery"], "duration_ms": 90}
STATE: dict[str, Any] = {
    "execution": "sales-a-1",
    "dataset": "sales",
    "source": SOURCE,
    "validate": VALIDATE,
    "trusted": TRUSTED,
    "delivery": DELIVERY,
}


def test_a_finished_state_is_typed_and_given_back_as_the_same_json() -> None:
    # Given the state of an execution that went through the three stages
    # When it is parsed
    state = ExecutionState.from_dict(copy.deepcopy(STATE))
    # Then each section is its stage's model, with its fields typed
    assert state.source == SourceObject("raw", "sales/a.csv", "v1", '"e"', 10)
    assert isinstance(state.validate, ValidateSection)
    assert state.validated().staged == Pointer(
        "trusted", "_staging/transactions/sales-0123.parquet"
    )
    assert state.validated().sheets is not None
    assert state.validated().sheets.skipped == (("Cover", "empty"),)
    assert state.transformed().counts == RowCounts(5, 3, 1, 1)
    assert isinstance(state.delivery, DeliverySection)
    assert state.delivery.lineage.key == "_lineage/manifests/transactions/sales.json"
    # And it is the same JSON again
    assert state.to_dict() == STATE
    # And a stage's numbers are what the ops commands show of it
    assert metrics_of(state.delivery) == {
        "detail_files": 2,
        "summary_files": 2,
        "quality_files": 2,
        "rows_out": 3,
        "bytes_out": 12000,
        "duration_ms": 90,
    }


def test_a_caught_error_stands_in_its_stages_section_and_a_new_run_replaces_it() -> None:
    # Given a state whose Trusted failed: the Catch put its error in the trusted section
    failed = {**STATE, "trusted": {"Error": "Runtime.OutOfMemory", "Cause": "oom"}}
    del failed["delivery"]
    # When it is parsed
    state = ExecutionState.from_dict(failed)
    # Then the section is the error, which Delivery cannot use, and which has no metrics
    assert state.trusted == CaughtError("Runtime.OutOfMemory", "oom")
    assert state.result("trusted") is None
    assert metrics_of(state.trusted) == {}
    with pytest.raises(StateError, match="no trusted section: run the file from Trusted"):
        state.transformed()
    # When the stage runs again and succeeds
    again = state.with_section(TrustedSection.from_dict(TRUSTED))
    # Then its section replaces the error
    assert again.to_dict() == {k: v for k, v in STATE.items() if k != "delivery"}


def test_the_starters_state_has_no_sections_and_trusted_cannot_run_on_it() -> None:
    # Given the state the starter puts in an execution's input
    state = ExecutionState.from_dict({"execution": "e", "dataset": "sales", "source": SOURCE})
    # Then it has no section, and Trusted is told to run the file from Validate
    assert (state.validate, state.trusted, state.delivery) == (None, None, None)
    with pytest.raises(StateError, match="no validate section: run the file from Validate"):
        state.validated()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dataset": None}, r"state\.dataset: expected str, got None"),
        ({"source": "raw/a.csv"}, r"source: expected an object, got str"),
        ({"source": {"bucket": "raw"}}, r"source\.key: expected str, got None"),
        (
            {"validate": {**VALIDATE, "rows_in": "5"}},
            r"validate\.rows_in: expected int, got '5'",
        ),
        (
            {"validate": {**VALIDATE, "staged": {"bucket": "trusted"}}},
            r"validate\.staged\.key: expected str, got None",
        ),
        ({"trusted": {**TRUSTED, "days": True}}, r"trusted\.days: expected int, got True"),
        (
            {"delivery": {**DELIVERY, "lineage": None}},
            r"delivery\.lineage: expected an object, got NoneType",
        ),
    ],
)
def test_a_state_without_the_shape_is_refused_naming_the_field(
    change: dict[str, Any], message: str
) -> None:
    # Given a state with one field wrong
    # When it is parsed
    # Then it is refused, saying which field and what it holds
    with pytest.raises(StateError, match=message):
        ExecutionState.from_dict({**STATE, **change})


def test_integral_numbers_read_back_as_floats_are_ints_and_a_whole_score_is_a_float() -> None:
    # Given a section whose counts came back as floats and whose score is a whole number
    section = TrustedSection.from_dict({**TRUSTED, "rows_in": 5.0, "mean_quality_score": 1})
    # Then the counts are ints and the score a float
    assert (section.counts.rows_in, section.mean_quality_score) == (5, 1.0)
    assert isinstance(section.mean_quality_score, float)


def test_a_trusted_manifest_keeps_its_json_and_lists_every_output() -> None:
    # Given a Trusted manifest as Trusted writes it
    day = {"bucket": "trusted", "key": "sales/d1.parquet", "day": "2024-01-01", "rows": 3}
    manifest = {
        "source": SOURCE,
        "dataset": "sales",
        "contract": {"dataset": "sales", "version": "2", "columns": {"id": {"type": "int"}}},
        "trusted": [{**day, "bytes": 100}],
        "quarantined": [{**day, "bucket": "quarantine", "bytes": 2 << 20}],
        "partials": [{"bucket": "trusted", "key": "_summaries/a.parquet", "days": 1, "rows": 1}],
        "day_rows": [
            {"bucket": "trusted", "key": "_staging/a.rows", "days": ["2024-01-01"], "rows": [3]}
        ],
        "stale_days": ["2023-12-31"],
        "counts": {"rows_in": 4, "rows_trusted": 3, "rows_quarantined": 1, "duplicates": 0},
        "mean_quality_score": 0.95,
        "days": {"2024-01-01": {"rows_in": 4, "quality_score_min": None}},
        "stale_quality_days": [],
        "quality": {"reasons": {"NEG": 1}, "flags": {}, "nulls": {"name": 2}, "outliers": 0},
    }
    # When it is parsed
    parsed = TrustedManifest.from_dict(manifest)
    # Then it is the same JSON again, its outputs are every object it names, and only the
    # small day file is small
    assert parsed.to_dict() == manifest
    assert [o.key for o in parsed.outputs()] == [
        "sales/d1.parquet",
        "sales/d1.parquet",
        "_summaries/a.parquet",
        "_staging/a.rows",
    ]
    assert [p.is_small for p in (*parsed.trusted, *parsed.quarantined)] == [True, False]
    # And a day file whose size is not known is not taken as small
    assert not DayPointer("trusted", "k", "2024-01-01", 3).is_small


def test_a_manifest_without_the_newer_lists_reads_them_as_empty() -> None:
    # Given a manifest of a run before partials and the day-rows hand-over
    old = {"source": SOURCE, "dataset": "sales", "contract": {}, "trusted": []}
    # When it is parsed
    parsed = TrustedManifest.from_dict(old)
    # Then those lists are empty, not missing
    assert (parsed.partials, parsed.day_rows, parsed.stale_days) == ((), (), ())
    assert parsed.counts == RowCounts()


def test_a_lineage_manifest_keeps_its_json() -> None:
    # Given a lineage manifest with a TRUSTED and a DELIVERY output
    lineage = {
        "execution": "sales-a-1",
        "dataset": "sales",
        "source": SOURCE,
        "contract": {"dataset": "sales", "version": "2", "inferred": False},
        "counts": {"rows_in": 4, "rows_trusted": 3, "rows_quarantined": 1, "duplicates": 0},
        "outputs": [
            {
                "bucket": "t",
                "key": "k1",
                "day": "2024-01-01",
                "rows": 3,
                "bytes": 9,
                "layer": "trusted",
            },
            {
                "bucket": "d",
                "key": "k2",
                "record_type": "DETAIL",
                "day": "2024-01-01",
                "rows": 3,
                "layer": "delivery",
            },
        ],
        "durations_ms": {"validate": 1, "trusted": 2, "delivery": 3},
        "delivered_at": "2024-01-02T00:00:00+00:00",
    }
    # When it is parsed
    parsed = LineageManifest.from_dict(lineage)
    # Then its outputs are typed and it is the same JSON again
    assert [(o.layer, o.record_type, o.bytes) for o in parsed.outputs] == [
        ("trusted", None, 9),
        ("delivery", "DETAIL", None),
    ]
    assert parsed.to_dict() == lineage


def test_a_manifest_from_before_the_partials_were_one_object_is_read() -> None:
    # Given a manifest whose partials are a pointer per day (no `days` count)
    old = {
        "source": SOURCE,
        "dataset": "sales",
        "contract": {},
        "partials": [{"bucket": "trusted", "key": "_summaries/d1.parquet", "day": "2024-01-01"}],
    }
    # When it is parsed (Trusted reads the last run's manifest to drop its stale outputs)
    parsed = TrustedManifest.from_dict(old)
    # Then its partials are pointers still, to be removed like the others
    assert [o.key for o in parsed.outputs()] == ["_summaries/d1.parquet"]


def test_a_section_from_before_a_count_existed_reads_it_as_zero() -> None:
    # Given a validate section written before `bytes_out` was counted
    old = {k: v for k, v in VALIDATE.items() if k != "bytes_out"}
    # When the state is parsed
    state = ExecutionState.from_dict({**STATE, "validate": old})
    # Then the count is 0, and what Trusted needs (the staged file) is there
    assert state.validated().bytes_out == 0
    assert state.validated().staged.key == "_staging/transactions/sales-0123.parquet"


def test_readers_leave_out_a_section_that_does_not_parse_and_keep_the_rest() -> None:
    # Given a state whose delivery section has lost its pointer
    broken = {**STATE, "delivery": {**DELIVERY, "lineage": None}}
    # When the stages parse it, Then it is refused
    with pytest.raises(StateError, match=r"delivery\.lineage"):
        ExecutionState.from_dict(broken)
    # When a reader (the report, ops) parses it leniently
    state = ExecutionState.from_dict(broken, lenient=True)
    # Then only that section is left out
    assert state.delivery is None
    assert state.transformed().counts == RowCounts(5, 3, 1, 1)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({**SOURCE, "size": [1]}, r"source\.size: expected int"),
        ({**SOURCE, "version_id": 3}, r"source\.version_id: expected str"),
    ],
)
def test_a_source_with_a_field_of_the_wrong_type_is_refused_naming_it(
    source: dict[str, Any], message: str
) -> None:
    # Given a state whose source has one field of the wrong type
    # When it is parsed, Then the field is named
    with pytest.raises(StateError, match=message):
        ExecutionState.from_dict({**STATE, "source": source})


def test_a_day_that_is_not_a_date_is_refused_naming_it() -> None:
    # Given a day pointer whose day is not an ISO date
    pointer = {"bucket": "t", "key": "k", "day": "2024-13-01", "rows": 1}
    # When it is parsed, Then the field is named
    with pytest.raises(StateError, match=r"p\.day: expected an ISO date"):
        DayPointer.from_dict(pointer, "p")


def test_the_sections_json_keeps_the_order_the_stages_always_wrote() -> None:
    # Given the sections of a finished state
    state = ExecutionState.from_dict(copy.deepcopy(STATE))
    # When each is given back as JSON, Then its keys come in the order they always did
    assert list(state.validated().to_dict()) == list(VALIDATE)
    assert list(state.transformed().to_dict()) == list(TRUSTED)
    assert state.delivery is not None
    assert list(state.delivery.to_dict()) == list(DELIVERY)

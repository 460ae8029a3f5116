"""The one mapping from what bad input raises to a reason code, and what it leaves alone."""

from __future__ import annotations

import errno
import io
import json
import zipfile
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml
from botocore.exceptions import ClientError, ParamValidationError

from sluice.errors import SluiceDataError
from sluice.failures import as_data_error, reason_of


def raised(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except Exception as exc:  # the exception is what is looked at
        return exc
    raise AssertionError("nothing was raised")


def deep_json() -> object:
    return json.loads("[" * 100_000 + "]" * 100_000)


def openpyxl_on_a_zip_that_is_no_workbook() -> object:
    import openpyxl

    body = io.BytesIO()
    with zipfile.ZipFile(body, "w") as archive:
        archive.writestr("hello.txt", "hi")
    body.seek(0)
    return openpyxl.load_workbook(body, read_only=True)


def bad_regex() -> object:
    return pc.match_substring_regex(pa.array(["a"]), "(?=a)")


@pytest.mark.parametrize(
    ("make", "stage", "reason"),
    [
        (lambda: pc.cast(pa.array([{"a": 1}]), pa.string()), "validate", "UNREADABLE"),
        (lambda: pc.cast(pa.array([{"a": 1}]), pa.string()), "trusted", "UNPROCESSABLE"),
        (lambda: pc.cast(pa.array(["x"]), pa.int64()), "trusted", "UNPROCESSABLE"),
        (lambda: b"\xff".decode("utf-8"), "validate", "UNREADABLE_ENCODING"),
        (lambda: b"\xff".decode("utf-8"), "trusted", "UNREADABLE_ENCODING"),
        (deep_json, "validate", "TOO_DEEP"),
        (lambda: yaml.safe_load("a: [1"), "validate", "INVALID_CONTRACT"),
        (bad_regex, "trusted", "INVALID_CONTRACT"),
        (lambda: zipfile.ZipFile(io.BytesIO(b"PK\x03\x04junk")), "validate", "UNREADABLE"),
        (lambda: json.loads("{"), "validate", "UNREADABLE"),
        (openpyxl_on_a_zip_that_is_no_workbook, "validate", "UNREADABLE"),
    ],
)
def test_bad_input_maps_to_its_reason(make: Callable[[], object], stage: str, reason: str) -> None:
    # Given what a reader, a cast or a contract raised on bad input
    error = raised(make)
    # When it reaches a stage's edge
    mapped = as_data_error(error, stage)
    # Then it is a data error with the reason, naming the original exception's type
    assert mapped is not None and mapped.reason == reason
    assert mapped.details["error_type"].endswith(type(error).__name__)
    assert type(error).__name__ in mapped.message


def throttled() -> ClientError:
    return ClientError({"Error": {"Code": "SlowDown", "Message": "slow"}}, "GetObject")


@pytest.mark.parametrize(
    ("make", "stage"),
    [
        (lambda: (_ for _ in ()).throw(MemoryError()), "validate"),
        (lambda: (_ for _ in ()).throw(pa.ArrowMemoryError("out of memory")), "trusted"),
        (lambda: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")), "validate"),
        (lambda: (_ for _ in ()).throw(throttled()), "validate"),
        (lambda: (_ for _ in ()).throw(ParamValidationError(report="bad")), "validate"),
        (lambda: {}["missing"], "validate"),  # Sluice's own KeyError: a bug
        (lambda: None.upper(), "validate"),  # type: ignore[attr-defined]
        (lambda: int("x"), "trusted"),  # a ValueError in judging: a bug, not the file
        (lambda: (_ for _ in ()).throw(AssertionError("row accounting broken")), "trusted"),
    ],
)
def test_transient_errors_and_bugs_are_not_data_errors(
    make: Callable[[], object], stage: str
) -> None:
    # Given an error that is transient or a bug of Sluice's own, raised in this stage
    # When it is mapped, Then it has no data reason and is no data error
    assert reason_of(raised(make), stage) is None
    assert as_data_error(raised(make), stage) is None


def test_a_data_error_stands_for_itself() -> None:
    # Given a data error
    error = SluiceDataError("EMPTY_FILE", "file has no content")
    # When it is mapped, Then it is itself
    assert as_data_error(error, "validate") is error


def test_the_message_step_functions_records_carries_no_input_values() -> None:
    # Given a cast error whose text holds an input value
    error = raised(lambda: pc.cast(pa.array(["secret-value"]), pa.int64()))
    # When it is mapped to a data error
    mapped = as_data_error(error, "trusted")
    # Then its message (which Step Functions records) does not hold the value; only its detail does
    assert mapped is not None
    assert "secret-value" not in str(mapped)
    assert "secret-value" in mapped.to_dict()["detail"]  # reason.json, beside the file's copy

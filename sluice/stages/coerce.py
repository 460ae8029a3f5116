"""Turn staged values (usually strings) into contract types, keeping what failed and why."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.stages.arrow_types import ARROW_TYPES as ARROW_TYPES
from sluice.stages.numbers import (
    as_decimal,
    fast_cast,
    non_finite_mask,
    number_cast,
    spelled_non_finite,
    with_spelled_non_finite,
)
from sluice.stages.temporal import parse_dates, parse_timestamps

_TRUE = ["true", "t", "yes", "y", "1"]
_FALSE = ["false", "f", "no", "n", "0"]


@dataclass(frozen=True)
class Coerced:
    """A column in its contract type; `invalid` marks values present in the input that failed.

    `non_finite` marks the NaN and infinite numbers of a numeric column (text such as `nan`,
    `-Infinity` or `1e400`, or a float's own NaN and infinities): neither invalid nor missing.
    A float column keeps them in `values`; an int or decimal column, which cannot hold them,
    has a null there. Whether the row is kept is the contract's call (`rules.check_batch`)."""

    values: pa.Array
    invalid: pa.Array
    non_finite: pa.Array | None = None


def _as_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def _none_invalid(n: int) -> pa.Array:
    return pa.array(np.zeros(n, dtype=bool))


_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)


def _unreadable(array: pa.Array, ctype: str) -> Coerced:
    """Every present value invalid: a column no contract type can be read from."""
    return Coerced(pa.nulls(len(array), ARROW_TYPES[ctype]), pc.is_valid(array))


def _nested_text(array: pa.Array) -> Coerced:
    """Nested values as their JSON text, as the JSON reader hands a nested value to a string
    column (a Python loop: only a nested column a contract calls a string comes here)."""
    texts = [
        None if value is None else json.dumps(value, sort_keys=True, default=str)
        for value in array.to_pylist()
    ]
    return Coerced(pa.array(texts, pa.string()), _none_invalid(len(array)))


def _as_text(array: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """Bytes as UTF-8 text: (text, the present values that are not UTF-8, or None)."""
    try:
        return pc.cast(array, pa.string()), None
    except _CAST_ERRORS:
        pass
    texts: list[str | None] = []
    bad: list[bool] = []
    for value in array.to_pylist():  # only a column holding bytes that are not UTF-8
        try:
            texts.append(None if value is None else bytes(value).decode("utf-8"))
            bad.append(False)
        except UnicodeDecodeError:
            texts.append(None)
            bad.append(True)
    return pa.array(texts, pa.string()), pa.array(bad)


def _with(result: Coerced, invalid: pa.Array | None, non_finite: pa.Array | None) -> Coerced:
    """`result` with more invalid and non-finite values (masks over the same rows)."""
    if invalid is not None:
        result = Coerced(result.values, pc.or_(result.invalid, invalid), result.non_finite)
    if non_finite is not None:
        mask = non_finite if result.non_finite is None else pc.or_(result.non_finite, non_finite)
        result = Coerced(result.values, result.invalid, mask)
    return result


@cache
def _calendar(ctype: str) -> tuple[pa.Scalar, pa.Scalar]:
    """The first and last date or time of years 1 to 9999, as a value of `ctype` (built on
    first use, as `_int64_range` is)."""
    if ctype == "date":
        return pa.scalar(date(1, 1, 1), pa.date32()), pa.scalar(date(9999, 12, 31), pa.date32())
    return (
        pa.scalar(datetime(1, 1, 1), ARROW_TYPES[ctype]),
        pa.scalar(datetime(9999, 12, 31, 23, 59, 59, 999999), ARROW_TYPES[ctype]),
    )


def _in_calendar(result: Coerced, ctype: str) -> Coerced:
    """`result` with its dates or times outside years 1 to 9999 (year 0, `9999-12-31T23:00-05`
    in UTC, a Parquet value in year 20000) invalid: no lake day, Python date or Athena value
    holds them."""
    low, high = _calendar(ctype)
    values = result.values
    outside = pc.fill_null(pc.or_(pc.less(values, low), pc.greater(values, high)), False)
    if not pc.any(outside).as_py():
        return result
    kept = pc.if_else(outside, pa.scalar(None, values.type), values)
    return Coerced(kept, pc.or_(result.invalid, outside), result.non_finite)


def coerce(column: pa.Array | pa.ChunkedArray, ctype: str) -> Coerced:
    """Cast one column to `ctype`; a present value that cannot be read is null + invalid.
    A date or timestamp must fall in years 1 to 9999 (a timestamp once in UTC)."""
    result = _coerce(column, ctype)
    return _in_calendar(result, ctype) if ctype in ("date", "timestamp") else result


def _coerce(column: pa.Array | pa.ChunkedArray, ctype: str) -> Coerced:
    """`coerce` before the calendar's bounds are checked.

    A native (Parquet) column is cast when Arrow can do so without loss, else read as its
    text. Nested values (struct, list, map, union) read as a string (their JSON text) and as
    no other type; bytes only as their UTF-8 text: other values are invalid, never an error.
    NaN and the infinities of a numeric column are marked `non_finite`."""
    array = _as_array(column)
    target = ARROW_TYPES[ctype]
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_nested(array.type):
        return _nested_text(array) if ctype == "string" else _unreadable(array, ctype)
    if pa.types.is_string(array.type):
        return _coerce_text(array, ctype)
    if (
        pa.types.is_binary(array.type)
        or pa.types.is_large_binary(array.type)
        or (pa.types.is_fixed_size_binary(array.type))
    ):
        text, bad = _as_text(array)
        return _with(_coerce_text(text, ctype), bad, None)
    if pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type):
        try:
            return _coerce_text(pc.cast(array, pa.string()), ctype)
        except _CAST_ERRORS:
            return _unreadable(array, ctype)
    if pa.types.is_temporal(array.type) and ctype in ("int", "float", "decimal", "bool"):
        # A date, time, timestamp or duration is no number: its integer is a count of the
        # writer's units (micro- or milliseconds since 1970), which a text file never holds.
        return _unreadable(array, ctype)
    if pa.types.is_timestamp(array.type) and ctype == "date":
        return _timestamp_dates(array)
    if ctype == "bool" and not pa.types.is_boolean(array.type):
        # A number is a bool as its text is (1 and 0), not as Arrow's cast has it (-1 is true).
        try:
            return _coerce_text(pc.cast(array, pa.string()), ctype)
        except _CAST_ERRORS:
            return _unreadable(array, ctype)
    non_finite = non_finite_mask(array) if ctype in ("int", "float", "decimal") else None
    if non_finite is not None and ctype != "float":
        array = pc.if_else(non_finite, pa.scalar(None, array.type), array)  # int, decimal: none
    if array.type == target:
        return Coerced(array, _none_invalid(len(array)), non_finite)
    try:
        values = pc.cast(array, target)
        return Coerced(values, _none_invalid(len(array)), non_finite)
    except _CAST_ERRORS:
        pass
    try:
        text = pc.cast(array, pa.string())
    except _CAST_ERRORS:
        return _unreadable(array, ctype)
    return _with(_coerce_text(text, ctype), None, non_finite)


def _timestamp_dates(array: pa.Array) -> Coerced:
    """A native timestamp as a date, as the text of one reads: the date as written (in its own
    zone) when the time is midnight; any other time of day does not read (a cast would drop it)."""
    local = array if array.type.tz is None else pc.local_timestamp(array)
    midnight = pc.fill_null(pc.equal(pc.floor_temporal(local, unit="day"), local), False)
    invalid = pc.and_(pc.is_valid(array), pc.invert(midnight))
    dates = pc.cast(local, pa.date32())
    return Coerced(pc.if_else(invalid, pa.scalar(None, pa.date32()), dates), invalid)


def _coerce_text(text: pa.Array, ctype: str) -> Coerced:
    if ctype == "string":
        return Coerced(text, _none_invalid(len(text)))
    fast = fast_cast(text, ctype)
    if fast is not None:
        return Coerced(fast, _none_invalid(len(text)), non_finite_mask(fast))
    non_finite: pa.Array | None = None
    if ctype == "int":
        values = number_cast(text, "int")
    elif ctype in ("float", "decimal"):
        values = with_spelled_non_finite(text, number_cast(text, "float"))
        non_finite = non_finite_mask(values)
        if ctype == "decimal":
            values = as_decimal(values, non_finite)
    elif ctype == "bool":
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(text))
        is_true = pc.is_in(lowered, pa.array(_TRUE))
        is_false = pc.is_in(lowered, pa.array(_FALSE))
        values = pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))
    elif ctype == "date":
        values = parse_dates(text)
    elif ctype == "timestamp":
        values = parse_timestamps(text)
    else:  # pragma: no cover - contracts are validated on load
        raise ValueError(f"unknown type {ctype}")
    present = pc.invert(pc.is_null(text))
    invalid = pc.and_(present, pc.is_null(values))
    if ctype == "int" and pc.any(invalid).as_py():
        # An int column's `nan` or `inf` is a non-finite number, not a malformed one.
        spelled = spelled_non_finite(text)
        if pc.any(spelled).as_py():
            non_finite = spelled
            invalid = pc.and_(invalid, pc.invert(spelled))
    elif non_finite is not None:
        invalid = pc.and_(invalid, pc.invert(non_finite))
    return Coerced(values, invalid, non_finite)


def infer_type(column: pa.Array | pa.ChunkedArray) -> str:
    """The narrowest contract type every present value of `column` reads as."""
    array = _as_array(column)
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        for name, arrow_type in ARROW_TYPES.items():
            if array.type == arrow_type:
                return name
        if pa.types.is_integer(array.type):
            return "int"
        if pa.types.is_floating(array.type):
            return "float"
        return "string"
    present = array.drop_null()
    if len(present) == 0:
        return "string"
    for candidate in ("int", "float", "date", "timestamp", "bool"):
        # A column holding `nan` or `inf` is not inferred to be numeric: its rows would all
        # be rejected as NON_FINITE by the contract the file itself gave.
        result = coerce(present, candidate)
        if not pc.any(result.invalid).as_py() and result.non_finite is None:
            return candidate
    return "string"

"""Number parsing: plain values take Arrow's parser, odd ones the full pattern, same results."""

from __future__ import annotations

import math
import random
import re
from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from sluice.stages import coerce as coerce_mod
from sluice.stages.coerce import coerce
from sluice.stages.numbers import FLOAT_PATTERN, INT_PATTERN

INT64_MAX = (1 << 63) - 1


def test_ints_with_odd_values_keep_every_readable_one() -> None:
    # Given text with signs, blanks, words, fractions and the edges of int64
    text = ["12", "+7", " 8 ", "x", str(INT64_MAX), str(INT64_MAX + 1), None, "-3", "1.5", "-"]
    # When it is read as int
    result = coerce(pa.array(text, pa.string()), "int")
    # Then every readable value is kept, and only the unreadable are invalid (a null is missing)
    assert result.values.to_pylist() == [12, 7, 8, None, INT64_MAX, None, None, -3, None, None]
    assert result.invalid.to_pylist() == [
        False, False, False, True, False, True, False, False, True, True,
    ]  # fmt: skip


def test_floats_with_odd_values_keep_every_readable_one() -> None:
    # Given text with signs, blanks, exponents, words and fractions with a missing digit
    text = ["12.50", "abc", "12.50.1", None, "-3", " 4 ", "1e3", "+2.", ".5", "-", "n/a"]
    # When it is read as float
    result = coerce(pa.array(text, pa.string()), "float")
    # Then every readable value is kept, and only the unreadable are invalid (a null is missing)
    assert result.values.to_pylist() == [
        12.5, None, None, None, -3.0, 4.0, 1000.0, 2.0, 0.5, None, None,
    ]  # fmt: skip
    assert result.invalid.to_pylist() == [
        False, True, True, False, False, False, False, False, False, True, True,
    ]  # fmt: skip


def _expected(value: str | None, ctype: str) -> int | float | None:
    """The contract's definition of a number, value by value."""
    if value is None:
        return None
    if ctype == "int":
        if not re.match(INT_PATTERN, value):
            return None
        number = int(value.strip())
        return number if -(1 << 63) <= number <= INT64_MAX else None
    return float(value.strip()) if re.match(FLOAT_PATTERN, value) else None


@pytest.mark.parametrize("ctype", ["int", "float"])
def test_number_parsing_agrees_with_the_pattern_on_random_text(ctype: str) -> None:
    # Given 500 random columns of numbers and near-numbers, some of them offset into the buffers
    rng = random.Random(11)
    alphabet = "0123456789.-+eE x,a"
    plain = ["1", "-2", "3.5", "100", "0.25", "-0.5", "+7", str(INT64_MAX), str(INT64_MAX + 1)]
    for trial in range(500):
        values: list[str | None] = []
        for _ in range(rng.randint(1, 30)):
            draw = rng.random()
            if draw < 0.1:
                values.append(None)
            elif draw < 0.5:
                values.append(rng.choice(plain))
            else:
                values.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5))))
        column = pa.array(values, pa.string())
        if trial % 3 == 0:
            column = column.slice(1)  # an offset into the buffers
        # When each is read as this type
        result = coerce(column, ctype)
        # Then every value is what the contract's pattern says, and invalid exactly where it says
        # none
        expected = [_expected(v, ctype) for v in column.to_pylist()]
        assert result.values.to_pylist() == expected, column.to_pylist()
        assert result.invalid.to_pylist() == [
            v is not None and e is None for v, e in zip(column.to_pylist(), expected, strict=True)
        ]


def _masks(result: coerce_mod.Coerced) -> tuple[list[bool], list[bool]]:
    non_finite = result.non_finite
    n = len(result.values)
    return result.invalid.to_pylist(), [False] * n if non_finite is None else non_finite.to_pylist()


def test_non_finite_text_is_marked_in_every_spelling_and_kept_as_a_float() -> None:
    # Given NaN and the infinities as text, in the spellings exporters write, among numbers
    text = ["1.5", "nan", "NaN", "-nan", "inf", "-Infinity", " +INF ", "1e400", "-1e400", "1e-400"]
    text += ["x", None, "nanx", "infinite"]
    # When they are read as floats
    result = coerce(pa.array(text, pa.string()), "float")
    # Then each non-finite value keeps its value and is marked, neither invalid nor missing
    values = result.values.to_pylist()
    assert values[0] == 1.5 and values[9] == 0.0 and values[10:] == [None] * 4
    assert [v != v for v in values[1:4]] == [True] * 3  # NaN
    assert values[4:9] == [math.inf, -math.inf, math.inf, math.inf, -math.inf]
    invalid, non_finite = _masks(result)
    assert invalid == [False] * 10 + [True, False, True, True]
    assert non_finite == [False] + [True] * 8 + [False] * 5


@pytest.mark.parametrize("ctype", ["int", "decimal"])
def test_non_finite_values_of_int_and_decimal_columns_are_marked_and_null(ctype: str) -> None:
    # Given text and a Parquet float column holding NaN and infinities
    text = pa.array(["2", "nan", "-inf", "x"], pa.string())
    native = pa.array([2.0, math.nan, -math.inf, None], pa.float64())
    # When they are read as a type that cannot hold them
    from_text, from_native = coerce(text, ctype), coerce(native, ctype)
    # Then they are null and marked non-finite; only the word is invalid
    two = 2 if ctype == "int" else Decimal("2.00")
    assert from_text.values.to_pylist() == [two, None, None, None]
    assert _masks(from_text) == ([False, False, False, True], [False, True, True, False])
    assert from_native.values.to_pylist() == [two, None, None, None]
    assert _masks(from_native) == ([False] * 4, [False, True, True, False])


def test_native_float_nan_and_infinities_are_marked() -> None:
    # Given native float columns of both widths with NaN, an infinity and a null
    for arrow_type in (pa.float64(), pa.float32()):
        # When they are read as float
        result = coerce(pa.array([1.0, math.nan, math.inf, None], arrow_type), "float")
        # Then NaN and the infinity are marked non-finite, and nothing is invalid
        assert _masks(result) == ([False] * 4, [False, True, True, False])


def test_decimals_past_36_integer_digits_are_invalid_not_garbage() -> None:
    # Given decimals with 35, 36 and 50 integer digits
    result = coerce(pa.array(["1.25", "1e35", "1e36", "-1e50", "0.29"], pa.string()), "decimal")
    # When they are read as decimal, Then those past 36 digits are invalid, not garbage
    assert result.values.to_pylist() == [
        Decimal("1.25"), Decimal("99999999999999996863366107917975552.00"), None, None,
        Decimal("0.29"),
    ]  # fmt: skip
    assert result.invalid.to_pylist() == [False, False, True, True, False]


UTC_TIMES = [
    # (text, the time it names, in UTC)
    ("2024-01-31T10:00:00", datetime(2024, 1, 31, 10)),
    ("2024-01-31T10:00:00Z", datetime(2024, 1, 31, 10)),
    ("2024-01-31t10:00:00z", datetime(2024, 1, 31, 10)),
    ("2024-01-31T10:00:00-05:00", datetime(2024, 1, 31, 15)),
    ("2024-01-31T10:00:00+0530", datetime(2024, 1, 31, 4, 30)),
    ("2024-01-31T02:00:00+05", datetime(2024, 1, 30, 21)),
    ("2024-01-31 10:00:00.5", datetime(2024, 1, 31, 10, 0, 0, 500000)),
    ("2024-01-31T10:00:00.123456789Z", datetime(2024, 1, 31, 10, 0, 0, 123456)),
    ("2024-01-31T10:00:00,25-01:00", datetime(2024, 1, 31, 11, 0, 0, 250000)),
    ("2024-01-31T10:00", datetime(2024, 1, 31, 10)),
    ("2024-01-31 10", datetime(2024, 1, 31, 10)),
    ("20240131T100000Z", datetime(2024, 1, 31, 10)),
    ("20240131T1000+0100", datetime(2024, 1, 31, 9)),
    (" 2024-01-31T10:00:00Z ", datetime(2024, 1, 31, 10)),
    ("2024-01-31", datetime(2024, 1, 31)),
    ("2024/01/31", datetime(2024, 1, 31)),
    ("31/01/2024", datetime(2024, 1, 31)),
]
NOT_TIMES = [
    "2024-02-30T10:00:00", "2024-01-31T25:00:00", "2024-01-31T10:00:00+24:00",
    "2024-01-31T10:00:00+05:60", "2024-01-31T10:00:00.1234567890", "2024-01-31T10:00:00 PST",
    "2024-0131T10:00", "10:00:00", "x",
]  # fmt: skip


@pytest.mark.parametrize("alone", [True, False])
def test_iso_timestamps_with_zones_and_fractions_read_as_utc(alone: bool) -> None:
    # Given ISO 8601 timestamps with zones, offsets and up to nine fraction digits, and values
    # that are no timestamp (alone: each value is its own column; else all in one column)
    texts = [text for text, _ in UTC_TIMES] + NOT_TIMES
    expected = [when for _, when in UTC_TIMES] + [None] * len(NOT_TIMES)
    # When they are read as timestamps
    if alone:
        found = [coerce(pa.array([t], pa.string()), "timestamp").values[0].as_py() for t in texts]
    else:
        found = coerce(pa.array(texts, pa.string()), "timestamp").values.to_pylist()
    # Then each is the instant it names, in UTC (fractions truncated to microseconds)
    assert found == expected


def test_dates_read_in_every_iso_form_and_a_time_of_day_is_not_a_date() -> None:
    # Given dates in every ISO form, with a time of midnight, and text that is not a date
    texts = [
        "2024-01-31", "20240131", "2024-031", "2024-01-31T00:00:00", "2024-01-31T00:00:00.000Z",
        "2024-01-31T00:00:00+05:30", "2024/01/31", "31/01/2024", " 2024-01-31 ",
        "2024-01-31T10:00:00", "2024-02-30", "2023-366", "20241301", "x",
    ]  # fmt: skip
    # When they are read as dates
    result = coerce(pa.array(texts, pa.string()), "date")
    # Then the ISO forms are the date, and a time of day or an impossible date is invalid
    assert result.values.to_pylist() == [date(2024, 1, 31)] * 9 + [None] * 5
    assert result.invalid.to_pylist() == [False] * 9 + [True] * 5


NESTED = [
    (pa.array([{"v": 1.5}, None, {"v": 2.0}]), ['{"v": 1.5}', None, '{"v": 2.0}']),
    (pa.array([[1.5], None, []]), ["[1.5]", None, "[]"]),
    (
        pa.array([[("k", 1.5)], None, []], pa.map_(pa.string(), pa.float64())),
        ['[["k", 1.5]]', None, "[]"],
    ),
]


@pytest.mark.parametrize(("column", "_"), NESTED, ids=["struct", "list", "map"])
@pytest.mark.parametrize("ctype", [t for t in coerce_mod.ARROW_TYPES if t != "string"])
def test_nested_values_are_type_mismatches_of_every_type_but_string(
    column: pa.Array, _: list[str | None], ctype: str
) -> None:
    # Given a struct, list or map column
    # When it is read as any type but string
    result = coerce(column, ctype)
    # Then every value is a type mismatch, and a null stays missing
    assert result.values.to_pylist() == [None, None, None]
    assert result.values.type == coerce_mod.ARROW_TYPES[ctype]
    assert result.invalid.to_pylist() == [True, False, True]


@pytest.mark.parametrize(("column", "text"), NESTED, ids=["struct", "list", "map"])
def test_nested_values_read_as_a_string_are_their_json_text(
    column: pa.Array, text: list[str | None]
) -> None:
    # (as the JSON reader hands a nested JSON value to a string column)
    # Given a struct, list or map column
    # When it is read as string
    result = coerce(column, "string")
    # Then each value is its JSON text
    assert result.values.to_pylist() == text
    assert result.invalid.to_pylist() == [False, False, False]


def test_bytes_read_as_their_utf8_text_and_other_bytes_are_type_mismatches() -> None:
    # Given bytes that are UTF-8 text, bytes that are not, and a null
    column = pa.array([b"12", b"\xff\xfe", None, "é".encode()], pa.binary())
    # When they are read as int
    as_int = coerce(column, "int")
    # Then the number is read and the bytes that are no int text are type mismatches
    assert as_int.values.to_pylist() == [12, None, None, None]
    assert as_int.invalid.to_pylist() == [False, True, False, True]
    # And read as string, each is its UTF-8 text, and the bytes that are not UTF-8 mismatch
    as_text = coerce(column, "string")
    assert as_text.values.to_pylist() == ["12", None, None, "é"]
    assert as_text.invalid.to_pylist() == [False, True, False, False]


def test_dictionary_and_large_string_columns_read_as_their_text() -> None:
    # Given a dictionary-encoded and a large-string column
    for column in (
        pa.array(["1.5", "x", None]).dictionary_encode(),
        pa.array(["1.5", "x", None], pa.large_string()),
    ):
        # When each is read as float
        result = coerce(column, "float")
        # Then it is read as its text
        assert result.values.to_pylist() == [1.5, None, None]
        assert result.invalid.to_pylist() == [False, True, False]


def test_an_inferred_column_holding_nan_is_not_numeric() -> None:
    # Given columns of numbers, of numbers with a nan, and of an ISO time with an offset
    # When each one's type is inferred
    # Then the numbers are float, the column holding nan is string, and the time a timestamp
    assert coerce_mod.infer_type(pa.array(["1", "2.5"])) == "float"
    assert coerce_mod.infer_type(pa.array(["1", "nan"])) == "string"
    assert coerce_mod.infer_type(pa.array(["2024-01-31T10:00:00+05:30"])) == "timestamp"

"""Turn staged values (usually strings) into contract types, keeping what failed and why."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_INT = r"^\s*[+-]?\d{1,38}\s*$"
_FLOAT = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
_TRUE = ["true", "t", "yes", "y", "1"]
_FALSE = ["false", "f", "no", "n", "0"]
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y")
# ISO 8601 dates a date column also reads: basic (20240131) and ordinal (2024-031).
_ISO_DATE_FORMATS = ("%Y%m%d", "%Y-%j")
_TIMESTAMP_FORMATS = (
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
)

# NaN and the infinities as text (Arrow's own float parser reads every one of these).
_NON_FINITE = r"(?i)^\s*[+-]?(nan|inf|infinity)\s*$"
# decimal128(38, 2) holds 36 digits before the point.
_DECIMAL_LIMIT = 1e36
# ISO 8601 timestamps, extended (2024-01-31T10:00:00.123456789+05:30) and basic
# (20240131T100000Z): the date, then an optional time (hours, minutes, seconds, a fraction of
# up to 9 digits after '.' or ','), then an optional zone (Z or an offset).
_ISO_ZONE = r"(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?"
_ISO_EXTENDED = (
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?P<hour>\d{2})(?::(?P<minute>\d{2})(?::(?P<second>\d{2})"
    r"(?:[.,](?P<fraction>\d{1,9}))?)?)?" + _ISO_ZONE + r")?$"
)
_ISO_BASIC = (
    r"^(?P<date>\d{8})"
    r"(?:[Tt](?P<hour>\d{2})(?:(?P<minute>\d{2})(?:(?P<second>\d{2})"
    r"(?:[.,](?P<fraction>\d{1,9}))?)?)?" + _ISO_ZONE + r")?$"
)
_ISO_PARTS = ("date", "hour", "minute", "second", "fraction", "zone")

ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "decimal": pa.decimal128(38, 2),
    "string": pa.string(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}


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


def _parse_one(text: pa.Array, fmt: str) -> pa.Array:
    parsed = pc.strptime(text, format=fmt, unit="us", error_is_null=True)
    # strptime rolls impossible dates over (2024-02-30 becomes 2024-03-01): a value is only
    # valid if formatting it back gives the same text.
    # (%S prints fractions for sub-second units, so compare at whole seconds.)
    same = pc.equal(pc.strftime(pc.cast(parsed, pa.timestamp("s")), format=fmt), text)
    return pc.if_else(pc.fill_null(same, False), parsed, pa.scalar(None, parsed.type))


def _parse_times(text: pa.Array, formats: tuple[str, ...]) -> pa.Array:
    # Leading/trailing blanks are common in hand-made files and carry no meaning.
    text = pc.utf8_trim_whitespace(text)
    result = _parse_one(text, formats[0])
    for fmt in formats[1:]:
        if result.null_count == text.null_count:
            break
        result = pc.coalesce(result, _parse_one(text, fmt))
    return result


def _parse_dates(text: pa.Array) -> pa.Array:
    # Fast path: Arrow's own parser accepts exactly YYYY-MM-DD and rejects impossible dates,
    # so when it reads every value there is nothing else to check.
    try:
        return pc.cast(text, pa.date32())
    except pa.ArrowInvalid:
        pass  # another format, or an impossible date such as 2024-02-30: value by value
    text = pc.utf8_trim_whitespace(text)
    result = pc.cast(_parse_times(text, _DATE_FORMATS), pa.date32())
    if result.null_count == text.null_count:
        return result
    return pc.coalesce(result, _iso_dates(text))


def _iso_dates(text: pa.Array) -> pa.Array:
    """Basic and ordinal ISO dates, and ISO timestamps at midnight (`2024-01-31T00:00:00Z`,
    as JSON and spreadsheet exports write dates): the date as written. Any other time of day
    does not read as a date."""
    calendar = pc.cast(_parse_times(text, _ISO_DATE_FORMATS), pa.date32())
    local, _ = _iso_times(text)
    midnight = pc.equal(pc.floor_temporal(local, unit="day"), local)
    at_midnight = pc.if_else(midnight, pc.cast(local, pa.date32()), pa.scalar(None, pa.date32()))
    return pc.coalesce(calendar, at_midnight)


def _part(parts: list[pa.Array], name: str) -> pa.Array:
    return pc.coalesce(*(pc.struct_field(p, name) for p in parts))


def _two_digits(text: pa.Array) -> pa.Array:
    """An optional two-digit field of a timestamp: '00' where it was left out."""
    return pc.if_else(pc.equal(text, ""), "00", text)


def _iso_times(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(the time as written, the same time in UTC) of each ISO 8601 timestamp in `text`
    (trimmed), as timestamp[us]; null where a value is not one. Fractions past microseconds
    are truncated; a value without a zone is taken as UTC."""
    parts = [pc.extract_regex(text, pattern) for pattern in (_ISO_EXTENDED, _ISO_BASIC)]
    day = _part(parts, "date")
    basic = pc.equal(pc.utf8_length(day), 8)
    day = pc.if_else(
        basic,
        pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(day, 0, 4),
            pc.utf8_slice_codeunits(day, 4, 6),
            pc.utf8_slice_codeunits(day, 6, 8),
            "-",
        ),
        day,
    )
    clock = pc.binary_join_element_wise(
        *(_two_digits(_part(parts, name)) for name in ("hour", "minute", "second")), ":"
    )
    whole = _parse_one(pc.binary_join_element_wise(day, clock, "T"), "%Y-%m-%dT%H:%M:%S")
    digits = pc.utf8_slice_codeunits(pc.utf8_rpad(_part(parts, "fraction"), 9, "0"), 0, 6)
    micros = pc.cast(pc.cast(digits, pa.int64()), pa.duration("us"))
    local = pc.add(whole, micros)
    zone = pc.replace_substring(pc.utf8_upper(_part(parts, "zone")), ":", "")
    named = pc.greater(pc.utf8_length(zone), 1)  # an offset, not '' or 'Z'
    hours = pc.cast(pc.if_else(named, pc.utf8_slice_codeunits(zone, 1, 3), "0"), pa.int64())
    minutes_text = pc.utf8_slice_codeunits(zone, 3, 5)
    minutes = pc.cast(pc.if_else(pc.equal(minutes_text, ""), "0", minutes_text), pa.int64())
    fits = pc.and_(pc.less(hours, 24), pc.less(minutes, 60))
    sign = pc.if_else(pc.starts_with(zone, "-"), -1, 1)
    offset = pc.multiply(sign, pc.multiply(pc.add(pc.multiply(hours, 60), minutes), 60_000_000))
    utc = pc.subtract(local, pc.cast(offset, pa.duration("us")))
    no_time = pa.scalar(None, pa.timestamp("us"))
    return pc.if_else(fits, local, no_time), pc.if_else(fits, utc, no_time)


def _parse_timestamps(text: pa.Array) -> pa.Array:
    text = pc.utf8_trim_whitespace(text)
    try:  # ISO 8601 without a zone, fractions up to microseconds: Arrow's own parser
        return pc.cast(text, ARROW_TYPES["timestamp"])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # a zone, nanoseconds, another format or a bad value: value by value
    _, values = _iso_times(text)
    if values.null_count == text.null_count:
        return values
    return pc.coalesce(values, _parse_times(text, _TIMESTAMP_FORMATS + _DATE_FORMATS))


def _none_invalid(n: int) -> pa.Array:
    return pa.array(np.zeros(n, dtype=bool))


def _fast_cast(text: pa.Array, ctype: str) -> pa.Array | None:
    """Arrow's own parser when every value is clean (the common case); None if any is not.
    (Arrow reads `nan`, `inf`, `-Infinity` and `1e400` as floats: `_non_finite` finds them.)"""
    if ctype not in ("int", "float"):
        return None
    try:
        return pc.cast(text, ARROW_TYPES[ctype])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _non_finite(values: pa.Array) -> pa.Array | None:
    """The NaN and infinite values of a float array; None when there are none."""
    if not pa.types.is_floating(values.type):
        return None
    mask = pc.and_(pc.is_valid(values), pc.invert(pc.fill_null(pc.is_finite(values), True)))
    return mask if pc.any(mask).as_py() else None


def _spelled_non_finite(text: pa.Array, values: pa.Array) -> pa.Array:
    """`values` with NaN and the infinities where `text` spells one (`nan`, `-Infinity`, any
    case): the number pattern leaves them out."""
    spelled = pc.fill_null(pc.match_substring_regex(text, _NON_FINITE), False)
    if not pc.any(spelled).as_py():
        return values
    read = pc.cast(pc.utf8_trim_whitespace(pc.if_else(spelled, text, None)), pa.float64())
    return pc.if_else(spelled, read, values)


def _weights(digits: str, dot: bool) -> np.ndarray:
    """Per byte value, its cost in a plain number: digits (and signs, where allowed) 0, '.' 1,
    anything else more than any number of dots can add up to."""
    weights = np.full(256, 1 << 20, dtype=np.int32)
    weights[np.frombuffer(digits.encode(), np.uint8)] = 0
    if dot:
        weights[ord(".")] = 1
    return weights


@dataclass(frozen=True)
class _Plain:
    """What a plain number looks like, byte by byte: the cost of each byte as its first and
    as a later one, the total cost allowed (its dots), and its longest length (an int of 18
    digits cannot overflow)."""

    first: np.ndarray
    rest: np.ndarray
    dots: int
    longest: int


_PLAIN = {
    "int": _Plain(_weights("0123456789-", False), _weights("0123456789", False), 0, 18),
    "float": _Plain(_weights("0123456789+-", True), _weights("0123456789", True), 1, 1 << 20),
}


@cache
def _int64_range() -> tuple[pa.Scalar, pa.Scalar]:
    # Built on first use, not at import: pyarrow's `pa.scalar` imports pandas when it is
    # installed, and no handler should pay for pandas to be imported.
    return (
        pa.scalar(-(1 << 63), pa.decimal128(38, 0)),
        pa.scalar((1 << 63) - 1, pa.decimal128(38, 0)),
    )


def _plain_numbers(text: pa.Array, plain: _Plain, present: np.ndarray) -> np.ndarray | None:
    """Rows whose text looks like a plain number (an optional sign, digits, at most one '.'),
    found from the bytes with no regex. Arrow's parser reads these, or rejects the column.
    `present`: the rows that hold a value."""
    if not pa.types.is_string(text.type):
        return None
    n = len(text)
    _, offsets_buffer, data_buffer = text.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int32)[text.offset : text.offset + n + 1]
    lengths = np.diff(offsets)
    filled = (lengths > 0) & (lengths <= plain.longest) & present
    if data_buffer is None or not filled.any():
        return None
    low = int(offsets[0])
    data = np.frombuffer(data_buffer, np.uint8)[low : int(offsets[-1])]
    cost = plain.rest[data]
    starts = offsets[:-1] - low
    first = starts[filled]
    cost[first] = plain.first[data[first]]
    # Sums over each value's bytes; an empty or null value sums its neighbour's first byte,
    # which is harmless since `filled` leaves it out.
    sums = np.add.reduceat(cost, np.minimum(starts, max(len(data) - 1, 0)))
    return np.asarray(filled & (sums <= plain.dots), dtype=bool)


def _pattern_cast(text: pa.Array, ctype: str) -> pa.Array:
    """Values that match the number pattern (blanks and a '+' allowed), null for the rest."""
    if ctype == "int":
        ok = pc.match_substring_regex(text, _INT)
        digits = pc.utf8_ltrim(pc.utf8_trim_whitespace(pc.if_else(ok, text, None)), "+")
        # Through a wide decimal, so a value past int64's range is invalid, not an error.
        wide = pc.cast(digits, pa.decimal128(38, 0))
        low, high = _int64_range()
        fits = pc.and_(pc.greater_equal(wide, low), pc.less_equal(wide, high))
        return pc.cast(pc.if_else(fits, wide, pa.scalar(None, wide.type)), pa.int64())
    ok = pc.match_substring_regex(text, _FLOAT)
    return pc.cast(pc.utf8_trim_whitespace(pc.if_else(ok, text, None)), pa.float64())


def _number_cast(text: pa.Array, ctype: str) -> pa.Array:
    """`ctype` ("int" or "float") values of a column holding some odd texts. Arrow's parser
    reads the plain ones; only the rest are matched against the full pattern (a regex costs
    about 10x the parser per value)."""
    present = np.asarray(text.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    plain = _plain_numbers(text, _PLAIN[ctype], present)
    if plain is None or not plain.any():
        return _pattern_cast(text, ctype)
    try:
        values = pc.cast(pc.if_else(pa.array(plain), text, None), ARROW_TYPES[ctype])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _pattern_cast(text, ctype)  # e.g. a lone '-': the pattern decides every row
    odd = ~plain & present
    if not odd.any():
        return values
    others = _pattern_cast(text.take(pa.array(np.flatnonzero(odd))), ctype)
    return pc.replace_with_mask(values, pa.array(odd), others)


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
    non_finite = _non_finite(array) if ctype in ("int", "float", "decimal") else None
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
    fast = _fast_cast(text, ctype)
    if fast is not None:
        return Coerced(fast, _none_invalid(len(text)), _non_finite(fast))
    non_finite: pa.Array | None = None
    if ctype == "int":
        values = _number_cast(text, "int")
    elif ctype in ("float", "decimal"):
        values = _spelled_non_finite(text, _number_cast(text, "float"))
        non_finite = _non_finite(values)
        if ctype == "decimal":
            values = _decimal(values, non_finite)
    elif ctype == "bool":
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(text))
        is_true = pc.is_in(lowered, pa.array(_TRUE))
        is_false = pc.is_in(lowered, pa.array(_FALSE))
        values = pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))
    elif ctype == "date":
        values = _parse_dates(text)
    elif ctype == "timestamp":
        values = _parse_timestamps(text)
    else:  # pragma: no cover - contracts are validated on load
        raise ValueError(f"unknown type {ctype}")
    present = pc.invert(pc.is_null(text))
    invalid = pc.and_(present, pc.is_null(values))
    if ctype == "int" and pc.any(invalid).as_py():
        # An int column's `nan` or `inf` is a non-finite number, not a malformed one.
        spelled = pc.fill_null(pc.match_substring_regex(text, _NON_FINITE), False)
        if pc.any(spelled).as_py():
            non_finite = spelled
            invalid = pc.and_(invalid, pc.invert(spelled))
    elif non_finite is not None:
        invalid = pc.and_(invalid, pc.invert(non_finite))
    return Coerced(values, invalid, non_finite)


def _decimal(values: pa.Array, non_finite: pa.Array | None) -> pa.Array:
    """Floats as decimal128(38, 2): NaN, the infinities and values past its 36 integer digits
    (which a cast would silently turn into garbage) are null."""
    fits = pc.less(pc.abs(values), _DECIMAL_LIMIT)
    if non_finite is not None:
        fits = pc.and_(fits, pc.invert(non_finite))
    kept = pc.if_else(fits, values, pa.scalar(None, pa.float64()))
    return pc.cast(kept, ARROW_TYPES["decimal"], safe=False)


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

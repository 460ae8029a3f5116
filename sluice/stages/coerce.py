"""Turn staged values (usually strings) into contract types, keeping what failed and why."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_INT = r"^\s*[+-]?\d{1,38}\s*$"
_FLOAT = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
_TRUE = ["true", "t", "yes", "y", "1"]
_FALSE = ["false", "f", "no", "n", "0"]
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y")
_TIMESTAMP_FORMATS = (
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
)

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
    """A column in its contract type; `invalid` marks values present in the input that failed."""

    values: pa.Array
    invalid: pa.Array


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
    return pc.cast(_parse_times(text, _DATE_FORMATS), pa.date32())


def _none_invalid(n: int) -> pa.Array:
    return pa.array(np.zeros(n, dtype=bool))


def _fast_cast(text: pa.Array, ctype: str) -> pa.Array | None:
    """Arrow's own parser when every value is clean (the common case); None if any is not."""
    if ctype not in ("int", "float"):
        return None
    try:
        values = pc.cast(text, ARROW_TYPES[ctype])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if ctype == "float" and pc.all(pc.is_finite(values)).as_py() not in (True, None):
        return None  # nan / inf are read as text the contract does not accept
    return values


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


def coerce(column: pa.Array | pa.ChunkedArray, ctype: str) -> Coerced:
    """Cast one column to `ctype`; a present value that cannot be read is null + invalid."""
    array = _as_array(column)
    target = ARROW_TYPES[ctype]
    if not pa.types.is_string(array.type) and not pa.types.is_large_string(array.type):
        if array.type == target:
            return Coerced(array, pc.fill_null(pc.is_null(array), False))
        try:
            values = pc.cast(array, target)
            return Coerced(values, _none_invalid(len(array)))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            array = pc.cast(array, pa.string())
    text = array
    if ctype == "string":
        return Coerced(text, _none_invalid(len(text)))
    fast = _fast_cast(text, ctype)
    if fast is not None:
        return Coerced(fast, _none_invalid(len(text)))
    if ctype == "int":
        values = _number_cast(text, "int")
    elif ctype in ("float", "decimal"):
        values = _number_cast(text, "float")
        if ctype == "decimal":
            values = pc.cast(values, target, safe=False)
    elif ctype == "bool":
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(text))
        is_true = pc.is_in(lowered, pa.array(_TRUE))
        is_false = pc.is_in(lowered, pa.array(_FALSE))
        values = pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))
    elif ctype == "date":
        values = _parse_dates(text)
    elif ctype == "timestamp":
        try:  # ISO 8601, with or without fractions: Arrow's own parser validates it
            values = pc.cast(pc.utf8_trim_whitespace(text), ARROW_TYPES["timestamp"])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = _parse_times(text, _TIMESTAMP_FORMATS + _DATE_FORMATS)
    else:  # pragma: no cover - contracts are validated on load
        raise ValueError(f"unknown type {ctype}")
    present = pc.invert(pc.is_null(text))
    invalid = pc.and_(present, pc.is_null(values))
    return Coerced(values, invalid)


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
        if not pc.any(coerce(present, candidate).invalid).as_py():
            return candidate
    return "string"

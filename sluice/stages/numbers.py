"""Numbers read from text: ints and floats by Arrow's parser where it can, by their pattern
where it cannot; NaN and the infinities; floats as decimals (`sluice.stages.coerce` uses them)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.stages.arrow_types import ARROW_TYPES

INT_PATTERN = r"^\s*[+-]?\d{1,38}\s*$"
FLOAT_PATTERN = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
# NaN and the infinities as text (Arrow's own float parser reads every one of these).
_NON_FINITE = r"(?i)^\s*[+-]?(nan|inf|infinity)\s*$"
# decimal128(38, 2) holds 36 digits before the point.
_DECIMAL_LIMIT = 1e36


def fast_cast(text: pa.Array, ctype: str) -> pa.Array | None:
    """Arrow's own parser when every value is clean (the common case); None if any is not.
    (Arrow reads `nan`, `inf`, `-Infinity` and `1e400` as floats: `non_finite_mask` finds them.)"""
    if ctype not in ("int", "float"):
        return None
    try:
        return pc.cast(text, ARROW_TYPES[ctype])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def non_finite_mask(values: pa.Array) -> pa.Array | None:
    """The NaN and infinite values of a float array; None when there are none."""
    if not pa.types.is_floating(values.type):
        return None
    mask = pc.and_(pc.is_valid(values), pc.invert(pc.fill_null(pc.is_finite(values), True)))
    return mask if pc.any(mask).as_py() else None


def spelled_non_finite(text: pa.Array) -> pa.Array:
    """The values of `text` that spell NaN or an infinity (`nan`, `-Infinity`, any case)."""
    return pc.fill_null(pc.match_substring_regex(text, _NON_FINITE), False)


def with_spelled_non_finite(text: pa.Array, values: pa.Array) -> pa.Array:
    """`values` with NaN and the infinities where `text` spells one (`nan`, `-Infinity`, any
    case): the number pattern leaves them out."""
    spelled = spelled_non_finite(text)
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
        ok = pc.match_substring_regex(text, INT_PATTERN)
        digits = pc.utf8_ltrim(pc.utf8_trim_whitespace(pc.if_else(ok, text, None)), "+")
        # Through a wide decimal, so a value past int64's range is invalid, not an error.
        wide = pc.cast(digits, pa.decimal128(38, 0))
        low, high = _int64_range()
        fits = pc.and_(pc.greater_equal(wide, low), pc.less_equal(wide, high))
        return pc.cast(pc.if_else(fits, wide, pa.scalar(None, wide.type)), pa.int64())
    ok = pc.match_substring_regex(text, FLOAT_PATTERN)
    return pc.cast(pc.utf8_trim_whitespace(pc.if_else(ok, text, None)), pa.float64())


def number_cast(text: pa.Array, ctype: str) -> pa.Array:
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


def as_decimal(values: pa.Array, non_finite: pa.Array | None) -> pa.Array:
    """Floats as decimal128(38, 2): NaN, the infinities and values past its 36 integer digits
    (which a cast would silently turn into garbage) are null."""
    fits = pc.less(pc.abs(values), _DECIMAL_LIMIT)
    if non_finite is not None:
        fits = pc.and_(fits, pc.invert(non_finite))
    kept = pc.if_else(fits, values, pa.scalar(None, pa.float64()))
    return pc.cast(kept, ARROW_TYPES["decimal"], safe=False)

"""Dates and timestamps read from text: the formats a contract's date and timestamp columns
accept, ISO 8601 included (`sluice.stages.coerce` checks what they read)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from sluice.stages.arrow_types import ARROW_TYPES

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


def parse_dates(text: pa.Array) -> pa.Array:
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


def parse_timestamps(text: pa.Array) -> pa.Array:
    text = pc.utf8_trim_whitespace(text)
    try:  # ISO 8601 without a zone, fractions up to microseconds: Arrow's own parser
        return pc.cast(text, ARROW_TYPES["timestamp"])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # a zone, nanoseconds, another format or a bad value: value by value
    _, values = _iso_times(text)
    if values.null_count == text.null_count:
        return values
    return pc.coalesce(values, _parse_times(text, _TIMESTAMP_FORMATS + _DATE_FORMATS))

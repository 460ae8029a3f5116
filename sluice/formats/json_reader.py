"""JSON (an array of objects) and JSON Lines, read whole, every value as text."""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa

from sluice.errors import SluiceDataError
from sluice.formats.batches import value_text
from sluice.formats.encoding import decode_text
from sluice.reasons import ReasonCode

# How deep a record may nest objects and arrays (the record itself is level 1); deeper is
# TOO_DEEP, and so is a document too deep for the parser itself.
MAX_JSON_DEPTH = 64
# Longer integer literals are kept as written (Python refuses to convert them).
_MAX_INT_DIGITS = 4000


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; a key given twice is an error (one of the values would be lost)."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        raise _DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))  # type: ignore[func-returns-value]
    return found


def _number(literal: str) -> Any:
    """A JSON number as Python holds it; one a double cannot hold (`1e400`) stays as written,
    for Trusted to judge, rather than turning into inf."""
    value = float(literal)
    return value if math.isfinite(value) else literal


def _integer(literal: str) -> Any:
    return int(literal) if len(literal) <= _MAX_INT_DIGITS else literal


def _parse_json(text: str, where: str, **details: Any) -> Any:
    """A JSON document, or MALFORMED_JSON / TOO_DEEP saying where (never what the data is).

    `NaN`, `Infinity` and `-Infinity` (not JSON, but common) are kept as their text, like a
    CSV's `NaN`, for Trusted to judge."""
    try:
        return json.loads(
            text,
            object_pairs_hook=_object,
            parse_float=_number,
            parse_int=_integer,
            parse_constant=str,
        )
    except json.JSONDecodeError as exc:
        raise SluiceDataError(
            ReasonCode.MALFORMED_JSON,
            f"{where} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            **details,
        ) from exc
    except RecursionError as exc:
        raise SluiceDataError(
            ReasonCode.TOO_DEEP,
            f"{where} nests objects and arrays deeper than {MAX_JSON_DEPTH} levels",
            max_depth=MAX_JSON_DEPTH,
            **details,
        ) from exc
    except _DuplicateKey as exc:
        raise SluiceDataError(
            ReasonCode.MALFORMED_JSON,
            f"{where} has an object that gives one key twice",
            key=exc.key,
            **details,
        ) from exc


def _depth(value: Any) -> int:
    """How deep objects and arrays nest in `value` (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _check_record(value: Any, where: str, **details: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        kind = "an array" if isinstance(value, list) else "a scalar"
        raise SluiceDataError(
            ReasonCode.MALFORMED_JSON, f"{where} is {kind}, not a JSON object", **details
        )
    if _depth(value) > MAX_JSON_DEPTH:
        raise SluiceDataError(
            ReasonCode.TOO_DEEP,
            f"{where} nests objects and arrays deeper than {MAX_JSON_DEPTH} levels",
            max_depth=MAX_JSON_DEPTH,
            **details,
        )
    return value


def _records_to_table(records: list[dict[str, Any]], places: list[str]) -> pa.Table:
    """The records as a table of text; `places[i]` says where record i is (`line 3`)."""
    names: dict[str, None] = {}
    for i, record in enumerate(records):
        for name in record:
            if name not in names and not _encodable(name):
                raise SluiceDataError(
                    ReasonCode.MALFORMED_JSON,
                    f"{places[i]}: a key holds an unpaired UTF-16 surrogate escape "
                    "(\\ud800-\\udfff), which no UTF-8 text can hold",
                )
            names[name] = None
    arrays = {}
    for name in names:
        values = [value_text(record.get(name)) for record in records]
        try:
            arrays[name] = pa.array(values, pa.string())
        except UnicodeEncodeError as exc:
            # `"\ud800"` is valid JSON syntax, but no UTF-8 text holds an unpaired surrogate.
            bad = next(i for i, v in enumerate(values) if v is not None and not _encodable(v))
            raise SluiceDataError(
                ReasonCode.MALFORMED_JSON,
                f"{places[bad]}: column {name!r} holds an unpaired UTF-16 surrogate escape "
                "(\\ud800-\\udfff), which no UTF-8 text can hold",
                column=name,
            ) from exc
    return pa.table(arrays)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_json(data: bytes, encoding: str | None = None) -> pa.Table:
    """A JSON array of objects (or one object) as a table of text."""
    document = _parse_json(decode_text(data, encoding), "the file")
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        raise SluiceDataError(
            ReasonCode.MALFORMED_JSON, "the file is a JSON scalar: expected an array of objects"
        )
    places = [f"record {i}" for i in range(1, len(document) + 1)]
    records = [_check_record(r, places[i], record=i + 1) for i, r in enumerate(document)]
    return _records_to_table(records, places)


def read_jsonl(data: bytes, encoding: str | None = None) -> pa.Table:
    """JSON Lines: one object per line (blank lines skipped) as a table of text."""
    records = []
    places = []
    # Only \n ends a line: str.splitlines would also split at U+2028 inside a string.
    for number, line in enumerate(decode_text(data, encoding).split("\n"), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        records.append(_check_record(_parse_json(line, where, line=number), where, line=number))
        places.append(where)
    return _records_to_table(records, places)

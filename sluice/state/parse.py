"""Reading the stages' JSON: each field checked for its type, and a `StateError` naming the field
where it is not what the stages hand each other."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias, TypeVar

from sluice.errors import SluiceError
from sluice.lake import SourceObject

Json: TypeAlias = "bool | int | float | str | list[Json] | dict[str, Json] | None"
JsonObject: TypeAlias = "dict[str, Json]"


class StateError(SluiceError):
    """The state (or a manifest) is not what the stages hand each other."""


_T = TypeVar("_T")


def expect_object(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise StateError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def field_of(data: Mapping[str, object], name: str, kind: type[_T], where: str) -> _T:
    value = data.get(name)
    # JSON has one number type: an integral float read back is the int it was.
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise StateError(f"{where}.{name}: expected {kind.__name__}, got {value!r:.80}")
    return value


def optional_field(data: Mapping[str, object], name: str, kind: type[_T], where: str) -> _T | None:
    return None if data.get(name) is None else field_of(data, name, kind, where)


def list_field(data: Mapping[str, object], name: str, where: str) -> Sequence[object]:
    value = data.get(name, [])
    if not isinstance(value, list | tuple):
        raise StateError(f"{where}.{name}: expected a list, got {type(value).__name__}")
    return value


def strings_field(data: Mapping[str, object], name: str, where: str) -> tuple[str, ...]:
    items = list_field(data, name, where)
    if not all(isinstance(item, str) for item in items):
        raise StateError(f"{where}.{name}: expected a list of strings")
    return tuple(str(item) for item in items)


def counts_field(data: Mapping[str, object], name: str, where: str) -> dict[str, int]:
    value = expect_object(data.get(name, {}), f"{where}.{name}")
    return {str(k): field_of(value, k, int, f"{where}.{name}") for k in value}


def checked_json(value: object, where: str) -> Json:
    """`value` checked to be JSON (what `json.loads` gives)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [checked_json(v, where) for v in value]
    if isinstance(value, Mapping):
        return {str(k): checked_json(v, f"{where}.{k}") for k, v in value.items()}
    raise StateError(f"{where}: {type(value).__name__} is not JSON")


def json_object(value: object, where: str) -> JsonObject:
    checked = checked_json(expect_object(value, where), where)
    assert isinstance(checked, dict)
    return checked


def source_of(value: object, where: str = "source") -> SourceObject:
    data = expect_object(value, where)
    return SourceObject(
        bucket=field_of(data, "bucket", str, where),
        key=field_of(data, "key", str, where),
        version_id=optional_field(data, "version_id", str, where) or "",
        etag=optional_field(data, "etag", str, where) or "",
        size=count_field(data, "size", where),
    )


def count_field(data: Mapping[str, object], name: str, where: str) -> int:
    return optional_field(data, name, int, where) or 0

"""Dataset contracts: what a dataset's columns are and how its records are judged.

A contract is a YAML file (`contracts/<dataset>.yaml`). It is validated when loaded, and every
problem names the file, the field and the fix. A dataset without one gets a contract inferred
from its data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

TYPES = ("int", "float", "decimal", "string", "bool", "date", "timestamp")


class ContractError(ValueError):
    """A contract that cannot be used, with where and how to fix it."""

    def __init__(self, source: str, where: str, problem: str, fix: str) -> None:
        super().__init__(f"{source}: {where}: {problem} (fix: {fix})")
        self.source = source
        self.where = where


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = False


@dataclass(frozen=True)
class Contract:
    dataset: str
    columns: tuple[Column, ...]
    version: str = "1"
    primary_key: tuple[str, ...] = ()
    event_date: str | None = None
    measures: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ()
    inferred: bool = False
    source: str = field(default="<memory>", compare=False)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"dataset": self.dataset, "version": self.version}
        doc["columns"] = {
            c.name: {"type": c.type, "required": c.required} if c.required else {"type": c.type}
            for c in self.columns
        }
        if self.primary_key:
            doc["primary_key"] = list(self.primary_key)
        if self.event_date:
            doc["event_date"] = self.event_date
        if self.measures or self.group_by:
            doc["summary"] = {"measures": list(self.measures), "group_by": list(self.group_by)}
        return doc

    def to_yaml(self) -> str:
        header = (
            "# Inferred by Sluice from the data: review it, then save it as "
            f"contracts/{self.dataset}.yaml to adopt it.\n"
            if self.inferred
            else ""
        )
        return header + yaml.safe_dump(self.to_dict(), sort_keys=False)


def _expect(cond: bool, source: str, where: str, problem: str, fix: str) -> None:
    if not cond:
        raise ContractError(source, where, problem, fix)


def _names(value: Any, source: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    _expect(
        isinstance(value, list) and all(isinstance(v, str) for v in value),
        source,
        where,
        f"expected a list of column names, got {value!r}",
        "write a YAML list such as [id]",
    )
    return tuple(value)


def parse_contract(document: Any, source: str = "<memory>") -> Contract:
    """Build a contract from its YAML document, naming the field and fix on any problem."""
    _expect(
        isinstance(document, Mapping),
        source,
        "top level",
        "a contract is a mapping",
        "start the file with 'dataset: <name>' and 'columns:'",
    )
    assert isinstance(document, Mapping)
    known = {"dataset", "version", "columns", "primary_key", "event_date", "summary"}
    unknown = sorted(set(document) - known)
    _expect(
        not unknown,
        source,
        ", ".join(map(str, unknown)),
        "unknown field",
        f"use only {', '.join(sorted(known))}",
    )
    dataset = document.get("dataset")
    _expect(
        isinstance(dataset, str) and re.fullmatch(r"[a-z][a-z0-9_]*", dataset or "") is not None,
        source,
        "dataset",
        f"{dataset!r} is not a dataset name",
        "use lower-case letters, digits and '_', starting with a letter",
    )
    assert isinstance(dataset, str)
    raw_columns = document.get("columns")
    _expect(
        isinstance(raw_columns, Mapping) and len(raw_columns) > 0,
        source,
        "columns",
        "missing or empty",
        "list each column as '<name>: {type: <type>}'",
    )
    assert isinstance(raw_columns, Mapping)
    columns = []
    for name, spec in raw_columns.items():
        where = f"columns.{name}"
        if isinstance(spec, str):
            spec = {"type": spec}
        _expect(
            isinstance(spec, Mapping),
            source,
            where,
            "expected a mapping",
            "write '{type: string}'",
        )
        extra = sorted(set(spec) - {"type", "required"})
        _expect(
            not extra,
            source,
            f"{where}.{extra[0] if extra else ''}",
            "unknown field",
            "use type, required",
        )
        ctype = spec.get("type")
        _expect(
            ctype in TYPES,
            source,
            f"{where}.type",
            f"{ctype!r} is not a type",
            f"use one of {', '.join(TYPES)}",
        )
        required = spec.get("required", False)
        _expect(
            isinstance(required, bool),
            source,
            f"{where}.required",
            f"{required!r} is not true/false",
            "write required: true",
        )
        columns.append(Column(name=str(name), type=str(ctype), required=required))
    names = {c.name for c in columns}
    primary_key = _names(document.get("primary_key"), source, "primary_key")
    for key in primary_key:
        _expect(key in names, source, "primary_key", f"{key!r} is not a column", "name a column")
    event_date = document.get("event_date")
    if event_date is not None:
        _expect(
            event_date in names,
            source,
            "event_date",
            f"{event_date!r} is not a column",
            "name a date or timestamp column",
        )
        _expect(
            next(c for c in columns if c.name == event_date).type in ("date", "timestamp"),
            source,
            "event_date",
            f"{event_date!r} is not a date or timestamp column",
            "give that column type date or timestamp",
        )
    summary = document.get("summary") or {}
    _expect(
        isinstance(summary, Mapping),
        source,
        "summary",
        "expected a mapping",
        "write 'summary: {measures: [amount], group_by: [category]}'",
    )
    measures = _names(summary.get("measures"), source, "summary.measures")
    group_by = _names(summary.get("group_by"), source, "summary.group_by")
    for name in measures:
        _expect(
            name in names, source, "summary.measures", f"{name!r} is not a column", "name a column"
        )
        _expect(
            next(c for c in columns if c.name == name).type in ("int", "float", "decimal"),
            source,
            "summary.measures",
            f"{name!r} is not numeric",
            "list only int, float or decimal columns",
        )
    for name in group_by:
        _expect(
            name in names, source, "summary.group_by", f"{name!r} is not a column", "name a column"
        )
    return Contract(
        dataset=dataset,
        version=str(document.get("version", "1")),
        columns=tuple(columns),
        primary_key=primary_key,
        event_date=event_date,
        measures=measures,
        group_by=group_by,
        source=source,
    )


def load_contract_text(text: str, source: str) -> Contract:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError(
            source, "YAML", str(exc).splitlines()[0], "fix the YAML syntax"
        ) from exc
    return parse_contract(document, source)


def find_contract(dataset: str, directory: Path) -> Contract | None:
    for suffix in (".yaml", ".yml"):
        path = directory / f"{dataset}{suffix}"
        if path.is_file():
            return load_contract_text(path.read_text(encoding="utf-8"), str(path))
    return None


_ID_NAME = re.compile(r"^(id|.*_id|key|uuid)$", re.IGNORECASE)


def infer_contract(dataset: str, table: pa.Table) -> Contract:
    """A contract guessed from staged (string) data: types from values, roles from names."""
    from sluice.stages.coerce import infer_type

    columns = [Column(name, infer_type(table.column(name))) for name in table.column_names]
    by_name = {c.name: c for c in columns}
    primary_key: tuple[str, ...] = ()
    for col in columns:
        values = table.column(col.name)
        if (
            _ID_NAME.match(col.name)
            and values.null_count == 0
            and len(values.unique()) == len(values)
        ):
            primary_key = (col.name,)
            break
    dates = [c.name for c in columns if c.type in ("date", "timestamp")]
    event_date = next((n for n in dates if "date" in n.lower()), dates[0] if dates else None)
    measures = tuple(
        c.name
        for c in columns
        if c.type in ("float", "decimal") or (c.type == "int" and c.name not in primary_key)
    )
    measures = tuple(m for m in measures if not _ID_NAME.match(m))
    group_by = tuple(
        c.name
        for c in columns
        if c.type == "string"
        and c.name.lower() in ("category", "type", "segment", "region", "channel")
    )
    required = {*primary_key, *([event_date] if event_date else [])}
    final = tuple(Column(c.name, c.type, required=c.name in required) for c in by_name.values())
    return Contract(
        dataset=dataset,
        columns=final,
        primary_key=primary_key,
        event_date=event_date,
        measures=measures,
        group_by=group_by,
        inferred=True,
        source="<inferred>",
    )

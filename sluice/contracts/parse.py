"""A contract from its YAML document: every field checked, every problem naming the fix."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Mapping
from typing import Any

from sluice.contracts.check import Checker
from sluice.contracts.columns import parse_column
from sluice.contracts.model import (
    DERIVED_FUNCTIONS,
    NUMERIC,
    OUTLIER_METHODS,
    RESERVED_NAMES,
    TYPES,
    Band,
    Column,
    Contract,
    Derived,
    Outliers,
)


def _new_fields(
    check: Checker,
    value: Any,
    section: str,
    example: str,
    fields: set[str],
    columns: dict[str, Column],
) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(name, where, spec) of each field a section (`bands`, `derived`) adds to the columns:
    safe names, each spec a mapping of `fields`, no name a column's or a reserved one."""
    entries = check.mapping(value, section, example)
    check.safe_names(entries, section)
    for name, spec in entries.items():
        where = f"{section}.{name}"
        spec = check.mapping(spec, where, example)
        check.only(spec, where, fields)
        check.expect(name not in columns, where, "is already a column", "pick a new name")
        check.expect(name not in RESERVED_NAMES, where, "is a reserved name", "pick a new name")
        yield name, where, spec


def _parse_bands(check: Checker, value: Any, columns: dict[str, Column]) -> tuple[Band, ...]:
    if value is None:
        return ()
    example = "'bands: {amount_category: {column: amount, edges: [100], labels: [LOW, HIGH]}}'"
    bands = []
    fields = {"column", "edges", "labels"}
    for name, where, spec in _new_fields(check, value, "bands", example, fields, columns):
        column = spec.get("column")
        check.columns_exist((str(column),), columns, f"{where}.column", NUMERIC)
        edges = spec.get("edges")
        check.expect(
            isinstance(edges, list) and len(edges) > 0,
            f"{where}.edges",
            "expected a list of numbers",
            "write edges: [100, 1000]",
        )
        assert isinstance(edges, list)
        numbers = tuple(check.number(e, f"{where}.edges") for e in edges)
        check.expect(
            list(numbers) == sorted(set(numbers)),
            f"{where}.edges",
            "edges must rise strictly",
            "sort them and drop repeats",
        )
        labels = spec.get("labels")
        check.expect(
            isinstance(labels, list)
            and len(labels) == len(numbers) + 1
            and all(isinstance(x, str) for x in labels),
            f"{where}.labels",
            f"expected {len(numbers) + 1} labels (one more than edges)",
            "write labels: [LOW, MEDIUM, HIGH] for two edges",
        )
        assert isinstance(labels, list)
        bands.append(Band(str(name), str(column), numbers, tuple(labels)))
    return tuple(bands)


def _parse_outliers(check: Checker, value: Any, columns: dict[str, Column]) -> tuple[Outliers, ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        value = [value]
    check.expect(
        isinstance(value, list),
        "outliers",
        "expected a list",
        "write 'outliers: [{column: amount, method: iqr}]'",
    )
    found = []
    for i, spec in enumerate(value):
        where = f"outliers[{i}]"
        spec = check.mapping(spec, where, "'{column: amount, method: iqr, threshold: 1.5}'")
        check.only(spec, where, {"column", "method", "threshold", "by", "min_group_size"})
        column = str(spec.get("column"))
        check.columns_exist((column,), columns, f"{where}.column", NUMERIC)
        method = spec.get("method", "iqr")
        check.expect(
            method in OUTLIER_METHODS,
            f"{where}.method",
            f"{method!r} is not a method",
            f"use one of {', '.join(OUTLIER_METHODS)}",
        )
        default = 1.5 if method == "iqr" else 3.5
        threshold = check.number(
            spec.get("threshold", default), f"{where}.threshold", positive=True
        )
        by = check.names(spec.get("by"), f"{where}.by")
        check.columns_exist(by, columns, f"{where}.by", ("string", "int", "bool", "date"))
        min_group = spec.get("min_group_size", 8)
        check.expect(
            isinstance(min_group, int) and min_group >= 4,
            f"{where}.min_group_size",
            f"{min_group!r}",
            "use a whole number of at least 4",
        )
        found.append(Outliers(column, str(method), threshold, by, int(min_group)))
    return tuple(found)


def _parse_derived(check: Checker, value: Any, columns: dict[str, Column]) -> tuple[Derived, ...]:
    if value is None:
        return ()
    example = "'derived: {weekday: {column: date, function: day_of_week}}'"
    found = []
    fields = {"column", "function"}
    for name, where, spec in _new_fields(check, value, "derived", example, fields, columns):
        function = spec.get("function")
        check.expect(
            function in DERIVED_FUNCTIONS,
            f"{where}.function",
            f"{function!r} is not a function",
            f"use one of {', '.join(DERIVED_FUNCTIONS)}",
        )
        column = str(spec.get("column"))
        check.columns_exist((column,), columns, f"{where}.column", DERIVED_FUNCTIONS[str(function)])
        found.append(Derived(str(name), column, str(function)))
    return tuple(found)


TOP_LEVEL = {
    "dataset",
    "version",
    "columns",
    "primary_key",
    "event_date",
    "summary",
    "bands",
    "outliers",
    "derived",
    "quality",
    "encoding",
    "sheet",
}


def _parse_encoding(check: Checker, value: Any) -> str | None:
    """The codec's canonical name (`latin-1` is `iso8859-1`), or None when not given."""
    if value is None:
        return None
    try:
        codec = codecs.lookup(str(value)) if isinstance(value, str) else None
    except LookupError:
        codec = None
    check.expect(
        codec is not None and codec._is_text_encoding,
        "encoding",
        f"{value!r} is not a text encoding",
        "write a codec name such as utf-8, cp1252, latin-1 or utf-16",
    )
    assert codec is not None
    return codec.name


def _parse_sheet(check: Checker, value: Any) -> str | None:
    if value is None:
        return None
    check.expect(
        isinstance(value, str) and value.strip() != "",
        "sheet",
        f"{value!r} is not a sheet name",
        "write the name of the xlsx sheet to read, such as 'sheet: Data'",
    )
    return str(value)


def parse_contract(document: Any, source: str = "<memory>") -> Contract:
    """Build a contract from its YAML document, naming the field and fix on any problem."""
    check = Checker(source)
    document = check.mapping(document, "top level", "'dataset: <name>' and 'columns:'")
    check.only(document, "", TOP_LEVEL)
    dataset = document.get("dataset")
    check.expect(
        isinstance(dataset, str) and re.fullmatch(r"[a-z][a-z0-9_]*", dataset or "") is not None,
        "dataset",
        f"{dataset!r} is not a dataset name",
        "use lower-case letters, digits and '_', starting with a letter",
    )
    raw_columns = document.get("columns")
    check.expect(
        isinstance(raw_columns, Mapping) and len(raw_columns) > 0,
        "columns",
        "missing or empty",
        "list each column as '<name>: {type: <type>}'",
    )
    assert isinstance(raw_columns, Mapping)
    check.safe_names(raw_columns, "columns")
    columns = {str(n): parse_column(check, str(n), spec) for n, spec in raw_columns.items()}
    for name in columns:
        check.expect(
            name not in RESERVED_NAMES,
            f"columns.{name}",
            "is a name the pipeline itself writes (partition or lineage column)",
            "rename the column in the contract",
        )
    primary_key = check.names(document.get("primary_key"), "primary_key")
    check.columns_exist(primary_key, columns, "primary_key", TYPES)
    event_date = document.get("event_date")
    if event_date is not None:
        check.columns_exist((str(event_date),), columns, "event_date", ("date", "timestamp"))
    summary = check.mapping(
        document.get("summary") or {},
        "summary",
        "'summary: {measures: [amount], group_by: [category]}'",
    )
    check.only(summary, "summary", {"measures", "group_by"})
    measures = check.names(summary.get("measures"), "summary.measures")
    check.columns_exist(measures, columns, "summary.measures", NUMERIC)
    group_by = check.names(summary.get("group_by"), "summary.group_by")
    check.columns_exist(group_by, columns, "summary.group_by", TYPES)
    bands = _parse_bands(check, document.get("bands"), columns)
    quality = check.mapping(
        document.get("quality") or {}, "quality", "'quality: {completeness_weight: 0.5}'"
    )
    check.only(quality, "quality", {"completeness_weight"})
    weight = quality.get("completeness_weight", 0.5)
    check.expect(
        isinstance(weight, int | float) and 0 <= weight <= 1,
        "quality.completeness_weight",
        f"{weight!r} is not in [0, 1]",
        "use a number from 0 to 1",
    )
    derived = _parse_derived(check, document.get("derived"), columns)
    taken = {b.name for b in bands}
    for item in derived:
        check.expect(item.name not in taken, f"derived.{item.name}", "is a band", "rename it")
    outliers = _parse_outliers(check, document.get("outliers"), columns)
    for where, name in [("summary.measures", m) for m in measures] + [
        (f"outliers[{i}].column", o.column) for i, o in enumerate(outliers)
    ]:
        check.expect(
            name not in columns or columns[name].non_finite == "reject",
            where,
            f"{name} allows NaN and infinities (non_finite: allow), which no sum, mean or "
            "fence can hold",
            f"remove non_finite from columns.{name}, or {name} from {where.split('[')[0]}",
        )
    return Contract(
        dataset=str(dataset),
        version=str(document.get("version", "1")),
        columns=tuple(columns.values()),
        primary_key=primary_key,
        event_date=str(event_date) if event_date is not None else None,
        measures=measures,
        group_by=group_by,
        bands=bands,
        outliers=outliers,
        derived=derived,
        completeness_weight=float(weight),
        encoding=_parse_encoding(check, document.get("encoding")),
        sheet=_parse_sheet(check, document.get("sheet")),
        source=source,
    )

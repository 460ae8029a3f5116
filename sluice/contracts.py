"""Dataset contracts: what a dataset's columns are and how its records are judged.

A contract is a YAML file (`contracts/<dataset>.yaml`). It is validated when loaded, and every
problem names the file, the field and the fix. A dataset without one gets a contract inferred
from its data.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

TYPES = ("int", "float", "decimal", "string", "bool", "date", "timestamp")
NUMERIC = ("int", "float", "decimal")
NULL_POLICIES = ("reject", "fill", "flag")
ACTIONS = ("reject", "flag")
OUTLIER_METHODS = ("iqr", "robust_z")
DERIVED_FUNCTIONS = {
    "year": ("date", "timestamp"),
    "month": ("date", "timestamp"),
    "day": ("date", "timestamp"),
    "quarter": ("date", "timestamp"),
    "day_of_week": ("date", "timestamp"),
    "upper": ("string",),
    "lower": ("string",),
    "trim": ("string",),
    "abs": NUMERIC,
}
# rule name -> (reason code, types the rule applies to, what its argument is)
RULES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "non_negative": ("NEGATIVE", NUMERIC, "true"),
    "not_future": ("FUTURE", ("date", "timestamp"), "true"),
    "min": ("BELOW_MIN", (*NUMERIC, "date", "timestamp"), "a number or date"),
    "max": ("ABOVE_MAX", (*NUMERIC, "date", "timestamp"), "a number or date"),
    "allowed": ("NOT_ALLOWED", ("string", "int", "bool"), "a list of values"),
    "regex": ("PATTERN_MISMATCH", ("string",), "a regular expression"),
    "max_length": ("TOO_LONG", ("string",), "a positive integer"),
}


# Loading limits: a contract is a few KB of YAML. These bound what a hostile one can cost
# before it is judged (an alias bomb, a deeply nested document, a huge file).
MAX_CONTRACT_BYTES = 256 * 1024
MAX_ALIASES = 32
MAX_NODES = 20_000
MAX_DEPTH = 32
# A column name is written into Parquet, Athena/Glue DDL and DuckDB views: letters (any
# script), digits, '_', ' ' and '-', starting with a letter or '_', not ending in a blank.
MAX_NAME_LENGTH = 128
_COLUMN_NAME = re.compile(r"[^\W\d][\w -]*")
NAME_RULE = (
    "use letters, digits, '_', ' ' or '-', starting with a letter or '_' and not ending in "
    f"a blank, at most {MAX_NAME_LENGTH} characters"
)


def is_safe_name(name: str) -> bool:
    """Whether `name` may be a column (or band or derived field) of a contract."""
    return (
        len(name) <= MAX_NAME_LENGTH
        and _COLUMN_NAME.fullmatch(name) is not None
        and not name.endswith(" ")
    )


def full_match_regex(pattern: str) -> str:
    """The RE2 expression Trusted matches whole values with (`regex` rules)."""
    return f"^(?:{pattern})$"


def re2_problem(pattern: str) -> str | None:
    """Why RE2 (the engine Arrow's regex functions use, so Trusted's) cannot compile the
    rule's pattern, or None. The pattern is compiled alone, so that it cannot close the
    anchoring group, and as Trusted matches it."""
    import pyarrow.compute as pc

    probe = pa.array([""], pa.string())
    for expression in (pattern, full_match_regex(pattern)):
        try:
            pc.match_substring_regex(probe, expression)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            return str(exc).removeprefix("Invalid regular expression: ")
    return None


def _plain(value: Any) -> Any:
    """`value` as YAML and JSON write it (dates as ISO text, tuples as lists)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


class ContractError(ValueError):
    """A contract that cannot be used, with where and how to fix it."""

    def __init__(self, source: str, where: str, problem: str, fix: str) -> None:
        super().__init__(f"{source}: {where}: {problem} (fix: {fix})")
        self.source = source
        self.where = where


@dataclass(frozen=True)
class Rule:
    """One business rule on one column; `reject` sends the row to quarantine, `flag` marks it."""

    kind: str
    column: str
    value: Any = True
    action: str = "reject"

    @property
    def code(self) -> str:
        return f"{RULES[self.kind][0]}:{self.column}"

    def to_dict(self) -> dict[str, Any]:
        return {self.kind: _plain(self.value), "action": self.action}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = False
    nulls: str = "flag"
    default: Any = None
    rules: tuple[Rule, ...] = ()
    # "allow": NaN and the infinities are kept (float columns only); "reject": NON_FINITE.
    non_finite: str = "reject"

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": self.type}
        if self.required:
            doc["required"] = True
        if self.nulls != ("reject" if self.required else "flag"):
            doc["nulls"] = self.nulls
        if self.nulls == "fill":
            doc["default"] = _plain(self.default)
        if self.rules:
            doc["rules"] = [r.to_dict() for r in self.rules]
        if self.non_finite != "reject":
            doc["non_finite"] = self.non_finite
        return doc


@dataclass(frozen=True)
class Band:
    """A categorical column derived from a numeric one: `labels[i]` for values below `edges[i]`."""

    name: str
    column: str
    edges: tuple[float, ...]
    labels: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "edges": list(self.edges), "labels": list(self.labels)}


@dataclass(frozen=True)
class Outliers:
    """How a numeric column's outliers are found: IQR fences or robust z-score, per group."""

    column: str
    method: str = "iqr"
    threshold: float = 1.5
    by: tuple[str, ...] = ()
    min_group_size: int = 8

    @property
    def code(self) -> str:
        return f"OUTLIER:{self.column}"

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "column": self.column,
            "method": self.method,
            "threshold": self.threshold,
        }
        if self.by:
            doc["by"] = list(self.by)
        if self.min_group_size != 8:
            doc["min_group_size"] = self.min_group_size
        return doc


@dataclass(frozen=True)
class Derived:
    name: str
    column: str
    function: str

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "function": self.function}


@dataclass(frozen=True)
class Contract:
    dataset: str
    columns: tuple[Column, ...]
    version: str = "1"
    primary_key: tuple[str, ...] = ()
    event_date: str | None = None
    measures: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ()
    bands: tuple[Band, ...] = ()
    outliers: tuple[Outliers, ...] = ()
    derived: tuple[Derived, ...] = ()
    completeness_weight: float = 0.5
    # How RAW files are read: the text encoding (a Python codec name) instead of the decided
    # one, and the one xlsx sheet to read (docs/contracts.md, "Reading files").
    encoding: str | None = None
    sheet: str | None = None
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

    @property
    def rules(self) -> list[Rule]:
        return [rule for col in self.columns for rule in col.rules]

    @property
    def flag_checks(self) -> int:
        """How many per-record checks only flag (flag rules and outlier tests)."""
        return sum(1 for r in self.rules if r.action == "flag") + len(self.outliers)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"dataset": self.dataset, "version": self.version}
        doc["columns"] = {c.name: c.to_dict() for c in self.columns}
        if self.primary_key:
            doc["primary_key"] = list(self.primary_key)
        if self.event_date:
            doc["event_date"] = self.event_date
        if self.measures or self.group_by:
            doc["summary"] = {"measures": list(self.measures), "group_by": list(self.group_by)}
        if self.bands:
            doc["bands"] = {b.name: b.to_dict() for b in self.bands}
        if self.outliers:
            doc["outliers"] = [o.to_dict() for o in self.outliers]
        if self.derived:
            doc["derived"] = {d.name: d.to_dict() for d in self.derived}
        if self.completeness_weight != 0.5:
            doc["quality"] = {"completeness_weight": self.completeness_weight}
        if self.encoding is not None:
            doc["encoding"] = self.encoding
        if self.sheet is not None:
            doc["sheet"] = self.sheet
        return doc

    def to_yaml(self) -> str:
        header = (
            "# Inferred by Sluice from the data: review it, then save it as "
            f"contracts/{self.dataset}.yaml (or s3://<raw bucket>/_contracts/{self.dataset}.yaml)"
            " to adopt it.\n"
            if self.inferred
            else ""
        )
        return header + yaml.safe_dump(self.to_dict(), sort_keys=False)


# Partition columns and the columns every layer adds: a dataset column may not take them.
RESERVED_NAMES = frozenset(
    {
        "year", "month", "day", "record_type", "is_outlier", "quality_flags",
        "data_quality_score", "processed_timestamp", "source_file", "source_version",
        "pipeline_version", "processing_layer", "delivery_timestamp", "reason_codes", "_row",
    }
)  # fmt: skip


class _Checker:
    """Raises `ContractError`s that all name the same source file."""

    def __init__(self, source: str) -> None:
        self.source = source

    def expect(self, cond: bool, where: str, problem: str, fix: str) -> None:
        if not cond:
            raise ContractError(self.source, where, problem, fix)

    def mapping(self, value: Any, where: str, example: str) -> Mapping[str, Any]:
        self.expect(isinstance(value, Mapping), where, "expected a mapping", f"write {example}")
        assert isinstance(value, Mapping)
        return value

    def only(self, value: Mapping[str, Any], where: str, allowed: set[str]) -> None:
        extra = sorted(map(str, set(value) - allowed))
        self.expect(
            not extra,
            f"{where}.{extra[0]}" if extra and where else (extra[0] if extra else where),
            "unknown field",
            f"use only {', '.join(sorted(allowed))}",
        )

    def safe_names(self, names: Mapping[Any, Any], where: str) -> None:
        """Every name is one SQL and Parquet can carry, and no two differ only in case
        (Athena and Glue fold names to lower case)."""
        seen: dict[str, str] = {}
        for name in names:
            self.expect(
                isinstance(name, str) and is_safe_name(name),
                where,
                f"{name!r} is not a safe name",
                f"rename it: {NAME_RULE}"
                if isinstance(name, str)
                else f"YAML read the name as {type(name).__name__}: quote it ('{name}')"
                if not isinstance(name, bool)
                else "YAML read the name as a boolean (on, off, yes, no, true, false): quote it",
            )
            other = seen.setdefault(name.casefold(), name)
            self.expect(
                other == name,
                where,
                f"{other!r} and {name!r} differ only in case",
                "rename one of them",
            )

    def names(self, value: Any, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        self.expect(
            isinstance(value, list) and all(isinstance(v, str) for v in value),
            where,
            f"expected a list of column names, got {value!r}",
            "write a YAML list such as [id]",
        )
        return tuple(value)

    def columns_exist(
        self, names: tuple[str, ...], columns: dict[str, Column], where: str, types: tuple[str, ...]
    ) -> None:
        for name in names:
            self.expect(name in columns, where, f"{name!r} is not a column", "name a column")
            self.expect(
                columns[name].type in types,
                where,
                f"{name!r} is {columns[name].type}",
                f"name a column of type {' or '.join(types)}",
            )

    def number(self, value: Any, where: str, *, positive: bool = False) -> float:
        self.expect(
            isinstance(value, int | float) and not isinstance(value, bool),
            where,
            f"{value!r} is not a number",
            "write a number such as 1.5",
        )
        self.expect(not positive or value > 0, where, f"{value!r} is not positive", "use > 0")
        return float(value)


def _scalar_for(check: _Checker, ctype: str, value: Any, where: str) -> Any:
    """`value` as a Python value of contract type `ctype`, or a `ContractError`."""
    if ctype in ("date", "timestamp"):
        if isinstance(value, datetime):
            return value if ctype == "timestamp" else value.date()
        if isinstance(value, date):
            return value if ctype == "date" else datetime.combine(value, datetime.min.time())
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            check.expect(False, where, f"{value!r} is not a {ctype}", "write 2024-01-31")
        return parsed.date() if ctype == "date" else parsed
    if ctype == "int":
        check.expect(
            isinstance(value, int) and not isinstance(value, bool),
            where,
            f"{value!r} is not an int",
            "write a whole number",
        )
        return value
    if ctype in ("float", "decimal"):
        return check.number(value, where)
    if ctype == "bool":
        check.expect(isinstance(value, bool), where, f"{value!r} is not a bool", "write true")
        return value
    check.expect(isinstance(value, str), where, f"{value!r} is not a string", "quote the value")
    return value


def _parse_rule(check: _Checker, column: Column, item: Any, where: str) -> Rule:
    if isinstance(item, str):
        item = {item: True}
    spec = check.mapping(item, where, "'- non_negative' or '- {max: 100, action: flag}'")
    action = spec.get("action", "reject")
    check.expect(action in ACTIONS, f"{where}.action", f"{action!r}", "use reject or flag")
    kinds = [k for k in spec if k != "action"]
    check.expect(
        len(kinds) == 1 and kinds[0] in RULES,
        where,
        f"expected one rule, got {', '.join(map(str, kinds)) or 'none'}",
        f"use one of {', '.join(RULES)}",
    )
    kind = str(kinds[0])
    value = spec[kind]
    _, types, argument = RULES[kind]
    check.expect(
        column.type in types,
        f"{where}.{kind}",
        f"does not apply to a {column.type} column",
        f"use it on {' or '.join(types)} columns",
    )
    if kind in ("non_negative", "not_future"):
        check.expect(value is True, f"{where}.{kind}", f"{value!r}", f"write {argument}")
    elif kind in ("min", "max"):
        value = _scalar_for(check, column.type, value, f"{where}.{kind}")
    elif kind == "allowed":
        check.expect(
            isinstance(value, list) and len(value) > 0,
            f"{where}.allowed",
            f"{value!r} is not a list",
            "write a YAML list of the allowed values",
        )
        value = tuple(_scalar_for(check, column.type, v, f"{where}.allowed") for v in value)
    elif kind == "regex":
        check.expect(isinstance(value, str), f"{where}.regex", f"{value!r}", f"write {argument}")
        problem = re2_problem(value)
        check.expect(
            problem is None,
            f"{where}.regex",
            f"RE2 cannot compile {value!r}: {problem}",
            "write an RE2 pattern (no lookaround or backreferences)",
        )
    elif kind == "max_length":
        check.expect(
            isinstance(value, int) and not isinstance(value, bool) and value > 0,
            f"{where}.max_length",
            f"{value!r}",
            f"write {argument}",
        )
    return Rule(kind=kind, column=column.name, value=value, action=str(action))


def _parse_column(check: _Checker, name: str, spec: Any) -> Column:
    where = f"columns.{name}"
    if isinstance(spec, str):
        spec = {"type": spec}
    spec = check.mapping(spec, where, "'{type: string}'")
    check.only(spec, where, {"type", "required", "nulls", "default", "rules", "non_finite"})
    ctype = spec.get("type")
    check.expect(
        ctype in TYPES,
        f"{where}.type",
        f"{ctype!r} is not a type",
        f"use one of {', '.join(TYPES)}",
    )
    required = spec.get("required", False)
    check.expect(
        isinstance(required, bool),
        f"{where}.required",
        f"{required!r} is not true/false",
        "write required: true",
    )
    nulls = spec.get("nulls", "reject" if required else "flag")
    check.expect(
        nulls in NULL_POLICIES,
        f"{where}.nulls",
        f"{nulls!r} is not a null policy",
        f"use one of {', '.join(NULL_POLICIES)}",
    )
    default = None
    if nulls == "fill":
        check.expect(
            "default" in spec, f"{where}.default", "missing", "give the value to fill nulls with"
        )
        default = _scalar_for(check, str(ctype), spec["default"], f"{where}.default")
    else:
        check.expect(
            "default" not in spec, f"{where}.default", "only used with nulls: fill", "remove it"
        )
    column = Column(str(name), str(ctype), required, str(nulls), default)
    raw_rules = spec.get("rules") or []
    check.expect(
        isinstance(raw_rules, list), f"{where}.rules", "expected a list", "write '- non_negative'"
    )
    rules = tuple(
        _parse_rule(check, column, item, f"{where}.rules[{i}]") for i, item in enumerate(raw_rules)
    )
    non_finite = spec.get("non_finite", "reject")
    check.expect(
        non_finite in ("reject", "allow"),
        f"{where}.non_finite",
        f"{non_finite!r} is not reject/allow",
        "write non_finite: allow (keep NaN and infinities) or leave it out (reject them)",
    )
    check.expect(
        non_finite == "reject" or ctype == "float",
        f"{where}.non_finite",
        f"a {ctype} column cannot hold NaN or infinities",
        "use it on a float column, or remove it",
    )
    return Column(column.name, column.type, required, column.nulls, default, rules, non_finite)


def _parse_bands(check: _Checker, value: Any, columns: dict[str, Column]) -> tuple[Band, ...]:
    if value is None:
        return ()
    example = "'bands: {amount_category: {column: amount, edges: [100], labels: [LOW, HIGH]}}'"
    bands = []
    check.safe_names(check.mapping(value, "bands", example), "bands")
    for name, spec in check.mapping(value, "bands", example).items():
        where = f"bands.{name}"
        spec = check.mapping(spec, where, example)
        check.only(spec, where, {"column", "edges", "labels"})
        check.expect(name not in columns, where, "is already a column", "pick a new name")
        check.expect(name not in RESERVED_NAMES, where, "is a reserved name", "pick a new name")
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


def _parse_outliers(
    check: _Checker, value: Any, columns: dict[str, Column]
) -> tuple[Outliers, ...]:
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


def _parse_derived(check: _Checker, value: Any, columns: dict[str, Column]) -> tuple[Derived, ...]:
    if value is None:
        return ()
    example = "'derived: {weekday: {column: date, function: day_of_week}}'"
    found = []
    check.safe_names(check.mapping(value, "derived", example), "derived")
    for name, spec in check.mapping(value, "derived", example).items():
        where = f"derived.{name}"
        spec = check.mapping(spec, where, example)
        check.only(spec, where, {"column", "function"})
        check.expect(name not in columns, where, "is already a column", "pick a new name")
        check.expect(name not in RESERVED_NAMES, where, "is a reserved name", "pick a new name")
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


def _parse_encoding(check: _Checker, value: Any) -> str | None:
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


def _parse_sheet(check: _Checker, value: Any) -> str | None:
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
    check = _Checker(source)
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
    columns = {str(n): _parse_column(check, str(n), spec) for n, spec in raw_columns.items()}
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


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a bound on aliases, nesting and the document's size once
    its aliases are expanded: a YAML alias bomb is refused before anything is built."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.aliases = 0
        self.depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _TooMuch(f"more than {MAX_ALIASES} aliases")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _TooMuch(f"nested more than {MAX_DEPTH} levels deep", "flatten it")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        # PyYAML keeps the last of a key given twice: a second `columns:` would silently
        # replace the first. A key a merge (`<<: *base`) brings in may still be overridden.
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
            except TypeError:
                continue  # an unhashable key: PyYAML refuses it itself
            if repeated:
                line = key_node.start_mark.line + 1
                raise _TooMuch(
                    f"the key {key!r} is given twice (again at line {line})",
                    "give each key once (YAML would keep only the last)",
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


class _TooMuch(Exception):
    """A YAML document over a loading limit, or one PyYAML would read silently other than
    written (a key given twice): what is wrong, and the fix."""

    def __init__(self, problem: str, fix: str = "write it without YAML anchors and aliases"):
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def _expanded_nodes(root: Node) -> int:
    """How many nodes the document has once every alias is expanded (capped past the limit)."""
    sizes: dict[int, int] = {}

    def size(node: Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            if known == 0:
                raise _TooMuch("an alias inside its own anchor")
            return known
        sizes[id(node)] = 0  # being counted
        total = 1
        if isinstance(node, SequenceNode):
            children: list[Node] = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        for child in children:
            total = min(total + size(child), MAX_NODES + 1)
        sizes[id(node)] = total
        return total

    return size(root)


def _safe_yaml(text: str) -> Any:
    loader = _BoundedLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        if _expanded_nodes(root) > MAX_NODES:
            raise _TooMuch(f"more than {MAX_NODES} values once its aliases are expanded")
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _too_large(source: str) -> ContractError:
    return ContractError(
        source,
        "file",
        f"over the limit of {MAX_CONTRACT_BYTES} bytes",
        "a contract is a few KB: remove what it does not need",
    )


def load_contract_text(text: str, source: str) -> Contract:
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_CONTRACT_BYTES:
        raise _too_large(source)
    try:
        document = _safe_yaml(text)
    except _TooMuch as exc:
        raise ContractError(source, "YAML", exc.problem, exc.fix) from exc
    except yaml.YAMLError as exc:
        raise ContractError(
            source, "YAML", str(exc).splitlines()[0], "fix the YAML syntax"
        ) from exc
    return parse_contract(document, source)


def load_contract_bytes(data: bytes, source: str) -> Contract:
    """A contract from a file's bytes: at most `MAX_CONTRACT_BYTES` of UTF-8 YAML."""
    if len(data) > MAX_CONTRACT_BYTES:
        raise _too_large(source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError(
            source, "file", f"not UTF-8 (byte {exc.start})", "save the contract as UTF-8"
        ) from exc
    return load_contract_text(text, source)


def find_contract(dataset: str, directory: Path) -> Contract | None:
    for suffix in (".yaml", ".yml"):
        path = directory / f"{dataset}{suffix}"
        if path.is_file():
            with path.open("rb") as handle:
                # One byte more than the limit is enough to know it is over.
                data = handle.read(MAX_CONTRACT_BYTES + 1)
            return load_contract_bytes(data, str(path))
    return None


_ID_NAME = re.compile(r"^(id|.*_id|key|uuid)$", re.IGNORECASE)
_AMOUNT_NAME = re.compile(r"amount|value|price|total|cost|revenue|valor", re.IGNORECASE)
_GROUP_NAMES = ("category", "type", "segment", "region", "channel", "status", "country")


def infer_contract(dataset: str, table: pa.Table) -> Contract:
    """A contract guessed from staged (string) data: types from values, roles from names."""
    from sluice.stages.coerce import infer_type

    # Columns named like the pipeline's own (`year`, `source_file`, ...), or with a name a
    # contract cannot take (see `is_safe_name`, and one differing from an earlier one only in
    # case), cannot be kept under that name; they stay in RAW and are left out of the guess.
    usable: list[str] = []
    for name in table.column_names:
        taken = {u.casefold() for u in usable}
        if name not in RESERVED_NAMES and is_safe_name(name) and name.casefold() not in taken:
            usable.append(name)
    columns = [Column(name, infer_type(table.column(name))) for name in usable]
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
        c.name for c in columns if c.type == "string" and c.name.lower() in _GROUP_NAMES
    )
    required = {*primary_key, *([event_date] if event_date else [])}
    amounts = [m for m in measures if _AMOUNT_NAME.search(m)]
    final = []
    for c in by_name.values():
        rules: tuple[Rule, ...] = ()
        if c.name in amounts:
            # Guessed, so only flagged: the user decides whether negatives are errors.
            rules = (Rule("non_negative", c.name, True, "flag"),)
        is_required = c.name in required
        final.append(
            Column(c.name, c.type, is_required, "reject" if is_required else "flag", None, rules)
        )
    return Contract(
        dataset=dataset,
        columns=tuple(final),
        primary_key=primary_key,
        event_date=event_date,
        measures=measures,
        group_by=group_by,
        outliers=tuple(Outliers(a, "iqr", 3.0, group_by) for a in amounts[:1]),
        inferred=True,
        source="<inferred>",
    )

"""The contract model: a dataset's columns, rules, bands, outliers and derived fields.

The names and types a contract may use are here too; `parse` builds a `Contract` from its YAML
document and says what is wrong with one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sluice.lake import DATE_PARTITIONS, RECORD_TYPE
from sluice.reasons import RowCode

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
RULES: dict[str, tuple[RowCode, tuple[str, ...], str]] = {
    "non_negative": (RowCode.NEGATIVE, NUMERIC, "true"),
    "not_future": (RowCode.FUTURE, ("date", "timestamp"), "true"),
    "min": (RowCode.BELOW_MIN, (*NUMERIC, "date", "timestamp"), "a number or date"),
    "max": (RowCode.ABOVE_MAX, (*NUMERIC, "date", "timestamp"), "a number or date"),
    "allowed": (RowCode.NOT_ALLOWED, ("string", "int", "bool"), "a list of values"),
    "regex": (RowCode.PATTERN_MISMATCH, ("string",), "a regular expression"),
    "max_length": (RowCode.TOO_LONG, ("string",), "a positive integer"),
}


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


def _plain(value: Any) -> Any:
    """`value` as YAML and JSON write it (dates as ISO text, tuples as lists)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Rule:
    """One business rule on one column; `reject` sends the row to quarantine, `flag` marks it."""

    kind: str
    column: str
    value: Any = True
    action: str = "reject"

    @property
    def code(self) -> str:
        return RULES[self.kind][0].of(self.column)

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
        return RowCode.OUTLIER.of(self.column)

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
        import yaml  # (only a contract shown to a user is written as YAML)

        return header + yaml.safe_dump(self.to_dict(), sort_keys=False)


# Partition columns and the columns every layer adds: a dataset column may not take them.
RESERVED_NAMES = frozenset(
    {
        *DATE_PARTITIONS, RECORD_TYPE, "is_outlier", "quality_flags",
        "data_quality_score", "processed_timestamp", "source_file", "source_version",
        "pipeline_version", "processing_layer", "delivery_timestamp", "reason_codes", "_row",
    }
)  # fmt: skip

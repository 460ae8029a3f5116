"""The workflow's state: the object an execution runs, and the section each stage adds to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TypeAlias, TypeVar

from sluice.config import WORKFLOW_STAGES
from sluice.lake import SourceObject
from sluice.state.parse import (
    JsonObject,
    StateError,
    count_field,
    expect_object,
    field_of,
    json_object,
    list_field,
    optional_field,
    source_of,
    strings_field,
)


@dataclass(frozen=True)
class Pointer:
    """Where one object is: the stages hand each other these, never rows."""

    bucket: str
    key: str

    @classmethod
    def from_dict(cls, value: object, where: str) -> Pointer:
        data = expect_object(value, where)
        return cls(field_of(data, "bucket", str, where), field_of(data, "key", str, where))

    def to_dict(self) -> JsonObject:
        return {"bucket": self.bucket, "key": self.key}


@dataclass(frozen=True)
class ContractRef:
    """Which contract judged the file."""

    dataset: str
    version: str
    inferred: bool = False

    @classmethod
    def from_dict(cls, value: object, where: str) -> ContractRef:
        data = expect_object(value, where)
        return cls(
            field_of(data, "dataset", str, where),
            optional_field(data, "version", str, where) or "",
            optional_field(data, "inferred", bool, where) or False,
        )

    def to_dict(self) -> JsonObject:
        return {"dataset": self.dataset, "version": self.version, "inferred": self.inferred}


@dataclass(frozen=True)
class RowCounts:
    """Where a file's (or a day's) rows went."""

    rows_in: int = 0
    rows_trusted: int = 0
    rows_quarantined: int = 0
    duplicates: int = 0

    @classmethod
    def from_dict(cls, value: object, where: str) -> RowCounts:
        data = expect_object(value, where)
        return cls(
            rows_in=count_field(data, "rows_in", where),
            rows_trusted=count_field(data, "rows_trusted", where),
            rows_quarantined=count_field(data, "rows_quarantined", where),
            duplicates=count_field(data, "duplicates", where),
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "rows_in": self.rows_in,
            "rows_trusted": self.rows_trusted,
            "rows_quarantined": self.rows_quarantined,
            "duplicates": self.duplicates,
        }


@dataclass(frozen=True)
class Sheets:
    """Which sheets of a workbook were read, and why the others were skipped (first few)."""

    read: tuple[str, ...]
    read_count: int
    skipped: tuple[tuple[str, str], ...]
    skipped_count: int

    @classmethod
    def from_dict(cls, value: object, where: str) -> Sheets:
        data = expect_object(value, where)
        skipped = [
            expect_object(item, f"{where}.skipped") for item in list_field(data, "skipped", where)
        ]
        return cls(
            strings_field(data, "read", where),
            field_of(data, "read_count", int, where),
            tuple((str(s.get("sheet", "")), str(s.get("why", ""))) for s in skipped),
            field_of(data, "skipped_count", int, where),
        )

    def to_dict(self) -> JsonObject:
        return {
            "read": list(self.read),
            "read_count": self.read_count,
            "skipped": [{"sheet": sheet, "why": why} for sheet, why in self.skipped],
            "skipped_count": self.skipped_count,
        }


def _duration(data: Mapping[str, object], where: str) -> int | None:
    return optional_field(data, "duration_ms", int, where)


def _with_duration(doc: JsonObject, duration_ms: int | None) -> JsonObject:
    return doc if duration_ms is None else {**doc, "duration_ms": duration_ms}


@dataclass(frozen=True)
class ValidateSection:
    """What Validate hands Trusted: the staged file and what it was read as."""

    staged: Pointer
    format: str
    rows_in: int
    bytes_in: int
    bytes_out: int
    contract: ContractRef
    sheets: Sheets | None = None
    duration_ms: int | None = None

    @classmethod
    def from_dict(cls, value: object, where: str = "validate") -> ValidateSection:
        data = expect_object(value, where)
        sheets = data.get("sheets")
        return cls(
            staged=Pointer.from_dict(data.get("staged"), f"{where}.staged"),
            format=optional_field(data, "format", str, where) or "",
            rows_in=count_field(data, "rows_in", where),
            bytes_in=count_field(data, "bytes_in", where),
            bytes_out=count_field(data, "bytes_out", where),
            contract=ContractRef.from_dict(data.get("contract"), f"{where}.contract"),
            sheets=None if sheets is None else Sheets.from_dict(sheets, f"{where}.sheets"),
            duration_ms=_duration(data, where),
        )

    def to_dict(self) -> JsonObject:
        doc: JsonObject = {
            "staged": self.staged.to_dict(),
            "format": self.format,
            "rows_in": self.rows_in,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "contract": self.contract.to_dict(),
        }
        if self.sheets is not None:
            doc["sheets"] = self.sheets.to_dict()
        return _with_duration(doc, self.duration_ms)


@dataclass(frozen=True)
class TrustedSection:
    """What Trusted hands Delivery: its manifest, and the file's counts."""

    manifest: Pointer
    counts: RowCounts
    days: int
    bytes_out: int
    mean_quality_score: float | None = None
    duration_ms: int | None = None

    @classmethod
    def from_dict(cls, value: object, where: str = "trusted") -> TrustedSection:
        data = expect_object(value, where)
        return cls(
            manifest=Pointer.from_dict(data.get("manifest"), f"{where}.manifest"),
            counts=RowCounts.from_dict(data, where),
            days=count_field(data, "days", where),
            bytes_out=count_field(data, "bytes_out", where),
            mean_quality_score=optional_field(data, "mean_quality_score", float, where),
            duration_ms=_duration(data, where),
        )

    def to_dict(self) -> JsonObject:
        doc: JsonObject = {
            "manifest": self.manifest.to_dict(),
            **self.counts.to_dict(),
            "days": self.days,
            "bytes_out": self.bytes_out,
            "mean_quality_score": self.mean_quality_score,
        }
        return _with_duration(doc, self.duration_ms)


@dataclass(frozen=True)
class DeliverySection:
    """What Delivery leaves: the lineage manifest and how many files of each kind it wrote."""

    lineage: Pointer
    detail_files: int
    summary_files: int
    quality_files: int
    rows_out: int
    bytes_out: int
    duration_ms: int | None = None

    @classmethod
    def from_dict(cls, value: object, where: str = "delivery") -> DeliverySection:
        data = expect_object(value, where)
        return cls(
            lineage=Pointer.from_dict(data.get("lineage"), f"{where}.lineage"),
            detail_files=count_field(data, "detail_files", where),
            summary_files=count_field(data, "summary_files", where),
            quality_files=count_field(data, "quality_files", where),
            rows_out=count_field(data, "rows_out", where),
            bytes_out=count_field(data, "bytes_out", where),
            duration_ms=_duration(data, where),
        )

    def to_dict(self) -> JsonObject:
        doc: JsonObject = {
            "lineage": self.lineage.to_dict(),
            "detail_files": self.detail_files,
            "summary_files": self.summary_files,
            "quality_files": self.quality_files,
            "rows_out": self.rows_out,
            "bytes_out": self.bytes_out,
        }
        return _with_duration(doc, self.duration_ms)


@dataclass(frozen=True)
class CaughtError:
    """A stage's error as the workflow's Catch puts it in that stage's section."""

    error: str
    cause: str

    def to_dict(self) -> JsonObject:
        return {"Error": self.error, "Cause": self.cause}


Section: TypeAlias = ValidateSection | TrustedSection | DeliverySection
_SECTIONS: dict[str, type[Section]] = {
    "validate": ValidateSection,
    "trusted": TrustedSection,
    "delivery": DeliverySection,
}
assert tuple(_SECTIONS) == WORKFLOW_STAGES


_S = TypeVar("_S", ValidateSection, TrustedSection, DeliverySection)


def is_caught_error(section: object) -> bool:
    """Whether a section is the `{Error, Cause}` a Catch put where the stage's would be."""
    return isinstance(section, Mapping) and "Error" in section


def _section(
    data: Mapping[str, object], stage: str, kind: type[_S], lenient: bool = False
) -> _S | CaughtError | None:
    value = data.get(stage)
    if value is None:
        return None
    section = expect_object(value, stage)
    if is_caught_error(section):
        return CaughtError(str(section.get("Error") or ""), str(section.get("Cause") or ""))
    try:
        return kind.from_dict(section, stage)
    except StateError:
        if lenient:
            return None
        raise


@dataclass(frozen=True)
class ExecutionState:
    """The workflow's state: the object an execution runs, and each stage's section so far."""

    execution: str
    dataset: str
    source: SourceObject
    validate: ValidateSection | CaughtError | None = None
    trusted: TrustedSection | CaughtError | None = None
    delivery: DeliverySection | CaughtError | None = None

    @classmethod
    def from_dict(cls, value: object, lenient: bool = False) -> ExecutionState:
        """The state; `lenient` (for readers of executions: the report, ops, the CLI) leaves out
        a section that does not parse instead of refusing the whole state."""
        data = expect_object(value, "state")
        return cls(
            execution=str(data.get("execution") or ""),
            dataset=field_of(data, "dataset", str, "state"),
            source=source_of(data.get("source")),
            validate=_section(data, "validate", ValidateSection, lenient),
            trusted=_section(data, "trusted", TrustedSection, lenient),
            delivery=_section(data, "delivery", DeliverySection, lenient),
        )

    def to_dict(self) -> JsonObject:
        doc: JsonObject = {
            "execution": self.execution,
            "dataset": self.dataset,
            "source": json_object(self.source.to_dict(), "source"),
        }
        for stage in WORKFLOW_STAGES:
            section = self.section(stage)
            if section is not None:
                doc[stage] = section.to_dict()
        return doc

    def section(self, stage: str) -> Section | CaughtError | None:
        if stage not in _SECTIONS:
            raise StateError(f"no stage {stage!r}")
        section: Section | CaughtError | None = getattr(self, stage)
        return section

    def result(self, stage: str) -> Section | None:
        """The stage's section where it succeeded (not a caught error, not absent)."""
        section = self.section(stage)
        return None if isinstance(section, CaughtError) else section

    def with_section(self, section: Section) -> ExecutionState:
        """The state with `section` as its stage's section (a caught error there is replaced)."""
        if isinstance(section, ValidateSection):
            return replace(self, validate=section)
        if isinstance(section, TrustedSection):
            return replace(self, trusted=section)
        return replace(self, delivery=section)

    def validated(self) -> ValidateSection:
        """Validate's section, which Trusted needs."""
        if not isinstance(self.validate, ValidateSection):
            raise StateError("the state has no validate section: run the file from Validate")
        return self.validate

    def transformed(self) -> TrustedSection:
        """Trusted's section, which Delivery needs."""
        if not isinstance(self.trusted, TrustedSection):
            raise StateError("the state has no trusted section: run the file from Trusted")
        return self.trusted


def metrics_of(section: Section | CaughtError | None) -> dict[str, int | float]:
    """The numbers (counts, bytes, durations) a stage put in its section."""
    if section is None or isinstance(section, CaughtError):
        return {}
    return {
        k: v
        for k, v in section.to_dict().items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }

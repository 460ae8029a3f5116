"""The manifests the stages leave in S3: Trusted's, for Delivery, and the lineage of a run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

from sluice.config import WORKFLOW_STAGES
from sluice.lake import SourceObject
from sluice.state.parse import (
    JsonObject,
    StateError,
    count_field,
    counts_field,
    expect_object,
    field_of,
    json_object,
    list_field,
    optional_field,
    source_of,
    strings_field,
)
from sluice.state.sections import ContractRef, Pointer, RowCounts

# A TRUSTED day file up to this size (`DayPointer.is_small`) is read whole and its DETAIL put in
# one request; several are made at once (the store's transfer pool), so what Delivery holds stays
# about one DETAIL row group's worth either way.
SMALL_DAY_BYTES = 1 << 20


@dataclass(frozen=True)
class DayPointer(Pointer):
    """One day's file of one source object (TRUSTED or quarantined rows)."""

    day: str = ""
    rows: int = 0
    bytes: int | None = None

    @classmethod
    def from_dict(cls, value: object, where: str) -> DayPointer:
        data = expect_object(value, where)
        day = field_of(data, "day", str, where)
        try:
            date.fromisoformat(day)
        except ValueError:
            raise StateError(f"{where}.day: expected an ISO date, got {day!r:.40}") from None
        return cls(
            field_of(data, "bucket", str, where),
            field_of(data, "key", str, where),
            day,
            field_of(data, "rows", int, where),
            optional_field(data, "bytes", int, where),
        )

    def to_dict(self) -> JsonObject:
        doc: JsonObject = {**super().to_dict(), "day": self.day, "rows": self.rows}
        if self.bytes is not None:
            doc["bytes"] = self.bytes
        return doc

    @property
    def is_small(self) -> bool:
        """Whether the file is at most `SMALL_DAY_BYTES` (one whose size is not known is not)."""
        return self.bytes is not None and self.bytes <= SMALL_DAY_BYTES


@dataclass(frozen=True)
class DayRowsPointer(Pointer):
    """The hand-over of a file's small days' rows, day after day, in one object."""

    days: tuple[str, ...] = ()
    rows: tuple[int, ...] = ()

    @classmethod
    def from_dict(cls, value: object, where: str) -> DayRowsPointer:
        data = expect_object(value, where)
        rows = list_field(data, "rows", where)
        if not all(isinstance(r, int) for r in rows):
            raise StateError(f"{where}.rows: expected a list of integers")
        return cls(
            field_of(data, "bucket", str, where),
            field_of(data, "key", str, where),
            strings_field(data, "days", where),
            tuple(int(str(r)) for r in rows),
        )

    def to_dict(self) -> JsonObject:
        return {**super().to_dict(), "days": list(self.days), "rows": list(self.rows)}


@dataclass(frozen=True)
class PartialsPointer(Pointer):
    """The file's partial summaries of all its days, in one object."""

    days: int = 0
    rows: int = 0

    @classmethod
    def from_dict(cls, value: object, where: str) -> PartialsPointer:
        data = expect_object(value, where)
        return cls(
            field_of(data, "bucket", str, where),
            field_of(data, "key", str, where),
            # (a manifest from before the partials were one object has a pointer per day)
            count_field(data, "days", where),
            count_field(data, "rows", where),
        )

    def to_dict(self) -> JsonObject:
        return {**super().to_dict(), "days": self.days, "rows": self.rows}


_P = TypeVar("_P", DayPointer, DayRowsPointer, PartialsPointer)


def _pointers(data: Mapping[str, object], name: str, kind: type[_P], where: str) -> tuple[_P, ...]:
    return tuple(
        kind.from_dict(item, f"{where}.{name}[{i}]")
        for i, item in enumerate(list_field(data, name, where))
    )


@dataclass(frozen=True)
class QualityTotals:
    """The file's quality counts: why rows were quarantined, flags, nulls, outliers."""

    reasons: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    nulls: dict[str, int] = field(default_factory=dict)
    outliers: int = 0

    def to_dict(self) -> JsonObject:
        return {
            "reasons": dict(self.reasons),
            "flags": dict(self.flags),
            "nulls": dict(self.nulls),
            "outliers": self.outliers,
        }


@dataclass(frozen=True)
class TrustedManifest:
    """What Trusted wrote for one source object, and what Delivery needs to finish it."""

    source: SourceObject
    dataset: str
    contract: JsonObject
    trusted: tuple[DayPointer, ...] = ()
    quarantined: tuple[DayPointer, ...] = ()
    partials: tuple[PartialsPointer, ...] = ()
    day_rows: tuple[DayRowsPointer, ...] = ()
    stale_days: tuple[str, ...] = ()
    counts: RowCounts = field(default_factory=RowCounts)
    mean_quality_score: float | None = None
    # Per event day: the `DayQuality` record of the day's rows (DELIVERY's QUALITY).
    days: dict[str, JsonObject] = field(default_factory=dict)
    stale_quality_days: tuple[str, ...] = ()
    quality: QualityTotals = field(default_factory=QualityTotals)

    @classmethod
    def from_dict(cls, value: object, where: str = "manifest") -> TrustedManifest:
        data = expect_object(value, where)
        days = expect_object(data.get("days", {}), f"{where}.days")
        quality = expect_object(data.get("quality", {}), f"{where}.quality")
        return cls(
            source=source_of(data.get("source"), f"{where}.source"),
            dataset=field_of(data, "dataset", str, where),
            contract=json_object(data.get("contract"), f"{where}.contract"),
            trusted=_pointers(data, "trusted", DayPointer, where),
            quarantined=_pointers(data, "quarantined", DayPointer, where),
            partials=_pointers(data, "partials", PartialsPointer, where),
            day_rows=_pointers(data, "day_rows", DayRowsPointer, where),
            stale_days=strings_field(data, "stale_days", where),
            counts=RowCounts.from_dict(data.get("counts", {}), f"{where}.counts"),
            mean_quality_score=optional_field(data, "mean_quality_score", float, where),
            days={str(d): json_object(q, f"{where}.days.{d}") for d, q in days.items()},
            stale_quality_days=strings_field(data, "stale_quality_days", where),
            quality=QualityTotals(
                counts_field(quality, "reasons", where),
                counts_field(quality, "flags", where),
                counts_field(quality, "nulls", where),
                count_field(quality, "outliers", where),
            ),
        )

    def to_dict(self) -> JsonObject:
        return {
            "source": json_object(self.source.to_dict(), "source"),
            "dataset": self.dataset,
            "contract": self.contract,
            "trusted": [p.to_dict() for p in self.trusted],
            "quarantined": [p.to_dict() for p in self.quarantined],
            "partials": [p.to_dict() for p in self.partials],
            "day_rows": [p.to_dict() for p in self.day_rows],
            "stale_days": list(self.stale_days),
            "counts": dict(self.counts.to_dict()),
            "mean_quality_score": self.mean_quality_score,
            "days": dict(self.days),
            "stale_quality_days": list(self.stale_quality_days),
            "quality": self.quality.to_dict(),
        }

    def outputs(self) -> tuple[Pointer, ...]:
        """Every object of the source's that Trusted wrote (which a later run may make stale)."""
        return (*self.trusted, *self.quarantined, *self.partials, *self.day_rows)


@dataclass(frozen=True)
class OutputFile:
    """One object an execution wrote, as lineage records it."""

    layer: str
    bucket: str
    key: str
    day: str
    rows: int
    record_type: str | None = None
    bytes: int | None = None

    @classmethod
    def from_dict(cls, value: object, where: str) -> OutputFile:
        data = expect_object(value, where)
        return cls(
            layer=field_of(data, "layer", str, where),
            bucket=field_of(data, "bucket", str, where),
            key=field_of(data, "key", str, where),
            day=field_of(data, "day", str, where),
            rows=field_of(data, "rows", int, where),
            record_type=optional_field(data, "record_type", str, where),
            bytes=optional_field(data, "bytes", int, where),
        )

    def to_dict(self) -> JsonObject:
        doc: JsonObject = {"bucket": self.bucket, "key": self.key}
        if self.record_type is not None:
            doc["record_type"] = self.record_type
        doc.update({"day": self.day, "rows": self.rows})
        if self.bytes is not None:
            doc["bytes"] = self.bytes
        doc["layer"] = self.layer
        return doc


@dataclass(frozen=True)
class Durations:
    validate: int | None = None
    trusted: int | None = None
    delivery: int | None = None

    def to_dict(self) -> JsonObject:
        return {"validate": self.validate, "trusted": self.trusted, "delivery": self.delivery}


@dataclass(frozen=True)
class LineageManifest:
    """Written last by Delivery: every output of one execution, and where it came from."""

    execution: str
    dataset: str
    source: SourceObject
    contract: ContractRef
    counts: RowCounts
    outputs: tuple[OutputFile, ...]
    durations_ms: Durations
    delivered_at: str

    @classmethod
    def from_dict(cls, value: object, where: str = "lineage") -> LineageManifest:
        data = expect_object(value, where)
        durations = expect_object(data.get("durations_ms", {}), f"{where}.durations_ms")
        outputs = list_field(data, "outputs", where)
        return cls(
            execution=str(data.get("execution") or ""),
            dataset=field_of(data, "dataset", str, where),
            source=source_of(data.get("source"), f"{where}.source"),
            contract=ContractRef.from_dict(data.get("contract"), f"{where}.contract"),
            counts=RowCounts.from_dict(data.get("counts", {}), f"{where}.counts"),
            outputs=tuple(
                OutputFile.from_dict(o, f"{where}.outputs[{i}]") for i, o in enumerate(outputs)
            ),
            durations_ms=Durations(
                *(optional_field(durations, s, int, where) for s in WORKFLOW_STAGES)
            ),
            delivered_at=field_of(data, "delivered_at", str, where),
        )

    def to_dict(self) -> JsonObject:
        return {
            "execution": self.execution,
            "dataset": self.dataset,
            "source": json_object(self.source.to_dict(), "source"),
            "contract": self.contract.to_dict(),
            "counts": dict(self.counts.to_dict()),
            "outputs": [o.to_dict() for o in self.outputs],
            "durations_ms": self.durations_ms.to_dict(),
            "delivered_at": self.delivered_at,
        }

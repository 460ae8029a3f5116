"""What Trusted hands back: the run's lineage, the files written, and what happened to the rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sluice.state import RowCounts


@dataclass(frozen=True)
class RunContext:
    """Lineage stamped onto every record this run writes."""

    source_file: str
    source_version: str
    pipeline_version: str
    processed_at: datetime


@dataclass(frozen=True)
class DayFile:
    path: Path
    rows: int
    # TRUSTED days only: the file's share of the day's summary (`delivery.partial_summary`)
    partial: pa.Table | None = None


@dataclass
class DayQuality:
    """What happened to one event day's rows of one file (DELIVERY's QUALITY records)."""

    trusted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    nulls: dict[str, int] = field(default_factory=dict)
    outliers: int = 0
    score_sum: float = 0.0
    score_min: float | None = None
    score_max: float | None = None

    @property
    def rows_in(self) -> int:
        return self.trusted + self.quarantined + self.duplicates

    def add_scores(self, scores: np.ndarray) -> None:
        if len(scores) == 0:
            return
        self.score_sum += float(scores.sum())
        low, high = float(scores.min()), float(scores.max())
        self.score_min = low if self.score_min is None else min(self.score_min, low)
        self.score_max = high if self.score_max is None else max(self.score_max, high)

    def to_dict(self) -> dict[str, Any]:
        return {
            **RowCounts(self.rows_in, self.trusted, self.quarantined, self.duplicates).to_dict(),
            "quarantined_by_reason": dict(sorted(self.reasons.items())),
            "null_counts": dict(sorted(self.nulls.items())),
            "outliers": self.outliers,
            "quality_score_mean": round(self.score_sum / self.trusted, 4) if self.trusted else None,
            "quality_score_min": self.score_min,
            "quality_score_max": self.score_max,
        }


@dataclass
class TrustedResult:
    trusted: dict[date, DayFile] = field(default_factory=dict)
    quarantined: dict[date, DayFile] = field(default_factory=dict)
    rows_in: int = 0
    rows_trusted: int = 0
    rows_quarantined: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    nulls: dict[str, int] = field(default_factory=dict)
    outliers: int = 0
    days: dict[date, DayQuality] = field(default_factory=dict)

    def day(self, day: date) -> DayQuality:
        return self.days.setdefault(day, DayQuality())

    def check_accounting(self) -> None:
        total = self.rows_trusted + self.rows_quarantined + self.duplicates
        if total != self.rows_in:
            raise AssertionError(
                f"row accounting broken: {self.rows_in} in, {self.rows_trusted} trusted + "
                f"{self.rows_quarantined} quarantined + {self.duplicates} duplicates = {total}"
            )
        per_day = sum(q.rows_in for q in self.days.values())
        if per_day != self.rows_in:
            raise AssertionError(
                f"row accounting broken: {per_day} rows over days, {self.rows_in} in"
            )

    def read(self, day: date, quarantine: bool = False) -> pa.Table:
        """One day's output as a table (for tests and tools; the pipeline uploads the file)."""
        return pq.read_table((self.quarantined if quarantine else self.trusted)[day].path)

    def counts(self) -> RowCounts:
        return RowCounts(self.rows_in, self.rows_trusted, self.rows_quarantined, self.duplicates)

    @property
    def mean_quality_score(self) -> float | None:
        """The mean `data_quality_score` of the file's TRUSTED rows, rounded as each score is."""
        if not self.rows_trusted:
            return None
        return round(sum(q.score_sum for q in self.days.values()) / self.rows_trusted, 4)

"""A day's DAILY_SUMMARY as a state that one file's partial summary can be merged into."""

from __future__ import annotations

import base64
import copy
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

import pyarrow as pa

from sluice.contracts import Contract
from sluice.errors import SluiceError
from sluice.stages.partials import daily_summary, partial_schema
from sluice.stages.record_types import summary_schema

# --------------------------------------------------------------------------- day state
# A day's summary as a state that one file's partial summary can be merged into.
#
# The state holds, per group, exact running totals of what the day's files contributed (counts,
# sums as fractions, minima, maxima), and which contributions it includes: each TRUSTED partial
# summary's key with a digest of its content. So adding a file costs that file's partial, not
# the day's other files; a rerun of a contribution already in changes nothing; and the summary
# rendered from it is the same whatever order the files arrived in, or whether it was
# recomputed from all the day's partials (sums are exact fractions, rounded once).
#
# A key whose content changed or vanished cannot be subtracted (minima and maxima do not
# undo), so the caller recomputes the state from all the day's partials then. A key that left
# the day stays as a tombstone (an empty digest): a late, stale merge of its old content then
# meets a mismatch and recomputes instead of adding rows that are gone.

REMOVED = ""  # the digest of a contribution that left the day
_CONTRIBUTIONS = b"sluice.contributions"
_GENERATION = b"sluice.generation"
# The DAILY_SUMMARY file's key-value metadata entry holding its day's state.
_STATE = "sluice.state"

GroupKey = tuple[Any, ...]


@dataclass
class _Totals:
    """One group's exact running totals (`None`: no value seen yet)."""

    records: int = 0
    score: Fraction = Fraction(0)
    counts: list[int] = field(default_factory=list)
    sums: list[Fraction | None] = field(default_factory=list)
    minima: list[Any] = field(default_factory=list)
    maxima: list[Any] = field(default_factory=list)


def _fraction(value: Any) -> Fraction:
    return Fraction(value)  # exact for int, float and Decimal alike


def _add(total: Fraction | None, value: Any) -> Fraction | None:
    if value is None:
        return total
    return _fraction(value) if total is None else total + _fraction(value)


def _lower(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def _upper(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else max(a, b)


@dataclass(frozen=True)
class DayState:
    """The running totals of one day, the contributions they include, and a generation that
    grows with every change, so the summary published from it can tell older from newer."""

    contributions: dict[str, str]
    totals: dict[GroupKey, _Totals]
    generation: int = 0

    @classmethod
    def empty(cls) -> DayState:
        return cls({}, {})

    @property
    def has_rows(self) -> bool:
        return bool(self.totals)

    # ------------------------------------------------------------------ changes

    def merged(self, key: str, content: str, partial: pa.Table, contract: Contract) -> DayState:
        """This state with one more contribution added (its key must not be in yet)."""
        assert key not in self.contributions
        totals = copy.deepcopy(self.totals)
        _accumulate(totals, partial, contract)
        return DayState({**self.contributions, key: content}, totals, self.generation + 1)

    def unchanged(self) -> DayState:
        """The same totals, one generation on: a rerun still commits, so a recompute that read
        the day's partials before it cannot overwrite what it confirmed."""
        return replace(self, generation=self.generation + 1)

    def without(self, key: str) -> DayState:
        """A contribution that was never in left the day: remember it as gone."""
        return replace(
            self,
            contributions={**self.contributions, key: REMOVED},
            generation=self.generation + 1,
        )

    def recomputed(self, partials: dict[str, tuple[str, pa.Table]], contract: Contract) -> DayState:
        """The state of exactly these partials (key -> (digest, table)), keeping tombstones."""
        totals: dict[GroupKey, _Totals] = {}
        for key in sorted(partials):
            _accumulate(totals, partials[key][1], contract)
        contributions = {k: REMOVED for k in self.contributions if k not in partials}
        contributions.update({k: d for k, (d, _) in partials.items()})
        return DayState(contributions, totals, self.generation + 1)

    # ------------------------------------------------------------------ outputs

    def summary(self, contract: Contract, day: date) -> pa.Table:
        """The DAILY_SUMMARY rows: what `delivery.daily_summary` makes of all the partials."""
        return daily_summary(self._combined(contract), contract, day)

    def _combined(self, contract: Contract) -> pa.Table:
        """One partial summary row per group holding the day's totals (sums rounded once)."""
        rows = self._rows(contract, float, lambda total, m: _rounded(total, contract, m))
        return pa.Table.from_pylist(rows, schema=partial_schema(contract))

    def _rows(
        self,
        contract: Contract,
        score: Callable[[Fraction], Any],
        total: Callable[[Fraction | None, str], Any],
    ) -> list[dict[str, Any]]:
        """One row per group, in a fixed order: the totals, with the score's sum and each
        measure's sum as `score` and `total` render them."""
        rows: list[dict[str, Any]] = []
        for key in sorted(self.totals, key=_sort_key):
            t = self.totals[key]
            row: dict[str, Any] = dict(zip(contract.group_by, key, strict=True))
            row["record_count"] = t.records
            row["score_sum"] = score(t.score)
            for i, m in enumerate(contract.measures):
                row[f"{m}_count"] = t.counts[i]
                row[f"{m}_sum"] = total(t.sums[i], m)
                row[f"{m}_min"] = t.minima[i]
                row[f"{m}_max"] = t.maxima[i]
            rows.append(row)
        return rows

    def encode(self, contract: Contract) -> bytes:
        """The state as an Arrow IPC stream: exact totals (fractions as text), contributions in
        its metadata. (Arrow IPC, not Parquet: a thirtieth of the time to write and read for a
        few rows, and the state is read and written once per file and day.)"""
        schema = _state_schema(contract)
        rows = self._rows(contract, str, lambda total, _: None if total is None else str(total))
        metadata = {
            _CONTRIBUTIONS: json.dumps(self.contributions, sort_keys=True).encode(),
            _GENERATION: str(self.generation).encode(),
        }
        table = pa.Table.from_pylist(rows, schema=schema.with_metadata(metadata))
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return bytes(sink.getvalue().to_pybytes())

    @classmethod
    def decode(cls, body: bytes, contract: Contract) -> DayState:
        table = pa.ipc.open_stream(body).read_all()
        metadata = table.schema.metadata or {}
        measures = list(contract.measures)
        totals: dict[GroupKey, _Totals] = {}
        for row in table.to_pylist():
            key = tuple(row[g] for g in contract.group_by)
            totals[key] = _Totals(
                records=int(row["record_count"]),
                score=Fraction(row["score_sum"]),
                counts=[int(row[f"{m}_count"]) for m in measures],
                sums=[
                    None if row[f"{m}_sum"] is None else Fraction(row[f"{m}_sum"]) for m in measures
                ],
                minima=[row[f"{m}_min"] for m in measures],
                maxima=[row[f"{m}_max"] for m in measures],
            )
        contributions = json.loads(metadata.get(_CONTRIBUTIONS, b"{}"))
        return cls(contributions, totals, int(metadata.get(_GENERATION, b"0")))

    def summary_table(self, contract: Contract, day: date) -> pa.Table:
        """The day's DAILY_SUMMARY rows; none once every contribution has left."""
        if not self.has_rows:
            return summary_schema(contract).empty_table()
        return self.summary(contract, day)

    def footer(self, contract: Contract) -> dict[str, str]:
        """This state as the DAILY_SUMMARY file's key-value metadata, where the next merge
        reads it: `encode`, deflated (most of a busy day's state is its contributions' keys and
        digests, which every reader of the file fetches with its footer), in base64."""
        return {_STATE: base64.b64encode(zlib.compress(self.encode(contract))).decode("ascii")}

    @classmethod
    def from_footer(cls, metadata: Mapping[bytes, bytes], contract: Contract) -> DayState:
        """The state a DAILY_SUMMARY file's key-value metadata (`footer`) carries."""
        state = metadata.get(_STATE.encode())
        if state is None:
            raise SluiceError(
                "a DAILY_SUMMARY object holds no summary state (it was not written by Sluice's "
                "Delivery): remove it and rerun the day's executions to rebuild it"
            )
        return cls.decode(zlib.decompress(base64.b64decode(state)), contract)

    def summary_rows(self) -> int | None:
        """The DAILY_SUMMARY's row count; None when the day has no rows."""
        return len(self.totals) if self.has_rows else None


def _accumulate(totals: dict[GroupKey, _Totals], partial: pa.Table, contract: Contract) -> None:
    measures = list(contract.measures)
    for row in partial.to_pylist():
        key = tuple(row.get(g) for g in contract.group_by)
        t = totals.get(key)
        if t is None:
            n = len(measures)
            t = totals[key] = _Totals(
                counts=[0] * n, sums=[None] * n, minima=[None] * n, maxima=[None] * n
            )
        t.records += int(row["record_count"])
        if row["score_sum"] is not None:
            t.score += _fraction(row["score_sum"])
        for i, m in enumerate(measures):
            t.counts[i] += int(row[f"{m}_count"] or 0)
            exact = row.get(f"{m}_sum_exact")
            t.sums[i] = _add(t.sums[i], row[f"{m}_sum"] if exact is None else Fraction(exact))
            t.minima[i] = _lower(t.minima[i], row[f"{m}_min"])
            t.maxima[i] = _upper(t.maxima[i], row[f"{m}_max"])


def _rounded(total: Fraction | None, contract: Contract, measure: str) -> Any:
    if total is None:
        return None
    kind = contract.column(measure).type
    if kind == "int":
        return int(total)
    if kind == "decimal":
        with localcontext() as ctx:
            ctx.prec = 80
            return Decimal(total.numerator) / Decimal(total.denominator)
    return float(total)  # correctly rounded: int / int division in Python is


def _sort_key(key: GroupKey) -> tuple[tuple[bool, str], ...]:
    """Any group key sorts (None first); the rendered summary is sorted by Arrow anyway."""
    return tuple((v is not None, repr(v)) for v in key)


def _state_schema(contract: Contract) -> pa.Schema:
    exact = {"score_sum", *(f"{m}_sum" for m in contract.measures)}
    return pa.schema(
        [
            pa.field(f.name, pa.string()) if f.name in exact else f
            for f in partial_schema(contract)
            if not f.name.endswith("_sum_exact")  # (the state's sums are exact themselves)
        ]
    )

"""Per-record checks a contract asks for, on one Arrow batch at a time.

Types, the null policy and business rules decide whether a row is rejected (to quarantine)
or kept with flags; bands and derived fields enrich the rows that are kept. Every check is a
vectorized kernel over the batch, never a Python loop over rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.contracts import Band, Column, Contract, Derived, Rule, full_match_regex
from sluice.reasons import RowCode
from sluice.stages.coerce import ARROW_TYPES, coerce


def flag_codes(contract: Contract) -> list[str]:
    """The flags a kept record can carry, in the fixed order every batch uses."""
    codes: list[str] = []
    for col in contract.columns:
        if col.nulls == "flag":
            codes.append(RowCode.NULL.of(col.name))
        elif col.nulls == "fill":
            codes.append(RowCode.FILLED.of(col.name))
    codes += [rule.code for rule in contract.rules if rule.action == "flag"]
    codes += [spec.code for spec in contract.outliers]
    return codes


def scored_flags(contract: Contract) -> list[str]:
    """Flags that count against the rule part of the quality score (not the null ones)."""
    return [rule.code for rule in contract.rules if rule.action == "flag"] + [
        spec.code for spec in contract.outliers
    ]


@dataclass
class Checked:
    """One batch judged by its contract."""

    typed: dict[str, pa.Array]
    present: np.ndarray  # per row: how many contract columns held a value in the input
    rejects: list[tuple[str, np.ndarray]] = field(default_factory=list)
    flags: dict[str, np.ndarray] = field(default_factory=dict)
    nulls: dict[str, int] = field(default_factory=dict)

    @property
    def rejected(self) -> np.ndarray:
        mask = np.zeros(len(self.present), dtype=bool)
        for _, reject in self.rejects:
            mask |= reject
        return mask


def _mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow result as numpy, null read as False (a rule never fails on a null)."""
    filled = pc.fill_null(values, False)
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks()
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool)


def _scalar(value: Any, arrow_type: pa.DataType) -> pa.Scalar:
    if pa.types.is_decimal(arrow_type) and isinstance(value, float | int):
        value = Decimal(str(value))
    if pa.types.is_timestamp(arrow_type) and isinstance(value, date | datetime):
        value = (
            value if isinstance(value, datetime) else datetime.combine(value, datetime.min.time())
        )
        value = value.replace(tzinfo=None)
    return pa.scalar(value, arrow_type)


def rule_failures(rule: Rule, values: pa.Array, now: datetime) -> np.ndarray:
    """Rows of `values` that break `rule`."""
    arrow_type = values.type
    if rule.kind == "non_negative":
        return _mask(pc.less(values, _scalar(0, arrow_type)))
    if rule.kind == "not_future":
        limit = now.date() if pa.types.is_date(arrow_type) else now
        return _mask(pc.greater(values, _scalar(limit, arrow_type)))
    if rule.kind == "min":
        return _mask(pc.less(values, _scalar(rule.value, arrow_type)))
    if rule.kind == "max":
        return _mask(pc.greater(values, _scalar(rule.value, arrow_type)))
    if rule.kind == "allowed":
        allowed = pa.array(list(rule.value), arrow_type)
        return _mask(pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, allowed))))
    if rule.kind == "regex":
        # Arrow matches with RE2; anchoring makes the pattern describe the whole value.
        matched = pc.match_substring_regex(values, full_match_regex(rule.value))
        return _mask(pc.invert(matched))
    if rule.kind == "max_length":
        # A text has at least as many bytes as characters: counting characters is only
        # needed when some value has more bytes than the limit.
        if not pc.any(pc.greater(pc.binary_length(values), rule.value)).as_py():
            return np.zeros(len(values), dtype=bool)
        return _mask(pc.greater(pc.utf8_length(values), rule.value))
    raise ValueError(f"unknown rule {rule.kind}")  # pragma: no cover - validated on load


def _column(batch: pa.RecordBatch, col: Column) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(typed values, invalid mask, non-finite mask) of one contract column; absent columns
    are all null."""
    n = batch.num_rows
    if col.name not in batch.schema.names:
        return pa.nulls(n, ARROW_TYPES[col.type]), np.zeros(n, dtype=bool), np.zeros(n, bool)
    result = coerce(batch.column(col.name), col.type)
    non_finite = np.zeros(n, dtype=bool) if result.non_finite is None else _mask(result.non_finite)
    return result.values, _mask(result.invalid), non_finite


def check_batch(batch: pa.RecordBatch, contract: Contract, now: datetime) -> Checked:
    """Types, null policy and rules for every row of `batch`."""
    n = batch.num_rows
    checked = Checked(typed={}, present=np.zeros(n, dtype=np.int16))
    for col in contract.columns:
        values, invalid, non_finite = _column(batch, col)
        if invalid.any():
            checked.rejects.append((RowCode.TYPE_MISMATCH.of(col.name), invalid))
        # NaN and the infinities are rejected unless the column allows them (float only), so
        # they never reach a sum, mean, band or outlier fence unasked.
        if non_finite.any() and col.non_finite != "allow":
            checked.rejects.append((RowCode.NON_FINITE.of(col.name), non_finite))
            # Not a number any rule can judge: the row has its one reason for the value.
            values = pc.if_else(pa.array(non_finite), pa.scalar(None, values.type), values)
        valid = _mask(pc.is_valid(values))
        checked.present += valid | non_finite
        missing = ~valid & ~invalid & ~non_finite
        checked.nulls[col.name] = int(missing.sum())
        if col.nulls == "reject":
            if missing.any():
                checked.rejects.append((RowCode.NULL.of(col.name), missing))
        elif col.nulls == "fill":
            checked.flags[RowCode.FILLED.of(col.name)] = missing
            if missing.any():
                values = pc.fill_null(values, _scalar(col.default, values.type))
        else:
            checked.flags[RowCode.NULL.of(col.name)] = missing
        for rule in col.rules:
            failed = rule_failures(rule, values, now)
            if rule.action == "reject":
                if failed.any():
                    checked.rejects.append((rule.code, failed))
            else:
                checked.flags[rule.code] = failed
        checked.typed[col.name] = values
    return checked


def band(spec: Band, values: pa.Array) -> pa.Array:
    """`labels[i]` for values below `edges[i]`, the last label above every edge; null stays null.

    Dictionary-encoded (the labels are the dictionary): a band is a handful of distinct texts.
    """
    numbers = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    index = np.searchsorted(np.asarray(spec.edges), np.nan_to_num(numbers), side="right")
    missing = np.asarray(pc.is_null(values).to_numpy(zero_copy_only=False), dtype=bool)
    missing |= np.isnan(numbers)  # NaN (where a column allows it) is in no band
    indices = pa.array(index.astype(np.int32), mask=missing if missing.any() else None)
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(spec.labels), pa.string()))


# The compute function of each name a contract's `derived` section may use.
_DERIVE: dict[str, Callable[[pa.Array], pa.Array]] = {
    "year": pc.year,
    "month": pc.month,
    "day": pc.day,
    "quarter": pc.quarter,
    # ISO: Monday 1 .. Sunday 7
    "day_of_week": lambda values: pc.day_of_week(values, count_from_zero=False, week_start=1),
    "upper": pc.utf8_upper,
    "lower": pc.utf8_lower,
    "trim": pc.utf8_trim_whitespace,
    "abs": pc.abs,
}


def derive(spec: Derived, values: pa.Array) -> pa.Array:
    """A field computed from one column, as the contract's `derived` section names it."""
    function = _DERIVE.get(spec.function)
    if function is None:  # pragma: no cover - validated on load
        raise ValueError(f"unknown function {spec.function}")
    return function(values)


def code_lists(codes: list[str], masks: list[np.ndarray], n: int) -> pa.Array:
    """Per row, the codes whose mask is set, as a list column built without a Python loop."""
    if not codes:
        return pa.ListArray.from_arrays(
            pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.string())
        )
    matrix = np.column_stack(masks) if masks else np.zeros((n, 0), dtype=bool)
    rows, cols = np.nonzero(matrix)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    values = pa.array(codes, pa.string()).take(pa.array(cols))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def quality_score(
    present: np.ndarray, failed_checks: np.ndarray, columns: int, checks: int, weight: float
) -> np.ndarray:
    """The documented per-record score (docs/quality.md), rounded to 4 places.

    completeness C = present / columns; conformance R = 1 - failed / checks;
    score = weight * C + (1 - weight) * R, or C alone when the contract has no flag checks.
    """
    completeness = present / max(columns, 1)
    if checks == 0:
        return np.round(completeness, 4)
    conformance = 1.0 - failed_checks / checks
    return np.round(weight * completeness + (1.0 - weight) * conformance, 4)

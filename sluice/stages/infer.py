"""A contract inferred from a dataset's data, for the datasets that have none: column types as
Trusted would read the values (`coerce.infer_type`), roles (key, event date, measures) from
the names."""

from __future__ import annotations

import re

import pyarrow as pa

from sluice.contracts import RESERVED_NAMES, Column, Contract, Outliers, Rule, is_safe_name

_ID_NAME = re.compile(r"^(id|.*_id|key|uuid)$", re.IGNORECASE)
_AMOUNT_NAME = re.compile(r"amount|value|price|total|cost|revenue|valor", re.IGNORECASE)
_GROUP_NAMES = ("category", "type", "segment", "region", "channel", "status", "country")


def infer_contract(dataset: str, table: pa.Table) -> Contract:
    """A contract guessed from staged (string) data: types from values, roles from names."""
    # Here, not at the top: Validate's cold start does without `coerce` (and pyarrow.compute)
    # unless a dataset has no contract.
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

"""A contract's `columns:` entries: type, nulls, default, non-finite numbers and rules."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pyarrow as pa

from sluice.contracts.check import Checker
from sluice.contracts.model import ACTIONS, NULL_POLICIES, RULES, TYPES, Column, Rule


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


def _scalar_for(check: Checker, ctype: str, value: Any, where: str) -> Any:
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


def _parse_rule(check: Checker, column: Column, item: Any, where: str) -> Rule:
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


def parse_column(check: Checker, name: str, spec: Any) -> Column:
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

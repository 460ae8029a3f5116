"""What a contract's problems are raised as: `ContractError`, naming the file, field and fix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.contracts.model import NAME_RULE, Column, is_safe_name


class ContractError(ValueError):
    """A contract that cannot be used, with where and how to fix it."""

    def __init__(self, source: str, where: str, problem: str, fix: str) -> None:
        super().__init__(f"{source}: {where}: {problem} (fix: {fix})")
        self.source = source
        self.where = where


class Checker:
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

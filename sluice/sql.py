"""Quoting for the SQL Sluice generates: one helper per dialect for names, one for strings.

Every identifier and string literal that goes into generated SQL (Athena DDL in
`sluice.catalog`, DuckDB views in `sluice.query`) passes through these, so a name with a
quote, a semicolon or a blank cannot end its quoting. Contracts refuse such names when they
load (`sluice.contracts.is_safe_name`); this is the line behind that one.
"""

from __future__ import annotations

import re

# No dialect here can carry these inside a quoted name or string without ambiguity.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _printable(text: str, what: str) -> str:
    if _CONTROL.search(text):
        raise ValueError(f"{what} {text!r} has a control character and cannot be quoted")
    return text


def athena_name(name: str) -> str:
    """A Hive/Athena DDL identifier: in backticks, a backtick doubled."""
    return "`" + _printable(name, "name").replace("`", "``") + "`"


def athena_string(value: str) -> str:
    """A Hive/Athena DDL string literal: in single quotes, backslash and quote escaped."""
    return "'" + _printable(value, "string").replace("\\", "\\\\").replace("'", "\\'") + "'"


def duckdb_name(name: str) -> str:
    """A DuckDB identifier: in double quotes, a double quote doubled."""
    return '"' + _printable(name, "name").replace('"', '""') + '"'


def duckdb_string(value: str) -> str:
    """A DuckDB string literal: in single quotes, a single quote doubled."""
    return "'" + _printable(value, "string").replace("'", "''") + "'"

"""A RAW file's format, from its name and, failing that, its first bytes."""

from __future__ import annotations


def format_of_name(name: str) -> str | None:
    """The format a file's name says it has (a `.gz` suffix aside), or None if it says none."""
    lower = name.lower().removesuffix(".gz")
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith(".json"):
        return "json"
    if lower.endswith(".parquet"):
        return "parquet"
    if lower.endswith((".xlsx", ".xlsm")):
        return "xlsx"
    if lower.endswith((".csv", ".txt", ".tsv")):
        return "csv"
    return None


def detect_format(name: str, head: bytes) -> str:
    """The file's format from its name, falling back to its first bytes."""
    named = format_of_name(name)
    if named in ("jsonl", "json"):
        return named
    if named == "parquet" or head[:4] == b"PAR1":
        return "parquet"
    if named == "xlsx" or head[:4] == b"PK\x03\x04":
        return "xlsx"
    if named == "csv":
        return "csv"
    stripped = head.lstrip()
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "jsonl"
    return "csv"

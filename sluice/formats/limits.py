"""The formats a size limit is set per, and what a read is held to (`ReadLimits`) and told
by the dataset's contract (`ReadHints`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sluice.formats.detect import detect_format, format_of_name

FORMATS = ("csv", "json", "jsonl", "xlsx", "parquet")
# The formats a gzip stream may carry; `<format>.gz` names such a file's size limit.
GZIP_FORMATS = ("csv", "json", "jsonl")
# What a size limit is set per: a format, or a gzip stream of one (limited on inflated bytes).
LIMIT_FORMATS = (*FORMATS, *(f"{fmt}.gz" for fmt in GZIP_FORMATS))


@dataclass(frozen=True)
class ReadLimits:
    """Caps that keep a hostile file from exhausting memory or time."""

    xlsx_max_uncompressed_bytes: int = 256 * 1024**2
    xlsx_max_ratio: int = 200
    xlsx_max_cells: int = 20_000_000
    # A gzip stream inflating past this is FILE_TOO_LARGE (its format's size limit); None: any.
    max_inflated_bytes: int | None = None
    # The size limit's format (`csv.gz`), named in the FILE_TOO_LARGE reason.
    limit_format: str = ""


@dataclass(frozen=True)
class ReadHints:
    """What a dataset's contract says about reading its files (all optional)."""

    encoding: str | None = None  # the text encoding, instead of the decided one
    sheet: str | None = None  # the one xlsx sheet to read
    columns: tuple[str, ...] = ()  # the contract's columns: xlsx sheets are matched to them
    required: tuple[str, ...] = ()


def limit_format(fmt: str, gzipped: bool) -> str:
    """The key of `LIMIT_FORMATS` whose size limit a file of `fmt` (gzipped or not) is held to."""
    return f"{fmt}.gz" if gzipped and fmt in GZIP_FORMATS else fmt


def limit_format_of_name(name: str) -> str | None:
    """The size limit's format from the name alone (before the file is read), or None."""
    fmt = format_of_name(name)
    return None if fmt is None else limit_format(fmt, name.lower().endswith(".gz"))


def limit_format_of_file(path: Path, name: str) -> str:
    """The size limit's format of a downloaded file: its name, then its first bytes."""
    with path.open("rb") as fh:
        head = fh.read(8)
    gzipped = head[:2] == b"\x1f\x8b"
    return limit_format(detect_format(name, b"" if gzipped else head), gzipped)

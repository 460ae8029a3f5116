"""Read RAW files into Arrow tables of text, the shape Validate stages for Trusted.

Every value is kept as text (or its native type for Parquet) so that Trusted, not the reader,
decides what a bad value is, and can say which column and value failed.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sluice.errors import SluiceDataError

FORMATS = ("csv", "json", "jsonl", "parquet")
NULL_VALUES = ["", "NULL", "null", "None"]
_SNIFF_BYTES = 64 * 1024


def detect_format(name: str, head: bytes) -> str:
    """The file's format from its name, falling back to its first bytes."""
    lower = name.lower().removesuffix(".gz")
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith(".json"):
        return "json"
    if lower.endswith(".parquet") or head[:4] == b"PAR1":
        return "parquet"
    if lower.endswith((".csv", ".txt", ".tsv")):
        return "csv"
    stripped = head.lstrip()
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "jsonl"
    return "csv"


def _open_text_bytes(path: Path) -> bytes:
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as gz:
                return gz.read()
        except (OSError, EOFError) as exc:
            raise SluiceDataError("UNREADABLE", f"gzip stream is corrupt: {exc}") from exc
    return path.read_bytes()


def _decode_sample(data: bytes) -> tuple[str, str]:
    """(encoding, sample text); UTF-8 (with or without BOM) first, then Latin-1."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig", data[3:_SNIFF_BYTES].decode("utf-8", errors="ignore")
    try:
        data.decode("utf-8")
        return "utf-8", data[:_SNIFF_BYTES].decode("utf-8", errors="ignore")
    except UnicodeDecodeError:
        pass
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise SluiceDataError("UNREADABLE_ENCODING", "file is binary or UTF-16, not text")
    return "latin-1", data[:_SNIFF_BYTES].decode("latin-1")


def read_csv(data: bytes) -> pa.Table:
    encoding, sample = _decode_sample(data)
    if not sample.strip():
        raise SluiceDataError("EMPTY_FILE", "file has no content")
    try:
        dialect = csv.Sniffer().sniff(sample.split("\n", 20)[0] + "\n", delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    header = next(csv.reader(io.StringIO(sample), delimiter=delimiter))
    names = [h.strip() for h in header]
    if not any(names):
        raise SluiceDataError("NO_HEADER", "the first line holds no column names")
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise SluiceDataError("DUPLICATE_COLUMNS", f"repeated column names: {', '.join(dupes)}")
    text = data.decode(encoding) if encoding != "utf-8" else None
    source = io.BytesIO(text.encode("utf-8") if text is not None else data)
    try:
        table = pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                null_values=NULL_VALUES,
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise SluiceDataError("MALFORMED_CSV", str(exc).splitlines()[0]) from exc
    return table


def _records_to_table(records: list[Any]) -> pa.Table:
    if not all(isinstance(r, dict) for r in records):
        raise SluiceDataError("MALFORMED_JSON", "every record must be a JSON object")
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    columns: dict[str, list[str | None]] = {name: [] for name in names}
    for record in records:
        for name in names:
            value = record.get(name)
            if value is None:
                columns[name].append(None)
            elif isinstance(value, str):
                columns[name].append(value)
            elif isinstance(value, bool):
                columns[name].append("true" if value else "false")
            elif isinstance(value, int | float):
                columns[name].append(repr(value))
            else:
                columns[name].append(json.dumps(value, sort_keys=True))
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def read_json(data: bytes) -> pa.Table:
    try:
        document = json.loads(data.decode(_decode_sample(data)[0]))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SluiceDataError("MALFORMED_JSON", f"not valid JSON: {exc}") from exc
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        raise SluiceDataError("MALFORMED_JSON", "expected an array of objects")
    return _records_to_table(document)


def read_jsonl(data: bytes) -> pa.Table:
    encoding = _decode_sample(data)[0]
    records = []
    for number, line in enumerate(data.decode(encoding).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise SluiceDataError(
                "MALFORMED_JSON", f"line {number} is not valid JSON: {exc.msg}", line=number
            ) from exc
    return _records_to_table(records)


def read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SluiceDataError("UNREADABLE", f"not a readable Parquet file: {exc}") from exc


def read_file(path: Path, name: str) -> tuple[str, pa.Table]:
    """(format, table) of a RAW file, or a `SluiceDataError` saying why it cannot be read."""
    if path.stat().st_size == 0:
        raise SluiceDataError("EMPTY_FILE", "file has no content")
    with path.open("rb") as fh:
        head = fh.read(8)
    fmt = detect_format(name, head)
    if fmt == "parquet":
        return fmt, read_parquet(path)
    data = _open_text_bytes(path)
    if not data.strip():
        raise SluiceDataError("EMPTY_FILE", "file has no content")
    readers = {"csv": read_csv, "json": read_json, "jsonl": read_jsonl}
    return fmt, readers[fmt](data)

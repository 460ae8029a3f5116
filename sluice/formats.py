"""Read RAW files as streams of Arrow batches of text, the shape Validate stages for Trusted.

Every value is kept as text (or its native type for Parquet) so that Trusted, not the reader,
decides what a bad value is, and can say which column and value failed. CSV and Parquet are
read batch by batch, so memory does not grow with the file; JSON, JSON Lines and Excel are
read whole (bounded by the file size limit, and for Excel by the caps in `ReadLimits`).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sluice.errors import SluiceDataError

FORMATS = ("csv", "json", "jsonl", "xlsx", "parquet")
# The formats a gzip stream may carry; `<format>.gz` names such a file's size limit.
GZIP_FORMATS = ("csv", "json", "jsonl")
# What a size limit is set per: a format, or a gzip stream of one (limited on inflated bytes).
LIMIT_FORMATS = (*FORMATS, *(f"{fmt}.gz" for fmt in GZIP_FORMATS))
NULL_VALUES = ["", "NULL", "null", "None"]
_SNIFF_BYTES = 64 * 1024
# Arrow's streaming CSV reader reads up to 32 blocks ahead of its consumer, so the block size
# bounds its memory: 1 MiB blocks keep that under ~32 MiB whatever the file's size.
CSV_BLOCK_BYTES = 1024 * 1024
RECORD_BATCH_ROWS = 1 << 16


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


@dataclass
class Batches:
    """A RAW file opened for reading: its format, schema and batches (read once)."""

    format: str
    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]


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


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open_stream(path: Path) -> pa.NativeFile:
    return pa.input_stream(str(path), compression="gzip" if _is_gzip(path) else None)


def _chunks(
    path: Path, size: int = 8 * 1024 * 1024, limits: ReadLimits | None = None
) -> Iterator[bytes]:
    """The file's (decompressed) bytes in chunks; a corrupt gzip is a data error, and so is
    one that inflates past `limits.max_inflated_bytes` (stopped there, before it is held)."""
    cap = None if limits is None else limits.max_inflated_bytes
    inflated = 0
    try:
        with _open_stream(path) as stream:
            while chunk := stream.read(size):
                inflated += len(chunk)
                if cap is not None and inflated > cap:
                    assert limits is not None
                    raise SluiceDataError(
                        "FILE_TOO_LARGE",
                        f"inflates past the {limits.limit_format} limit of {cap} bytes; raise "
                        f"max_file_bytes_by_format.{limits.limit_format} (with stage sizes "
                        "that serve it)",
                        format=limits.limit_format,
                        limit=cap,
                        raise_setting=f"max_file_bytes_by_format.{limits.limit_format}",
                    )
                yield chunk
    except (OSError, EOFError, pa.ArrowInvalid) as exc:
        raise SluiceDataError("UNREADABLE", f"compressed stream is corrupt: {exc}") from exc


def _head(path: Path) -> bytes:
    head = b""
    for chunk in _chunks(path, _SNIFF_BYTES):
        head += chunk
        break
    return head


def _encoding(path: Path, limits: ReadLimits | None = None) -> str:
    """UTF-8 (with or without BOM) if every byte decodes as such, else Latin-1.

    It reads the whole (inflated) stream first, so a gzip over its limit stops here."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    first = True
    try:
        for chunk in _chunks(path, limits=limits):
            if first and b"\x00" in chunk[:_SNIFF_BYTES]:
                raise SluiceDataError("UNREADABLE_ENCODING", "file is binary or UTF-16, not text")
            first = False
            if chunk.isascii() and not decoder.getstate()[0]:
                continue  # plain ASCII is UTF-8, and checking it is ~10x faster than decoding
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
        return "utf-8"
    except UnicodeDecodeError:
        return "latin-1"


def _decode_sample(data: bytes) -> tuple[str, str]:
    """(encoding, sample text) of an in-memory file; UTF-8 (with or without BOM), else Latin-1."""
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


def _csv_header(sample: str) -> tuple[str, list[str]]:
    """(delimiter, column names) from the first lines of a CSV file."""
    sample = sample.removeprefix("\ufeff")
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
    return delimiter, names


def _csv_batches(reader: pacsv.CSVStreamingReader) -> Iterator[pa.RecordBatch]:
    try:
        yield from reader
    except pa.ArrowInvalid as exc:
        raise SluiceDataError("MALFORMED_CSV", str(exc).splitlines()[0]) from exc
    except (OSError, EOFError) as exc:
        raise SluiceDataError("UNREADABLE", f"compressed stream is corrupt: {exc}") from exc


def open_csv(path: Path, limits: ReadLimits | None = None) -> Batches:
    encoding = _encoding(path, limits)
    sample = _head(path).decode(encoding, errors="ignore")
    delimiter, names = _csv_header(sample)
    try:
        reader = pacsv.open_csv(
            _open_stream(path),
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, encoding=encoding, block_size=CSV_BLOCK_BYTES
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                null_values=NULL_VALUES,
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise SluiceDataError("MALFORMED_CSV", str(exc).splitlines()[0]) from exc
    except (OSError, EOFError) as exc:
        raise SluiceDataError("UNREADABLE", f"compressed stream is corrupt: {exc}") from exc
    return Batches("csv", reader.schema, _csv_batches(reader))


def _text(value: Any) -> str | None:
    """A JSON or spreadsheet value as the text a CSV would hold."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return json.dumps(value, sort_keys=True, default=str)


def _records_to_table(records: list[Any]) -> pa.Table:
    if not all(isinstance(r, dict) for r in records):
        raise SluiceDataError("MALFORMED_JSON", "every record must be a JSON object")
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    columns = {name: [_text(record.get(name)) for record in records] for name in names}
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def _all_bytes(path: Path, limits: ReadLimits | None = None) -> bytes:
    data = b"".join(_chunks(path, limits=limits))
    if not data.strip():
        raise SluiceDataError("EMPTY_FILE", "file has no content")
    return data


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


def _check_archive(path: Path, limits: ReadLimits) -> None:
    """Refuse zip bombs before any member is inflated: total size and ratio are capped."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise SluiceDataError("UNREADABLE", f"not a readable xlsx (zip) file: {exc}") from exc
    total = sum(m.file_size for m in members)
    if total > limits.xlsx_max_uncompressed_bytes:
        raise SluiceDataError(
            "UNSAFE_ARCHIVE",
            f"xlsx inflates to {total} bytes, over the cap of {limits.xlsx_max_uncompressed_bytes}",
            uncompressed=total,
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > 1024 * 1024 and ratio > limits.xlsx_max_ratio:
            raise SluiceDataError(
                "UNSAFE_ARCHIVE",
                f"xlsx member {member.filename!r} is compressed {ratio:.0f}:1, "
                f"over the cap of {limits.xlsx_max_ratio}:1",
                member=member.filename,
            )


def read_xlsx(path: Path, limits: ReadLimits | None = None) -> pa.Table:
    """The first worksheet, read-only and without formulas; XML entities are refused."""
    limits = limits or ReadLimits()
    _check_archive(path, limits)
    import defusedxml  # noqa: F401  # openpyxl parses with defusedxml when it is importable
    import openpyxl
    from defusedxml import DefusedXmlException

    handle = path.open("rb")  # a handle, not a name: openpyxl judges names by extension
    try:
        book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except (DefusedXmlException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        # openpyxl wraps the parser's refusal in a ValueError: look down the chain.
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, DefusedXmlException):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            handle.close()
            raise SluiceDataError("UNSAFE_ARCHIVE", f"xlsx holds forbidden XML: {cause!r}") from exc
        handle.close()
        raise SluiceDataError("UNREADABLE", f"not a readable xlsx file: {exc}") from exc
    try:
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None or not any(h is not None for h in header):
            raise SluiceDataError("EMPTY_FILE", "the first worksheet is empty")
        names = [
            str(h).strip() if h is not None else f"column_{i + 1}" for i, h in enumerate(header)
        ]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise SluiceDataError("DUPLICATE_COLUMNS", f"repeated column names: {', '.join(dupes)}")
        columns: list[list[str | None]] = [[] for _ in names]
        cells = 0
        for row in rows:
            cells += len(row)
            if cells > limits.xlsx_max_cells:
                raise SluiceDataError(
                    "UNSAFE_ARCHIVE", f"xlsx holds more than {limits.xlsx_max_cells} cells"
                )
            if all(v is None for v in row):
                continue
            for i in range(len(names)):
                columns[i].append(_text(row[i]) if i < len(row) else None)
    except DefusedXmlException as exc:
        raise SluiceDataError("UNSAFE_ARCHIVE", f"xlsx holds forbidden XML: {exc}") from exc
    finally:
        book.close()
        handle.close()
    return pa.table({n: pa.array(v, pa.string()) for n, v in zip(names, columns, strict=True)})


def open_parquet(path: Path) -> Batches:
    try:
        source = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SluiceDataError("UNREADABLE", f"not a readable Parquet file: {exc}") from exc

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from source.iter_batches(batch_size=RECORD_BATCH_ROWS)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SluiceDataError("UNREADABLE", f"not a readable Parquet file: {exc}") from exc

    return Batches("parquet", source.schema_arrow, batches())


def _whole(fmt: str, table: pa.Table) -> Batches:
    return Batches(fmt, table.schema, iter(table.to_batches(max_chunksize=RECORD_BATCH_ROWS)))


def open_file(path: Path, name: str, limits: ReadLimits | None = None) -> Batches:
    """A RAW file as batches, or a `SluiceDataError` saying why it cannot be read."""
    if path.stat().st_size == 0:
        raise SluiceDataError("EMPTY_FILE", "file has no content")
    with path.open("rb") as fh:
        head = fh.read(8)
    fmt = detect_format(name, head)
    if fmt == "parquet":
        return open_parquet(path)
    if fmt == "xlsx":
        return _whole(fmt, read_xlsx(path, limits))
    if fmt == "csv":
        return open_csv(path, limits)
    data = _all_bytes(path, limits)
    return _whole(fmt, read_json(data) if fmt == "json" else read_jsonl(data))


def read_file(path: Path, name: str, limits: ReadLimits | None = None) -> tuple[str, pa.Table]:
    """(format, whole table) of a RAW file; the pipeline streams with `open_file` instead."""
    opened = open_file(path, name, limits)
    return opened.format, pa.Table.from_batches(list(opened.batches), opened.schema)

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
import itertools
import json
import math
import re
import zipfile
from collections.abc import Iterable, Iterator
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
# A row longer than a block is read with larger blocks, up to this: a row (a field) longer
# than it is ROW_TOO_LARGE. Blocks this large take ~700 MB of Validate's memory.
CSV_MAX_BLOCK_BYTES = 64 * 1024 * 1024
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


@dataclass(frozen=True)
class ReadHints:
    """What a dataset's contract says about reading its files (all optional)."""

    encoding: str | None = None  # the text encoding, instead of the decided one
    sheet: str | None = None  # the one xlsx sheet to read
    columns: tuple[str, ...] = ()  # the contract's columns: xlsx sheets are matched to them
    required: tuple[str, ...] = ()


@dataclass
class Batches:
    """A RAW file opened for reading: its format, schema and batches (read once)."""

    format: str
    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    # An xlsx file's sheets: which were read, which skipped and why.
    sheets: SheetReport | None = None


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


_UTF8_BOM = b"\xef\xbb\xbf"
# UTF-32 LE's BOM starts with UTF-16 LE's; both are refused unless a contract names them.
_WIDE_BOMS = {b"\xff\xfe": "UTF-16 LE", b"\xfe\xff": "UTF-16 BE", b"\x00\x00\xfe\xff": "UTF-32 BE"}
# The encoding a file without a BOM or a contract's `encoding:` is read in when its bytes are
# not UTF-8 and none of its non-ASCII bytes form a UTF-8 character.
FALLBACK_ENCODING = "iso8859-1"
# In text decoded with `surrogateescape`, a byte that is not UTF-8 is one of U+DC80-U+DCFF,
# and a character UTF-8 spelled in two to four bytes is any other non-ASCII one.
_MULTIBYTE = re.compile("[^\x00-\x7f\udc80-\udcff]")


def _wide(codec: str) -> bool:
    return codec.startswith(("utf-16", "utf-32"))


def _refuse_binary(head: bytes, declared: str | None) -> None:
    """A file whose first bytes say UTF-16/32 or binary cannot be read as decided text."""
    if declared is not None and _wide(declared):
        return
    for bom, name in _WIDE_BOMS.items():
        if head.startswith(bom) and declared is None:
            raise SluiceDataError(
                "UNREADABLE_ENCODING",
                f"file starts with a {name} byte-order mark; to read it, set 'encoding: "
                f"{name.split()[0].lower()}' in the dataset's contract",
                encoding=name,
                offset=0,
            )
    nul = head.find(b"\x00", 0, _SNIFF_BYTES)
    if nul >= 0:
        raise SluiceDataError(
            "UNREADABLE_ENCODING",
            f"file is binary or UTF-16, not text: a NUL byte at offset {nul}; a UTF-16 file "
            "needs 'encoding: utf-16' in its contract",
            offset=nul,
        )


def _invalid(codec: str, offset: int, why: str) -> SluiceDataError:
    return SluiceDataError(
        "UNREADABLE_ENCODING",
        f"the byte at offset {offset} is not valid {codec} ({why}); the file is not read in "
        "another encoding instead: fix the byte, or set the contract's 'encoding:' to the "
        "file's encoding",
        encoding=codec,
        offset=offset,
    )


def _check_declared(chunks: Iterable[bytes], codec: str) -> str:
    """Decode every byte as `codec`, stopping at the first that is not valid in it."""
    decoder = codecs.getincrementaldecoder(codec)()
    offset = 0
    for chunk in chunks:
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise _invalid(codec, offset - pending + exc.start, exc.reason) from exc
        except UnicodeError as exc:
            # utf-16 and utf-32 (without -le/-be) need a byte-order mark to start with.
            raise _invalid(codec, 0, str(exc)) from exc
        offset += len(chunk)
    pending = len(decoder.getstate()[0])
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise _invalid(codec, offset - pending + exc.start, exc.reason) from exc
    return codec


def decide_encoding(chunks: Iterable[bytes], declared: str | None = None) -> str:
    """The codec a file's text is read in, after checking every byte of it (streamed).

    - a contract's `encoding:` (`declared`), when it names one;
    - UTF-8 when the file starts with UTF-8's byte-order mark;
    - UTF-8 when every byte is UTF-8;
    - Latin-1 (`FALLBACK_ENCODING`) when some bytes are not UTF-8 and no non-ASCII byte of
      the file spells a UTF-8 character: a Latin-1 or cp1252 file;
    - otherwise the file is UTF-8 with bytes that are not: `UNREADABLE_ENCODING` at the
      first of them, never a whole file re-read in another encoding.

    A UTF-16/32 byte-order mark or a NUL byte in the first 64 KiB is `UNREADABLE_ENCODING`
    unless the contract names that encoding. Offsets count the file's (inflated) bytes."""
    stream = iter(chunks)
    first = next(stream, b"")
    _refuse_binary(first, declared)
    rest = itertools.chain([first], stream)
    if declared is not None:
        return _check_declared(rest, declared)
    if first.startswith(_UTF8_BOM):
        return _check_declared(rest, "utf-8")
    # Strict decoding while every byte is UTF-8 (the common case, at C speed); from the first
    # byte that is not, the rest is only searched for a UTF-8 character.
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    spelled = False  # has a UTF-8 character of two or more bytes been seen?
    for chunk in itertools.chain(rest, [None]):
        if chunk is not None and chunk.isascii() and not decoder.getstate()[0]:
            offset += len(chunk)  # plain ASCII is UTF-8, and checking it is ~10x faster
            continue
        start = offset - len(decoder.getstate()[0])
        offset += len(chunk or b"")
        try:
            text = decoder.decode(chunk or b"", final=chunk is None)
        except UnicodeDecodeError as exc:
            first_invalid = start + exc.start
            if spelled or not exc.object[: exc.start].isascii():
                raise _invalid("utf-8", first_invalid, _SPELLED) from exc
            evidence = _utf8_evidence(itertools.chain([exc.object[exc.start :]], rest))
            if evidence is not None:
                raise _invalid("utf-8", first_invalid, evidence) from exc
            return FALLBACK_ENCODING
        spelled = spelled or not text.isascii()
    return "utf-8"


_SPELLED = "the file's other non-ASCII text is UTF-8"


_SHAPED = (
    "the file holds UTF-8's form of a surrogate, an overlong or an out-of-range character "
    "(CESU-8 or modified UTF-8), not Latin-1 text"
)
# Three- and four-byte sequences with UTF-8's shape that UTF-8 forbids: a surrogate (ED A0-BF,
# as CESU-8 and Java's modified UTF-8 write characters past U+FFFF), an overlong form (E0 80-9F,
# F0 80-8F) or a character past U+10FFFF. No Latin-1 or cp1252 text spells these (a letter then
# two or three symbols or control characters). Two-byte overlongs (C0/C1) are left out: `«À»`
# is Latin-1 that spells one.
_UTF8_SHAPED = re.compile(
    rb"\xed[\xa0-\xbf][\x80-\xbf]|\xe0[\x80-\x9f][\x80-\xbf]|\xf0[\x80-\x8f][\x80-\xbf]{2}"
    rb"|\xf4[\x90-\xbf][\x80-\xbf]{2}|[\xf5-\xf7][\x80-\xbf]{3}"
)


def _utf8_evidence(chunks: Iterable[bytes]) -> str | None:
    """Why bytes that are not all UTF-8 are still meant as UTF-8 (they hold a UTF-8 character
    of two or more bytes, or a sequence of UTF-8's shape that it forbids), or None."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    tail = b""  # the last bytes of the previous chunk: a sequence may straddle two
    for chunk in itertools.chain(chunks, [None]):
        if chunk is not None and _UTF8_SHAPED.search(tail + chunk[:3]):
            return _SHAPED
        if chunk is not None and chunk.isascii() and not decoder.getstate()[0]:
            tail = b""
            continue
        if chunk is not None and _UTF8_SHAPED.search(chunk):
            return _SHAPED
        tail = (chunk or b"")[-3:]
        if _MULTIBYTE.search(decoder.decode(chunk or b"", final=chunk is None)):
            return _SPELLED
    return None


def _encoding(path: Path, limits: ReadLimits | None, declared: str | None) -> str:
    """The decided encoding of a file on disk. It reads the whole (inflated) stream, so a gzip
    over its limit stops here, before the reader starts."""
    return decide_encoding(_chunks(path, limits=limits), declared)


def _decode(data: bytes, declared: str | None) -> str:
    """An in-memory file's text, in its decided encoding (a UTF-8 BOM dropped)."""
    codec = decide_encoding([data], declared)
    text = data.decode(codec)
    return text.removeprefix("\ufeff")


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
    try:
        header = next(csv.reader(io.StringIO(sample), delimiter=delimiter))
    except csv.Error as exc:
        raise SluiceDataError("MALFORMED_CSV", f"the header line does not read: {exc}") from exc
    names = [h.strip() for h in header]
    if not any(names):
        raise SluiceDataError("NO_HEADER", "the first line holds no column names")
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise SluiceDataError("DUPLICATE_COLUMNS", f"repeated column names: {', '.join(dupes)}")
    return delimiter, names


_COLUMN_COUNT = re.compile(r"Expected (\d+) columns, got (\d+)")
_STRADDLING = "straddling object straddles two block boundaries"


def _locate_bad_row(
    path: Path, encoding: str, delimiter: str, expected: int
) -> tuple[int, int, int] | None:
    """(row, line, fields) of the first data row without `expected` fields, read again with
    Python's csv module (only once Arrow has refused the file: it does not say where), or
    None if that reading finds no such row."""
    previous = csv.field_size_limit(CSV_MAX_BLOCK_BYTES)
    try:
        with (
            _open_stream(path) as stream,
            io.TextIOWrapper(stream, encoding=encoding, newline="") as text,
        ):
            reader = csv.reader(text, delimiter=delimiter)
            next(reader, None)
            row = 0
            for fields in reader:
                if not fields:
                    continue  # Arrow skips empty lines too
                row += 1
                if len(fields) != expected:
                    return row, reader.line_num, len(fields)
    except (csv.Error, OSError, EOFError, UnicodeDecodeError, pa.ArrowInvalid):
        return None
    finally:
        csv.field_size_limit(previous)
    return None


def _csv_error(
    exc: pa.ArrowInvalid, path: Path, encoding: str, delimiter: str, emitted: int
) -> SluiceDataError:
    """MALFORMED_CSV saying where and how a row is wrong, never what it holds: Arrow's own
    message ends with the row's text, which must not reach a log or a reason."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    counts = _COLUMN_COUNT.search(message)
    if counts is None:
        # Arrow's parse errors end with the row (`CSV parse error: <what>: <row>`): keep <what>.
        parse = "CSV parse error: "
        if message.startswith(parse):
            message = parse + message.removeprefix(parse).split(": ", 1)[0]
        safe = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message)
        return SluiceDataError("MALFORMED_CSV", f"not valid CSV after row {emitted}: {safe}")
    expected, found = int(counts.group(1)), int(counts.group(2))
    located = _locate_bad_row(path, encoding, delimiter, expected)
    if located is None:
        return SluiceDataError(
            "MALFORMED_CSV",
            f"a row after row {emitted} has {found} fields, expected {expected}",
            expected_fields=expected,
            found_fields=found,
        )
    row, line, found = located
    return SluiceDataError(
        "MALFORMED_CSV",
        f"row {row} (line {line} of the file) has {found} fields, expected {expected}",
        row=row,
        line=line,
        expected_fields=expected,
        found_fields=found,
    )


def _csv_batches(
    path: Path, encoding: str, delimiter: str, names: list[str]
) -> Iterator[pa.RecordBatch]:
    """The CSV's batches. A row longer than Arrow's block (a huge field) makes Arrow refuse
    the block: the read starts again with blocks 8 times larger, up to `CSV_MAX_BLOCK_BYTES`,
    and skips the rows already handed on, so each row is yielded once, in order."""
    block = CSV_BLOCK_BYTES
    emitted = 0
    while True:
        skip = emitted
        try:
            reader = pacsv.open_csv(
                _open_stream(path),
                read_options=pacsv.ReadOptions(
                    column_names=names, skip_rows=1, encoding=encoding, block_size=block
                ),
                parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()),
                    null_values=NULL_VALUES,
                    strings_can_be_null=True,
                ),
            )
            for batch in reader:
                if skip >= batch.num_rows:
                    skip -= batch.num_rows
                    continue
                if skip:
                    batch, skip = batch.slice(skip), 0
                emitted += batch.num_rows
                yield batch
            return
        except pa.ArrowInvalid as exc:
            if _STRADDLING not in str(exc):
                raise _csv_error(exc, path, encoding, delimiter, emitted) from exc
            if block >= CSV_MAX_BLOCK_BYTES:
                raise SluiceDataError(
                    "ROW_TOO_LARGE",
                    f"a row after row {emitted} is longer than {CSV_MAX_BLOCK_BYTES} bytes "
                    "(a huge field, or a quote that is never closed)",
                    after_row=emitted,
                    limit=CSV_MAX_BLOCK_BYTES,
                ) from exc
            block *= 8
        except UnicodeDecodeError as exc:
            # Every byte was checked before the read began: this is a file changed under it.
            raise SluiceDataError(
                "UNREADABLE_ENCODING",
                f"not valid {encoding} after row {emitted} ({exc.reason})",
                encoding=encoding,
            ) from exc
        except (OSError, EOFError) as exc:
            raise SluiceDataError("UNREADABLE", f"compressed stream is corrupt: {exc}") from exc


def open_csv(path: Path, limits: ReadLimits | None = None, encoding: str | None = None) -> Batches:
    """A CSV file as batches of text; `encoding` is the contract's, if it names one."""
    decided = _encoding(path, limits, encoding)
    sample = _head(path).decode(decided, errors="ignore")
    delimiter, names = _csv_header(sample)
    schema = pa.schema([(name, pa.string()) for name in names])
    return Batches("csv", schema, _csv_batches(path, decided, delimiter, names))


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


# How deep a record may nest objects and arrays (the record itself is level 1); deeper is
# TOO_DEEP, and so is a document too deep for the parser itself.
MAX_JSON_DEPTH = 64
# Longer integer literals are kept as written (Python refuses to convert them).
_MAX_INT_DIGITS = 4000


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; a key given twice is an error (one of the values would be lost)."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        raise _DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))  # type: ignore[func-returns-value]
    return found


def _number(literal: str) -> Any:
    """A JSON number as Python holds it; one a double cannot hold (`1e400`) stays as written,
    for Trusted to judge, rather than turning into inf."""
    value = float(literal)
    return value if math.isfinite(value) else literal


def _integer(literal: str) -> Any:
    return int(literal) if len(literal) <= _MAX_INT_DIGITS else literal


def _parse_json(text: str, where: str, **details: Any) -> Any:
    """A JSON document, or MALFORMED_JSON / TOO_DEEP saying where (never what the data is).

    `NaN`, `Infinity` and `-Infinity` (not JSON, but common) are kept as their text, like a
    CSV's `NaN`, for Trusted to judge."""
    try:
        return json.loads(
            text,
            object_pairs_hook=_object,
            parse_float=_number,
            parse_int=_integer,
            parse_constant=str,
        )
    except json.JSONDecodeError as exc:
        raise SluiceDataError(
            "MALFORMED_JSON",
            f"{where} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            **details,
        ) from exc
    except RecursionError as exc:
        raise SluiceDataError(
            "TOO_DEEP",
            f"{where} nests objects and arrays deeper than {MAX_JSON_DEPTH} levels",
            max_depth=MAX_JSON_DEPTH,
            **details,
        ) from exc
    except _DuplicateKey as exc:
        raise SluiceDataError(
            "MALFORMED_JSON",
            f"{where} has an object that gives one key twice",
            key=exc.key,
            **details,
        ) from exc


def _depth(value: Any) -> int:
    """How deep objects and arrays nest in `value` (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _check_record(value: Any, where: str, **details: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        kind = "an array" if isinstance(value, list) else "a scalar"
        raise SluiceDataError("MALFORMED_JSON", f"{where} is {kind}, not a JSON object", **details)
    if _depth(value) > MAX_JSON_DEPTH:
        raise SluiceDataError(
            "TOO_DEEP",
            f"{where} nests objects and arrays deeper than {MAX_JSON_DEPTH} levels",
            max_depth=MAX_JSON_DEPTH,
            **details,
        )
    return value


def _records_to_table(records: list[dict[str, Any]], places: list[str]) -> pa.Table:
    """The records as a table of text; `places[i]` says where record i is (`line 3`)."""
    names: dict[str, None] = {}
    for i, record in enumerate(records):
        for name in record:
            if name not in names and not _encodable(name):
                raise SluiceDataError(
                    "MALFORMED_JSON",
                    f"{places[i]}: a key holds an unpaired UTF-16 surrogate escape "
                    "(\\ud800-\\udfff), which no UTF-8 text can hold",
                )
            names[name] = None
    arrays = {}
    for name in names:
        values = [_text(record.get(name)) for record in records]
        try:
            arrays[name] = pa.array(values, pa.string())
        except UnicodeEncodeError as exc:
            # `"\ud800"` is valid JSON syntax, but no UTF-8 text holds an unpaired surrogate.
            bad = next(i for i, v in enumerate(values) if v is not None and not _encodable(v))
            raise SluiceDataError(
                "MALFORMED_JSON",
                f"{places[bad]}: column {name!r} holds an unpaired UTF-16 surrogate escape "
                "(\\ud800-\\udfff), which no UTF-8 text can hold",
                column=name,
            ) from exc
    return pa.table(arrays)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _all_bytes(path: Path, limits: ReadLimits | None = None) -> bytes:
    data = b"".join(_chunks(path, limits=limits))
    if not data.strip():
        raise SluiceDataError("EMPTY_FILE", "file has no content")
    return data


def read_json(data: bytes, encoding: str | None = None) -> pa.Table:
    """A JSON array of objects (or one object) as a table of text."""
    document = _parse_json(_decode(data, encoding), "the file")
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        raise SluiceDataError(
            "MALFORMED_JSON", "the file is a JSON scalar: expected an array of objects"
        )
    places = [f"record {i}" for i in range(1, len(document) + 1)]
    records = [_check_record(r, places[i], record=i + 1) for i, r in enumerate(document)]
    return _records_to_table(records, places)


def read_jsonl(data: bytes, encoding: str | None = None) -> pa.Table:
    """JSON Lines: one object per line (blank lines skipped) as a table of text."""
    records = []
    places = []
    # Only \n ends a line: str.splitlines would also split at U+2028 inside a string.
    for number, line in enumerate(_decode(data, encoding).split("\n"), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        records.append(_check_record(_parse_json(line, where, line=number), where, line=number))
        places.append(where)
    return _records_to_table(records, places)


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


@dataclass(frozen=True)
class SheetReport:
    """Which sheets of a workbook were read, and why each other one was not."""

    read: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    # The state lists at most this many sheets of each kind, with reasons of at most WHY
    # characters, and counts them all: it stays small whatever the workbook.
    LISTED = 10
    WHY = 120

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": list(self.read[: self.LISTED]),
            "read_count": len(self.read),
            "skipped": [
                {"sheet": sheet, "why": why[: self.WHY]}
                for sheet, why in self.skipped[: self.LISTED]
            ],
            "skipped_count": len(self.skipped),
        }


@dataclass
class _Sheet:
    name: str
    names: list[str]
    columns: dict[str, list[str | None]]
    rows: int


def _xlsx_forbidden(exc: BaseException) -> BaseException | None:
    """The defusedxml refusal behind `exc` (openpyxl wraps it in a ValueError), if any."""
    from defusedxml import DefusedXmlException

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, DefusedXmlException):
        cause = cause.__cause__ or cause.__context__
    return cause


class _Cells:
    """Counts cells across every sheet read, against `ReadLimits.xlsx_max_cells`."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.count = 0

    def rows(self, sheet: Any) -> Iterator[tuple[Any, ...]]:
        """The sheet's rows that hold a value (blank rows dropped)."""
        for row in sheet.iter_rows(values_only=True):
            self.count += len(row)
            if self.count > self.cap:
                raise SluiceDataError("UNSAFE_ARCHIVE", f"xlsx holds more than {self.cap} cells")
            if any(v is not None for v in row):
                yield row


def _sheet_header(title: str, row: tuple[Any, ...]) -> list[str]:
    names = [str(h).strip() if h is not None else f"column_{i + 1}" for i, h in enumerate(row)]
    while names and names[-1] == f"column_{len(names)}":
        names.pop()  # blank cells right of the header are not columns
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise SluiceDataError(
            "DUPLICATE_COLUMNS",
            f"sheet {title!r} repeats column names: {', '.join(dupes)}",
            sheet=title,
        )
    return names


def _read_sheet(
    title: str, names: list[str], rows: Iterator[tuple[Any, ...]], first: tuple[Any, ...] | None
) -> _Sheet:
    columns: dict[str, list[str | None]] = {n: [] for n in names}
    count = 0
    for row in itertools.chain([] if first is None else [first], rows):
        count += 1
        for i, name in enumerate(names):
            columns[name].append(_text(row[i]) if i < len(row) else None)
    return _Sheet(title, names, columns, count)


def _contract_fit(names: list[str], hints: ReadHints) -> str | None:
    """Why a sheet's header does not match the contract, or None when it does: it holds every
    required column and at least one of the contract's columns."""
    missing = [n for n in hints.required if n not in names]
    if missing:
        return f"header lacks the contract's required columns: {', '.join(missing)}"
    if not set(names) & set(hints.columns):
        return "header holds none of the contract's columns"
    return None


def _choose_sheets(book: Any, cells: _Cells, hints: ReadHints) -> tuple[list[_Sheet], SheetReport]:
    """Read the sheets the rules pick (docs/contracts.md, "Reading files"): the contract's
    `sheet:`; else the sheets whose header matches the contract; else (no contract, or no
    sheet matches it) the sheets with rows and the same columns as the lead sheet: the first
    with rows and at least two columns (a cover page has one), or failing that the first with
    rows. Every other sheet is reported with why it was skipped."""
    titles = [sheet.title for sheet in book.worksheets]
    if hints.sheet is not None and hints.sheet not in titles:
        listed = ", ".join(repr(t) for t in titles[: SheetReport.LISTED])
        raise SluiceDataError(
            "MISSING_SHEET",
            f"the contract's sheet {hints.sheet!r} is not in the workbook (its sheets: {listed})",
            sheet=hints.sheet,
        )
    skipped: dict[str, str] = {}
    peeked: list[tuple[Any, list[str], bool]] = []  # (sheet, header, has rows)
    peek_cost: dict[str, int] = {}  # cells counted while peeking, counted again when read
    for sheet in book.worksheets:
        if hints.sheet is not None and sheet.title != hints.sheet:
            skipped[sheet.title] = f"not the contract's sheet ({hints.sheet!r})"
            continue
        before = cells.count
        rows = cells.rows(sheet)
        header = next(rows, None)
        if header is None:
            skipped[sheet.title] = "empty"
            continue
        peeked.append((sheet, _sheet_header(sheet.title, header), next(rows, None) is not None))
        peek_cost[sheet.title] = cells.count - before
    chosen = peeked if hints.sheet is not None else []
    if hints.sheet is None and hints.columns:
        for item in peeked:
            why = _contract_fit(item[1], hints)
            if why is None:
                chosen.append(item)
            else:
                skipped[item[0].title] = why
    if hints.sheet is None and not chosen:
        with_rows = [item for item in peeked if item[2]]
        lead = next((i for i in with_rows if len(i[1]) >= 2), with_rows[0] if with_rows else None)
        if lead is not None:
            for item in with_rows:
                if set(item[1]) == set(lead[1]):
                    chosen.append(item)
                    skipped.pop(item[0].title, None)
                else:
                    skipped.setdefault(
                        item[0].title, f"header differs from sheet {lead[0].title!r}'s"
                    )
    taken = [item for item in chosen if item[2]]
    for item in chosen:
        if not item[2]:
            skipped[item[0].title] = "header only, no rows"
    if not taken and peeked:
        # Only headers: the first stands for the workbook, and Validate says HEADER_ONLY.
        taken = [next((i for i in chosen), peeked[0])]
        skipped.pop(taken[0][0].title, None)
    if not taken and hints.sheet is not None:
        raise SluiceDataError(
            "EMPTY_FILE",
            f"the contract's sheet {hints.sheet!r} is empty (the other sheets are not read)",
            sheet=hints.sheet,
        )
    if not taken:
        raise SluiceDataError("EMPTY_FILE", "every worksheet is empty")
    sheets = []
    for sheet, names, _ in taken:
        cells.count -= peek_cost[sheet.title]
        rows = cells.rows(sheet)
        next(rows, None)  # the header
        sheets.append(_read_sheet(sheet.title, names, rows, None))
    charts = [(c.title, "a chart sheet, not a worksheet") for c in getattr(book, "chartsheets", [])]
    report = SheetReport(
        tuple(s.name for s in sheets),
        tuple((t, skipped[t]) for t in titles if t in skipped) + tuple(charts),
    )
    return sheets, report


def _sheets_table(sheets: list[_Sheet]) -> pa.Table:
    """The sheets' rows one after another; a column a sheet lacks is null in its rows."""
    names: dict[str, None] = {}
    for sheet in sheets:
        names.update(dict.fromkeys(sheet.names))
    columns = {
        name: [v for s in sheets for v in s.columns.get(name, [None] * s.rows)] for name in names
    }
    return pa.table({n: pa.array(v, pa.string()) for n, v in columns.items()})


def read_xlsx_sheets(
    path: Path, limits: ReadLimits | None = None, hints: ReadHints | None = None
) -> tuple[pa.Table, SheetReport]:
    """The workbook's chosen sheets (`_choose_sheets`) as one table of text, read-only and
    without formulas; XML entities are refused."""
    limits = limits or ReadLimits()
    hints = hints or ReadHints()
    _check_archive(path, limits)
    import defusedxml  # noqa: F401  # openpyxl parses with defusedxml when it is importable
    import openpyxl

    handle = path.open("rb")  # a handle, not a name: openpyxl judges names by extension
    try:
        book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except MemoryError:
        handle.close()
        raise
    except Exception as exc:  # any library error here: a file it cannot read
        handle.close()
        raise _xlsx_error(exc, "the workbook") from exc
    try:
        sheets, report = _choose_sheets(book, _Cells(limits.xlsx_max_cells), hints)
    except (SluiceDataError, MemoryError):
        raise
    except Exception as exc:
        raise _xlsx_error(exc, "a worksheet") from exc
    finally:
        book.close()
        handle.close()
    return _sheets_table(sheets), report


def _xlsx_error(exc: Exception, what: str) -> SluiceDataError:
    """UNSAFE_ARCHIVE for forbidden XML, else UNREADABLE; the message names the error's kind
    and position, never the cell text a library message may quote."""
    forbidden = _xlsx_forbidden(exc)
    if forbidden is not None:
        return SluiceDataError(
            "UNSAFE_ARCHIVE", f"xlsx holds forbidden XML ({type(forbidden).__name__})"
        )
    position = getattr(exc, "position", None)
    where = f" at line {position[0]}, column {position[1]}" if position else ""
    return SluiceDataError(
        "UNREADABLE", f"{what} is not readable xlsx ({type(exc).__name__}{where})"
    )


def read_xlsx(path: Path, limits: ReadLimits | None = None) -> pa.Table:
    """`read_xlsx_sheets` without a contract's hints, as a table."""
    return read_xlsx_sheets(path, limits)[0]


def open_parquet(path: Path) -> Batches:
    try:
        source = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SluiceDataError(
            "UNREADABLE", f"not a readable Parquet file: {_first_line(exc)}"
        ) from exc

    schema = _without_views(source.schema_arrow)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for batch in source.iter_batches(batch_size=RECORD_BATCH_ROWS):
                yield batch if batch.schema == schema else batch.cast(schema)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SluiceDataError(
                "UNREADABLE", f"not a readable Parquet file: {_first_line(exc)}"
            ) from exc

    return Batches("parquet", schema, batches())


def _without_views(schema: pa.Schema) -> pa.Schema:
    """`schema` with string and binary views as plain strings and bytes: Arrow's kernels that
    quarantine rows (take, filter) have none for views, and the values are the same."""
    views = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}
    fields = [f.with_type(views.get(f.type, f.type)) for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def _whole(fmt: str, table: pa.Table, sheets: SheetReport | None = None) -> Batches:
    batches = iter(table.to_batches(max_chunksize=RECORD_BATCH_ROWS))
    return Batches(fmt, table.schema, batches, sheets)


def open_file(
    path: Path, name: str, limits: ReadLimits | None = None, hints: ReadHints | None = None
) -> Batches:
    """A RAW file as batches, or a `SluiceDataError` saying why it cannot be read."""
    hints = hints or ReadHints()
    if path.stat().st_size == 0:
        raise SluiceDataError("EMPTY_FILE", "file has no content")
    with path.open("rb") as fh:
        head = fh.read(8)
    fmt = detect_format(name, head)
    if fmt == "parquet":
        return open_parquet(path)
    if fmt == "xlsx":
        return _whole(fmt, *read_xlsx_sheets(path, limits, hints))
    if fmt == "csv":
        return open_csv(path, limits, hints.encoding)
    data = _all_bytes(path, limits)
    read = read_json if fmt == "json" else read_jsonl
    return _whole(fmt, read(data, hints.encoding))


def read_file(
    path: Path, name: str, limits: ReadLimits | None = None, hints: ReadHints | None = None
) -> tuple[str, pa.Table]:
    """(format, whole table) of a RAW file; the pipeline streams with `open_file` instead."""
    opened = open_file(path, name, limits, hints)
    return opened.format, pa.Table.from_batches(list(opened.batches), opened.schema)

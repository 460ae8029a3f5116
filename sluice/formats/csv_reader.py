"""CSV, read batch by batch with Arrow's streaming reader, every value as text."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from sluice.errors import SluiceDataError
from sluice.formats.batches import Batches
from sluice.formats.encoding import file_encoding
from sluice.formats.limits import ReadLimits
from sluice.formats.stream import open_stream, read_head
from sluice.reasons import ReasonCode

NULL_VALUES = ["", "NULL", "null", "None"]
# Arrow's streaming CSV reader reads up to 32 blocks ahead of its consumer, so the block size
# bounds its memory: 1 MiB blocks keep that under ~32 MiB whatever the file's size.
CSV_BLOCK_BYTES = 1024 * 1024
# A row longer than a block is read with larger blocks, up to this: a row (a field) longer
# than it is ROW_TOO_LARGE. Blocks this large take ~700 MB of Validate's memory.
CSV_MAX_BLOCK_BYTES = 64 * 1024 * 1024


def _csv_header(sample: str) -> tuple[str, list[str]]:
    """(delimiter, column names) from the first lines of a CSV file."""
    sample = sample.removeprefix("\ufeff")
    if not sample.strip():
        raise SluiceDataError(ReasonCode.EMPTY_FILE, "file has no content")
    try:
        dialect = csv.Sniffer().sniff(sample.split("\n", 20)[0] + "\n", delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    try:
        header = next(csv.reader(io.StringIO(sample), delimiter=delimiter))
    except csv.Error as exc:
        raise SluiceDataError(
            ReasonCode.MALFORMED_CSV, f"the header line does not read: {exc}"
        ) from exc
    names = [h.strip() for h in header]
    if not any(names):
        raise SluiceDataError(ReasonCode.NO_HEADER, "the first line holds no column names")
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise SluiceDataError(
            ReasonCode.DUPLICATE_COLUMNS, f"repeated column names: {', '.join(dupes)}"
        )
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
            open_stream(path) as stream,
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
        return SluiceDataError(
            ReasonCode.MALFORMED_CSV, f"not valid CSV after row {emitted}: {safe}"
        )
    expected, found = int(counts.group(1)), int(counts.group(2))
    located = _locate_bad_row(path, encoding, delimiter, expected)
    if located is None:
        return SluiceDataError(
            ReasonCode.MALFORMED_CSV,
            f"a row after row {emitted} has {found} fields, expected {expected}",
            expected_fields=expected,
            found_fields=found,
        )
    row, line, found = located
    return SluiceDataError(
        ReasonCode.MALFORMED_CSV,
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
                open_stream(path),
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
                    ReasonCode.ROW_TOO_LARGE,
                    f"a row after row {emitted} is longer than {CSV_MAX_BLOCK_BYTES} bytes "
                    "(a huge field, or a quote that is never closed)",
                    after_row=emitted,
                    limit=CSV_MAX_BLOCK_BYTES,
                ) from exc
            block *= 8
        except UnicodeDecodeError as exc:
            # Every byte was checked before the read began: this is a file changed under it.
            raise SluiceDataError(
                ReasonCode.UNREADABLE_ENCODING,
                f"not valid {encoding} after row {emitted} ({exc.reason})",
                encoding=encoding,
            ) from exc
        except (OSError, EOFError) as exc:
            raise SluiceDataError(
                ReasonCode.UNREADABLE, f"compressed stream is corrupt: {exc}"
            ) from exc


def open_csv(path: Path, limits: ReadLimits | None = None, encoding: str | None = None) -> Batches:
    """A CSV file as batches of text; `encoding` is the contract's, if it names one."""
    decided = file_encoding(path, limits, encoding)
    sample = read_head(path).decode(decided, errors="ignore")
    delimiter, names = _csv_header(sample)
    schema = pa.schema([(name, pa.string()) for name in names])
    return Batches("csv", schema, _csv_batches(path, decided, delimiter, names))

"""Read RAW files as streams of Arrow batches of text, the shape Validate stages for Trusted.

Every value is kept as text (or its native type for Parquet) so that Trusted, not the reader,
decides what a bad value is, and can say which column and value failed. CSV and Parquet are
read batch by batch, so memory does not grow with the file; JSON, JSON Lines and Excel are
read whole (bounded by the file size limit, and for Excel by the caps in `ReadLimits`).

- `detect`: a file's format, from its name or first bytes;
- `limits`: the formats a size limit is set per, `ReadLimits` and `ReadHints`;
- `stream`: a file's (inflated) bytes; `encoding`: the text encoding it is read in;
- `batches`: what a read gives (`Batches`, `SheetReport`);
- `csv_reader`, `json_reader`, `excel`, `parquet`: one reader a format;
- `read`: any file, its format detected (`open_file`, `read_file`).
"""

from sluice.formats.batches import RECORD_BATCH_ROWS, Batches, SheetReport
from sluice.formats.csv_reader import CSV_BLOCK_BYTES, CSV_MAX_BLOCK_BYTES, NULL_VALUES, open_csv
from sluice.formats.detect import detect_format, format_of_name
from sluice.formats.encoding import FALLBACK_ENCODING, decide_encoding
from sluice.formats.excel import read_xlsx, read_xlsx_sheets
from sluice.formats.json_reader import MAX_JSON_DEPTH, read_json, read_jsonl
from sluice.formats.limits import (
    FORMATS,
    GZIP_FORMATS,
    LIMIT_FORMATS,
    ReadHints,
    ReadLimits,
    limit_format,
    limit_format_of_file,
    limit_format_of_name,
)
from sluice.formats.parquet import open_parquet
from sluice.formats.read import open_file, read_file

__all__ = [
    "CSV_BLOCK_BYTES",
    "CSV_MAX_BLOCK_BYTES",
    "FALLBACK_ENCODING",
    "FORMATS",
    "GZIP_FORMATS",
    "LIMIT_FORMATS",
    "MAX_JSON_DEPTH",
    "NULL_VALUES",
    "RECORD_BATCH_ROWS",
    "Batches",
    "ReadHints",
    "ReadLimits",
    "SheetReport",
    "decide_encoding",
    "detect_format",
    "format_of_name",
    "limit_format",
    "limit_format_of_file",
    "limit_format_of_name",
    "open_csv",
    "open_file",
    "open_parquet",
    "read_file",
    "read_json",
    "read_jsonl",
    "read_xlsx",
    "read_xlsx_sheets",
]

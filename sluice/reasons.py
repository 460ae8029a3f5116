"""Reason codes: why a file, an event or a row is rejected (docs/quality.md lists them).

Each is a `StrEnum`: a member equals its string, so `reason.json`, the logs and the failure
letters read exactly as the codes do.
"""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    """Why a file is rejected as a whole (docs/quality.md, "Files rejected as a whole")."""

    EMPTY_FILE = "EMPTY_FILE"
    HEADER_ONLY = "HEADER_ONLY"
    NO_HEADER = "NO_HEADER"
    DUPLICATE_COLUMNS = "DUPLICATE_COLUMNS"
    MISSING_COLUMNS = "MISSING_COLUMNS"
    MISSING_SHEET = "MISSING_SHEET"
    MALFORMED_CSV = "MALFORMED_CSV"
    ROW_TOO_LARGE = "ROW_TOO_LARGE"
    MALFORMED_JSON = "MALFORMED_JSON"
    TOO_DEEP = "TOO_DEEP"
    UNREADABLE = "UNREADABLE"
    UNREADABLE_ENCODING = "UNREADABLE_ENCODING"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    UNSAFE_ARCHIVE = "UNSAFE_ARCHIVE"
    INVALID_CONTRACT = "INVALID_CONTRACT"
    SOURCE_GONE = "SOURCE_GONE"
    # Trusted's: the file was read, but judging its values failed in a way no row code covers.
    UNPROCESSABLE = "UNPROCESSABLE"


class EventReason(StrEnum):
    """Why the starter rejects an S3 event (docs/reliability.md): the message goes to the DLQ."""

    UNEXPECTED_BUCKET = "UNEXPECTED_BUCKET"
    NO_DATASET = "NO_DATASET"


class RowCode(StrEnum):
    """A row's reason or flag, written `<CODE>:<column>` (docs/quality.md, "Codes")."""

    TYPE_MISMATCH = "TYPE_MISMATCH"
    NON_FINITE = "NON_FINITE"
    NULL = "NULL"
    FILLED = "FILLED"
    # The rules' (sluice.contracts.model.RULES), by the rule that fails.
    NEGATIVE = "NEGATIVE"
    FUTURE = "FUTURE"
    BELOW_MIN = "BELOW_MIN"
    ABOVE_MAX = "ABOVE_MAX"
    NOT_ALLOWED = "NOT_ALLOWED"
    PATTERN_MISMATCH = "PATTERN_MISMATCH"
    TOO_LONG = "TOO_LONG"
    OUTLIER = "OUTLIER"

    def of(self, column: str) -> str:
        """The code of `column`: `NULL:amount`."""
        return f"{self.value}:{column}"

"""The one mapping from what reading or judging a file throws to a data error's reason code.

Validate and Trusted pass whatever their work raised through `as_data_error`: an exception that
bad input makes a reader, a cast or a contract raise becomes a `SluiceDataError` with a reason
code (docs/quality.md), so the stage quarantines the file with `reason.json` and Step Functions
records `SluiceDataError`, never a library's exception name. The mapping is narrow on purpose:
AWS errors, throttling, a full disk, `MemoryError` and the pipeline's own bugs (an assertion, a
`KeyError` or `TypeError` raised in Sluice's own code) are left as they are, so they are retried
or reported as the failures they are.
"""

from __future__ import annotations

import csv
import json
import sys
import traceback
import zipfile
import zlib
from xml.etree.ElementTree import ParseError
from xml.parsers.expat import ExpatError

import pyarrow as pa

from sluice.contracts import ContractError
from sluice.errors import SluiceDataError
from sluice.reasons import ReasonCode

# Libraries that read the user's bytes: a KeyError, TypeError or IndexError raised inside one
# of them (openpyxl looks up a workbook's parts by name) is the file's fault, not Sluice's.
_READER_MODULES = ("openpyxl", "et_xmlfile", "defusedxml", "zipfile", "xml", "csv", "json")
# What bad input makes Arrow raise (ArrowMemoryError, a MemoryError, and OSError are not here).
_ARROW = (
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    pa.ArrowCapacityError,
    pa.ArrowIndexError,
)
_DECODING = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    csv.Error,
    json.JSONDecodeError,
    ParseError,
    ExpatError,
)
# Details copied into reason.json are cut here: a library's message can quote the input.
_DETAIL_CHARS = 500


def _raised_in_reader(error: BaseException) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return False
    path = frames[-1].filename.replace("\\", "/")
    return any(f"/{name}/" in path or path.endswith(f"/{name}.py") for name in _READER_MODULES)


def _is_yaml_error(error: BaseException) -> bool:
    """A YAML document that does not parse (PyYAML is loaded only where YAML is read: where it
    is not, none of its errors can have been raised)."""
    yaml = sys.modules.get("yaml")
    return yaml is not None and isinstance(error, yaml.YAMLError)


def _is_transient(error: BaseException) -> bool:
    """An AWS client error (throttling, timeouts, 5xx): never the file's fault."""
    module = type(error).__module__
    return module.startswith(("botocore", "boto3", "urllib3", "s3transfer"))


def reason_of(error: BaseException, stage: str) -> ReasonCode | None:
    """The reason code bad input that raised `error` in `stage` ("validate" reads the file,
    "trusted" judges its values) is reported under, or None if `error` is not bad input."""
    if isinstance(error, MemoryError | OSError) or _is_transient(error):
        return None  # ArrowMemoryError, a full /tmp, the network: not the file's fault
    if isinstance(error, ContractError) or _is_yaml_error(error):
        return ReasonCode.INVALID_CONTRACT
    if isinstance(error, pa.ArrowInvalid) and "regular expression" in str(error):
        return ReasonCode.INVALID_CONTRACT  # a contract pattern RE2 cannot compile
    if isinstance(error, RecursionError):
        return ReasonCode.TOO_DEEP
    if isinstance(error, UnicodeError):
        return ReasonCode.UNREADABLE_ENCODING
    data = ReasonCode.UNREADABLE if stage == "validate" else ReasonCode.UNPROCESSABLE
    if isinstance(error, _ARROW):
        return data
    if stage == "validate":
        if isinstance(error, _DECODING):
            return data
        # What parsing the file's bytes raises; raised elsewhere, these are Sluice's bugs.
        if isinstance(error, ValueError | OverflowError | KeyError | TypeError | IndexError):
            return data if _raised_in_reader(error) else None
    return None


def as_data_error(error: BaseException, stage: str) -> SluiceDataError | None:
    """`error` as the data error it stands for (with its type and message in the details, for
    reason.json; the message Step Functions records names the type only), or None: not bad
    input, let it be. A `SluiceDataError` stands for itself."""
    if isinstance(error, SluiceDataError):
        return error
    reason = reason_of(error, stage)
    if reason is None:
        return None
    kind = type(error).__name__
    return SluiceDataError(
        reason,
        f"the file could not be {'read' if stage == 'validate' else 'judged'} ({kind})",
        error_type=f"{type(error).__module__}.{kind}",
        detail=str(error)[:_DETAIL_CHARS],
    )

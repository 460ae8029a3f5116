"""A RAW file's bytes, gzip or not, in chunks: a corrupt or over-inflating stream is a data
error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from sluice.errors import SluiceDataError
from sluice.formats.limits import ReadLimits
from sluice.reasons import ReasonCode

SNIFF_BYTES = 64 * 1024


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_stream(path: Path) -> pa.NativeFile:
    return pa.input_stream(str(path), compression="gzip" if _is_gzip(path) else None)


def read_chunks(
    path: Path, size: int = 8 * 1024 * 1024, limits: ReadLimits | None = None
) -> Iterator[bytes]:
    """The file's (decompressed) bytes in chunks; a corrupt gzip is a data error, and so is
    one that inflates past `limits.max_inflated_bytes` (stopped there, before it is held)."""
    cap = None if limits is None else limits.max_inflated_bytes
    inflated = 0
    try:
        with open_stream(path) as stream:
            while chunk := stream.read(size):
                inflated += len(chunk)
                if cap is not None and inflated > cap:
                    assert limits is not None
                    raise SluiceDataError(
                        ReasonCode.FILE_TOO_LARGE,
                        f"inflates past the {limits.limit_format} limit of {cap} bytes; raise "
                        f"max_file_bytes_by_format.{limits.limit_format} (with stage sizes "
                        "that serve it)",
                        format=limits.limit_format,
                        limit=cap,
                        raise_setting=f"max_file_bytes_by_format.{limits.limit_format}",
                    )
                yield chunk
    except (OSError, EOFError, pa.ArrowInvalid) as exc:
        raise SluiceDataError(
            ReasonCode.UNREADABLE, f"compressed stream is corrupt: {exc}"
        ) from exc


def read_head(path: Path) -> bytes:
    head = b""
    for chunk in read_chunks(path, SNIFF_BYTES):
        head += chunk
        break
    return head


def read_all(path: Path, limits: ReadLimits | None = None) -> bytes:
    data = b"".join(read_chunks(path, limits=limits))
    if not data.strip():
        raise SluiceDataError(ReasonCode.EMPTY_FILE, "file has no content")
    return data

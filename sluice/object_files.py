"""S3 objects as files: read a range at a time (`RangedReader`), written a part at a time
(`StreamingUpload`)."""

from __future__ import annotations

import io
from contextlib import suppress
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sluice.ports import ReadsRanges, UploadsParts


class RangedReader(io.RawIOBase):
    """An S3 object as a seekable, read-only file: each `read` is one ranged GET.

    A Parquet reader over it fetches the footer and then only the row groups it reads, so a
    stage holds one row group of a large object at a time, never the whole object, and needs
    no `/tmp` for it.
    """

    def __init__(self, store: ReadsRanges, bucket: str, key: str, size: int | None = None) -> None:
        super().__init__()
        self.store, self.bucket, self.key = store, bucket, key
        self.length = store.size(bucket, key) if size is None else size
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self.position = base + offset
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        end = self.length if size is None or size < 0 else min(self.length, self.position + size)
        if end <= self.position:
            return b""
        data = self.store.get_range(self.bucket, self.key, self.position, end - self.position)
        self.position += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


# S3's smallest part is 5 MiB (but the last); parts of 8 MiB, as boto3's transfers use.
PART_BYTES = 8 * 1024 * 1024


class StreamingUpload(io.RawIOBase):
    """A write-only file that becomes one S3 object on `complete`, held a part at a time.

    Bytes are uploaded as multipart parts as soon as a part's worth is written, so a stage
    writing a large object holds at most one part of it and needs no `/tmp` for it. An object
    smaller than a part is one PutObject. The object appears whole when `complete` returns, or
    not at all: closing it uncompleted (an exception in a `with` block) aborts the upload.
    """

    def __init__(
        self,
        store: UploadsParts,
        bucket: str,
        key: str,
        content_type: str,
        part_bytes: int = PART_BYTES,
    ) -> None:
        super().__init__()
        self.store, self.bucket, self.key = store, bucket, key
        self.content_type = content_type
        self.part_bytes = part_bytes
        self.byte_count = 0
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._etags: list[str] = []

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.byte_count

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._buffer += view
        self.byte_count += len(view)
        while len(self._buffer) >= self.part_bytes:
            self._send(bytes(self._buffer[: self.part_bytes]))
            del self._buffer[: self.part_bytes]
        return len(view)

    def _send(self, part: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self.store.start_upload(self.bucket, self.key, self.content_type)
        number = len(self._etags) + 1
        self._etags.append(
            self.store.upload_part(self.bucket, self.key, self._upload_id, number, part)
        )

    def complete(self) -> None:
        """Put what was written as the object."""
        if self._upload_id is None:
            self.store.put_bytes(self.bucket, self.key, bytes(self._buffer), self.content_type)
        else:
            if self._buffer:
                self._send(bytes(self._buffer))
            self.store.complete_upload(self.bucket, self.key, self._upload_id, self._etags)
            self._upload_id = None
        self._buffer = bytearray()
        super().close()

    def close(self) -> None:
        """Without `complete`: leave no object and no parts behind."""
        if self.closed:
            return
        upload_id, self._upload_id = self._upload_id, None
        self._buffer = bytearray()
        super().close()
        if upload_id is not None:
            # A refused or failed abort must not hide the error that stopped the upload; the
            # buckets' lifecycle rule removes parts an upload left after 7 days.
            with suppress(ClientError, BotoCoreError):
                self.store.abort_upload(self.bucket, self.key, upload_id)

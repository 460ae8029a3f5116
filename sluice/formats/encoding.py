"""The text encoding a file is read in, decided from every byte of it."""

from __future__ import annotations

import codecs
import itertools
import re
from collections.abc import Iterable
from pathlib import Path

from sluice.errors import SluiceDataError
from sluice.formats.limits import ReadLimits
from sluice.formats.stream import SNIFF_BYTES, read_chunks
from sluice.reasons import ReasonCode

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
                ReasonCode.UNREADABLE_ENCODING,
                f"file starts with a {name} byte-order mark; to read it, set 'encoding: "
                f"{name.split()[0].lower()}' in the dataset's contract",
                encoding=name,
                offset=0,
            )
    nul = head.find(b"\x00", 0, SNIFF_BYTES)
    if nul >= 0:
        raise SluiceDataError(
            ReasonCode.UNREADABLE_ENCODING,
            f"file is binary or UTF-16, not text: a NUL byte at offset {nul}; a UTF-16 file "
            "needs 'encoding: utf-16' in its contract",
            offset=nul,
        )


def _invalid(codec: str, offset: int, why: str) -> SluiceDataError:
    return SluiceDataError(
        ReasonCode.UNREADABLE_ENCODING,
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


def file_encoding(path: Path, limits: ReadLimits | None, declared: str | None) -> str:
    """The decided encoding of a file on disk. It reads the whole (inflated) stream, so a gzip
    over its limit stops here, before the reader starts."""
    return decide_encoding(read_chunks(path, limits=limits), declared)


def decode_text(data: bytes, declared: str | None) -> str:
    """An in-memory file's text, in its decided encoding (a UTF-8 BOM dropped)."""
    codec = decide_encoding([data], declared)
    text = data.decode(codec)
    return text.removeprefix("\ufeff")

"""Hostile Excel files for the reader and reliability tests, made by the tests themselves."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl

ENTITY_SHEET = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol2;</t></is></c></row>'
    "</sheetData></worksheet>"
)


def xlsx(path: Path, rows: list[list[Any]]) -> Path:
    """A workbook whose first sheet holds `rows`."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def workbook(path: Path, sheets: list[tuple[str, list[list[Any]]]]) -> Path:
    """A workbook with the named sheets, in order, each holding its rows."""
    book = openpyxl.Workbook()
    assert book.active is not None
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def utf8_with_one_bad_byte(rows: int, bad_at_row: int) -> tuple[bytes, int]:
    """A UTF-8 CSV (`id,name`, non-ASCII names) whose row `bad_at_row` holds one byte that is
    not UTF-8 (0xff); the file and that byte's offset."""
    head = "id,name\n" + "".join(f"{i},Jos\u00e9 {i}\n" for i in range(1, bad_at_row))
    bad = f"{bad_at_row},x".encode() + b"\xff" + b"\n"
    tail = "".join(f"{i},M\u00fcller {i}\n" for i in range(bad_at_row + 1, rows + 1))
    before = head.encode()
    return before + bad + tail.encode(), len(before) + len(f"{bad_at_row},x")


def padded(path: Path, mebibytes: int) -> Path:
    """Add a member of `mebibytes` MiB of zeros: a zip bomb in miniature (deflates ~1000:1)."""
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("xl/media/padding.bin", "w") as member,
    ):
        for _ in range(mebibytes):
            member.write(bytes(1024 * 1024))
    return path


def with_entities(path: Path, target: Path) -> Path:
    """A copy of the workbook whose sheet declares XML entities (a billion-laughs shape)."""
    return _with_sheet(path, target, lambda _: ENTITY_SHEET.encode())


def with_broken_sheet(path: Path, target: Path) -> Path:
    """A copy of the workbook whose first sheet's XML is cut in half."""
    return _with_sheet(path, target, lambda data: data[: len(data) // 2])


def _with_sheet(path: Path, target: Path, rewrite: Callable[[bytes], bytes]) -> Path:
    """A copy of the workbook at `target`, its first sheet's XML passed through `rewrite`."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as rebuilt:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = rewrite(data)
            rebuilt.writestr(item, data)
    return target

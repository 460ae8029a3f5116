"""Excel workbooks (xlsx): the zip checked before it is inflated, the sheets a contract's rules
pick read whole as text. openpyxl is imported when a workbook is read, not before."""

from __future__ import annotations

import itertools
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from sluice.errors import SluiceDataError
from sluice.formats.batches import SheetReport, value_text
from sluice.formats.limits import ReadHints, ReadLimits
from sluice.reasons import ReasonCode


def _check_archive(path: Path, limits: ReadLimits) -> None:
    """Refuse zip bombs before any member is inflated: total size and ratio are capped."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise SluiceDataError(
            ReasonCode.UNREADABLE, f"not a readable xlsx (zip) file: {exc}"
        ) from exc
    total = sum(m.file_size for m in members)
    if total > limits.xlsx_max_uncompressed_bytes:
        raise SluiceDataError(
            ReasonCode.UNSAFE_ARCHIVE,
            f"xlsx inflates to {total} bytes, over the cap of {limits.xlsx_max_uncompressed_bytes}",
            uncompressed=total,
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > 1024 * 1024 and ratio > limits.xlsx_max_ratio:
            raise SluiceDataError(
                ReasonCode.UNSAFE_ARCHIVE,
                f"xlsx member {member.filename!r} is compressed {ratio:.0f}:1, "
                f"over the cap of {limits.xlsx_max_ratio}:1",
                member=member.filename,
            )


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
                raise SluiceDataError(
                    ReasonCode.UNSAFE_ARCHIVE, f"xlsx holds more than {self.cap} cells"
                )
            if any(v is not None for v in row):
                yield row


def _sheet_header(title: str, row: tuple[Any, ...]) -> list[str]:
    names = [str(h).strip() if h is not None else f"column_{i + 1}" for i, h in enumerate(row)]
    while names and names[-1] == f"column_{len(names)}":
        names.pop()  # blank cells right of the header are not columns
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise SluiceDataError(
            ReasonCode.DUPLICATE_COLUMNS,
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
            columns[name].append(value_text(row[i]) if i < len(row) else None)
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
            ReasonCode.MISSING_SHEET,
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
            ReasonCode.EMPTY_FILE,
            f"the contract's sheet {hints.sheet!r} is empty (the other sheets are not read)",
            sheet=hints.sheet,
        )
    if not taken:
        raise SluiceDataError(ReasonCode.EMPTY_FILE, "every worksheet is empty")
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
            ReasonCode.UNSAFE_ARCHIVE, f"xlsx holds forbidden XML ({type(forbidden).__name__})"
        )
    position = getattr(exc, "position", None)
    where = f" at line {position[0]}, column {position[1]}" if position else ""
    return SluiceDataError(
        ReasonCode.UNREADABLE, f"{what} is not readable xlsx ({type(exc).__name__}{where})"
    )


def read_xlsx(path: Path, limits: ReadLimits | None = None) -> pa.Table:
    """`read_xlsx_sheets` without a contract's hints, as a table."""
    return read_xlsx_sheets(path, limits)[0]

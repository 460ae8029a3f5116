"""Readers for every RAW format, including hostile inputs."""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sluice.errors import SluiceDataError
from sluice.formats import (
    CSV_BLOCK_BYTES,
    CSV_MAX_BLOCK_BYTES,
    MAX_JSON_DEPTH,
    ReadHints,
    ReadLimits,
    open_file,
    read_file,
    read_xlsx_sheets,
)
from tests.hostile import (
    padded,
    utf8_with_one_bad_byte,
    with_broken_sheet,
    with_entities,
    workbook,
    xlsx,
)


def reason_of(path: Path, limits: ReadLimits | None = None) -> str:
    with pytest.raises(SluiceDataError) as err:
        read_file(path, path.name, limits)
    return err.value.reason


def error_of(path: Path, hints: ReadHints | None = None) -> SluiceDataError:
    with pytest.raises(SluiceDataError) as err:
        read_file(path, path.name, hints=hints)
    return err.value


def test_xlsx_first_sheet_is_read_as_text(tmp_path: Path) -> None:
    # Given a workbook whose first sheet holds numbers, text, dates, booleans and a blank row
    path = xlsx(
        tmp_path / "t.xlsx",
        [
            ["id", "name", "amount", "date", "ok"],
            [1, "A", 150.5, datetime(2024, 1, 15), True],
            [2, None, 75, datetime(2024, 1, 16, 9, 30), False],
            [None, None, None, None, None],
        ],
    )
    # When it is read
    fmt, table = read_file(path, "t.xlsx")
    # Then every cell is its text, and the blank row is gone
    assert fmt == "xlsx"
    assert table.to_pylist() == [
        {"id": "1", "name": "A", "amount": "150.5", "date": "2024-01-15", "ok": "true"},
        {"id": "2", "name": None, "amount": "75", "date": "2024-01-16T09:30:00", "ok": "false"},
    ]


def test_xlsx_that_inflates_past_the_cap_is_unsafe(tmp_path: Path) -> None:
    # Given a small workbook padded with 20 MiB of zeros
    path = padded(xlsx(tmp_path / "b.xlsx", [["id"], [1]]), 20)
    # When it is read, Then it is UNSAFE_ARCHIVE
    # the sizes in the zip directory are enough: nothing is inflated to find out
    assert reason_of(path, ReadLimits(xlsx_max_uncompressed_bytes=8 * 1024 * 1024)) == (
        "UNSAFE_ARCHIVE"
    )
    # and with a generous size cap, the compression ratio (20 MiB of zeros) still trips
    assert reason_of(path, ReadLimits(xlsx_max_ratio=100)) == "UNSAFE_ARCHIVE"


def test_xlsx_with_xml_entities_is_unsafe(tmp_path: Path) -> None:
    # Given a workbook rebuilt with XML entities in it
    path = xlsx(tmp_path / "e.xlsx", [["id"], [1]])
    rebuilt = with_entities(path, tmp_path / "bomb.xlsx")
    # When it is read, Then it is UNSAFE_ARCHIVE
    assert reason_of(rebuilt) == "UNSAFE_ARCHIVE"


def test_xlsx_cell_cap(tmp_path: Path) -> None:
    # Given a sheet of 22 cells: a header and 10 rows of two
    # When it is read under caps of 21 and 22 cells
    path = xlsx(tmp_path / "c.xlsx", [["a", "b"], *[[i, i] for i in range(10)]])
    # Then every cell counts against the cap, the header's too
    assert reason_of(path, ReadLimits(xlsx_max_cells=21)) == "UNSAFE_ARCHIVE"
    assert read_file(path, "c.xlsx", ReadLimits(xlsx_max_cells=22))[1].num_rows == 10


def test_not_a_zip_named_xlsx_is_unreadable(tmp_path: Path) -> None:
    # Given a file named .xlsx that starts like a zip but is not one
    path = tmp_path / "x.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    # When it is read, Then it is UNREADABLE
    assert reason_of(path) == "UNREADABLE"


def test_gzip_csv_streams_and_truncated_gzip_is_unreadable(tmp_path: Path) -> None:
    # Given a gzipped CSV of 5,000 rows
    text = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(5000))
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    # When it is read, Then it streams as CSV, every row there
    fmt, table = read_file(path, path.name)
    assert (fmt, table.num_rows, table["name"][4999].as_py()) == ("csv", 5000, "n4999")
    # And the same file cut in half is UNREADABLE
    broken = tmp_path / "b.csv.gz"
    broken.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    assert reason_of(broken) == "UNREADABLE"


def test_latin1_found_after_the_first_block_switches_the_whole_file(tmp_path: Path) -> None:
    # Given a file whose first 100 KB are plain ASCII; the one Latin-1 byte comes late
    lines = ["id,name"] + [f"{i},plain" for i in range(20000)] + ["20000,Caf\xe9"]
    path = tmp_path / "l.csv"
    # When it is read
    path.write_bytes("\n".join(lines).encode("latin-1"))
    # Then the whole file was read as Latin-1, every row there
    _, table = read_file(path, "l.csv")
    assert table["name"][-1].as_py() == "Caf\u00e9"
    assert table.num_rows == 20001


def test_csv_streams_in_batches_bounded_by_the_block_size(tmp_path: Path) -> None:
    # Given a CSV of 200,000 rows
    path = tmp_path / "big.csv"
    with path.open("w") as fh:
        fh.write("id,text\n")
        for i in range(200_000):
            fh.write(f"{i},some text for row {i}\n")
    # When it is opened
    opened = open_file(path, path.name)
    # Then its rows come in more than one batch, none of them lost
    sizes = [b.num_rows for b in opened.batches]
    assert sum(sizes) == 200_000
    assert len(sizes) > 1  # not one table for the whole file


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "EMPTY_FILE"),
        (b"\n\n  \n", "EMPTY_FILE"),
        (b"id,id\n1,2\n", "DUPLICATE_COLUMNS"),
        (b"id,name\n1,a\n2,b,c\n", "MALFORMED_CSV"),
        (b"\xff\xfei\x00d\x00\n\x001\x00", "UNREADABLE_ENCODING"),
    ],
)
def test_bad_csv_inputs_are_typed_data_errors(tmp_path: Path, content: bytes, reason: str) -> None:
    # Given a CSV with a bad part: empty, blank, duplicate columns, a row too long, UTF-16 bytes
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    # When it is read, Then it is the typed data error for that part
    assert reason_of(path) == reason


def test_parquet_keeps_native_types_and_corrupt_parquet_is_unreadable(tmp_path: Path) -> None:
    # Given a Parquet file with an int and a nullable float column
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": [1, 2], "amount": [1.5, None]}), path)
    # When it is read
    fmt, table = read_file(path, path.name)
    # Then the values keep their native types
    assert (fmt, table.to_pylist()) == (
        "parquet",
        [{"id": 1, "amount": 1.5}, {"id": 2, "amount": None}],
    )
    # And a corrupt Parquet file is UNREADABLE
    broken = tmp_path / "b.parquet"
    broken.write_bytes(b"PAR1" + bytes(100))
    assert reason_of(broken) == "UNREADABLE"


def test_json_array_of_non_objects_is_malformed(tmp_path: Path) -> None:
    # Given a JSON array of numbers, not objects
    path = tmp_path / "a.json"
    path.write_text("[1, 2]")
    # When it is read, Then it is MALFORMED_JSON
    assert reason_of(path) == "MALFORMED_JSON"
    # And a JSON-lines file whose second line is broken is MALFORMED_JSON at line 2
    lines = tmp_path / "a.jsonl"
    lines.write_text('{"id": 1}\n{"id": \n')
    with pytest.raises(SluiceDataError) as err:
        read_file(lines, lines.name)
    assert (err.value.reason, err.value.details["line"]) == ("MALFORMED_JSON", 2)


# --------------------------------------------------------------------------- encoding


@pytest.mark.parametrize("name", ["u.csv", "u.csv.gz", "u.json", "u.jsonl"])
@pytest.mark.parametrize("bad_at_row", [3, 60_000])  # in the first chunk, and past 1 MiB
def test_utf8_with_one_bad_byte_is_refused_at_that_offset(
    tmp_path: Path, name: str, bad_at_row: int
) -> None:
    # Given a UTF-8 file (non-ASCII before and after) with one byte that is not UTF-8
    body, offset = utf8_with_one_bad_byte(60_010, bad_at_row)
    if "json" in name:  # the same rows as JSON objects
        rows = [line.split(b",", 1) for line in body.split(b"\n")[1:-1]]
        objects = [b'{"id": "%s", "name": "%s"}' % (i, n) for i, n in rows]
        joined = b",\n".join(objects) if name.endswith(".json") else b"\n".join(objects)
        body = b"[" + joined + b"]" if name.endswith(".json") else joined + b"\n"
        offset = body.index(b"\xff")  # the one byte the test made bad, moved by the wrapping
    path = tmp_path / name
    path.write_bytes(gzip.compress(body) if name.endswith(".gz") else body)
    # When it is read, Then it fails at that byte, naming the encoding: never re-read as Latin-1
    error = error_of(path)
    assert (error.reason, error.details) == (
        "UNREADABLE_ENCODING",
        {"encoding": "utf-8", "offset": offset},
    )
    assert f"offset {offset} is not valid utf-8" in error.message


def test_a_file_with_no_utf8_character_is_latin1_however_late_its_first_byte(
    tmp_path: Path,
) -> None:
    # Given ASCII for 2 MB and then Latin-1 bytes, none of which spell a UTF-8 character
    lines = ["id,name"] + [f"{i},plain" for i in range(200_000)] + ["x,Caf\xe9 cr\xe8me"]
    path = tmp_path / "l.csv"
    path.write_bytes("\n".join(lines).encode("latin-1"))
    # When it is read
    # Then the file is read as Latin-1
    _, table = read_file(path, path.name)
    assert (table.num_rows, table["name"][-1].as_py()) == (200_001, "Caf\u00e9 cr\u00e8me")


def test_utf8_bom_decides_utf8_and_a_bad_byte_after_it_is_refused(tmp_path: Path) -> None:
    # Given a CSV with a UTF-8 BOM and then a Latin-1 byte, no UTF-8 character
    path = tmp_path / "b.csv"
    path.write_bytes(b"\xef\xbb\xbfid,name\n1,Caf\xe9\n")  # no UTF-8 character, but a BOM
    # When it is read, Then the BOM decides UTF-8 and the bad byte after it is refused at its offset
    assert (error_of(path).reason, error_of(path).details["offset"]) == (
        "UNREADABLE_ENCODING",
        16,
    )


def test_the_contracts_encoding_is_used_and_checked(tmp_path: Path) -> None:
    # Given a cp1252 file with curly quotes, a UTF-16 file, and a cp1252 file with 0x81
    quotes = tmp_path / "q.csv"
    quotes.write_bytes("id,name\n1,\u201cq\u201d\n".encode("cp1252"))
    wide = tmp_path / "w.csv"
    wide.write_bytes("id,name\n1,Caf\u00e9\n".encode("utf-16"))
    undefined = tmp_path / "u.csv"
    undefined.write_bytes(b"id,name\n1,\x81\n")
    # Then each reads in the contract's encoding, or fails at the byte that is not in it
    cp1252, utf16 = ReadHints(encoding="cp1252"), ReadHints(encoding="utf-16")
    # When each is read, with and without the contract's encoding
    assert read_file(quotes, quotes.name, hints=cp1252)[1].to_pylist() == [
        {"id": "1", "name": "\u201cq\u201d"}
    ]
    assert read_file(wide, wide.name, hints=utf16)[1].to_pylist() == [
        {"id": "1", "name": "Caf\u00e9"}
    ]
    assert error_of(wide).reason == "UNREADABLE_ENCODING"  # without the contract's word
    error = error_of(undefined, cp1252)
    assert (error.reason, error.details) == (
        "UNREADABLE_ENCODING",
        {"encoding": "cp1252", "offset": 10},
    )


@pytest.mark.parametrize("name", ["c.csv", "c.csv.gz", "c.jsonl"])
@pytest.mark.parametrize(
    "shaped",
    [
        b"\xed\xa0\xbd\xed\xb8\x80",  # U+1F600 as CESU-8 (a surrogate pair, each in UTF-8 form)
        b"\xe0\x80\xaf",  # '/' as an overlong three-byte sequence
        b"\xf4\x90\x80\x80",  # past U+10FFFF
    ],
)
def test_utf8_shaped_bytes_utf8_forbids_are_refused_not_read_as_latin1(
    tmp_path: Path, name: str, shaped: bytes
) -> None:
    # Given an ASCII file (a megabyte of it) whose one non-ASCII run has UTF-8's shape but is
    # a sequence UTF-8 forbids: nothing else in it spells a UTF-8 character
    rows = [b"%d,plain" % i for i in range(100_000)] + [b"x,a" + shaped + b"b"]
    if name.endswith(".jsonl"):
        rows = [b'{"id": "%s", "name": "%s"}' % tuple(r.split(b",")) for r in rows]
        body = b"\n".join(rows) + b"\n"
    else:
        body = b"id,name\n" + b"\n".join(rows) + b"\n"
    path = tmp_path / name
    path.write_bytes(gzip.compress(body) if name.endswith(".gz") else body)
    # When it is read, Then it is UNREADABLE_ENCODING at the run's first byte: a Latin-1
    # reading would change those bytes into other characters without a word
    error = error_of(path)
    assert (error.reason, error.details) == (
        "UNREADABLE_ENCODING",
        {"encoding": "utf-8", "offset": body.index(shaped)},
    )
    assert "CESU-8" in error.message


def test_a_declared_utf16_without_a_byte_order_mark_is_refused_at_offset_zero(
    tmp_path: Path,
) -> None:
    # Given a contract saying utf-16 (which needs a BOM) and a file without one
    path = tmp_path / "n.csv"
    path.write_bytes("id,name\n1,Caf\u00e9\n".encode("utf-8"))
    # When it is read, Then it fails naming the encoding and the offset, not as a bare error
    error = error_of(path, ReadHints(encoding="utf-16"))
    assert (error.reason, error.details) == (
        "UNREADABLE_ENCODING",
        {"encoding": "utf-16", "offset": 0},
    )


def test_a_json_key_with_an_unpaired_surrogate_is_malformed_json(tmp_path: Path) -> None:
    # Given a JSON record whose key (not its value) is an unpaired surrogate escape
    path = tmp_path / "k.json"
    path.write_bytes(b'[{"id": 1}, {"id": 2, "\\ud800": 1}]')
    # When it is read, Then it is MALFORMED_JSON naming the record, as such a value is
    error = error_of(path)
    assert error.reason == "MALFORMED_JSON"
    assert error.message.startswith("record 2: a key holds an unpaired UTF-16 surrogate")


# --------------------------------------------------------------------------- xlsx sheets


def test_xlsx_cover_page_is_skipped_and_every_sheet_of_the_header_is_read(
    tmp_path: Path,
) -> None:
    # Given a cover page, two data sheets (columns in another order), an empty sheet, another
    path = workbook(
        tmp_path / "w.xlsx",
        [
            ("Cover", [["Quarterly report"], [None], ["Prepared by finance"]]),
            ("Jan", [["id", "amount"], [1, 2.5], [2, 3]]),
            ("Notes", []),
            ("Feb", [[None], ["amount", "id"], [4, 3]]),
            ("Other", [["x", "y"], [1, 2]]),
        ],
    )
    # When it is read without a contract
    table, report = read_xlsx_sheets(path)
    # Then Jan and Feb are read, in order, and the others are reported with why
    assert table.to_pylist() == [
        {"id": "1", "amount": "2.5"},
        {"id": "2", "amount": "3"},
        {"id": "3", "amount": "4"},
    ]
    assert report.summary().to_dict() == {
        "read": ["Jan", "Feb"],
        "read_count": 2,
        "skipped": [
            {"sheet": "Cover", "why": "header differs from sheet 'Jan''s"},
            {"sheet": "Notes", "why": "empty"},
            {"sheet": "Other", "why": "header differs from sheet 'Jan''s"},
        ],
        "skipped_count": 3,
    }


def test_xlsx_sheets_are_chosen_by_the_contract(tmp_path: Path) -> None:
    # Given a workbook with a cover page, a sheet with an extra column, another sheet and a lookup
    path = workbook(
        tmp_path / "w.xlsx",
        [
            ("Cover", [["Title only"]]),
            ("Data", [["id", "amount", "extra"], [1, 2, "e"]]),
            ("More", [["id", "amount"], [2, 5]]),
            ("Lookup", [["code", "label"], ["a", "b"]]),
        ],
    )
    # When it is read with a contract's columns
    contract = ReadHints(columns=("id", "amount"), required=("id",))
    table, report = read_xlsx_sheets(path, hints=contract)
    # Then the sheets holding its required columns are read, and the others reported with why
    assert table.to_pylist() == [
        {"id": "1", "amount": "2", "extra": "e"},
        {"id": "2", "amount": "5", "extra": None},
    ]
    assert [s["why"] for s in report.summary().to_dict()["skipped"]] == [
        "header lacks the contract's required columns: id",
        "header lacks the contract's required columns: id",
    ]
    # When the contract names a sheet, Then only that one is read
    named = ReadHints(sheet="More", columns=("id", "amount"))
    assert read_xlsx_sheets(path, hints=named)[0].to_pylist() == [{"id": "2", "amount": "5"}]
    # And a sheet the workbook lacks is MISSING_SHEET
    with pytest.raises(SluiceDataError) as err:
        read_xlsx_sheets(path, hints=ReadHints(sheet="Missing"))
    assert (err.value.reason, err.value.details) == ("MISSING_SHEET", {"sheet": "Missing"})


def test_xlsx_contract_sheet_that_is_empty_is_named_in_the_error(tmp_path: Path) -> None:
    # Given a workbook with rows on 'Data' and an empty 'Later', the contract's sheet
    path = workbook(tmp_path / "w.xlsx", [("Data", [["id"], [1]]), ("Later", [])])
    # When it is read, Then EMPTY_FILE names that sheet: the workbook is not all empty
    with pytest.raises(SluiceDataError) as err:
        read_xlsx_sheets(path, hints=ReadHints(sheet="Later", columns=("id",)))
    assert (err.value.reason, err.value.details) == ("EMPTY_FILE", {"sheet": "Later"})
    assert err.value.message == (
        "the contract's sheet 'Later' is empty (the other sheets are not read)"
    )


def test_xlsx_with_only_a_cover_page_is_header_only(tmp_path: Path) -> None:
    # Given a workbook with only a cover page and an empty sheet
    path = workbook(tmp_path / "w.xlsx", [("Cover", [["Title only"]]), ("Empty", [])])
    # When it is read
    table, report = read_xlsx_sheets(path)
    # Then the cover page is read as a header with no rows
    assert (table.num_rows, table.column_names, report.read) == (0, ["Title only"], ("Cover",))


def test_xlsx_with_a_broken_sheet_is_unreadable_and_says_where(tmp_path: Path) -> None:
    # Given a workbook one of whose sheets is not readable XML
    path = with_broken_sheet(xlsx(tmp_path / "a.xlsx", [["id"], ["SECRET"]]), tmp_path / "b.xlsx")
    # When it is read
    error = error_of(path)
    # Then it is UNREADABLE, saying where in the sheet
    assert error.reason == "UNREADABLE"
    assert error.message.startswith("a worksheet is not readable xlsx (ParseError at line 1, ")


# --------------------------------------------------------------------------- huge fields


@pytest.mark.parametrize("field_bytes", [5_000_000, 20_000_000])
def test_csv_with_one_huge_field_is_read_whole(tmp_path: Path, field_bytes: int) -> None:
    # Given rows before and after one quoted field larger than a block (and than 8 blocks)
    assert field_bytes > CSV_BLOCK_BYTES
    rows = [f"{i},row {i}\n" for i in range(100_000)]
    big = "x" * (field_bytes - 10) + "\nsecond line"
    path = tmp_path / "h.csv"
    path.write_text(
        "id,text\n" + "".join(rows[:60_000]) + f'huge,"{big}"\n' + "".join(rows[60_000:])
    )
    # When it is read, Then every row is there once, in order, the field whole
    table = read_file(path, path.name)[1]
    assert table.num_rows == 100_001
    assert table["id"].to_pylist() == [str(i) for i in range(60_000)] + ["huge"] + [
        str(i) for i in range(60_000, 100_000)
    ]
    assert table["text"][60_000].as_py() == big


def test_csv_row_longer_than_the_largest_block_is_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a largest block of 8 blocks
    monkeypatch.setattr("sluice.formats.csv_reader.CSV_MAX_BLOCK_BYTES", 8 * CSV_BLOCK_BYTES)
    # And a row spanning more than two blocks: Arrow reads a row spanning one block boundary;
    # one spanning two (> 2 blocks) it cannot
    path = tmp_path / "h.csv"
    path.write_text('id,text\n1,a\n2,"' + "x" * (20 * CSV_BLOCK_BYTES) + '"\n' + "3,c\n" * 9)
    # When it is read
    error = error_of(path)
    # Then it is ROW_TOO_LARGE naming the limit, which is 64 MiB by default
    assert (error.reason, error.details["limit"]) == ("ROW_TOO_LARGE", 8 * CSV_BLOCK_BYTES)
    assert CSV_MAX_BLOCK_BYTES == 64 * 1024 * 1024


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize(
    ("name", "body", "where"),
    [
        ("d.json", b"[" * 50_000 + b"]" * 50_000, {}),
        (
            "d2.json",
            b'[{"a": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}]",
            {"record": 1},
        ),
        ("d.jsonl", b'{"a": 1}\n{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}\n", {"line": 2}),
    ],
)
def test_deep_json_is_too_deep(
    tmp_path: Path, name: str, body: bytes, where: dict[str, int]
) -> None:
    # Given JSON nested past the depth limit, as a document, in a record, and on a line
    path = tmp_path / name
    path.write_bytes(body)
    # When it is read
    error = error_of(path)
    # Then it is TOO_DEEP, saying where
    assert (error.reason, error.details) == ("TOO_DEEP", {"max_depth": MAX_JSON_DEPTH, **where})


def test_json_at_the_depth_limit_is_read(tmp_path: Path) -> None:
    # Given a JSON record whose value is nested just under the depth limit
    path = tmp_path / "ok.json"
    nested = b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1)
    path.write_bytes(b'[{"a": ' + nested + b"}]")
    # When it is read, Then the value is its JSON text
    assert read_file(path, path.name)[1].to_pylist() == [
        {"a": nested.decode().replace("][", "], [")}
    ]


def test_json_oddities_are_decided(tmp_path: Path) -> None:
    # Given numbers a double cannot hold, NaN/Infinity and long integers: they stay as written
    # (Trusted judges them); a key given twice, a scalar document or line are MALFORMED_JSON.
    odd = tmp_path / "n.json"
    odd.write_bytes(
        b'[{"a": 1e400, "b": NaN, "c": -Infinity, "d": ' + b"9" * 5000 + b', "e": 0.5}]'
    )
    # When it is read, Then each value is as written
    assert read_file(odd, odd.name)[1].to_pylist() == [
        {"a": "1e400", "b": "NaN", "c": "-Infinity", "d": "9" * 5000, "e": "0.5"}
    ]
    # And a key given twice, a scalar document or line, and an unpaired surrogate are MALFORMED_JSON
    for name, body, details in [
        ("dup.json", b'[{"id": 1, "id": 2}]', {"key": "id"}),
        ("s.json", b"42", {}),
        ("s.jsonl", b'{"id": 1}\n[1]\n', {"line": 2}),
        ("u.jsonl", b'{"id": "a"}\n\n{"id": "\\ud800"}\n', {"column": "id"}),
    ]:
        path = tmp_path / name
        path.write_bytes(body)
        error = error_of(path)
        assert (name, error.reason, error.details) == (name, "MALFORMED_JSON", details)


# --------------------------------------------------------------------------- messages


def test_reader_messages_never_hold_row_values(tmp_path: Path) -> None:
    # Given files whose bad part holds a secret: extra fields, a broken JSON string
    secret = "SECRET-4711"
    rows = "".join(f"{i},a\n" for i in range(300_000))
    extra = tmp_path / "e.csv"
    extra.write_text(f"id,name\n{rows}7,{secret},more\n")
    broken = tmp_path / "b.json"
    broken.write_text(f'[{{"id": "{secret}}}]')
    # Then the message says where, with counts, and not what the row holds
    error = error_of(extra)
    assert (error.reason, error.message, error.details) == (
        "MALFORMED_CSV",
        "row 300001 (line 300002 of the file) has 3 fields, expected 2",
        {"row": 300_001, "line": 300_002, "expected_fields": 2, "found_fields": 3},
    )
    assert secret not in str(error_of(broken)) and secret not in str(error_of(extra))

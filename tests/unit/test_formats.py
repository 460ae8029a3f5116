"""Readers for every RAW format, including hostile inputs."""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sluice.errors import SluiceDataError
from sluice.formats import ReadLimits, open_file, read_file
from tests.hostile import padded, with_entities, xlsx


def reason_of(path: Path, limits: ReadLimits | None = None) -> str:
    with pytest.raises(SluiceDataError) as err:
        read_file(path, path.name, limits)
    return err.value.reason


def test_xlsx_first_sheet_is_read_as_text(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path / "t.xlsx",
        [
            ["id", "name", "amount", "date", "ok"],
            [1, "A", 150.5, datetime(2024, 1, 15), True],
            [2, None, 75, datetime(2024, 1, 16, 9, 30), False],
            [None, None, None, None, None],
        ],
    )
    fmt, table = read_file(path, "t.xlsx")
    assert fmt == "xlsx"
    assert table.to_pylist() == [
        {"id": "1", "name": "A", "amount": "150.5", "date": "2024-01-15", "ok": "true"},
        {"id": "2", "name": None, "amount": "75", "date": "2024-01-16T09:30:00", "ok": "false"},
    ]


def test_xlsx_that_inflates_past_the_cap_is_unsafe(tmp_path: Path) -> None:
    path = padded(xlsx(tmp_path / "b.xlsx", [["id"], [1]]), 20)
    # the sizes in the zip directory are enough: nothing is inflated to find out
    assert reason_of(path, ReadLimits(xlsx_max_uncompressed_bytes=8 * 1024 * 1024)) == (
        "UNSAFE_ARCHIVE"
    )
    # and with a generous size cap, the compression ratio (20 MiB of zeros) still trips
    assert reason_of(path, ReadLimits(xlsx_max_ratio=100)) == "UNSAFE_ARCHIVE"


def test_xlsx_with_xml_entities_is_unsafe(tmp_path: Path) -> None:
    path = xlsx(tmp_path / "e.xlsx", [["id"], [1]])
    rebuilt = with_entities(path, tmp_path / "bomb.xlsx")
    assert reason_of(rebuilt) == "UNSAFE_ARCHIVE"


def test_xlsx_cell_cap(tmp_path: Path) -> None:
    # Given a sheet of 22 cells: a header and 10 rows of two
    path = xlsx(tmp_path / "c.xlsx", [["a", "b"], *[[i, i] for i in range(10)]])
    # Then every cell counts against the cap, the header's too
    assert reason_of(path, ReadLimits(xlsx_max_cells=21)) == "UNSAFE_ARCHIVE"
    assert read_file(path, "c.xlsx", ReadLimits(xlsx_max_cells=22))[1].num_rows == 10


def test_not_a_zip_named_xlsx_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    assert reason_of(path) == "UNREADABLE"


def test_gzip_csv_streams_and_truncated_gzip_is_unreadable(tmp_path: Path) -> None:
    text = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(5000))
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    fmt, table = read_file(path, path.name)
    assert (fmt, table.num_rows, table["name"][4999].as_py()) == ("csv", 5000, "n4999")
    broken = tmp_path / "b.csv.gz"
    broken.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    assert reason_of(broken) == "UNREADABLE"


def test_latin1_found_after_the_first_block_switches_the_whole_file(tmp_path: Path) -> None:
    # The first 100 KB are plain ASCII; the one Latin-1 byte comes late.
    lines = ["id,name"] + [f"{i},plain" for i in range(20000)] + ["20000,Caf\xe9"]
    path = tmp_path / "l.csv"
    path.write_bytes("\n".join(lines).encode("latin-1"))
    _, table = read_file(path, "l.csv")
    assert table["name"][-1].as_py() == "Caf\u00e9"
    assert table.num_rows == 20001


def test_csv_streams_in_batches_bounded_by_the_block_size(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as fh:
        fh.write("id,text\n")
        for i in range(200_000):
            fh.write(f"{i},some text for row {i}\n")
    opened = open_file(path, path.name)
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
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    assert reason_of(path) == reason


def test_parquet_keeps_native_types_and_corrupt_parquet_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": [1, 2], "amount": [1.5, None]}), path)
    fmt, table = read_file(path, path.name)
    assert (fmt, table.to_pylist()) == (
        "parquet",
        [{"id": 1, "amount": 1.5}, {"id": 2, "amount": None}],
    )
    broken = tmp_path / "b.parquet"
    broken.write_bytes(b"PAR1" + bytes(100))
    assert reason_of(broken) == "UNREADABLE"


def test_json_array_of_non_objects_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text("[1, 2]")
    assert reason_of(path) == "MALFORMED_JSON"
    lines = tmp_path / "a.jsonl"
    lines.write_text('{"id": 1}\n{"id": \n')
    with pytest.raises(SluiceDataError) as err:
        read_file(lines, lines.name)
    assert (err.value.reason, err.value.details["line"]) == ("MALFORMED_JSON", 2)

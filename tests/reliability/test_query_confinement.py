"""`sluice query` reads the lake and nothing else: no writes (inside the lake or out), no other
paths, no extensions, no way to loosen the settings that hold it in."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sluice import query
from sluice.cli import main
from tests.reliability.conftest import case

DAY = Path("trusted", "readings", "year=2024", "month=01", "day=15")
SECRET = "user,password\nroot,hunter2\n"
# The one line DuckDB gives for a path outside the allowed directories.
DENIED = (
    'Permission Error: Cannot access file "{}" - file system operations are disabled by '
    "configuration"
)


def _tree(root: Path) -> dict[str, str]:
    """Every file under root (links not followed) and a hash of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path]:
    """A lake with one trusted file, and a folder beside it holding a secret."""
    lake, outside = tmp_path / "lake", tmp_path / "outside"
    (lake / DAY).mkdir(parents=True)
    outside.mkdir()
    pq.write_table(pa.table({"id": [1, 2], "amount": [10.5, 20.25]}), lake / DAY / "part.parquet")
    (outside / "secret.csv").write_text(SECRET)
    return lake, outside


def _refused(capsys: pytest.CaptureFixture[str], lake: Path, sql: str) -> str:
    assert main(["query", sql, "--lake", str(lake)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


WRITES = [
    ("copy-outside", "COPY (SELECT 1 AS x) TO '{outside}/new.csv'", 1, "COPY"),
    (
        "copy-over-a-lake-file",
        "COPY (SELECT 0 AS id) TO '{lake}/" + str(DAY) + "/part.parquet'",
        1,
        "COPY",
    ),
    ("copy-into-the-lake", "COPY trusted_readings TO '{lake}/new.parquet'", 1, "COPY"),
    ("export", "EXPORT DATABASE '{outside}/export'", 1, "EXPORT"),
    ("create-table", "CREATE TABLE kept AS SELECT * FROM trusted_readings", 1, "CREATE"),
    ("attach", "ATTACH '{lake}/new.duckdb' AS other", 1, "ATTACH"),
    ("install", "INSTALL httpfs", 1, "LOAD"),
    ("load", "LOAD httpfs", 1, "LOAD"),
    ("set", "SET enable_external_access = true", 1, "SET"),
    ("reset", "RESET enable_external_access", 1, "SET"),
    ("lock", "SET lock_configuration = false", 1, "SET"),
    ("pragma", "PRAGMA enable_profiling", 1, "PRAGMA"),
    (
        "pivot",
        "PIVOT trusted_readings ON id USING sum(amount)",
        1,
        "several statements in one (a PIVOT without an IN list)",
    ),
    ("after-a-select", "SELECT 1; COPY (SELECT 1 AS x) TO '{outside}/new.csv'", 2, "COPY"),
]


@case(36, "`sluice query` writes nothing, loads nothing, loosens nothing: lake and disk unchanged")
@pytest.mark.parametrize(
    ("sql", "number", "kind"), [w[1:] for w in WRITES], ids=[w[0] for w in WRITES]
)
def test_a_query_cannot_write_or_loosen_its_settings(
    places: tuple[Path, Path], capsys: pytest.CaptureFixture[str], sql: str, number: int, kind: str
) -> None:
    # Given a lake and a folder beside it
    lake, outside = places
    before = _tree(lake.parent)
    # When a statement that writes, loads or changes a setting is given
    err = _refused(capsys, lake, sql.format(lake=lake, outside=outside))
    # Then it is refused before anything runs, in one line
    assert err == (
        f"sluice: `sluice query` only reads: statement {number} is {kind}, "
        "and only SELECT runs (nothing was run)\n"
    )
    # And no file was written, changed or removed, in the lake or beside it
    assert _tree(lake.parent) == before


@case(36, "the engine under `sluice query` is locked: external access off, no extension loads")
def test_the_connection_itself_is_confined_and_locked(places: tuple[Path, Path]) -> None:
    import duckdb

    # Given the connection a query runs on
    lake, outside = places
    con = query.connect(lake, lake.parent / "scratch")
    try:
        # Then writing outside the lake is refused by DuckDB itself
        with pytest.raises(duckdb.PermissionException, match="disabled by configuration"):
            con.execute(f"COPY (SELECT 1 AS x) TO '{outside}/new.csv'")
        # And no setting can be turned back
        for statement in (
            "SET enable_external_access = true",
            "SET allowed_directories = ['/']",
            "SET autoload_known_extensions = true",
            "SET lock_configuration = false",
            "RESET enable_external_access",
        ):
            with pytest.raises(duckdb.InvalidInputException, match="configuration has been locked"):
                con.execute(statement)
        # And extensions are neither installed nor loaded
        with pytest.raises(duckdb.PermissionException):
            con.execute("INSTALL httpfs")
        with pytest.raises(duckdb.PermissionException):
            con.execute("LOAD httpfs")
        settings = con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
            "'autoinstall_known_extensions', 'autoload_known_extensions', 'lock_configuration') "
            "ORDER BY name"
        ).fetchall()
    finally:
        con.close()
    assert settings == [
        ("autoinstall_known_extensions", "false"),
        ("autoload_known_extensions", "false"),
        ("enable_external_access", "false"),
        ("lock_configuration", "true"),
    ]
    assert not (outside / "new.csv").exists()


READS = [
    ("read_csv", "SELECT * FROM read_csv('{target}')", "{outside}/secret.csv"),
    ("read_text", "SELECT content FROM read_text('{target}')", "{outside}/secret.csv"),
    ("read_blob", "SELECT content FROM read_blob('{target}')", "{outside}/secret.csv"),
    ("replacement-scan", "SELECT * FROM '{target}'", "{outside}/secret.csv"),
    ("dot-dot", "SELECT * FROM read_csv('{target}')", "{lake}/../outside/secret.csv"),
    ("glob", "SELECT * FROM glob('{target}')", "{outside}/*"),
    ("https", "SELECT * FROM read_parquet('{target}')", "https://example.com/x.parquet"),
    ("s3", "SELECT * FROM read_parquet('{target}')", "s3://bucket/x.parquet"),
    ("linked-file", "SELECT * FROM read_csv('{target}')", "{lake}/secret.csv"),
    ("linked-folder", "SELECT * FROM read_csv('{target}')", "{lake}/elsewhere/secret.csv"),
]


@case(37, "`sluice query` reads nothing outside the lake: paths, `..`, URLs, links out of it")
@pytest.mark.parametrize(("sql", "target"), [r[1:] for r in READS], ids=[r[0] for r in READS])
def test_a_query_cannot_read_outside_the_lake(
    places: tuple[Path, Path], capsys: pytest.CaptureFixture[str], sql: str, target: str
) -> None:
    # Given a lake holding links to a file and a folder outside it
    lake, outside = places
    (lake / "secret.csv").symlink_to(outside / "secret.csv")
    (lake / "elsewhere").symlink_to(outside, target_is_directory=True)
    path = target.format(lake=lake, outside=outside)
    # When a query reads a path outside the lake, or through a link out of it
    err = _refused(capsys, lake, sql.format(target=path))
    # Then DuckDB refuses it, and the message says where a query may read
    assert err == (
        f"sluice: {DENIED.format(path)} (`sluice query` reads only the files under {lake})\n"
    )
    assert "hunter2" not in err


@case(37, "a view over a file linked from outside the lake is refused, naming the file")
def test_a_linked_file_in_a_table_is_refused(
    places: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a trusted partition holding a link to a Parquet file outside the lake
    lake, outside = places
    pq.write_table(pa.table({"id": [99], "amount": [1.0]}), outside / "other.parquet")
    (lake / DAY / "other.parquet").symlink_to(outside / "other.parquet")
    # When the table is queried
    err = _refused(capsys, lake, "SELECT count(*) FROM trusted_readings")
    # Then the query fails on that file rather than reading it
    assert err == (
        f"sluice: {DENIED.format(lake / DAY / 'other.parquet')} "
        f"(`sluice query` reads only the files under {lake})\n"
    )


def test_the_lake_itself_stays_readable_by_table_and_by_path(
    places: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the lake, reached through a link to it
    lake, _ = places
    (lake.parent / "lake-link").symlink_to(lake, target_is_directory=True)
    linked = lake.parent / "lake-link"
    # When its table and one of its files are read
    sql = (
        "SELECT t.id, t.amount, t.day, f.amount AS by_path FROM trusted_readings t "
        f"JOIN read_parquet('{linked / DAY / 'part.parquet'}') f USING (id) ORDER BY id"
    )
    assert main(["query", sql, "--lake", str(linked), "--format", "csv"]) == 0
    # Then both answer
    assert capsys.readouterr().out == "id,amount,day,by_path\n1,10.5,15,10.5\n2,20.25,15,20.25\n"

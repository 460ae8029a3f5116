"""The quoting helpers of generated SQL: a name or string comes back from the engine as it
was given, whatever quotes, semicolons or comment markers it holds."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from sluice.sql import athena_name, athena_string, duckdb_name, duckdb_string

HOSTILE = [
    "plain",
    'a"b',
    'a""; DROP TABLE t; --',
    "a`b``",
    "it's",
    "back\\slash'",
    "/* c */ x",
    "Order Date",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_duckdb_names_and_strings_round_trip(name: str) -> None:
    # Given a table created with the hostile name as a column and the same text as a value
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS SELECT {duckdb_string(name)} AS {duckdb_name(name)}")

    # When it is read back, then the column and the value are the text given, and t exists
    cursor = con.execute(f"SELECT {duckdb_name(name)} FROM t")
    assert [d[0] for d in cursor.description] == [name]
    assert cursor.fetchall() == [(name,)]
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchall() == [(1,)]


@pytest.mark.parametrize("name", HOSTILE)
def test_athena_names_and_strings_parse_as_given(name: str) -> None:
    # Given a Hive DDL statement with the hostile text as a column name and a property value
    ddl = (
        f"CREATE EXTERNAL TABLE {athena_name('t')} ({athena_name(name)} string) "
        f"STORED AS PARQUET LOCATION 's3://b/' TBLPROPERTIES ('k'={athena_string(name)})"
    )

    # When it is parsed, then it is one statement with exactly that column and that value
    statements = sqlglot.parse(ddl, read="hive")
    assert len(statements) == 1
    create = statements[0]
    assert isinstance(create, exp.Create)
    assert [c.this.name for c in create.this.expressions] == [name]
    props = [p for p in create.args["properties"].expressions if isinstance(p, exp.Property)]
    assert [(p.name, p.args["value"].this) for p in props if p.name == "k"] == [("k", name)]


@pytest.mark.parametrize("quote", [athena_name, athena_string, duckdb_name, duckdb_string])
@pytest.mark.parametrize("text", ["a\nb", "a\rb", "a\x00b"])
def test_control_characters_are_refused(quote: object, text: str) -> None:
    # Given a text with a newline, a carriage return or a NUL in it
    # When any of the quoting helpers is given it, Then it is refused, not quoted
    with pytest.raises(ValueError, match="has a control character and cannot be quoted"):
        quote(text)  # type: ignore[operator]

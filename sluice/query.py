"""SQL over the local lake with DuckDB, under the table names Athena uses.

`trusted_<dataset>`, `delivery_<dataset>` and `lineage` are views over the Parquet files in a
lake folder (as `sluice run` leaves it), with the hive partitions (`record_type`, `year`,
`month`, `day`) as string columns exactly as in the Athena tables, so a query written for
Athena runs here unchanged; the views exist both unqualified and in the schema `sluice`.

A query reads the lake and nothing else. Only SELECT statements run (COPY, ATTACH, EXPORT,
INSTALL/LOAD, SET, PRAGMA and every other kind are refused before anything runs), and the
connection they run on is confined by DuckDB's own settings, locked before the query: external
access off with the lake as the one allowed directory (DuckDB resolves symbolic links, so a link
in the lake to a file outside it is refused too), extensions neither installed nor loaded.
Numbers are printed exactly in every format: a double as its shortest round-tripping digits, a
decimal with all its digits, an integer of any size in full.
"""

from __future__ import annotations

import csv
import io
import json
import math
import struct
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.lake import DELIVERY_PARTITIONS, LINEAGE_RECORDS, TRUSTED_PARTITIONS, is_valid_dataset
from sluice.sql import duckdb_name, duckdb_string
from sluice.text_tables import format_table

DATABASE = "sluice"
FORMATS = ("table", "csv", "json")

if TYPE_CHECKING:
    import duckdb

# Set when the connection opens, before any SQL: nothing the query does may fetch or load code.
_ENGINE_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,
}


class QueryError(RuntimeError):
    """A query that cannot run, in one line."""


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    types: list[str] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _quote(path: Path) -> str:
    return duckdb_string(str(path))


def _partitioned(root: Path, partitions: tuple[str, ...]) -> str:
    glob = root.joinpath(*(f"{p}=*" for p in partitions), "*.parquet")
    types = ", ".join(f"{duckdb_string(p)}: VARCHAR" for p in partitions)
    return (
        f"read_parquet({_quote(glob)}, hive_partitioning = true, union_by_name = true, "
        f"hive_types = {{{types}}})"
    )


def tables(lake_dir: Path) -> dict[str, str]:
    """View name -> the DuckDB table function reading it, for what the lake holds."""
    found: dict[str, str] = {}
    for layer, partitions in (
        ("trusted", TRUSTED_PARTITIONS),
        ("delivery", DELIVERY_PARTITIONS),
    ):
        base = lake_dir / layer
        if not base.is_dir():
            continue
        for folder in sorted(base.iterdir()):
            if folder.is_dir() and is_valid_dataset(folder.name) and any(folder.rglob("*.parquet")):
                found[f"{layer}_{folder.name}"] = _partitioned(folder, partitions)
    records = lake_dir / "delivery" / LINEAGE_RECORDS
    if records.is_dir() and any(records.glob("*.parquet")):
        found["lineage"] = f"read_parquet({_quote(records / '*.parquet')}, union_by_name = true)"
    return found


def connect(lake_dir: Path, scratch: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the lake's views that can read the lake's files and nothing
    else, its settings locked. `scratch` (outside the lake) is where DuckDB may spill."""
    import duckdb

    lake = lake_dir.resolve()
    con = duckdb.connect(config={**_ENGINE_CONFIG, "temp_directory": str(scratch)})
    # allowed_directories must be set while external access is still on; the trailing
    # separator keeps a sibling such as `lake2/` out.
    con.execute(f"SET allowed_directories = [{_quote(lake)} || '/']")
    con.execute("SET enable_external_access = false")
    con.execute(f"CREATE SCHEMA {duckdb_name(DATABASE)}")
    for name, source in tables(lake).items():
        con.execute(f"CREATE VIEW {duckdb_name(name)} AS SELECT * FROM {source}")
        con.execute(
            f"CREATE VIEW {duckdb_name(DATABASE)}.{duckdb_name(name)} AS SELECT * FROM {source}"
        )
    con.execute("SET lock_configuration = true")
    return con


def _read_only(sql: str) -> list[duckdb.Statement]:
    """The statements of `sql`, if every one of them is a SELECT (DESCRIBE, SHOW, SUMMARIZE,
    VALUES and FROM-first queries are SELECTs to DuckDB)."""
    import duckdb

    statements = duckdb.extract_statements(sql)
    if not statements:
        raise QueryError("no SQL statement given")
    for number, statement in enumerate(statements, 1):
        if statement.type != duckdb.StatementType.SELECT:
            kind = statement.type.name
            if statement.type == duckdb.StatementType.MULTI:
                kind = "several statements in one (a PIVOT without an IN list)"
            raise QueryError(
                f"`sluice query` only reads: statement {number} is {kind}, "
                "and only SELECT runs (nothing was run)"
            )
    return statements


def run(lake_dir: Path, sql: str) -> Result:
    import duckdb

    if not lake_dir.is_dir():
        raise QueryError(f"no lake at {lake_dir} (run `sluice run` first, or pass --lake)")
    with tempfile.TemporaryDirectory(prefix="sluice-query-") as scratch:
        con: duckdb.DuckDBPyConnection | None = None
        try:
            statements = _read_only(sql)
            con = connect(lake_dir, Path(scratch))
            cursor = con
            for statement in statements:
                cursor = con.execute(statement)
            description = cursor.description or []
            columns = [d[0] for d in description]
            rows = cursor.fetchall() if columns else []
            return Result(columns, rows, [str(d[1]) for d in description])
        except duckdb.PermissionException as exc:
            first = str(exc).strip().splitlines()[0]
            raise QueryError(
                f"{first} (`sluice query` reads only the files under {lake_dir.resolve()})"
            ) from exc
        except duckdb.Error as exc:
            known = ", ".join(sorted(tables(lake_dir))) or "none"
            first = str(exc).strip().splitlines()[0]
            raise QueryError(f"{first} (tables: {known})") from exc
        finally:
            if con is not None:
                con.close()


def _single(value: float) -> float:
    """A FLOAT (32-bit) value as the double with the fewest digits that reads back as it."""
    if not math.isfinite(value):
        return value
    packed = struct.pack("<f", value)
    for digits in range(1, 10):
        shortest = float(f"{value:.{digits}g}")
        if struct.pack("<f", shortest) == packed:
            return shortest
    return value


def _number(value: float | Decimal) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    return repr(value)


def _finite(value: float | Decimal) -> bool:
    return value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def _json(value: Any, indent: int | None = None, level: int = 0) -> str:
    """JSON text with numbers written exactly: json.dumps cannot write a Decimal as a number,
    and writes NaN and Infinity, which are not JSON (here they are the strings "nan", "inf")."""
    if isinstance(value, dict):
        items = [f"{json.dumps(str(k))}: {_json(v, indent, level + 1)}" for k, v in value.items()]
        return _joined("{", items, "}", indent, level)
    if isinstance(value, list | tuple):
        return _joined("[", [_json(v, indent, level + 1) for v in value], "]", indent, level)
    if value is None or isinstance(value, bool | str):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        text = _number(value)
        return text if _finite(value) else json.dumps(text)
    return json.dumps(str(_plain(value)))


def _joined(start: str, items: list[str], end: str, indent: int | None, level: int) -> str:
    if not items:
        return start + end
    if indent is None:
        return start + ", ".join(items) + end
    inner = "\n" + " " * (indent * (level + 1))
    return start + inner + ("," + inner).join(items) + "\n" + " " * (indent * level) + end


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float | Decimal):
        return _number(value)
    if isinstance(value, dict | list | tuple):
        return _json(value)
    return str(_plain(value))


def _output_rows(result: Result) -> list[tuple[Any, ...]]:
    singles = [i for i, kind in enumerate(result.types) if kind == "FLOAT"]
    if not singles:
        return result.rows
    return [
        tuple(_single(v) if i in singles and isinstance(v, float) else v for i, v in enumerate(row))
        for row in result.rows
    ]


def render(result: Result, fmt: str) -> str:
    rows = _output_rows(result)
    if fmt == "json":
        return _json([dict(zip(result.columns, row, strict=True)) for row in rows], indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[_cell(v) if v is not None else "" for v in row] for row in rows])
        return out.getvalue().rstrip("\n")
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], int | float | Decimal) or row[i] is None for row in rows)
        for i in range(len(result.columns))
    ]
    lines = [format_table(result.columns, cells, numeric)]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)

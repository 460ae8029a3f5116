"""SQL over the local lake with DuckDB, under the table names Athena uses.

`trusted_<dataset>`, `delivery_<dataset>` and `lineage` are views over the Parquet files in a
lake folder (as `sluice run` leaves it), with the hive partitions (`record_type`, `year`,
`month`, `day`) as string columns exactly as in the Athena tables, so a query written for
Athena runs here unchanged; the views exist both unqualified and in the schema `sluice`.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sluice.lake import LINEAGE_RECORDS, is_valid_dataset
from sluice.sql import duckdb_name, duckdb_string
from sluice.tables import format_table

DATABASE = "sluice"
FORMATS = ("table", "csv", "json")


class QueryError(RuntimeError):
    """A query that cannot run, in one line."""


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]

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
        ("trusted", ("year", "month", "day")),
        ("delivery", ("record_type", "year", "month", "day")),
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


def connect(lake_dir: Path) -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute(f"CREATE SCHEMA {duckdb_name(DATABASE)}")
    for name, source in tables(lake_dir).items():
        con.execute(f"CREATE VIEW {duckdb_name(name)} AS SELECT * FROM {source}")
        con.execute(
            f"CREATE VIEW {duckdb_name(DATABASE)}.{duckdb_name(name)} AS SELECT * FROM {source}"
        )
    return con


def run(lake_dir: Path, sql: str) -> Result:
    import duckdb

    if not lake_dir.is_dir():
        raise QueryError(f"no lake at {lake_dir} (run `sluice run` first, or pass --lake)")
    con = connect(lake_dir)
    try:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description] if cursor.description else []
        return Result(columns, cursor.fetchall() if columns else [])
    except duckdb.Error as exc:
        known = ", ".join(sorted(tables(lake_dir))) or "none"
        first = str(exc).strip().splitlines()[0]
        raise QueryError(f"{first} (tables: {known})") from exc
    finally:
        con.close()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e15 else repr(value)
    plain = _plain(value)
    return json.dumps(plain) if isinstance(plain, dict | list) else str(plain)


def render(result: Result, fmt: str) -> str:
    if fmt == "json":
        return json.dumps([_plain(r) for r in result.records()], indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[_cell(v) if v is not None else "" for v in row] for row in result.rows])
        return out.getvalue().rstrip("\n")
    cells = [[_cell(v) for v in row] for row in result.rows]
    numeric = [
        all(isinstance(row[i], int | float | Decimal) or row[i] is None for row in result.rows)
        for i in range(len(result.columns))
    ]
    lines = [format_table(result.columns, cells, numeric)]
    lines.append(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
    return "\n".join(lines)

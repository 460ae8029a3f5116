"""Athena/Glue tables for the lake, generated from the contracts.

Each dataset has `trusted_<dataset>` (partitioned `year=/month=/day=`) and `delivery_<dataset>`
(partitioned `record_type=/year=/month=/day=`, the union of the DETAIL, DAILY_SUMMARY and
QUALITY columns); `lineage` covers every dataset. Partitions are projected, so no
`MSCK REPAIR TABLE` is ever needed. The DDL is kept in `catalog/` with `${...}` placeholders
(database and bucket names) that the infrastructure and `sluice query` fill in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from sluice.config import PROJECT_ROOT
from sluice.contracts import Contract
from sluice.lake import (
    DAY,
    DELIVERY_PARTITIONS,
    LINEAGE_RECORDS,
    MONTH,
    RECORD_TYPE,
    TRUSTED_PARTITIONS,
    YEAR,
)
from sluice.sql import athena_name, athena_string
from sluice.stages import delivery
from sluice.stages import trusted as trusted_stage

CATALOG_DIR = PROJECT_ROOT / "catalog"
PLACEHOLDERS = ("Database", "TrustedBucket", "DeliveryBucket")
FIRST_YEAR, LAST_YEAR = 2000, 2099


# Checked in order: every int64 is an integer too.
_PLAIN_TYPES = (
    (pa.types.is_int64, "bigint"),
    (pa.types.is_integer, "int"),
    (pa.types.is_floating, "double"),
    (pa.types.is_string, "string"),
    (pa.types.is_large_string, "string"),
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_date, "date"),
    (pa.types.is_timestamp, "timestamp"),
)


def athena_type(arrow_type: pa.DataType) -> str:
    """The Athena (Hive DDL) type that reads a Parquet column of `arrow_type`."""
    if pa.types.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_list(arrow_type):
        return f"array<{athena_type(arrow_type.value_type)}>"
    if pa.types.is_map(arrow_type):
        return f"map<{athena_type(arrow_type.key_type)},{athena_type(arrow_type.item_type)}>"
    for is_type, name in _PLAIN_TYPES:
        if is_type(arrow_type):
            return name
    raise ValueError(f"no Athena type for {arrow_type}")


def delivery_schema(contract: Contract) -> pa.Schema:
    """Every column a DELIVERY file of this dataset can hold (DETAIL, DAILY_SUMMARY, QUALITY)."""
    fields: dict[str, pa.Field] = {}
    for schema in (
        delivery.detail_schema(trusted_stage.output_schema(contract)),
        delivery.summary_schema(contract),
        delivery.QUALITY_SCHEMA,
    ):
        for item in schema:
            known = fields.setdefault(item.name, item)
            if known.type != item.type:
                raise ValueError(
                    f"{item.name}: {known.type} in one record type, {item.type} in another"
                )
    return pa.schema(list(fields.values()))


@dataclass(frozen=True)
class Table:
    name: str
    schema: pa.Schema
    location: str
    partitions: tuple[str, ...]
    record_types: tuple[str, ...] = ()

    def properties(self) -> list[tuple[str, str]]:
        """TBLPROPERTIES: Parquet compression and the partition projection."""
        properties = [("parquet.compression", "ZSTD")]
        if self.partitions:
            properties.append(("projection.enabled", "true"))
            if self.record_types:
                properties += [
                    (f"projection.{RECORD_TYPE}.type", "enum"),
                    (f"projection.{RECORD_TYPE}.values", ",".join(self.record_types)),
                ]
            properties += [
                (f"projection.{YEAR}.type", "integer"),
                (f"projection.{YEAR}.range", f"{FIRST_YEAR},{LAST_YEAR}"),
                (f"projection.{MONTH}.type", "integer"),
                (f"projection.{MONTH}.range", "1,12"),
                (f"projection.{MONTH}.digits", "2"),
                (f"projection.{DAY}.type", "integer"),
                (f"projection.{DAY}.range", "1,31"),
                (f"projection.{DAY}.digits", "2"),
            ]
            template = self.location + "/".join(f"{p}=${{{p}}}" for p in self.partitions)
            properties.append(("storage.location.template", template))
        return properties

    def columns(self) -> list[tuple[str, str]]:
        return [(f.name, athena_type(f.type)) for f in self.schema]

    def ddl(self) -> str:
        """CREATE EXTERNAL TABLE, every name and string quoted by `sluice.sql`."""
        names = [athena_name(f.name) for f in self.schema]
        width = max(len(n) for n in names)
        columns = ",\n".join(
            f"  {n.ljust(width)} {athena_type(f.type)}"
            for n, f in zip(names, self.schema, strict=True)
        )
        table = f"{athena_name('${Database}')}.{athena_name(self.name)}"
        text = f"CREATE EXTERNAL TABLE IF NOT EXISTS {table} (\n{columns}\n)\n"
        if self.partitions:
            parts = ", ".join(f"{athena_name(p)} string" for p in self.partitions)
            text += f"PARTITIONED BY ({parts})\n"
        text += f"STORED AS PARQUET\nLOCATION {athena_string(self.location)}\n"
        properties = self.properties()
        listed = ",\n".join(f"  {athena_string(k)}={athena_string(v)}" for k, v in properties)
        return text + f"TBLPROPERTIES (\n{listed}\n);\n"


def tables(contract: Contract) -> list[Table]:
    """The dataset's two tables."""
    name = contract.dataset
    return [
        Table(
            f"trusted_{name}",
            trusted_stage.output_schema(contract),
            f"s3://${{TrustedBucket}}/{name}/",
            TRUSTED_PARTITIONS,
        ),
        Table(
            f"delivery_{name}",
            delivery_schema(contract),
            f"s3://${{DeliveryBucket}}/{name}/",
            DELIVERY_PARTITIONS,
            delivery.RECORD_TYPES,
        ),
    ]


def all_tables(contracts: list[Contract]) -> list[Table]:
    return [t for contract in contracts for t in tables(contract)] + [lineage_table()]


def lineage_table() -> Table:
    return Table(
        "lineage", delivery.LINEAGE_SCHEMA, f"s3://${{DeliveryBucket}}/{LINEAGE_RECORDS}/", ()
    )


HEADER = (
    "-- Generated by `sluice ddl --write` from {source}; do not edit by hand.\n"
    "-- ${{Database}}, ${{TrustedBucket}} and ${{DeliveryBucket}} are filled in at deploy time.\n\n"
)


def dataset_ddl(contract: Contract) -> str:
    return HEADER.format(source=f"contracts/{contract.dataset}.yaml") + "\n".join(
        t.ddl() for t in tables(contract)
    )


def lineage_ddl() -> str:
    return HEADER.format(source="sluice/stages/delivery.py") + lineage_table().ddl()


def render(ddl: str, values: dict[str, str]) -> str:
    """Fill the placeholders (`${year}` and the like are Athena's own and stay)."""
    for name in PLACEHOLDERS:
        ddl = ddl.replace(f"${{{name}}}", values[name])
    return ddl


def write_catalog(contracts: list[Contract], directory: Path = CATALOG_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for contract in contracts:
        path = directory / f"{contract.dataset}.sql"
        path.write_text(dataset_ddl(contract), encoding="utf-8")
        written.append(path)
    path = directory / "lineage.sql"
    path.write_text(lineage_ddl(), encoding="utf-8")
    written.append(path)
    return written

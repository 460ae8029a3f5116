"""The Athena DDL: generated from the contracts, kept in the repo, valid, and true to the files."""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from sluice import catalog
from sluice.config import CONTRACTS_DIR
from sluice.contracts import Column, Contract, ContractError, find_contract, load_contract_text

CONTRACT = find_contract("transactions", CONTRACTS_DIR)


def ddl_columns(ddl: str) -> tuple[str, dict[str, str], list[str]]:
    """(table name, column -> type, partition columns) of one CREATE TABLE, via sqlglot."""
    parsed = sqlglot.parse_one(ddl, read="athena")
    assert isinstance(parsed, exp.Create)
    schema = parsed.this
    assert isinstance(schema, exp.Schema)
    columns = {
        c.this.name: c.args["kind"].sql("hive").lower().replace(", ", ",")
        for c in schema.expressions
    }
    partitions: list[str] = []
    props = parsed.args.get("properties")
    for prop in props.expressions if props else []:
        if isinstance(prop, exp.PartitionedByProperty):
            partitions = [c.this.name for c in prop.this.expressions]
    return schema.this.name, columns, partitions


def test_the_committed_catalog_is_what_the_contracts_generate() -> None:
    # Given the transactions contract and the catalog DDL committed for it
    assert CONTRACT is not None
    # When the DDL is generated again
    committed = (catalog.CATALOG_DIR / "transactions.sql").read_text(encoding="utf-8")
    # Then it is what is committed, for the dataset and for lineage
    assert committed == catalog.dataset_ddl(CONTRACT), "run `sluice ddl --write`"
    lineage = (catalog.CATALOG_DIR / "lineage.sql").read_text(encoding="utf-8")
    assert lineage == catalog.lineage_ddl(), "run `sluice ddl --write`"


def test_every_statement_parses_and_declares_the_schema_written() -> None:
    # Given the transactions contract's tables and the lineage table
    assert CONTRACT is not None
    trusted, delivery = catalog.tables(CONTRACT)
    # When each one's DDL is rendered and parsed
    for table in [trusted, delivery, catalog.lineage_table()]:
        rendered = catalog.render(
            table.ddl(), {"Database": "sluice", "TrustedBucket": "t", "DeliveryBucket": "d"}
        )
        name, columns, partitions = ddl_columns(rendered)
        # Then it names the table, declares the schema written as its columns, and its partitions
        assert name == table.name
        assert columns == {f.name: catalog.athena_type(f.type) for f in table.schema}
        assert partitions == list(table.partitions)


def test_partition_projection_matches_the_key_layout() -> None:
    # Given the transactions contract's DELIVERY table
    assert CONTRACT is not None
    _, delivery = catalog.tables(CONTRACT)
    # When its DDL is written
    text = delivery.ddl()
    # Then its projection lists the record types, follows the key layout, and pads months to two
    # digits
    assert "'projection.record_type.values'='DETAIL,DAILY_SUMMARY,QUALITY'" in text
    assert (
        "'storage.location.template'='s3://${DeliveryBucket}/transactions/"
        "record_type=${record_type}/year=${year}/month=${month}/day=${day}'"
    ) in text
    assert "'projection.month.digits'='2'" in text


@pytest.mark.parametrize(
    ("arrow", "athena"),
    [
        (pa.int64(), "bigint"),
        (pa.int32(), "int"),
        (pa.float64(), "double"),
        (pa.decimal128(38, 2), "decimal(38,2)"),
        (pa.date32(), "date"),
        (pa.timestamp("us", tz="UTC"), "timestamp"),
        (pa.list_(pa.string()), "array<string>"),
        (pa.map_(pa.string(), pa.int64()), "map<string,bigint>"),
    ],
)
def test_athena_types(arrow: pa.DataType, athena: str) -> None:
    # Given an Arrow type Sluice writes
    # When it is named in Athena's terms, Then it is Athena's type for it
    assert catalog.athena_type(arrow) == athena


def test_a_column_may_not_take_a_partition_name() -> None:
    # Given a contract with a column named like a partition
    # When it is loaded, Then it is refused, naming the column
    with pytest.raises(ContractError, match=r"columns\.year: is a name the pipeline itself writes"):
        load_contract_text("dataset: t\ncolumns: {year: int}\n", "t.yaml")


HOSTILE_NAMES = [
    "a` bigint, `injected",
    'b" int, "c',
    "d; DROP TABLE trusted_t; --",
    "e' string) LOCATION 's3://elsewhere/",
    "f\\`",
]


def test_hostile_names_stay_inside_their_quoting_in_the_ddl() -> None:
    # Given a contract held in memory (past the load-time name check) with names that would
    # end a backtick, a double quote, a statement or a string if pasted into DDL
    contract = Contract(
        dataset="t",
        columns=(Column("id", "int"), *(Column(name, "string") for name in HOSTILE_NAMES)),
    )

    # When each of its tables' DDL is parsed
    for table in catalog.tables(contract):
        rendered = catalog.render(
            table.ddl(), {"Database": "sluice", "TrustedBucket": "t", "DeliveryBucket": "d"}
        )
        statements = sqlglot.parse(rendered, read="athena")

        # Then it is one statement whose columns are exactly the schema's, names as written
        assert len(statements) == 1
        name, columns, partitions = ddl_columns(rendered)
        assert name == table.name
        assert columns == {f.name: catalog.athena_type(f.type) for f in table.schema}
        assert set(HOSTILE_NAMES) <= set(columns)
        assert partitions == list(table.partitions)


def test_a_name_with_a_control_character_is_never_written_into_ddl() -> None:
    # Given a contract held in memory with a column name holding a newline
    # (A newline could end a `--` comment or a line a tool splits on: no quoting carries it)
    contract = Contract(dataset="t", columns=(Column("id", "int"), Column("a\nb", "string")))
    trusted, _ = catalog.tables(contract)
    # When its DDL is written, Then it is refused, naming the control character
    with pytest.raises(ValueError, match=r"name 'a\\nb' has a control character"):
        trusted.ddl()

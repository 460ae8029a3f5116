"""The Glue database and tables over the lake, and the Athena workgroup to query them."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.settings import EnvironmentSettings
from infra.storage import Storage
from sluice import catalog
from sluice.contracts import Contract

_PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
_PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
_PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


def database_name(settings: EnvironmentSettings) -> str:
    """Glue database names take lower-case letters, digits and '_'."""
    return settings.prefix.replace("-", "_")


class Catalog(Construct):
    """The tables of `sluice.catalog` (the same ones `catalog/*.sql` declares) as Glue tables
    with partition projection, and an Athena workgroup whose results are encrypted."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        storage: Storage,
        contracts: list[Contract],
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self._storage = storage
        account = Stack.of(self).account
        self.database_name = database_name(settings)
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description=f"Sluice {settings.name}: TRUSTED, DELIVERY and lineage tables",
            ),
        )
        values = {
            "Database": self.database_name,
            "TrustedBucket": storage.trusted.bucket_name,
            "DeliveryBucket": storage.delivery.bucket_name,
        }
        self.tables = {
            table.name: self._table(table, values) for table in catalog.all_tables(contracts)
        }
        self.results = storage.data_bucket("AthenaResults", expire_days=30)
        self.workgroup = self._workgroup(storage.key)

    def _table(self, table: catalog.Table, values: dict[str, str]) -> glue.CfnTable:
        parameters = {"classification": "parquet", "EXTERNAL": "TRUE"}
        parameters.update({k: catalog.render(v, values) for k, v in table.properties()})
        resource = glue.CfnTable(
            self,
            f"Table-{table.name}",
            catalog_id=Stack.of(self).account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=table.name,
                table_type="EXTERNAL_TABLE",
                parameters=parameters,
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name=p, type="string") for p in table.partitions
                ],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[
                        glue.CfnTable.ColumnProperty(name=name, type=kind)
                        for name, kind in table.columns()
                    ],
                    location=catalog.render(table.location, values),
                    input_format=_PARQUET_INPUT,
                    output_format=_PARQUET_OUTPUT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=_PARQUET_SERDE
                    ),
                ),
            ),
        )
        resource.node.add_dependency(self.database)
        return resource

    def _workgroup(self, key: kms.IKey | None) -> athena.CfnWorkGroup:
        encryption = (
            athena.CfnWorkGroup.EncryptionConfigurationProperty(
                encryption_option="SSE_KMS", kms_key=key.key_arn
            )
            if key is not None
            else athena.CfnWorkGroup.EncryptionConfigurationProperty(encryption_option="SSE_S3")
        )
        return athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=self._settings.prefix,
            description=f"Sluice {self._settings.name}: queries over the lake",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                # Queries cannot override where results go or how they are encrypted.
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=self.results.s3_url_for_object("results/"),
                    encryption_configuration=encryption,
                ),
            ),
        )

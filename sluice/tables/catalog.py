"""The Glue catalog Sluice's tables live in, on AWS or in the local cloud, and their names.

One Glue database per layer (`sluice_trusted`), one table per dataset, its files under the
layer's bucket at `_tables/<dataset>/` (`sluice.lake`). On AWS the catalog signs with the
function's own credentials (the environment's); against the local cloud it is told the cloud's
endpoint, for Glue and for S3, and a role's session credentials, so IAM checks every request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pyiceberg.catalog.glue import GlueCatalog

from sluice import lake

CATALOG_NAME = "sluice"
_FILE_IO = "pyiceberg.io.pyarrow.PyArrowFileIO"


@dataclass(frozen=True)
class TableCatalog:
    """Where the catalog is: a region, and for the local cloud its endpoint and the keys to
    sign with (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, as
    `LocalCloud.role_credentials` spells them)."""

    region: str
    endpoint_url: str | None = None
    credentials: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def aws(cls, region: str) -> TableCatalog:
        return cls(region=region)

    @classmethod
    def local(cls, endpoint_url: str, credentials: Mapping[str, str], region: str) -> TableCatalog:
        return cls(region=region, endpoint_url=endpoint_url, credentials=dict(credentials))

    def properties(self) -> dict[str, str]:
        """pyiceberg's catalog properties: Glue's (`glue.*`) and the FileIO's (`s3.*`)."""
        props = {"py-io-impl": _FILE_IO, "glue.region": self.region, "s3.region": self.region}
        if self.endpoint_url:
            props["glue.endpoint"] = props["s3.endpoint"] = self.endpoint_url
        keys = {
            "access-key-id": "AWS_ACCESS_KEY_ID",
            "secret-access-key": "AWS_SECRET_ACCESS_KEY",
            "session-token": "AWS_SESSION_TOKEN",
        }
        for prop, variable in keys.items():
            if self.credentials.get(variable):
                props[f"glue.{prop}"] = props[f"s3.{prop}"] = self.credentials[variable]
        return props


def open_catalog(config: TableCatalog) -> GlueCatalog:
    return GlueCatalog(CATALOG_NAME, **config.properties())


@dataclass(frozen=True)
class TableName:
    """A dataset's table in one layer (`trusted`, `delivery`), its files in `bucket`."""

    layer: str
    dataset: str
    bucket: str

    @property
    def database(self) -> str:
        return lake.table_database(self.layer)

    @property
    def identifier(self) -> tuple[str, str]:
        return (self.database, self.dataset)

    @property
    def location(self) -> str:
        return lake.table_location(self.bucket, self.dataset)

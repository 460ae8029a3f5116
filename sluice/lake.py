"""The lake's key layout and the identities derived from a RAW object.

Every output key is a pure function of the source object's identity and the record date, so a
retry, rerun or redrive overwrites its own outputs instead of adding new ones.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import PurePosixPath
from typing import Any

from sluice.config import STAGING_PREFIX

MAX_EXECUTION_NAME = 80

# The partition columns, as the keys spell them (`year=2024/month=01/day=31/`); DELIVERY's files
# are under their record type first (`record_type=DETAIL/`). Athena's tables and the DuckDB
# views take them from the keys.
YEAR, MONTH, DAY = "year", "month", "day"
RECORD_TYPE = "record_type"
DATE_PARTITIONS = (YEAR, MONTH, DAY)
TRUSTED_PARTITIONS = DATE_PARTITIONS
DELIVERY_PARTITIONS = (RECORD_TYPE, *DATE_PARTITIONS)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_DATASET = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class SourceObject:
    """A RAW object as an S3 event names it."""

    bucket: str
    key: str
    version_id: str = ""
    etag: str = ""
    size: int = 0

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name

    @property
    def stem(self) -> str:
        name = self.name
        for suffix in (".gz", ".csv", ".jsonl", ".ndjson", ".json", ".xlsx", ".parquet", ".txt"):
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
        return name or "object"

    @property
    def object_id(self) -> str:
        """Identity of the object's *location*: a new version replaces the old one's outputs."""
        return _digest(f"{self.bucket}/{self.key}")[:12]

    @property
    def version_token(self) -> str:
        """Identity of this *version*: a new upload of the same key gets a new execution."""
        return _digest(f"{self.bucket}/{self.key}#{self.version_id or self.etag.strip(chr(34))}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "version_id": self.version_id,
            "etag": self.etag,
            "size": self.size,
        }


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def safe_token(text: str, limit: int) -> str:
    """`text` reduced to `[A-Za-z0-9_-]`, at most `limit` characters, never empty."""
    token = _UNSAFE.sub("-", text).strip("-_")
    return (token[:limit].rstrip("-_") or "x") if limit > 0 else ""


def execution_name(source: SourceObject, dataset: str) -> str:
    """`<dataset>-<file stem>-<hash>`: readable in the console, unique per object version."""
    digest = source.version_token[:16]
    budget = MAX_EXECUTION_NAME - len(digest) - 2
    ds = safe_token(dataset, min(24, budget // 2))
    stem = safe_token(source.stem, budget - len(ds))
    return f"{ds}-{stem}-{digest}"


def execution_names(source: SourceObject, dataset: str) -> list[str]:
    """The names the object's execution can have: by version (AWS events on a versioned
    bucket) and by ETag (events without a version, such as moto's)."""
    names = [execution_name(source, dataset)]
    by_etag = execution_name(SourceObject(source.bucket, source.key, etag=source.etag), dataset)
    return names if by_etag in names else [*names, by_etag]


def dataset_from_key(key: str) -> str:
    """The dataset is the first folder of a RAW key (`<dataset>/year=.../<file>`)."""
    head = key.split("/", 1)[0] if "/" in key else ""
    return normalize_dataset(head) if head else ""


def normalize_dataset(name: str) -> str:
    token = re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_")
    if token and token[0].isdigit():
        token = f"d_{token}"
    return token[:63]


def is_valid_dataset(name: str) -> bool:
    return bool(_DATASET.match(name))


def dataset_from_filename(filename: str) -> str:
    """A file's default dataset: its name up to the first `_` or `.` (`transactions_2024.csv`)."""
    stem = re.split(r"[_.]", PurePosixPath(filename).name, maxsplit=1)[0]
    return normalize_dataset(stem) or "data"


def date_partition(day: date) -> str:
    return f"{YEAR}={day.year:04d}/{MONTH}={day.month:02d}/{DAY}={day.day:02d}"


def raw_key(dataset: str, filename: str, upload_day: date) -> str:
    return f"{dataset}/{date_partition(upload_day)}/{PurePosixPath(filename).name}"


def _file_name(source: SourceObject) -> str:
    return f"{safe_token(source.stem, 60)}-{source.object_id}.parquet"


def staged_key(dataset: str, source: SourceObject) -> str:
    return f"{STAGING_PREFIX}/{dataset}/{_file_name(source)}"


def day_rows_key(dataset: str, source: SourceObject) -> str:
    """Trusted's hand-over to Delivery of a file's small days' rows, in one object."""
    return staged_key(dataset, source).removesuffix(".parquet") + ".days.parquet"


def trusted_prefix(dataset: str, day: date) -> str:
    return f"{dataset}/{date_partition(day)}/"


def trusted_key(dataset: str, day: date, source: SourceObject) -> str:
    return trusted_prefix(dataset, day) + _file_name(source)


# Each source object's share of its days' summaries (one object, a row group of rows per day),
# outside the dataset's table location.
PARTIALS_PREFIX = "_summaries"


def partials_key(dataset: str, source: SourceObject) -> str:
    return f"{PARTIALS_PREFIX}/{dataset}/{_file_name(source)}"


# Lineage lives in DELIVERY: JSON manifests per execution, and the `lineage` table's Parquet.
LINEAGE_MANIFESTS = "_lineage/manifests"
LINEAGE_RECORDS = "_lineage/records"

# Iceberg tables (sluice.tables): one Glue database per layer, one table per dataset, its data
# and metadata under the layer's bucket at `_tables/<dataset>/` (no dataset starts with `_`).
TABLES_PREFIX = "_tables"
TABLE_DATABASE_PREFIX = "sluice"


def table_database(layer: str) -> str:
    """The Glue database of a layer's tables (`sluice_trusted`)."""
    return f"{TABLE_DATABASE_PREFIX}_{layer}"


def table_prefix(dataset: str) -> str:
    return f"{TABLES_PREFIX}/{dataset}/"


def table_location(bucket: str, dataset: str) -> str:
    return f"s3://{bucket}/{table_prefix(dataset)}".removesuffix("/")


def source_file(source: SourceObject) -> str:
    """The `source_file` a row of `source` carries: the object's location, not its version."""
    return f"s3://{source.bucket}/{source.key}"


def day_partition_values(day: date) -> tuple[str, str, str]:
    """`year`, `month`, `day` of `day`, as the partition columns spell them."""
    return f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}"


def record_type_prefix(dataset: str, record_type: str) -> str:
    """Where a DELIVERY record type's files are, each under its day's folder."""
    return f"{dataset}/{RECORD_TYPE}={record_type}/"


def delivery_key(dataset: str, record_type: str, day: date, source: SourceObject | None) -> str:
    name = _file_name(source) if source else f"{record_type.lower()}.parquet"
    return f"{record_type_prefix(dataset, record_type)}{date_partition(day)}/{name}"


def quarantine_rows_key(dataset: str, day: date, source: SourceObject) -> str:
    return f"{dataset}/rows/{date_partition(day)}/{_file_name(source)}"


def quarantine_file_prefix(dataset: str, source: SourceObject) -> str:
    return f"{dataset}/files/{safe_token(source.stem, 60)}-{source.object_id}/"


_PARTITION = re.compile(rf"{YEAR}=(\d{{4}})/{MONTH}=(\d{{2}})/{DAY}=(\d{{2}})/")


def day_of_key(key: str) -> date | None:
    match = _PARTITION.search(key)
    if not match:
        return None
    return date(int(match[1]), int(match[2]), int(match[3]))

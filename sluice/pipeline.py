"""The stages as the Lambdas run them: read pointers, move bytes through S3, call stage logic.

Each function takes the state machine's small state and returns the section it adds to it:
pointers (bucket + key) and counts, never rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from sluice import lake
from sluice.aws import ObjectStore, RangedReader, StreamingUpload
from sluice.config import CONTRACTS_DIR, Settings
from sluice.contracts import (
    MAX_CONTRACT_BYTES,
    Contract,
    ContractError,
    find_contract,
    load_contract_bytes,
    parse_contract,
)
from sluice.errors import SluiceDataError, SluiceError, SluiceTransientError
from sluice.failures import as_data_error
from sluice.formats import (
    ReadHints,
    ReadLimits,
    SheetReport,
    limit_format_of_file,
    limit_format_of_name,
    open_file,
)
from sluice.grants import INFERRED_CONTRACT
from sluice.lake import SourceObject
from sluice.lazy import LazyModule
from sluice.memory import use_returning_pool
from sluice.prefetch import prefetch
from sluice.stages.validate import check_columns, sample_of

if TYPE_CHECKING:
    from sluice.stages import delivery as delivery_stage
    from sluice.stages import trusted as trusted_stage
    from sluice.starter import StartOutcome as StartOutcome
    from sluice.starter import start_executions as start_executions
else:
    # Each Lambda runs one stage: the Trusted and Delivery handlers import their stage's logic
    # at init, and no other Lambda imports it.
    delivery_stage = LazyModule("sluice.stages.delivery")
    trusted_stage = LazyModule("sluice.stages.trusted")

CONTRACT_METADATA = b"sluice.contract"
PARQUET_COMPRESSION = "zstd"
# User contracts in the RAW bucket (`_contracts/<dataset>.yaml`) win over the bundled ones.
RAW_CONTRACTS_PREFIX = "_contracts/"
# The starter's edge lives in sluice.starter; these names are still found here, without the
# workflow stages' Lambdas importing it.
_STARTER_NAMES = ("StartOutcome", "start_executions")


def __getattr__(name: str) -> object:
    if name in _STARTER_NAMES:
        from sluice import starter

        return getattr(starter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- helpers


def _write_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=PARQUET_COMPRESSION, row_group_size=1 << 20)
    return sink.getvalue()


def _read_parquet(store: ObjectStore, bucket: str, key: str) -> pa.Table:
    return delivery_stage.read_parquet_bytes(store.get_bytes(bucket, key))


@dataclass
class _Outputs:
    """Puts a stage's objects and counts their bytes as written: the stage's `bytes_out`
    (from any of the transfer pool's threads)."""

    store: ObjectStore
    byte_count: int = 0
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def count(self, size: int) -> None:
        with self._lock:
            self.byte_count += size

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.store.put_bytes(bucket, key, body, content_type)
        self.count(len(body))

    def put_file(self, bucket: str, key: str, path: Path) -> None:
        self.store.put_file(bucket, key, path)
        self.count(path.stat().st_size)


PARQUET = "application/vnd.apache.parquet"
STAGED_COMPRESSION = "lz4"  # internal hand-over to Trusted: fast beats small
STAGED_ROWS = 1 << 17


@dataclass(frozen=True)
class Staged:
    format: str
    rows: int
    contract: Contract
    sheets: SheetReport | None = None


def read_hints(contract: Contract | None) -> ReadHints:
    """What the contract says about reading the dataset's files (nothing, without one)."""
    if contract is None:
        return ReadHints()
    return ReadHints(
        encoding=contract.encoding,
        sheet=contract.sheet,
        columns=tuple(contract.names),
        required=tuple(contract.required),
    )


def stage_file(
    path: Path,
    name: str,
    dataset: str,
    contract: Contract | None,
    staged_path: Path,
    limits: ReadLimits | None = None,
    adopt: Callable[[Contract], Contract] | None = None,
) -> Staged:
    """Validate's work on a local file: read it as batches, check it against its contract
    (or infer one, which `adopt` turns into the dataset's), and stream it into a staged
    Parquet file that carries the contract."""
    use_returning_pool()
    opened = open_file(path, name, limits, read_hints(contract))
    # The file is read ahead on a thread while batches are judged and written.
    batches = prefetch(opened.batches)
    try:
        sample, rest = sample_of(batches)
        judged_by = check_columns(opened.schema, sample, dataset, contract, adopt)
        metadata = {CONTRACT_METADATA: json.dumps(judged_by.to_dict()).encode()}
        rows = _write_staged(staged_path, opened.schema.with_metadata(metadata), sample, rest)
    finally:
        batches.close()
    if rows == 0:
        raise SluiceDataError("HEADER_ONLY", "file has a header but no rows")
    return Staged(opened.format, rows, judged_by, opened.sheets)


def _write_staged(
    path: Path, schema: pa.Schema, sample: pa.Table, rest: Iterator[pa.RecordBatch]
) -> int:
    """Stream the file's batches into the staged Parquet file; the number of rows."""
    rows = 0
    pending: list[pa.RecordBatch] = []
    # Internal hand-over: no dictionaries or statistics, nobody queries this file.
    options = {"use_dictionary": False, "write_statistics": False}
    with pq.ParquetWriter(path, schema, compression=STAGED_COMPRESSION, **options) as writer:
        # Readers hand over small batches; Trusted reads large ones, so row groups are large.
        for batch in itertools.chain(sample.to_batches(), rest, [None]):
            if batch is not None and batch.num_rows:
                pending.append(batch.replace_schema_metadata(schema.metadata))
                rows += batch.num_rows
            if pending and (batch is None or sum(b.num_rows for b in pending) >= STAGED_ROWS):
                writer.write_table(pa.Table.from_batches(pending, schema))
                pending = []
    return rows


def _put_days(
    out: _Outputs,
    bucket: str,
    files: dict[date, trusted_stage.DayFile],
    key_of: Callable[[date], str],
) -> list[dict[str, Any]]:
    """Upload one Parquet object per day, through the store's transfer pool; the pointers
    with their row counts and sizes."""

    def put(day: date) -> dict[str, Any]:
        item, key = files[day], key_of(day)
        out.put_file(bucket, key, item.path)
        size = item.path.stat().st_size
        return {
            "bucket": bucket,
            "key": key,
            "day": day.isoformat(),
            "rows": item.rows,
            "bytes": size,
        }

    return out.store.each(put, sorted(files))


def _contract_object(store: ObjectStore, bucket: str, key: str) -> Contract | None:
    """The contract kept at `s3://bucket/key`, or None; never more than the size cap is read."""
    data = store.get_bytes_if_exists(bucket, key, limit=MAX_CONTRACT_BYTES + 1)
    return None if data is None else load_contract_bytes(data, f"s3://{bucket}/{key}")


def _inferred_before(store: ObjectStore, settings: Settings, dataset: str) -> Contract | None:
    """The contract inferred from the dataset's first file: later files are typed the same way,
    so one day's files can be summarized together."""
    found = _contract_object(store, settings.trusted_bucket, _inferred_key(dataset))
    return None if found is None else dataclasses.replace(found, inferred=True)


def _inferred_key(dataset: str) -> str:
    return f"{dataset}/{INFERRED_CONTRACT}"


def _adopter(out: _Outputs, settings: Settings, dataset: str) -> Callable[[Contract], Contract]:
    """How a file of a dataset without a contract adopts one: the first file's inferred
    contract is put where none is (a conditional write), and every other file, however close
    behind, is judged by the one that was put."""

    def adopt(inferred: Contract) -> Contract:
        key = _inferred_key(dataset)
        if not inferred.columns:
            raise SluiceDataError(
                "INVALID_CONTRACT",
                f"{dataset} has no contract and no column of the file can be one of its columns: "
                "each is reserved or not a safe name (fix: rename the file's columns as "
                "docs/contracts.md, Loading limits, says, or write the dataset's contract)",
            )
        body = inferred.to_yaml().encode()
        try:
            # What is adopted must load again for every later file, as any contract does.
            load_contract_bytes(body, f"s3://{settings.trusted_bucket}/{key}")
        except ContractError as exc:
            raise SluiceDataError("INVALID_CONTRACT", str(exc), contract=exc.source) from exc
        if out.store.put_if(settings.trusted_bucket, key, body, "application/yaml", None):
            out.count(len(body))
            return inferred
        try:
            adopted = _inferred_before(out.store, settings, dataset)
        except ContractError as exc:
            raise SluiceDataError("INVALID_CONTRACT", str(exc), contract=exc.source) from exc
        if adopted is None:
            # Another file's write is still in flight (S3 answered 409): it will be there.
            raise SluiceTransientError(f"{key}: being adopted by another file, not yet readable")
        return adopted

    return adopt


def contract_for(
    store: ObjectStore, settings: Settings, dataset: str, contracts_dir: Path
) -> Contract | None:
    """The dataset's contract: RAW `_contracts/<dataset>.yaml` first, then the bundled one.

    A contract that does not load is the file's problem to report (INVALID_CONTRACT), so the
    file is quarantined with the contract's error and can be rerun once the contract is fixed.
    """
    contract: Contract | None = None
    try:
        for suffix in (".yaml", ".yml"):
            key = f"{RAW_CONTRACTS_PREFIX}{dataset}{suffix}"
            contract = _contract_object(store, settings.raw_bucket, key)
            if contract is not None:
                break
        else:
            contract = find_contract(dataset, contracts_dir) or _inferred_before(
                store, settings, dataset
            )
    except ContractError as exc:
        raise SluiceDataError("INVALID_CONTRACT", str(exc), contract=exc.source) from exc
    if contract is not None and contract.dataset != dataset:
        raise SluiceDataError(
            "INVALID_CONTRACT",
            f"{contract.source}: dataset: is {contract.dataset!r}, expected {dataset!r} "
            f"(fix: set 'dataset: {dataset}')",
        )
    return contract


def quarantine_file(
    store: ObjectStore,
    settings: Settings,
    dataset: str,
    source: SourceObject,
    error: SluiceDataError,
) -> str:
    """Copy the RAW object aside with a `reason.json`; RAW itself is never touched."""
    prefix = lake.quarantine_file_prefix(dataset, source)
    store.copy(
        source.bucket,
        source.key,
        settings.quarantine_bucket,
        prefix + source.name,
        source.version_id,
    )
    reason = {
        **error.to_dict(),
        "source": source.to_dict(),
        "dataset": dataset,
        "quarantined_at": datetime.now(UTC).isoformat(),
    }
    store.put_bytes(
        settings.quarantine_bucket,
        prefix + "reason.json",
        json.dumps(reason, indent=2, default=str).encode(),
        "application/json",
    )
    return prefix


def _quarantine_bad_input(
    store: ObjectStore,
    settings: Settings,
    dataset: str,
    source: SourceObject,
    exc: Exception,
    stage: str,
) -> None:
    """At a stage's edge: if `exc` is bad input (`sluice.failures`, the one mapping), quarantine
    the file with its reason and raise it as the `SluiceDataError` it stands for; else return,
    and the caller re-raises `exc` as it is (AWS, throttling, memory, a bug)."""
    error = as_data_error(exc, stage)
    if error is None:
        return
    quarantine_file(store, settings, dataset, source, error)
    if error is not exc:
        raise error from exc


# --------------------------------------------------------------------------- validate


def _check_size(size: int, fmt: str | None, settings: Settings) -> int:
    """The limit of a file of `fmt`; FILE_TOO_LARGE, saying what to raise, if `size` is over.

    The limits come from the stage sizes (`sluice.sizing`): a file over its format's would
    run its functions out of memory, /tmp or time, so it is refused before it is read."""
    limit = settings.file_limit(fmt)
    if size > limit:
        named = f"{fmt} limit" if fmt else "largest limit (of any format)"
        setting = f"max_file_bytes_by_format.{fmt}" if fmt else "max_file_bytes"
        raise SluiceDataError(
            "FILE_TOO_LARGE",
            f"{size} bytes is over the {named} of {limit}; raise {setting} "
            "(with stage sizes that serve it)",
            size=size,
            format=fmt,
            limit=limit,
            raise_setting=setting,
        )
    return limit


SOURCE_GONE = "SOURCE_GONE"


@contextlib.contextmanager
def _source_gone(source: SourceObject) -> Iterator[None]:
    """An object deleted (or a version removed) after its execution started: a data error of its
    own, not retried, with no quarantine copy, since there is nothing left to copy."""
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        if code in ("404", "NoSuchKey", "NotFound", "NoSuchVersion"):
            raise SluiceDataError(
                SOURCE_GONE,
                "the object, or the version the event named, is no longer in RAW",
                key_hash=source.object_id,
            ) from exc
        raise


def validate(
    state: dict[str, Any],
    store: ObjectStore,
    settings: Settings,
    contracts_dir: Path = CONTRACTS_DIR,
) -> dict[str, Any]:
    source = SourceObject.from_dict(state["source"])
    dataset = str(state["dataset"])
    out = _Outputs(store)
    try:
        with _source_gone(source):
            size = int(store.head(source.bucket, source.key, source.version_id)["ContentLength"])
        # Before the download: what the name says (a gzip's object size is a lower bound of
        # what it inflates to); a name that says nothing is held to the largest limit, which
        # still fits /tmp, and to its own format's once its first bytes have said which.
        _check_size(size, limit_format_of_name(source.name), settings)
        with tempfile.TemporaryDirectory(prefix="sluice-") as tmp:
            # The local names are fixed: a key is never turned into a path.
            path = Path(tmp) / "object"
            with _source_gone(source):
                store.download(source.bucket, source.key, path, source.version_id)
            fmt = limit_format_of_file(path, source.name)
            limit = _check_size(size, fmt, settings)
            staged_path = Path(tmp) / "staged.parquet"
            staged = stage_file(
                path,
                source.name,
                dataset,
                contract_for(store, settings, dataset, contracts_dir),
                staged_path,
                ReadLimits(max_inflated_bytes=limit, limit_format=fmt),
                _adopter(out, settings, dataset),
            )
            key = lake.staged_key(dataset, source)
            out.put_file(settings.trusted_bucket, key, staged_path)
    except SluiceDataError as error:
        if error.reason != SOURCE_GONE:  # nothing left to copy aside
            quarantine_file(store, settings, dataset, source, error)
        raise
    except Exception as exc:
        _quarantine_bad_input(store, settings, dataset, source, exc, "validate")
        raise
    contract = staged.contract
    # An xlsx file says which sheets it was read from, and why the others were skipped.
    sheets = {} if staged.sheets is None else {"sheets": staged.sheets.to_dict()}
    return {
        "staged": {"bucket": settings.trusted_bucket, "key": key},
        "format": staged.format,
        "rows_in": staged.rows,
        "bytes_in": size,
        "bytes_out": out.byte_count,
        "contract": {
            "dataset": contract.dataset,
            "version": contract.version,
            "inferred": contract.inferred,
        },
        **sheets,
    }


# --------------------------------------------------------------------------- trusted


def _manifest_key(dataset: str, source: SourceObject, stage: str) -> str:
    return lake.staged_key(dataset, source).removesuffix(".parquet") + f".{stage}.json"


def _previous_outputs(store: ObjectStore, bucket: str, key: str) -> dict[str, Any]:
    previous = store.get_bytes_if_exists(bucket, key)
    return json.loads(previous) if previous else {}


def _trusted_section(
    manifest: dict[str, Any], pointer: dict[str, str], bytes_out: int
) -> dict[str, Any]:
    return {
        "manifest": pointer,
        **manifest["counts"],
        "days": len(manifest["trusted"]),
        "bytes_out": bytes_out,
        "mean_quality_score": manifest.get("mean_quality_score"),
    }


def trusted(state: dict[str, Any], store: ObjectStore, settings: Settings) -> dict[str, Any]:
    source = SourceObject.from_dict(state["source"])
    dataset = str(state["dataset"])
    staged = state["validate"]["staged"]
    out = _Outputs(store)
    ctx = trusted_stage.RunContext(
        source_file=f"s3://{source.bucket}/{source.key}",
        source_version=source.version_id or source.etag.strip('"'),
        pipeline_version=settings.pipeline_version,
        processed_at=datetime.now(UTC).replace(microsecond=0),
    )
    manifest_key = _manifest_key(dataset, source, "trusted")
    pointer = {"bucket": settings.trusted_bucket, "key": manifest_key}
    with tempfile.TemporaryDirectory(prefix="sluice-") as tmp:
        staged_path = Path(tmp) / "staged.parquet"
        if not store.download_if_exists(staged["bucket"], staged["key"], staged_path):
            # The staged file is removed once its outputs are in: a repeat of a Trusted that
            # finished (a retried invocation, a redrive) answers with what that run wrote.
            done = _previous_outputs(store, settings.trusted_bucket, manifest_key)
            if done.get("source") != source.to_dict():
                raise SluiceError(
                    f"the staged file {staged['key']} is not there: run the file from Validate"
                )
            return _trusted_section(done, pointer, 0)
        metadata = pq.read_schema(staged_path).metadata or {}
        try:
            contract = parse_contract(
                json.loads(metadata[CONTRACT_METADATA]), f"staged:{staged['key']}"
            )
            result = trusted_stage.transform_file(staged_path, contract, ctx, Path(tmp) / "work")
        except Exception as exc:
            _quarantine_bad_input(store, settings, dataset, source, exc, "trusted")
            raise
        outputs = _put_days(
            out,
            settings.trusted_bucket,
            result.trusted,
            lambda day: lake.trusted_key(dataset, day, source),
        )
        quarantined = _put_days(
            out,
            settings.quarantine_bucket,
            result.quarantined,
            lambda day: lake.quarantine_rows_key(dataset, day, source),
        )
        day_rows = _put_day_rows(out, settings.trusted_bucket, dataset, source, result.trusted)
    # The file's share of each of its days' summaries, in one object (a row group per day), so
    # Delivery reads a few rows per day instead of every trusted row of the day.
    partials = _put_partials(out, settings.trusted_bucket, dataset, source, result, contract)

    # A new version of the object replaces its own rows: drop outputs the last run wrote that
    # this run did not (days that no longer appear in the file).
    previous = _previous_outputs(store, settings.trusted_bucket, manifest_key)
    written = {o["key"] for o in outputs + quarantined + partials + day_rows}
    stale = [
        o
        for o in previous.get("trusted", [])
        + previous.get("quarantined", [])
        + previous.get("partials", [])
        + previous.get("day_rows", [])
        if o["key"] not in written
    ]
    store.each(lambda item: store.delete(item["bucket"], item["key"]), stale)
    manifest: dict[str, Any] = {
        "source": source.to_dict(),
        "dataset": dataset,
        "contract": contract.to_dict(),
        "trusted": outputs,
        "quarantined": quarantined,
        "partials": partials,
        "day_rows": day_rows,
        "stale_days": sorted(
            {o["day"] for o in previous.get("trusted", []) if o["key"] not in written}
        ),
        "counts": result.counts(),
        "mean_quality_score": result.mean_quality_score,
        "days": {day.isoformat(): q.to_dict() for day, q in sorted(result.days.items())},
        "stale_quality_days": sorted(
            set(previous.get("days", {})) - {d.isoformat() for d in result.days}
        ),
        "quality": {
            "reasons": result.reasons,
            "flags": result.flags,
            "nulls": result.nulls,
            "outliers": result.outliers,
        },
    }
    out.put_bytes(
        settings.trusted_bucket, manifest_key, json.dumps(manifest).encode(), "application/json"
    )
    # Its outputs are in: the hand-over has served (the bucket's lifecycle rule stays as the
    # net for a run that stopped before this).
    store.delete(staged["bucket"], staged["key"])
    return _trusted_section(manifest, pointer, out.byte_count)


PARTIAL_DAY = "summary_date"

# A file of at least this many small days (`SMALL_DAY_BYTES`) also hands their rows to Delivery
# in one object, at most `DAY_ROWS_MAX` rows of them: Delivery then reads one object instead of
# a TRUSTED day file per day (a backfill of 3,000 days: 3,000 GETs fewer).
DAY_ROWS_MIN_DAYS = 16
DAY_ROWS_MAX = 1 << 18
# The hand-over's file metadata: whose rows it holds (a stale one is not used).
DAY_ROWS_SOURCE = "sluice.source"


def _put_day_rows(
    out: _Outputs,
    bucket: str,
    dataset: str,
    source: SourceObject,
    files: dict[date, trusted_stage.DayFile],
) -> list[dict[str, Any]]:
    """The rows of the file's small days, day after day, in one object (its pointer, with the
    days in it, in a list as the other outputs are; none for a file of few days)."""
    small = [d for d in sorted(files) if files[d].path.stat().st_size <= SMALL_DAY_BYTES]
    days: list[date] = []
    rows = 0
    for day in small:
        if rows + files[day].rows > DAY_ROWS_MAX:
            break
        days.append(day)
        rows += files[day].rows
    if len(days) < DAY_ROWS_MIN_DAYS:
        return []
    table = pa.concat_tables([pq.ParquetFile(files[d].path).read() for d in days])
    metadata = {DAY_ROWS_SOURCE: json.dumps(source.to_dict(), sort_keys=True)}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    key = lake.day_rows_key(dataset, source)
    out.put_bytes(bucket, key, _write_parquet(table), PARQUET)
    return [
        {
            "bucket": bucket,
            "key": key,
            "days": [d.isoformat() for d in days],
            "rows": [files[d].rows for d in days],
        }
    ]


def _day_rows(
    store: ObjectStore, manifest: dict[str, Any], source: SourceObject
) -> dict[str, pa.Table]:
    """The small days' rows Trusted handed over, by day; none where there is no hand-over,
    it is gone (a rerun after it was used) or it is another run's: those days are read from
    their TRUSTED day files instead."""
    found: dict[str, pa.Table] = {}
    for pointer in manifest.get("day_rows", []):
        body = store.get_bytes_if_exists(pointer["bucket"], pointer["key"])
        if body is None:
            continue
        table = delivery_stage.read_parquet_bytes(body)
        metadata = table.schema.metadata or {}
        whose = json.loads(metadata.get(DAY_ROWS_SOURCE.encode(), b"null"))
        if whose != source.to_dict() or table.num_rows != sum(pointer["rows"]):
            continue
        table = table.replace_schema_metadata(
            {k: v for k, v in metadata.items() if k != DAY_ROWS_SOURCE.encode()} or None
        )
        offset = 0
        for day, rows in zip(pointer["days"], pointer["rows"], strict=True):
            found[day] = table.slice(offset, rows)
            offset += rows
    return found


def _put_partials(
    out: _Outputs,
    bucket: str,
    dataset: str,
    source: SourceObject,
    result: trusted_stage.TrustedResult,
    contract: Contract,
) -> list[dict[str, Any]]:
    """Put the file's partial summaries of all its days as one object (`summary_date` says
    whose rows); its pointer, in a list as the other outputs are."""
    days = sorted(result.trusted)
    tables = []
    for day in days:
        partial = result.trusted[day].partial
        assert partial is not None  # every trusted day file carries its share
        tables.append(
            partial.add_column(0, PARTIAL_DAY, pa.array([day] * partial.num_rows, pa.date32()))
        )
    schema = delivery_stage.partials_schema(contract)
    table = pa.concat_tables(tables).cast(schema) if tables else schema.empty_table()
    key = lake.partials_key(dataset, source)
    out.put_bytes(bucket, key, _write_parquet(table), PARQUET)
    return [{"bucket": bucket, "key": key, "days": len(days), "rows": table.num_rows}]


# --------------------------------------------------------------------------- delivery


SUMMARY_ATTEMPTS = 10


@dataclass(frozen=True)
class _KeptSummary:
    """One day's summary after this run's contribution: its rows (None: the day has none
    left) and the bytes this run put into S3 for it."""

    rows: int | None
    bytes_written: int


# A file of at least this many days lists which of them have a summary before it merges
# (one LIST per 1,000 days): the days without one are put without a read first.
LIST_SUMMARY_DAYS = 8


def _new_days(
    store: ObjectStore, bucket: str, dataset: str, days: list[date]
) -> Callable[[date], bool]:
    """Whether each of `days` (sorted) surely has no DAILY_SUMMARY yet, from one listing of
    the summaries between the first and the last of them. A day the listing did not reach, or
    any day of a file of fewer than `LIST_SUMMARY_DAYS` days, is taken to have one (read first:
    the safe guess). Only a guess of which request to make first, never of the result."""
    if len(days) < LIST_SUMMARY_DAYS:
        return lambda day: False

    def key(day: date) -> str:
        return lake.delivery_key(dataset, delivery_stage.DAILY_SUMMARY, day, None)

    prefix = lake.record_type_prefix(dataset, delivery_stage.DAILY_SUMMARY)
    after = f"{prefix}{lake.date_partition(days[0])}/"  # (the first day's folder: before its key)
    found, covered = store.list_between(
        bucket, prefix, after, key(days[-1]), pages=len(days) // 1000 + 1
    )
    have = set(found)
    return lambda day: key(day) <= covered and key(day) not in have


class _Partials:
    """Source objects' partial summaries by day, each object read once per delivery unless a
    day state says it changed since (from any of the transfer pool's threads)."""

    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self.store, self.bucket = store, bucket
        self._found: dict[str, dict[date, tuple[str, pa.Table]]] = {}
        self._reading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def day(self, key: str, day: date, expected: str | None = None) -> tuple[str, pa.Table] | None:
        """The object's partial of `day` (digest, rows), None when it has no rows of the day.

        `expected`: the digest a day state holds for it (`REMOVED` for none). What was read
        before is used only if it matches; otherwise the object is read again, as it is now.
        """
        with self._lock:
            reading = self._reading.setdefault(key, threading.Lock())
        with reading:  # (days asking for one object at once wait for one read of it)
            found = self._found.get(key)
            if found is not None:
                have = found.get(day)
                if expected is None or (have[0] if have else delivery_stage.REMOVED) == expected:
                    return have
            body = self.store.get_bytes_if_exists(self.bucket, key)
            table = None if body is None else delivery_stage.read_parquet_bytes(body)
            # (a contribution kept from one day's partial object: its day is in its key)
            found = (
                {} if table is None else delivery_stage.split_partials(table, lake.day_of_key(key))
            )
            self._found[key] = found
            return found.get(day)


def _next_state(
    state: delivery_stage.DayState | None,
    key: str,
    mine: tuple[str, pa.Table] | None,
    contract: Contract,
    day_partials: Callable[[delivery_stage.DayState], dict[str, tuple[str, pa.Table]]],
) -> delivery_stage.DayState:
    """The day's state with this file's contribution (`mine`: its partial's digest and rows,
    None when the file has no rows of the day any more) in it. `day_partials(state)`: the
    day's partial of every contribution the state holds, as they are now."""
    state = state or delivery_stage.DayState.empty()
    have = state.contributions.get(key)
    if mine is None:
        if have is None:
            return state.without(key)  # a tombstone: a late merge of its old rows recomputes
        if have == delivery_stage.REMOVED:
            return state.unchanged()
        return state.recomputed(day_partials(state), contract)
    content, partial = mine
    if have is None:
        return state.merged(key, content, partial, contract)
    if have == content:
        return state.unchanged()
    # Replaced (a new version) or gone meanwhile: minima and maxima cannot be subtracted.
    return state.recomputed(day_partials(state), contract)


def _keep_summary(
    store: ObjectStore,
    settings: Settings,
    contract: Contract,
    dataset: str,
    day: date,
    source: SourceObject,
    partials: _Partials,
    new_day: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> _KeptSummary:
    """Merge this file's share into its day's summary, in O(this file).

    The day's DAILY_SUMMARY object carries the day's state (exact totals and the contributions
    they include) in its file metadata. It is read with its ETag, this file's partial merged
    in, and the summary put back only if nobody changed it meanwhile (If-Match, or
    If-None-Match where there was none); a delivery that lost the race retries from a fresh
    read. Only a contribution replaced or removed makes it read the partials of the day's other
    contributions (minima and maxima cannot be subtracted). A `new_day` (no summary when the
    day's summaries were listed) is first put where none is, without a read.
    """
    bucket = settings.delivery_bucket
    key = lake.delivery_key(dataset, delivery_stage.DAILY_SUMMARY, day, None)
    partial_key = lake.partials_key(dataset, source)
    mine = partials.day(partial_key, day)

    def day_partials(state: delivery_stage.DayState) -> dict[str, tuple[str, pa.Table]]:
        # Each contribution's partial as the state knows it, or as it is now where the state
        # says otherwise (a tombstone, a newer version): never one older than the state.
        keys = [k for k, d in state.contributions.items() if d != delivery_stage.REMOVED]
        found = {
            k: partials.day(k, day, state.contributions.get(k))
            for k in sorted({*keys, partial_key})
        }
        return {k: v for k, v in found.items() if v is not None}

    guess = new_day
    for attempt in range(SUMMARY_ATTEMPTS):
        found = None if guess else store.get_if_exists(bucket, key)
        state = delivery_stage.DayState.of_summary(found[0], contract) if found else None
        new = _next_state(state, partial_key, mine, contract, day_partials)
        body = new.summary_object(contract, day)
        if store.put_if(bucket, key, body, PARQUET, found[1] if found else None):
            return _KeptSummary(new.summary_rows(), len(body))
        if guess:  # the day got a summary since it was listed: read it, at once
            guess = False
            continue
        if attempt + 1 < SUMMARY_ATTEMPTS:
            sleep(delivery_stage.backoff(attempt))
    raise SluiceTransientError(f"the summary of {day} kept changing; retry")


def _put_table(
    out: _Outputs, bucket: str, key: str, table: pa.Table, record_type: str, day: str
) -> dict[str, Any]:
    out.put_bytes(bucket, key, _write_parquet(table), PARQUET)
    return {
        "bucket": bucket,
        "key": key,
        "record_type": record_type,
        "day": day,
        "rows": table.num_rows,
    }


# A DETAIL row group has at least this many rows (but a day's last), gathered from batches
# decoded a few at a time: what Delivery holds is about one DETAIL row group, whatever the day
# file's size. (Measured on a 3M-row day: 128k-row groups made the file 34% larger than 1M-row
# groups, 512k-row groups 5%, for about half the Arrow memory of 1M-row groups.)
DETAIL_ROWS = 1 << 19
DETAIL_BATCH_ROWS = 1 << 16
# A TRUSTED day file up to this size is read whole and its DETAIL put in one request; several
# are made at once (the store's transfer pool), so what Delivery holds stays about one DETAIL
# row group's worth either way.
SMALL_DAY_BYTES = 1 << 20


def _is_small(trusted_file: dict[str, Any]) -> bool:
    return int(trusted_file.get("bytes", SMALL_DAY_BYTES + 1)) <= SMALL_DAY_BYTES


def _put_detail(
    out: _Outputs,
    trusted_file: dict[str, Any],
    bucket: str,
    key: str,
    delivered_at: datetime,
    pipeline_version: str,
    rows_of_day: pa.Table | None = None,
) -> dict[str, Any]:
    """One DETAIL file from one TRUSTED day file, a row group at a time.

    A daily extract puts a whole file's rows on one day, so a day file can be as large as the
    file: it is read by ranged GETs one row group at a time and the DETAIL file is uploaded in
    parts as it is written, so Delivery holds about one DETAIL row group and no `/tmp`. A small
    day file (`_is_small`) is one GET and one PUT, or only the PUT where Trusted handed its
    rows over (`rows_of_day`).
    """
    if _is_small(trusted_file):
        table = (
            rows_of_day
            if rows_of_day is not None
            else _read_parquet(out.store, trusted_file["bucket"], trusted_file["key"])
        )
        detail = delivery_stage.detail(table, delivered_at, pipeline_version)
        return _put_table(out, bucket, key, detail, delivery_stage.DETAIL, trusted_file["day"])
    # Freed row groups go back to the system, or the pool would grow with the day file anyway.
    use_returning_pool()
    reader = RangedReader(out.store, trusted_file["bucket"], trusted_file["key"])
    # pre_buffer: each row group's column chunks are fetched as one coalesced range.
    day_file = pq.ParquetFile(reader, pre_buffer=True)
    schema = delivery_stage.detail_schema(day_file.schema_arrow)
    rows = 0
    with StreamingUpload(out.store, bucket, key, PARQUET) as upload:
        with pq.ParquetWriter(upload, schema, compression=PARQUET_COMPRESSION) as writer:
            pending: list[pa.Table] = []
            # One row group's bytes at a time (a reader over several would buffer them all),
            # decoded in small batches and gathered into DETAIL row groups.
            batches = (
                batch
                for index in range(day_file.num_row_groups)
                for batch in day_file.iter_batches(batch_size=DETAIL_BATCH_ROWS, row_groups=[index])
            )
            for batch in batches:
                part = delivery_stage.detail(
                    pa.Table.from_batches([batch]), delivered_at, pipeline_version
                )
                pending.append(part)
                rows += part.num_rows
                if sum(p.num_rows for p in pending) >= DETAIL_ROWS:
                    writer.write_table(pa.concat_tables(pending), row_group_size=1 << 20)
                    pending = []
            if pending:
                writer.write_table(pa.concat_tables(pending), row_group_size=1 << 20)
        upload.complete()
    out.count(upload.byte_count)
    return {
        "bucket": bucket,
        "key": key,
        "record_type": delivery_stage.DETAIL,
        "day": trusted_file["day"],
        "rows": rows,
    }


def deliver(state: dict[str, Any], store: ObjectStore, settings: Settings) -> dict[str, Any]:
    started = time.perf_counter()
    source = SourceObject.from_dict(state["source"])
    dataset = str(state["dataset"])
    pointer = state["trusted"]["manifest"]
    manifest = json.loads(store.get_bytes(pointer["bucket"], pointer["key"]))
    contract = parse_contract(manifest["contract"], f"manifest:{pointer['key']}")
    delivered_at = datetime.now(UTC).replace(microsecond=0)
    bucket = settings.delivery_bucket
    version = settings.pipeline_version
    out = _Outputs(store)

    def key_of(record_type: str, day: str, per_source: bool = True) -> str:
        return lake.delivery_key(
            dataset, record_type, date.fromisoformat(day), source if per_source else None
        )

    lineage_columns = {
        "source_file": f"s3://{source.bucket}/{source.key}",
        "source_version": source.version_id or source.etag.strip('"'),
        "execution": str(state.get("execution", "")),
        "contract_version": contract.version,
    }
    trusted_files = {item["day"]: item for item in manifest["trusted"]}
    quality_days: dict[str, Any] = manifest.get("days", {})
    stale_days = set(manifest.get("stale_days", []))
    stale_quality_days = set(manifest.get("stale_quality_days", []))
    # Each touched day's summary takes this file's share (or loses it): work in proportion to
    # this file, whatever else the day holds; exact however many files feed it, in any order.
    touched = set(trusted_files) | stale_days
    partials = _Partials(store, settings.trusted_bucket)
    day_rows = _day_rows(store, manifest, source)
    is_new = _new_days(store, bucket, dataset, sorted(date.fromisoformat(d) for d in touched))

    def one_day(day_text: str) -> list[dict[str, Any]]:
        """Everything this file puts into (or takes out of) one day of DELIVERY."""
        day = date.fromisoformat(day_text)
        written: list[dict[str, Any]] = []
        item = trusted_files.get(day_text)
        if item is not None and _is_small(item):  # (large ones are streamed one at a time)
            key = key_of(delivery_stage.DETAIL, day_text)
            handed = day_rows.get(day_text)
            written.append(_put_detail(out, item, bucket, key, delivered_at, version, handed))
        # QUALITY: per source object and day, from the Trusted manifest's counts.
        if day_text in quality_days:
            table = delivery_stage.quality(
                day, quality_days[day_text], lineage_columns, delivered_at, version
            )
            key = key_of(delivery_stage.QUALITY, day_text)
            written.append(_put_table(out, bucket, key, table, delivery_stage.QUALITY, day_text))
        # A new version of the object replaces its own rows: days it no longer has lose them.
        if day_text in stale_days:
            store.delete(bucket, key_of(delivery_stage.DETAIL, day_text))
        if day_text in stale_quality_days:
            store.delete(bucket, key_of(delivery_stage.QUALITY, day_text))
        if day_text in touched:
            kept = _keep_summary(
                store, settings, contract, dataset, day, source, partials, is_new(day)
            )
            # Counted as the objects it left: not once per compare-and-swap attempt.
            out.count(kept.bytes_written)
            if kept.rows is not None:
                written.append(
                    {
                        "bucket": bucket,
                        "key": key_of(delivery_stage.DAILY_SUMMARY, day_text, per_source=False),
                        "record_type": delivery_stage.DAILY_SUMMARY,
                        "day": day_text,
                        "rows": kept.rows,
                    }
                )
        return written

    # DETAIL of large day files first, each streamed alone; then every day's small work at
    # once through the store's transfer pool.
    outputs: list[dict[str, Any]] = [
        _put_detail(out, item, bucket, key_of(delivery_stage.DETAIL, day), delivered_at, version)
        for day, item in sorted(trusted_files.items())
        if not _is_small(item)
    ]
    days = sorted(set(trusted_files) | set(quality_days) | stale_days | stale_quality_days)
    outputs += [o for written in store.each(one_day, days) for o in written]
    order = {delivery_stage.DETAIL: 0, delivery_stage.QUALITY: 1, delivery_stage.DAILY_SUMMARY: 2}
    outputs.sort(key=lambda o: (order[o["record_type"]], o["day"]))

    # Lineage, written last: a manifest means every output of the run is in place.
    durations = {
        "validate": state.get("validate", {}).get("duration_ms"),
        "trusted": state.get("trusted", {}).get("duration_ms"),
        "delivery": round((time.perf_counter() - started) * 1000),
    }
    lineage = {
        "execution": str(state.get("execution", "")),
        "dataset": dataset,
        "source": source.to_dict(),
        "contract": {
            "dataset": contract.dataset,
            "version": contract.version,
            "inferred": contract.inferred,
        },
        "counts": manifest["counts"],
        "outputs": [{**o, "layer": "trusted"} for o in manifest["trusted"]]
        + [{**o, "layer": "quarantine"} for o in manifest["quarantined"]]
        + [{**o, "layer": "delivery"} for o in outputs],
        "durations_ms": durations,
        "delivered_at": delivered_at.isoformat(),
    }
    name = f"{lake.safe_token(source.stem, 60)}-{source.object_id}"
    records_key = f"{lake.LINEAGE_RECORDS}/{dataset}-{name}.parquet"
    out.put_bytes(
        bucket, records_key, _write_parquet(delivery_stage.lineage_table(lineage)), PARQUET
    )
    lineage_key = f"{lake.LINEAGE_MANIFESTS}/{dataset}/{name}.json"
    out.put_bytes(bucket, lineage_key, json.dumps(lineage, indent=2).encode(), "application/json")
    # The small days' rows have served (a rerun reads the TRUSTED day files; the bucket's
    # lifecycle rule stays as the net for a delivery that never finished).
    for pointer in manifest.get("day_rows", []):
        store.delete(pointer["bucket"], pointer["key"])
    return {
        "lineage": {"bucket": bucket, "key": lineage_key},
        "detail_files": sum(1 for o in outputs if o["record_type"] == delivery_stage.DETAIL),
        "summary_files": sum(
            1 for o in outputs if o["record_type"] == delivery_stage.DAILY_SUMMARY
        ),
        "quality_files": sum(1 for o in outputs if o["record_type"] == delivery_stage.QUALITY),
        "rows_out": sum(o["rows"] for o in outputs if o["record_type"] == delivery_stage.DETAIL),
        "bytes_out": out.byte_count,
    }

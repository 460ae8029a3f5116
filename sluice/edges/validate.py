"""Validate's edge: the RAW object read, checked against its contract, staged as Parquet."""

from __future__ import annotations

import contextlib
import itertools
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from sluice import lake
from sluice.config import CONTRACTS_DIR, Settings
from sluice.contracts import Contract
from sluice.edges.common import CONTRACT_METADATA, Outputs
from sluice.edges.contracts import adopter, contract_for
from sluice.edges.quarantine import quarantine_bad_input, quarantine_file
from sluice.errors import SluiceDataError
from sluice.formats import (
    ReadHints,
    ReadLimits,
    SheetReport,
    limit_format_of_file,
    limit_format_of_name,
    open_file,
)
from sluice.lake import SourceObject
from sluice.memory import use_returning_pool
from sluice.ports import StageStore
from sluice.prefetch import prefetch
from sluice.reasons import ReasonCode
from sluice.stages.validate import check_columns, sample_of
from sluice.state import ContractRef, ExecutionState, Pointer, ValidateSection

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
        rows = write_staged(staged_path, opened.schema.with_metadata(metadata), sample, rest)
    finally:
        batches.close()
    if rows == 0:
        raise SluiceDataError(ReasonCode.HEADER_ONLY, "file has a header but no rows")
    return Staged(opened.format, rows, judged_by, opened.sheets)


def write_staged(
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


def _check_size(size: int, fmt: str | None, settings: Settings) -> int:
    """The limit of a file of `fmt`; FILE_TOO_LARGE, saying what to raise, if `size` is over.

    The limits come from the stage sizes (`sluice.sizing`): a file over its format's would
    run its functions out of memory, /tmp or time, so it is refused before it is read."""
    limit = settings.file_limit(fmt)
    if size > limit:
        named = f"{fmt} limit" if fmt else "largest limit (of any format)"
        setting = f"max_file_bytes_by_format.{fmt}" if fmt else "max_file_bytes"
        raise SluiceDataError(
            ReasonCode.FILE_TOO_LARGE,
            f"{size} bytes is over the {named} of {limit}; raise {setting} "
            "(with stage sizes that serve it)",
            size=size,
            format=fmt,
            limit=limit,
            raise_setting=setting,
        )
    return limit


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
                ReasonCode.SOURCE_GONE,
                "the object, or the version the event named, is no longer in RAW",
                key_hash=source.object_id,
            ) from exc
        raise


def validate(
    state: ExecutionState,
    store: StageStore,
    settings: Settings,
    contracts_dir: Path = CONTRACTS_DIR,
) -> ValidateSection:
    source, dataset = state.source, state.dataset
    out = Outputs(store)
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
                adopter(out, settings, dataset),
            )
            key = lake.staged_key(dataset, source)
            out.put_file(settings.trusted_bucket, key, staged_path)
    except SluiceDataError as error:
        if error.reason != ReasonCode.SOURCE_GONE:  # nothing left to copy aside
            quarantine_file(store, settings, dataset, source, error)
        raise
    except Exception as exc:
        quarantine_bad_input(store, settings, dataset, source, exc, "validate")
        raise
    contract = staged.contract
    # An xlsx file says which sheets it was read from, and why the others were skipped.
    sheets = None if staged.sheets is None else staged.sheets.summary()
    return ValidateSection(
        staged=Pointer(settings.trusted_bucket, key),
        format=staged.format,
        rows_in=staged.rows,
        bytes_in=size,
        bytes_out=out.byte_count,
        contract=ContractRef(contract.dataset, contract.version, contract.inferred),
        sheets=sheets,
    )

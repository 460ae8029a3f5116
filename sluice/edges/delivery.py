"""Delivery's edge: DETAIL, QUALITY, the day summaries and lineage from a Trusted manifest."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from sluice import lake
from sluice.aws import RangedReader, StreamingUpload
from sluice.config import Settings
from sluice.contracts import parse_contract
from sluice.edges.common import (
    DAY_ROWS_SOURCE,
    PARQUET,
    PARQUET_COMPRESSION,
    Outputs,
    read_parquet,
    write_parquet,
)
from sluice.edges.summary import Partials, keep_summary, new_days, summary_key
from sluice.lake import SourceObject
from sluice.memory import use_returning_pool
from sluice.ports import StageStore
from sluice.state import (
    CaughtError,
    ContractRef,
    DayPointer,
    DeliverySection,
    Durations,
    ExecutionState,
    LineageManifest,
    OutputFile,
    Pointer,
    TrustedManifest,
    TrustedSection,
    ValidateSection,
)

if TYPE_CHECKING:
    from sluice.stages import delivery as delivery_stage
else:
    from sluice.edges.common import delivery_stage


def _day_rows(
    store: StageStore, manifest: TrustedManifest, source: SourceObject
) -> dict[str, pa.Table]:
    """The small days' rows Trusted handed over, by day; none where there is no hand-over,
    it is gone (a rerun after it was used) or it is another run's: those days are read from
    their TRUSTED day files instead."""
    found: dict[str, pa.Table] = {}
    for pointer in manifest.day_rows:
        body = store.get_bytes_if_exists(pointer.bucket, pointer.key)
        if body is None:
            continue
        table = delivery_stage.read_parquet_bytes(body)
        metadata = table.schema.metadata or {}
        whose = json.loads(metadata.get(DAY_ROWS_SOURCE.encode(), b"null"))
        if whose != source.to_dict() or table.num_rows != sum(pointer.rows):
            continue
        table = table.replace_schema_metadata(
            {k: v for k, v in metadata.items() if k != DAY_ROWS_SOURCE.encode()} or None
        )
        offset = 0
        for day, rows in zip(pointer.days, pointer.rows, strict=True):
            found[day] = table.slice(offset, rows)
            offset += rows
    return found


def _delivered(pointer: Pointer, record_type: str, day: str, rows: int) -> OutputFile:
    return OutputFile("delivery", pointer.bucket, pointer.key, day, rows, record_type)


def _put_table(
    out: Outputs, bucket: str, key: str, table: pa.Table, record_type: str, day: str
) -> OutputFile:
    out.put_bytes(bucket, key, write_parquet(table), PARQUET)
    return _delivered(Pointer(bucket, key), record_type, day, table.num_rows)


# A DETAIL row group has at least this many rows (but a day's last), gathered from batches
# decoded a few at a time: what Delivery holds is about one DETAIL row group, whatever the day
# file's size. (Measured on a 3M-row day: 128k-row groups made the file 34% larger than 1M-row
# groups, 512k-row groups 5%, for about half the Arrow memory of 1M-row groups.)
DETAIL_ROWS = 1 << 19
DETAIL_BATCH_ROWS = 1 << 16


def put_detail(
    out: Outputs,
    trusted_file: DayPointer,
    bucket: str,
    key: str,
    delivered_at: datetime,
    pipeline_version: str,
    rows_of_day: pa.Table | None = None,
) -> OutputFile:
    """One DETAIL file from one TRUSTED day file, a row group at a time.

    A daily extract puts a whole file's rows on one day, so a day file can be as large as the
    file: it is read by ranged GETs one row group at a time and the DETAIL file is uploaded in
    parts as it is written, so Delivery holds about one DETAIL row group and no `/tmp`. A small
    day file (`DayPointer.is_small`) is one GET and one PUT, or only the PUT where Trusted handed
    its rows over (`rows_of_day`).
    """
    if trusted_file.is_small:
        table = (
            rows_of_day
            if rows_of_day is not None
            else read_parquet(out.store, trusted_file.bucket, trusted_file.key)
        )
        detail = delivery_stage.detail(table, delivered_at, pipeline_version)
        return _put_table(out, bucket, key, detail, delivery_stage.DETAIL, trusted_file.day)
    # Freed row groups go back to the system, or the pool would grow with the day file anyway.
    use_returning_pool()
    reader = RangedReader(out.store, trusted_file.bucket, trusted_file.key)
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
    return _delivered(Pointer(bucket, key), delivery_stage.DETAIL, trusted_file.day, rows)


def deliver(state: ExecutionState, store: StageStore, settings: Settings) -> DeliverySection:
    started = time.perf_counter()
    source, dataset = state.source, state.dataset
    pointer = state.transformed().manifest
    manifest = TrustedManifest.from_dict(
        json.loads(store.get_bytes(pointer.bucket, pointer.key)), pointer.key
    )
    contract = parse_contract(manifest.contract, f"manifest:{pointer.key}")
    delivered_at = datetime.now(UTC).replace(microsecond=0)
    bucket = settings.delivery_bucket
    version = settings.pipeline_version
    out = Outputs(store)

    def key_of(record_type: str, day: str) -> str:
        """This source object's file of `record_type` for `day`."""
        return lake.delivery_key(dataset, record_type, date.fromisoformat(day), source)

    lineage_columns = {
        "source_file": f"s3://{source.bucket}/{source.key}",
        "source_version": source.version_id or source.etag.strip('"'),
        "execution": state.execution,
        "contract_version": contract.version,
    }
    trusted_files = {item.day: item for item in manifest.trusted}
    quality_days = manifest.days
    stale_days = set(manifest.stale_days)
    stale_quality_days = set(manifest.stale_quality_days)
    # Each touched day's summary takes this file's share (or loses it): work in proportion to
    # this file, whatever else the day holds; exact however many files feed it, in any order.
    touched = set(trusted_files) | stale_days
    partials = Partials(store, settings.trusted_bucket)
    day_rows = _day_rows(store, manifest, source)
    is_new = new_days(store, bucket, dataset, sorted(date.fromisoformat(d) for d in touched))

    def one_day(day_text: str) -> list[OutputFile]:
        """Everything this file puts into (or takes out of) one day of DELIVERY."""
        day = date.fromisoformat(day_text)
        written: list[OutputFile] = []
        item = trusted_files.get(day_text)
        if item is not None and item.is_small:  # (large ones are streamed one at a time)
            key = key_of(delivery_stage.DETAIL, day_text)
            handed = day_rows.get(day_text)
            written.append(put_detail(out, item, bucket, key, delivered_at, version, handed))
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
            kept = keep_summary(
                store, settings, contract, dataset, day, source, partials, is_new(day)
            )
            # Counted as the objects it left: not once per compare-and-swap attempt.
            out.count(kept.bytes_written)
            if kept.rows is not None:
                summary = Pointer(bucket, summary_key(dataset, day))
                written.append(
                    _delivered(summary, delivery_stage.DAILY_SUMMARY, day_text, kept.rows)
                )
        return written

    # DETAIL of large day files first, each streamed alone; then every day's small work at
    # once through the store's transfer pool.
    outputs: list[OutputFile] = [
        put_detail(out, item, bucket, key_of(delivery_stage.DETAIL, day), delivered_at, version)
        for day, item in sorted(trusted_files.items())
        if not item.is_small
    ]
    days = sorted(set(trusted_files) | set(quality_days) | stale_days | stale_quality_days)
    outputs += [o for written in store.each(one_day, days) for o in written]
    order = {delivery_stage.DETAIL: 0, delivery_stage.QUALITY: 1, delivery_stage.DAILY_SUMMARY: 2}
    outputs.sort(key=lambda o: (order[o.record_type or ""], o.day))

    # Lineage, written last: a manifest means every output of the run is in place.
    lineage = LineageManifest(
        execution=state.execution,
        dataset=dataset,
        source=source,
        contract=ContractRef(contract.dataset, contract.version, contract.inferred),
        counts=manifest.counts,
        outputs=(
            *(_output("trusted", o) for o in manifest.trusted),
            *(_output("quarantine", o) for o in manifest.quarantined),
            *outputs,
        ),
        durations_ms=Durations(
            validate=_duration_of(state.validate),
            trusted=_duration_of(state.trusted),
            delivery=round((time.perf_counter() - started) * 1000),
        ),
        delivered_at=delivered_at.isoformat(),
    )
    name = f"{lake.safe_token(source.stem, 60)}-{source.object_id}"
    records_key = f"{lake.LINEAGE_RECORDS}/{dataset}-{name}.parquet"
    out.put_bytes(
        bucket, records_key, write_parquet(delivery_stage.lineage_table(lineage)), PARQUET
    )
    lineage_key = f"{lake.LINEAGE_MANIFESTS}/{dataset}/{name}.json"
    out.put_bytes(
        bucket, lineage_key, json.dumps(lineage.to_dict(), indent=2).encode(), "application/json"
    )
    # The small days' rows have served (a rerun reads the TRUSTED day files; the bucket's
    # lifecycle rule stays as the net for a delivery that never finished).
    for handed in manifest.day_rows:
        store.delete(handed.bucket, handed.key)

    def files(record_type: str) -> list[OutputFile]:
        return [o for o in outputs if o.record_type == record_type]

    return DeliverySection(
        lineage=Pointer(bucket, lineage_key),
        detail_files=len(files(delivery_stage.DETAIL)),
        summary_files=len(files(delivery_stage.DAILY_SUMMARY)),
        quality_files=len(files(delivery_stage.QUALITY)),
        rows_out=sum(o.rows for o in files(delivery_stage.DETAIL)),
        bytes_out=out.byte_count,
    )


def _output(layer: str, pointer: DayPointer) -> OutputFile:
    return OutputFile(
        layer, pointer.bucket, pointer.key, pointer.day, pointer.rows, None, pointer.bytes
    )


def _duration_of(section: TrustedSection | ValidateSection | CaughtError | None) -> int | None:
    return section.duration_ms if isinstance(section, TrustedSection | ValidateSection) else None

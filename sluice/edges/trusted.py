"""Trusted's edge: the staged file made TRUSTED day files, partial summaries and a manifest."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from sluice import lake
from sluice.config import Settings
from sluice.contracts import Contract, parse_contract
from sluice.edges.common import (
    CONTRACT_METADATA,
    DAY_ROWS_SOURCE,
    PARQUET,
    Outputs,
    write_parquet,
)
from sluice.edges.quarantine import quarantine_bad_input
from sluice.errors import SluiceError
from sluice.lake import SourceObject
from sluice.ports import StageStore
from sluice.state import (
    DayPointer,
    DayRowsPointer,
    ExecutionState,
    PartialsPointer,
    Pointer,
    QualityTotals,
    TrustedManifest,
    TrustedSection,
    json_object,
)

if TYPE_CHECKING:
    from sluice.stages import delivery as delivery_stage
    from sluice.stages import trusted as trusted_stage
else:
    from sluice.edges.common import delivery_stage, trusted_stage


def _put_days(
    out: Outputs,
    bucket: str,
    files: dict[date, trusted_stage.DayFile],
    key_of: Callable[[date], str],
) -> list[DayPointer]:
    """Upload one Parquet object per day, through the store's transfer pool; the pointers
    with their row counts and sizes."""

    def put(day: date) -> DayPointer:
        item, key = files[day], key_of(day)
        out.put_file(bucket, key, item.path)
        return DayPointer(bucket, key, day.isoformat(), item.rows, item.path.stat().st_size)

    return out.store.each(put, sorted(files))


def _manifest_key(dataset: str, source: SourceObject, stage: str) -> str:
    return lake.staged_key(dataset, source).removesuffix(".parquet") + f".{stage}.json"


def _previous_outputs(store: StageStore, pointer: Pointer) -> TrustedManifest | None:
    """The manifest the last run of this source object's location wrote, if any."""
    previous = store.get_bytes_if_exists(pointer.bucket, pointer.key)
    return TrustedManifest.from_dict(json.loads(previous), pointer.key) if previous else None


def _trusted_section(manifest: TrustedManifest, pointer: Pointer, bytes_out: int) -> TrustedSection:
    return TrustedSection(
        manifest=pointer,
        counts=manifest.counts,
        days=len(manifest.trusted),
        bytes_out=bytes_out,
        mean_quality_score=manifest.mean_quality_score,
    )


def trusted(state: ExecutionState, store: StageStore, settings: Settings) -> TrustedSection:
    source, dataset = state.source, state.dataset
    staged = state.validated().staged
    out = Outputs(store)
    ctx = trusted_stage.RunContext(
        source_file=f"s3://{source.bucket}/{source.key}",
        source_version=source.version_id or source.etag.strip('"'),
        pipeline_version=settings.pipeline_version,
        processed_at=datetime.now(UTC).replace(microsecond=0),
    )
    manifest_key = _manifest_key(dataset, source, "trusted")
    pointer = Pointer(settings.trusted_bucket, manifest_key)
    with tempfile.TemporaryDirectory(prefix="sluice-") as tmp:
        staged_path = Path(tmp) / "staged.parquet"
        if not store.download_if_exists(staged.bucket, staged.key, staged_path):
            # The staged file is removed once its outputs are in: a repeat of a Trusted that
            # finished (a retried invocation, a redrive) answers with what that run wrote.
            done = _previous_outputs(store, pointer)
            if done is None or done.source != source:
                raise SluiceError(
                    f"the staged file {staged.key} is not there: run the file from Validate"
                )
            return _trusted_section(done, pointer, 0)
        metadata = pq.read_schema(staged_path).metadata or {}
        try:
            contract = parse_contract(
                json.loads(metadata[CONTRACT_METADATA]), f"staged:{staged.key}"
            )
            result = trusted_stage.transform_file(staged_path, contract, ctx, Path(tmp) / "work")
        except Exception as exc:
            quarantine_bad_input(store, settings, dataset, source, exc, "trusted")
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
        day_rows = _put_day_rows(
            out, settings.trusted_bucket, dataset, source, result.trusted, outputs
        )
    # The file's share of each of its days' summaries, in one object (a row group per day), so
    # Delivery reads a few rows per day instead of every trusted row of the day.
    partials = _put_partials(out, settings.trusted_bucket, dataset, source, result, contract)

    # A new version of the object replaces its own rows: drop outputs the last run wrote that
    # this run did not (days that no longer appear in the file).
    previous = _previous_outputs(store, pointer) or TrustedManifest(source, dataset, {})
    written = {o.key for o in [*outputs, *quarantined, *partials, *day_rows]}
    stale = [o for o in previous.outputs() if o.key not in written]
    store.each(lambda item: store.delete(item.bucket, item.key), stale)
    manifest = TrustedManifest(
        source=source,
        dataset=dataset,
        contract=json_object(contract.to_dict(), "contract"),
        trusted=tuple(outputs),
        quarantined=tuple(quarantined),
        partials=tuple(partials),
        day_rows=tuple(day_rows),
        stale_days=tuple(sorted({o.day for o in previous.trusted if o.key not in written})),
        counts=result.counts(),
        mean_quality_score=result.mean_quality_score,
        days={
            day.isoformat(): json_object(q.to_dict(), f"days.{day}")
            for day, q in sorted(result.days.items())
        },
        stale_quality_days=tuple(sorted(set(previous.days) - {d.isoformat() for d in result.days})),
        quality=QualityTotals(result.reasons, result.flags, result.nulls, result.outliers),
    )
    out.put_bytes(
        settings.trusted_bucket,
        manifest_key,
        json.dumps(manifest.to_dict()).encode(),
        "application/json",
    )
    # Its outputs are in: the hand-over has served (the bucket's lifecycle rule stays as the
    # net for a run that stopped before this).
    store.delete(staged.bucket, staged.key)
    return _trusted_section(manifest, pointer, out.byte_count)


PARTIAL_DAY = "summary_date"

# A file of at least this many small days (`SMALL_DAY_BYTES`) also hands their rows to Delivery
# in one object, at most `DAY_ROWS_MAX` rows of them: Delivery then reads one object instead of
# a TRUSTED day file per day (a backfill of 3,000 days: 3,000 GETs fewer).
DAY_ROWS_MIN_DAYS = 16
DAY_ROWS_MAX = 1 << 18


def _put_day_rows(
    out: Outputs,
    bucket: str,
    dataset: str,
    source: SourceObject,
    files: dict[date, trusted_stage.DayFile],
    put: list[DayPointer],
) -> list[DayRowsPointer]:
    """The rows of the file's small days (`put`: the day files' pointers), day after day, in
    one object (its pointer, with the days in it, in a list as the other outputs are; none for
    a file of few days)."""
    small = sorted(date.fromisoformat(p.day) for p in put if p.is_small)
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
    whose = {DAY_ROWS_SOURCE: json.dumps(source.to_dict(), sort_keys=True)}
    key = lake.day_rows_key(dataset, source)
    out.put_bytes(bucket, key, write_parquet(table, whose), PARQUET)
    return [
        DayRowsPointer(
            bucket, key, tuple(d.isoformat() for d in days), tuple(files[d].rows for d in days)
        )
    ]


def _put_partials(
    out: Outputs,
    bucket: str,
    dataset: str,
    source: SourceObject,
    result: trusted_stage.TrustedResult,
    contract: Contract,
) -> list[PartialsPointer]:
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
    out.put_bytes(bucket, key, write_parquet(table), PARQUET)
    return [PartialsPointer(bucket, key, len(days), table.num_rows)]

"""Files refused whole: the original and the reason, kept in QUARANTINE."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sluice import lake
from sluice.config import Settings
from sluice.errors import SluiceDataError
from sluice.failures import as_data_error
from sluice.lake import SourceObject
from sluice.ports import StageStore

if TYPE_CHECKING:
    pass
else:
    pass


def quarantine_file(
    store: StageStore,
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


def quarantine_bad_input(
    store: StageStore,
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

"""A day's DAILY_SUMMARY kept by compare-and-swap, in O(this file)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from sluice import lake, retries
from sluice.config import Settings
from sluice.contracts import (
    Contract,
)
from sluice.edges.common import PARQUET, write_parquet
from sluice.errors import SluiceTransientError
from sluice.lake import SourceObject
from sluice.ports import StageStore

if TYPE_CHECKING:
    from sluice.stages import delivery as delivery_stage
else:
    from sluice.edges.common import delivery_stage


SUMMARY_ATTEMPTS = retries.SUMMARY_CAS.attempts


@dataclass(frozen=True)
class KeptSummary:
    """One day's summary after this run's contribution: its rows (None: the day has none
    left) and the bytes this run put into S3 for it."""

    rows: int | None
    bytes_written: int


def summary_key(dataset: str, day: date) -> str:
    """The day's DAILY_SUMMARY object (one for the day, whatever files feed it)."""
    return lake.delivery_key(dataset, delivery_stage.DAILY_SUMMARY, day, None)


def summary_object(state: delivery_stage.DayState, contract: Contract, day: date) -> bytes:
    """The day's DAILY_SUMMARY file: the state's rows, and the state in its footer. Readers of
    the table see only the rows."""
    return write_parquet(state.summary_table(contract, day), state.footer(contract))


def state_of(body: bytes, contract: Contract) -> delivery_stage.DayState:
    """The state a DAILY_SUMMARY file (`summary_object`) carries."""
    metadata = pq.ParquetFile(pa.BufferReader(body)).metadata.metadata or {}
    return delivery_stage.DayState.from_footer(metadata, contract)


# A file of at least this many days lists which of them have a summary before it merges
# (one LIST per 1,000 days): the days without one are put without a read first.
LIST_SUMMARY_DAYS = 8


def new_days(
    store: StageStore, bucket: str, dataset: str, days: list[date]
) -> Callable[[date], bool]:
    """Whether each of `days` (sorted) surely has no DAILY_SUMMARY yet, from one listing of
    the summaries between the first and the last of them. A day the listing did not reach, or
    any day of a file of fewer than `LIST_SUMMARY_DAYS` days, is taken to have one (read first:
    the safe guess). Only a guess of which request to make first, never of the result."""
    if len(days) < LIST_SUMMARY_DAYS:
        return lambda day: False

    def key(day: date) -> str:
        return summary_key(dataset, day)

    prefix = lake.record_type_prefix(dataset, delivery_stage.DAILY_SUMMARY)
    after = f"{prefix}{lake.date_partition(days[0])}/"  # (the first day's folder: before its key)
    found, covered = store.list_between(
        bucket, prefix, after, key(days[-1]), pages=len(days) // 1000 + 1
    )
    have = set(found)
    return lambda day: key(day) <= covered and key(day) not in have


class Partials:
    """Source objects' partial summaries by day, each object read once per delivery unless a
    day state says it changed since (from any of the transfer pool's threads)."""

    def __init__(self, store: StageStore, bucket: str) -> None:
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


def keep_summary(
    store: StageStore,
    settings: Settings,
    contract: Contract,
    dataset: str,
    day: date,
    source: SourceObject,
    partials: Partials,
    new_day: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> KeptSummary:
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
    key = summary_key(dataset, day)
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
        state = state_of(found[0], contract) if found else None
        new = _next_state(state, partial_key, mine, contract, day_partials)
        body = summary_object(new, contract, day)
        if store.put_if(bucket, key, body, PARQUET, found[1] if found else None):
            return KeptSummary(new.summary_rows(), len(body))
        if guess:  # the day got a summary since it was listed: read it, at once
            guess = False
            continue
        if attempt + 1 < SUMMARY_ATTEMPTS:
            sleep(delivery_stage.backoff(attempt))
    raise SluiceTransientError(f"the summary of {day} kept changing; retry")

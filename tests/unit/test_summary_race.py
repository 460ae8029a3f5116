"""A day's summary takes each file's share in O(that file) and stays exact: whatever the order,
however many deliveries race for it, with reruns, new versions and files leaving the day."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sluice import lake
from sluice.config import CONTRACTS_DIR, Settings
from sluice.contracts import find_contract, load_contract_text
from sluice.edges import common
from sluice.edges import summary as summary_edge
from sluice.errors import SluiceError, SluiceTransientError
from sluice.lake import SourceObject
from sluice.stages import delivery, trusted
from tests.fakes import MemoryStore

CONTRACT = find_contract("transactions", CONTRACTS_DIR)
DAY = date(2024, 1, 15)
SETTINGS = Settings(
    raw_bucket="raw", trusted_bucket="trusted", delivery_bucket="delivery", quarantine_bucket="q"
)
SUMMARY = lake.delivery_key("transactions", delivery.DAILY_SUMMARY, DAY, None)


def put_partial(store: MemoryStore, name: str, body: bytes | None) -> SourceObject:
    """The file's own partial summaries, as Trusted writes them (not a Delivery request)."""
    source = SourceObject("raw", f"transactions/year=2024/month=03/day=01/{name}.csv")
    key = lake.partials_key("transactions", source)
    if body is None:
        store.objects.pop(("trusted", key), None)
    else:
        store.objects[("trusted", key)] = (body, {})
    return source


def partial(tmp_path: Path, rows: list[tuple[int, str, str]]) -> bytes:
    """The partial summaries object Trusted writes for a file of these (id, amount, category)
    rows, all of DAY."""
    assert CONTRACT is not None
    table = pa.table(
        {
            "id": [str(r[0]) for r in rows],
            "name": [f"N{r[0]}" for r in rows],
            "amount": [r[1] for r in rows],
            "date": [DAY.isoformat()] * len(rows),
            "category": [r[2] for r in rows],
        }
    )
    ctx = trusted.RunContext("s3://raw/x", "v", "t", datetime(2024, 3, 1, tzinfo=UTC))
    result = trusted.transform(table, CONTRACT, ctx, tmp_path / f"t{rows[0][0]}")
    share = delivery.partial_summary(result.read(DAY), CONTRACT)
    share = share.add_column(0, delivery.PARTIAL_DAY, pa.array([DAY] * share.num_rows))
    sink = io.BytesIO()
    pq.write_table(share.cast(delivery.partials_schema(CONTRACT)), sink)
    return sink.getvalue()


def deliver(
    store: MemoryStore,
    source: SourceObject,
    sleeps: list[float] | None = None,
    new_day: bool = False,
) -> Any:
    assert CONTRACT is not None
    waits = sleeps if sleeps is not None else []
    return summary_edge.keep_summary(
        store,
        SETTINGS,
        CONTRACT,
        "transactions",
        DAY,
        source,
        summary_edge.Partials(store, "trusted"),
        new_day,
        sleep=waits.append,
    )


def state_of(store: MemoryStore) -> delivery.DayState:
    """The day's state, as the DAILY_SUMMARY object carries it."""
    assert CONTRACT is not None
    return summary_edge.state_of(store.objects[("delivery", SUMMARY)][0], CONTRACT)


def summary(store: MemoryStore) -> list[tuple[Any, ...]]:
    found = store.objects.get(("delivery", SUMMARY))
    if found is None:
        return []
    table = pq.read_table(io.BytesIO(found[0]))
    columns = ["category", "record_count", "amount_sum", "amount_min", "amount_max"]
    return [tuple(r.values()) for r in table.select(columns).to_pylist()]


def recomputed(store: MemoryStore) -> list[tuple[Any, ...]]:
    """The summary the old way: every partial of the day combined at once."""
    assert CONTRACT is not None
    partials = [
        pq.read_table(io.BytesIO(body))
        for (bucket, key), (body, _) in sorted(store.objects.items())
        if bucket == "trusted"
    ]
    table = delivery.daily_summary(pa.concat_tables(partials), CONTRACT, DAY)
    columns = ["category", "record_count", "amount_sum", "amount_min", "amount_max"]
    return [tuple(r.values()) for r in table.select(columns).to_pylist()]


def test_a_files_requests_do_not_depend_on_how_many_files_the_day_has(tmp_path: Path) -> None:
    # Given 50 files of one day, delivered one after another
    store = MemoryStore()
    counts = {}
    for n in range(1, 51):
        source = put_partial(store, f"f{n}", partial(tmp_path, [(n, f"{n}.5", "Sales")]))
        store.requests.clear()
        # When the n-th file's share is merged into the day's summary
        kept = deliver(store, source)
        counts[n] = dict(store.requests)
        assert kept.rows == 1
    # Then every file costs the same three requests: its partials, and the day's summary (which
    # carries the day's state) read and put back
    assert counts[1] == {"get": 2, "put": 1}
    assert counts[2] == counts[1]
    assert counts[10] == counts[1]
    assert counts[50] == counts[1]
    # And the summary is exact
    assert summary(store) == [("Sales", 50, sum(n + 0.5 for n in range(1, 51)), 1.5, 50.5)]


def test_a_rerun_changes_nothing_and_a_new_version_replaces_its_share(tmp_path: Path) -> None:
    store = MemoryStore()
    a = put_partial(store, "a", partial(tmp_path, [(1, "100", "Sales"), (2, "30", "Travel")]))
    b = put_partial(store, "b", partial(tmp_path, [(3, "50", "Sales")]))
    deliver(store, a)
    deliver(store, b)
    before = summary(store)
    # When a's delivery runs again with the same partial
    store.requests.clear()
    deliver(store, a)
    # Then the summary is the same, and nothing of the day's other files was read
    assert (
        summary(store)
        == before
        == [("Sales", 2, 150.0, 50.0, 100.0), ("Travel", 1, 30.0, 30.0, 30.0)]
    )
    assert dict(store.requests) == {"get": 2, "put": 1}
    # When a new version of a lowers Sales' maximum (which cannot be subtracted)
    put_partial(store, "a", partial(tmp_path, [(1, "10", "Sales")]))
    store.requests.clear()
    deliver(store, a)
    # Then the day is recomputed from its two contributions' partials, without listing
    # anything (its own partial, the summary, its own again since the summary's state holds
    # another version of it, and b's), and Travel is gone
    assert summary(store) == [("Sales", 2, 60.0, 10.0, 50.0)]
    assert (store.requests["list"], store.requests["get"]) == (0, 1 + 1 + 1 + 1)


def test_the_order_of_the_files_does_not_change_a_bit_of_the_summary(tmp_path: Path) -> None:
    assert CONTRACT is not None
    # Given amounts whose float sum depends on the order it is taken in
    amounts = ["0.1", "0.2", "0.3"]
    assert (0.1 + 0.2) + 0.3 != (0.3 + 0.2) + 0.1
    bodies = [partial(tmp_path, [(i + 1, a, "Sales")]) for i, a in enumerate(amounts)]
    results = []
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        store = MemoryStore()
        sources = [put_partial(store, f"f{i}", bodies[i]) for i in range(3)]
        # When the files are delivered in this order
        for i in order:
            deliver(store, sources[i])
        results.append(store.objects[("delivery", SUMMARY)][0])
    # And the day is recomputed from all its partials at once
    partials = {
        key: delivery.split_partials(pq.read_table(io.BytesIO(body)))[DAY]
        for (bucket, key), (body, _) in store.objects.items()
        if bucket == "trusted"
    }
    state = delivery.DayState.empty().recomputed(partials, CONTRACT)
    # Then every order gives the same bytes, and the rows of recomputing at once: the exact
    # sum of the amounts, rounded once
    assert results[0] == results[1] == results[2]
    assert pq.read_table(io.BytesIO(results[0])).equals(state.summary(CONTRACT, DAY))
    exact = sum(Fraction(float(a)) for a in amounts)
    assert pq.read_table(io.BytesIO(results[0]))["amount_sum"].to_pylist() == [float(exact)]


def test_a_delivery_that_lost_the_race_retries_and_both_files_count(tmp_path: Path) -> None:
    # Given a day with one file, and another execution's delivery committing right between
    # our read of the day's state and our put
    store = MemoryStore()
    a = put_partial(store, "a", partial(tmp_path, [(1, "100", "Sales")]))
    deliver(store, a)
    b = put_partial(store, "b", partial(tmp_path, [(2, "50", "Sales")]))
    c = put_partial(store, "c", partial(tmp_path, [(3, "7", "Travel")]))
    raced: list[str] = []

    def the_other_delivery(key: str) -> None:
        if key == SUMMARY and not raced:
            raced.append(key)
            deliver(store, c)

    store.before_put = the_other_delivery
    sleeps: list[float] = []
    # When b's share is merged
    deliver(store, b, sleeps)
    # Then b's first put was refused, it read again and merged over c's: all three count
    assert summary(store) == [("Sales", 2, 150.0, 50.0, 100.0), ("Travel", 1, 7.0, 7.0, 7.0)]
    assert summary(store) == recomputed(store)
    assert len(sleeps) == 1


def test_a_day_that_never_settles_is_a_transient_error(tmp_path: Path) -> None:
    store = MemoryStore()
    a = put_partial(store, "a", partial(tmp_path, [(1, "100", "Sales")]))
    deliver(store, a)

    # Given a day whose state someone else changes before every put of ours
    def someone_else_commits(key: str) -> None:
        assert CONTRACT is not None
        if key == SUMMARY:
            current = state_of(store).unchanged()
            store.objects[("delivery", SUMMARY)] = (
                summary_edge.summary_object(current, CONTRACT, DAY),
                {},
            )

    store.before_put = someone_else_commits
    b = put_partial(store, "b", partial(tmp_path, [(2, "50", "Sales")]))
    sleeps: list[float] = []
    with pytest.raises(SluiceTransientError, match="kept changing"):
        deliver(store, b, sleeps)
    # Then it gave up after its attempts, waiting (with jitter) between them only
    assert len(sleeps) == summary_edge.SUMMARY_ATTEMPTS - 1
    assert all(0 <= s <= 2.0 for s in sleeps)


def test_a_file_that_leaves_the_day_takes_its_rows_and_a_late_stale_merge_cannot_bring_them_back(
    tmp_path: Path,
) -> None:
    store = MemoryStore()
    a = put_partial(store, "a", partial(tmp_path, [(1, "100", "Sales")]))
    b = put_partial(store, "b", partial(tmp_path, [(2, "50", "Travel")]))
    deliver(store, b)
    raced: list[str] = []

    def a_new_version_without_the_day(key: str) -> None:
        if key == SUMMARY and not raced:
            raced.append(key)
            put_partial(store, "a", None)  # Trusted of a's new version drops a's day
            deliver(store, a)  # and its delivery takes a's share out first

    # Given a delivery of a's old version that read a's partial, and a's new version (which
    # has no rows of the day) delivered before it commits
    store.before_put = a_new_version_without_the_day
    # When the old version's delivery commits
    deliver(store, a)
    # Then the rows it had read stay out: the day is what TRUSTED holds
    assert summary(store) == [("Travel", 1, 50.0, 50.0, 50.0)] == recomputed(store)
    # When the last file leaves the day too, its summary has no rows left, and keeps what
    # left (so a late merge of either's old rows recomputes too)
    put_partial(store, "b", None)
    deliver(store, b)
    assert summary(store) == []
    assert ("delivery", SUMMARY) in store.objects
    a_key = lake.partials_key("transactions", a)
    b_key = lake.partials_key("transactions", b)
    assert state_of(store).contributions == {a_key: delivery.REMOVED, b_key: delivery.REMOVED}


def test_a_day_listed_as_new_is_put_without_a_read_and_one_that_got_a_summary_is_read(
    tmp_path: Path,
) -> None:
    # Given a day that had no summary when the delivery listed its days
    store = MemoryStore()
    a = put_partial(store, "a", partial(tmp_path, [(1, "100", "Sales")]))
    # When its share is merged
    sleeps: list[float] = []
    kept = deliver(store, a, sleeps, new_day=True)
    # Then the summary is put where none is, without a read: its partials and one put
    assert dict(store.requests) == {"get": 1, "put": 1}
    assert (kept.rows, summary(store)) == (1, [("Sales", 1, 100.0, 100.0, 100.0)])
    # When another file's delivery also listed the day as new, before the summary was put
    b = put_partial(store, "b", partial(tmp_path, [(2, "50", "Sales")]))
    store.requests.clear()
    deliver(store, b, sleeps, new_day=True)
    # Then its refused put makes it read the summary and merge, at once: both files count
    assert dict(store.requests) == {"get": 2, "put": 2}
    assert summary(store) == [("Sales", 2, 150.0, 50.0, 100.0)] == recomputed(store)
    assert sleeps == []


def test_a_summary_without_a_state_is_refused_not_overwritten(tmp_path: Path) -> None:
    assert CONTRACT is not None
    # Given a DAILY_SUMMARY object some other writer put, with no state in it
    store = MemoryStore()
    foreign = common.write_parquet(delivery.summary_schema(CONTRACT).empty_table())
    store.objects[("delivery", SUMMARY)] = (foreign, {})
    a = put_partial(store, "a", partial(tmp_path, [(1, "100", "Sales")]))
    # When a file's share is merged into it
    with pytest.raises(SluiceError, match="holds no summary state"):
        deliver(store, a)
    # Then the object is as it was
    assert store.objects[("delivery", SUMMARY)] == (foreign, {})


ORDERS = load_contract_text(
    "dataset: orders\ncolumns:\n  id: {type: int, required: true}\n  region: string\n"
    "  qty: int\n  price: decimal\n  booked: {type: date, required: true}\n"
    "event_date: booked\nsummary: {measures: [qty, price], group_by: [region]}\n",
    "orders.yaml",
)


def orders_partial(rows: list[tuple[str | None, int, int | None, str | None, float]]) -> pa.Table:
    """A partial summary of the orders contract: (region, records, qty, price, score sum)."""
    schema = pa.schema(
        [
            ("region", pa.string()),
            ("record_count", pa.int64()),
            ("score_sum", pa.float64()),
            ("qty_count", pa.int64()),
            ("qty_sum", pa.int64()),
            ("qty_min", pa.int64()),
            ("qty_max", pa.int64()),
            ("price_count", pa.int64()),
            ("price_sum", pa.decimal128(38, 2)),
            ("price_min", pa.decimal128(38, 2)),
            ("price_max", pa.decimal128(38, 2)),
        ]
    )
    return pa.Table.from_pylist(
        [
            {
                "region": region,
                "record_count": records,
                "score_sum": score,
                "qty_count": 0 if qty is None else records,
                "qty_sum": qty,
                "qty_min": qty,
                "qty_max": qty,
                "price_count": 0 if price is None else records,
                "price_sum": None if price is None else Decimal(price),
                "price_min": None if price is None else Decimal(price),
                "price_max": None if price is None else Decimal(price),
            }
            for region, records, qty, price, score in rows
        ],
        schema=schema,
    )


def test_int_and_decimal_measures_and_a_null_group_merge_exactly_and_survive_the_state() -> None:
    # Given partials with a null region, a group whose price is all null, and decimals
    a = orders_partial([(None, 2, 5, "10.10", 2.0), ("EU", 1, 1, None, 0.5)])
    b = orders_partial([("EU", 3, 7, "0.20", 3.0), (None, 1, None, "0.01", 1.0)])
    # When they are merged one by one in either order, and the state read back from the
    # summary object that carries it
    ab = delivery.DayState.empty().merged("a", "da", a, ORDERS).merged("b", "db", b, ORDERS)
    ba = delivery.DayState.empty().merged("b", "db", b, ORDERS).merged("a", "da", a, ORDERS)
    again = summary_edge.state_of(summary_edge.summary_object(ab, ORDERS, DAY), ORDERS)
    # Then each gives what combining all the partials at once gives
    at_once = delivery.daily_summary(pa.concat_tables([a, b]), ORDERS, DAY)
    for state in (ab, ba, again):
        assert state.summary(ORDERS, DAY).equals(at_once)
    assert again.contributions == {"a": "da", "b": "db"}
    assert again.generation == ab.generation == 2
    rows = at_once.select(["region", "record_count", "qty_sum", "price_sum", "price_min"])
    assert rows.to_pylist() == [
        {
            "region": "EU",
            "record_count": 4,
            "qty_sum": 8,
            "price_sum": Decimal("0.20"),
            "price_min": Decimal("0.20"),
        },
        {
            "region": None,
            "record_count": 3,
            "qty_sum": 5,
            "price_sum": Decimal("10.11"),
            "price_min": Decimal("0.01"),
        },
    ]


def test_one_files_float_sum_is_the_exact_sum_rounded_once(tmp_path: Path) -> None:
    # Given one file whose amounts' float sum is not their exact sum rounded once
    amounts = ["0.1", "0.2", "0.3"]
    naive = 0.0
    for a in amounts:
        naive += float(a)
    exact = float(sum(Fraction(float(a)) for a in amounts))
    assert naive != exact
    store = MemoryStore()
    rows = [(i + 1, a, "Sales") for i, a in enumerate(amounts)]
    source = put_partial(store, "f", partial(tmp_path, rows))
    # When its share is delivered
    deliver(store, source)
    # Then the day's sum is the exact one, rounded once, as if the rows came one per file
    assert summary(store) == [("Sales", 3, exact, 0.1, 0.3)]
    assert exact == 0.6

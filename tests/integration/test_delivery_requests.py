"""What Delivery asks of S3 for one file does not grow with the files its day already has:
every request of the whole stage is counted as the stages run on in-process moto S3."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import date, timedelta
from typing import Any

import pyarrow.parquet as pq

from sluice import lake, pipeline
from sluice.aws import ObjectStore
from sluice.edges import common
from sluice.edges import trusted as trusted_edge
from sluice.lake import SourceObject
from tests.emf import SETTINGS
from tests.support import run_edge

HEADER = "id,name,amount,date,category\n"


def test_delivery_requests_for_the_1st_10th_and_50th_file_of_a_day(s3: Any) -> None:
    # Given S3 requests counted by operation while Delivery runs
    requests: Counter[str] = Counter()
    counting = [False]

    def count(event_name: str, **_: Any) -> None:
        if counting[0]:
            requests[event_name.rsplit(".", 1)[1]] += 1

    s3.meta.events.register("before-send.s3.*", count)
    store = ObjectStore(s3)
    per_file: dict[int, dict[str, int]] = {}
    for n in range(1, 51):
        # When the n-th file of 2024-01-15 goes through the three stages
        key = f"transactions/year=2024/month=03/day=01/f{n:02d}.csv"
        s3.put_object(Bucket="raw", Key=key, Body=f"{HEADER}{n},N{n},{n}.5,2024-01-15,Sales\n")
        head = s3.head_object(Bucket="raw", Key=key)
        source = SourceObject("raw", key, etag=head["ETag"], size=head["ContentLength"])
        state: dict[str, Any] = {"execution": f"e{n}", "dataset": "transactions"}
        state["source"] = source.to_dict()
        state["validate"] = run_edge(pipeline.validate, state, store, SETTINGS)
        state["trusted"] = run_edge(pipeline.trusted, state, store, SETTINGS)
        requests.clear()
        counting[0] = True
        state["delivery"] = run_edge(pipeline.deliver, state, store, SETTINGS)
        counting[0] = False
        per_file[n] = dict(requests)

    # Then Delivery's requests are the same for the 1st, the 10th and the 50th file: the
    # manifest, the (small) day file and the file's partials read, DETAIL, QUALITY and lineage
    # put, and the day's summary (which carries its state) read and put back
    assert per_file[1] == {"GetObject": 4, "PutObject": 5}
    assert per_file[10] == per_file[1]
    assert per_file[50] == per_file[1]
    # And the summary counts every file once
    body = store.get_bytes(
        "delivery",
        "transactions/record_type=DAILY_SUMMARY/year=2024/month=01/day=15/daily_summary.parquet",
    )
    table = pq.read_table(io.BytesIO(body))
    assert table.select(["category", "record_count", "amount_sum"]).to_pylist() == [
        {"category": "Sales", "record_count": 50, "amount_sum": sum(n + 0.5 for n in range(1, 51))}
    ]


def run_stages(s3: Any, store: ObjectStore, name: str, body: str) -> dict[str, Counter[str]]:
    """The three stages on one RAW object: each stage's S3 requests, by operation."""
    requests: dict[str, Counter[str]] = {}
    stage = [""]

    def count(event_name: str, **_: Any) -> None:
        if stage[0]:
            requests.setdefault(stage[0], Counter())[event_name.rsplit(".", 1)[1]] += 1

    s3.meta.events.register("before-send.s3.*", count)
    key = f"transactions/year=2024/month=03/day=01/{name}.csv"
    s3.put_object(Bucket="raw", Key=key, Body=body)
    head = s3.head_object(Bucket="raw", Key=key)
    source = SourceObject("raw", key, etag=head["ETag"], size=head["ContentLength"])
    state: dict[str, Any] = {"execution": name, "dataset": "transactions"}
    state["source"] = source.to_dict()
    for name_, run in (
        ("validate", pipeline.validate),
        ("trusted", pipeline.trusted),
        ("delivery", pipeline.deliver),
    ):
        stage[0] = name_
        state[name_] = run_edge(run, state, store, SETTINGS)
    stage[0] = ""
    s3.meta.events.unregister("before-send.s3.*", count)
    return requests


def days_file(days: int, first_id: int) -> str:
    rows = [
        f"{first_id + d},N{d},{d}.25,{date(2023, 1, 1) + timedelta(days=d)},Sales\n"
        for d in range(days)
    ]
    return HEADER + "".join(rows)


def test_a_files_requests_grow_with_its_own_days_only_not_with_the_files_before_it(
    s3: Any,
) -> None:
    # Given files whose rows span 10 and 40 event days, and then a second 40-day file over the
    # same days
    store = ObjectStore(s3)
    # When each goes through the three stages
    ten = run_stages(s3, store, "ten", days_file(10, 1))
    forty = run_stages(s3, store, "forty", days_file(40, 1000))
    again = run_stages(s3, store, "again", days_file(40, 5000))
    # Then Trusted puts one day file per day, one partials object, the manifest; and removes
    # the staged hand-over
    assert ten["trusted"] == {
        "HeadObject": 1,
        "GetObject": 2,
        "PutObject": 10 + 2,
        "DeleteObject": 1,
    }
    # And a file of 16 days or more also hands its small days' rows to Delivery in one object
    assert trusted_edge.DAY_ROWS_MIN_DAYS == 16
    assert forty["trusted"] == {**ten["trusted"], "PutObject": 40 + 3}

    # And Delivery makes per day: DETAIL and QUALITY put, and the day's summary put, read
    # first only where the one listing of the file's days found one; and the day's rows read,
    # from the day file (a file of few days) or all at once from Trusted's hand-over, which
    # it then removes; besides, the manifest and the partials read, the listing and the two
    # lineage puts
    def expected(days: int, had_a_summary: int) -> dict[str, int]:
        handed = days >= trusted_edge.DAY_ROWS_MIN_DAYS
        counts = {
            "GetObject": (1 if handed else days) + had_a_summary + 2,
            "PutObject": 3 * days + 2,
            "ListObjectsV2": 1,
        }
        return {**counts, "DeleteObject": 1} if handed else counts

    assert dict(ten["delivery"]) == expected(10, 0)
    # (its first ten days are the ten file's: their summaries are read before replaced)
    assert dict(forty["delivery"]) == expected(40, 10)
    # And a file over days that all have a file costs the same, and a read of each summary
    assert dict(again["delivery"]) == expected(40, 40)
    assert again["trusted"] == forty["trusted"]
    # And each of those days' summaries counts both files' rows
    body = store.get_bytes(
        "delivery",
        "transactions/record_type=DAILY_SUMMARY/year=2023/month=02/day=09/daily_summary.parquet",
    )
    table = pq.read_table(io.BytesIO(body))
    assert table.select(["category", "record_count", "amount_sum"]).to_pylist() == [
        {"category": "Sales", "record_count": 2, "amount_sum": 39.25 * 2}
    ]
    # And no staged Parquet is left in TRUSTED: only the three Trusted manifests
    assert store.list_keys("trusted", "_staging/") == [
        f"_staging/transactions/{name}-{lake.SourceObject('raw', key).object_id}.trusted.json"
        for name, key in sorted(
            (n, f"transactions/year=2024/month=03/day=01/{n}.csv")
            for n in ("again", "forty", "ten")
        )
    ]


def _details(store: ObjectStore) -> dict[str, list[dict[str, Any]]]:
    """Every DETAIL file's rows (the delivery stamps left out), by key."""
    found = {}
    for key in store.list_keys("delivery", "transactions/record_type=DETAIL/"):
        table = pq.read_table(io.BytesIO(store.get_bytes("delivery", key)))
        found[key] = table.drop_columns(["delivery_timestamp"]).to_pylist()
    return found


def test_a_delivery_without_its_hand_over_or_with_another_runs_reads_the_day_files(
    s3: Any,
) -> None:
    # Given a 20-day file through the three stages, its DETAIL made from Trusted's hand-over
    store = ObjectStore(s3)
    key = "transactions/year=2024/month=03/day=01/spread.csv"
    s3.put_object(Bucket="raw", Key=key, Body=days_file(20, 1))
    head = s3.head_object(Bucket="raw", Key=key)
    source = SourceObject("raw", key, etag=head["ETag"], size=head["ContentLength"])
    state: dict[str, Any] = {"execution": "e1", "dataset": "transactions"}
    state["source"] = source.to_dict()
    state["validate"] = run_edge(pipeline.validate, state, store, SETTINGS)
    state["trusted"] = run_edge(pipeline.trusted, state, store, SETTINGS)
    handed = lake.day_rows_key("transactions", source)
    body = store.get_bytes("trusted", handed)
    run_edge(pipeline.deliver, state, store, SETTINGS)
    first = _details(store)
    assert len(first) == 20
    assert store.list_keys("trusted", handed) == []
    # When Delivery runs again (a rerun) with its hand-over gone
    run_edge(pipeline.deliver, state, store, SETTINGS)
    # Then it reads the TRUSTED day files and makes the same DETAIL rows
    assert _details(store) == first
    # When a hand-over of another version's rows (as many, in another order) stands at its key
    other = SourceObject("raw", key, etag='"another"', size=head["ContentLength"])
    table = pq.read_table(io.BytesIO(body))
    metadata = {common.DAY_ROWS_SOURCE: json.dumps(other.to_dict(), sort_keys=True)}
    stale = io.BytesIO()
    reversed_rows = table.take(list(range(table.num_rows - 1, -1, -1)))
    pq.write_table(reversed_rows.replace_schema_metadata(metadata), stale)
    s3.put_object(Bucket="trusted", Key=handed, Body=stale.getvalue())
    run_edge(pipeline.deliver, state, store, SETTINGS)
    # Then it is not used: the rows are the day files', and it is removed all the same
    assert _details(store) == first
    assert store.list_keys("trusted", handed) == []

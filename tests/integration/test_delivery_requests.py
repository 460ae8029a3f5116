"""What Delivery asks of S3 for one file does not grow with the files its day already has:
every request of the whole stage is counted as the stages run on in-process moto S3."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import pyarrow.parquet as pq

from sluice import pipeline
from sluice.aws import ObjectStore
from sluice.lake import SourceObject
from tests.emf import SETTINGS

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
        state["validate"] = pipeline.validate(state, store, SETTINGS)
        state["trusted"] = pipeline.trusted(state, store, SETTINGS)
        requests.clear()
        counting[0] = True
        state["delivery"] = pipeline.deliver(state, store, SETTINGS)
        counting[0] = False
        per_file[n] = dict(requests)

    # Then Delivery's requests are the same for the 10th and the 50th file: the manifest read,
    # the day file read by ranges (its size, its footer, its one row group), DETAIL, QUALITY and
    # lineage put, and for the summary its partial, the state (read and put back), the
    # summary's generation looked at and the summary put
    assert per_file[10] == {"GetObject": 5, "PutObject": 6, "HeadObject": 2}
    assert per_file[50] == per_file[10]
    # And the day's first file builds the day's state from its partials: one listing, of itself
    assert per_file[1] == {"GetObject": 6, "PutObject": 6, "HeadObject": 2, "ListObjectsV2": 1}
    # And the summary counts every file once
    body = store.get_bytes(
        "delivery",
        "transactions/record_type=DAILY_SUMMARY/year=2024/month=01/day=15/daily_summary.parquet",
    )
    table = pq.read_table(io.BytesIO(body))
    assert table.select(["category", "record_count", "amount_sum"]).to_pylist() == [
        {"category": "Sales", "record_count": 50, "amount_sum": sum(n + 0.5 for n in range(1, 51))}
    ]

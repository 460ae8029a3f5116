"""What each stage reports about its outputs is what it wrote: `bytes_out` is the size of the
objects that appeared in S3, and Trusted's `mean_quality_score` is the mean of the scores in the
files it wrote. The stages run in turn on in-process moto S3."""

from __future__ import annotations

import io
from typing import Any

import pyarrow.parquet as pq
import pytest

from sluice import pipeline
from sluice.aws import ObjectStore
from sluice.config import LAYERS
from sluice.lake import SourceObject
from tests.emf import RESULTS, SETTINGS
from tests.support import run_edge

HEADER = "id,name,amount,date,category\n"
ROWS = (
    "1,A1,100,2024-01-15,Sales\n"
    "2,A2,50,2024-01-16,Sales\n"
    "3,A3,30,2024-01-16,Marketing\n"
    "4,,20,2024-01-16,Travel\n"  # no name: 0.5 * 4/5 + 0.5 = 0.9
    "5,A5,-7,2024-01-16,Sales\n"  # negative: quarantined
    "2,A2,50,2024-01-16,Sales\n"  # duplicate
)

Objects = dict[tuple[str, str], tuple[str, int]]


def objects(s3: Any) -> Objects:
    """(bucket, key) -> (ETag, size) of every object in the lake's buckets."""
    found: Objects = {}
    for bucket in LAYERS:
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            found[(bucket, item["Key"])] = (item["ETag"], item["Size"])
    return found


def written(before: Objects, after: Objects) -> int:
    """The bytes of the objects that are new or changed."""
    return sum(size for k, (etag, size) in after.items() if before.get(k) != (etag, size))


@pytest.mark.parametrize("dataset", ["transactions", "readings"])
def test_each_stage_reports_the_bytes_it_wrote_and_trusted_the_mean_score(
    s3: Any, dataset: str
) -> None:
    # Given a file in RAW, of a dataset with a contract or one whose contract is inferred
    key = f"{dataset}/year=2024/month=03/day=01/sales.csv"
    s3.put_object(Bucket="raw", Key=key, Body=(HEADER + ROWS).encode())
    head = s3.head_object(Bucket="raw", Key=key)
    source = SourceObject("raw", key, etag=head["ETag"], size=head["ContentLength"])
    state: dict[str, Any] = {"execution": "e", "dataset": dataset, "source": source.to_dict()}
    store = ObjectStore(s3)

    # When Validate, Trusted and Delivery run in turn
    reported, wrote = {}, {}
    for stage, run in (
        ("validate", pipeline.validate),
        ("trusted", pipeline.trusted),
        ("delivery", pipeline.deliver),
    ):
        before = objects(s3)
        state[stage] = run_edge(run, state, store, SETTINGS)
        reported[stage], wrote[stage] = state[stage]["bytes_out"], written(before, objects(s3))

    # Then each stage's bytes_out is the size of what it put into S3
    assert reported == wrote
    assert all(size > 0 for size in wrote.values())
    # and each section has the fields the metrics are fed from (tests/emf.py stubs them)
    for stage in ("validate", "trusted", "delivery"):
        assert set(state[stage]) == set(RESULTS[stage])
    # and the mean score is that of the rows kept in TRUSTED
    scores = [
        score
        for (bucket, k) in objects(s3)
        if bucket == "trusted" and k.startswith(f"{dataset}/year=")
        for score in pq.read_table(io.BytesIO(store.get_bytes(bucket, k)))[
            "data_quality_score"
        ].to_pylist()
    ]
    assert len(scores) == state["trusted"]["rows_trusted"]
    assert state["trusted"]["mean_quality_score"] == round(sum(scores) / len(scores), 4)
    if dataset == "transactions":
        assert sorted(scores) == [0.9, 1.0, 1.0, 1.0]
        assert state["trusted"]["mean_quality_score"] == 0.975

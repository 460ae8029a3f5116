"""Faults and duplicates: every event handled once, nothing lost, nothing rolled back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sluice import lake, ops
from sluice.errors import SluiceTransientError
from sluice.lake import SourceObject
from sluice.local import LocalCloud
from tests.reliability.conftest import Ledger, case
from tests.reliability.helpers import (
    HEADER,
    accounted,
    csv_rows,
    drained,
    empty,
    executions,
    finished,
    keys,
    parquet_rows,
    put,
    put_with_fault,
    queue_depth,
    s3_event,
)
from tests.support import eventually


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud() as running:
        yield running


def send(cloud: LocalCloud, body: str) -> None:
    cloud.client("sqs").send_message(QueueUrl=cloud.queue_urls["ingest"], MessageBody=body)


def statuses(found: list[dict[str, Any]]) -> list[str]:
    return sorted(e["status"] for e in found)


@case(1, "the same S3 event delivered 3 times")
def test_same_event_three_times(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    # Given a file put while the pump is stopped, and its event sent twice more
    cloud.pump.stop()
    source = put(cloud, tmp_path, "thrice.csv", csv_rows(3), "thrice")
    send(cloud, s3_event(source))
    send(cloud, s3_event(source))
    # When the pump runs again
    cloud.pump.start()
    found = finished(cloud, "thrice-", 1)
    drained(cloud)
    # Then it ran once: one execution, one TRUSTED file, nothing in the DLQ, every row accounted for
    assert statuses(found) == ["SUCCEEDED"]
    assert len(executions(cloud, "thrice-")) == 1
    assert queue_depth(cloud, "ingest_dlq") == (0, 0)
    assert len([k for k in keys(cloud, "trusted", "thrice/") if k.endswith(".parquet")]) == 1
    ledger.record(3, accounted(cloud, "thrice"))
    assert ledger.lost == 0


@case(2, "a duplicate event after the execution finished")
def test_duplicate_after_finish(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    # Given a file whose execution has finished
    source = put(cloud, tmp_path, "late.csv", csv_rows(2), "late")
    finished(cloud, "late-", 1)
    before = keys(cloud, "delivery", "late/")
    # When its event is delivered again
    send(cloud, s3_event(source))
    drained(cloud)
    # Then there is still one execution, nothing in the DLQ, and DELIVERY is unchanged
    assert statuses(executions(cloud, "late-")) == ["SUCCEEDED"]
    assert queue_depth(cloud, "ingest_dlq") == (0, 0)
    assert keys(cloud, "delivery", "late/") == before
    ledger.record(2, accounted(cloud, "late"))


@case(3, "an object overwritten; a late event for the old version")
def test_new_version_replaces_and_old_event_does_not_roll_back(
    cloud: LocalCloud, tmp_path: Path, ledger: Ledger
) -> None:
    # Given an object whose first version ran
    v1 = put(cloud, tmp_path, "versions.csv", csv_rows(3, 1, "2024-01-15"), "versions")
    finished(cloud, "versions-", 1)
    # When a second version overwrites it
    v2 = put(cloud, tmp_path, "versions.csv", csv_rows(2, 10, "2024-01-16"), "versions")
    assert (v1.key, v1.version_id != v2.version_id) == (v2.key, True)
    finished(cloud, "versions-", 2)
    # Then both versions ran, and v2's rows replaced v1's
    assert statuses(executions(cloud, "versions-")) == ["SUCCEEDED", "SUCCEEDED"]
    ids = sorted(r["id"] for r in parquet_rows(cloud, "trusted", "versions/"))
    assert ids == [10, 11]  # v2 replaced v1's rows (its day is gone)
    # a late event naming v1 (S3 events carry the version on a versioned bucket)
    # When a late event naming v1 arrives
    send(cloud, s3_event(v1, with_version=True))
    drained(cloud)
    # Then nothing runs again, and the rows stay v2's
    assert len(executions(cloud, "versions-")) == 2
    assert sorted(r["id"] for r in parquet_rows(cloud, "trusted", "versions/")) == [10, 11]
    ledger.record(2, len(ids))


@case(4, "s3:TestEvent is acknowledged with no execution and no error")
def test_test_event(cloud: LocalCloud, ledger: Ledger) -> None:
    # Given the pump's errors and the executions so far
    errors = list(cloud.pump.errors)
    before = len(executions(cloud))
    # When S3's TestEvent is delivered
    send(
        cloud,
        json.dumps(
            {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "raw", "RequestId": "x"}
        ),
    )
    drained(cloud)
    # Then no execution started, the pump saw no error, and nothing is in the DLQ
    assert len(executions(cloud)) == before
    assert cloud.pump.errors == errors
    assert queue_depth(cloud, "ingest_dlq") == (0, 0)


@case(5, "keys with spaces, '+', unicode and '%'")
def test_awkward_keys(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    # Given files whose names hold spaces, '+', accents and '%'
    names = ["a b.csv", "c+d.csv", "caf\u00e9 \u00fc.csv", "100%.csv"]
    # When each is uploaded
    for i, name in enumerate(names):
        folder = tmp_path / str(i)
        folder.mkdir()
        put(cloud, folder, name, csv_rows(1, i + 1), "awkward")
    found = finished(cloud, "awkward-", len(names))
    # Then each ran, every row trusted
    assert statuses(found) == ["SUCCEEDED"] * len(names)
    ids = sorted(r["id"] for r in parquet_rows(cloud, "trusted", "awkward/"))
    assert ids == [1, 2, 3, 4]
    ledger.record(4, len(ids))


@case(6, "a batch of 10 with one poison message")
def test_poison_message(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    # Given a pump whose responses are recorded
    responses: list[Any] = []
    invoke = cloud.pump.invoke

    def recording(function: str, event: Any) -> Any:
        result = invoke(function, event)
        responses.append((len(event["Records"]), result[0]))
        return result

    # And nine files and one message that is no S3 event, all waiting for one batch
    cloud.pump.stop()
    for i in range(9):
        put(cloud, tmp_path, f"batch_{i}.csv", csv_rows(1, i + 1), "batch")
    send(cloud, "this is not an S3 event")
    cloud.pump.invoke = recording
    try:
        # When the pump takes them as one batch of 10
        cloud.pump.start()
        found = finished(cloud, "batch-", 9)
        # the poison alone comes back, and after maxReceiveCount it is in the DLQ
        eventually(lambda: queue_depth(cloud, "ingest_dlq") == (1, 0), 60, "poison in the DLQ")
    finally:
        cloud.pump.invoke = invoke
    # Then the nine ran, the batch reported the poison alone as failed, and it is in the DLQ
    assert statuses(found) == ["SUCCEEDED"] * 9
    first = next(r for n, r in responses if n == 10)
    assert len(first["batchItemFailures"]) == 1
    letters = ops.dlq_list(ops.resolve(None, cloud.endpoint_url), "ingest", peek=True)
    assert [d["body"] for d in letters] == ["this is not an S3 event"]
    assert empty(cloud, "ingest_dlq") == 1
    ledger.record(9, accounted(cloud, "batch"))
    assert ledger.lost == 0


@case(7, "StartExecution throttled: the message comes back")
def test_throttled_start(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    # Given a starter whose StartExecution is throttled twice for this file
    throttled = []

    def throttle(stage: str, event: dict[str, Any]) -> None:
        if stage == "starter" and "throttled" in json.dumps(event) and len(throttled) < 2:
            throttled.append(1)
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                "StartExecution",
            )

    # When the file is uploaded
    found = put_with_fault(cloud, throttle, tmp_path, "throttled.csv", csv_rows(2), "throttled")
    drained(cloud)
    # Then the message came back until it started: one execution, nothing in the DLQ
    assert len(throttled) == 2
    assert statuses(found) == ["SUCCEEDED"]
    assert queue_depth(cloud, "ingest_dlq") == (0, 0)
    ledger.record(2, accounted(cloud, "throttled"))


@case(8, "a transient Lambda error is retried with backoff")
def test_transient_error_retried(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    # Given a Trusted stage that fails once with a transient error for this dataset
    failures = []

    def flaky(stage: str, event: dict[str, Any]) -> None:
        if stage == "trusted" and event["dataset"] == "flaky" and not failures:
            failures.append(1)
            raise SluiceTransientError("S3 SlowDown")

    # When the file is uploaded
    (found,) = put_with_fault(cloud, flaky, tmp_path, "flaky.csv", csv_rows(2), "flaky")
    # Then Trusted was retried and succeeded, naming the error of its first attempt
    shown = ops.show(ops.resolve(None, cloud.endpoint_url), found["name"])
    trusted = next(s for s in shown["stages"] if s["name"] == "trusted")
    assert (shown["status"], trusted["attempts"]) == ("SUCCEEDED", 2)
    assert trusted["errors"] == ["SluiceTransientError: S3 SlowDown"]
    ledger.record(2, accounted(cloud, "flaky"))


@case(9, "a stage dies mid-write; the rerun equals a clean run")
def test_mid_write_death(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    # Given a file run cleanly once under one dataset
    text = csv_rows(3, 1, "2024-01-15") + csv_rows(2, 4, "2024-01-16").removeprefix(HEADER)
    put(cloud, tmp_path, "clean.csv", text, "cleanrun")
    finished(cloud, "cleanrun-", 1)

    # When the same file runs under another dataset, and Delivery's process is killed as it
    # writes its second file
    (failed,) = put_with_fault(
        cloud, "tests.faults:die_mid_delivery_write", tmp_path, "mid.csv", text, "midwrite"
    )
    described = cloud.client("stepfunctions").describe_execution(
        executionArn=failed["executionArn"]
    )
    # Then the execution failed as its process exited
    assert (described["status"], described["error"]) == ("FAILED", "Runtime.ExitError")
    # part of DELIVERY was written (days are written at once, so how much is not fixed), but
    # no manifest says the run is complete
    assert (
        1 <= len(keys(cloud, "delivery", "midwrite/")) < len(keys(cloud, "delivery", "cleanrun/"))
    )
    assert keys(cloud, "delivery", "_lineage/manifests/midwrite/") == []

    # When the failed execution is rerun
    target = ops.resolve(None, cloud.endpoint_url)
    plans = ops.rerun(target, ops.plan_rerun(target, [failed["name"]]))
    assert [(p.action, p.done) for p in plans] == [("new", True)]
    # Then it completes, with a manifest
    finished(cloud, "midwrite-", 2)
    assert len(keys(cloud, "delivery", "_lineage/manifests/midwrite/")) == 1

    def content(dataset: str) -> list[Any]:
        drop = {"processed_timestamp", "delivery_timestamp", "source_file", "execution"}
        rows = parquet_rows(cloud, "delivery", f"{dataset}/record_type=DETAIL/")
        return sorted(
            (tuple(sorted((k, v) for k, v in r.items() if k not in drop)) for r in rows),
        )

    # And its rows are those of the clean run
    assert content("midwrite") == content("cleanrun")
    ledger.record(5, accounted(cloud, "midwrite"))


@case(10, "rerun after a fix reruns only the failed work, no duplicate rows")
def test_rerun_only_failed_work(cloud: LocalCloud, ledger: Ledger) -> None:
    # Given case 9's executions (this continues it)
    # When the executions and outputs are read
    names = [e["name"] for e in executions(cloud, "midwrite-")]
    # Then the other datasets' executions were not touched, and no id repeats
    assert sorted(n.endswith("-r1") for n in names) == [False, True]
    assert len(executions(cloud, "cleanrun-")) == 1
    for bucket, prefix in [
        ("trusted", "midwrite/"),
        ("delivery", "midwrite/record_type=DETAIL/"),
    ]:
        ids = [r["id"] for r in parquet_rows(cloud, bucket, prefix)]
        assert sorted(ids) == [1, 2, 3, 4, 5]
    summaries = parquet_rows(cloud, "delivery", "midwrite/record_type=DAILY_SUMMARY/")
    assert sum(r["record_count"] for r in summaries) == 5
    # When the failures DLQ is redriven
    target = ops.resolve(None, cloud.endpoint_url)
    redriven = ops.dlq_redrive(target, "failures")
    # Then the failure's dead letter is cleared: its execution has been rerun already
    assert [(r.done, r.what.endswith("(already rerun)")) for r in redriven] == [(True, True)]
    assert queue_depth(cloud, "failures") == (0, 0)
    ledger.record(5, len(ids))


@case(11, "the state stays under 8 KB for a 1M-row file")
def test_state_size_for_a_million_rows(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    from bench.generate import generate

    # Given a file of a million rows
    path = tmp_path / "million.csv"
    generate(1_000_000, path)
    # When it is uploaded and runs
    source = cloud.upload(path, "million")
    description = cloud.wait(source, timeout=300)
    # Then it succeeds, and no state of its execution is 8 KB or more
    assert description["status"] == "SUCCEEDED"
    sfn = cloud.client("stepfunctions")
    history = sfn.get_execution_history(executionArn=description["executionArn"])["events"]
    sizes = [
        len(details.get("input") or details.get("output") or "")
        for event in history
        for details in event.values()
        if isinstance(details, dict)
    ]
    assert 0 < max(sizes) < 8 * 1024
    counts = json.loads(description["output"])["trusted"]
    ledger.record(
        1_000_000, counts["rows_trusted"] + counts["rows_quarantined"] + counts["duplicates"]
    )


@case(12, "a burst of 200 uploads")
def test_burst_of_uploads(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    # Given 200 files over 20 event days: ten deliveries race for each day's summary
    for i in range(200):
        day = f"2024-03-{i % 20 + 1:02d}"
        put(cloud, tmp_path, f"burst_{i:03d}.csv", csv_rows(5, i * 5 + 1, day), "burst")
    # When they have run
    found = finished(cloud, "burst-", 200, timeout=600)
    drained(cloud)
    # Then every one succeeded, nothing is in a DLQ, and every row is trusted once
    assert len(found) == 200
    assert statuses(found) == ["SUCCEEDED"] * 200
    assert queue_depth(cloud, "ingest_dlq") == (0, 0)
    assert queue_depth(cloud, "failures") == (0, 0)
    ids = sorted(r["id"] for r in parquet_rows(cloud, "trusted", "burst/"))
    assert ids == list(range(1, 1001))
    # and each day's summary counts each of its 50 rows exactly once
    summaries = parquet_rows(cloud, "delivery", "burst/record_type=DAILY_SUMMARY/")
    got = sorted((r["summary_date"].day, r["record_count"], r["amount_sum"]) for r in summaries)
    day_ids = {d: [n for n in range(1, 1001) if (n - 1) // 5 % 20 == d - 1] for d in range(1, 21)}
    assert got == [(d, 50, sum(n + 0.5 for n in day_ids[d])) for d in range(1, 21)]
    ledger.record(1000, len(ids))


def starter_documents(cloud: LocalCloud) -> list[dict[str, Any]]:
    """The starter's log lines that are JSON documents: its log records and EMF metrics."""
    documents = []
    for line in cloud.runtime.logs["sluice-starter"]:
        try:
            documents.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return [d for d in documents if isinstance(d, dict)]


def gone_counted(cloud: LocalCloud) -> tuple[float, list[str]]:
    """The starter's `ObjectsGone` metric, summed, and the executions its `object gone` lines
    name."""
    documents = starter_documents(cloud)
    metric = sum(
        sum(v) if isinstance(v, list) else v
        for d in documents
        if "_aws" in d and (v := d.get("ObjectsGone")) is not None
    )
    return metric, [d["execution"] for d in documents if d.get("message") == "object gone"]


@case(38, "an event for an object deleted before the starter ran: acknowledged and counted")
def test_event_for_a_deleted_object(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    # Given an upload whose object is deleted before its event is handled
    cloud.pump.stop()
    source = put(cloud, tmp_path, "vanished.csv", csv_rows(2), "vanished")
    cloud.client("s3").delete_object(Bucket=source.bucket, Key=source.key)
    metric_before, named_before = gone_counted(cloud)
    # When the starter handles the event
    cloud.pump.start()
    drained(cloud)
    # Then no execution starts, nothing reaches a DLQ, and the starter counts and names it
    assert executions(cloud, "vanished-") == []
    assert queue_depth(cloud, "ingest_dlq") == (0, 0)
    assert queue_depth(cloud, "failures") == (0, 0)
    metric, named = gone_counted(cloud)
    name = lake.execution_name(
        SourceObject(source.bucket, source.key, etag=source.etag), "vanished"
    )
    assert (metric - metric_before, named[len(named_before) :]) == (1, [name])
    assert keys(cloud, "trusted", "vanished/") == keys(cloud, "quarantine", "vanished/") == []


@case(39, "an event naming a version that is gone: acknowledged, the current version runs")
def test_event_for_a_removed_version(cloud: LocalCloud, tmp_path: Path, ledger: Ledger) -> None:
    # Given two versions of one object, the first removed for good before any event is handled
    cloud.pump.stop()
    v1 = put(cloud, tmp_path, "pruned.csv", csv_rows(2, 1), "pruned")
    v2 = put(cloud, tmp_path, "pruned.csv", csv_rows(3, 10), "pruned")
    cloud.client("s3").delete_object(Bucket=v1.bucket, Key=v1.key, VersionId=v1.version_id)
    empty(cloud, "ingest")  # moto's own events name no version; AWS's do
    metric_before, named_before = gone_counted(cloud)
    # When the events for both versions arrive, as AWS sends them
    send(cloud, s3_event(v1, with_version=True))
    send(cloud, s3_event(v2, with_version=True))
    cloud.pump.start()
    (found,) = finished(cloud, "pruned-", 1)
    drained(cloud)
    # Then only the second version runs; the first is counted as gone, not as a failure
    assert (found["name"], found["status"]) == (lake.execution_name(v2, "pruned"), "SUCCEEDED")
    metric, named = gone_counted(cloud)
    assert (metric - metric_before, named[len(named_before) :]) == (
        1,
        [lake.execution_name(v1, "pruned")],
    )
    assert queue_depth(cloud, "ingest_dlq") == (0, 0)
    assert sorted(r["id"] for r in parquet_rows(cloud, "trusted", "pruned/")) == [10, 11, 12]
    ledger.record(3, accounted(cloud, "pruned"))


@case(40, "the object deleted after its execution started: SOURCE_GONE, typed, not retried")
def test_object_deleted_while_its_execution_runs(
    cloud: LocalCloud, tmp_path: Path, ledger: Ledger
) -> None:
    # Given an object that is deleted just before Validate reads it
    def delete_first(stage: str, event: Any) -> None:
        if stage == "validate" and event["dataset"] == "midway":
            source = event["source"]
            cloud.client("s3").delete_object(Bucket=source["bucket"], Key=source["key"])

    (found,) = put_with_fault(cloud, delete_first, tmp_path, "midway.csv", csv_rows(2), "midway")
    # Then the execution fails with a data error of its own: not retried, nothing to quarantine
    target = ops.resolve(None, cloud.endpoint_url)
    shown = ops.show(target, found["name"])
    assert (shown["status"], shown["failed_stage"], shown["error"]) == (
        "FAILED",
        "validate",
        "SluiceDataError",
    )
    assert shown["cause"] == (
        "SluiceDataError: SOURCE_GONE: the object, or the version the event named, "
        "is no longer in RAW"
    )
    assert [(s["name"], s["attempts"]) for s in shown["stages"]] == [
        ("validate", 2),
        ("trusted", 0),
        ("delivery", 0),
    ]
    assert keys(cloud, "quarantine", "midway/") == []
    (letter,) = ops.dlq_list(target, "failures")
    assert (letter["execution"], letter["stage"]) == (found["name"], "validate")
    assert empty(cloud, "failures") == 1

"""The sizing model: how large a file a set of stage sizes serves, and what to raise."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from sluice import sizing
from sluice.config import WORKFLOW_STAGES
from sluice.environments import StageSettings
from sluice.errors import SluiceDataError
from sluice.formats import (
    LIMIT_FORMATS,
    ReadLimits,
    limit_format_of_file,
    limit_format_of_name,
    read_file,
)
from sluice.sizing import Line, Raise, StageCost

# One stage's cost, easy to follow by hand: 100 MB + 1 MB per MB of memory, 2 MB of /tmp per
# MB, 0.1 CPU seconds per MB, 10 s + 0.01 s per MB of wall time.
SIMPLE = StageCost(
    memory_mb=Line(100, 1.0),
    tmp_mb=Line(0, 2.0),
    cpu_seconds=Line(0, 0.1),
    wall_seconds=Line(10, 0.01),
)
SIZE = StageSettings(memory_mb=1769, timeout_seconds=900, ephemeral_storage_mb=10_240)


@pytest.fixture
def simple_costs(monkeypatch: pytest.MonkeyPatch) -> None:
    for fmt in ("csv", "csv.gz"):
        monkeypatch.setitem(sizing.COSTS, fmt, dict.fromkeys(WORKFLOW_STAGES, SIMPLE))


def test_a_line_inverts_to_the_most_megabytes_within_a_budget() -> None:
    # Given lines that grow, stay flat and start over budget
    # When each is asked how many MB fit a budget
    # Then growth divides, flat is unbounded, and over budget is nothing
    assert Line(100, 2.0).largest(500) == 200.0
    assert Line(100, 0.0).largest(500) == float("inf")
    assert Line(600, 1.0).largest(500) == 0.0


def test_time_is_the_larger_of_wall_time_and_cpu_over_the_vcpus_memory_buys() -> None:
    # Given a stage of 1,000 MB: 100 CPU seconds and 20 s of wall time here
    # When it runs with one vCPU's memory (1,769 MB), half of it, and four vCPUs
    # Then CPU bounds the time until the wall time here does; the margin doubles both
    assert SIMPLE.seconds(1000, 1769) == 200.0
    assert SIMPLE.seconds(1000, 1769 // 2) == pytest.approx(400.23, abs=0.01)
    assert SIMPLE.seconds(1000, 4 * 1769) == 50.0


def test_the_tightest_setting_bounds_the_largest_file(simple_costs: None) -> None:
    # Given every stage at 1,769 MB, 900 s and 10,240 MB of /tmp
    stages = dict.fromkeys(WORKFLOW_STAGES, SIZE)

    # When the largest CSV they serve is computed
    largest = sizing.largest_file("csv", stages)

    # Then memory binds: 1769 / 1.25 margin - 100 base = 1315.2 MB
    assert largest == int((1769 / 1.25 - 100) * 2**20)


def test_a_one_day_memory_line_counts_where_it_is_the_larger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a stage whose memory is 100 + 1/MB over many days but 300 + 0.5/MB on one day
    one_day = StageCost(
        memory_mb=Line(100, 1.0),
        tmp_mb=Line(0, 2.0),
        cpu_seconds=Line(0, 0.1),
        wall_seconds=Line(10, 0.01),
        one_day_memory_mb=Line(300, 0.5),
    )
    monkeypatch.setitem(sizing.COSTS, "csv", dict.fromkeys(WORKFLOW_STAGES, one_day))

    # When the memory a file needs and the largest file are computed
    # Then the one-day line binds below 400 MB, the other line above it
    assert (one_day.memory_at(200), one_day.memory_at(400), one_day.memory_at(600)) == (
        400.0,
        500.0,
        700.0,
    )
    assert one_day.memory_needed(200) == 500.0
    # and at 1,769 MB the other line binds (1769 / 1.25 - 100 = 1315.2 MB, one day: 2230.4);
    # at 512 MB the one-day line does ((512 / 1.25 - 300) / 0.5 = 219.2 MB, other: 309.6)
    stages = dict.fromkeys(WORKFLOW_STAGES, SIZE)
    assert one_day.largest(SIZE) == pytest.approx(1769 / 1.25 - 100)
    small = StageSettings(memory_mb=512, timeout_seconds=900, ephemeral_storage_mb=10_240)
    assert one_day.largest(small) == pytest.approx((512 / 1.25 - 300) / 0.5)
    assert sizing.largest_file("csv", stages) == int((1769 / 1.25 - 100) * 2**20)


def test_delivery_serves_the_configured_limits_on_one_day() -> None:
    # Given cdk.json's Delivery (1,024 MB) and a file at its format's limit, all on one day
    delivery = StageSettings(memory_mb=1024, timeout_seconds=300, ephemeral_storage_mb=512)

    # When the memory its one-day line needs is computed
    # Then it fits: 2 GiB of CSV and 512 MiB of Parquet (the lines of bench/oneday-2026-12-03)
    csv = sizing.cost("csv")["delivery"]
    parquet = sizing.cost("parquet")["delivery"]
    assert csv.one_day_memory_mb == Line(389.511, 0.1492)
    assert csv.memory_needed(2048) <= delivery.memory_mb
    assert parquet.memory_needed(512) <= delivery.memory_mb
    assert csv.largest(delivery) >= 2048 and parquet.largest(delivery) >= 512


def test_what_to_raise_names_each_stage_setting_and_a_round_value(simple_costs: None) -> None:
    # Given small stages
    small = StageSettings(memory_mb=512, timeout_seconds=60, ephemeral_storage_mb=512)
    stages = dict.fromkeys(WORKFLOW_STAGES, small)

    # When a 1,000 MB CSV is asked for
    raises = sizing.raises_for("csv", 1000 * 2**20, stages)

    # Then memory goes to 1.25 × 1,100 MB rounded up to 64 MB, /tmp to 1.25 × 2,000 MB, and
    # the timeout to what the raised memory needs (200 × 1769 / 1408 s, in steps of 10 s)
    expected = []
    for stage in WORKFLOW_STAGES:
        expected += [
            Raise(stage, "memory_mb", 1408),
            Raise(stage, "ephemeral_storage_mb", 2560),
            Raise(stage, "timeout_seconds", 260),
        ]
    assert raises == expected
    assert [str(r) for r in expected[:3]] == [
        "stages.validate.memory_mb to 1408",
        "stages.validate.ephemeral_storage_mb to 2560",
        "stages.validate.timeout_seconds to 260",
    ]


def test_a_file_no_function_size_serves_has_nothing_to_raise(simple_costs: None) -> None:
    # Given any stages
    stages = dict.fromkeys(WORKFLOW_STAGES, SIZE)

    # When a CSV needing more memory than Lambda's largest function is asked for
    # Then there is nothing to raise
    assert sizing.raises_for("csv", 9000 * 2**20, stages) is None


def test_limits_are_the_configured_ones_capped_by_what_the_stages_serve(
    simple_costs: None,
) -> None:
    # Given stages serving 1315.2 MB of CSV, a general limit of 1 GiB and gzip CSV's own 2 GiB
    stages = dict.fromkeys(WORKFLOW_STAGES, SIZE)
    by_format = {"csv.gz": 2 * 2**30}

    # When each format's limit is computed
    limits = sizing.file_limits(2**30, by_format, stages)

    # Then CSV keeps the configured limit and gzip CSV is capped at what the stages serve
    assert (limits["csv"], limits["csv.gz"]) == (2**30, int((1769 / 1.25 - 100) * 2**20))
    assert set(limits) == set(LIMIT_FORMATS)


def test_gzip_inherits_its_inner_format_limit() -> None:
    # Given a limit for JSON Lines only
    # When the limits of its gzip stream and of CSV are asked for
    # Then gzip JSON Lines takes JSON Lines', CSV the general one
    assert sizing.configured_limit("jsonl.gz", 100, {"jsonl": 7}) == 7
    assert sizing.configured_limit("csv", 100, {"jsonl": 7}) == 100
    assert sizing.configured_limit("csv", None, {}) is None


def test_every_format_has_a_measured_cost() -> None:
    # Given the measured costs
    # When each limit format's cost is looked up
    # Then each has every workflow stage
    for fmt in LIMIT_FORMATS:
        assert set(sizing.cost(fmt)) == set(WORKFLOW_STAGES)


def test_gb_seconds_sum_memory_times_time_over_the_stages(simple_costs: None) -> None:
    # Given every stage at 1,769 MB
    stages = dict.fromkeys(WORKFLOW_STAGES, SIZE)

    # When a 1,000 MB CSV is costed: 200 s per stage
    # Then it costs 3 × 1769 / 1024 GB × 200 s
    assert sizing.gb_seconds("csv", 1000 * 2**20, stages) == pytest.approx(3 * 1769 / 1024 * 200)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", "csv"),
        ("a.CSV.gz", "csv.gz"),
        ("a.jsonl.gz", "jsonl.gz"),
        ("a.json", "json"),
        ("a.xlsx", "xlsx"),
        ("a.parquet", "parquet"),
        ("a.parquet.gz", "parquet"),
        ("a.dat", None),
    ],
)
def test_a_name_says_which_limit_applies(name: str, expected: str | None) -> None:
    # Given an object's name
    # When the limit that applies to it is read from the name, Then it is its format's, gzip or not
    assert limit_format_of_name(name) == expected


def test_a_gzip_without_its_suffix_is_held_to_the_gzip_limit(tmp_path: Path) -> None:
    # Given a gzip CSV named like a plain one
    path = tmp_path / "object"
    path.write_bytes(gzip.compress(b"id,name\n1,A\n"))

    # When its limit format is read from the file
    # Then it is gzip CSV's
    assert limit_format_of_file(path, "a.csv") == "csv.gz"


def test_a_gzip_inflating_past_its_limit_is_too_large(tmp_path: Path) -> None:
    # Given a gzip CSV of 10,008 bytes inflated
    path = tmp_path / "big.csv.gz"
    body = b"id,name\n" + (b"1," + b"A" * 47 + b"\n") * 200
    path.write_bytes(gzip.compress(body))
    assert len(body) == 10_008

    # When it is read with a limit of 9,999 inflated bytes
    limits = ReadLimits(max_inflated_bytes=9_999, limit_format="csv.gz")
    with pytest.raises(SluiceDataError) as err:
        read_file(path, path.name, limits)

    # Then it is FILE_TOO_LARGE, naming the limit and the setting to raise
    assert err.value.to_dict() == {
        "reason": "FILE_TOO_LARGE",
        "message": "inflates past the csv.gz limit of 9999 bytes; raise "
        "max_file_bytes_by_format.csv.gz (with stage sizes that serve it)",
        "format": "csv.gz",
        "limit": 9_999,
        "raise_setting": "max_file_bytes_by_format.csv.gz",
    }
    # And one byte more of limit reads it
    assert read_file(path, path.name, ReadLimits(max_inflated_bytes=len(body)))[1].num_rows == 200

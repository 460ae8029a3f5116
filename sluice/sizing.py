"""How large a file each stage's memory, `/tmp` and timeout serve, per format.

A small linear model of what the stages use, fitted to `python -m bench.sizing` (every file run
through the local cloud, whose functions run with Lambda's limits enforced). Per format and
stage, over the megabytes the stage works on (MB = 2**20 bytes; for gzip the inflated bytes,
which its limit bounds):

    memory MB    = base + k × MB     the invocation's Max Memory Used
    /tmp MB      = base + k × MB     Validate: the download and the staged Parquet; Trusted:
                                     the staged file, its spills and its day files
    CPU seconds  = base + k × MB     all threads, on the measuring machine
    wall seconds = base + k × MB     elapsed on the measuring machine (2 vCPU), S3 included

Lambda gives a function CPU in proportion to its memory: "At 1,769 MB, a function has the
equivalent of one vCPU (one vCPU-second of credits per second)"
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html). So a stage's time on
Lambda is taken as the larger of its wall time here and its CPU seconds spread over the vCPUs
its memory buys, times a margin. Memory and `/tmp` get margins too: memory is sampled every
10 ms and a real file is not the benchmark's.

`EnvironmentSettings` refuses a configured limit the stage sizes cannot serve (naming what to
raise, from `raises_for`); Validate holds each file to its format's limit (`file_limits`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sluice.config import WORKFLOW_STAGES
from sluice.formats import GZIP_FORMATS, LIMIT_FORMATS

if TYPE_CHECKING:
    from sluice.environments import StageSettings

MB = 2**20
# The Lambda documentation quoted above.
MB_PER_VCPU = 1769
# Lambda's bounds (memory and ephemeral storage in MB, timeout in seconds).
MEMORY_RANGE = (128, 10_240)
EPHEMERAL_RANGE = (512, 10_240)
MAX_TIMEOUT_SECONDS = 900

MEMORY_MARGIN = 1.25
TMP_MARGIN = 1.25
TIME_MARGIN = 2.0
# Settings are raised in steps of these sizes, so a message names a round number.
MEMORY_STEP_MB = 64
EPHEMERAL_STEP_MB = 64
TIMEOUT_STEP_SECONDS = 10


@dataclass(frozen=True)
class Line:
    """base + per_mb × MB."""

    base: float
    per_mb: float

    def at(self, mb: float) -> float:
        return self.base + self.per_mb * mb

    def largest(self, budget: float) -> float:
        """The most MB for which the line stays within `budget` (inf if it never grows)."""
        if self.per_mb <= 0:
            return math.inf if self.base <= budget else 0.0
        return max(0.0, (budget - self.base) / self.per_mb)


@dataclass(frozen=True)
class StageCost:
    memory_mb: Line
    tmp_mb: Line
    cpu_seconds: Line
    wall_seconds: Line
    # Memory when every row falls on one day (a daily extract): a stage that works a day at a
    # time has other lines for such a file than for rows spread over many days; it needs the
    # larger of the two.
    one_day_memory_mb: Line | None = None

    def memory_at(self, mb: float) -> float:
        one_day = 0.0 if self.one_day_memory_mb is None else self.one_day_memory_mb.at(mb)
        return max(self.memory_mb.at(mb), one_day)

    def memory_needed(self, mb: float) -> float:
        return MEMORY_MARGIN * self.memory_at(mb)

    def tmp_needed(self, mb: float) -> float:
        return TMP_MARGIN * self.tmp_mb.at(mb)

    def seconds(self, mb: float, memory_mb: int) -> float:
        """Seconds on Lambda with `memory_mb` of memory (and its share of CPU), margin included."""
        vcpus = memory_mb / MB_PER_VCPU
        return TIME_MARGIN * max(self.wall_seconds.at(mb), self.cpu_seconds.at(mb) / vcpus)

    def largest(self, size: StageSettings) -> float:
        """The most MB this stage serves with `size`."""
        vcpus = size.memory_mb / MB_PER_VCPU
        one_day = self.one_day_memory_mb or self.memory_mb
        return min(
            self.memory_mb.largest(size.memory_mb / MEMORY_MARGIN),
            one_day.largest(size.memory_mb / MEMORY_MARGIN),
            self.tmp_mb.largest(size.ephemeral_storage_mb / TMP_MARGIN),
            self.wall_seconds.largest(size.timeout_seconds / TIME_MARGIN),
            self.cpu_seconds.largest(size.timeout_seconds * vcpus / TIME_MARGIN),
        )


def _line(base: float, per_mb: float) -> Line:
    return Line(base, per_mb)


def _trusted(memory: float, tmp: float, cpu: float, wall: float) -> StageCost:
    """Trusted's lines for a format, from their slopes per input MB: Trusted reads the staged
    Parquet, so its bases are one fit for every format."""
    return StageCost(
        memory_mb=_line(451.485, memory),
        tmp_mb=_line(1.599, tmp),
        cpu_seconds=_line(1.406, cpu),
        wall_seconds=_line(6.753, wall),
    )


def _delivery(memory: float, cpu: float, wall: float, one_day_memory: float) -> StageCost:
    """Delivery's lines for a format, from their slopes per input MB: as Trusted's, its bases
    are one fit for every format; it writes nothing to `/tmp`."""
    return StageCost(
        memory_mb=_line(213.098, memory),
        tmp_mb=_line(0.0, 0.0),
        cpu_seconds=_line(7.934, cpu),
        wall_seconds=_line(24.69, wall),
        one_day_memory_mb=_line(389.511, one_day_memory),
    )


# Fitted on 2026-12-03 to bench/sizing-2026-12-03.json by `python -m bench.sizing --fit` (2 vCPU
# Intel Xeon, Python 3.11.7, pyarrow 26.0.1, openpyxl 3.1.5; docs/deploy.md, "Sizing"): 3-4
# sizes per format up to 454 MB of CSV, 92 MB of Parquet, 98 MB of JSON and JSON Lines, and
# 2.8 MB (100k rows) of xlsx, whose lines are extrapolated the furthest. Validate's lines are per
# format; Trusted's and Delivery's are one fit over the staged Parquet's MB (the same whatever
# the format), scaled by each format's staged MB per input MB. gzip CSV's /tmp is plain CSV's.
# Delivery's `one_day_memory_mb`: fitted on 2026-12-03 to bench/oneday-2026-12-03.json (`python -m
# bench.oneday --fit`: CSVs of 1M, 3M and 5M rows all on one day, through the local cloud with
# cdk.json's dev sizes), over the staged MB as 389.511 + 0.39713 × MB and scaled per format
# as the lines fitted over 90 days (0.73707 of each format's slope). Delivery holds about one
# DETAIL row group of the day (512k rows) whatever the day file's size: the base is that row
# group's working set, which a day of fewer rows does not reach.
# Trusted's `memory_mb` slope: refitted on 2026-12-03 to bench/memory-2026-12-03.json (`python -m
# bench.memory`: CSVs of 1M, 5M and 20M rows, each in a fresh local cloud) once Trusted held
# nothing per row (docs/performance.md, "How memory stays flat"): 0.05805 × staged MB, scaled
# per format as above. Its base stays the warm fit's 451.485 MB, above every fresh measurement
# (393-404 MB): a warm environment keeps some of what earlier files made it allocate.
COSTS: dict[str, dict[str, StageCost]] = {
    "csv": {
        "validate": StageCost(
            memory_mb=_line(291.953, 0.15928),
            tmp_mb=_line(0.396, 1.36674),
            cpu_seconds=_line(0.323, 0.00888),
            wall_seconds=_line(0.316, 0.04484),
        ),
        "trusted": _trusted(memory=0.02176, tmp=1.96399, cpu=0.02544, wall=0.03223),
        "delivery": _delivery(memory=0.20242, cpu=0.01351, wall=0.02225, one_day_memory=0.1492),
    },
    "csv.gz": {
        "validate": StageCost(
            memory_mb=_line(318.374, 0.26305),
            tmp_mb=_line(0.396, 1.36674),
            cpu_seconds=_line(0.122, 0.01259),
            wall_seconds=_line(0.281, 0.01152),
        ),
        "trusted": _trusted(memory=0.02176, tmp=1.96399, cpu=0.02544, wall=0.03223),
        "delivery": _delivery(memory=0.20242, cpu=0.01351, wall=0.02225, one_day_memory=0.1492),
    },
    "jsonl": {
        "validate": StageCost(
            memory_mb=_line(304.636, 10.5744),
            tmp_mb=_line(0.065, 1.17089),
            cpu_seconds=_line(1.018, 0.03865),
            wall_seconds=_line(0.868, 0.07541),
        ),
        "trusted": _trusted(memory=0.00998, tmp=0.90079, cpu=0.01167, wall=0.01478),
        "delivery": _delivery(memory=0.09284, cpu=0.0062, wall=0.0102, one_day_memory=0.06843),
    },
    "json": {
        "validate": StageCost(
            memory_mb=_line(279.851, 7.6896),
            tmp_mb=_line(0.058, 1.1691),
            cpu_seconds=_line(0.035, 0.02971),
            wall_seconds=_line(1.003, 0.03999),
        ),
        "trusted": _trusted(memory=0.00988, tmp=0.892, cpu=0.01155, wall=0.01464),
        "delivery": _delivery(memory=0.09194, cpu=0.00614, wall=0.0101, one_day_memory=0.06777),
    },
    "xlsx": {
        "validate": StageCost(
            memory_mb=_line(265.383, 18.70183),
            tmp_mb=_line(-0.048, 1.60878),
            cpu_seconds=_line(0.359, 2.28442),
            wall_seconds=_line(1.538, 2.80076),
        ),
        "trusted": _trusted(memory=0.03461, tmp=3.12381, cpu=0.04046, wall=0.05126),
        "delivery": _delivery(memory=0.32196, cpu=0.02149, wall=0.03538, one_day_memory=0.23731),
    },
    "parquet": {
        "validate": StageCost(
            memory_mb=_line(363.888, 1.14909),
            tmp_mb=_line(0.03, 2.80472),
            cpu_seconds=_line(0.048, 0.03272),
            wall_seconds=_line(-0.451, 0.08719),
        ),
        "trusted": _trusted(memory=0.10459, tmp=9.4398, cpu=0.12227, wall=0.1549),
        "delivery": _delivery(memory=0.97293, cpu=0.06494, wall=0.10692, one_day_memory=0.71713),
    },
}


def cost(fmt: str) -> Mapping[str, StageCost]:
    """The stages' costs for a file of `fmt` (a key of `LIMIT_FORMATS`).

    gzip JSON and JSON Lines were not measured apart: parsing whole JSON dominates their cost,
    so they take the plain format's lines (over the inflated bytes).
    """
    if fmt in COSTS:
        return COSTS[fmt]
    inner = fmt.removesuffix(".gz")
    if inner in GZIP_FORMATS and inner in COSTS:
        return COSTS[inner]
    raise KeyError(f"no measured cost for format {fmt!r}")


def largest_file(fmt: str, stages: Mapping[str, StageSettings]) -> int:
    """The largest file of `fmt` (in bytes; inflated bytes for gzip) the stage sizes serve."""
    costs = cost(fmt)
    mb = min(costs[stage].largest(stages[stage]) for stage in WORKFLOW_STAGES)
    return int(mb * MB)


def configured_limit(
    fmt: str, max_file_bytes: int | None, by_format: Mapping[str, int]
) -> int | None:
    """The configured limit of `fmt`: its own, a gzip stream's inner format's, then the
    general `max_file_bytes` (None: nothing configured, the stages' largest applies)."""
    if fmt in by_format:
        return by_format[fmt]
    inner = fmt.removesuffix(".gz")
    if inner != fmt and inner in by_format:
        return by_format[inner]
    return max_file_bytes


def file_limits(
    max_file_bytes: int | None, by_format: Mapping[str, int], stages: Mapping[str, StageSettings]
) -> dict[str, int]:
    """Each format's limit: the configured one, but never more than the stages serve."""
    limits = {}
    for fmt in LIMIT_FORMATS:
        served = largest_file(fmt, stages)
        configured = configured_limit(fmt, max_file_bytes, by_format)
        limits[fmt] = served if configured is None else min(configured, served)
    return limits


@dataclass(frozen=True)
class Raise:
    """A stage setting to raise, and to what, for a file size to be served."""

    stage: str
    setting: str
    value: int

    def __str__(self) -> str:
        return f"stages.{self.stage}.{self.setting} to {self.value}"


def _round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)


def raises_for(fmt: str, size: int, stages: Mapping[str, StageSettings]) -> list[Raise] | None:
    """What to raise so the stages serve a `size`-byte file of `fmt` ([] if they do already);
    None if no function size Lambda allows would."""
    mb = size / MB
    raises: list[Raise] = []
    for stage in WORKFLOW_STAGES:
        stage_cost = cost(fmt)[stage]
        current = stages[stage]
        memory = current.memory_mb
        needed_memory = stage_cost.memory_needed(mb)
        if needed_memory > memory:
            memory = _round_up(needed_memory, MEMORY_STEP_MB)
        if TIME_MARGIN * stage_cost.wall_seconds.at(mb) > MAX_TIMEOUT_SECONDS:
            return None
        # More memory also buys the CPU a longer file needs within Lambda's longest timeout.
        if stage_cost.seconds(mb, memory) > MAX_TIMEOUT_SECONDS:
            cpu = TIME_MARGIN * stage_cost.cpu_seconds.at(mb)
            memory = _round_up(cpu * MB_PER_VCPU / MAX_TIMEOUT_SECONDS, MEMORY_STEP_MB)
        if memory > MEMORY_RANGE[1]:
            return None
        if memory > current.memory_mb:
            raises.append(Raise(stage, "memory_mb", memory))
        tmp = stage_cost.tmp_needed(mb)
        if tmp > current.ephemeral_storage_mb:
            ephemeral = _round_up(tmp, EPHEMERAL_STEP_MB)
            if ephemeral > EPHEMERAL_RANGE[1]:
                return None
            raises.append(Raise(stage, "ephemeral_storage_mb", ephemeral))
        seconds = stage_cost.seconds(mb, memory)
        if seconds > current.timeout_seconds:
            timeout = min(_round_up(seconds, TIMEOUT_STEP_SECONDS), MAX_TIMEOUT_SECONDS)
            raises.append(Raise(stage, "timeout_seconds", timeout))
    return raises


def gb_seconds(fmt: str, size: int, stages: Mapping[str, StageSettings]) -> float:
    """What a `size`-byte file of `fmt` costs in Lambda GB-seconds, over the three stages
    (memory GB × modelled seconds, margin included)."""
    mb = size / MB
    return sum(
        stages[stage].memory_mb / 1024 * cost(fmt)[stage].seconds(mb, stages[stage].memory_mb)
        for stage in WORKFLOW_STAGES
    )

"""Seeded mutations of valid files of every format, through Validate and Trusted in process
(moto's in-process S3): every outcome is SUCCEEDED with exact row accounting, or a typed
`SluiceDataError` with a documented reason code, a quarantine copy and `reason.json`."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import random
import re
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sluice import lake, pipeline
from sluice.aws import ObjectStore
from sluice.errors import SluiceDataError
from sluice.lake import SourceObject
from tests.emf import SETTINGS
from tests.reliability.conftest import Ledger, case
from tests.support import run_edge

SEED = 14
MUTATIONS_PER_BASE = 11
DOCS = Path(__file__).parents[2] / "docs"

TYPED_CONTRACT = """\
dataset: typed
columns:
  id: {type: int, required: true}
  price: decimal
  ratio: {type: float, non_finite: allow}
  ok: bool
  seen: date
  at: timestamp
  code:
    type: string
    rules:
      - {regex: "[A-Z]{2}[0-9]+", action: flag}
primary_key: [id]
event_date: seen
"""


def documented_file_reasons() -> set[str]:
    """The reason codes docs/quality.md lists for files rejected as a whole."""
    text = (DOCS / "quality.md").read_text(encoding="utf-8")
    section = text[text.index("## Files rejected as a whole") :]
    return set(re.findall(r"`([A-Z][A-Z_]+)`", section))


def transactions() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {
            "id": i,
            "name": f"N{i}",
            "amount": round(i * 12.5, 2),
            "date": f"2024-01-{10 + i % 3:02d}",
            "category": "Sales" if i % 2 else "Marketing",
        }
        for i in range(1, 11)
    ]
    rows.append({"id": 3, "name": "again", "amount": 1.0, "date": "2024-01-10", "category": None})
    rows.append({"id": 11, "name": "neg", "amount": -5.0, "date": "2024-01-11", "category": "X"})
    return rows


def typed() -> list[dict[str, Any]]:
    ats = [
        "2024-01-10T10:00:00",
        "2024-01-10T10:00:00.123456789Z",
        "2024-01-10T10:00:00-05:00",
        "2024-01-10 10:00:00+0530",
        "20240110T100000Z",
    ]
    return [
        {
            "id": i,
            "price": f"{i}.25",
            "ratio": ["0.5", "nan", "-Infinity", "1e400", "2"][i % 5],
            "ok": ["true", "no", "1"][i % 3],
            "seen": ["2024-01-10", "20240111", "2024-012", "2024-01-13T00:00:00Z"][i % 4],
            "at": ats[i % len(ats)],
            "code": f"AB{i}" if i % 4 else "bad",
        }
        for i in range(1, 11)
    ]


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    names = list(rows[0])
    lines = [",".join(names)] + [
        ",".join("" if r[n] is None else str(r[n]) for n in names) for r in rows
    ]
    return ("\n".join(lines) + "\n").encode()


def as_xlsx(rows: list[dict[str, Any]]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    names = list(rows[0])
    sheet.append(names)
    for row in rows:
        sheet.append([row[n] for n in names])
    raw = io.BytesIO()
    book.save(raw)
    # Fixed member times and document dates: the same bytes on every run, so a mutation at an
    # offset always hits the same content.
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as sink:
        for info in source.infolist():
            body = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2024-01-01T00:00:00Z", body)
            sink.writestr(zipfile.ZipInfo(info.filename, (2024, 1, 1, 0, 0, 0)), body)
    return out.getvalue()


def as_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def text_table(rows: list[dict[str, Any]]) -> pa.Table:
    names = list(rows[0])
    return pa.table(
        {n: pa.array([None if r[n] is None else str(r[n]) for r in rows]) for n in names}
    )


def native_tables() -> dict[str, pa.Table]:
    """Parquet files whose columns are of native types, some of which no contract type reads."""
    base = transactions()
    n = len(base)
    ids = pa.array([r["id"] for r in base], pa.int64())
    days = pa.array([dt.date.fromisoformat(r["date"]) for r in base], pa.date32())
    cats = pa.array([r["category"] for r in base], pa.string())
    amounts = [r["amount"] for r in base]

    def with_amount(values: pa.Array, extra: dict[str, pa.Array] | None = None) -> pa.Table:
        columns = {"id": ids, "name": pa.array([r["name"] for r in base]), "amount": values}
        return pa.table({**columns, "date": days, "category": cats, **(extra or {})})

    odd = [float("nan"), float("inf"), float("-inf")] + [1.0] * (n - 3)
    floats, nanos = pa.float64(), pa.timestamp("ns", tz="UTC")
    noon = dt.datetime(2024, 1, 10, 12, tzinfo=dt.UTC)
    return {
        "native": with_amount(pa.array(amounts, pa.float64())),
        "float32": with_amount(pa.array(amounts, pa.float32())),
        "non_finite": with_amount(pa.array(odd, pa.float64())),
        "struct": with_amount(pa.array([{"v": a} for a in amounts])),
        "list": with_amount(pa.array([[a] for a in amounts])),
        "map": with_amount(pa.array([[("v", a)] for a in amounts], pa.map_(pa.string(), floats))),
        "binary": with_amount(pa.array([b"\xff\xfe"] + [str(a).encode() for a in amounts[1:]])),
        "dictionary": with_amount(pa.array([str(a) for a in amounts]).dictionary_encode()),
        "large_string": with_amount(pa.array([str(a) for a in amounts], pa.large_string())),
        "decimal": with_amount(pa.array([Decimal(str(a)) for a in amounts], pa.decimal128(20, 2))),
        "timestamp_tz": with_amount(pa.array(amounts), {"date": pa.array([noon] * n, nanos)}),
        "nulls": with_amount(pa.nulls(n)),
        "uint64": with_amount(pa.array([2**64 - 1] + [1] * (n - 1), pa.uint64())),
    }  # fmt: skip


@dataclass(frozen=True)
class Base:
    dataset: str
    name: str
    body: bytes


def bases() -> list[Base]:
    found: list[Base] = []
    for dataset, rows in (("transactions", transactions()), ("typed", typed())):
        csv = as_csv(rows)
        records = [{k: v for k, v in r.items() if v is not None} for r in rows]
        found += [
            Base(dataset, "file.csv", csv),
            Base(dataset, "file.csv.gz", gzip.compress(csv, mtime=0)),
            Base(dataset, "file.json", json.dumps(records).encode()),
            Base(dataset, "file.jsonl", "\n".join(json.dumps(r) for r in records).encode()),
            Base(dataset, "file.xlsx", as_xlsx(rows)),
            Base(dataset, "file.parquet", as_parquet(text_table(rows))),
        ]
    found += [
        Base("transactions", f"{kind}.parquet", as_parquet(table))
        for kind, table in native_tables().items()
    ]
    return found


Mutation = Callable[[random.Random, Base], Base]
RENAMES = [".csv", ".csv.gz", ".json", ".jsonl", ".xlsx", ".parquet", ".txt", ""]


def _named(base: Base, body: bytes, name: str | None = None) -> Base:
    return Base(base.dataset, name or base.name, body)


def truncate(rng: random.Random, base: Base) -> Base:
    return _named(base, base.body[: rng.randrange(len(base.body))])


def flip(rng: random.Random, base: Base) -> Base:
    body = bytearray(base.body)
    for _ in range(rng.randint(1, 8)):
        body[rng.randrange(len(body))] = rng.randrange(256)
    return _named(base, bytes(body))


def splice(rng: random.Random, base: Base) -> Base:
    """A run of bytes repeated, dropped or replaced with noise."""
    body = base.body
    start = rng.randrange(len(body))
    end = min(len(body), start + rng.randint(1, 64))
    middle = rng.choice([body[start:end] * 3, b"", rng.randbytes(end - start)])
    return _named(base, body[:start] + middle + body[end:])


def rename(rng: random.Random, base: Base) -> Base:
    stem = base.name.split(".")[0]
    return _named(base, base.body, stem + rng.choice(RENAMES))


def deep(rng: random.Random, base: Base) -> Base:
    depth = rng.choice([500, 5_000, 50_000])
    nested = "[" * depth + "1" + "]" * depth
    if rng.random() < 0.5:
        body = f'[{{"id": 1, "amount": {nested}, "date": "2024-01-10"}}]'
        return _named(base, body.encode(), "deep.json")
    return _named(base, ("id,amount,date\n1," + "[" * depth + ",2024-01-10\n").encode(), "deep.csv")


def huge(rng: random.Random, base: Base) -> Base:
    size = rng.choice([70_000, 1_100_000])
    field = rng.choice(["x", "9", "é"]) * size
    header = "id,name,amount,date,category\n"
    body = header + f"1,{field},2.5,2024-01-10,Sales\n2,b,3.5,2024-01-11,Sales\n"
    return _named(base, body.encode(), "huge.csv")


ODD_VALUES: list[Any] = [
    {"nested": {"x": [1, 2]}}, [1, 2, 3], True, None, 10**30, -(10**400), 1e308, "", "  ",
    "NaN", "Infinity", "-inf", "1e400", "\u0000", "\ud7ff", "2024-02-30", "9999-12-31T23:59:59Z",
    "2024-01-10T10:00:00+25:00", "0x1F", "1_000", "١٢٣",
]  # fmt: skip


def odd_types(rng: random.Random, base: Base) -> Base:
    """A JSON Lines file whose values are of types and shapes the contract does not expect."""
    rows = transactions() if base.dataset == "transactions" else typed()
    for row in rows:
        for name in list(row):
            if rng.random() < 0.3:
                row[name] = rng.choice(ODD_VALUES)
    lines = [json.dumps(r, allow_nan=True) for r in rows]
    return _named(base, "\n".join(lines).encode(), "odd.jsonl")


MUTATIONS: list[Mutation] = [truncate, flip, flip, splice, rename, deep, huge, odd_types]


def fuzz_cases() -> list[tuple[str, Base]]:
    rng = random.Random(SEED)
    found: list[tuple[str, Base]] = []
    for base in bases():
        found.append(("none", base))
        for _ in range(MUTATIONS_PER_BASE):
            mutation = rng.choice(MUTATIONS)
            found.append((mutation.__name__, mutation(rng, base)))
    return found


def run_case(s3: Any, store: ObjectStore, number: int, item: Base) -> tuple[str, int, int]:
    """(outcome, rows in, rows found again) of one file through Validate and Trusted, its
    invariants checked."""
    key = f"{item.dataset}/fuzz/{number:03d}-{item.name}"
    s3.put_object(Bucket="raw", Key=key, Body=item.body)
    head = s3.head_object(Bucket="raw", Key=key)
    source = SourceObject("raw", key, etag=head["ETag"], size=head["ContentLength"])
    state: dict[str, Any] = {"execution": "e", "dataset": item.dataset, "source": source.to_dict()}
    try:
        state["validate"] = run_edge(pipeline.validate, state, store, SETTINGS)
        state["trusted"] = run_edge(pipeline.trusted, state, store, SETTINGS)
    except SluiceDataError as error:
        prefix = lake.quarantine_file_prefix(item.dataset, source)
        copy = s3.get_object(Bucket="quarantine", Key=prefix + source.name)["Body"].read()
        reason = json.loads(
            s3.get_object(Bucket="quarantine", Key=prefix + "reason.json")["Body"].read()
        )
        assert copy == item.body
        assert reason["reason"] == error.reason
        assert s3.get_object(Bucket="raw", Key=key)["Body"].read() == item.body
        return error.reason, 0, 0
    validated, judged = state["validate"], state["trusted"]
    manifest = json.loads(store.get_bytes(**judged["manifest"]))
    assert validated["rows_in"] == judged["rows_in"]
    assert judged["rows_in"] == (
        judged["rows_trusted"] + judged["rows_quarantined"] + judged["duplicates"]
    )
    assert sum(o["rows"] for o in manifest["trusted"]) == judged["rows_trusted"]
    assert sum(o["rows"] for o in manifest["quarantined"]) == judged["rows_quarantined"]
    assert s3.get_object(Bucket="raw", Key=key)["Body"].read() == item.body
    found = judged["rows_trusted"] + judged["rows_quarantined"] + judged["duplicates"]
    return "SUCCEEDED", validated["rows_in"], found


@case(26, "fuzz: seeded mutations of every format end SUCCEEDED or as typed data errors")
def test_fuzzed_files_succeed_with_exact_accounting_or_fail_typed(s3: Any, ledger: Ledger) -> None:
    # Given valid files of every format, and seeded mutations of each
    cases = fuzz_cases()
    assert len(cases) >= 300
    s3.put_object(Bucket="raw", Key="_contracts/typed.yaml", Body=TYPED_CONTRACT.encode())
    store = ObjectStore(s3)
    documented = documented_file_reasons()
    outcomes: Counter[str] = Counter()
    untyped: list[str] = []
    # When each goes through Validate and Trusted
    for number, (mutation, item) in enumerate(cases):
        try:
            outcome, rows_in, rows_found = run_case(s3, store, number, item)
        except Exception as exc:  # every escape is a finding, listed below
            untyped.append(f"#{number} {mutation} {item.dataset}/{item.name}: {exc!r}"[:300])
            continue
        outcomes[outcome] += 1
        ledger.record(rows_in, rows_found)
        if outcome != "SUCCEEDED" and outcome not in documented:
            untyped.append(
                f"#{number} {mutation} {item.dataset}/{item.name}: {outcome} undocumented"
            )
        if mutation == "none":
            # Then every unmutated file succeeds
            assert outcome == "SUCCEEDED", f"#{number} {item.dataset}/{item.name}: {outcome}"
    # Then nothing escaped untyped, and the mutations reached both outcomes
    assert untyped == []
    assert outcomes["SUCCEEDED"] > 0 and sum(outcomes.values()) - outcomes["SUCCEEDED"] > 0

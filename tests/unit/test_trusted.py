"""Trusted's quality engine: rules, null policies, duplicates, outliers, bands, score."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from sluice.contracts import Contract, Outliers, Rule, load_contract_text
from sluice.stages import delivery, keys, outliers, rules, trusted
from sluice.stages.outliers import fences_by_group

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
CTX = trusted.RunContext("s3://raw/t/f.csv", "v1", "0.1.0", NOW)
DAY = date(2024, 1, 15)


def contract(text: str) -> Contract:
    return load_contract_text("dataset: t\n" + text, "t.yaml")


def run(
    c: Contract, tmp_path: Path, batch_rows: int = 1 << 17, **columns: list[str | None]
) -> trusted.TrustedResult:
    return trusted.transform(
        pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()}),
        c,
        CTX,
        tmp_path,
        batch_rows,
    )


def all_rows(result: trusted.TrustedResult, quarantine: bool = False) -> list[dict[str, object]]:
    days = result.quarantined if quarantine else result.trusted
    return [row for day in sorted(days) for row in result.read(day, quarantine).to_pylist()]


@pytest.mark.parametrize(
    ("ctype", "rule", "values", "failing"),
    [
        (
            "float",
            Rule("non_negative", "v"),
            ["1", "-0.01", "0", None],
            [False, True, False, False],
        ),
        ("date", Rule("not_future", "v"), ["2024-03-01", "2024-03-02", None], [False, True, False]),
        (
            "timestamp",
            Rule("not_future", "v"),
            ["2024-03-01 12:00:00", "2024-03-01 12:00:01"],
            [False, True],
        ),
        ("int", Rule("min", "v", 10), ["9", "10", "11"], [True, False, False]),
        ("float", Rule("max", "v", 2.5), ["2.5", "2.51"], [False, True]),
        ("date", Rule("min", "v", date(2024, 1, 1)), ["2023-12-31", "2024-01-01"], [True, False]),
        (
            "string",
            Rule("allowed", "v", ("A", "B")),
            ["A", "b", None, "C"],
            [False, True, False, True],
        ),
        (
            "string",
            Rule("regex", "v", "[A-Z]{2}[0-9]"),
            ["AB1", "AB12", "ab1", "xAB1"],
            [False, True, True, True],
        ),
        (
            "string",
            Rule("max_length", "v", 3),
            ["abc", "abcd", "çãé", ""],
            [False, True, False, False],
        ),
    ],
)
def test_each_rule_fails_exactly_the_rows_that_break_it(
    ctype: str, rule: Rule, values: list[str | None], failing: list[bool]
) -> None:
    # Given the values typed as the column's type
    from sluice.stages.coerce import coerce

    typed = coerce(pa.array(values, pa.string()), ctype).values
    # When the rule is judged, Then exactly the rows that break it fail
    assert rules.rule_failures(rule, typed, NOW).tolist() == failing


def test_reject_rules_quarantine_and_flag_rules_mark(tmp_path: Path) -> None:
    # Given a rule that rejects and one that only flags
    c = contract(
        "columns:\n  id: {type: int, required: true}\n"
        "  amount: {type: float, rules: [non_negative, {max: 100, action: flag}]}\n"
    )
    result = run(c, tmp_path, id=["1", "2", "3"], amount=["5", "-1", "500"])
    # Then the negative amount is quarantined with its reason, the large one flagged
    assert [r["id"] for r in all_rows(result)] == [1, 3]
    assert [r["quality_flags"] for r in all_rows(result)] == [[], ["ABOVE_MAX:amount"]]
    bad = all_rows(result, quarantine=True)
    assert [(r["id"], r["reason_codes"], r["_row"]) for r in bad] == [("2", ["NEGATIVE:amount"], 2)]
    assert result.reasons == {"NEGATIVE:amount": 1}
    assert result.flags == {"ABOVE_MAX:amount": 1}


def test_null_policies_reject_fill_and_flag(tmp_path: Path) -> None:
    # Given a column that rejects nulls, one that fills them, and one with no policy
    c = contract(
        "columns:\n  id: {type: int, required: true}\n"
        "  a: {type: string, nulls: reject}\n"
        "  b: {type: int, nulls: fill, default: 7}\n"
        "  note: {type: string}\n"
    )
    # When rows with a null in each are judged
    result = run(
        c,
        tmp_path,
        id=["1", "2", "3"],
        a=["x", None, "y"],
        b=[None, "1", "2"],
        note=["k", "k", None],
    )
    # Then the rejected null is quarantined, the filled one flagged FILLED and the other NULL
    assert [(r["id"], r["b"], r["note"], r["quality_flags"]) for r in all_rows(result)] == [
        (1, 7, "k", ["FILLED:b"]),
        (3, 2, None, ["NULL:note"]),
    ]
    assert [r["reason_codes"] for r in all_rows(result, quarantine=True)] == [["NULL:a"]]
    assert result.nulls == {"a": 1, "b": 1, "note": 1}


def test_quality_score_matches_the_hand_worked_example(tmp_path: Path) -> None:
    # Given the example docs/quality.md works by hand
    # docs/quality.md works this example by hand: 4 columns, 2 flag checks, weight 0.5.
    c = contract(
        "columns:\n  id: {type: int, required: true}\n"
        "  name: {type: string}\n"
        "  amount: {type: float, rules: [{max: 100, action: flag}]}\n"
        "  kind: {type: string, nulls: fill, default: other,"
        " rules: [{allowed: [a, b, other], action: flag}]}\n"
    )
    # When its rows are judged
    result = run(
        c,
        tmp_path,
        id=["1", "2", "3", "4"],
        name=["n", None, "n", None],
        amount=["5", "5", "500", "500"],
        kind=["a", "a", "z", None],
    )
    scores = [r["data_quality_score"] for r in all_rows(result)]
    # Then each row's score is the hand-worked one
    # 1: C=4/4, R=2/2 -> 1.0        2: C=3/4, R=2/2 -> 0.875
    # 3: C=4/4, R=0/2 -> 0.5        4: C=2/4 (name missing, kind filled), R=1/2 -> 0.5
    assert scores == [1.0, 0.875, 0.5, 0.5]


def test_without_flag_checks_the_score_is_completeness(tmp_path: Path) -> None:
    # Given a contract with no flag checks
    c = contract("columns:\n  id: {type: int, required: true}\n  a: string\n  b: string\n")
    # When rows missing some values are judged
    result = run(c, tmp_path, id=["1", "2"], a=["x", None], b=[None, None])
    # Then each row's score is the share of its values present
    assert [r["data_quality_score"] for r in all_rows(result)] == [0.6667, 0.3333]


@pytest.mark.parametrize("batch_rows", [1, 2, 3, 100])
def test_duplicates_are_found_across_batch_boundaries(tmp_path: Path, batch_rows: int) -> None:
    # Given a primary key, and ids repeated across rows
    c = contract("columns:\n  id: {type: int, required: true}\n  v: string\nprimary_key: [id]\n")
    # When the rows are judged in batches of this size
    result = run(c, tmp_path, batch_rows, id=["1", "2", "1", "3", "2", "1"], v=list("abcdef"))
    # Then the first row of each id is kept and the later copies are duplicates
    assert [(r["id"], r["v"]) for r in all_rows(result)] == [(1, "a"), (2, "b"), (3, "d")]
    assert (result.rows_in, result.rows_trusted, result.duplicates) == (6, 3, 3)


def test_without_a_primary_key_exact_rows_are_duplicates(tmp_path: Path) -> None:
    # Given a contract without a primary key
    c = contract("columns:\n  k: string\n  v: float\n  d: date\n")
    # When rows that repeat once typed are judged in batches of two
    result = run(
        c,
        tmp_path,
        2,
        k=["a", "a", "a", None, None, "ab"],
        v=["1", "1.0", "2", "1", "1", "1"],
        d=["2024-01-01"] * 6,
    )
    # Then the exact repeats are duplicates:
    # "1" and "1.0" are the same float once typed; null keys match each other
    assert [(r["k"], r["v"]) for r in all_rows(result)] == [
        ("a", 1.0),
        ("a", 2.0),
        (None, 1.0),
        ("ab", 1.0),
    ]
    assert result.duplicates == 2


def test_string_primary_keys_hash_per_value() -> None:
    # Given string keys, an empty one and a null among them
    values = pa.array(["abc", "", None, "abc", "ab", "c", "bca"]).slice(0)
    # When they are hashed
    h = keys.hash_array(values)
    # Then equal values hash alike and different ones apart
    assert h[0] == h[3]
    assert len({int(x) for x in h[[0, 1, 2, 4, 5, 6]]}) == 6
    # a slice hashes its own values, not the parent's
    assert keys.hash_array(values.slice(3, 2)).tolist() == h[3:5].tolist()
    later = [2, 4, 5]
    assert keys.later_copies(np.array([5, 3, 5, 7, 3, 3, 9], dtype=np.uint64), 2).tolist() == later
    # dense integer ids are counted, sparse ones sorted: the same answer
    assert keys.later_copies(np.array([5, 3, 5, 7, 3, 3, 9], dtype=np.int64)).tolist() == later
    sparse = np.array([10**12, -1, 10**12, 7, -1], dtype=np.int64)
    assert keys.later_copies(sparse).tolist() == [2, 4]


def test_rows_without_a_primary_key_are_deduplicated_on_a_bool_column_with_nulls(
    tmp_path: Path,
) -> None:
    # Given a contract without a primary key (rows are one record when every column agrees)
    # with a bool column, and rows whose bool is missing, invalid, or repeated
    c = contract("columns:\n  id: {type: int, required: true}\n  ok: bool\n")
    # When the rows are judged
    result = run(
        c,
        tmp_path,
        id=["1", "2", "3", "1", "2", "4"],
        ok=["true", None, "maybe", "yes", None, "0"],
    )
    # Then the invalid bool is quarantined, the repeats of (1, true) and (2, null) are
    # duplicates (a null bool hashes as a null, not as false), and the rest is kept
    kept = sorted((r["id"], r["ok"]) for r in all_rows(result))
    assert kept == [(1, True), (2, None), (4, False)]
    bad = all_rows(result, quarantine=True)
    assert [(r["_row"], r["reason_codes"]) for r in bad] == [(3, ["TYPE_MISMATCH:ok"])]
    assert (result.rows_in, result.duplicates) == (6, 2)


def test_iqr_outliers_are_flagged_per_group(tmp_path: Path) -> None:
    # Given an IQR outlier check per group, and a missing amount
    c = contract(
        "columns:\n  id: {type: int, required: true}\n  amount: float\n  g: string\n"
        "primary_key: [id]\n"
        "outliers: [{column: amount, method: iqr, threshold: 1.5, by: [g], min_group_size: 4}]\n"
    )
    # group a: 1..8 and 100 -> Q1=3, Q3=7, fences [-3, 13]: 100 is out.
    # group b: 100..107 -> 100 is normal there. A missing amount counts towards no fence.
    amounts: list[str | None] = [str(v) for v in [*range(1, 9), 100, *range(100, 108)]]
    amounts.append(None)
    groups = ["a"] * 9 + ["b"] * 8 + ["a"]
    # When the rows are judged
    result = run(c, tmp_path, id=[str(i) for i in range(18)], amount=amounts, g=groups)
    # Then only a's 100 is flagged
    flagged = [(r["g"], r["amount"]) for r in all_rows(result) if r["is_outlier"]]
    assert flagged == [("a", 100.0)]
    assert result.outliers == 1


def test_robust_z_fences_and_small_groups() -> None:
    # Given a robust z check and six values
    spec = Outliers("v", "robust_z", 3.5, (), 4)
    values = np.array([10.0, 11, 12, 13, 14, 100])
    # When the fences are found over two chunks
    found = fences_by_group(spec, {0: [values[:3], values[3:]]}, 1)
    # Then they are the median plus or minus its reach:
    # median 12.5, MAD 1.5: reach = 3.5 * 1.5 / 0.6745
    reach = 3.5 * 1.5 / 0.6745
    assert (found.low[0], found.high[0]) == (12.5 - reach, 12.5 + reach)
    # And a group smaller than its minimum size, or no group at all, has no fences
    small = fences_by_group(Outliers("v", "iqr", 1.5, (), 8), {0: [values]}, 1)
    assert (small.low[0], small.high[0]) == (-np.inf, np.inf)
    nothing = fences_by_group(spec, {}, 1)
    assert (nothing.low[0], nothing.high[0]) == (-np.inf, np.inf)


def test_bands_and_derived_fields_enrich_kept_rows(tmp_path: Path) -> None:
    # Given bands on amount and derived fields of a date and a string
    c = contract(
        "columns:\n  id: {type: int, required: true}\n  amount: float\n  d: date\n  s: string\n"
        "event_date: d\n"
        "bands: {size: {column: amount, edges: [100, 1000], labels: [LOW, MEDIUM, HIGH]}}\n"
        "derived:\n  weekday: {column: d, function: day_of_week}\n"
        "  q: {column: d, function: quarter}\n  up: {column: s, function: upper}\n"
    )
    # When rows at the band edges, with a missing amount and a missing string, are judged
    result = run(
        c,
        tmp_path,
        id=["1", "2", "3", "4"],
        amount=["99.99", "100", "1000", None],
        d=["2024-01-15", "2024-01-21", "2024-04-01", "2024-01-15"],
        s=["a", "b", None, "d"],
    )
    # Then each kept row has its band, weekday, quarter and upper-cased text
    assert [(r["size"], r["weekday"], r["q"], r["up"]) for r in all_rows(result)] == [
        ("LOW", 1, 1, "A"),
        (None, 1, 1, "D"),
        ("MEDIUM", 7, 1, "B"),
        ("HIGH", 1, 2, None),
    ]


def test_every_row_is_accounted_for_and_written_once_per_day(tmp_path: Path) -> None:
    # Given 1000 rows over 5 days with rejects and duplicates, read in small batches
    n = 1000
    ids = [str(i % 900) for i in range(n)]  # 100 duplicate ids
    amounts = ["-1" if i % 50 == 0 else str(i) for i in range(n)]  # 20 rejected
    days = [f"2024-01-{10 + i % 5:02d}" for i in range(n)]
    c = contract(
        "columns:\n  id: {type: int, required: true}\n"
        "  amount: {type: float, rules: [non_negative]}\n  d: date\n"
        "primary_key: [id]\nevent_date: d\n"
    )
    # When they are judged
    result = run(c, tmp_path, 64, id=ids, amount=amounts, d=days)
    # Then every row is trusted, quarantined or a duplicate, and each day has its rows once
    assert result.rows_in == n == result.rows_trusted + result.rows_quarantined + result.duplicates
    assert (result.rows_quarantined, result.duplicates) == (20, 98)
    assert sorted(result.trusted) == [date(2024, 1, d) for d in range(10, 15)]
    assert sum(f.rows for f in result.trusted.values()) == result.rows_trusted
    # one file per day with one large row group, not one per batch
    import pyarrow.parquet as pq

    for item in result.trusted.values():
        assert pq.ParquetFile(item.path).metadata.num_row_groups == 1
    ids_out = [r["id"] for r in all_rows(result)]
    assert len(ids_out) == len(set(ids_out))


def test_code_lists_builds_lists_without_python_loops() -> None:
    # Given two codes and which rows each marks
    lists = rules.code_lists(
        ["A", "B"], [np.array([True, False, True]), np.array([True, False, False])], 3
    )
    # When the lists are built, Then each row lists its codes, in order
    assert lists.to_pylist() == [["A", "B"], [], ["A"]]
    # And no codes give empty lists
    assert rules.code_lists([], [], 2).to_pylist() == [[], []]


@pytest.mark.parametrize(
    ("value", "code"),
    [("nan", "NON_FINITE:v"), ("inf", "NON_FINITE:v"), ("1e400x", "TYPE_MISMATCH:v")],
)
def test_floats_that_are_not_numbers_are_rejected(tmp_path: Path, value: str, code: str) -> None:
    # Given a float column
    c = contract("columns:\n  id: {type: int, required: true}\n  v: float\n")
    # When a value that is not a finite number is judged
    result = run(c, tmp_path, id=["1", "2"], v=["1.5", value])
    # Then it is quarantined with its code
    assert [r["reason_codes"] for r in all_rows(result, quarantine=True)] == [[code]]


def test_outputs_do_not_depend_on_how_days_are_grouped_or_chunked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a file over a few days, with duplicates, a rejected row and an outlier
    c = load_contract_text(
        "dataset: t\ncolumns:\n  id: {type: int, required: true}\n"
        "  amount: {type: float, rules: [non_negative]}\n  d: {type: date}\n"
        "  cat: {type: string}\nprimary_key: [id]\nevent_date: d\n"
        "summary: {measures: [amount], group_by: [cat]}\n"
        "outliers:\n  - {column: amount, method: iqr, by: [cat], min_group_size: 4}\n",
        "t.yaml",
    )
    rng = np.random.default_rng(3)
    n = 200
    ids = [str(i) for i in rng.integers(0, 150, n)]
    amounts = [str(round(float(a), 2)) for a in rng.lognormal(3, 1, n)]
    amounts[7], amounts[11] = "-5", "90000"
    days = [f"2024-01-{d:02d}" for d in rng.integers(1, 6, n)]
    cats = [str(x) for x in rng.choice(["a", "b"], n)]
    columns = {"id": ids, "amount": amounts, "d": days, "cat": cats}

    def outputs(folder: Path) -> tuple[dict[date, list[dict[str, object]]], ...]:
        result = run(c, folder, 16, **columns)
        kept = {d: result.read(d).to_pylist() for d in result.trusted}
        bad = {d: result.read(d, True).to_pylist() for d in result.quarantined}
        # A day written in chunks has a summary share per chunk: compare what they add up to.
        summaries = {
            d: [
                {k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}
                for row in delivery.daily_summary(f.partial, c, d).to_pylist()
            ]
            for d, f in result.trusted.items()
            if f.partial is not None
        }
        quality = {d: q.to_dict() for d, q in result.days.items()}
        return kept, bad, summaries, quality

    # When the days are written in one group, then one row group of 4 rows at a time, and
    # with keys found in partitions on disk and outlier fences from streamed group values
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    whole = outputs(tmp_path / "a")
    monkeypatch.setattr(trusted.engine, "ROW_GROUP_ROWS", 4)
    monkeypatch.setattr(trusted.engine, "BATCH_ROWS", 3)
    chunked = outputs(tmp_path / "b")
    monkeypatch.setattr(keys, "KEYS_AT_ONCE", 16)
    monkeypatch.setattr(outliers, "VALUES_AT_ONCE", 8)
    partitioned = outputs(tmp_path / "c")
    # Then every file, summary share and quality record is the same
    assert chunked == whole
    assert partitioned == whole
    assert len(whole[0]) == 5 and whole[1] and sum(len(v) for v in whole[0].values()) > 100


def test_duplicates_are_found_one_partition_of_keys_at_a_time(tmp_path: Path) -> None:
    # Given 10,000 ids (dense integers, and the same as hashes) with repeats, appended in batches
    rng = np.random.default_rng(11)
    ids = rng.integers(0, 6000, 10_000).astype(np.int64)
    for values, dtype in [(ids, np.int64), (keys.row_keys([pa.array(ids)]), np.uint64)]:
        found = keys.KeyPartitions(tmp_path / str(dtype), len(values), dtype, keys_at_once=1000)
        for start in range(0, len(values), 777):
            found.append(values[start : start + 777])
        # When the later copies are found
        marks = found.later_copies()
        # Then they are the in-memory answer, found in 16 partitions, none of more than 1000 keys
        # for dense ids (modulo spreads them evenly) nor 1.5x that for hashes
        expected = keys.later_copies(values)
        assert np.flatnonzero(marks[np.arange(len(values))]).tolist() == expected.tolist()
        assert (found.parts, marks.count) == (16, len(expected))
        assert found.most_held <= (1000 if dtype is np.int64 else 1500)
        assert not list((tmp_path / str(dtype)).iterdir())  # partitions are removed once read
    # The stage's budget: a 20M-row file's keys are split 32 ways, a 1M-row file's kept whole
    assert (keys.partition_count(20_000_000), keys.partition_count(1_000_000)) == (32, 1)


@pytest.mark.parametrize("method", ["iqr", "robust_z"])
def test_fences_of_a_group_too_large_to_hold_are_numpys(tmp_path: Path, method: str) -> None:
    # Given groups of 20..5000 values (ties, negatives, one repeated value), streamed from disk
    # with room for 64 values at a time
    rng = np.random.default_rng(5)
    spec = Outliers("v", method, 1.5 if method == "iqr" else 3.5, (), 4)
    for trial in range(16):
        n = int(rng.integers(20, 5000))
        group = [
            np.round(rng.lognormal(3, 1, n), 2),
            rng.integers(0, 5, n).astype(float),
            rng.normal(0, 1e-3, n),
            np.concatenate([rng.normal(0, 1, n // 2), np.full(n - n // 2, 7.25)]),
        ][trial % 4]
        values = outliers.GroupValues(tmp_path / f"{trial}.bin", values_at_once=64)
        for start in range(0, n, 37):
            values.append(0, group[start : start + 37])
        values.close()
        # When its fences are computed by selection, Then they are numpy's over the whole group
        streamed = outliers.fences_of_groups(spec, values, 1)
        whole = fences_by_group(spec, {0: [group]}, 1)
        assert (streamed.low[0], streamed.high[0]) == (whole.low[0], whole.high[0])
        # and the selection held one segment and a budget of gathered values at most
        ranks = list(range(0, n, 97))
        found, held = outliers.order_statistics(lambda v=values: v.chunks(0), n, ranks, 64)
        assert [found[r] for r in ranks] == np.sort(group)[ranks].tolist()
        assert held <= 64 + 64 + 37


def test_non_finite_numbers_are_rejected_unless_the_column_allows_them(tmp_path: Path) -> None:
    # Given NaN and infinities in a float column that rejects them and in one that allows them
    c = contract(
        "columns:\n  id: {type: int, required: true}\n  v: float\n"
        "  w: {type: float, non_finite: allow}\n  n: int\nsummary: {measures: [v]}\n"
    )
    result = run(
        c,
        tmp_path,
        id=["1", "2", "3", "4", "5"],
        v=["1.5", "1e400", "2", "3", "-Infinity"],
        w=["nan", "1", "inf", "4", "5"],
        n=["1", "2", "3", "NaN", "5"],
    )
    # Then the rows with one where it is not allowed are quarantined with NON_FINITE
    assert [(r["_row"], r["reason_codes"]) for r in all_rows(result, quarantine=True)] == [
        (2, ["NON_FINITE:v"]),
        (4, ["NON_FINITE:n"]),
        (5, ["NON_FINITE:v"]),
    ]
    assert result.reasons == {"NON_FINITE:v": 2, "NON_FINITE:n": 1}
    # and the allowed ones are kept as the numbers they are; the summary sums finite values
    kept = all_rows(result)
    assert [r["id"] for r in kept] == [1, 3]
    assert [str(r["w"]) for r in kept] == ["nan", "inf"]
    assert [r["v"] for r in kept] == [1.5, 2.0]
    day = next(iter(result.trusted))
    partial = delivery.partial_summary(result.read(day), c)
    assert partial["v_sum"].to_pylist() == [3.5]
    # and an allowed NaN counts as present (the row's score is whole)
    assert [r["data_quality_score"] for r in kept] == [1.0, 1.0]

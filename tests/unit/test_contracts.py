from __future__ import annotations

from datetime import date

import pytest

from sluice.config import CONTRACTS_DIR
from sluice.contracts import (
    Band,
    ContractError,
    Derived,
    Outliers,
    Rule,
    find_contract,
    load_contract_text,
    parse_contract,
)

BASE = "dataset: t\ncolumns:\n  id: {type: int, required: true}\n  amount: float\n  booked: date\n"


def error_of(text: str) -> str:
    with pytest.raises(ContractError) as err:
        load_contract_text(text, "contracts/t.yaml")
    return str(err.value)


def test_the_shipped_contract_declares_every_kind_of_rule() -> None:
    contract = find_contract("transactions", CONTRACTS_DIR)
    assert contract is not None
    assert contract.column("amount").rules == (
        Rule("non_negative", "amount", True, "reject"),
        Rule("max", "amount", 1_000_000.0, "flag"),
    )
    assert contract.column("date").rules == (Rule("not_future", "date", True, "reject"),)
    assert (contract.column("category").nulls, contract.column("category").default) == (
        "fill",
        "Uncategorized",
    )
    assert contract.column("id").nulls == "reject"  # required implies reject
    assert contract.column("name").nulls == "flag"  # optional implies keep and flag
    assert contract.bands == (
        Band("amount_category", "amount", (100.0, 1000.0), ("LOW", "MEDIUM", "HIGH")),
    )
    assert contract.outliers == (Outliers("amount", "iqr", 3.0, ("category",)),)
    assert contract.derived == (Derived("day_of_week", "date", "day_of_week"),)


def test_a_contract_survives_its_own_round_trip() -> None:
    contract = find_contract("transactions", CONTRACTS_DIR)
    assert contract is not None
    assert parse_contract(contract.to_dict(), "again") == contract
    assert load_contract_text(contract.to_yaml(), "again") == contract


def test_rules_take_typed_arguments() -> None:
    contract = load_contract_text(
        BASE
        + "  code:\n    type: string\n    rules:\n      - {regex: '[A-Z]{3}', action: flag}\n"
        + "      - {max_length: 3}\n      - allowed: [ABC, XYZ]\n"
        + "  day2:\n    type: date\n    rules: [{min: 2024-01-01}]\n",
        "t.yaml",
    )
    assert contract.column("code").rules == (
        Rule("regex", "code", "[A-Z]{3}", "flag"),
        Rule("max_length", "code", 3, "reject"),
        Rule("allowed", "code", ("ABC", "XYZ"), "reject"),
    )
    assert contract.column("day2").rules == (Rule("min", "day2", date(2024, 1, 1), "reject"),)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "  name: {type: string, nulls: drop}\n",
            "contracts/t.yaml: columns.name.nulls: 'drop' is not a null policy "
            "(fix: use one of reject, fill, flag)",
        ),
        (
            "  name: {type: string, nulls: fill}\n",
            "contracts/t.yaml: columns.name.default: missing "
            "(fix: give the value to fill nulls with)",
        ),
        (
            "  name: {type: string, rules: [non_negative]}\n",
            "contracts/t.yaml: columns.name.rules[0].non_negative: does not apply to a string "
            "column (fix: use it on int or float or decimal columns)",
        ),
        (
            "  name: {type: string, rules: [{regex: '(unclosed'}]}\n",
            "contracts/t.yaml: columns.name.rules[0].regex: invalid pattern: missing ), "
            "unterminated subpattern at position 0 (fix: fix the pattern)",
        ),
        (
            "  n: {type: int, rules: [{max: 1, action: drop}]}\n",
            "contracts/t.yaml: columns.n.rules[0].action: 'drop' (fix: use reject or flag)",
        ),
        (
            "  n: {type: int, rules: [{between: 1}]}\n",
            "contracts/t.yaml: columns.n.rules[0]: expected one rule, got between (fix: use one of "
            "non_negative, not_future, min, max, allowed, regex, max_length)",
        ),
        (
            "  n: {type: int, color: red}\n",
            "contracts/t.yaml: columns.n.color: unknown field "
            "(fix: use only default, non_finite, nulls, required, rules, type)",
        ),
    ],
)
def test_column_errors_name_file_field_and_fix(extra: str, message: str) -> None:
    assert error_of(BASE + extra) == message


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "bands: {amount_category: {column: amount, edges: [1000, 100], labels: [L, M, H]}}\n",
            "contracts/t.yaml: bands.amount_category.edges: edges must rise strictly "
            "(fix: sort them and drop repeats)",
        ),
        (
            "bands: {amount_category: {column: amount, edges: [100], labels: [L, M, H]}}\n",
            "contracts/t.yaml: bands.amount_category.labels: expected 2 labels (one more than "
            "edges) (fix: write labels: [LOW, MEDIUM, HIGH] for two edges)",
        ),
        (
            "bands: {amount_category: {column: booked, edges: [1], labels: [a, b]}}\n",
            "contracts/t.yaml: bands.amount_category.column: 'booked' is date "
            "(fix: name a column of type int or float or decimal)",
        ),
        (
            "outliers: [{column: amount, method: zscore}]\n",
            "contracts/t.yaml: outliers[0].method: 'zscore' is not a method "
            "(fix: use one of iqr, robust_z)",
        ),
        (
            "outliers: [{column: amount, threshold: -1}]\n",
            "contracts/t.yaml: outliers[0].threshold: -1 is not positive (fix: use > 0)",
        ),
        (
            "derived: {weekday: {column: amount, function: day_of_week}}\n",
            "contracts/t.yaml: derived.weekday.column: 'amount' is float "
            "(fix: name a column of type date or timestamp)",
        ),
        (
            "quality: {completeness_weight: 2}\n",
            "contracts/t.yaml: quality.completeness_weight: 2 is not in [0, 1] "
            "(fix: use a number from 0 to 1)",
        ),
        (
            "colums: {}\n",
            "contracts/t.yaml: colums: unknown field (fix: use only bands, columns, dataset, "
            "derived, event_date, outliers, primary_key, quality, summary, version)",
        ),
    ],
)
def test_section_errors_name_file_field_and_fix(extra: str, message: str) -> None:
    assert error_of(BASE + extra) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "  n: {type: int, non_finite: allow}\n",
            "contracts/t.yaml: columns.n.non_finite: a int column cannot hold NaN or infinities "
            "(fix: use it on a float column, or remove it)",
        ),
        (
            "  n: {type: float, non_finite: keep}\n",
            "contracts/t.yaml: columns.n.non_finite: 'keep' is not reject/allow (fix: write "
            "non_finite: allow (keep NaN and infinities) or leave it out (reject them))",
        ),
        (
            "  n: {type: float, non_finite: allow}\nsummary: {measures: [n]}\n",
            "contracts/t.yaml: summary.measures: n allows NaN and infinities (non_finite: allow), "
            "which no sum, mean or fence can hold (fix: remove non_finite from columns.n, or n "
            "from summary.measures)",
        ),
        (
            "  n: {type: float, non_finite: allow}\noutliers: [{column: n}]\n",
            "contracts/t.yaml: outliers[0].column: n allows NaN and infinities (non_finite: "
            "allow), which no sum, mean or fence can hold (fix: remove non_finite from "
            "columns.n, or n from outliers)",
        ),
    ],
)
def test_non_finite_is_allowed_only_where_nothing_sums_it(text: str, message: str) -> None:
    assert error_of("dataset: t\ncolumns:\n" + text) == message


def test_non_finite_allow_survives_the_round_trip() -> None:
    contract = load_contract_text(
        "dataset: t\ncolumns:\n  n: {type: float, non_finite: allow}\n  m: float\n", "t.yaml"
    )
    assert [c.non_finite for c in contract.columns] == ["allow", "reject"]
    assert contract.to_dict()["columns"]["n"] == {"type": "float", "non_finite": "allow"}
    assert parse_contract(contract.to_dict(), "t.yaml") == contract

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sluice.config import CONTRACTS_DIR
from sluice.contracts import (
    MAX_CONTRACT_BYTES,
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
    # Given the transactions contract shipped in contracts/
    # When it is found and loaded
    contract = find_contract("transactions", CONTRACTS_DIR)
    # Then it has each kind of rule, null policy, band, outlier check and derived field
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
    # Given the shipped contract
    contract = find_contract("transactions", CONTRACTS_DIR)
    assert contract is not None
    # When it is written as a dict and as YAML and read back, Then it is the same contract
    assert parse_contract(contract.to_dict(), "again") == contract
    assert load_contract_text(contract.to_yaml(), "again") == contract


def test_rules_take_typed_arguments() -> None:
    # Given a contract with regex, max_length, allowed and min rules
    # When it is loaded
    contract = load_contract_text(
        BASE
        + "  code:\n    type: string\n    rules:\n      - {regex: '[A-Z]{3}', action: flag}\n"
        + "      - {max_length: 3}\n      - allowed: [ABC, XYZ]\n"
        + "  day2:\n    type: date\n    rules: [{min: 2024-01-01}]\n",
        "t.yaml",
    )
    # Then each rule holds its argument as its type: text, number, list, date
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
            "contracts/t.yaml: columns.name.rules[0].regex: RE2 cannot compile '(unclosed': "
            "missing ): (unclosed (fix: write an RE2 pattern (no lookaround or backreferences))",
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
    # Given a contract with one wrong column field
    # When it is loaded, Then the error names the file, the field and the fix
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
            "derived, encoding, event_date, outliers, primary_key, quality, sheet, summary, "
            "version)",
        ),
    ],
)
def test_section_errors_name_file_field_and_fix(extra: str, message: str) -> None:
    # Given a contract with one wrong band, outlier, derived or quality field, or section
    # When it is loaded, Then the error names the file, the field and the fix
    assert error_of(BASE + extra) == message


RE2_FIX = "(fix: write an RE2 pattern (no lookaround or backreferences))"


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("[A-Z]+(?=X)", "invalid perl operator: (?="),
        ("(?<!a)b", "invalid perl operator: (?<!"),
        (r"(\w)\1", r"invalid escape sequence: \1"),
        ("a{1000}{1000}", "bad repetition operator: {1000}{1000}"),
        # would close Trusted's anchoring group and match any value containing the text
        ("a)|(b", "unexpected ): a)|(b"),
    ],
)
def test_a_regex_re2_cannot_compile_is_refused_at_load(pattern: str, problem: str) -> None:
    # Given a contract whose regex rule is valid for Python's re but not for RE2
    text = BASE + f"  code: {{type: string, rules: [{{regex: '{pattern}'}}]}}\n"

    # When it is loaded, then it is refused naming the rule, the pattern and RE2's reason
    assert error_of(text) == (
        f"contracts/t.yaml: columns.code.rules[0].regex: RE2 cannot compile {pattern!r}: "
        f"{problem} {RE2_FIX}"
    )


NAME_FIX = (
    "(fix: rename it: use letters, digits, '_', ' ' or '-', starting with a letter or '_' "
    "and not ending in a blank, at most 128 characters)"
)


@pytest.mark.parametrize(
    ("section", "name"),
    [
        ("columns", "a` bigint, `injected"),
        ("columns", 'a" INT, "b'),
        ("columns", "a\nb"),
        ("columns", "amount; DROP TABLE x"),
        ("columns", "1st"),
        ("columns", "trailing "),
        ("columns", "x" * 129),
        ("bands", "band`x"),
        ("derived", "dow'x"),
    ],
)
def test_a_name_sql_or_parquet_cannot_carry_is_refused_at_load(section: str, name: str) -> None:
    # Given a contract with a column, band or derived field of that name
    quoted = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    extra = {
        "columns": f'  "{quoted}": int\n',
        "bands": f'bands: {{"{quoted}": {{column: amount, edges: [1], labels: [a, b]}}}}\n',
        "derived": f'derived: {{"{quoted}": {{column: booked, function: day_of_week}}}}\n',
    }[section]

    # When it is loaded, then the error names the section, the name and the rule to follow
    assert error_of(BASE + extra) == (
        f"contracts/t.yaml: {section}: {name!r} is not a safe name {NAME_FIX}"
    )


BOOLEAN_NAME = "YAML read the name as a boolean (on, off, yes, no, true, false): quote it"


@pytest.mark.parametrize(
    ("written", "read", "fix"),
    [
        ("on", "True", "YAML read the name as a boolean (on, off, yes, no, true, false): quote it"),
        (
            "no",
            "False",
            "YAML read the name as a boolean (on, off, yes, no, true, false): quote it",
        ),
        ("2024", "2024", "YAML read the name as int: quote it ('2024')"),
    ],
)
def test_a_name_yaml_reads_as_another_type_is_refused_saying_to_quote_it(
    written: str, read: str, fix: str
) -> None:
    # Given a column whose unquoted name YAML reads as a boolean or a number
    text = BASE + f"  {written}: int\n"

    # When it is loaded, then the error says what YAML made of it and to quote it
    assert error_of(text) == f"contracts/t.yaml: columns: {read} is not a safe name (fix: {fix})"


def test_names_with_blanks_hyphens_and_other_scripts_load() -> None:
    # Given column names as spreadsheets write them
    text = BASE + '  "Order Date": date\n  unit-price: float\n  descrição: string\n'

    # When it is loaded, then they are the contract's columns as written
    assert load_contract_text(text, "t.yaml").names == [
        "id", "amount", "booked", "Order Date", "unit-price", "descrição"
    ]  # fmt: skip


def test_names_that_differ_only_in_case_are_refused() -> None:
    # Given a contract with `amount` and `Amount` (Athena and Glue fold names to lower case:
    # the two would be one column there)
    # When it is loaded, Then it is refused naming both
    assert error_of(BASE + "  Amount: float\n") == (
        "contracts/t.yaml: columns: 'amount' and 'Amount' differ only in case "
        "(fix: rename one of them)"
    )


def _laughs(levels: int, width: int) -> str:
    """A 'billion laughs' document: each level an anchored list of `width` aliases of the last."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "problem", "fix"),
    [
        (_laughs(9, 9), "more than 32 aliases", "write it without YAML anchors and aliases"),
        (
            _laughs(4, 8),  # 32 aliases, 8**5 values once expanded
            "more than 20000 values once its aliases are expanded",
            "write it without YAML anchors and aliases",
        ),
        (
            "a: &a [*a]\n",
            "an alias inside its own anchor",
            "write it without YAML anchors and aliases",
        ),
        ("[" * 40_000 + "]" * 40_000, "nested more than 32 levels deep", "flatten it"),
    ],
)
def test_hostile_yaml_is_refused_before_it_is_built(text: str, problem: str, fix: str) -> None:
    # Given YAML that would expand to billions of values, refer to itself or nest 40,000 deep
    # When it is loaded as a contract, then it is refused with the limit it is over
    assert error_of(text) == f"contracts/t.yaml: YAML: {problem} (fix: {fix})"


def test_a_few_aliases_still_load() -> None:
    # Given a contract that reuses one column spec through an anchor
    text = "dataset: t\ncolumns:\n  a: &num {type: float}\n  b: *num\n  c: *num\n"

    # When it is loaded, then each alias is the spec it names
    assert [c.type for c in load_contract_text(text, "t.yaml").columns] == ["float"] * 3


def test_a_key_given_twice_is_refused_but_a_merged_key_may_be_overridden() -> None:
    # Given a contract giving `amount` twice, and one merging a base spec and overriding it
    twice = "dataset: t\ncolumns:\n  amount: float\n  id: int\n  amount: string\n"
    merged = (
        "dataset: t\ncolumns:\n  id: &base {type: int, required: true}\n"
        "  n: {<<: *base, required: false}\n"
    )
    # When each is loaded, Then the first is refused naming the key and line (YAML would keep
    # the last `amount` without a word), and the second loads with the override
    assert error_of(twice) == (
        "contracts/t.yaml: YAML: the key 'amount' is given twice (again at line 5) "
        "(fix: give each key once (YAML would keep only the last))"
    )
    columns = load_contract_text(merged, "t.yaml").columns
    assert [(c.name, c.type, c.required) for c in columns] == [
        ("id", "int", True),
        ("n", "int", False),
    ]


def test_a_contract_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    # Given a bundled contract file over 256 KiB (a long comment)
    (tmp_path / "t.yaml").write_text(BASE + "#" + "x" * MAX_CONTRACT_BYTES + "\n")

    # When it is found, then it is refused without being parsed
    with pytest.raises(ContractError) as err:
        find_contract("t", tmp_path)
    assert str(err.value) == (
        f"{tmp_path / 't.yaml'}: file: over the limit of 262144 bytes "
        "(fix: a contract is a few KB: remove what it does not need)"
    )


def test_a_contract_that_is_not_utf8_is_a_contract_error(tmp_path: Path) -> None:
    # Given a bundled contract file with a Latin-1 byte in a comment
    (tmp_path / "t.yaml").write_bytes(BASE.encode() + b"# caf\xe9\n")
    # When it is found
    with pytest.raises(ContractError) as err:
        find_contract("t", tmp_path)
    # Then it is a contract error naming the file and the byte's offset
    assert str(err.value) == (
        f"{tmp_path / 't.yaml'}: file: not UTF-8 (byte {len(BASE) + 5}) "
        "(fix: save the contract as UTF-8)"
    )


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
    # Given `non_finite` on a column that cannot hold it, with a wrong value, or on a column a
    # summary measure or an outlier check sums
    # When the contract is loaded, Then it is refused naming the field and the fix
    assert error_of("dataset: t\ncolumns:\n" + text) == message


def test_non_finite_allow_survives_the_round_trip() -> None:
    # Given a contract allowing NaN and infinities in one float column
    # When it is loaded
    contract = load_contract_text(
        "dataset: t\ncolumns:\n  n: {type: float, non_finite: allow}\n  m: float\n", "t.yaml"
    )
    # Then that column allows them and the other rejects them
    assert [c.non_finite for c in contract.columns] == ["allow", "reject"]
    # And its dict keeps `non_finite: allow`, and reads back as the same contract
    assert contract.to_dict()["columns"]["n"] == {"type": "float", "non_finite": "allow"}
    assert parse_contract(contract.to_dict(), "t.yaml") == contract

"""The reason codes in code are the ones the docs list: one enum per table."""

from __future__ import annotations

import re

from sluice.config import PROJECT_ROOT
from sluice.reasons import EventReason, ReasonCode, RowCode

DOCS = PROJECT_ROOT / "docs"


def _section(doc: str, heading: str) -> str:
    text = (DOCS / doc).read_text(encoding="utf-8")
    start = text.index(heading + "\n")
    end = text.find("\n#", start + len(heading))
    return text[start : end if end >= 0 else None]


def _table_codes(section: str) -> set[str]:
    """The codes in a table's first column: `CODE`, `CODE:<col>` or `CODE:`."""
    codes: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            codes |= set(re.findall(r"`([A-Z][A-Z_]+)(?::[^`]*)?`", first))
    return codes


def test_file_reasons_are_the_table_in_docs_quality() -> None:
    documented = _table_codes(_section("quality.md", "## Files rejected as a whole"))
    assert documented == {code.value for code in ReasonCode}


def test_row_codes_are_the_table_in_docs_quality() -> None:
    documented = _table_codes(_section("quality.md", "## Codes"))
    assert documented == {code.value for code in RowCode}


def test_event_reasons_are_in_docs_reliability() -> None:
    text = (DOCS / "reliability.md").read_text(encoding="utf-8")
    assert {code.value for code in EventReason if f"`{code.value}`" in text} == set(EventReason)


def test_a_code_is_its_string() -> None:
    assert ReasonCode.FILE_TOO_LARGE == "FILE_TOO_LARGE"
    assert f"{ReasonCode.SOURCE_GONE}: gone" == "SOURCE_GONE: gone"
    assert RowCode.NULL.of("amount") == "NULL:amount"

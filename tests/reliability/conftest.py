"""The reliability suite: every case is a test marked `@case(N, "title")` that records how many
rows went in and how many are accounted for; `make reliability` prints a line per case and a
total (cases, passed, rows lost)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

CASES: dict[str, dict[str, Any]] = {}


def case(number: int, title: str) -> Callable[[Any], Any]:
    return pytest.mark.reliability_case(number=number, title=title)


@dataclass
class Ledger:
    """Rows a case put in and found again (in TRUSTED, QUARANTINE or counted as duplicates)."""

    rows_in: int = 0
    rows_found: int = 0
    notes: list[str] = field(default_factory=list)

    def record(self, rows_in: int, rows_found: int) -> None:
        self.rows_in += rows_in
        self.rows_found += rows_found

    @property
    def lost(self) -> int:
        return self.rows_in - self.rows_found


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability_case(number, title): a reliability case")


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Ledger:
    book = Ledger()
    marker = request.node.get_closest_marker("reliability_case")
    if marker is not None:
        CASES.setdefault(request.node.nodeid, {}).update(marker.kwargs, ledger=book)
    return book


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("reliability_case")
    if marker is None or (report.when != "call" and not report.skipped):
        return
    entry = CASES.setdefault(item.nodeid, {})
    entry.update(marker.kwargs)
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        entry["title"] = f"{marker.kwargs['title']} [{callspec.id}]"
    entry.setdefault("ledger", Ledger())
    if report.skipped:
        entry["outcome"] = "SKIPPED"
        entry["why"] = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
    elif report.when == "call":
        entry["outcome"] = "PASS" if report.passed else "FAIL"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not CASES:
        return
    write = terminalreporter.write_line
    write("")
    write("reliability cases")
    lost = 0
    for entry in sorted(CASES.values(), key=lambda e: (e.get("number", 0), e.get("title", ""))):
        book: Ledger = entry["ledger"]
        lost += max(book.lost, 0)
        why = f" ({entry['why']})" if entry.get("why") else ""
        write(
            f"  {entry.get('number', '?'):>2}. {entry.get('title', ''):<70} "
            f"{entry.get('outcome', 'NOT RUN'):<7} rows in {book.rows_in:>7}  lost {book.lost}{why}"
        )
    passed = sum(1 for e in CASES.values() if e.get("outcome") == "PASS")
    write(f"cases {len(CASES)}, passed {passed}, rows lost {lost}")

"""The spill: batches sorted by day go to disk and come back by day, in file order."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

from sluice.stages.spill import DaySpill, by_day, day_of, runs

JAN = [date(2024, 1, d) for d in range(1, 6)]


def numbers(*days: date) -> np.ndarray:
    return np.array([(d - date(1970, 1, 1)).days for d in days], dtype=np.int32)


def test_by_day_sorts_stably_and_says_where_each_day_is() -> None:
    # Given rows of three days out of order
    # When they are sorted by day
    order, days = by_day(numbers(JAN[2], JAN[0], JAN[2], JAN[1], JAN[0]))
    # Then the order puts each day together, keeping file order within a day, and says where
    # each day starts in the sorted rows and how many rows it has
    assert order is not None
    assert order.tolist() == [1, 4, 3, 0, 2]  # within a day, rows keep their file order
    assert [(day_of(n), start, size) for n, start, size in days] == [
        (JAN[0], 0, 2),
        (JAN[1], 2, 1),
        (JAN[2], 3, 2),
    ]


def test_by_day_leaves_sorted_rows_alone() -> None:
    # Given rows already in day order, When they are sorted by day, Then no order is given
    assert by_day(numbers(JAN[0], JAN[0], JAN[1]))[0] is None
    # And rows of one day are one slice, left where they are
    order, days = by_day(numbers(JAN[3], JAN[3]))
    assert order is None and [(day_of(n), s, k) for n, s, k in days] == [(JAN[3], 0, 2)]


def test_runs_group_items_and_keep_big_ones_alone() -> None:
    # Given five items of sizes 3, 4, 10, 2 and 1
    sizes = {"a": 3, "b": 4, "c": 10, "d": 2, "e": 1}
    # When they are grouped into runs of at least 5 rows
    # Then consecutive items share a run until it has 5 (the last may have fewer), and an item
    # of more than `alone` rows is a run of its own, the same runs as without `alone` here
    assert runs("abcde", sizes.__getitem__, 5, alone=8) == [["a", "b"], ["c"], ["d", "e"]]
    assert runs("abcde", sizes.__getitem__, 5) == [["a", "b"], ["c"], ["d", "e"]]
    # And no items make no runs
    assert runs("", sizes.__getitem__, 5) == []


def _batch(ids: list[int]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"id": ids, "v": [f"x{i}" for i in ids]})


def test_days_come_back_in_day_then_file_order(tmp_path: Path) -> None:
    # Given a spill on disk
    spill = DaySpill(tmp_path / "s.arrow")
    # When two batches are appended, each sorted by day, with the slices of each day
    spill.append(_batch([1, 2, 3]), [(JAN[0], 0, 2), (JAN[1], 2, 1)])
    spill.append(_batch([4, 5, 6]), [(JAN[0], 0, 1), (JAN[2], 1, 2)])
    # Then it knows the days and their rows, and gives each day's rows back in file order
    assert spill.days() == JAN[:3]
    assert spill.rows == {JAN[0]: 3, JAN[1]: 1, JAN[2]: 2}
    assert spill.read([JAN[0], JAN[2]])["id"].to_pylist() == [1, 2, 4, 5, 6]
    assert spill.read([JAN[1]])["v"].to_pylist() == ["x3"]
    # And a day comes back in chunks of at least the rows asked for (the last may have fewer)
    assert [t["id"].to_pylist() for t in spill.chunks(JAN[0], 2)] == [[1, 2], [4]]
    # And batches read back with the columns asked for, as one chunk each
    some = spill.read_batches([0, 1, 2, 3], columns=["v"])
    assert some.column_names == ["v"] and some.num_rows == 6
    assert all(table.column(0).num_chunks == 1 for table in [some, spill.read(JAN[:3])])

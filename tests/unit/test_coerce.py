"""Number parsing: plain values take Arrow's parser, odd ones the full pattern, same results."""

from __future__ import annotations

import random
import re

import pyarrow as pa
import pytest

from sluice.stages import coerce as coerce_mod
from sluice.stages.coerce import coerce

INT64_MAX = (1 << 63) - 1


def test_ints_with_odd_values_keep_every_readable_one() -> None:
    text = ["12", "+7", " 8 ", "x", str(INT64_MAX), str(INT64_MAX + 1), None, "-3", "1.5", "-"]
    result = coerce(pa.array(text, pa.string()), "int")
    assert result.values.to_pylist() == [12, 7, 8, None, INT64_MAX, None, None, -3, None, None]
    assert result.invalid.to_pylist() == [
        False, False, False, True, False, True, False, False, True, True,
    ]  # fmt: skip


def test_floats_with_odd_values_keep_every_readable_one() -> None:
    text = ["12.50", "abc", "12.50.1", None, "-3", " 4 ", "1e3", "+2.", ".5", "-", "n/a"]
    result = coerce(pa.array(text, pa.string()), "float")
    assert result.values.to_pylist() == [
        12.5, None, None, None, -3.0, 4.0, 1000.0, 2.0, 0.5, None, None,
    ]  # fmt: skip
    assert result.invalid.to_pylist() == [
        False, True, True, False, False, False, False, False, False, True, True,
    ]  # fmt: skip


def _expected(value: str | None, ctype: str) -> int | float | None:
    """The contract's definition of a number, value by value."""
    if value is None:
        return None
    if ctype == "int":
        if not re.match(coerce_mod._INT, value):
            return None
        number = int(value.strip())
        return number if -(1 << 63) <= number <= INT64_MAX else None
    return float(value.strip()) if re.match(coerce_mod._FLOAT, value) else None


@pytest.mark.parametrize("ctype", ["int", "float"])
def test_number_parsing_agrees_with_the_pattern_on_random_text(ctype: str) -> None:
    rng = random.Random(11)
    alphabet = "0123456789.-+eE x,a"
    plain = ["1", "-2", "3.5", "100", "0.25", "-0.5", "+7", str(INT64_MAX), str(INT64_MAX + 1)]
    for trial in range(500):
        values: list[str | None] = []
        for _ in range(rng.randint(1, 30)):
            draw = rng.random()
            if draw < 0.1:
                values.append(None)
            elif draw < 0.5:
                values.append(rng.choice(plain))
            else:
                values.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5))))
        column = pa.array(values, pa.string())
        if trial % 3 == 0:
            column = column.slice(1)  # an offset into the buffers
        result = coerce(column, ctype)
        expected = [_expected(v, ctype) for v in column.to_pylist()]
        assert result.values.to_pylist() == expected, column.to_pylist()
        assert result.invalid.to_pylist() == [
            v is not None and e is None for v, e in zip(column.to_pylist(), expected, strict=True)
        ]

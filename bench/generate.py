"""Realistic transaction CSVs for the benchmark: the mess Trusted exists to clean up.

Rows follow `contracts/transactions.yaml` (id, name, amount, date, category) over ~90 days and
8 categories, with the faults real exports carry: nulls, unreadable and negative amounts,
outliers, dates in the future, exact duplicate rows and re-used ids. Everything is drawn with
numpy and written by Arrow, so 5M rows take seconds; the same seed gives the same bytes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

HEADER = "id,name,amount,date,category"
CATEGORIES = [
    "Sales",
    "Marketing",
    "Operations",
    "Payroll",
    "Travel",
    "Software",
    "Hardware",
    "Utilities",
]
START = np.datetime64("2024-01-01")
DAYS = 90  # 2024-01-01 .. 2024-03-30
FUTURE = np.datetime64("2030-06-01")
BAD_AMOUNTS = ["abc", "12.50.1", "n/a", "$40", "1O0"]

# Shares of rows carrying each fault.
OUTLIERS = 0.001
NEGATIVE = 0.01
FUTURE_DATES = 0.005
NULLS = 0.01
BAD_AMOUNT = 0.005
EXACT_DUPLICATES = 0.01
DUPLICATE_IDS = 0.005


def _pick(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    return rng.random(n) < share


def _money(amounts: np.ndarray) -> pa.Array:
    """Amounts as "123.45" text, built with Arrow kernels rather than a Python loop."""
    cents = np.rint(np.abs(amounts) * 100).astype(np.int64)
    whole = pc.cast(pa.array(cents // 100), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, "0")
    sign = pa.array(np.where(amounts < 0, "-", ""))
    return pc.binary_join_element_wise(sign, whole, ".", frac, "")


def _with(values: pa.Array, mask: np.ndarray, replacement: pa.Array | pa.Scalar) -> pa.Array:
    return pc.if_else(pa.array(mask), replacement, values)


def table(rows: int, seed: int = 7) -> pa.Table:
    """`rows` transactions as a table of text, faults included."""
    rng = np.random.default_rng(seed)
    ids = pa.array(np.arange(1, rows + 1, dtype=np.int64))
    names = pa.array([f"Customer {i:04d}" for i in range(2000)]).take(
        pa.array(rng.zipf(1.3, rows) % 2000)
    )

    amounts = np.round(rng.lognormal(mean=3.5, sigma=1.0, size=rows), 2)
    amounts = np.where(_pick(rng, rows, OUTLIERS), amounts * 100, amounts)
    amounts = np.where(_pick(rng, rows, NEGATIVE), -amounts, amounts)
    amount = _money(amounts)
    bad = _pick(rng, rows, BAD_AMOUNT)
    amount = _with(amount, bad, pa.array(rng.choice(BAD_AMOUNTS, rows)))

    days = START + rng.integers(0, DAYS, rows).astype("timedelta64[D]")
    future = FUTURE + rng.integers(0, 30, rows).astype("timedelta64[D]")
    days = np.where(_pick(rng, rows, FUTURE_DATES), future, days)
    date = pc.strftime(pa.array(days), "%Y-%m-%d")
    category = pa.array(CATEGORIES).take(pa.array(rng.integers(0, len(CATEGORIES), rows)))

    # Nulls land in one of the optional-or-not columns name, amount, category.
    nulls = _pick(rng, rows, NULLS)
    which = rng.integers(0, 3, rows)
    null_text = pa.scalar(None, pa.string())
    names = _with(names, nulls & (which == 0), null_text)
    amount = _with(amount, nulls & (which == 1) & ~bad, null_text)
    category = _with(category, nulls & (which == 2), null_text)
    columns = {
        "id": pc.cast(ids, pa.string()),
        "name": names,
        "amount": amount,
        "date": date,
        "category": category,
    }

    # Duplicates copy an earlier row: all of it (exact) or just its id (a re-used key).
    positions = np.arange(rows)
    earlier = (rng.random(rows) * positions).astype(np.int64)
    exact = _pick(rng, rows, EXACT_DUPLICATES) & (positions > 0)
    same_id = _pick(rng, rows, DUPLICATE_IDS) & (positions > 0) & ~exact
    exact_rows = np.where(exact, earlier, positions)
    id_rows = np.where(same_id, earlier, exact_rows)
    taken = {name: col.take(pa.array(exact_rows)) for name, col in columns.items()}
    taken["id"] = columns["id"].take(pa.array(id_rows))
    return pa.table(taken)


def generate(rows: int, path: Path, seed: int = 7) -> Path:
    """Write `rows` transactions to `path` as CSV (header `id,name,amount,date,category`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_csv(table(rows, seed), path)


def write_csv(data: pa.Table, path: Path) -> Path:
    """`data` (the generator's columns) as CSV at `path`, whole or not at all."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with pa.OSFile(str(tmp), "wb") as sink:
        sink.write((HEADER + "\n").encode())
        # No value holds a comma or quote, so nothing needs quoting (Arrow would quote all text).
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        pacsv.write_csv(data, sink, options)
    tmp.replace(path)
    return path


def parse_rows(text: str) -> int:
    """'100k', '1m', '5M' or '250000' as a row count."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=parse_rows, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/data/tx_1m.csv"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    path = generate(args.rows, args.out, args.seed)
    print(f"{path}: {args.rows} rows, {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()

"""The implementations the benchmark compares, each run alone in a child process.

`python -m bench.impls <name> <csv> <out dir>` runs one and prints a JSON line with its time
(after imports), peak RSS, output bytes and row counts, so every figure is that
implementation's own.
"""

from __future__ import annotations

import importlib
import json
import resource
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

Counts = dict[str, int]
COLUMNS = ["id", "name", "amount", "date", "category"]
REQUIRED = ["id", "amount", "date"]
NULL_VALUES = ["", "NULL", "null", "None"]  # what Sluice reads as missing
PROCESSED_AT = datetime(2024, 4, 1, tzinfo=UTC)


def day_path(root: Path, day: date | datetime) -> Path:
    return root / f"year={day.year}" / f"month={day.month:02d}" / f"day={day.day:02d}"


def write_part(table: pa.Table, root: Path, day: date | datetime) -> None:
    folder = day_path(root, day)
    folder.mkdir(parents=True, exist_ok=True)
    # As sluice.pipeline writes its Parquet.
    pq.write_table(table, folder / "part.parquet", compression="zstd", row_group_size=1 << 20)


def sluice(csv: Path, out: Path) -> Counts:
    """Exactly the library calls the Validate and Trusted Lambdas make, minus S3: stream the
    CSV into a staged Parquet file, stream that through Trusted, move the per-day files."""
    from sluice.config import CONTRACTS_DIR
    from sluice.contracts import find_contract
    from sluice.edges.validate import stage_file
    from sluice.stages import trusted

    work = out / "_work"
    work.mkdir(parents=True)
    contract = find_contract("transactions", CONTRACTS_DIR)
    staged = stage_file(csv, csv.name, "transactions", contract, work / "staged.parquet")
    ctx = trusted.RunContext(
        source_file=csv.name,
        source_version="v",
        pipeline_version="bench",
        processed_at=PROCESSED_AT,
    )
    result = trusted.transform_file(work / "staged.parquet", staged.contract, ctx, work)
    for files, root in [
        (result.trusted, out / "trusted"),
        (result.quarantined, out / "quarantine"),
    ]:
        for day, item in files.items():
            folder = day_path(root, day)
            folder.mkdir(parents=True, exist_ok=True)
            item.path.rename(folder / "part.parquet")
    shutil.rmtree(work)
    return {
        "rows_in": result.rows_in,
        "trusted": result.rows_trusted,
        "quarantined": result.rows_quarantined,
        "duplicates": result.duplicates,
    }


def floor(csv: Path, out: Path) -> Counts:
    """What reading and writing alone cost: Arrow's CSV reader into one Parquet file."""
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(csv)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out / "all.parquet", compression="zstd")
    return {"rows_in": table.num_rows}


# --------------------------------------------------------------------------- pandas


def _read_text(csv: Path) -> Any:
    import pandas as pd

    return pd.read_csv(
        csv, dtype=str, keep_default_na=False, na_values=NULL_VALUES, on_bad_lines="error"
    )


ALLOWED = [
    "Sales", "Marketing", "Operations", "Payroll", "Travel", "Software", "Hardware", "Utilities",
    "Uncategorized",
]  # fmt: skip


def _finish_pandas(raw: Any, typed: Any, reasons: Any, out: Path) -> Counts:
    """Shared tail of both pandas versions, the rules of contracts/transactions.yaml:
    quarantine, fill, flags, de-duplicate, outliers, bands, derived, score, stamp, write."""
    import numpy as np
    import pandas as pd

    rejected = reasons != ""
    bad = raw[rejected].copy()
    bad["_row"] = bad.index + 1
    bad["reason_codes"] = reasons[rejected].str.rstrip(";").str.split(";")
    bad["quarantined_timestamp"] = PROCESSED_AT
    bad["source_file"] = "bench"
    bad_days = typed.loc[rejected, "date"].fillna(pd.Timestamp(PROCESSED_AT.date()))

    good = typed[~rejected]
    deduped = good.drop_duplicates(subset=["id"])  # first wins; exact copies share the id
    trusted = deduped.copy()
    present = trusted[COLUMNS].notna().sum(axis=1)
    missing_category = trusted["category"].isna()
    trusted["category"] = trusted["category"].fillna("Uncategorized")
    flags = {
        "NULL:name": trusted["name"].isna(),
        "FILLED:category": missing_category,
        "TOO_LONG:name": trusted["name"].str.len().fillna(0) > 200,
        "ABOVE_MAX:amount": trusted["amount"] > 1_000_000,
        "NOT_ALLOWED:category": ~trusted["category"].isin(ALLOWED),
    }
    grouped = trusted.groupby("category")["amount"]
    q1, q3 = (
        grouped.transform(lambda v: v.quantile(0.25)),
        grouped.transform(lambda v: v.quantile(0.75)),
    )
    sizes = grouped.transform("count")
    iqr = q3 - q1
    outlier = ((trusted["amount"] < q1 - 3 * iqr) | (trusted["amount"] > q3 + 3 * iqr)) & (
        sizes >= 8
    )
    flags["OUTLIER:amount"] = outlier
    trusted["amount_category"] = pd.cut(
        trusted["amount"],
        [-np.inf, 100, 1000, np.inf],
        right=False,
        labels=["LOW", "MEDIUM", "HIGH"],
    ).astype(object)
    trusted["day_of_week"] = trusted["date"].dt.day_of_week + 1
    trusted["is_outlier"] = outlier
    text = pd.Series("", index=trusted.index)
    for code, mask in flags.items():
        text = text + np.where(mask, code + ";", "")
    trusted["quality_flags"] = (
        text.str.rstrip(";").str.split(";").map(lambda x: [c for c in x if c])
    )
    failed = sum(
        flags[c].astype(int)
        for c in ["TOO_LONG:name", "ABOVE_MAX:amount", "NOT_ALLOWED:category", "OUTLIER:amount"]
    )
    trusted["data_quality_score"] = (0.5 * present / 5 + 0.5 * (1 - failed / 4)).round(4)
    trusted["processed_timestamp"] = PROCESSED_AT
    for name, value in [
        ("source_file", "bench"),
        ("source_version", "v"),
        ("pipeline_version", "bench"),
        ("processing_layer", "trusted"),
    ]:
        trusted[name] = value
    for frame, days, root in [
        (trusted, trusted["date"], out / "trusted"),
        (bad, bad_days, out / "quarantine"),
    ]:
        for day, part in frame.groupby(days, sort=True):
            write_part(pa.Table.from_pandas(part, preserve_index=False), root, day)
    return {
        "rows_in": len(raw),
        "trusted": len(trusted),
        "quarantined": len(bad),
        "duplicates": len(good) - len(deduped),
    }


def pandas_vectorized(csv: Path, out: Path) -> Counts:
    """The same rules written the way a careful pandas user would: whole-column operations."""
    import numpy as np
    import pandas as pd

    raw = _read_text(csv)
    ids = pd.to_numeric(raw["id"], errors="coerce")
    amount = pd.to_numeric(raw["amount"], errors="coerce")
    amount = amount.where(np.isfinite(amount))
    day = pd.to_datetime(raw["date"], format="%Y-%m-%d", errors="coerce")
    bad_id = raw["id"].notna() & (ids.isna() | (ids % 1 != 0))
    typed = pd.DataFrame(
        {
            "id": ids.where(~bad_id).astype("Int64"),
            "name": raw["name"],
            "amount": amount,
            "date": day,
            "category": raw["category"],
        }
    )
    reasons = pd.Series("", index=raw.index)
    for column, values in [("id", typed["id"]), ("amount", amount), ("date", day)]:
        invalid = raw[column].notna() & values.isna()
        reasons = reasons + np.where(invalid, f"TYPE_MISMATCH:{column};", "")
    for column in REQUIRED:
        reasons = reasons + np.where(raw[column].isna(), f"NULL:{column};", "")
    reasons = reasons + np.where(amount < 0, "NEGATIVE:amount;", "")
    reasons = reasons + np.where(day > pd.Timestamp(PROCESSED_AT.date()), "FUTURE:date;", "")
    return _finish_pandas(raw, typed, reasons, out)


def _check_row(row: Any) -> tuple[Any, ...]:
    """One row cast and judged by hand, as a naive script would."""
    reasons = []
    values: dict[str, Any] = {}
    for column, cast in [
        ("id", int),
        ("amount", float),
        ("date", lambda s: datetime.strptime(s, "%Y-%m-%d")),
    ]:
        text = row[column]
        if not isinstance(text, str):
            values[column] = None
            reasons.append(f"NULL:{column};")
            continue
        try:
            values[column] = cast(text)
            if (column == "amount" and values[column] != values[column]) or values[column] in (
                float("inf"),
                float("-inf"),
            ):
                raise ValueError(text)
        except ValueError:
            values[column] = None
            reasons.append(f"TYPE_MISMATCH:{column};")
    if values["amount"] is not None and values["amount"] < 0:
        reasons.append("NEGATIVE:amount;")
    if values["date"] is not None and values["date"] > PROCESSED_AT.replace(tzinfo=None):
        reasons.append("FUTURE:date;")
    return values["id"], values["amount"], values["date"], "".join(reasons)


def pandas_apply(csv: Path, out: Path) -> Counts:
    """The same rules row by row with `DataFrame.apply`: the slow baseline people start from."""
    import pandas as pd

    raw = _read_text(csv)
    checked = raw.apply(_check_row, axis=1)
    ids, amount, day, reasons = (pd.Series(v, index=raw.index) for v in zip(*checked, strict=True))
    typed = pd.DataFrame(
        {
            "id": ids.astype("Int64"),
            "name": raw["name"],
            "amount": amount.astype("float64"),
            "date": pd.to_datetime(day),
            "category": raw["category"],
        }
    )
    return _finish_pandas(raw, typed, reasons, out)


# --------------------------------------------------------------------------- polars


def polars(csv: Path, out: Path) -> Counts:
    """The rules of `pandas_vectorized` in polars expressions (whole columns, on all cores)."""
    import polars as pl

    today = PROCESSED_AT.date()
    raw = pl.read_csv(csv, infer_schema=False, null_values=NULL_VALUES).with_row_index(
        "_row", offset=1
    )
    ids = pl.col("id").cast(pl.Float64, strict=False)
    amount = pl.col("amount").cast(pl.Float64, strict=False)
    typed = raw.with_columns(
        _id=pl.when(ids.is_not_null() & (ids % 1 == 0)).then(ids).cast(pl.Int64, strict=False),
        _amount=pl.when(amount.is_finite()).then(amount),
        _date=pl.col("date").str.to_date("%Y-%m-%d", strict=False),
    )
    codes = [
        pl.when(pl.col(c).is_not_null() & pl.col(f"_{c}").is_null()).then(
            pl.lit(f"TYPE_MISMATCH:{c}")
        )
        for c in ("id", "amount", "date")
    ]
    codes += [pl.when(pl.col(c).is_null()).then(pl.lit(f"NULL:{c}")) for c in REQUIRED]
    codes += [
        pl.when(pl.col("_amount") < 0).then(pl.lit("NEGATIVE:amount")),
        pl.when(pl.col("_date") > today).then(pl.lit("FUTURE:date")),
    ]
    judged = typed.with_columns(reason_codes=pl.concat_list(codes).list.drop_nulls())
    rejected = pl.col("reason_codes").list.len() > 0
    bad = judged.filter(rejected).select(
        *COLUMNS,
        "_row",
        "reason_codes",
        pl.lit(PROCESSED_AT).alias("quarantined_timestamp"),
        pl.lit("bench").alias("source_file"),
        pl.col("_date").fill_null(today).alias("_day"),
    )
    good = judged.filter(~rejected).select(
        pl.col("_id").alias("id"),
        "name",
        pl.col("_amount").alias("amount"),
        pl.col("_date").alias("date"),
        "category",
    )
    deduped = good.unique(subset=["id"], keep="first", maintain_order=True)
    present = pl.sum_horizontal(pl.col(c).is_not_null().cast(pl.Int32) for c in COLUMNS)
    filled = deduped.with_columns(
        _present=present,
        _filled=pl.col("category").is_null(),
        category=pl.col("category").fill_null("Uncategorized"),
    )
    q1 = pl.col("amount").quantile(0.25, interpolation="linear").over("category")
    q3 = pl.col("amount").quantile(0.75, interpolation="linear").over("category")
    sizes = pl.col("amount").count().over("category")
    flagged = filled.with_columns(
        _outlier=(
            (pl.col("amount") < q1 - 3 * (q3 - q1)) | (pl.col("amount") > q3 + 3 * (q3 - q1))
        ).fill_null(False)
        & (sizes >= 8),
    )
    flags = {
        "NULL:name": pl.col("name").is_null(),
        "FILLED:category": pl.col("_filled"),
        "TOO_LONG:name": pl.col("name").str.len_chars().fill_null(0) > 200,
        "ABOVE_MAX:amount": (pl.col("amount") > 1_000_000).fill_null(False),
        "NOT_ALLOWED:category": ~pl.col("category").is_in(ALLOWED),
        "OUTLIER:amount": pl.col("_outlier"),
    }
    scored = ["TOO_LONG:name", "ABOVE_MAX:amount", "NOT_ALLOWED:category", "OUTLIER:amount"]
    failed = pl.sum_horizontal(flags[c].cast(pl.Int32) for c in scored)
    trusted = flagged.with_columns(
        amount_category=pl.when(pl.col("amount") < 100)
        .then(pl.lit("LOW"))
        .when(pl.col("amount") < 1000)
        .then(pl.lit("MEDIUM"))
        .when(pl.col("amount").is_not_null())
        .then(pl.lit("HIGH")),
        day_of_week=pl.col("date").dt.weekday(),
        is_outlier=pl.col("_outlier"),
        quality_flags=pl.concat_list(
            [pl.when(mask).then(pl.lit(code)) for code, mask in flags.items()]
        ).list.drop_nulls(),
        data_quality_score=(0.5 * pl.col("_present") / 5 + 0.5 * (1 - failed / 4)).round(4),
        processed_timestamp=pl.lit(PROCESSED_AT),
        source_file=pl.lit("bench"),
        source_version=pl.lit("v"),
        pipeline_version=pl.lit("bench"),
        processing_layer=pl.lit("trusted"),
    ).drop("_present", "_filled", "_outlier")
    for frame, by, root in [(trusted, "date", out / "trusted"), (bad, "_day", out / "quarantine")]:
        for (day,), part in frame.partition_by(by, as_dict=True, maintain_order=False).items():
            folder = day_path(root, day)
            folder.mkdir(parents=True, exist_ok=True)
            part.drop("_day", strict=False).write_parquet(
                folder / "part.parquet", compression="zstd", row_group_size=1 << 20
            )
    return {
        "rows_in": raw.height,
        "trusted": trusted.height,
        "quarantined": bad.height,
        "duplicates": good.height - deduped.height,
    }


# --------------------------------------------------------------------------- duckdb


def _duckdb(trusted: Path, out: Path, options: str) -> Counts:
    """DuckDB's own partitioned writer over Sluice's trusted rows, for an output-size yardstick."""
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    query = (
        "SELECT *, year(date) AS year, month(date) AS month, day(date) AS day "
        f"FROM read_parquet('{trusted}/**/*.parquet')"
    )
    con.execute(
        f"COPY ({query}) TO '{out}' (FORMAT PARQUET, PARTITION_BY (year, month, day)"
        f"{options}, OVERWRITE_OR_IGNORE)"
    )
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}/**/*.parquet')").fetchone()
    return {"trusted": int(rows[0]) if rows else 0}


def duckdb_default(trusted: Path, out: Path) -> Counts:
    return _duckdb(trusted, out, "")


def duckdb_zstd(trusted: Path, out: Path) -> Counts:
    return _duckdb(trusted, out, ", COMPRESSION zstd")


# Imported before the clock starts, so the time is the work, not the imports.
PRELOAD = {
    # pyarrow imports pandas (when installed) on its first numpy conversion: an import, not work.
    "sluice": ["sluice.pipeline", "sluice.stages.trusted", "pandas"],
    "floor": ["pyarrow.csv"],
    "pandas_vectorized": ["pandas"],
    "pandas_apply": ["pandas"],
    "polars": ["polars"],
    "duckdb": ["duckdb"],
    "duckdb_zstd": ["duckdb"],
}
IMPLEMENTATIONS: dict[str, Callable[[Path, Path], Counts]] = {
    "sluice": sluice,
    "floor": floor,
    "pandas_vectorized": pandas_vectorized,
    "pandas_apply": pandas_apply,
    "polars": polars,
    "duckdb": duckdb_default,
    "duckdb_zstd": duckdb_zstd,
}


def bytes_under(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*.parquet")) if root.exists() else 0


def main(argv: list[str]) -> None:
    name, source, out = argv[0], Path(argv[1]), Path(argv[2])
    shutil.rmtree(out, ignore_errors=True)
    for module in PRELOAD[name]:
        importlib.import_module(module)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    counts = IMPLEMENTATIONS[name](source, out)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    report = {
        "impl": name,
        "seconds": seconds,
        "peak_rss_mb": peak_kb / 1024,
        "start_rss_mb": before / 1024,
        "output_bytes": bytes_under(out),
        "trusted_bytes": bytes_under(out if name.startswith("duckdb") else out / "trusted"),
        **counts,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])

"""Validate: is this file readable, non-empty, and does it carry the contract's columns?"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa

from sluice.contracts import Contract
from sluice.errors import SluiceDataError
from sluice.reasons import ReasonCode
from sluice.stages.infer import infer_contract

# Rows an inferred contract is guessed from.
SAMPLE_ROWS = 100_000


def sample_of(
    batches: Iterator[pa.RecordBatch], rows: int = SAMPLE_ROWS
) -> tuple[pa.Table, Iterator[pa.RecordBatch]]:
    """(the first `rows` rows or so, the batches after them): the file is still read once."""
    taken: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        taken.append(batch)
        count += batch.num_rows
        if count >= rows:
            break
    if not taken:
        return pa.table({}), batches
    return pa.Table.from_batches(taken), batches


def check_columns(
    schema: pa.Schema,
    sample: pa.Table,
    dataset: str,
    contract: Contract | None,
    adopt: Callable[[Contract], Contract] | None = None,
) -> Contract:
    """The contract the file will be judged by; a `SluiceDataError` if the file cannot be.

    Without a contract, one is inferred from the sample and handed to `adopt`, which answers
    the dataset's contract: this one if it is the first, else the one adopted before it, by
    which the file is then judged like any other."""
    if len(schema) == 0:
        raise SluiceDataError(ReasonCode.EMPTY_FILE, "file has no columns")
    if sample.num_rows == 0:
        raise SluiceDataError(ReasonCode.HEADER_ONLY, "file has a header but no rows")
    if contract is None:
        inferred = infer_contract(dataset, sample)
        contract = inferred if adopt is None else adopt(inferred)
        if contract is inferred:
            return contract
    present = set(schema.names)
    missing = [name for name in contract.required if name not in present]
    if missing:
        raise SluiceDataError(
            ReasonCode.MISSING_COLUMNS,
            f"required columns missing: {', '.join(missing)}",
            missing=missing,
            found=schema.names,
        )
    return contract


def check_table(table: pa.Table, dataset: str, contract: Contract | None) -> Contract:
    """`check_columns` for a file already held as one table."""
    return check_columns(table.schema, table, dataset, contract)

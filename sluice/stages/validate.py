"""Validate: is this file readable, non-empty, and does it carry the contract's columns?"""

from __future__ import annotations

import pyarrow as pa

from sluice.contracts import Contract, infer_contract
from sluice.errors import SluiceDataError


def check_table(table: pa.Table, dataset: str, contract: Contract | None) -> Contract:
    """The contract the file will be judged by; a `SluiceDataError` if the file cannot be."""
    if table.num_columns == 0:
        raise SluiceDataError("EMPTY_FILE", "file has no columns")
    if table.num_rows == 0:
        raise SluiceDataError("HEADER_ONLY", "file has a header but no rows")
    if contract is None:
        return infer_contract(dataset, table)
    present = set(table.column_names)
    missing = [name for name in contract.required if name not in present]
    if missing:
        raise SluiceDataError(
            "MISSING_COLUMNS",
            f"required columns missing: {', '.join(missing)}",
            missing=missing,
            found=table.column_names,
        )
    return contract

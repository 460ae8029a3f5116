"""Which contract a file is read with: the user's in RAW, the bundled one, or one inferred."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sluice import contracts
from sluice.config import Settings
from sluice.contracts import Contract, ContractError
from sluice.edges.common import Outputs
from sluice.errors import SluiceDataError, SluiceTransientError
from sluice.grants import INFERRED_CONTRACT
from sluice.ports import StageStore
from sluice.reasons import ReasonCode

if TYPE_CHECKING:
    pass
else:
    pass

# User contracts in the RAW bucket (`_contracts/<dataset>.yaml`) win over the bundled ones.
RAW_CONTRACTS_PREFIX = "_contracts/"


def _contract_object(store: StageStore, bucket: str, key: str) -> Contract | None:
    """The contract kept at `s3://bucket/key`, or None; never more than the size cap is read."""
    data = store.get_bytes_if_exists(bucket, key, limit=contracts.MAX_CONTRACT_BYTES + 1)
    return None if data is None else contracts.load_contract_bytes(data, f"s3://{bucket}/{key}")


def _inferred_before(store: StageStore, settings: Settings, dataset: str) -> Contract | None:
    """The contract inferred from the dataset's first file: later files are typed the same way,
    so one day's files can be summarized together."""
    found = _contract_object(store, settings.trusted_bucket, _inferred_key(dataset))
    return None if found is None else dataclasses.replace(found, inferred=True)


def _inferred_key(dataset: str) -> str:
    return f"{dataset}/{INFERRED_CONTRACT}"


def adopter(out: Outputs, settings: Settings, dataset: str) -> Callable[[Contract], Contract]:
    """How a file of a dataset without a contract adopts one: the first file's inferred
    contract is put where none is (a conditional write), and every other file, however close
    behind, is judged by the one that was put."""

    def adopt(inferred: Contract) -> Contract:
        key = _inferred_key(dataset)
        if not inferred.columns:
            raise SluiceDataError(
                ReasonCode.INVALID_CONTRACT,
                f"{dataset} has no contract and no column of the file can be one of its columns: "
                "each is reserved or not a safe name (fix: rename the file's columns as "
                "docs/contracts.md, Loading limits, says, or write the dataset's contract)",
            )
        body = inferred.to_yaml().encode()
        try:
            # What is adopted must load again for every later file, as any contract does.
            contracts.load_contract_bytes(body, f"s3://{settings.trusted_bucket}/{key}")
        except ContractError as exc:
            raise SluiceDataError(
                ReasonCode.INVALID_CONTRACT, str(exc), contract=exc.source
            ) from exc
        if out.store.put_if(settings.trusted_bucket, key, body, "application/yaml", None):
            out.count(len(body))
            return inferred
        try:
            adopted = _inferred_before(out.store, settings, dataset)
        except ContractError as exc:
            raise SluiceDataError(
                ReasonCode.INVALID_CONTRACT, str(exc), contract=exc.source
            ) from exc
        if adopted is None:
            # Another file's write is still in flight (S3 answered 409): it will be there.
            raise SluiceTransientError(f"{key}: being adopted by another file, not yet readable")
        return adopted

    return adopt


def contract_for(
    store: StageStore, settings: Settings, dataset: str, contracts_dir: Path
) -> Contract | None:
    """The dataset's contract: RAW `_contracts/<dataset>.yaml` first, then the bundled one.

    A contract that does not load is the file's problem to report (INVALID_CONTRACT), so the
    file is quarantined with the contract's error and can be rerun once the contract is fixed.
    """
    contract: Contract | None = None
    try:
        for suffix in (".yaml", ".yml"):
            key = f"{RAW_CONTRACTS_PREFIX}{dataset}{suffix}"
            contract = _contract_object(store, settings.raw_bucket, key)
            if contract is not None:
                break
        else:
            contract = contracts.find_contract(dataset, contracts_dir) or _inferred_before(
                store, settings, dataset
            )
    except ContractError as exc:
        raise SluiceDataError(ReasonCode.INVALID_CONTRACT, str(exc), contract=exc.source) from exc
    if contract is not None and contract.dataset != dataset:
        raise SluiceDataError(
            ReasonCode.INVALID_CONTRACT,
            f"{contract.source}: dataset: is {contract.dataset!r}, expected {dataset!r} "
            f"(fix: set 'dataset: {dataset}')",
        )
    return contract

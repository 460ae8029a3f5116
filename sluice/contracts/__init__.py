"""Dataset contracts: what a dataset's columns are and how its records are judged.

A contract is a YAML file (`contracts/<dataset>.yaml`). It is validated when loaded, and every
problem names the file, the field and the fix. A dataset without one gets a contract inferred
from its data (`sluice.stages.infer`, which guesses types as Trusted reads them).

- `model`: the contract and its parts, and the names and types a contract may use;
- `check`: `ContractError`, and the checks every field's problem is raised by;
- `columns`: a column's entry (type, nulls, default, rules);
- `parse`: the whole document (`parse_contract`);
- `load`: YAML within the loading limits, and contract files (`find_contract`).
"""

from typing import TYPE_CHECKING

from sluice.contracts.check import ContractError
from sluice.contracts.columns import full_match_regex, re2_problem
from sluice.contracts.model import (
    ACTIONS,
    DERIVED_FUNCTIONS,
    MAX_NAME_LENGTH,
    NAME_RULE,
    NULL_POLICIES,
    NUMERIC,
    OUTLIER_METHODS,
    RESERVED_NAMES,
    RULES,
    TYPES,
    Band,
    Column,
    Contract,
    Derived,
    Outliers,
    Rule,
    is_safe_name,
)
from sluice.contracts.parse import TOP_LEVEL, parse_contract

if TYPE_CHECKING:
    from sluice.contracts.load import (
        MAX_ALIASES,
        MAX_CONTRACT_BYTES,
        MAX_DEPTH,
        MAX_NODES,
        find_contract,
        load_contract_bytes,
        load_contract_text,
    )

# Reading YAML (`load`) imports PyYAML: loaded when first asked for, so a stage that gets its
# contract as JSON (Trusted and Delivery, from the manifest) never loads it.
_LOAD_NAMES = frozenset(
    {
        "MAX_ALIASES",
        "MAX_CONTRACT_BYTES",
        "MAX_DEPTH",
        "MAX_NODES",
        "find_contract",
        "load_contract_bytes",
        "load_contract_text",
    }
)


def __getattr__(name: str) -> object:
    if name in _LOAD_NAMES:
        from sluice.contracts import load

        return getattr(load, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACTIONS",
    "DERIVED_FUNCTIONS",
    "MAX_ALIASES",
    "MAX_CONTRACT_BYTES",
    "MAX_DEPTH",
    "MAX_NAME_LENGTH",
    "MAX_NODES",
    "NAME_RULE",
    "NULL_POLICIES",
    "NUMERIC",
    "OUTLIER_METHODS",
    "RESERVED_NAMES",
    "RULES",
    "TOP_LEVEL",
    "TYPES",
    "Band",
    "Column",
    "Contract",
    "ContractError",
    "Derived",
    "Outliers",
    "Rule",
    "find_contract",
    "full_match_regex",
    "is_safe_name",
    "load_contract_bytes",
    "load_contract_text",
    "parse_contract",
    "re2_problem",
]

"""The three workflow stages as the Lambdas call them; each lives in its edge module.

`validate` (`sluice.edges.validate`), `trusted` (`sluice.edges.trusted`) and `deliver`
(`sluice.edges.delivery`) take the state machine's small state and return the section they add
to it: pointers (bucket + key) and counts, never rows. The starter's edge is `sluice.starter`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sluice.edges.common import CONTRACT_METADATA, PARQUET
from sluice.edges.contracts import contract_for
from sluice.edges.delivery import deliver
from sluice.edges.quarantine import quarantine_file
from sluice.edges.trusted import trusted
from sluice.edges.validate import stage_file, validate

if TYPE_CHECKING:
    from sluice.starter import StartOutcome as StartOutcome
    from sluice.starter import start_executions as start_executions

__all__ = [
    "CONTRACT_METADATA",
    "PARQUET",
    "contract_for",
    "deliver",
    "quarantine_file",
    "stage_file",
    "trusted",
    "validate",
]

# The starter's edge lives in sluice.starter; these names are still found here, without the
# workflow stages' Lambdas importing it.
_STARTER_NAMES = ("StartOutcome", "start_executions")


def __getattr__(name: str) -> object:
    if name in _STARTER_NAMES:
        from sluice import starter

        return getattr(starter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

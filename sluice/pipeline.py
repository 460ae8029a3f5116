"""The three workflow stages as the Lambdas call them; each lives in its edge module.

`validate` (`sluice.edges.validate`), `trusted` (`sluice.edges.trusted`) and `deliver`
(`sluice.edges.delivery`) take the state machine's small state and return the section they add
to it: pointers (bucket + key) and counts, never rows. The starter's edge is `sluice.starter`.

Each name is loaded from its edge when first asked for, so a Lambda imports only its own
stage's edge (its handler does, at init): Trusted and Delivery do not load Validate's readers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluice.edges.common import CONTRACT_METADATA as CONTRACT_METADATA
    from sluice.edges.common import PARQUET as PARQUET
    from sluice.edges.contracts import contract_for as contract_for
    from sluice.edges.delivery import deliver as deliver
    from sluice.edges.quarantine import quarantine_file as quarantine_file
    from sluice.edges.trusted import trusted as trusted
    from sluice.edges.validate import stage_file as stage_file
    from sluice.edges.validate import validate as validate
    from sluice.starter import StartOutcome as StartOutcome
    from sluice.starter import start_executions as start_executions

# Where each name lives. (The starter's edge is sluice.starter; its names are still found here,
# without the workflow stages' Lambdas importing it.)
_HOMES = {
    "CONTRACT_METADATA": "sluice.edges.common",
    "PARQUET": "sluice.edges.common",
    "contract_for": "sluice.edges.contracts",
    "deliver": "sluice.edges.delivery",
    "quarantine_file": "sluice.edges.quarantine",
    "trusted": "sluice.edges.trusted",
    "stage_file": "sluice.edges.validate",
    "validate": "sluice.edges.validate",
    "StartOutcome": "sluice.starter",
    "start_executions": "sluice.starter",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)

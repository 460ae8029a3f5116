"""The state between stages, typed: what each stage receives and returns, and the manifests it
leaves in S3 for the next one.

The workflow carries JSON; each handler parses it here once (`ExecutionState.from_dict`), the
stage edges work on these frozen models, and a stage's section goes back into the state as the
JSON it always was (`to_dict`). The report, ops and the CLI read executions' outputs and the
lineage manifests through the same models, so a renamed field is a type error, not a `KeyError`
in production. A state that does not have the shape is a `StateError` naming the field.
"""

from __future__ import annotations

from sluice.state.manifests import (
    SMALL_DAY_BYTES,
    DayPointer,
    DayRowsPointer,
    Durations,
    LineageManifest,
    OutputFile,
    PartialsPointer,
    QualityTotals,
    TrustedManifest,
)
from sluice.state.parse import Json, JsonObject, StateError, json_object, source_of
from sluice.state.sections import (
    CaughtError,
    ContractRef,
    DeliverySection,
    ExecutionState,
    Pointer,
    RowCounts,
    Section,
    Sheets,
    TrustedSection,
    ValidateSection,
    is_caught_error,
    metrics_of,
)

__all__ = [
    "SMALL_DAY_BYTES",
    "CaughtError",
    "ContractRef",
    "DayPointer",
    "DayRowsPointer",
    "DeliverySection",
    "Durations",
    "ExecutionState",
    "Json",
    "JsonObject",
    "LineageManifest",
    "OutputFile",
    "PartialsPointer",
    "Pointer",
    "QualityTotals",
    "RowCounts",
    "Section",
    "Sheets",
    "StateError",
    "TrustedManifest",
    "TrustedSection",
    "ValidateSection",
    "is_caught_error",
    "json_object",
    "metrics_of",
    "source_of",
]

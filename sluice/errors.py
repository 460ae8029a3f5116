"""Typed errors. Their class names are the `errorType` the state machine's Retry/Catch match."""

from __future__ import annotations

from typing import Any

from sluice.config import DATA_ERROR, TRANSIENT_ERROR
from sluice.reasons import EventReason, ReasonCode


class SluiceError(Exception):
    """Base class of the pipeline's own errors."""


class SluiceDataError(SluiceError):
    """The input itself is wrong: retrying cannot help. The object is quarantined with `reason`."""

    def __init__(self, reason: ReasonCode | EventReason, message: str, **details: Any) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "message": self.message, **self.details}


class SluiceTransientError(SluiceError):
    """A dependency failed in a way that may pass (throttling, timeouts): retry with backoff."""


# The state machine matches on these names; keep the classes and the config in step.
assert SluiceDataError.__name__ == DATA_ERROR
assert SluiceTransientError.__name__ == TRANSIENT_ERROR

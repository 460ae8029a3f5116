"""What tests share that belongs to no one layer: waiting for something to happen, and running
a stage edge on a state as the workflow carries it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sluice.config import Settings
from sluice.ports import StageStore
from sluice.state import ExecutionState, Section


def eventually(
    check: Callable[[], Any], timeout: float = 60, what: str = "condition", every: float = 0.05
) -> Any:
    """Call `check` until it returns something true, and return that; `TimeoutError(what)`
    if it has not within `timeout` seconds. The one way a test waits for an event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise TimeoutError(what)


def run_edge(
    edge: Callable[..., Section],
    state: dict[str, Any],
    store: StageStore,
    settings: Settings,
    *args: Any,
) -> dict[str, Any]:
    """`edge` (`sluice.pipeline.validate`, `.trusted`, `.deliver`) on `state` as JSON, as the
    handler calls it: the state parsed once, the stage's section back as the JSON it puts in
    the state."""
    return edge(ExecutionState.from_dict(state), store, settings, *args).to_dict()

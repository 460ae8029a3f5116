"""What tests share that belongs to no one layer: waiting for something to happen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


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

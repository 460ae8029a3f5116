"""The embedded local cloud: moto's server, Sluice's in-process Lambda runtime, and a queue pump.

`LocalCloud` is loaded on first use: a function's environment (`python -m sluice.local.worker`)
imports this package too, and must not pay for moto, which Lambda does not have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluice.local.cloud import LocalCloud

__all__ = ["LocalCloud"]


def __getattr__(name: str) -> Any:
    if name == "LocalCloud":
        from sluice.local.cloud import LocalCloud

        return LocalCloud
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

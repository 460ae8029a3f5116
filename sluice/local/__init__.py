"""The embedded local cloud: moto's server, Sluice's in-process Lambda runtime, and a queue pump."""

from sluice.local.cloud import LocalCloud

__all__ = ["LocalCloud"]

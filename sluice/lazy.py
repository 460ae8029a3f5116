"""Modules imported when first used, so a Lambda loads only the stage logic it runs.

`sluice.pipeline` reaches the edges of every workflow stage (`sluice.edges`), but each Lambda
runs one stage. The stage logic is reached through a `LazyModule`, so only the handler that
runs a stage imports its logic (at init, with a plain import of its own).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module `name` and imports it on the first attribute read.

    The import is a plain one: the module is the one in `sys.modules`, and an `import name`
    elsewhere, before or after, loads it as usual.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def load(self) -> ModuleType:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return self._module

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.load(), attr)

    def __repr__(self) -> str:
        state = "loaded" if self._module is not None else "not loaded yet"
        return f"<LazyModule {self._name!r} ({state})>"

"""The state machine definition: one file, with `${...}` placeholders filled per target."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sluice.config import ASL_PATH

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def render(substitutions: Mapping[str, str], path: Path = ASL_PATH) -> str:
    """The definition with every placeholder replaced; an unfilled one is an error."""
    text = path.read_text(encoding="utf-8")
    missing = placeholders(text) - set(substitutions)
    if missing:
        raise KeyError(f"{path.name}: no value for {', '.join(sorted(missing))}")
    return _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], text)


def load(substitutions: Mapping[str, str], path: Path = ASL_PATH) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(render(substitutions, path))
    return document

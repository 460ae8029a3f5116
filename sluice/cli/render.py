"""How the commands print: one JSON document with `--json`, else text and tables."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def progress(message: str) -> None:
    """A line for the person watching, on stderr (stdout keeps the result)."""
    print(message, file=sys.stderr, flush=True)


def emit(args: argparse.Namespace, document: Any, text: str) -> None:
    """The command's result: `document` as JSON with `--json`, else `text`."""
    print(json.dumps(document, indent=2, default=str) if args.json else text)


def short(moment: str | None) -> str:
    return moment.replace("T", " ")[:19] if moment else "-"


def counted(n: int, noun: str) -> str:
    """`(1 execution)`, `(3 executions)`: the line under a table."""
    return f"({n} {noun}{'s' if n != 1 else ''})"

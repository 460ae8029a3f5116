"""One Lambda execution environment: a process that loads one handler and runs its invocations.

`sluice.local.runtime` starts it as `python -m sluice.local.worker FD STAGE`, with the function's
environment (its variables, its role's credentials, its `/tmp`), and talks to it over the socket
FD: `("ready", None)` once the handler module is loaded (the init phase), then one request
in, one answer out per invocation. What the function prints goes to this process's stdout, which
the runtime keeps as the function's log. Memory, timeout and `/tmp` are the runtime's to enforce:
this process only runs the handler, as the Python Lambda runtime does.

A function imports what Lambda gives it and nothing else: the standard library, Sluice's own
code, the packages of its layer and those the Python runtime ships (`LayerOnly`). A package the
development venv has but Lambda does not (pandas, moto, duckdb...) is a `ModuleNotFoundError`
here as it is there, and a library that tries it optionally (pyarrow tries pandas) carries on
without it, as it does there.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import sys
import sysconfig
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LambdaContext:
    """The attributes of the Python runtime's context object that handlers use."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    memory_limit_in_mb: int = 512
    timeout_ms: int = 300_000
    function_version: str = "$LATEST"
    log_stream_name: str = "local"
    started: float = field(default_factory=time.monotonic)

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.timeout_ms - (time.monotonic() - self.started) * 1000))


class LayerOnly:
    """First on `sys.meta_path`: refuses a top-level import that would come from an installed
    package which is neither in `allowed` (the layer's and the runtime's top-level modules) nor
    in the standard library. Code outside the installed packages (Sluice, the functions, test
    fault hooks) imports as usual."""

    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed
        paths = sysconfig.get_paths()
        self.installed = tuple(
            Path(paths[key]).resolve() for key in ("purelib", "platlib") if key in paths
        )

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if (
            "." in name
            or name in self.allowed
            or name in sys.stdlib_module_names
            or name in sys.builtin_module_names
        ):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name)
        where = (
            None
            if spec is None
            else spec.origin or next(iter(spec.submodule_search_locations or ()), None)
        )
        if where is not None and any(
            Path(where).resolve().is_relative_to(p) for p in self.installed
        ):
            raise ModuleNotFoundError(
                f"No module named {name!r} (neither the function's layer nor the Lambda Python"
                " runtime has it)",
                name=name,
            )
        return None


def load_handler(stage: str) -> ModuleType:
    path = PROJECT_ROOT / "functions" / stage / "handler.py"
    spec = importlib.util.spec_from_file_location(f"sluice_function_{stage}", path)
    if spec is None or spec.loader is None:
        raise LookupError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def error_document(exc: BaseException, request_id: str) -> dict[str, Any]:
    """What the Python runtime answers for an unhandled exception."""
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "requestId": request_id,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _fault(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def serve(connection: Connection, stage: str) -> int:
    try:
        module = load_handler(stage)
    except Exception as exc:
        document = error_document(exc, "")
        document["errorType"] = "Runtime.ImportModuleError"
        connection.send(("init_error", json.dumps(document)))
        return 1
    connection.send(("ready", None))
    while True:
        try:
            request: dict[str, Any] = connection.recv()
        except EOFError:
            return 0
        context = LambdaContext(
            function_name=request["function_name"],
            invoked_function_arn=request["function_arn"],
            aws_request_id=request["request_id"],
            memory_limit_in_mb=request["memory_mb"],
            timeout_ms=request["timeout_ms"],
        )
        event = request["event"]
        try:
            for spec in request.get("faults", ()):
                _fault(spec)(stage, event)
            result = module.handler(event, context)
            answer = ("ok", json.dumps(result, default=str))
        except Exception as exc:
            document = error_document(exc, context.aws_request_id)
            # The runtime logs an unhandled exception before answering, as Lambda's does.
            print(json.dumps({"level": "ERROR", "function": context.function_name, **document}))
            answer = ("error", json.dumps(document))
        sys.stdout.flush()
        connection.send(answer)


def main(argv: list[str]) -> int:
    connection = Connection(int(argv[1]))
    if len(argv) > 3:
        sys.meta_path.insert(0, LayerOnly(frozenset(argv[3].split(","))))
    return serve(connection, argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv))

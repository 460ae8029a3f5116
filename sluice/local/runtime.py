"""An in-process stand-in for the Python Lambda runtime.

An invoke runs `functions/<stage>/handler.py`'s `handler(event, context)` with the context a
real function gets, and reports an exception the way the Python runtime does (`errorType`,
`errorMessage`, `stackTrace`), so Retry and Catch match error names exactly as on AWS.
Whatever a function prints (Powertools logs, EMF metrics) is kept per function, like a
CloudWatch log group.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TextIO

from sluice.config import PROJECT_ROOT, STAGES, PipelineNames

# A fault hook may raise to simulate a failing function: (stage, event) -> None.
FaultHook = Callable[[str, dict[str, Any]], None]


@dataclass
class LambdaContext:
    """The attributes of the Python runtime's context object that handlers use."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    timeout_ms: int = 300_000
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_stream_name: str = "local"
    started: float = field(default_factory=time.monotonic)

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.timeout_ms - (time.monotonic() - self.started) * 1000))


class _RoutingStream(io.TextIOBase):
    """stdout that sends what a function prints to that function's log, the rest through."""

    def __init__(self, target: TextIO) -> None:
        self.target = target

    def write(self, text: str) -> int:
        sink = getattr(_SINK, "lines", None)
        if sink is None:
            return self.target.write(text)
        sink.append(text)
        return len(text)

    def flush(self) -> None:
        self.target.flush()


_ROUTER: _RoutingStream | None = None
# Shared by every router ever installed: a logger may hold an older one.
_SINK = threading.local()


def _router() -> _RoutingStream:
    """One process-wide router: loggers keep the stream they were created with, so it stays."""
    global _ROUTER
    if _ROUTER is None or sys.stdout is not _ROUTER:
        _ROUTER = _RoutingStream(sys.stdout)
        sys.stdout = _ROUTER
    return _ROUTER


@dataclass
class Invocation:
    function: str
    request_id: str
    error_type: str | None
    duration_ms: float


class LambdaRuntime:
    """Runs the four Sluice functions in this process."""

    def __init__(self, names: PipelineNames, account: str, region: str) -> None:
        self.names = names
        self.account = account
        self.region = region
        self.logs: dict[str, list[str]] = defaultdict(list)
        self.invocations: list[Invocation] = []
        self._modules: dict[str, ModuleType] = {}
        self._faults: list[FaultHook] = []
        self._lock = threading.Lock()
        self._stream: _RoutingStream | None = None
        self._stages = {names.function(stage): stage for stage in STAGES}

    # -- lifecycle ---------------------------------------------------------------------------

    def capture_output(self) -> None:
        self._stream = _router()

    def release_output(self) -> None:
        self._stream = None

    def add_fault(self, hook: FaultHook) -> None:
        self._faults.append(hook)

    def clear_faults(self) -> None:
        self._faults.clear()

    # -- invoking ----------------------------------------------------------------------------

    def stage_of(self, function: str) -> str:
        name = function.rsplit(":function:", 1)[-1].split(":", 1)[0]
        try:
            return self._stages[name]
        except KeyError:
            raise LookupError(f"no local function named {name!r}") from None

    def _module(self, stage: str) -> ModuleType:
        with self._lock:
            if stage not in self._modules:
                path = PROJECT_ROOT / "functions" / stage / "handler.py"
                spec = importlib.util.spec_from_file_location(f"sluice_function_{stage}", path)
                if spec is None or spec.loader is None:
                    raise LookupError(f"cannot load {path}")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                self._bind_logger(module)
                self._modules[stage] = module
            return self._modules[stage]

    def _bind_logger(self, module: ModuleType) -> None:
        """Point the handler's Powertools logger at the router: a logger keeps the stdout of
        the moment it was made, which is not the router if stdout was replaced since."""
        service = getattr(getattr(module, "logger", None), "service", None)
        if self._stream is None or not service:
            return
        for handler in logging.getLogger(service).handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is not self._stream:
                # Not setStream(): it flushes the old stream, which may be closed by now.
                with handler.lock or contextlib.nullcontext():
                    handler.stream = self._stream

    @contextlib.contextmanager
    def _logging_to(self, function: str) -> Iterator[list[str]]:
        lines: list[str] = []
        if self._stream is not None:
            _SINK.lines = lines
        try:
            yield lines
        finally:
            _SINK.lines = None
            with self._lock:
                self.logs[function].extend("".join(lines).splitlines())

    def invoke(self, function: str, event: Any) -> tuple[Any, str | None]:
        """(result, None) or (error document, "Unhandled"), as the Lambda service answers."""
        stage = self.stage_of(function)
        name = self.names.function(stage)
        context = LambdaContext(
            function_name=name,
            invoked_function_arn=f"arn:aws:lambda:{self.region}:{self.account}:function:{name}",
        )
        started = time.perf_counter()
        error_type: str | None = None
        with self._logging_to(name):
            try:
                for hook in list(self._faults):
                    hook(stage, event)
                result: Any = self._module(stage).handler(event, context)
            except Exception as exc:
                error_type = type(exc).__name__
                result = {
                    "errorType": error_type,
                    "errorMessage": str(exc),
                    "requestId": context.aws_request_id,
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }
                print(json.dumps({"level": "ERROR", "function": name, **result}))
        with self._lock:
            self.invocations.append(
                Invocation(
                    name, context.aws_request_id, error_type, (time.perf_counter() - started) * 1000
                )
            )
        return result, ("Unhandled" if error_type else None)

    def dispatch(self, function: str, body: bytes) -> tuple[bytes, str | None]:
        """The moto seam: a JSON request body in, a JSON payload and function error out."""
        event = json.loads(body) if body.strip() else {}
        result, error = self.invoke(function, event)
        return json.dumps(result, default=str).encode(), error

"""Everything that touches moto's internals, kept in one place.

moto interprets Step Functions for real, but cannot run Lambda code without Docker. Its
Docker-less Lambda backend has one method, `invoke`, that answers every call; Sluice replaces
it with a dispatcher to its own runtime. `tests/integration/test_moto_seam.py` fails loudly
if a moto upgrade moves any of this.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.config import default_user_config

# (function name or ARN, request body) -> (payload, function error or None)
Dispatcher = Callable[[str, bytes], tuple[bytes, str | None]]

_original_invoke = LambdaSimpleBackend.invoke
_dispatcher: Dispatcher | None = None


def enable_execution() -> None:
    """Make moto run state machines and use its Docker-less Lambda backend."""
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    default_user_config["lambda"]["use_docker"] = False


def reset_state(endpoint_url: str) -> None:
    """Forget every resource moto holds (its backends outlive a server in the same process)."""
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def _invoke(
    self: LambdaSimpleBackend,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: dict[str, str],
) -> str | bytes | None:
    if _dispatcher is None:
        return _original_invoke(self, function_name, qualifier, body, headers, response_headers)
    raw = body if isinstance(body, bytes) else str(body or "").encode()
    payload, function_error = _dispatcher(function_name, raw)
    if function_error:
        # What the Lambda service answers for an unhandled exception: the state machine reads
        # `errorType` from the payload and matches Retry/Catch on it.
        response_headers["x-amz-function-error"] = function_error
    return payload


def install_dispatcher(dispatcher: Dispatcher) -> None:
    global _dispatcher
    _dispatcher = dispatcher
    setattr(LambdaSimpleBackend, "invoke", _invoke)  # noqa: B010 - the seam is a method swap


def remove_dispatcher() -> None:
    global _dispatcher
    _dispatcher = None
    setattr(LambdaSimpleBackend, "invoke", _original_invoke)  # noqa: B010

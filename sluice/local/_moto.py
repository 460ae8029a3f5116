"""Everything that touches moto's internals, kept in one place: this module, with its IAM
enforcement in `_moto_iam` and its server in `_moto_server` (both re-exported here).

moto interprets Step Functions for real, but cannot run Lambda code without Docker. Its
Docker-less Lambda backend has one method, `invoke`, that answers every call; Sluice replaces
it with a dispatcher to its own runtime; it also closes the gaps where moto would accept what
AWS refuses (a stale compare-and-swap of an object, or of a Glue table's version).
`tests/integration/test_moto_seam.py` fails loudly if a moto upgrade moves any of this.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import logging
import sys
import threading
import types
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.config import default_user_config

from sluice.local._moto_iam import _boto_client_for as _boto_client_for
from sluice.local._moto_iam import _interpreter_modules as _interpreter_modules
from sluice.local._moto_iam import _original_iam_init as _original_iam_init
from sluice.local._moto_iam import enforce_iam as enforce_iam
from sluice.local._moto_iam import relax_iam as relax_iam
from sluice.local._moto_server import gated_server as gated_server
from sluice.local._moto_server import keep_connections_alive as keep_connections_alive
from sluice.local._moto_server import server as server
from sluice.local._moto_server import stop_server as stop_server

# (function name or ARN, request body) -> (payload, function error or None)
Dispatcher = Callable[[str, bytes], tuple[bytes, str | None]]

_original_invoke = LambdaSimpleBackend.invoke
_dispatcher: Dispatcher | None = None


def enable_execution() -> None:
    """Make moto run state machines and use its Docker-less Lambda backend."""
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    default_user_config["lambda"]["use_docker"] = False
    make_conditional_writes_atomic()
    make_table_updates_versioned()
    remember_backends()

    count_requests()
    quiet_interpreter()


def quiet_interpreter() -> None:
    """Keep the interpreter's error log off the terminal: it logs every failed state with the
    whole failure event (the Lambda's stack trace, several KB), where the execution's history
    already holds it. The commands print one line per failed execution instead."""
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)


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


# -- atomic conditional writes ----------------------------------------------------------------
# moto checks PutObject's If-Match / If-None-Match and then stores the object without a lock, so
# two compare-and-swaps of one key at once can both succeed; S3 answers the second with 412.
# Daily summaries are kept by compare-and-swap, so the local cloud makes conditional puts
# atomic with one another (unconditional puts are not serialized: nothing mixes the two on one
# key).

from moto.s3.responses import S3Response  # noqa: E402

_original_put_object = S3Response.put_object
_conditional_puts = threading.Lock()


def _put_object(self: Any) -> Any:
    if self.headers.get("If-Match") or self.headers.get("If-None-Match"):
        with _conditional_puts:
            return _original_put_object(self)
    return _original_put_object(self)


def make_conditional_writes_atomic() -> None:
    setattr(S3Response, "put_object", _put_object)  # noqa: B010


# -- versioned table updates ----------------------------------------------------------------------
# Glue's UpdateTable with a VersionId updates the table only if that is still its version, and
# answers ConcurrentModificationException otherwise: Iceberg's Glue catalog commits that way, so
# two writers committing from the same version cannot both win. moto ignores VersionId. The
# local cloud checks it and updates under one lock, so the check and the update are one step
# (an update without VersionId is unconditional, as on AWS, but takes the lock too, so it cannot
# slip between another's check and update). moto numbers versions from 1, Glue from 0: callers
# only ever pass back a VersionId they were given.

from moto.glue.exceptions import GlueClientError  # noqa: E402
from moto.glue.responses import GlueResponse  # noqa: E402

_original_update_table = GlueResponse.update_table
_table_updates = threading.Lock()


def _update_table(self: Any) -> Any:
    version = self._get_param("VersionId")
    with _table_updates:
        if version is not None:
            table_input = self._get_param("TableInput") or {}
            table = self.glue_backend.get_table(
                self._get_param("DatabaseName"), table_input.get("Name")
            )
            if str(table._current_version) != str(version):
                raise GlueClientError(
                    "ConcurrentModificationException",
                    "Update table failed due to concurrent modifications.",
                )
        return _original_update_table(self)


def make_table_updates_versioned() -> None:
    setattr(GlueResponse, "update_table", _update_table)  # noqa: B010


# moto's server finds the backend of every request by listing its own package directory and
# trying every service's URL patterns, under one lock: about 4 ms a request, most of a small
# S3 request's cost, and serialized across threads. The answer depends on the host alone, so
# it is remembered per host.

from moto.moto_server.werkzeug_app import DomainDispatcherApplication  # noqa: E402

_original_backend_for_host = DomainDispatcherApplication.get_backend_for_host
_backends_by_host: dict[str | None, Any] = {}


def _backend_for_host(self: Any, host: str | None) -> Any:
    if host not in _backends_by_host:
        _backends_by_host[host] = _original_backend_for_host(self, host)
    return _backends_by_host[host]


def remember_backends() -> None:
    setattr(DomainDispatcherApplication, "get_backend_for_host", _backend_for_host)  # noqa: B010


# -- requests counted ---------------------------------------------------------------------------
# Every request the server answers, by the access key that signed it, the service and the HTTP
# method: what each role asked of the cloud (the benchmarks read it per stage).

from collections import Counter  # noqa: E402

from moto.moto_server.werkzeug_app import DomainDispatcherApplication  # noqa: E402

_original_dispatch = DomainDispatcherApplication.__call__
_requests: Counter[tuple[str, str, str]] = Counter()
_requests_lock = threading.Lock()


def _signer(authorization: str) -> tuple[str, str]:
    """(access key, service) from a SigV4 Authorization header; empty when unsigned."""
    if "Credential=" not in authorization:
        return "", ""
    scope = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    return scope[0], scope[3] if len(scope) > 3 else ""


def _counting_dispatch(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    key, service = _signer(str(environ.get("HTTP_AUTHORIZATION", "")))
    with _requests_lock:
        _requests[(key, service, str(environ.get("REQUEST_METHOD", "")))] += 1
    return _original_dispatch(self, environ, start_response)


def count_requests() -> None:
    setattr(DomainDispatcherApplication, "__call__", _counting_dispatch)  # noqa: B010


def requests_counted() -> dict[tuple[str, str, str], int]:
    """(access key, service, method) -> requests answered since the last reset."""
    with _requests_lock:
        return dict(_requests)


def reset_requests() -> None:
    with _requests_lock:
        _requests.clear()


# -- the lake, read in place --------------------------------------------------------------------
# The server runs in this process: copying the lake out reads moto's objects directly rather
# than over HTTP, one request per object (that is what took a small run's copy half a second).


def stored_objects(account: str, bucket: str) -> Iterator[tuple[str, bytes]]:
    """(key, body) of each object in `bucket`, its current version, as ListObjectsV2 lists
    them (a deleted key's delete marker is not an object)."""
    from moto.s3.models import FakeKey, s3_backends

    stored = s3_backends[account]["aws"].get_bucket(bucket)
    for key, value in stored.keys.items():
        if isinstance(value, FakeKey):
            yield key, value.value


# -- loading moto's heavier backends --------------------------------------------------------------
# Step Functions' interpreter and CloudFormation import moto's EC2 models, which build their
# region list from three new boto3 sessions (each parses botocore's endpoint data) and load the
# instance-type tables. They are imported once per process, sharing one session. The
# interpreter reaches EC2 only through its Batch integration, which needs nothing from
# `moto.batch` but its job statuses (`moto.batch.utils`); Sluice's workflow runs no Batch task,
# so those are loaded without the package's models (a later `import moto.batch` loads them as
# usual). CloudFormation is loaded only for a cloud that publishes its stack.


def _batch_statuses_alone() -> None:
    if "moto.batch.utils" in sys.modules:
        return
    spec = importlib.util.find_spec("moto.batch")
    assert spec is not None and spec.submodule_search_locations is not None
    placeholder = types.ModuleType("moto.batch")
    placeholder.__path__ = list(spec.submodule_search_locations)
    sys.modules["moto.batch"] = placeholder
    try:
        importlib.import_module("moto.batch.utils")
    finally:
        if sys.modules.get("moto.batch") is placeholder:
            del sys.modules["moto.batch"]


@functools.cache
def _preload_interpreter() -> None:
    _batch_statuses_alone()
    with _one_boto3_session():
        import moto.stepfunctions.parser.models  # noqa: F401


@functools.cache
def _preload_stacks() -> None:
    with _one_boto3_session():
        import moto.cloudformation.models  # noqa: F401


@contextlib.contextmanager
def _one_boto3_session() -> Iterator[None]:
    import boto3

    shared = boto3.Session()
    original = boto3.Session
    boto3.Session = lambda *args, **kwargs: shared  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        boto3.Session = original  # type: ignore[misc]


def preload(stack: bool = True) -> None:
    """Import the Step Functions interpreter (and, with `stack`, CloudFormation) once."""
    _preload_interpreter()
    if stack:
        _preload_stacks()

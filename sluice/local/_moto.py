"""Everything that touches moto's internals, kept in one place.

moto interprets Step Functions for real, but cannot run Lambda code without Docker. Its
Docker-less Lambda backend has one method, `invoke`, that answers every call; Sluice replaces
it with a dispatcher to its own runtime. `tests/integration/test_moto_seam.py` fails loudly
if a moto upgrade moves any of this.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import io
import logging
import selectors
import socket
import sys
import threading
import types
import urllib.request
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any
from urllib.parse import unquote

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
    make_conditional_writes_atomic()
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


# -- IAM enforcement ---------------------------------------------------------------------------
# moto checks every request against the caller's policies once INITIAL_NO_AUTH_ACTION_COUNT
# requests have gone by. Three gaps would make it refuse what AWS allows, or allow what AWS
# refuses; each is closed here:
# - Lambda's Invoke is authorized as `lambda:Invoke`; IAM's action is `lambda:InvokeFunction`;
#   SQS batch actions need their single action's permission on AWS, not one of their own;
#   a GET without a body is signed as empty (moto hashed its parsed parameters).
# - Lambda and Step Functions requests are checked against resource `*`, so a statement naming
#   a function or state machine ARN never matched; they now name the resource they act on.
# - the Step Functions interpreter calls Lambda and SQS with fixed dummy keys; it now signs
#   with the credentials of the state machine's role, as Step Functions does on AWS.

# Batch actions are authorized by their single action's permission on AWS.
_IAM_ACTIONS = {
    "lambda:Invoke": "lambda:InvokeFunction",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sqs:SendMessageBatch": "sqs:SendMessage",
}
_state_machine_credentials: dict[str, str] = {}


def _lambda_resource(self: Any) -> str:
    path = unquote(str(getattr(self, "path", "")))
    marker = "/functions/"
    if marker not in path:
        return "*"
    name = path.split(marker, 1)[1].split("/", 1)[0]
    if name.startswith("arn:"):
        return name.split(":$", 1)[0]
    return f"arn:aws:lambda:{self.region}:{self.current_account}:function:{name}"


def _states_resource(self: Any) -> str:
    for param in ("stateMachineArn", "executionArn"):
        try:
            value = self._get_param(param)
        except Exception:  # a body that is not JSON: the action itself will say so
            value = None
        if value:
            return str(value)
    return "*"


def _iam_request_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original_iam_init(self, *args, **kwargs)
    self._action = _IAM_ACTIONS.get(self._action, self._action)
    if not self._body and self._method in ("GET", "HEAD", "DELETE"):
        # moto signs a request without a body as its parsed parameters, so every Lambda GET
        # failed with SignatureDoesNotMatch: sign it as empty, as the client did.
        self._data = {}


def _boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    import boto3
    from botocore.config import Config
    from moto.settings import moto_server_port

    return boto3.client(
        service_name=service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=f"http://localhost:{moto_server_port()}",
        aws_access_key_id=_state_machine_credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=_state_machine_credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=_state_machine_credentials["AWS_SESSION_TOKEN"],
        # A Lambda may run 900 s: the interpreter waits for it (botocore's default is 60 s).
        config=Config(
            parameter_validation=False,
            retries={"total_max_attempts": 1},
            connect_timeout=60,
            read_timeout=960,
        ),
    )


def _interpreter_modules() -> list[ModuleType]:
    import moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils as lam
    import moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs as sqs  # noqa: E501

    return [lam, sqs]


from moto.awslambda.responses import LambdaResponse  # noqa: E402
from moto.iam.access_control import IAMRequestBase  # noqa: E402
from moto.stepfunctions.responses import StepFunctionResponse  # noqa: E402

_original_iam_init = IAMRequestBase.__init__


def enforce_iam(state_machine_credentials: dict[str, str]) -> None:
    """From now on every request must be signed by a principal whose policies allow it."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    _state_machine_credentials.clear()
    _state_machine_credentials.update(state_machine_credentials)
    setattr(LambdaResponse, "_determine_resource", _lambda_resource)  # noqa: B010
    setattr(StepFunctionResponse, "_determine_resource", _states_resource)  # noqa: B010
    setattr(IAMRequestBase, "__init__", _iam_request_init)  # noqa: B010
    for module in _interpreter_modules():
        setattr(module, "boto_client_for", _boto_client_for)  # noqa: B010
    ActionAuthenticatorMixin.request_count = 0
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0


def relax_iam() -> None:
    """Back to moto's default: no request is checked (before provisioning, and on stop)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.stepfunctions.parser.asl.utils import boto_client

    settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    ActionAuthenticatorMixin.request_count = 0
    for module in _interpreter_modules():
        setattr(module, "boto_client_for", boto_client.boto_client_for)  # noqa: B010
    setattr(IAMRequestBase, "__init__", _original_iam_init)  # noqa: B010


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


# -- the server ---------------------------------------------------------------------------------
# moto's threaded server loops in socketserver's `serve_forever`, which looks at a stop request
# only between polls of half a second: stopping is answered at once when a connection wakes it.


# -- connections kept alive --------------------------------------------------------------------
# Werkzeug's server closes every connection after one response (it cannot tell where a request
# body it did not read ends), and after the response it drains the socket for up to 10 ms. A
# client of S3 keeps its connections open, so locally every request paid a TCP connect, a server
# thread and that drain. The local cloud's handler reads a request's body whole before the
# application runs (its length is known: Content-Length), so the next request starts where the
# body ends, and keeps HTTP/1.1 connections open. A chunked body, a short one, or a client that
# asks to close is served as before: one request, then close.

_keep = threading.local()


class _NoDrain:
    """`werkzeug.serving.selectors` for a kept-alive request: a socket that reports nothing to
    drain (the body is already read; what follows is the client's next request)."""

    EVENT_READ = selectors.EVENT_READ

    class _Idle:
        def register(self, *args: Any) -> None:
            pass

        def select(self, timeout: float | None = None) -> list[Any]:
            return []

        def close(self) -> None:
            pass

    def DefaultSelector(self) -> Any:  # the name werkzeug calls
        return self._Idle() if getattr(_keep, "alive", False) else selectors.DefaultSelector()


def _keep_alive_handler() -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class KeepAliveHandler(MotoRequestHandler):
        def setup(self) -> None:
            super().setup()
            # A response is written as headers, then body: with Nagle's algorithm the body
            # waits for the client's (delayed) acknowledgement of the headers, 40 ms a request
            # on a kept-alive connection, so both go out at once.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def make_environ(self) -> dict[str, Any]:
            environ: dict[str, Any] = super().make_environ()
            _keep.alive = False
            if environ.get("wsgi.input_terminated"):  # chunked: where it ends is werkzeug's
                return environ
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return environ
            body = self.rfile.read(length) if length > 0 else b""
            environ["wsgi.input"] = io.BytesIO(body)
            _keep.alive = (
                len(body) == max(length, 0)
                and self.request_version == "HTTP/1.1"
                and self.headers.get("Connection", "").lower() != "close"
            )
            return environ

        def send_header(self, keyword: str, value: str) -> None:
            if keyword.lower() == "connection" and getattr(_keep, "alive", False):
                return  # werkzeug's `close`: this connection stays open
            super().send_header(keyword, value)

        def handle_one_request(self) -> None:
            _keep.alive = False
            try:
                super().handle_one_request()
            finally:
                if not getattr(_keep, "alive", False):
                    self.close_connection = True
                _keep.alive = False

    return KeepAliveHandler


@functools.cache
def keep_connections_alive() -> None:
    """Moto's servers (plain and gated) answer with the keep-alive handler from here on."""
    import moto.moto_server.threaded_moto_server as threaded
    import werkzeug.serving

    handler = _keep_alive_handler()
    setattr(threaded, "MotoRequestHandler", handler)  # noqa: B010
    setattr(werkzeug.serving, "selectors", _NoDrain())  # noqa: B010


def server(host: str, port: int) -> Any:
    from moto.server import ThreadedMotoServer

    keep_connections_alive()
    return ThreadedMotoServer(ip_address=host, port=port, verbose=False)


def gated_server(host: str, port: int) -> Any:
    """moto's server on a port taken at once (so its number is known, and no one else takes
    it) that accepts connections only once `start()` is called: a client that waits for the
    port finds the cloud provisioned, never half-built."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    keep_connections_alive()
    handler = _keep_alive_handler()

    class GatedServer(ThreadedMotoServer):
        def __init__(self) -> None:
            super().__init__(ip_address=host, port=port, verbose=False)
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((host, port))  # bound, not listening: connections are refused

        def _server_entry(self) -> None:
            self._socket.listen(128)
            self._server = make_server(
                host,
                self._socket.getsockname()[1],
                DomainDispatcherApplication(create_backend_app),
                True,
                request_handler=handler,
                fd=self._socket.fileno(),
            )
            self._server_ready_event.set()
            self._server.serve_forever()

        def get_host_and_port(self) -> tuple[str, int]:
            bound = self._socket.getsockname()
            return str(bound[0]), int(bound[1])

        def stop(self) -> None:
            if self._thread is not None:
                super().stop()
            self._socket.close()

    return GatedServer()


def stop_server(running: Any) -> None:
    host, port = running.get_host_and_port()
    if getattr(running, "_thread", None) is None:  # never started: nothing to wake
        running.stop()
        return
    stopping = threading.Thread(target=running.stop, name="moto-stop", daemon=True)
    stopping.start()
    while stopping.is_alive():
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            pass
        stopping.join(0.01)


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

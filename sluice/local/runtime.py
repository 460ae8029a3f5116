"""The local Lambda service: each function runs as Lambda runs it, in processes of its own.

A function has warm execution environments (`sluice.local.worker` processes), reused between
invocations and started on demand up to the function's concurrency. Each has the function's
deployed environment variables, its role's credentials, and a `/tmp` of the function's ephemeral
storage size (a tmpfs in a mount namespace of its own, so a full `/tmp` fails the write with
ENOSPC as on Lambda). An invocation past the function's memory is ended, one past its timeout
is killed; both end the environment, and Step Functions sees the error Lambda itself reports
(`Runtime.OutOfMemory`, `Sandbox.Timedout`), so Retry and Catch match as on AWS. What a function
prints is kept per function, like a CloudWatch log group, with Lambda's REPORT line.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.config import PROJECT_ROOT
from sluice.local.sandbox import FunctionConfig as FunctionConfig
from sluice.local.sandbox import _Environment, tmp_isolation
from sluice.local.sandbox import function_modules as function_modules
from sluice.local.worker import error_document

log = logging.getLogger(__name__)

# A fault hook may raise to simulate a failing function: (stage, event) -> None. It runs in
# this process, before the invocation reaches the function's environment.
FaultHook = Callable[[str, dict[str, Any]], None]
# Credentials (as environment variables) for a function's role.
CredentialSource = Callable[[str], Mapping[str, str]]


@dataclass
class Invocation:
    function: str
    request_id: str
    error_type: str | None
    duration_ms: float
    max_memory_mb: int = 0
    cold_start: bool = False


class _Function:
    """A function's pool of warm environments, at most `concurrency` of them."""

    def __init__(self, config: FunctionConfig) -> None:
        self.config = config
        self.idle: list[_Environment] = []
        self.count = 0
        # Environments being started ahead of any invocation, and the callers waiting for them.
        self.warming = 0
        self.waiting = 0
        self.ready = threading.Condition()

    def acquire(self) -> _Environment | None:
        """A warm environment, or None when the caller should start a new one."""
        with self.ready:
            while not self.idle:
                if self.warming > self.waiting:
                    # One being warmed up is further along than a cold start would be.
                    self.waiting += 1
                    self.ready.wait()
                    self.waiting -= 1
                elif self.count < self.config.concurrency:
                    self.count += 1
                    return None
                else:
                    self.ready.wait()
            return self.idle.pop()

    def acquire_to_warm(self) -> bool:
        """Count an environment started before it is asked for; False at the concurrency."""
        with self.ready:
            if self.count >= self.config.concurrency:
                return False
            self.count += 1
            self.warming += 1
            return True

    def release(self, environment: _Environment | None, usable: bool, warmed: bool = False) -> None:
        with self.ready:
            if environment is not None and usable:
                self.idle.append(environment)
            else:
                self.count -= 1
            if warmed:
                self.warming -= 1
            self.ready.notify_all()


class LambdaRuntime:
    """Runs the Sluice functions in worker processes, with their deployed limits."""

    def __init__(
        self,
        account: str,
        region: str,
        endpoint_url: str,
        functions: list[FunctionConfig],
        credentials: CredentialSource,
    ) -> None:
        self.account = account
        self.region = region
        self.endpoint_url = endpoint_url
        self.credentials = credentials
        self.logs: dict[str, list[str]] = defaultdict(list)
        self.invocations: list[Invocation] = []
        self._functions = {config.name: _Function(config) for config in functions}
        self._faults: list[FaultHook] = []
        self._worker_faults: list[str] = []
        self._lock = threading.Lock()
        # Invocations answered so far, and a condition to wait for the next one on.
        self.answered = 0
        self._answer = threading.Condition(self._lock)
        self._workdir = Path(tempfile.mkdtemp(prefix="sluice-lambda-"))
        # Every environment alive, idle or busy, so stop() ends them all.
        self._live: set[_Environment] = set()
        self._stopped = False
        self.isolation = tmp_isolation()
        if self.isolation == "none":
            log.warning("no mount namespace here: a function's /tmp size is not enforced")

    # -- faults ------------------------------------------------------------------------------

    def add_fault(self, hook: FaultHook) -> None:
        self._faults.append(hook)

    def add_worker_fault(self, spec: str) -> None:
        """A `module:function` the function's own process calls with (stage, event) before its
        handler: to make a real function run out of memory, time or `/tmp`."""
        self._worker_faults.append(spec)

    def clear_faults(self) -> None:
        self._faults.clear()
        self._worker_faults.clear()

    # -- invoking ----------------------------------------------------------------------------

    @property
    def live(self) -> frozenset[_Environment]:
        """Every environment alive now, idle or busy."""
        with self._lock:
            return frozenset(self._live)

    def config_of(self, function: str) -> FunctionConfig:
        name = function.rsplit(":function:", 1)[-1].split(":", 1)[0]
        try:
            return self._functions[name].config
        except KeyError:
            raise LookupError(f"no local function named {name!r}") from None

    def _environment_variables(self, config: FunctionConfig) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")
        return {
            **{k: os.environ[k] for k in keep if k in os.environ},
            # What the Lambda service sets for every function.
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "LAMBDA_TASK_ROOT": str(PROJECT_ROOT),
            "_HANDLER": f"functions/{config.stage}/handler.handler",
            # Local only: where the cloud is, and no user configuration leaking in.
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "PYTHONPATH": str(PROJECT_ROOT),
            "PYTHONUNBUFFERED": "1",
            **self.credentials(config.stage),
            **config.environment,
        }

    def _start(self, config: FunctionConfig) -> tuple[_Environment | None, dict[str, Any] | None]:
        environment = _Environment(
            config, self._environment_variables(config), self._workdir, self.isolation
        )
        with self._lock:
            self._live.add(environment)
        error = environment.wait_ready()
        if error is not None:
            self._keep_logs(config.name, environment)
            self._end(environment)
            return None, error
        return environment, None

    def invoke(self, function: str, event: Any) -> tuple[Any, str | None]:
        """(result, None) or (error document, "Unhandled"), as the Lambda service answers."""
        config = self.config_of(function)
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        try:
            for hook in list(self._faults):
                hook(config.stage, event)
        except Exception as exc:
            document = error_document(exc, request_id)
            with self._lock:
                self.logs[config.name].append(
                    json.dumps({"level": "ERROR", "function": config.name, **document})
                )
            self._record(config, request_id, document["errorType"], started, 0, False)
            return document, "Unhandled"
        pool = self._functions[config.name]
        environment = pool.acquire()
        cold = environment is None
        usable = False
        try:
            if environment is None:
                environment, init_error = self._start(config)
                if init_error is not None:
                    self._record(config, request_id, init_error["errorType"], started, 0, cold)
                    return init_error, "Unhandled"
            assert environment is not None
            request = {
                "request_id": request_id,
                "function_name": config.name,
                "function_arn": self.function_arn(config.name),
                "memory_mb": config.memory_mb,
                "timeout_ms": config.timeout_seconds * 1000,
                "event": event,
                "faults": list(self._worker_faults),
            }
            payload, error, usable, peak, seconds = environment.invoke(request)
            environment.write_log(
                f"REPORT RequestId: {request_id}\tDuration: {seconds * 1000:.2f} ms\t"
                f"Memory Size: {config.memory_mb} MB\tMax Memory Used: {peak // 2**20} MB"
            )
            self._keep_logs(config.name, environment)
            error_type = None if error is None else str(error.get("errorType"))
            self._record(config, request_id, error_type, started, peak, cold)
            if error is not None:
                return error, "Unhandled"
            return json.loads(payload), None
        finally:
            usable = usable and not self._stopped
            if environment is not None and not usable:
                self._end(environment)
            pool.release(environment, usable)

    def _end(self, environment: _Environment) -> None:
        environment.kill()
        environment.close()
        with self._lock:
            self._live.discard(environment)

    def _keep_logs(self, function: str, environment: _Environment) -> None:
        lines = environment.new_log_lines()
        with self._lock:
            self.logs[function].extend(lines)

    def _record(
        self,
        config: FunctionConfig,
        request_id: str,
        error_type: str | None,
        started: float,
        peak: int,
        cold: bool,
    ) -> None:
        with self._lock:
            self.invocations.append(
                Invocation(
                    config.name,
                    request_id,
                    error_type,
                    (time.perf_counter() - started) * 1000,
                    peak // 2**20,
                    cold,
                )
            )
            self.answered += 1
            self._answer.notify_all()

    def wait_for_answer(self, seen: int, timeout: float) -> int:
        """Block until more than `seen` invocations have been answered, or `timeout` passes;
        how many have been answered."""
        with self._answer:
            self._answer.wait_for(lambda: self.answered != seen, timeout)
            return self.answered

    def function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"

    def dispatch(self, function: str, body: bytes) -> tuple[bytes, str | None]:
        """The moto seam: a JSON request body in, a JSON payload and function error out."""
        event = json.loads(body) if body.strip() else {}
        result, error = self.invoke(function, event)
        return json.dumps(result, default=str).encode(), error

    # -- lifecycle ---------------------------------------------------------------------------

    def prewarm(self) -> None:
        """Start one environment per function in the background (Lambda's provisioned
        concurrency of one), so the first file does not wait for four cold starts."""

        def warm(pool: _Function) -> None:
            environment: _Environment | None = None
            usable = False
            try:
                environment, error = self._start(pool.config)
                usable = error is None and not self._stopped
            finally:
                if environment is not None and not usable:
                    self._end(environment)
                pool.release(environment, usable, warmed=True)

        for pool in self._functions.values():
            # An invocation that arrives meanwhile waits for this environment (see acquire).
            if pool.acquire_to_warm():
                threading.Thread(target=warm, args=(pool,), daemon=True).start()

    def stop(self) -> None:
        """End every environment, busy ones too (as Lambda does when a function is deleted)."""
        self._stopped = True
        for pool in self._functions.values():
            with pool.ready:
                idle, pool.idle = pool.idle, []
            for environment in idle:
                self._keep_logs(pool.config.name, environment)
                self._end(environment)
        with self._lock:
            busy = list(self._live)
        for environment in busy:
            environment.kill()
        shutil.rmtree(self._workdir, ignore_errors=True)

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

import contextlib
import functools
import importlib.metadata
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sluice.config import PROJECT_ROOT
from sluice.local.worker import error_document

log = logging.getLogger(__name__)

# A fault hook may raise to simulate a failing function: (stage, event) -> None. It runs in
# this process, before the invocation reaches the function's environment.
FaultHook = Callable[[str, dict[str, Any]], None]
# Credentials (as environment variables) for a function's role.
CredentialSource = Callable[[str], Mapping[str, str]]

# How often an invocation's memory is sampled.
MEMORY_SAMPLE_SECONDS = 0.01
# Lambda's init phase (loading the handler module) may take this long.
INIT_TIMEOUT_SECONDS = 30.0
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class FunctionConfig:
    """One function as deployed: its name, size and environment."""

    name: str
    stage: str
    memory_mb: int = 512
    timeout_seconds: int = 300
    ephemeral_storage_mb: int = 512
    environment: Mapping[str, str] = field(default_factory=dict)
    # Environments that may run at once (the event source's maximum concurrency).
    concurrency: int = 5


@dataclass
class Invocation:
    function: str
    request_id: str
    error_type: str | None
    duration_ms: float
    max_memory_mb: int = 0
    cold_start: bool = False


@functools.cache
def tmp_isolation() -> str:
    """How this machine can give each environment a `/tmp` of a fixed size.

    `mount`: a tmpfs in a private mount namespace (root); `userns`: the same inside a user
    namespace (an unprivileged user where the kernel allows it); `none`: a plain folder, whose
    size is not enforced. Probed once per process: the machine does not change.
    """
    if shutil.which("unshare") is None:
        return "none"
    for mode, flags in (("mount", ["-m"]), ("userns", ["-Urm"])):
        with tempfile.TemporaryDirectory(prefix="sluice-probe-") as probe:
            script = f"mount -t tmpfs -o size=1m tmpfs {probe} && test -w {probe}"
            try:
                done = subprocess.run(
                    ["unshare", *flags, "sh", "-c", script],
                    capture_output=True,
                    timeout=10,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
            if done.returncode == 0:
                return mode
    return "none"


# What a function's process may import besides the standard library and Sluice's own code:
# the layer's packages (requirements/lambda.txt) and those Lambda's Python runtime ships.
RUNTIME_DISTRIBUTIONS = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "urllib3",
    "python-dateutil",
    "six",
)


@functools.cache
def function_modules() -> frozenset[str]:
    """The top-level modules of the layer's and the runtime's distributions, as installed."""
    requirements = PROJECT_ROOT / "requirements" / "lambda.txt"
    layer = [
        line.split("==")[0].strip()
        for line in requirements.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    names: set[str] = set()
    for name in (*layer, *RUNTIME_DISTRIBUTIONS):
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        top = dist.read_text("top_level.txt")
        if top:
            names.update(top.split())
        else:
            names.update(
                file.parts[0].removesuffix(".py")
                for file in dist.files or ()
                if len(file.parts) and not file.parts[0].endswith((".dist-info", ".data", ".."))
            )
    return frozenset(n for n in names if n.isidentifier() and not n.startswith("__"))


class _Environment:
    """One execution environment: a worker process, its socket, its `/tmp` and its log."""

    def __init__(
        self, config: FunctionConfig, env: Mapping[str, str], workdir: Path, isolation: str
    ) -> None:
        self.config = config
        self.tmp = Path(tempfile.mkdtemp(prefix="env-", dir=workdir))
        self.log_path = self.tmp.with_suffix(".log")
        self._log = self.log_path.open("ab")
        self._offset = 0
        ours, theirs = socket.socketpair()
        command = [
            sys.executable,
            "-m",
            "sluice.local.worker",
            str(theirs.fileno()),
            config.stage,
            ",".join(sorted(function_modules())),
        ]
        if isolation in ("mount", "userns"):
            flags = ["-m"] if isolation == "mount" else ["-Urm"]
            size = f"size={config.ephemeral_storage_mb}m,mode=1777"
            script = f'mount -t tmpfs -o {size} tmpfs "$SLUICE_TMP" && exec "$@"'
            command = ["unshare", *flags, "sh", "-c", script, "sh", *command]
        self.process = subprocess.Popen(
            command,
            env={**env, "TMPDIR": str(self.tmp), "SLUICE_TMP": str(self.tmp)},
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            pass_fds=(theirs.fileno(),),
            start_new_session=True,
        )
        theirs.close()
        self.connection = Connection(ours.detach())
        self.used = False

    def wait_ready(self) -> dict[str, Any] | None:
        """None once the handler is loaded; else the init error Lambda would report."""
        deadline = time.monotonic() + INIT_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.connection.poll(0.05):
                try:
                    kind, payload = self.connection.recv()
                except (EOFError, OSError):  # ended while loading (the runtime stopped)
                    self.process.wait()
                    return _exit_error("", self.process.returncode)
                if kind == "ready":
                    return None
                return dict(json.loads(payload))
            if self.process.poll() is not None:
                return _exit_error("", self.process.returncode)
        self.kill()
        return {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"Init timed out after {INIT_TIMEOUT_SECONDS:.2f} seconds",
        }

    def rss(self) -> int:
        try:
            statm = Path(f"/proc/{self.process.pid}/statm").read_bytes()
            return int(statm.split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            return 0

    def invoke(
        self, request: dict[str, Any]
    ) -> tuple[str, dict[str, Any] | None, bool, int, float]:
        """(payload, error document or None, environment still usable, peak RSS, seconds)."""
        config = self.config
        limit = config.memory_mb * 1024 * 1024
        started = time.monotonic()
        deadline = started + config.timeout_seconds
        peak = self.rss()
        self.connection.send(request)
        self.used = True
        rid = request["request_id"]
        while True:
            if self.connection.poll(MEMORY_SAMPLE_SECONDS):
                try:
                    kind, payload = self.connection.recv()
                except (EOFError, OSError):
                    self.process.wait()
                    return self._ended(_exit_error(rid, self.process.returncode), peak, started)
                elapsed = time.monotonic() - started
                peak = max(peak, self.rss())
                if kind == "ok":
                    return payload, None, True, peak, elapsed
                return payload, dict(json.loads(payload)), True, peak, elapsed
            peak = max(peak, self.rss())
            if peak > limit:
                self.kill()
                document = {
                    "errorType": "Runtime.OutOfMemory",
                    "errorMessage": (
                        f"RequestId: {rid} Error: Runtime exited with error: signal: killed"
                    ),
                }
                return self._ended(document, peak, started)
            if time.monotonic() > deadline:
                self.kill()
                self.write_log(f"{_now()} {rid} Task timed out after {config.timeout_seconds}.00 s")
                document = {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": (
                        f"RequestId: {rid} Error: Task timed out after "
                        f"{config.timeout_seconds:.2f} seconds"
                    ),
                }
                return self._ended(document, peak, started)
            if self.process.poll() is not None:
                return self._ended(_exit_error(rid, self.process.returncode), peak, started)

    def _ended(
        self, document: dict[str, Any], peak: int, started: float
    ) -> tuple[str, dict[str, Any], bool, int, float]:
        return json.dumps(document), document, False, peak, time.monotonic() - started

    def write_log(self, line: str) -> None:
        self._log.write((line + "\n").encode())
        self._log.flush()

    def new_log_lines(self) -> list[str]:
        self._log.flush()
        try:
            with self.log_path.open("rb") as text:
                text.seek(self._offset)
                data = text.read()
        except FileNotFoundError:  # the runtime stopped and removed its folder meanwhile
            return []
        # Only whole lines: a killed process may have left half of one.
        end = data.rfind(b"\n") + 1
        self._offset += end
        return data[:end].decode("utf-8", "replace").splitlines()

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
        self._log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _exit_error(request_id: str, code: int | None) -> dict[str, Any]:
    how = f"signal: {signal.Signals(-code).name}" if code and code < 0 else f"exit status {code}"
    prefix = f"RequestId: {request_id} " if request_id else ""
    return {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"{prefix}Error: Runtime exited with error: {how}",
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


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

"""One execution environment of a local function: a `sluice.local.worker` process with the
function's `/tmp`, memory and timeout, as `sluice.local.runtime` starts and reuses it."""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sluice.config import PROJECT_ROOT

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

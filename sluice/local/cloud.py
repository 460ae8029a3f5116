"""`LocalCloud`: the whole pipeline on this machine, provisioned as the CDK app deploys it.

moto's threaded server on a loopback port stands in for S3, SQS, Step Functions, Lambda (with
Sluice's in-process runtime) and IAM; a pump plays the SQS → starter event source mapping.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3

from sluice import lake, retries, sizing
from sluice.config import LAYERS, TERMINAL_STATUSES, PipelineNames, Settings, execution_arn
from sluice.environments import EnvironmentSettings, StageSettings
from sluice.handlers import reset_runtime
from sluice.lake import SourceObject
from sluice.local import _moto
from sluice.local.provision import ACCOUNT as ACCOUNT
from sluice.local.provision import REGION as REGION
from sluice.local.provision import Provisioning
from sluice.local.pump import QueuePump
from sluice.local.runtime import LambdaRuntime
from sluice.local.snapshots import LakeSnapshots

# How often `wait` asks after an execution: soon after a function answered, then at most this.
WAIT_MIN_SECONDS = 0.02
WAIT_MAX_SECONDS = 0.5


class LocalCloud(Provisioning, LakeSnapshots):
    """Start with `with LocalCloud() as cloud:`; everything lives as long as the object.

    moto's backends are process-wide, so one process runs one local cloud at a time.
    """

    _running: LocalCloud | None = None

    def __init__(
        self,
        port: int = 0,
        names: PipelineNames | None = None,
        visibility_timeout: int = retries.LOCAL_VISIBILITY_TIMEOUT_SECONDS,
        max_receive_count: int = retries.MAX_RECEIVE_COUNT,
        max_file_bytes: int | None = None,
        env: str | None = None,
        stages: Mapping[str, StageSettings] | None = None,
        file_limits: Mapping[str, int] | None = None,
        publish_stack: bool = True,
    ) -> None:
        """`env` picks the `cdk.json` environment whose sizes and limits the functions get
        (default `dev`); `stages` overrides some stages' sizes (tests use small limits), and
        the per-format file limits follow from them unless `file_limits` says otherwise (a
        test of a function that meets its limits anyway). `publish_stack` publishes the stack's
        outputs in CloudFormation, where the operator commands of another process find them
        (`sluice up`); a cloud used only by its own process (`sluice run`) skips it and the
        second or so of loading moto's CloudFormation."""
        self.port = port
        self.publish_stack = publish_stack
        self.names = names or PipelineNames("sluice")
        self.visibility_timeout = visibility_timeout
        self.max_receive_count = max_receive_count
        self.environment = EnvironmentSettings.load(env)
        self.max_file_bytes = max_file_bytes or self.environment.max_file_bytes
        self.stages = {**self.environment.stages, **(stages or {})}
        self.file_limits = dict(
            file_limits
            if file_limits is not None
            else sizing.file_limits(
                self.max_file_bytes, self.environment.max_file_bytes_by_format, self.stages
            )
        )
        self.buckets = {layer: layer for layer in LAYERS}
        self.runtime: LambdaRuntime = None  # type: ignore[assignment]  # set by start()
        self.endpoint_url = ""
        self.queue_urls: dict[str, str] = {}
        self.state_machine_arn = ""
        # The administrator's keys: what a user's own clients sign with (printed by `up`).
        self.credentials: dict[str, str] = {}
        # Each role's session (the functions', `pipeline` the state machine's).
        self.role_credentials: dict[str, dict[str, str]] = {}
        self._server: Any = None
        # While the cloud is provisioned: the server that provisioning uses (see `_start`).
        self._setup: Any = None
        self._setup_url = ""
        self._pump: QueuePump | None = None
        self._saved_env: dict[str, str | None] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> LocalCloud:
        if LocalCloud._running is not None:
            raise RuntimeError("a local cloud is already running in this process; stop it first")
        LocalCloud._running = self
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalCloud:
        _moto.enable_execution()
        _moto.relax_iam()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # The cloud's port is taken now and opened once everything is provisioned, so no
        # client ever meets a half-built cloud; provisioning goes through a server of its own
        # on another port (moto's backends are process-wide: both serve the same state).
        self._server = _moto.gated_server("127.0.0.1", self.port)
        host, port = self._server.get_host_and_port()
        self.port = port
        self.endpoint_url = f"http://{host}:{port}"
        self._setup = _moto.server("127.0.0.1", 0)
        self._setup.start()
        setup_host, setup_port = self._setup.get_host_and_port()
        self._setup_url = f"http://{setup_host}:{setup_port}"
        self._set_env(
            {
                # moto's Step Functions interpreter calls Lambda and SQS on this port.
                "MOTO_PORT": str(port),
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_ACCESS_KEY_ID": "bootstrap",
                "AWS_SECRET_ACCESS_KEY": "bootstrap",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
            }
        )
        # A user's own profile or session token is not the cloud's (and a profile that is
        # not in this machine's config would stop every client): set aside until stop().
        for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ.pop(key, None)
        # moto's backends are process-wide: a cloud starts from nothing even after another ran.
        _moto.reset_state(self._setup_url)
        _moto.reset_requests()
        # The roles first: with their sessions the functions' environments can start loading
        # their handlers (in processes of their own) while the rest is provisioned.
        roles = self._create_roles()
        self._assume_roles(roles)
        self.state_machine_arn = (
            f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{self.names.state_machine}"
        )
        self.runtime = LambdaRuntime(
            ACCOUNT, REGION, self.endpoint_url, self._function_configs(), self._credentials_of
        )
        self.runtime.prewarm()
        _moto.preload(stack=self.publish_stack)
        self._provision(roles)
        # From here on moto checks every call against the caller's policies, as IAM does: this
        # process and the user's clients sign as the administrator, each function as its role.
        _moto.enforce_iam(self.role_credentials["pipeline"])
        self._set_env(self.credentials)
        reset_runtime()
        _moto.install_dispatcher(self.runtime.dispatch)
        self._server.start()
        self._setup_url = ""
        _moto.stop_server(self._setup)
        self._setup = None
        self._pump = QueuePump(
            # The event source mapping polls as the starter's role.
            self.client("sqs", self.role_credentials["starter"]),
            self.queue_urls["ingest"],
            self._queue_arn(self.queue_urls["ingest"]),
            self.names.function("starter"),
            self.runtime.invoke,
            REGION,
            batch_size=self.environment.batch_size,
        )
        self._pump.start()
        return self

    def stop(self) -> None:
        if LocalCloud._running is self:
            LocalCloud._running = None
        if self._pump is not None:
            self._pump.stop()
            self._pump = None
        _moto.remove_dispatcher()
        if self.runtime is not None:
            self.runtime.stop()
        for server in (self._setup, self._server):
            if server is not None:
                _moto.stop_server(server)
        self._setup = self._server = None
        self._setup_url = ""
        _moto.relax_iam()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        reset_runtime()

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    # -- clients and names -------------------------------------------------------------------

    def client(self, service: str, credentials: Mapping[str, str] | None = None) -> Any:
        """A client signed as the administrator (before enforcement starts: unchecked), or
        with `credentials` (a role's session)."""
        keys = (
            credentials
            or self.credentials
            or {
                "AWS_ACCESS_KEY_ID": "bootstrap",
                "AWS_SECRET_ACCESS_KEY": "bootstrap",
            }
        )
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self._setup_url or self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=keys.get("AWS_SESSION_TOKEN"),
        )

    @property
    def settings(self) -> Settings:
        from sluice import __version__

        return Settings(
            raw_bucket=self.buckets["raw"],
            trusted_bucket=self.buckets["trusted"],
            delivery_bucket=self.buckets["delivery"],
            quarantine_bucket=self.buckets["quarantine"],
            state_machine_arn=self.state_machine_arn,
            max_file_bytes=self.max_file_bytes,
            file_limits=self.file_limits,
            pipeline_version=__version__,
        )

    @property
    def pump(self) -> QueuePump:
        assert self._pump is not None, "the local cloud is not running"
        return self._pump

    def function_arn(self, stage: str) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.names.function(stage)}"

    def _queue_arn(self, url: str) -> str:
        attrs = self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attrs["Attributes"]["QueueArn"])

    # -- using it ----------------------------------------------------------------------------

    def upload(
        self, path: Path, dataset: str, day: date | None = None, key: str | None = None
    ) -> SourceObject:
        """Put a file into RAW (which sends the S3 event) and return the object's identity."""
        bucket = self.buckets["raw"]
        key = key or lake.raw_key(dataset, path.name, day or datetime.now(UTC).date())
        s3 = self.client("s3")
        s3.upload_file(str(path), bucket, key)
        if self._pump is not None:
            self._pump.nudge()
        head = s3.head_object(Bucket=bucket, Key=key)
        return SourceObject(
            bucket=bucket,
            key=key,
            version_id=str(head.get("VersionId") or ""),
            etag=str(head["ETag"]).strip('"'),
            size=int(head["ContentLength"]),
        )

    def requests_by_role(self) -> dict[str, dict[str, int]]:
        """Requests the cloud answered since it started (or `reset_requests`), per signer:
        each role (`pipeline`: the state machine), `admin`, or `unsigned`; then per
        `service METHOD`, e.g. `s3 PUT`."""
        who = {keys["AWS_ACCESS_KEY_ID"]: role for role, keys in self.role_credentials.items()}
        if self.credentials:
            who[self.credentials["AWS_ACCESS_KEY_ID"]] = "admin"
        counts: dict[str, dict[str, int]] = {}
        for (key, service, method), n in _moto.requests_counted().items():
            role = who.get(key, "unsigned" if not key else "other")
            by = counts.setdefault(role, {})
            by[f"{service} {method}"] = by.get(f"{service} {method}", 0) + n
        return counts

    def reset_requests(self) -> None:
        _moto.reset_requests()

    def execution_arn(self, name: str) -> str:
        return execution_arn(self.state_machine_arn, name)

    def find_execution(self, source: SourceObject) -> dict[str, Any] | None:
        """The execution for this object version, if the starter has started it yet."""
        sfn = self.client("stepfunctions")
        dataset = lake.dataset_from_key(source.key)
        # S3 events name the version where the bucket has versioning; moto's carry the ETag only.
        candidates = lake.execution_names(source, dataset)
        for name in candidates:
            try:
                return dict(sfn.describe_execution(executionArn=self.execution_arn(name)))
            except sfn.exceptions.ExecutionDoesNotExist:
                continue
        return None

    def wait(self, source: SourceObject, timeout: float = 120.0) -> dict[str, Any]:
        """Block until the object's execution has finished; its final description."""
        deadline = time.monotonic() + timeout
        sfn = self.client("stepfunctions")
        arn = ""
        # Asked again soon after a function answers (the execution moves on then), else less
        # and less often: each question costs the cloud's CPU, which the functions need.
        pause = WAIT_MIN_SECONDS
        seen = self.runtime.answered
        while time.monotonic() < deadline:
            if not arn:
                found = self.find_execution(source)
                arn = str(found["executionArn"]) if found else ""
                errors = self.pump.errors
                if not arn and len(errors) >= self.max_receive_count:
                    # The starter itself keeps failing: no execution will ever come.
                    raise RuntimeError(f"the starter function is failing: {errors[-1]}")
            if arn:
                described = dict(sfn.describe_execution(executionArn=arn))
                if described["status"] in TERMINAL_STATUSES:
                    return described
            answered = self.runtime.wait_for_answer(seen, pause)
            pause = WAIT_MIN_SECONDS if answered != seen else min(2 * pause, WAIT_MAX_SECONDS)
            seen = answered
        raise TimeoutError(
            f"no finished execution for s3://{source.bucket}/{source.key} after {timeout:.0f}s"
        )

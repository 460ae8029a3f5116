"""Per-environment settings of the CDK app, read from `cdk.json` context.

`cdk.json` holds one block per environment under `sluice:environments`; `-c env=prod` picks one
(default `dev`). Every value is checked here, so a typo fails synth with the key's full name
instead of surfacing as a CloudFormation error halfway through a deploy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from sluice.config import DEFAULT_STACK_ENV, PROJECT_ROOT, STAGES

CDK_JSON = PROJECT_ROOT / "cdk.json"
ENV_CONTEXT_KEY = "env"
ENVIRONMENTS_CONTEXT_KEY = "sluice:environments"
DEFAULT_ENV = DEFAULT_STACK_ENV

# CloudWatch Logs accepts only these retention periods (days).
_RETENTION_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}
_REMOVAL_POLICIES = {"destroy": RemovalPolicy.DESTROY, "retain": RemovalPolicy.RETAIN}
_ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


class SettingsError(ValueError):
    """A `cdk.json` setting is missing, unknown or out of range; the message names its key."""


_ENCRYPTIONS = ("kms", "s3")


@dataclass(frozen=True)
class StageSettings:
    """Size of one stage's Lambda function."""

    memory_mb: int = 512
    timeout_seconds: int = 300
    # /tmp holds the downloaded file, the staged file and the per-day spills.
    ephemeral_storage_mb: int = 512

    @property
    def timeout(self) -> Duration:
        return Duration.seconds(self.timeout_seconds)


@dataclass(frozen=True)
class EnvironmentSettings:
    """Everything that differs between `dev` and `prod`."""

    name: str
    prefix: str
    stages: Mapping[str, StageSettings]
    architecture_name: str = "arm64"
    log_retention_days: int = 30
    removal_policy_name: str = "destroy"
    batch_size: int = 10
    max_batching_window_seconds: int = 5
    max_concurrency: int = 10
    max_file_bytes: int = 2 * 1024**3
    account: str | None = None
    region: str | None = None
    # "kms": a customer-managed key (rotated yearly) for buckets, queues and topic; "s3": SSE-S3
    # and SQS-managed keys.
    encryption: str = "kms"
    # Days a replaced or deleted object version is kept before it expires.
    noncurrent_version_days: int = 30
    access_log_days: int = 365
    # Object Lock (governance mode) on RAW for this many days; 0 leaves it off.
    raw_object_lock_days: int = 0
    # RAW prefixes that start executions (`<dataset>/`); empty: every dataset.
    datasets: tuple[str, ...] = ()
    # Whether state machine logs include execution input/output (keys and causes).
    log_execution_data: bool = False
    alarm_email: str | None = None

    @property
    def uses_kms(self) -> bool:
        return self.encryption == "kms"

    @property
    def architecture(self) -> lambda_.Architecture:
        return _ARCHITECTURES[self.architecture_name]

    @property
    def removal_policy(self) -> RemovalPolicy:
        return _REMOVAL_POLICIES[self.removal_policy_name]

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _RETENTION_DAYS[self.log_retention_days]

    @property
    def max_batching_window(self) -> Duration:
        return Duration.seconds(self.max_batching_window_seconds)

    def stage(self, stage: str) -> StageSettings:
        return self.stages[stage]

    @classmethod
    def from_context(cls, scope: Construct) -> EnvironmentSettings:
        """The settings of the environment named by `-c env=...` (default `dev`)."""
        env_name = scope.node.try_get_context(ENV_CONTEXT_KEY) or DEFAULT_ENV
        environments = scope.node.try_get_context(ENVIRONMENTS_CONTEXT_KEY)
        if not isinstance(environments, Mapping):
            raise SettingsError(
                f"context {ENVIRONMENTS_CONTEXT_KEY!r} is missing or not an object; "
                f"is {CDK_JSON.name} in the working directory?"
            )
        if env_name not in environments:
            raise SettingsError(
                f"unknown env {env_name!r}; {ENVIRONMENTS_CONTEXT_KEY} defines "
                f"{', '.join(sorted(environments))}"
            )
        return cls.from_mapping(env_name, environments[env_name])

    @classmethod
    def from_mapping(cls, env_name: str, raw: Any) -> EnvironmentSettings:
        where = f"{ENVIRONMENTS_CONTEXT_KEY}.{env_name}"
        reader = _Reader(where, raw)
        settings = cls(
            name=env_name,
            prefix=reader.text("prefix", pattern_hint="lowercase letters, digits and '-'"),
            stages=_read_stages(f"{where}.stages", reader.mapping("stages", required=False)),
            architecture_name=reader.choice("architecture", _ARCHITECTURES, default="arm64"),
            log_retention_days=reader.choice("log_retention_days", _RETENTION_DAYS, default=30),
            removal_policy_name=reader.choice(
                "removal_policy", _REMOVAL_POLICIES, default="destroy"
            ),
            # Lambda's SQS event source: batch size up to 10,000 once a batching window is set.
            batch_size=reader.integer("batch_size", default=10, minimum=1, maximum=10_000),
            max_batching_window_seconds=reader.integer(
                "max_batching_window_seconds", default=5, minimum=0, maximum=300
            ),
            max_concurrency=reader.integer("max_concurrency", default=10, minimum=2, maximum=1000),
            max_file_bytes=reader.integer("max_file_bytes", default=2 * 1024**3, minimum=1),
            account=reader.optional_text("account"),
            region=reader.optional_text("region"),
            encryption=reader.choice("encryption", dict.fromkeys(_ENCRYPTIONS), default="kms"),
            noncurrent_version_days=reader.integer(
                "noncurrent_version_days", default=30, minimum=1, maximum=3650
            ),
            access_log_days=reader.integer("access_log_days", default=365, minimum=1),
            raw_object_lock_days=reader.integer(
                "raw_object_lock_days", default=0, minimum=0, maximum=36500
            ),
            datasets=reader.names("datasets"),
            log_execution_data=reader.boolean("log_execution_data", default=False),
            alarm_email=reader.optional_text("alarm_email"),
        )
        reader.reject_unknown()
        if settings.batch_size > 10 and settings.max_batching_window_seconds == 0:
            raise SettingsError(
                f"{where}.batch_size: {settings.batch_size} needs max_batching_window_seconds > 0 "
                "(SQS event sources allow more than 10 messages only with a batching window)"
            )
        return settings


def load_cdk_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The `context` block of `cdk.json`, for apps run without the CDK CLI (tests, `make synth`)."""
    context = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    if not isinstance(context, dict):
        raise SettingsError(f"{path.name}: 'context' must be an object")
    return context


def _read_stages(where: str, raw: Mapping[str, Any]) -> dict[str, StageSettings]:
    unknown = sorted(set(raw) - set(STAGES))
    if unknown:
        raise SettingsError(f"{where}.{unknown[0]}: unknown stage; expected {', '.join(STAGES)}")
    stages: dict[str, StageSettings] = {}
    for stage in STAGES:
        reader = _Reader(f"{where}.{stage}", raw.get(stage, {}))
        stages[stage] = StageSettings(
            memory_mb=reader.integer("memory_mb", default=512, minimum=128, maximum=10_240),
            timeout_seconds=reader.integer("timeout_seconds", default=300, minimum=1, maximum=900),
            ephemeral_storage_mb=reader.integer(
                "ephemeral_storage_mb", default=512, minimum=512, maximum=10_240
            ),
        )
        reader.reject_unknown()
    return stages


_MISSING = object()


class _Reader:
    """Reads typed values from one JSON object and remembers which keys it has seen."""

    def __init__(self, where: str, raw: Any) -> None:
        if not isinstance(raw, Mapping):
            raise SettingsError(f"{where}: expected an object, got {type(raw).__name__}")
        self._where = where
        self._raw = raw
        self._seen: set[str] = set()

    def _get(self, key: str, default: Any) -> Any:
        self._seen.add(key)
        value = self._raw.get(key, default)
        if value is _MISSING:
            raise SettingsError(f"{self._where}.{key}: required setting is missing")
        return value

    def integer(
        self,
        key: str,
        *,
        default: int | object = _MISSING,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        value = self._get(key, default)
        # bool is an int in Python, but `true` is never a sensible memory size.
        if not isinstance(value, int) or isinstance(value, bool):
            raise SettingsError(f"{self._where}.{key}: expected an integer, got {value!r}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"{'' if minimum is None else minimum}..{'' if maximum is None else maximum}"
            raise SettingsError(f"{self._where}.{key}: {value} is outside {bounds}")
        return value

    def text(self, key: str, *, pattern_hint: str) -> str:
        value = self._get(key, _MISSING)
        valid = (
            isinstance(value, str)
            and value != ""
            and all(c.islower() or c.isdigit() or c == "-" for c in value)
        )
        if not valid:
            raise SettingsError(f"{self._where}.{key}: expected {pattern_hint}, got {value!r}")
        return str(value)

    def optional_text(self, key: str) -> str | None:
        value = self._get(key, None)
        if value is not None and (not isinstance(value, str) or value == ""):
            raise SettingsError(f"{self._where}.{key}: expected a non-empty string, got {value!r}")
        return value

    def choice(self, key: str, choices: Mapping[Any, Any], *, default: Any) -> Any:
        value = self._get(key, default)
        if isinstance(value, bool) or value not in choices:
            allowed = ", ".join(str(c) for c in choices)
            raise SettingsError(f"{self._where}.{key}: {value!r} is not one of {allowed}")
        return value

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise SettingsError(f"{self._where}.{key}: expected true or false, got {value!r}")
        return value

    def names(self, key: str) -> tuple[str, ...]:
        """A list of dataset names (lower-case letters, digits, '_')."""
        from sluice.lake import is_valid_dataset

        value = self._get(key, [])
        if not isinstance(value, list) or not all(
            isinstance(v, str) and is_valid_dataset(v) for v in value
        ):
            raise SettingsError(
                f"{self._where}.{key}: expected a list of dataset names, got {value!r}"
            )
        return tuple(value)

    def mapping(self, key: str, *, required: bool) -> Mapping[str, Any]:
        value = self._get(key, _MISSING if required else {})
        if not isinstance(value, Mapping):
            raise SettingsError(f"{self._where}.{key}: expected an object, got {value!r}")
        return value

    def reject_unknown(self) -> None:
        unknown = sorted(set(self._raw) - self._seen)
        if unknown:
            raise SettingsError(f"{self._where}.{unknown[0]}: unknown setting")

"""Per-environment settings, read from `cdk.json` context: what the stack deploys and what the
local cloud enforces (memory, timeout and `/tmp` per function, concurrency, file size limits).

`cdk.json` holds one block per environment under `sluice:environments`; `-c env=prod` (or
`sluice run --env prod`) picks one (default `dev`). Every value is checked here, so a typo fails
with the key's full name instead of surfacing as a CloudFormation error halfway through a deploy.
A file size limit the stages cannot serve (`sluice.sizing`) is refused the same way, with what
to raise. This module needs no CDK: the local cloud reads the same settings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice import sizing
from sluice.config import DEFAULT_MAX_FILE_BYTES, DEFAULT_STACK_ENV, PROJECT_ROOT, STAGES
from sluice.formats import LIMIT_FORMATS

CDK_JSON = PROJECT_ROOT / "cdk.json"
ENV_CONTEXT_KEY = "env"
ENVIRONMENTS_CONTEXT_KEY = "sluice:environments"
DEFAULT_ENV = DEFAULT_STACK_ENV

# CloudWatch Logs accepts only these retention periods (days).
RETENTION_DAYS: tuple[int, ...] = (
    *(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827),
    *(2192, 2557, 2922, 3288, 3653),
)
REMOVAL_POLICIES = ("destroy", "retain")
ARCHITECTURES = ("arm64", "x86_64")
_ENCRYPTIONS = ("kms", "s3")


class SettingsError(ValueError):
    """A `cdk.json` setting is missing, unknown or out of range; the message names its key."""


@dataclass(frozen=True)
class StageSettings:
    """Size of one stage's Lambda function."""

    memory_mb: int = 512
    timeout_seconds: int = 300
    # /tmp holds the downloaded file, the staged file and the per-day spills.
    ephemeral_storage_mb: int = 512


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
    # Files over this are quarantined before download; a format's own limit may be lower.
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    # Limits per format (keys of `sluice.formats.LIMIT_FORMATS`) set in `cdk.json`.
    max_file_bytes_by_format: Mapping[str, int] = field(default_factory=dict)
    # Every format's limit as Validate holds files to it (empty: `max_file_bytes` for all).
    file_limits: Mapping[str, int] = field(default_factory=dict)
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

    def stage(self, stage: str) -> StageSettings:
        return self.stages[stage]

    @classmethod
    def select(cls, env_name: str | None, environments: Any) -> EnvironmentSettings:
        """The settings of `env_name` (default `dev`) among the `sluice:environments` block."""
        env_name = env_name or DEFAULT_ENV
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
    def load(cls, env_name: str | None = None, path: Path = CDK_JSON) -> EnvironmentSettings:
        """The settings of one environment as `cdk.json` defines them."""
        return cls.select(env_name, load_cdk_context(path).get(ENVIRONMENTS_CONTEXT_KEY))

    @classmethod
    def from_mapping(cls, env_name: str, raw: Any) -> EnvironmentSettings:
        where = f"{ENVIRONMENTS_CONTEXT_KEY}.{env_name}"
        reader = _Reader(where, raw)
        stages = _read_stages(f"{where}.stages", reader.mapping("stages", required=False))
        max_file_bytes = reader.optional_integer("max_file_bytes", minimum=1)
        by_format = _read_format_limits(
            f"{where}.max_file_bytes_by_format",
            reader.mapping("max_file_bytes_by_format", required=False),
        )
        limits = _served_limits(where, max_file_bytes, by_format, stages)
        settings = cls(
            name=env_name,
            prefix=reader.text("prefix", pattern_hint="lowercase letters, digits and '-'"),
            stages=stages,
            architecture_name=reader.choice(
                "architecture", ARCHITECTURES, default=_DEFAULTS.architecture_name
            ),
            log_retention_days=reader.choice(
                "log_retention_days", RETENTION_DAYS, default=_DEFAULTS.log_retention_days
            ),
            removal_policy_name=reader.choice(
                "removal_policy", REMOVAL_POLICIES, default=_DEFAULTS.removal_policy_name
            ),
            # Lambda's SQS event source: batch size up to 10,000 once a batching window is set.
            batch_size=reader.integer(
                "batch_size", default=_DEFAULTS.batch_size, minimum=1, maximum=10_000
            ),
            max_batching_window_seconds=reader.integer(
                "max_batching_window_seconds",
                default=_DEFAULTS.max_batching_window_seconds,
                minimum=0,
                maximum=300,
            ),
            max_concurrency=reader.integer(
                "max_concurrency", default=_DEFAULTS.max_concurrency, minimum=2, maximum=1000
            ),
            max_file_bytes=max(limits.values()) if max_file_bytes is None else max_file_bytes,
            max_file_bytes_by_format=by_format,
            file_limits=limits,
            account=reader.optional_text("account"),
            region=reader.optional_text("region"),
            encryption=reader.choice("encryption", _ENCRYPTIONS, default=_DEFAULTS.encryption),
            noncurrent_version_days=reader.integer(
                "noncurrent_version_days",
                default=_DEFAULTS.noncurrent_version_days,
                minimum=1,
                maximum=3650,
            ),
            access_log_days=reader.integer(
                "access_log_days", default=_DEFAULTS.access_log_days, minimum=1
            ),
            raw_object_lock_days=reader.integer(
                "raw_object_lock_days",
                default=_DEFAULTS.raw_object_lock_days,
                minimum=0,
                maximum=36500,
            ),
            datasets=reader.names("datasets"),
            log_execution_data=reader.boolean(
                "log_execution_data", default=_DEFAULTS.log_execution_data
            ),
            alarm_email=reader.optional_text("alarm_email"),
        )
        reader.reject_unknown()
        if settings.batch_size > 10 and settings.max_batching_window_seconds == 0:
            raise SettingsError(
                f"{where}.batch_size: {settings.batch_size} needs max_batching_window_seconds > 0 "
                "(SQS event sources allow more than 10 messages only with a batching window)"
            )
        return settings


# What a key left out of cdk.json stands for: the dataclasses' defaults, written once there.
_DEFAULTS = EnvironmentSettings(name="", prefix="", stages={})
_STAGE_DEFAULTS = StageSettings()


def load_cdk_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The `context` block of `cdk.json`, for apps run without the CDK CLI (tests, `make synth`)."""
    context = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    if not isinstance(context, dict):
        raise SettingsError(f"{path.name}: 'context' must be an object")
    return context


def _read_format_limits(where: str, raw: Mapping[str, Any]) -> dict[str, int]:
    unknown = sorted(set(raw) - set(LIMIT_FORMATS))
    if unknown:
        raise SettingsError(
            f"{where}.{unknown[0]}: unknown format; expected {', '.join(LIMIT_FORMATS)}"
        )
    reader = _Reader(where, raw)
    return {fmt: reader.integer(fmt, minimum=1) for fmt in LIMIT_FORMATS if fmt in raw}


def _served_limits(
    where: str,
    max_file_bytes: int | None,
    by_format: Mapping[str, int],
    stages: Mapping[str, StageSettings],
) -> dict[str, int]:
    """Each format's limit; a configured one the stages cannot serve is refused, naming the
    stage settings to raise (and to what) or the largest limit they serve."""
    for fmt in LIMIT_FORMATS:
        configured = sizing.configured_limit(fmt, max_file_bytes, by_format)
        # Without a configured limit the stages' largest applies, but it must be a file.
        limit = 1 if configured is None else configured
        served = sizing.largest_file(fmt, stages)
        if limit <= served:
            continue
        if fmt in by_format:
            key = f"max_file_bytes_by_format.{fmt}"
        elif fmt.removesuffix(".gz") in by_format:
            key = f"max_file_bytes_by_format.{fmt.removesuffix('.gz')}"
        elif configured is not None:
            key = "max_file_bytes"
        else:
            key = "stages"
        raises = sizing.raises_for(fmt, limit, stages)
        served_text = f"{fmt} files of at most {served} bytes" if served else f"no {fmt} file"
        lower = f"set max_file_bytes_by_format.{fmt} to at most {served}"
        if raises is None:
            remedy = f"no function size Lambda allows serves {limit} bytes; {lower}"
        else:
            remedy = "raise " + ", ".join(str(r) for r in raises)
            remedy += f", or {lower}" if served else ""
        raise SettingsError(f"{where}.{key}: the stages serve {served_text}; {remedy}")
    return sizing.file_limits(max_file_bytes, by_format, stages)


def _read_stages(where: str, raw: Mapping[str, Any]) -> dict[str, StageSettings]:
    unknown = sorted(set(raw) - set(STAGES))
    if unknown:
        raise SettingsError(f"{where}.{unknown[0]}: unknown stage; expected {', '.join(STAGES)}")
    stages: dict[str, StageSettings] = {}
    for stage in STAGES:
        reader = _Reader(f"{where}.{stage}", raw.get(stage, {}))
        stages[stage] = StageSettings(
            memory_mb=reader.integer(
                "memory_mb",
                default=_STAGE_DEFAULTS.memory_mb,
                minimum=sizing.MEMORY_RANGE[0],
                maximum=sizing.MEMORY_RANGE[1],
            ),
            timeout_seconds=reader.integer(
                "timeout_seconds",
                default=_STAGE_DEFAULTS.timeout_seconds,
                minimum=1,
                maximum=sizing.MAX_TIMEOUT_SECONDS,
            ),
            ephemeral_storage_mb=reader.integer(
                "ephemeral_storage_mb",
                default=_STAGE_DEFAULTS.ephemeral_storage_mb,
                minimum=sizing.EPHEMERAL_RANGE[0],
                maximum=sizing.EPHEMERAL_RANGE[1],
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

    def optional_integer(self, key: str, *, minimum: int) -> int | None:
        """An integer, or None where the key is absent."""
        if key not in self._raw:
            self._seen.add(key)
            return None
        return self.integer(key, minimum=minimum)

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

    def choice(self, key: str, choices: tuple[Any, ...], *, default: Any) -> Any:
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

"""The CDK view of the per-environment settings (`sluice/environments.py` reads and checks them).

The values are plain data shared with the local cloud; this module only turns them into the CDK
types the constructs take (durations, removal policies, retention periods, architectures).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from sluice import environments
from sluice.environments import (
    CDK_JSON,
    DEFAULT_ENV,
    ENV_CONTEXT_KEY,
    ENVIRONMENTS_CONTEXT_KEY,
    SettingsError,
    StageSettings,
    load_cdk_context,
)

__all__ = [
    "CDK_JSON",
    "DEFAULT_ENV",
    "ENVIRONMENTS_CONTEXT_KEY",
    "ENV_CONTEXT_KEY",
    "EnvironmentSettings",
    "SettingsError",
    "StageSettings",
    "load_cdk_context",
    "stage_timeout",
]

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
assert set(_RETENTION_DAYS) == set(environments.RETENTION_DAYS)
assert set(_REMOVAL_POLICIES) == set(environments.REMOVAL_POLICIES)
assert set(_ARCHITECTURES) == set(environments.ARCHITECTURES)


def stage_timeout(stage: StageSettings) -> Duration:
    return Duration.seconds(stage.timeout_seconds)


class EnvironmentSettings(environments.EnvironmentSettings):
    """Everything that differs between `dev` and `prod`, with the CDK types constructs take."""

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

    @classmethod
    def from_context(cls, scope: Construct) -> EnvironmentSettings:
        """The settings of the environment named by `-c env=...` (default `dev`)."""
        settings: Any = cls.select(
            scope.node.try_get_context(ENV_CONTEXT_KEY),
            scope.node.try_get_context(ENVIRONMENTS_CONTEXT_KEY),
        )
        assert isinstance(settings, EnvironmentSettings)
        return settings

"""Environment settings come from cdk.json context, and a bad one fails synth naming its key."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from aws_cdk import App, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from infra.settings import (
    ENVIRONMENTS_CONTEXT_KEY,
    EnvironmentSettings,
    SettingsError,
    StageSettings,
    load_cdk_context,
)
from tests.infra.template import SIZED_LIMITS, SIZED_STAGES


def _environments() -> dict[str, Any]:
    environments: dict[str, Any] = copy.deepcopy(load_cdk_context()[ENVIRONMENTS_CONTEXT_KEY])
    return environments


def _dev_with(**changes: Any) -> dict[str, Any]:
    dev: dict[str, Any] = _environments()["dev"]
    dev.update(changes)
    return dev


def test_dev_is_the_default_environment() -> None:
    # Given cdk.json's context and no `-c env=...`
    app = App(context=load_cdk_context())

    # When the settings are read
    settings = EnvironmentSettings.from_context(app)

    # Then they are dev's, with the sizes that serve its file limits (docs/deploy.md, Sizing)
    assert settings.name == "dev"
    assert settings.prefix == "sluice-dev"
    assert settings.architecture_name == "arm64"
    assert settings.removal_policy == RemovalPolicy.DESTROY
    assert settings.log_retention == logs.RetentionDays.TWO_WEEKS
    assert settings.stages == SIZED_STAGES
    assert settings.file_limits == SIZED_LIMITS
    assert (settings.account, settings.region) == (None, None)


def test_prod_is_chosen_with_the_env_context_key() -> None:
    # Given `-c env=prod`
    app = App(context={**load_cdk_context(), "env": "prod"})

    # When the settings are read
    settings = EnvironmentSettings.from_context(app)

    # Then they are prod's: retained data, longer log retention
    assert settings.name == "prod"
    assert settings.prefix == "sluice-prod"
    assert settings.removal_policy == RemovalPolicy.RETAIN
    assert settings.log_retention_days == 90
    assert settings.architecture.name == lambda_.Architecture.ARM_64.name
    assert (settings.stages, settings.file_limits) == (SIZED_STAGES, SIZED_LIMITS)


def test_unknown_environment_lists_the_defined_ones() -> None:
    # Given `-c env=qa`, which cdk.json does not define
    app = App(context={**load_cdk_context(), "env": "qa"})

    # When the settings are read
    # Then the error names the env and the ones that exist
    with pytest.raises(
        SettingsError, match=r"unknown env 'qa'; sluice:environments defines dev, prod"
    ):
        EnvironmentSettings.from_context(app)


def test_omitted_optional_settings_take_their_defaults() -> None:
    # Given an environment with only the required settings and dev's stage sizes
    raw = {"prefix": "sluice-test", "stages": _environments()["dev"]["stages"]}

    # When it is read
    settings = EnvironmentSettings.from_mapping("test", raw)

    # Then everything else has the documented default; each format's limit is the largest
    # file the stages serve
    assert settings.batch_size == 10
    assert settings.max_batching_window_seconds == 5
    assert settings.max_concurrency == 10
    assert settings.log_retention_days == 30
    assert settings.removal_policy_name == "destroy"
    assert settings.file_limits == {
        "csv": 2_199_439_447,
        "csv.gz": 2_199_439_447,
        "parquet": 545_804_368,
        "json": 154_819_459,
        "json.gz": 154_819_459,
        "jsonl": 110_125_468,
        "jsonl.gz": 110_125_468,
        "xlsx": 55_582_659,
    }
    assert settings.max_file_bytes == 2_199_439_447


def test_an_omitted_stage_takes_the_default_size() -> None:
    # Given dev's stage sizes without delivery's, and limits a 512 MB delivery serves
    raw = {"prefix": "sluice-test", "stages": {**_environments()["dev"]["stages"]}}
    del raw["stages"]["delivery"]
    raw["max_file_bytes"] = 1024**2
    raw["max_file_bytes_by_format"] = {"jsonl": 1000, "json": 1000, "xlsx": 1000}

    # When it is read
    settings = EnvironmentSettings.from_mapping("test", raw)

    # Then delivery has 512 MB, 300 s and 512 MB of /tmp
    assert settings.stages["delivery"] == StageSettings(512, 300, 512)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"stages": {}},
            "sluice:environments.dev.max_file_bytes: the stages serve no csv file; raise "
            "stages.validate.memory_mb to 832, stages.validate.ephemeral_storage_mb to 3520, "
            "stages.trusted.memory_mb to 640, stages.trusted.ephemeral_storage_mb to 5056, "
            "stages.delivery.memory_mb to 896",
        ),
        (
            {"max_file_bytes_by_format": {**SIZED_LIMITS, "jsonl": 200 * 1024**2}},
            "sluice:environments.dev.max_file_bytes_by_format.jsonl: the stages serve jsonl "
            "files of at most 110125468 bytes; raise stages.validate.memory_mb to 3072, or set "
            "max_file_bytes_by_format.jsonl to at most 110125468",
        ),
        (
            {"max_file_bytes_by_format": {**SIZED_LIMITS, "xlsx": 1024**3}},
            "sluice:environments.dev.max_file_bytes_by_format.xlsx: the stages serve xlsx "
            "files of at most 55582659 bytes; no function size Lambda allows serves 1073741824 "
            "bytes; set max_file_bytes_by_format.xlsx to at most 55582659",
        ),
        (
            {"max_file_bytes_by_format": {k: v for k, v in SIZED_LIMITS.items() if k != "xlsx"}},
            "sluice:environments.dev.max_file_bytes: the stages serve xlsx files of at most "
            "55582659 bytes; no function size Lambda allows serves 2147483648 bytes; set "
            "max_file_bytes_by_format.xlsx to at most 55582659",
        ),
        (
            {"prefix": "sluice-dev", "stages": {}, "max_file_bytes": None},
            "sluice:environments.dev.stages: the stages serve no csv file; raise "
            "stages.trusted.memory_mb to 576",
        ),
        (
            {"max_file_bytes_by_format": {"xls": 1}},
            "sluice:environments.dev.max_file_bytes_by_format.xls: unknown format; expected "
            "csv, json, jsonl, xlsx, parquet, csv.gz, json.gz, jsonl.gz",
        ),
    ],
    ids=[
        "default-sizes",
        "jsonl-needs-memory",
        "xlsx-unservable",
        "general-limit",
        "no-file",
        "unknown-format",
    ],
)
def test_a_file_limit_the_stages_cannot_serve_is_refused_with_what_to_raise(
    changes: dict[str, Any], message: str
) -> None:
    # Given dev's settings with a file limit (or stage sizes) that do not fit
    raw = {k: v for k, v in _dev_with(**changes).items() if v is not None}

    # When they are read
    with pytest.raises(SettingsError) as refused:
        EnvironmentSettings.from_mapping("dev", raw)

    # Then the error names the setting, what the stages serve and what to raise to what
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            _dev_with(memory=1024),
            r"^sluice:environments\.dev\.memory: unknown setting$",
        ),
        (
            _dev_with(stages={"validate": {"memory_mb": "1GB"}}),
            r"^sluice:environments\.dev\.stages\.validate\.memory_mb: "
            r"expected an integer, got '1GB'$",
        ),
        (
            _dev_with(stages={"validate": {"timeout_seconds": 901}}),
            r"^sluice:environments\.dev\.stages\.validate\.timeout_seconds: "
            r"901 is outside 1\.\.900$",
        ),
        (
            _dev_with(stages={"loader": {}}),
            r"^sluice:environments\.dev\.stages\.loader: unknown stage",
        ),
        (
            _dev_with(log_retention_days=10),
            r"^sluice:environments\.dev\.log_retention_days: 10 is not one of 1, 3, 5, 7, 14, ",
        ),
        (
            _dev_with(removal_policy="snapshot"),
            r"^sluice:environments\.dev\.removal_policy: 'snapshot' is not one of destroy, retain$",
        ),
        (
            _dev_with(architecture="x86"),
            r"^sluice:environments\.dev\.architecture: 'x86' is not one of arm64, x86_64$",
        ),
        (
            _dev_with(batch_size=True),
            r"^sluice:environments\.dev\.batch_size: expected an integer, got True$",
        ),
        (
            _dev_with(batch_size=100, max_batching_window_seconds=0),
            r"^sluice:environments\.dev\.batch_size: 100 needs max_batching_window_seconds > 0",
        ),
        (
            _dev_with(prefix="Sluice Dev"),
            r"^sluice:environments\.dev\.prefix: expected lowercase letters, digits and '-'",
        ),
        (
            {k: v for k, v in _dev_with().items() if k != "prefix"},
            r"^sluice:environments\.dev\.prefix: required setting is missing$",
        ),
    ],
    ids=[
        "unknown-key",
        "memory-not-int",
        "timeout-too-long",
        "unknown-stage",
        "retention-not-allowed",
        "removal-policy",
        "architecture",
        "bool-is-not-int",
        "batch-needs-window",
        "prefix-charset",
        "required-missing",
    ],
)
def test_invalid_setting_is_reported_with_its_full_key(raw: dict[str, Any], message: str) -> None:
    # Given dev's settings with one bad value
    # When they are read
    # Then the error names the setting by its full key in cdk.json
    with pytest.raises(SettingsError, match=message):
        EnvironmentSettings.from_mapping("dev", raw)

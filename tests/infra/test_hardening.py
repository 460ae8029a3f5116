"""Catalog, monitoring, the settings that change the stack, and the template as a whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.catalog import database_name
from infra.stack import bundled_contracts
from sluice import catalog
from sluice.environments import load_cdk_context
from tests.infra.synth import Synth, synth

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """dev with every optional setting turned the other way."""
    return synth(
        tmp_path_factory.mktemp("cdk-variant"),
        "dev",
        {
            "encryption": "s3",
            "raw_object_lock_days": 30,
            "datasets": ["transactions", "orders"],
            "log_execution_data": True,
            "alarm_email": "ops@example.com",
            "stages": {
                **load_cdk_context()["sluice:environments"]["dev"]["stages"],
                "trusted": {"ephemeral_storage_mb": 10_240, "memory_mb": 10_240},
            },
        },
    )


# --- catalog ---------------------------------------------------------------------------------


def test_glue_tables_are_the_catalog_ddl_with_projection(dev: Synth) -> None:
    # Given the Glue tables and what sluice.catalog declares for the bundled contracts
    tables = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]
        for t in dev.resources("AWS::Glue::Table").values()
    }
    declared = {t.name: t for t in catalog.all_tables(bundled_contracts())}
    assert (
        set(tables)
        == set(declared)
        == {
            "trusted_transactions",
            "delivery_transactions",
            "lineage",
        }
    )
    values = {
        "Database": "sluice_dev",
        "TrustedBucket": "TRUSTED",
        "DeliveryBucket": "DELIVERY",
    }
    buckets = {
        json.dumps({"Ref": dev.bucket_id("trusted")}): "TRUSTED",
        json.dumps({"Ref": dev.bucket_id("delivery")}): "DELIVERY",
    }

    def plain(value: Any) -> str:
        """A template string with the bucket Refs written as their placeholder values."""
        if isinstance(value, str):
            return value
        parts = value["Fn::Join"][1]
        return "".join(p if isinstance(p, str) else buckets[json.dumps(p)] for p in parts)

    for name, props in tables.items():
        table = declared[name]
        table_input = props["TableInput"]
        # Then each has the declared columns, string partitions, location and projection
        assert props["DatabaseName"] == "sluice_dev"
        assert [(c["Name"], c["Type"]) for c in table_input["StorageDescriptor"]["Columns"]] == (
            table.columns()
        )
        assert [(c["Name"], c["Type"]) for c in table_input.get("PartitionKeys", [])] == [
            (p, "string") for p in table.partitions
        ]
        assert plain(table_input["StorageDescriptor"]["Location"]) == catalog.render(
            table.location, values
        )
        parameters = {k: plain(v) for k, v in table_input["Parameters"].items()}
        assert parameters == {
            "classification": "parquet",
            "EXTERNAL": "TRUE",
            **{k: catalog.render(v, values) for k, v in table.properties()},
        }
    assert database_name(dev.settings) == "sluice_dev"


def test_athena_workgroup_enforces_encrypted_results(dev: Synth) -> None:
    (workgroup,) = dev.resources("AWS::Athena::WorkGroup").values()
    config = workgroup["Properties"]["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["PublishCloudWatchMetricsEnabled"] is True
    assert config["ResultConfiguration"]["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_KMS",
        "KmsKey": dev.key_arn(dev.stack.storage.key),
    }
    results = dev.properties(dev.results_id)
    assert results["LifecycleConfiguration"]["Rules"][0] == {
        "Id": "expiry",
        "Status": "Enabled",
        "ExpirationInDays": 30,
    }


# --- monitoring ------------------------------------------------------------------------------


def test_alarms_cover_dlqs_queue_age_executions_every_function_and_quality(dev: Synth) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in dev.resources("AWS::CloudWatch::Alarm").values()
    }
    stages = ("starter", "validate", "trusted", "delivery")
    assert set(alarms) == {
        f"sluice-dev-{name}"
        for name in [
            "failure-dlq-depth",
            "ingest-dlq-depth",
            "ingest-oldest-message",
            "executions-failed",
            "executions-timed-out",
            "executions-throttled",
            *[f"{stage}-errors" for stage in stages],
            *[f"{stage}-throttles" for stage in stages],
            "trusted-quality-score",
        ]
    }
    topic = {"Ref": dev.ref_id(dev.stack.monitoring.topic.topic_arn)}
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [topic]
        # A score alarms when it falls; everything else when it reaches its threshold.
        assert alarm["ComparisonOperator"] == (
            "LessThanThreshold"
            if name == "sluice-dev-trusted-quality-score"
            else "GreaterThanOrEqualToThreshold"
        )
        assert alarm["TreatMissingData"] == "notBreaching"
    oldest = alarms["sluice-dev-ingest-oldest-message"]
    assert (oldest["MetricName"], oldest["Threshold"]) == ("ApproximateAgeOfOldestMessage", 900)
    failed = alarms["sluice-dev-executions-failed"]
    assert (failed["Namespace"], failed["MetricName"], failed["Threshold"]) == (
        "AWS/States",
        "ExecutionsFailed",
        1,
    )


def test_alarm_topic_is_encrypted_and_tls_only(dev: Synth) -> None:
    (topic,) = dev.resources("AWS::SNS::Topic").values()
    assert topic["Properties"]["KmsMasterKeyId"] == dev.key_arn(dev.stack.storage.messaging_key)
    (policy,) = dev.resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    assert dev.resources("AWS::SNS::Subscription") == {}


def test_dashboard_shows_the_state_machine_and_the_queues(dev: Synth) -> None:
    # (The Sluice metrics it graphs: tests/infra/test_metrics.py.)
    (dashboard,) = dev.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "ExecutionsFailed" in body and "ApproximateNumberOfMessagesVisible" in body


# --- settings that change the stack -----------------------------------------------------------


def test_sse_s3_setting_drops_the_keys(variant: Synth) -> None:
    assert variant.resources("AWS::KMS::Key") == {}
    for bucket in variant.resources("AWS::S3::Bucket").values():
        encryption = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert encryption[0]["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    for queue in variant.resources("AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True


def test_object_lock_on_raw_in_governance_mode(variant: Synth, dev: Synth) -> None:
    raw = variant.properties(variant.bucket_id("raw"))
    assert raw["ObjectLockEnabled"] is True
    assert raw["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Days": 30, "Mode": "GOVERNANCE"}},
    }
    assert "ObjectLockEnabled" not in dev.properties(dev.bucket_id("raw"))


def test_dataset_prefixes_filter_raw_events(variant: Synth) -> None:
    (notification,) = variant.resources("Custom::S3BucketNotifications").values()
    configs = notification["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    prefixes = [
        rule["Value"]
        for config in configs
        for rule in config["Filter"]["Key"]["FilterRules"]
        if rule["Name"] == "prefix"
    ]
    assert prefixes == ["transactions/", "orders/"]


def test_stage_sizes_execution_data_and_alarm_email(variant: Synth) -> None:
    trusted = variant.properties(variant.function_id("trusted"))
    assert (trusted["MemorySize"], trusted["EphemeralStorage"]) == (10_240, {"Size": 10_240})
    validate = variant.properties(variant.function_id("validate"))
    assert validate["EphemeralStorage"] == {"Size": 3584}
    machine = variant.properties(variant.state_machine_id())
    assert machine["LoggingConfiguration"]["IncludeExecutionData"] is True
    (subscription,) = variant.resources("AWS::SNS::Subscription").values()
    assert (subscription["Properties"]["Protocol"], subscription["Properties"]["Endpoint"]) == (
        "email",
        "ops@example.com",
    )
    assert variant.nag_errors == frozenset()


# --- the template as a whole ------------------------------------------------------------------

# CDK writes explicit DependsOn next to references that already order two resources; the
# duplicate ordering is harmless and cannot be removed from CDK's own constructs.
CFN_LINT_IGNORED = ["W3005"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_cfn_lint_passes_on_the_synthesized_templates(env: str, dev: Synth, prod: Synth) -> None:
    synthesized = {"dev": dev, "prod": prod}[env]
    template = synthesized.outdir / f"{synthesized.stack.stack_name}.template.json"
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(cfn_lint), "--ignore-checks", *CFN_LINT_IGNORED, "--", str(template)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# A deployment package may be 250 MB unzipped with its layers; the project's own code is a
# small part of that, and a few MB is plenty.
ASSET_LIMIT_BYTES = 5 * 1024 * 1024


def test_function_asset_stays_small(dev: Synth) -> None:
    key = dev.properties(dev.function_id("validate"))["Code"]["S3Key"]
    asset_dir = dev.outdir / f"asset.{key.removesuffix('.zip')}"
    size = sum(p.stat().st_size for p in asset_dir.rglob("*") if p.is_file())
    assert 0 < size < ASSET_LIMIT_BYTES

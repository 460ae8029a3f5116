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

    # When each table is compared with its declaration
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
    # Given the synthesized dev stack
    # When its Athena workgroup and results bucket are read
    (workgroup,) = dev.resources("AWS::Athena::WorkGroup").values()
    config = workgroup["Properties"]["WorkGroupConfiguration"]
    # Then queries must use the workgroup's settings, publish metrics and encrypt results with the
    # key
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["PublishCloudWatchMetricsEnabled"] is True
    assert config["ResultConfiguration"]["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_KMS",
        "KmsKey": dev.key_arn(dev.stack.storage.key),
    }
    # And the results expire after 30 days
    results = dev.properties(dev.results_id)
    assert results["LifecycleConfiguration"]["Rules"][0] == {
        "Id": "expiry",
        "Status": "Enabled",
        "ExpirationInDays": 30,
    }


# --- monitoring ------------------------------------------------------------------------------


def test_alarms_cover_dlqs_queue_age_executions_every_function_and_quality(dev: Synth) -> None:
    # Given the synthesized dev stack
    # When its alarms are listed
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in dev.resources("AWS::CloudWatch::Alarm").values()
    }
    stages = ("starter", "validate", "trusted", "delivery")
    # Then there is one for each DLQ, the queue's age, executions, every function and quality
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
    # And each notifies the topic, with the right direction and missing data as no breach
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
    # Given the synthesized dev stack
    # When its alarm topic is read
    (topic,) = dev.resources("AWS::SNS::Topic").values()
    # Then it is encrypted with the messaging key and refuses requests without TLS
    assert topic["Properties"]["KmsMasterKeyId"] == dev.key_arn(dev.stack.storage.messaging_key)
    (policy,) = dev.resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    # And nothing subscribes to it in dev
    assert dev.resources("AWS::SNS::Subscription") == {}


def test_dashboard_shows_the_state_machine_and_the_queues(dev: Synth) -> None:
    # (The Sluice metrics it graphs: tests/infra/test_metrics.py.)
    # Given the synthesized dev stack
    # When its dashboard is read
    (dashboard,) = dev.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    # Then it graphs the state machine's failures and the queues' depth
    assert "ExecutionsFailed" in body and "ApproximateNumberOfMessagesVisible" in body


# --- settings that change the stack -----------------------------------------------------------


def test_sse_s3_setting_drops_the_keys(variant: Synth) -> None:
    # Given the stack synthesized with SSE-S3 (and the other variant settings)
    # When its keys, buckets and queues are read
    # Then there are no KMS keys: buckets use AES256 and queues SQS's own encryption
    assert variant.resources("AWS::KMS::Key") == {}
    for bucket in variant.resources("AWS::S3::Bucket").values():
        encryption = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert encryption[0]["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    for queue in variant.resources("AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True


def test_object_lock_on_raw_in_governance_mode(variant: Synth, dev: Synth) -> None:
    # Given the stack synthesized with object lock, and the dev stack without it
    # When their RAW buckets are read
    raw = variant.properties(variant.bucket_id("raw"))
    # Then the variant locks new objects for 30 days in governance mode, and dev does not lock
    assert raw["ObjectLockEnabled"] is True
    assert raw["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Days": 30, "Mode": "GOVERNANCE"}},
    }
    assert "ObjectLockEnabled" not in dev.properties(dev.bucket_id("raw"))


def test_dataset_prefixes_filter_raw_events(variant: Synth) -> None:
    # Given the stack synthesized with dataset prefixes
    # When its RAW bucket's notifications are read
    (notification,) = variant.resources("Custom::S3BucketNotifications").values()
    configs = notification["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    prefixes = [
        rule["Value"]
        for config in configs
        for rule in config["Filter"]["Key"]["FilterRules"]
        if rule["Name"] == "prefix"
    ]
    # Then events reach the queue only under those prefixes
    assert prefixes == ["transactions/", "orders/"]


def test_stage_sizes_execution_data_and_alarm_email(variant: Synth) -> None:
    # Given the stack synthesized with stage sizes, execution data and an alarm email
    # When its functions, state machine and subscription are read
    trusted = variant.properties(variant.function_id("trusted"))
    # Then each has its setting, and cdk-nag still finds nothing
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
    # Given the synthesized template of this environment
    synthesized = {"dev": dev, "prod": prod}[env]
    template = synthesized.outdir / f"{synthesized.stack.stack_name}.template.json"
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    # When cfn-lint checks it (ignoring only CDK's redundant DependsOn)
    result = subprocess.run(
        [str(cfn_lint), "--ignore-checks", *CFN_LINT_IGNORED, "--", str(template)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )
    # Then it passes without a word
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# A deployment package may be 250 MB unzipped with its layers; the project's own code is a
# small part of that, and a few MB is plenty.
ASSET_LIMIT_BYTES = 5 * 1024 * 1024


def test_function_asset_stays_small(dev: Synth) -> None:
    # Given the synthesized dev stack's function asset
    key = dev.properties(dev.function_id("validate"))["Code"]["S3Key"]
    asset_dir = dev.outdir / f"asset.{key.removesuffix('.zip')}"
    # When its files are measured
    size = sum(p.stat().st_size for p in asset_dir.rglob("*") if p.is_file())
    # Then it holds something and stays under 5 MiB
    assert 0 < size < ASSET_LIMIT_BYTES

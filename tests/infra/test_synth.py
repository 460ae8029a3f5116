"""The CDK app synthesizes the pipeline described in docs: buckets, queues, functions, workflow.

Each environment is synthesized once per module (a synth takes seconds) and the tests read the
resulting CloudFormation template and cloud assembly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import sluice
from infra.functions import CODE_FOLDERS
from infra.ingest import MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_FACTOR
from sluice.config import (
    ASL_PATH,
    PROJECT_ROOT,
    STAGES,
    WORKFLOW_STAGES,
    asl_substitution_keys,
)
from tests.infra import template
from tests.infra.synth import Synth

pytestmark = pytest.mark.slow

BASIC_EXECUTION_ROLE = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
)


# Every data bucket's last lifecycle rule (noncurrent_version_days: 30 in cdk.json).
NONCURRENT_VERSION_EXPIRY = {
    "Id": "noncurrent-version-expiry",
    "Status": "Enabled",
    "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
}


# --- storage -------------------------------------------------------------------------------


def test_lake_buckets_are_versioned_kms_encrypted_access_logged_and_private(dev: Synth) -> None:
    # Given the dev stack's buckets
    buckets = dev.resources("AWS::S3::Bucket")
    data = [dev.bucket_id(layer) for layer in ("raw", "trusted", "delivery", "quarantine")]
    data.append(dev.results_id)

    # Then there are the four lake buckets, Athena's results bucket and the access-log bucket
    assert sorted(buckets) == sorted([*data, dev.access_log_id])
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        if logical_id == dev.access_log_id:
            # S3 delivers access logs only to SSE-S3 buckets
            assert props["BucketEncryption"] == {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            }
            continue
        # And each data bucket uses the pipeline's rotating key and logs its access
        assert props["BucketEncryption"] == {
            "ServerSideEncryptionConfiguration": [
                {
                    "BucketKeyEnabled": True,
                    "ServerSideEncryptionByDefault": {
                        "KMSMasterKeyID": dev.key_arn(dev.stack.storage.key),
                        "SSEAlgorithm": "aws:kms",
                    },
                }
            ]
        }
        assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": dev.access_log_id}
    key = dev.properties(dev.ref_id(dev.stack.storage.key.key_arn))
    assert key["EnableKeyRotation"] is True


def test_every_bucket_policy_denies_plain_http(dev: Synth) -> None:
    # Given the dev stack's bucket policies
    policies = dev.resources("AWS::S3::BucketPolicy")

    # When the buckets they guard are collected with their TLS-only statements
    tls_only = template.tls_only(policies, "Bucket")

    # Then every bucket refuses requests without TLS
    assert tls_only == set(dev.resources("AWS::S3::Bucket"))


def test_raw_bucket_cools_down_and_expires_after_seven_years(dev: Synth) -> None:
    # Given the RAW bucket
    props = dev.properties(dev.bucket_id("raw"))

    # Then its lifecycle moves objects to IA at 30 days, Glacier at 90, and expires at 2555
    assert props["LifecycleConfiguration"] == {
        "Rules": [
            {
                "Id": "raw-tiering",
                "Status": "Enabled",
                "Transitions": [
                    {"StorageClass": "STANDARD_IA", "TransitionInDays": 30},
                    {"StorageClass": "GLACIER", "TransitionInDays": 90},
                ],
                "ExpirationInDays": 2555,
            },
            NONCURRENT_VERSION_EXPIRY,
        ]
    }


def test_trusted_bucket_cools_down_and_expires_only_abandoned_staging(dev: Synth) -> None:
    # Given the TRUSTED bucket
    props = dev.properties(dev.bucket_id("trusted"))

    # Then data moves to IA at 60 days and Glacier at 180, and only `_staging/` ever expires
    assert props["LifecycleConfiguration"] == {
        "Rules": [
            {
                "Id": "trusted-tiering",
                "Status": "Enabled",
                "Transitions": [
                    {"StorageClass": "STANDARD_IA", "TransitionInDays": 60},
                    {"StorageClass": "GLACIER", "TransitionInDays": 180},
                ],
            },
            {
                "Id": "trusted-staging-expiry",
                "Status": "Enabled",
                "Prefix": "_staging/",
                "ExpirationInDays": 14,
                "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
            },
            NONCURRENT_VERSION_EXPIRY,
        ]
    }


def test_delivery_and_quarantine_buckets_keep_current_versions(dev: Synth) -> None:
    # Given the DELIVERY and QUARANTINE buckets
    # Then only replaced or deleted versions expire (after noncurrent_version_days)
    for layer in ("delivery", "quarantine"):
        rules = dev.properties(dev.bucket_id(layer))["LifecycleConfiguration"]["Rules"]
        assert [r["Id"] for r in rules] == ["noncurrent-version-expiry"]
        assert rules[0]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}


def test_dev_buckets_are_deleted_with_their_objects(dev: Synth) -> None:
    # Given the dev stack (removal_policy "destroy")
    buckets = dev.resources("AWS::S3::Bucket")
    auto_delete = dev.resources("Custom::S3AutoDeleteObjects")

    # Then every bucket is deleted with the stack and emptied first
    assert {b["DeletionPolicy"] for b in buckets.values()} == {"Delete"}
    assert {r["Properties"]["BucketName"]["Ref"] for r in auto_delete.values()} == set(buckets)


def test_prod_buckets_and_logs_are_retained(prod: Synth) -> None:
    # Given the prod stack (removal_policy "retain")
    buckets = prod.resources("AWS::S3::Bucket")
    log_groups = prod.resources("AWS::Logs::LogGroup")

    # Then buckets and log groups outlive the stack and nothing empties a bucket
    assert prod.stack.stack_name == "Sluice-prod"
    assert len(buckets) == 6
    assert {b["DeletionPolicy"] for b in buckets.values()} == {"Retain"}
    assert {g["DeletionPolicy"] for g in log_groups.values()} == {"Retain"}
    assert prod.resources("Custom::S3AutoDeleteObjects") == {}


# --- ingest --------------------------------------------------------------------------------


def test_ingest_queue_redrives_to_its_dlq_after_five_receives(dev: Synth) -> None:
    # Given the ingest queue and its dead-letter queue
    queue = dev.properties(dev.queue_id(dev.names.ingest_queue))
    dlq_id = dev.queue_id(dev.names.ingest_dlq)

    # Then an event that fails five times is parked in the DLQ
    assert MAX_RECEIVE_COUNT == 5
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": 5,
    }
    assert dev.properties(dlq_id)["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_all_queues_are_kms_encrypted_and_tls_only(dev: Synth) -> None:
    # Given the three queues
    queues = dev.resources("AWS::SQS::Queue")
    names = {q["Properties"]["QueueName"] for q in queues.values()}
    assert names == {dev.names.ingest_queue, dev.names.ingest_dlq, dev.names.failure_dlq}

    # When the queues with a TLS-only deny statement are collected
    tls_only = template.tls_only(dev.resources("AWS::SQS::QueuePolicy"), "Queues")

    # Then every queue uses the messaging key, takes S3 events of any size and refuses HTTP
    messaging = dev.key_arn(dev.stack.storage.messaging_key)
    for queue in queues.values():
        assert queue["Properties"]["KmsMasterKeyId"] == messaging
        assert queue["Properties"]["KmsDataKeyReusePeriodSeconds"] == 300
        assert queue["Properties"]["MaximumMessageSize"] == 262_144
    assert tls_only == set(queues)


def test_ingest_visibility_timeout_outlasts_six_starter_timeouts(dev: Synth) -> None:
    # Given the starter's timeout and the ingest queue
    starter_timeout = dev.properties(dev.function_id("starter"))["Timeout"]
    queue = dev.properties(dev.queue_id(dev.names.ingest_queue))

    # Then a message stays invisible for six starter timeouts plus the batching window
    assert starter_timeout == 300
    assert queue["VisibilityTimeout"] >= VISIBILITY_TIMEOUT_FACTOR * starter_timeout
    assert queue["VisibilityTimeout"] == 6 * 300 + 5


def test_starter_drains_the_ingest_queue_reporting_item_failures(dev: Synth) -> None:
    # Given the one event source mapping
    mappings = dev.resources("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 1
    (mapping,) = mappings.values()

    # Then it feeds the starter from the ingest queue with the batch settings of cdk.json
    assert mapping["Properties"] == {
        "BatchSize": 10,
        "EventSourceArn": {"Fn::GetAtt": [dev.queue_id(dev.names.ingest_queue), "Arn"]},
        "FunctionName": {"Ref": dev.function_id("starter")},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "MaximumBatchingWindowInSeconds": 5,
        "ScalingConfig": {"MaximumConcurrency": 5},
        "Tags": [
            {"Key": "environment", "Value": "dev"},
            {"Key": "project", "Value": "sluice"},
        ],
    }
    assert dev.settings.batch_size == 10
    assert dev.settings.max_concurrency == 5


def test_raw_object_created_events_go_to_the_ingest_queue(dev: Synth) -> None:
    # Given the bucket-notification custom resource
    notifications = dev.resources("Custom::S3BucketNotifications")
    assert len(notifications) == 1
    (notification,) = notifications.values()

    # Then RAW sends every object-created event, unfiltered, to the ingest queue
    props = notification["Properties"]
    assert props["BucketName"] == {"Ref": dev.bucket_id("raw")}
    assert props["NotificationConfiguration"] == {
        "QueueConfigurations": [
            {
                "Events": ["s3:ObjectCreated:*"],
                "QueueArn": {"Fn::GetAtt": [dev.queue_id(dev.names.ingest_queue), "Arn"]},
            }
        ]
    }


def test_only_s3_from_this_account_and_bucket_may_send_to_the_ingest_queue(dev: Synth) -> None:
    # Given the ingest queue's policy
    queue_id = dev.queue_id(dev.names.ingest_queue)
    (policy,) = [
        p
        for p in dev.resources("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]

    # When its S3 statement is picked out
    (statement,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "s3.amazonaws.com"}
    ]

    # Then S3 may send messages only on behalf of the RAW bucket
    assert statement["Effect"] == "Allow"
    assert "sqs:SendMessage" in template.as_list(statement["Action"])
    assert statement["Condition"]["ArnLike"] == {
        "aws:SourceArn": {"Fn::GetAtt": [dev.bucket_id("raw"), "Arn"]}
    }


# --- workflow: functions ---------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_function_runs_its_handler_on_python312_arm64(dev: Synth, stage: str) -> None:
    # Given the stage's function
    props = dev.properties(dev.function_id(stage))

    # Then it runs functions/<stage>/handler.py with the size cdk.json gives the stage
    assert props["Handler"] == f"functions/{stage}/handler.handler"
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    size = template.SIZED_STAGES[stage]
    assert (props["MemorySize"], props["Timeout"], props["EphemeralStorage"]) == (
        size.memory_mb,
        size.timeout_seconds,
        {"Size": size.ephemeral_storage_mb},
    )
    assert props["TracingConfig"] == {"Mode": "Active"}


def test_there_are_exactly_four_stage_functions(dev: Synth) -> None:
    # Given the dev stack's functions, minus CDK's own helpers (inline code or framework)
    stage_functions = {
        props["Properties"]["FunctionName"]
        for props in dev.resources("AWS::Lambda::Function").values()
        if "FunctionName" in props["Properties"]
    }

    # Then the four stages are there under their pipeline names
    assert stage_functions == {dev.names.function(stage) for stage in STAGES}


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_function_gets_the_pipeline_environment(dev: Synth, stage: str) -> None:
    # Given the stage's environment variables
    variables = dev.properties(dev.function_id(stage))["Environment"]["Variables"]

    # Then it names every bucket, the limits and its Powertools identity
    expected = {
        "SLUICE_RAW_BUCKET": {"Ref": dev.bucket_id("raw")},
        "SLUICE_TRUSTED_BUCKET": {"Ref": dev.bucket_id("trusted")},
        "SLUICE_DELIVERY_BUCKET": {"Ref": dev.bucket_id("delivery")},
        "SLUICE_QUARANTINE_BUCKET": {"Ref": dev.bucket_id("quarantine")},
        "SLUICE_MAX_FILE_BYTES": str(2 * 1024**3),
        "SLUICE_FILE_LIMITS": json.dumps(dict(sorted(template.SIZED_LIMITS.items()))),
        "SLUICE_PIPELINE_VERSION": sluice.__version__,
        "POWERTOOLS_SERVICE_NAME": f"sluice-{stage}",
        "POWERTOOLS_METRICS_NAMESPACE": "Sluice",
    }
    # And only the starter, which starts executions, knows the state machine
    if stage == "starter":
        expected["SLUICE_STATE_MACHINE_ARN"] = {"Ref": dev.state_machine_id()}
    assert variables == expected


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_function_loads_the_dependency_layer(dev: Synth, stage: str) -> None:
    # Given the stage's layers and the one layer in the stack
    layers = dev.properties(dev.function_id(stage))["Layers"]
    (layer_id,) = dev.resources("AWS::Lambda::LayerVersion")

    # Then every function loads the project's own arm64 / Python 3.12 dependency layer
    assert layers == [{"Ref": layer_id}]
    layer = dev.properties(layer_id)
    assert layer["CompatibleArchitectures"] == ["arm64"]
    assert layer["CompatibleRuntimes"] == ["python3.12"]


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_function_logs_to_its_own_group_with_retention(dev: Synth, stage: str) -> None:
    # Given the stage's function and its log group
    log_group_id = dev.properties(dev.function_id(stage))["LoggingConfig"]["LogGroup"]["Ref"]
    log_group = dev.template["Resources"][log_group_id]

    # Then the group has the function's conventional name and dev's retention
    assert log_group["Properties"] == {
        "LogGroupName": f"/aws/lambda/{dev.names.function(stage)}",
        "RetentionInDays": 14,
        "Tags": [{"Key": "environment", "Value": "dev"}, {"Key": "project", "Value": "sluice"}],
    }
    assert log_group["DeletionPolicy"] == "Delete"


def _package_files(root: Path) -> set[str]:
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix != ".pyc"
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    }


def test_function_code_asset_holds_only_library_handlers_and_contracts(dev: Synth) -> None:
    # Given the code asset every stage function is deployed from
    keys = {dev.properties(dev.function_id(stage))["Code"]["S3Key"] for stage in STAGES}
    assert len(keys) == 1
    asset_dir = dev.outdir / f"asset.{keys.pop().removesuffix('.zip')}"

    # When its files are listed, and those of the project's three code folders
    packaged = _package_files(asset_dir)
    expected = {
        f"{folder}/{name}"
        for folder in CODE_FOLDERS
        if (PROJECT_ROOT / folder).is_dir()
        for name in _package_files(PROJECT_ROOT / folder)
    }

    # Then the asset holds exactly sluice/, functions/ and contracts/, without bytecode
    assert {entry.name for entry in asset_dir.iterdir()} <= set(CODE_FOLDERS)
    assert "sluice/config.py" in packaged
    assert {f"functions/{stage}/handler.py" for stage in STAGES} <= packaged
    assert packaged == expected
    assert not [p for p in asset_dir.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]
    assert not list(asset_dir.rglob(".*"))


# --- workflow: state machine -----------------------------------------------------------------


def test_state_machine_is_standard_traced_and_logs_without_execution_data(dev: Synth) -> None:
    # Given the state machine
    props = dev.properties(dev.state_machine_id())
    log_group_arn = props["LoggingConfiguration"]["Destinations"][0]["CloudWatchLogsLogGroup"]
    log_group = dev.properties(log_group_arn["LogGroupArn"]["Fn::GetAtt"][0])

    # Then it is a traced Standard workflow logging every event but no payloads
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert log_group["LogGroupName"] == f"/aws/vendedlogs/states/{dev.names.state_machine}"
    assert log_group["RetentionInDays"] == 14


def test_state_machine_substitutes_every_asl_placeholder(dev: Synth) -> None:
    # Given the state machine's substitutions
    props = dev.properties(dev.state_machine_id())

    # Then the three stage ARNs and the failure queue URL fill the ASL's placeholders
    assert props["DefinitionSubstitutions"] == {
        "ValidateFunctionArn": {"Fn::GetAtt": [dev.function_id("validate"), "Arn"]},
        "TrustedFunctionArn": {"Fn::GetAtt": [dev.function_id("trusted"), "Arn"]},
        "DeliveryFunctionArn": {"Fn::GetAtt": [dev.function_id("delivery"), "Arn"]},
        "FailureQueueUrl": {"Ref": dev.queue_id(dev.names.failure_dlq)},
    }
    assert set(props["DefinitionSubstitutions"]) == set(asl_substitution_keys())


def test_deployed_definition_is_the_asl_file_with_no_unfilled_placeholder(dev: Synth) -> None:
    # Given the definition asset the state machine is created from
    location = dev.properties(dev.state_machine_id())["DefinitionS3Location"]
    definition = (dev.outdir / f"asset.{location['Key']}").read_text(encoding="utf-8")

    # When its placeholders are collected
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", definition))

    # Then it is statemachine/pipeline.asl.json and every placeholder has a substitution
    assert json.loads(definition) == json.loads(ASL_PATH.read_text(encoding="utf-8"))
    assert placeholders == set(asl_substitution_keys())


# --- workflow: permissions -------------------------------------------------------------------


def _allows(statements: list[dict[str, Any]], action: str, resource: Any) -> bool:
    return any(
        s["Effect"] == "Allow"
        and action in template.as_list(s["Action"])
        and resource in template.as_list(s["Resource"])
        for s in statements
    )


def test_state_machine_may_invoke_the_three_stages_and_dead_letter_failures(dev: Synth) -> None:
    # Given the state machine role's permissions
    grants = template.grants(dev.policy_statements(dev.role_of(dev.state_machine_id())))
    functions = [{"Fn::GetAtt": [dev.function_id(stage), "Arn"]} for stage in WORKFLOW_STAGES]
    failure_queue = {"Fn::GetAtt": [dev.queue_id(dev.names.failure_dlq), "Arn"]}

    # Then it invokes exactly the three stage functions (unqualified) and sends failures
    assert grants == template.expected(
        [
            *[(["lambda:InvokeFunction"], arn) for arn in functions],
            (["sqs:SendMessage"], failure_queue),
            (["kms:GenerateDataKey", "kms:Decrypt"], dev.key_arn(dev.stack.storage.messaging_key)),
            (
                [
                    "logs:CreateLogDelivery",
                    "logs:GetLogDelivery",
                    "logs:UpdateLogDelivery",
                    "logs:DeleteLogDelivery",
                    "logs:ListLogDeliveries",
                    "logs:PutResourcePolicy",
                    "logs:DescribeResourcePolicies",
                    "logs:DescribeLogGroups",
                ],
                "*",
            ),
            (
                [
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                ],
                "*",
            ),
        ]
    )


def test_validate_may_read_raw_and_write_staging_inferred_contracts_and_quarantined_files(
    dev: Synth,
) -> None:
    # Given the synthesized dev stack
    # When the validate role's policies are read
    # Then these are exactly the validate role's permissions
    assert template.role_grants(dev, "validate") == template.validate_grants(dev)


def test_trusted_may_read_staging_write_trusted_and_quarantined_rows(dev: Synth) -> None:
    # Given the synthesized dev stack
    # When the trusted role's policies are read
    # Then these are exactly its permissions
    assert template.role_grants(dev, "trusted") == template.expected(
        [
            *template.common(dev, "trusted"),
            (["s3:GetObject"], template.objects(dev, "trusted", "_staging/*")),
            (["s3:ListBucket"], template.bucket(dev, "trusted")),
            (["s3:PutObject", "s3:DeleteObject"], template.objects(dev, "trusted")),
            (["s3:PutObject", "s3:DeleteObject"], template.objects(dev, "quarantine", "*/rows/*")),
        ]
    )


def test_delivery_may_read_trusted_and_write_delivery(dev: Synth) -> None:
    # Given the synthesized dev stack
    # When the delivery role's policies are read
    # Then these are exactly its permissions
    assert template.role_grants(dev, "delivery") == template.delivery_grants(dev)


def test_starter_may_only_start_this_state_machine(dev: Synth) -> None:
    # Given the synthesized dev stack
    queue_arn = {"Fn::GetAtt": [dev.queue_id(dev.names.ingest_queue), "Arn"]}
    # When the starter role's policies are read
    # Then these are exactly its permissions: this state machine, RAW, the ingest queue and its key
    assert template.role_grants(dev, "starter") == template.expected(
        [
            *template.common(dev, "starter"),
            (["states:StartExecution"], {"Ref": dev.state_machine_id()}),
            (["s3:GetObject", "s3:GetObjectVersion"], template.objects(dev, "raw")),
            (["s3:ListBucket"], template.bucket(dev, "raw")),
            # the event source mapping reads the ingest queue with the starter's role
            (
                [
                    "sqs:ReceiveMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueUrl",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                ],
                queue_arn,
            ),
            (["kms:Decrypt"], dev.key_arn(dev.stack.storage.messaging_key)),
        ]
    )


# --- stack -----------------------------------------------------------------------------------


def test_stack_publishes_bucket_names_queue_urls_and_state_machine_arn(dev: Synth) -> None:
    # Given the dev stack's outputs
    outputs = {name: output["Value"] for name, output in dev.template["Outputs"].items()}

    # Then each names the resource a user or the CLI needs
    assert dev.stack.stack_name == "Sluice-dev"
    assert outputs == {
        "RawBucketName": {"Ref": dev.bucket_id("raw")},
        "TrustedBucketName": {"Ref": dev.bucket_id("trusted")},
        "DeliveryBucketName": {"Ref": dev.bucket_id("delivery")},
        "QuarantineBucketName": {"Ref": dev.bucket_id("quarantine")},
        "IngestQueueUrl": {"Ref": dev.queue_id(dev.names.ingest_queue)},
        "IngestDeadLetterQueueUrl": {"Ref": dev.queue_id(dev.names.ingest_dlq)},
        "FailureQueueUrl": {"Ref": dev.queue_id(dev.names.failure_dlq)},
        "StateMachineArn": {"Ref": dev.state_machine_id()},
        "GlueDatabaseName": "sluice_dev",
        "AthenaWorkGroupName": "sluice-dev",
        "AthenaResultsBucketName": {"Ref": dev.results_id},
        "AlarmTopicArn": {"Ref": dev.ref_id(dev.stack.monitoring.topic.topic_arn)},
        "DashboardUrl": {
            "Fn::Join": [
                "",
                [
                    "https://",
                    {"Ref": "AWS::Region"},
                    ".console.aws.amazon.com/cloudwatch/home?region=",
                    {"Ref": "AWS::Region"},
                    "#dashboards:name=",
                    {"Ref": dev.ref_id(dev.stack.monitoring.dashboard.dashboard_name)},
                ],
            ]
        },
    }


def test_cdk_nag_suppressions_carry_reasons_and_cover_inherent_findings(dev: Synth) -> None:
    # Given the cdk-nag suppressions written into the template
    suppressed = {
        rule["id"]: rule["reason"]
        for resource in dev.template["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    }

    # Then only findings inherent to the design are suppressed, each with a reason
    assert set(suppressed) == {
        "AwsSolutions-L1",
        "AwsSolutions-IAM4",
        "AwsSolutions-IAM5",
        "AwsSolutions-S1",
        "AwsSolutions-SQS3",
        "Serverless-LambdaDLQ",
        "Serverless-LambdaEventSourceMappingDestination",
        "Serverless-LambdaLatestVersion",
        "Serverless-SQSRedrivePolicy",
    }
    assert all(len(reason) > 20 for reason in suppressed.values())


def test_cdk_nag_finds_nothing_unsuppressed_in_either_environment(dev: Synth, prod: Synth) -> None:
    # Given the errors the AwsSolutions and Serverless packs recorded on each stack
    # Then there are none: every finding is fixed or suppressed with its reason
    assert dev.nag_errors == frozenset()
    assert prod.nag_errors == frozenset()

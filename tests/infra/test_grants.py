"""Every role in the template holds exactly the statements of sluice/grants.py, the one
definition the local cloud enforces too (tests/local checks the local side)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sluice import grants
from sluice.config import STAGES
from tests.infra.synth import Synth


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _pairs(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (action, json.dumps(resource, sort_keys=True))
        for s in statements
        for action in _list(s["Action"])
        for resource in _list(s["Resource"])
    }


def _resolver(dev: Synth) -> Any:
    def arn(resource: grants.Resource) -> Any:
        match resource:
            case grants.Objects(layer, pattern):
                bucket = {"Fn::GetAtt": [dev.bucket_id(layer), "Arn"]}
                return {"Fn::Join": ["", [bucket, f"/{pattern}"]]}
            case grants.Bucket(layer):
                return {"Fn::GetAtt": [dev.bucket_id(layer), "Arn"]}
            case grants.Function(stage):
                return {"Fn::GetAtt": [dev.function_id(stage), "Arn"]}
            case grants.LogGroup(stage):
                config = dev.properties(dev.function_id(stage))["LoggingConfig"]
                return {"Fn::GetAtt": [config["LogGroup"]["Ref"], "Arn"]}
            case grants.FailureQueue():
                return {"Fn::GetAtt": [dev.queue_id(dev.names.failure_dlq), "Arn"]}
            case grants.IngestQueue():
                return {"Fn::GetAtt": [dev.queue_id(dev.names.ingest_queue), "Arn"]}
            case grants.StateMachine():
                return {"Ref": dev.state_machine_id()}
            case grants.Key("data"):
                return dev.key_arn(dev.stack.storage.key)
            case grants.Key("messaging"):
                return dev.key_arn(dev.stack.storage.messaging_key)
        raise AssertionError(resource)

    return arn


def _template(dev: Synth, logical_id: str) -> set[tuple[str, str]]:
    """The role's statements, less those CDK adds for X-Ray and log delivery (`Resource: *`)."""
    statements = dev.policy_statements(dev.role_of(logical_id))
    return _pairs([s for s in statements if s["Resource"] != "*"])


@pytest.mark.parametrize("stage", STAGES)
def test_each_function_role_is_the_grant_definition(dev: Synth, stage: str) -> None:
    # Given the stage's grants in sluice/grants.py (the starter's with its event source's too)
    definition = grants.STAGE_GRANTS[stage]
    if stage == "starter":  # what its SQS event source polls with, granted by CDK itself
        definition += grants.EVENT_SOURCE_GRANTS
    # When they are written as statements on the synthesized template's resources
    expected = grants.statements(definition, _resolver(dev))
    # Then the function's role holds exactly those statements
    assert _template(dev, dev.function_id(stage)) == _pairs(expected)


def test_the_state_machine_role_is_the_grant_definition(dev: Synth) -> None:
    # Given the state machine's grants in sluice/grants.py, as statements on the template
    expected = grants.statements(grants.STATE_MACHINE_GRANTS, _resolver(dev))
    # When the state machine's role is read, Then it holds exactly those statements
    assert _template(dev, dev.state_machine_id()) == _pairs(expected)

"""Synthesizing the app once per environment and reading the result (shared by infra tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App
from aws_cdk.assertions import Template

from infra.settings import EnvironmentSettings, load_cdk_context
from infra.stack import SluiceStack, create_stack
from sluice.config import PipelineNames


@dataclass(frozen=True)
class Synth:
    stack: SluiceStack
    settings: EnvironmentSettings
    template: dict[str, Any]
    outdir: Path
    # Rule ids of the cdk-nag findings left as errors on the stack.
    nag_errors: frozenset[str]

    @property
    def names(self) -> PipelineNames:
        return PipelineNames(self.settings.prefix)

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == resource_type
        }

    def resource_id(self, resource_type: str, **properties: Any) -> str:
        matches = [
            logical_id
            for logical_id, resource in self.resources(resource_type).items()
            if all(resource["Properties"].get(k) == v for k, v in properties.items())
        ]
        assert len(matches) == 1, f"{resource_type} with {properties}: {matches}"
        return matches[0]

    def properties(self, logical_id: str) -> dict[str, Any]:
        props: dict[str, Any] = self.template["Resources"][logical_id]["Properties"]
        return props

    def bucket_id(self, layer: str) -> str:
        logical_id: str = self.stack.resolve(self.stack.storage.buckets[layer].bucket_name)["Ref"]
        return logical_id

    def ref_id(self, token: Any) -> str:
        """The logical id behind a `Ref` or `Fn::GetAtt` token of this stack."""
        resolved = self.stack.resolve(token)
        logical_id: str = resolved["Ref"] if "Ref" in resolved else resolved["Fn::GetAtt"][0]
        return logical_id

    @property
    def access_log_id(self) -> str:
        return self.ref_id(self.stack.storage.access_logs.bucket_name)

    @property
    def results_id(self) -> str:
        return self.ref_id(self.stack.catalog.results.bucket_name)

    def key_arn(self, key: Any) -> dict[str, Any]:
        return {"Fn::GetAtt": [self.ref_id(key.key_arn), "Arn"]}

    def function_id(self, stage: str) -> str:
        return self.resource_id("AWS::Lambda::Function", FunctionName=self.names.function(stage))

    def queue_id(self, name: str) -> str:
        return self.resource_id("AWS::SQS::Queue", QueueName=name)

    def state_machine_id(self) -> str:
        return self.resource_id(
            "AWS::StepFunctions::StateMachine", StateMachineName=self.names.state_machine
        )

    def policy_statements(self, role_id: str) -> list[dict[str, Any]]:
        statements: list[dict[str, Any]] = []
        for policy in self.resources("AWS::IAM::Policy").values():
            if {"Ref": role_id} in policy["Properties"]["Roles"]:
                statements += policy["Properties"]["PolicyDocument"]["Statement"]
        return statements

    def role_of(self, logical_id: str) -> str:
        role_arn = self.properties(logical_id).get("Role") or self.properties(logical_id)["RoleArn"]
        role_id: str = role_arn["Fn::GetAtt"][0]
        return role_id


def synth(outdir: Path, env: str, overrides: dict[str, Any] | None = None) -> Synth:
    """Synthesize the `env` environment of cdk.json, with `overrides` on its settings."""
    context = load_cdk_context()
    if overrides:
        environments = dict(context["sluice:environments"])
        environments[env] = {**environments[env], **overrides}
        context["sluice:environments"] = environments
    app = App(outdir=str(outdir), context={**context, "env": env})
    stack = create_stack(app)
    template = dict(Template.from_stack(stack).to_json())
    # The app is synthesized already; this returns the same cloud assembly.
    artifact = app.synth().get_stack_by_name(stack.stack_name)
    nag_errors = frozenset(
        str(message.entry.data).split(":", 1)[0].split("[", 1)[0]
        for message in artifact.messages
        if message.level.name == "ERROR"
    )
    return Synth(
        stack=stack,
        settings=stack.settings,
        template=template,
        outdir=Path(app.outdir),
        nag_errors=nag_errors,
    )

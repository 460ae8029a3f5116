"""How a stage function is built, wherever it belongs: one code asset and one dependency layer for
all four, an own role and log group each, and the role's grants from `sluice/grants.py`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

import sluice
from infra.settings import EnvironmentSettings, stage_timeout
from infra.storage import Storage
from infra.tracing import FUNCTION_TRACING, TRACING_SUPPRESSION
from sluice import grants
from sluice.config import PROJECT_ROOT, PipelineNames, Settings, function_environment

PYTHON_RUNTIME = lambda_.Runtime.PYTHON_3_12
# The dependency layer is built for this version (infra/layer.py).
PYTHON_VERSION = "3.12"

# The function package is the project root minus everything but what a handler imports.
# Allow-list patterns: ignore all, then re-admit the three folders (and their contents).
CODE_ROOT = PROJECT_ROOT
CODE_FOLDERS = ("sluice", "functions", "contracts")
CODE_EXCLUDE = [
    "*",
    ".*",
    *(pattern for folder in CODE_FOLDERS for pattern in (f"!{folder}", f"!{folder}/**")),
    "__pycache__",
    "*.pyc",
]

_RUNTIME_REASON = (
    "The runtime is pinned to the Python version the dependency layer is built for (3.12); "
    "moving to a newer runtime is a deliberate change of requirements/lambda.txt and the layer."
)

# Object ARNs end in a key pattern: the prefix is the boundary, the file names are per object.
_OBJECT_KEYS_SUPPRESSION = NagPackSuppression(
    id="AwsSolutions-IAM5",
    reason=(
        "Object keys are per source file and day; each statement is bounded to its bucket and "
        "prefix or key name (RAW, TRUSTED _staging/ or */_inferred_contract.yaml, QUARANTINE "
        "*/files/ or */rows/, DELIVERY)."
    ),
    applies_to=[RegexAppliesTo(regex="/^Resource::<Storage[A-Za-z]+[0-9A-F]{8}\\.Arn>\\/.*$/g")],
)
# A log group's ARN ends in `:*` (its streams); the statement names the function's own group,
# which is built in the construct its function belongs to (Ingest: the starter; Workflow: the rest).
_LOG_STREAMS_SUPPRESSION = NagPackSuppression(
    id="AwsSolutions-IAM5",
    reason="Log streams are created per function instance inside the function's own log group.",
    applies_to=[
        RegexAppliesTo(
            regex="/^Resource::<(?:Workflow|Ingest)[A-Za-z]+Logs[0-9A-F]{8}\\.Arn>:\\*$/g"
        )
    ],
)
_FUNCTION_SUPPRESSIONS = [
    NagPackSuppression(id="AwsSolutions-L1", reason=_RUNTIME_REASON),
    NagPackSuppression(id="Serverless-LambdaLatestVersion", reason=_RUNTIME_REASON),
    NagPackSuppression(
        id="Serverless-LambdaDLQ",
        reason=(
            "Invoked synchronously only (by Step Functions, or by the SQS event "
            "source for the starter): a failure goes to the failure DLQ through the "
            "state machine's Catch, or to the ingest DLQ through the queue's redrive "
            "policy. An asynchronous-invoke DLQ would never receive anything."
        ),
    ),
    TRACING_SUPPRESSION,
]


class StageFunctions:
    """Builds each stage's function from the one code asset and the given layers.

    The asset is one `Code` object: CDK stages it once, under the first function built, and every
    other function of the stack refers to the same hash.
    """

    def __init__(
        self,
        *,
        settings: EnvironmentSettings,
        names: PipelineNames,
        storage: Storage,
        layers: Sequence[lambda_.ILayerVersion],
    ) -> None:
        self._settings = settings
        self._names = names
        self._storage = storage
        self._layers = list(layers)
        self._code = lambda_.Code.from_asset(str(CODE_ROOT), exclude=CODE_EXCLUDE)

    def build(
        self,
        scope: Construct,
        stage: str,
        *,
        state_machine: sfn.IStateMachine | None = None,
    ) -> lambda_.Function:
        """`stage`'s log group, role and function in `scope`, the role granted exactly the
        stage's statements. Only the starter is given the state machine it starts."""
        stage_settings = self._settings.stage(stage)
        function_name = self._names.function(stage)
        title = stage.capitalize()
        log_group = logs.LogGroup(
            scope,
            f"{title}Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=self._settings.log_retention,
            removal_policy=self._settings.removal_policy,
        )
        # An own role instead of AWSLambdaBasicExecutionRole: that managed policy may create any
        # log group; this role may only write to the function's own.
        role = iam.Role(
            scope,
            f"{title}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Sluice {stage} stage function",
        )
        function = lambda_.Function(
            scope,
            title,
            role=role,
            function_name=function_name,
            description=f"Sluice {stage} stage",
            runtime=PYTHON_RUNTIME,
            architecture=self._settings.architecture,
            code=self._code,
            handler=f"functions/{stage}/handler.handler",
            memory_size=stage_settings.memory_mb,
            timeout=stage_timeout(stage_settings),
            layers=self._layers,
            environment=self._environment(stage, state_machine),
            log_group=log_group,
            tracing=FUNCTION_TRACING,
            ephemeral_storage_size=Size.mebibytes(stage_settings.ephemeral_storage_mb),
        )
        NagSuppressions.add_resource_suppressions(
            function, _FUNCTION_SUPPRESSIONS, apply_to_children=True
        )
        resources: dict[grants.Resource, str] = {grants.LogGroup(stage): log_group.log_group_arn}
        if state_machine is not None:
            resources[grants.StateMachine()] = state_machine.state_machine_arn
        # Each stage may touch only its own buckets and prefixes, with the exact actions
        # (sluice/grants.py, which the local cloud enforces too).
        self.grant(function, grants.STAGE_GRANTS[stage], resources)
        NagSuppressions.add_resource_suppressions(
            role,
            [_LOG_STREAMS_SUPPRESSION, TRACING_SUPPRESSION, _OBJECT_KEYS_SUPPRESSION],
            apply_to_children=True,
        )
        return function

    def _environment(self, stage: str, state_machine: sfn.IStateMachine | None) -> dict[str, str]:
        buckets = self._storage
        runtime_settings = Settings(
            raw_bucket=buckets.raw.bucket_name,
            trusted_bucket=buckets.trusted.bucket_name,
            delivery_bucket=buckets.delivery.bucket_name,
            quarantine_bucket=buckets.quarantine.bucket_name,
            max_file_bytes=self._settings.max_file_bytes,
            file_limits=self._settings.file_limits,
            pipeline_version=sluice.__version__,
            state_machine_arn=state_machine.state_machine_arn if state_machine else "",
        )
        return function_environment(stage, runtime_settings)

    def grant(
        self,
        principal: iam.IGrantable,
        definition: tuple[grants.Grant, ...],
        resources: Mapping[grants.Resource, str],
    ) -> None:
        """Adds `definition`'s statements to `principal`, with the lake's buckets and keys and
        `resources` (the caller's own: functions, queues, the state machine) as ARNs."""

        def arn(resource: grants.Resource) -> str | None:
            storage = self._storage
            match resource:
                case grants.Objects(layer, pattern):
                    return storage.buckets[layer].arn_for_objects(pattern)
                case grants.Bucket(layer):
                    return storage.buckets[layer].bucket_arn
                case grants.Key("data"):
                    return storage.key.key_arn if storage.key is not None else None
                case grants.Key("messaging"):
                    key = storage.messaging_key
                    return key.key_arn if key is not None else None
            if resource not in resources:
                raise ValueError(f"no resource for {resource!r}")
            return resources[resource]

        for statement in grants.statements(definition, arn):
            actions, resources_ = statement["Action"], statement["Resource"]
            principal.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=[actions] if isinstance(actions, str) else actions,
                    resources=[resources_] if isinstance(resources_, str) else resources_,
                )
            )

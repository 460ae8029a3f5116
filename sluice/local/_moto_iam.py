"""moto's IAM, made to check requests as AWS does (see `sluice.local._moto`)."""

from __future__ import annotations

from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote

from sluice import retries

# -- IAM enforcement ---------------------------------------------------------------------------
# moto checks every request against the caller's policies once INITIAL_NO_AUTH_ACTION_COUNT
# requests have gone by. Three gaps would make it refuse what AWS allows, or allow what AWS
# refuses; each is closed here:
# - Lambda's Invoke is authorized as `lambda:Invoke`; IAM's action is `lambda:InvokeFunction`;
#   SQS batch actions need their single action's permission on AWS, not one of their own;
#   a GET without a body is signed as empty (moto hashed its parsed parameters).
# - Lambda, Step Functions and Glue requests are checked against resource `*`, so a statement
#   naming a function, state machine or table ARN never matched; they now name the resources
#   they act on (a task token's, the state machine of the execution that issued it).
# - the Step Functions interpreter calls Lambda and SQS with fixed dummy keys; it now signs
#   with the credentials of the state machine's role, as Step Functions does on AWS.

# Batch actions are authorized by their single action's permission on AWS.
_IAM_ACTIONS = {
    "lambda:Invoke": "lambda:InvokeFunction",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:DeleteObjects": "s3:DeleteObject",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sqs:SendMessageBatch": "sqs:SendMessage",
}
_state_machine_credentials: dict[str, str] = {}


def _lambda_resource(self: Any) -> str:
    path = unquote(str(getattr(self, "path", "")))
    marker = "/functions/"
    if marker not in path:
        return "*"
    name = path.split(marker, 1)[1].split("/", 1)[0]
    if name.startswith("arn:"):
        return name.split(":$", 1)[0]
    return f"arn:aws:lambda:{self.region}:{self.current_account}:function:{name}"


def _param(self: Any, name: str) -> Any:
    try:
        return self._get_param(name)
    except Exception:  # a body that is not JSON: the action itself will say so
        return None


def _states_resource(self: Any) -> str:
    for param in ("stateMachineArn", "executionArn"):
        value = _param(self, param)
        if value:
            return str(value)
    token = _param(self, "taskToken")
    if token:
        # SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat act on the state machine whose
        # execution issued the token (what CDK's grantTaskResponse names).
        return _machine_of_task_token(self.stepfunction_backend, str(token)) or "*"
    return "*"


def _machine_of_task_token(backend: Any, token: str) -> str | None:
    """The ARN of the state machine whose execution waits on `token` (None: no such wait)."""
    for machine in list(backend.state_machines):
        for execution in list(machine.executions):
            worker = getattr(execution, "exec_worker", None)
            if worker is not None and worker.env.callback_pool_manager.get(token) is not None:
                return str(machine.arn)
    return None


# Glue authorizes a Data Catalog request against each resource it acts on: the catalog, the
# database, and the tables (https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html);
# a GetTable needs all three granted. moto checks one resource per request, so the local cloud
# checks it once per ARN. Requests it does not name here are checked against `*`, as moto did.
_GLUE_DATABASE_NAME = {
    "CreateDatabase": ("DatabaseInput", "Name"),
    "GetDatabase": ("Name",),
    "UpdateDatabase": ("Name",),
    "DeleteDatabase": ("Name",),
}
_GLUE_TABLE_NAME = {
    "CreateTable": ("TableInput", "Name"),
    "UpdateTable": ("TableInput", "Name"),
    "GetTable": ("Name",),
    "DeleteTable": ("Name",),
    **dict.fromkeys(
        (
            "GetTableVersions",
            "GetTableVersion",
            "DeleteTableVersion",
            "BatchDeleteTableVersion",
            "CreatePartition",
            "BatchCreatePartition",
            "GetPartition",
            "GetPartitions",
            "BatchGetPartition",
            "UpdatePartition",
            "BatchUpdatePartition",
            "DeletePartition",
            "BatchDeletePartition",
        ),
        ("TableName",),
    ),
}


def _named(self: Any, path: tuple[str, ...]) -> str | None:
    value = _param(self, path[0])
    for key in path[1:]:
        value = value.get(key) if isinstance(value, dict) else None
    return str(value) if value else None


def _glue_resources(self: Any) -> list[str]:
    """The ARNs a Glue request is authorized against, as Glue checks them."""
    prefix = f"arn:aws:glue:{self.region}:{self.current_account}"
    catalog = f"{prefix}:catalog"
    action = self._get_action()
    if action == "GetDatabases":
        return [catalog, f"{prefix}:database/*"]
    if action in _GLUE_DATABASE_NAME:
        database = _named(self, _GLUE_DATABASE_NAME[action])
        if not database:
            return ["*"]
        within = [f"{prefix}:database/{database}"]
        if action == "DeleteDatabase":  # and everything in it goes too
            within += [f"{prefix}:table/{database}/*", f"{prefix}:userDefinedFunction/{database}/*"]
        return [catalog, *within]
    database = _named(self, ("DatabaseName",))
    if not database:
        return ["*"]
    if action == "GetTables":
        tables = ["*"]
    elif action == "BatchDeleteTable":
        tables = [str(name) for name in _param(self, "TablesToDelete") or []]
    elif action in _GLUE_TABLE_NAME:
        table = _named(self, _GLUE_TABLE_NAME[action])
        tables = [table] if table else []
    else:
        return ["*"]
    if not tables:
        return ["*"]
    return [
        catalog,
        f"{prefix}:database/{database}",
        *(f"{prefix}:table/{database}/{table}" for table in tables),
    ]


def _glue_authorize(self: Any, resource: str = "*") -> None:
    for arn in _glue_resources(self):
        _authorize_normal_action(self, arn)


def _s3_action(method: str, path: str, asked: str) -> str:
    """The IAM action of an S3 request, from moto's own table of them (`ACTION_MAP`): from 5.2.6
    moto asks IAM for the API operation's name (`s3:HeadObject`, `s3:CreateMultipartUpload`),
    which no policy grants; AWS authorizes HeadObject as s3:GetObject (s3:GetObjectVersion for
    a version), an upload's parts as s3:PutObject, a listing as s3:ListBucket. A request the
    table does not name (ListBuckets, DeleteObjects) keeps `asked`, as IAM names it."""
    from moto.s3.responses import ACTION_MAP

    address, _, query = path.partition("?")
    if not address.strip("/"):
        return _IAM_ACTIONS.get(asked, asked)
    kind = "KEY" if "/" in address.strip("/") else "BUCKET"
    actions = dict(ACTION_MAP[kind].get(method, {}))
    if kind == "KEY" and method == "HEAD":
        actions.setdefault("versionId", "GetObjectVersion")
    present = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
    named = [action for flag, action in actions.items() if flag in present]
    action = named[-1] if named else actions.get("DEFAULT")
    named_action = f"s3:{action}" if action else asked
    return _IAM_ACTIONS.get(named_action, named_action)


def _iam_request_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original_iam_init(self, *args, **kwargs)
    if self._service == "s3":
        self._action = _s3_action(self._method, self._path, self._action)
    self._action = _IAM_ACTIONS.get(self._action, self._action)
    if not self._body and self._method in ("GET", "HEAD", "DELETE"):
        # moto signs a request without a body as its parsed parameters, so every Lambda GET
        # failed with SignatureDoesNotMatch: sign it as empty, as the client did.
        self._data = {}


def _boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    import boto3
    from botocore.config import Config
    from moto.settings import moto_server_port

    return boto3.client(
        service_name=service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=f"http://localhost:{moto_server_port()}",
        aws_access_key_id=_state_machine_credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=_state_machine_credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=_state_machine_credentials["AWS_SESSION_TOKEN"],
        # A Lambda may run 900 s: the interpreter waits for it (botocore's default is 60 s).
        config=Config(
            parameter_validation=False,
            retries={"total_max_attempts": retries.LOCAL_INTERPRETER.attempts},
            connect_timeout=60,
            read_timeout=960,
        ),
    )


def _interpreter_modules() -> list[ModuleType]:
    import moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils as lam
    import moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs as sqs  # noqa: E501

    return [lam, sqs]


from moto.awslambda.responses import LambdaResponse  # noqa: E402
from moto.core.authorization import ActionAuthenticatorMixin  # noqa: E402
from moto.glue.responses import GlueResponse  # noqa: E402
from moto.iam.access_control import IAMRequestBase  # noqa: E402
from moto.stepfunctions.responses import StepFunctionResponse  # noqa: E402

_original_iam_init = IAMRequestBase.__init__
_authorize_normal_action = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action


def enforce_iam(state_machine_credentials: dict[str, str]) -> None:
    """From now on every request must be signed by a principal whose policies allow it."""
    from moto import settings

    _state_machine_credentials.clear()
    _state_machine_credentials.update(state_machine_credentials)
    setattr(LambdaResponse, "_determine_resource", _lambda_resource)  # noqa: B010
    setattr(StepFunctionResponse, "_determine_resource", _states_resource)  # noqa: B010
    # moto asks every response class to authorize against one resource: Glue's, once per ARN.
    setattr(GlueResponse, "_authenticate_and_authorize_normal_action", _glue_authorize)  # noqa: B010
    setattr(IAMRequestBase, "__init__", _iam_request_init)  # noqa: B010
    for module in _interpreter_modules():
        setattr(module, "boto_client_for", _boto_client_for)  # noqa: B010
    ActionAuthenticatorMixin.request_count = 0
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0


def relax_iam() -> None:
    """Back to moto's default: no request is checked (before provisioning, and on stop)."""
    from moto import settings
    from moto.stepfunctions.parser.asl.utils import boto_client

    settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    ActionAuthenticatorMixin.request_count = 0
    for module in _interpreter_modules():
        setattr(module, "boto_client_for", boto_client.boto_client_for)  # noqa: B010
    setattr(IAMRequestBase, "__init__", _original_iam_init)  # noqa: B010
    if "_authenticate_and_authorize_normal_action" in vars(GlueResponse):
        delattr(GlueResponse, "_authenticate_and_authorize_normal_action")

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
# - Lambda and Step Functions requests are checked against resource `*`, so a statement naming
#   a function or state machine ARN never matched; they now name the resource they act on.
# - the Step Functions interpreter calls Lambda and SQS with fixed dummy keys; it now signs
#   with the credentials of the state machine's role, as Step Functions does on AWS.

# Batch actions are authorized by their single action's permission on AWS.
_IAM_ACTIONS = {
    "lambda:Invoke": "lambda:InvokeFunction",
    "s3:HeadBucket": "s3:ListBucket",
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


def _states_resource(self: Any) -> str:
    for param in ("stateMachineArn", "executionArn"):
        try:
            value = self._get_param(param)
        except Exception:  # a body that is not JSON: the action itself will say so
            value = None
        if value:
            return str(value)
    return "*"


def _s3_action(method: str, path: str, asked: str) -> str:
    """The IAM action of an S3 request, from moto's own table of them (`ACTION_MAP`): from 5.2.6
    moto asks IAM for the API operation's name (`s3:HeadObject`, `s3:CreateMultipartUpload`),
    which no policy grants; AWS authorizes HeadObject as s3:GetObject, an upload's parts as
    s3:PutObject, a listing as s3:ListBucket. A request the table does not name keeps `asked`."""
    from moto.s3.responses import ACTION_MAP

    address, _, query = path.partition("?")
    kind = "KEY" if "/" in address.strip("/") else "BUCKET"
    actions = ACTION_MAP[kind].get(method, {})
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
from moto.iam.access_control import IAMRequestBase  # noqa: E402
from moto.stepfunctions.responses import StepFunctionResponse  # noqa: E402

_original_iam_init = IAMRequestBase.__init__


def enforce_iam(state_machine_credentials: dict[str, str]) -> None:
    """From now on every request must be signed by a principal whose policies allow it."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    _state_machine_credentials.clear()
    _state_machine_credentials.update(state_machine_credentials)
    setattr(LambdaResponse, "_determine_resource", _lambda_resource)  # noqa: B010
    setattr(StepFunctionResponse, "_determine_resource", _states_resource)  # noqa: B010
    setattr(IAMRequestBase, "__init__", _iam_request_init)  # noqa: B010
    for module in _interpreter_modules():
        setattr(module, "boto_client_for", _boto_client_for)  # noqa: B010
    ActionAuthenticatorMixin.request_count = 0
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0


def relax_iam() -> None:
    """Back to moto's default: no request is checked (before provisioning, and on stop)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.stepfunctions.parser.asl.utils import boto_client

    settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    ActionAuthenticatorMixin.request_count = 0
    for module in _interpreter_modules():
        setattr(module, "boto_client_for", boto_client.boto_client_for)  # noqa: B010
    setattr(IAMRequestBase, "__init__", _original_iam_init)  # noqa: B010

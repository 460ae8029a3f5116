"""Fails loudly when a moto upgrade moves what `sluice.local._moto` relies on."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.config import default_user_config
from moto.settings import moto_server_port

from sluice.local import _moto, _moto_iam


def served_s3(access_key: str = "a") -> tuple[Any, Any]:
    """The local cloud's moto server, started on a free port, and an S3 client of it signed
    with `access_key`."""
    import boto3

    _moto.enable_execution()
    server = _moto.server("127.0.0.1", 0)
    server.start()
    host, port = server.get_host_and_port()
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key="b",
    )
    return server, s3


def test_config_switches_exist() -> None:
    # Given moto's default configuration
    # When its Step Functions and Lambda sections are read
    # Then the switches the local cloud sets are there
    assert "execute_state_machine" in default_user_config["stepfunctions"]
    assert "use_docker" in default_user_config["lambda"]


def test_lambda_simple_backend_invoke_has_the_signature_we_replace() -> None:
    # Given moto's LambdaSimpleBackend.invoke, as the local cloud found it
    # When its parameters are read
    params = list(inspect.signature(_moto._original_invoke).parameters)
    # Then they are those the local cloud's replacement takes
    assert params == ["self", "function_name", "qualifier", "body", "headers", "response_headers"]


def test_interpreter_reads_the_server_port_from_moto_port(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Given MOTO_PORT set
    monkeypatch.setenv("MOTO_PORT", "45678")
    # When moto asks for its server's port, Then it is that one
    assert moto_server_port() == "45678"


def test_dispatcher_installs_and_restores() -> None:
    # Given a dispatcher that records its calls and answers with a function error
    calls: list[tuple[str, bytes]] = []

    def dispatcher(name: str, body: bytes) -> tuple[bytes, str | None]:
        calls.append((name, body))
        return b'{"errorType": "X"}', "Unhandled"

    # When it is installed and a function is invoked through moto's backend
    _moto.install_dispatcher(dispatcher)
    try:
        headers: dict[str, str] = {}
        backend = LambdaSimpleBackend.__new__(LambdaSimpleBackend)
        payload = backend.invoke("fn", None, b"{}", {}, headers)
        # Then the dispatcher answered, with the function error header
        assert (payload, headers, calls) == (
            b'{"errorType": "X"}',
            {"x-amz-function-error": "Unhandled"},
            [("fn", b"{}")],
        )
    finally:
        _moto.remove_dispatcher()
    # And once removed, moto's own invoke is back
    assert LambdaSimpleBackend.invoke is _moto._original_invoke


def test_the_iam_enforcement_switches_exist() -> None:
    # Given moto's settings, its authorization mixin and its base response
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.responses import BaseResponse

    # When the switches the local cloud turns are looked up
    # Then each is there, with the type the local cloud sets
    assert isinstance(settings.INITIAL_NO_AUTH_ACTION_COUNT, float)
    assert isinstance(ActionAuthenticatorMixin.request_count, int)
    # call_action asks a response class for its resource only if it has `_determine_resource`
    assert "_determine_resource" in inspect.getsource(BaseResponse.call_action)


def test_the_iam_request_keeps_the_fields_we_correct() -> None:
    from moto.iam.access_control import IAMRequestBase

    # Given moto's IAM request class
    # When its source and our copy of its __init__ are read
    source = inspect.getsource(IAMRequestBase)
    # Then it still sets the fields the local cloud corrects, and takes the same parameters
    for field in ("self._action =", "self._body =", "self._data =", "self._method ="):
        assert field in source, field
    assert "data=self._body or self._data" in source
    params = list(inspect.signature(_moto._original_iam_init).parameters)
    assert params == ["self", "account_id", "method", "path", "data", "body", "headers", "action"]


def test_the_interpreter_builds_its_clients_where_we_replace_them() -> None:
    from moto.stepfunctions.parser.asl.utils import boto_client

    # Given the Step Functions interpreter's client factory
    # When its parameters and every module that imports it are read
    params = list(inspect.signature(boto_client.boto_client_for).parameters)
    # Then it takes what our replacement takes, and every module uses the one we replace
    assert params == ["region", "service", "state_credentials"]
    for module in _moto._interpreter_modules():
        assert module.boto_client_for is boto_client.boto_client_for


def test_enforcement_switches_on_and_off() -> None:
    from moto import settings
    from moto.awslambda.responses import LambdaResponse
    from moto.glue.responses import GlueResponse
    from moto.stepfunctions.responses import StepFunctionResponse

    # Given the keys of the local cloud's administrator
    keys = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_SESSION_TOKEN": "c"}
    # When IAM is enforced
    _moto.enforce_iam(keys)
    try:
        # Then nothing is free of authorization, Lambda and Step Functions name their resources, and
        # the interpreter uses our clients
        assert settings.INITIAL_NO_AUTH_ACTION_COUNT == 0
        assert hasattr(LambdaResponse, "_determine_resource")
        assert hasattr(StepFunctionResponse, "_determine_resource")
        authorize = "_authenticate_and_authorize_normal_action"
        assert vars(GlueResponse)[authorize] is _moto_iam._glue_authorize
        assert all(
            m.boto_client_for is _moto._boto_client_for for m in _moto._interpreter_modules()
        )
    finally:
        _moto.relax_iam()
    # And once relaxed, every action is free again, Glue's checked as moto checks it
    assert float("inf") == settings.INITIAL_NO_AUTH_ACTION_COUNT
    assert authorize not in vars(GlueResponse)


def test_conditional_puts_are_atomic_with_one_another() -> None:
    import threading

    # Given the local cloud's moto, and 12 writers each doing 25 compare-and-swap increments
    server, s3 = served_s3()
    try:
        s3.create_bucket(Bucket="cas")
        s3.put_object(Bucket="cas", Key="n", Body=b"0")

        def writer() -> None:
            for _ in range(25):
                while True:
                    got = s3.get_object(Bucket="cas", Key="n")
                    value = int(got["Body"].read()) + 1
                    try:
                        s3.put_object(
                            Bucket="cas", Key="n", Body=str(value).encode(), IfMatch=got["ETag"]
                        )
                        break
                    except s3.exceptions.ClientError:
                        continue

        threads = [threading.Thread(target=writer) for _ in range(12)]
        # When each writer runs at once
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Then no increment was lost
        assert s3.get_object(Bucket="cas", Key="n")["Body"].read() == b"300"
    finally:
        _moto.stop_server(server)


def test_the_dispatcher_remembers_each_hosts_backend_and_answers_as_moto_does() -> None:
    # Given moto's dispatcher, with the backend per host remembered
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    params = list(inspect.signature(_moto._original_backend_for_host).parameters)
    assert params == ["self", "host"]
    _moto.remember_backends()
    app = DomainDispatcherApplication.__new__(DomainDispatcherApplication)
    app.backend_url_patterns = DomainDispatcherApplication(lambda _: None).backend_url_patterns  # type: ignore[arg-type,return-value]
    hosts = ["s3.us-east-1.amazonaws.com", "states.us-east-1.amazonaws.com", "moto_api", None]
    # When each host is looked up twice
    found = [(app.get_backend_for_host(h), app.get_backend_for_host(h)) for h in hosts]
    # Then the answers are moto's own, the same both times
    assert found == [(_moto._original_backend_for_host(app, h),) * 2 for h in hosts]
    assert [f[0] for f in found] == ["s3", "stepfunctions", "moto_api", None]


def test_the_server_counts_its_requests_and_stops() -> None:
    # Given the local cloud's moto server, counting requests
    _moto.enable_execution()
    _moto.reset_requests()
    server, s3 = served_s3("counted")
    # When a client makes two requests and the server stops
    s3.create_bucket(Bucket="counted")
    s3.head_bucket(Bucket="counted")
    _moto.stop_server(server)
    # Then each request was counted under its signer, and the server's thread has ended
    assert _moto.requests_counted() == {("counted", "s3", "PUT"): 1, ("counted", "s3", "HEAD"): 1}
    assert not server._thread.is_alive()
    _moto.reset_requests()


def test_the_stored_objects_are_those_a_listing_shows() -> None:
    # Given a versioned bucket where one key was overwritten and another deleted
    server, s3 = served_s3()
    try:
        s3.create_bucket(Bucket="stored")
        s3.put_bucket_versioning(Bucket="stored", VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket="stored", Key="day=1/a.parquet", Body=b"first")
        s3.put_object(Bucket="stored", Key="day=1/a.parquet", Body=b"second")
        s3.put_object(Bucket="stored", Key="day=2/b.parquet", Body=b"gone")
        s3.delete_object(Bucket="stored", Key="day=2/b.parquet")
        listed = s3.list_objects_v2(Bucket="stored")["Contents"]
        # When the objects are read in place
        stored = dict(_moto.stored_objects("123456789012", "stored"))
        # Then they are the listed keys with their current bodies
        assert stored == {"day=1/a.parquet": b"second"}
        assert [o["Key"] for o in listed] == list(stored)
    finally:
        _moto.stop_server(server)


def test_preloading_moto_leaves_boto3_as_it_was() -> None:
    import sys

    import boto3

    # Given boto3's own Session
    original = boto3.Session
    # When moto's heavier backends are loaded
    _moto.preload()
    # Then they are imported and boto3 makes its sessions as before
    assert {"moto.stepfunctions.parser.models", "moto.cloudformation.models"} <= set(sys.modules)
    assert boto3.Session is original
    assert boto3.Session() is not boto3.Session()


def test_the_interpreter_loads_without_ec2_and_batch_still_loads_after() -> None:
    import subprocess
    import sys

    # Given a fresh interpreter
    child = (
        "import sys\n"
        "from sluice.local import _moto\n"
        "_moto.preload(stack=False)\n"
        "loaded = [m in sys.modules for m in ('moto.stepfunctions.parser.models', 'moto.ec2',"
        " 'moto.batch', 'moto.cloudformation.models')]\n"
        "import moto.batch\n"
        "from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import"
        " state_task_service_batch as batch\n"
        "print(loaded, moto.batch.batch_backends is not None,"
        " batch.JobStatus is sys.modules['moto.batch.utils'].JobStatus)\n"
    )
    # When it loads the Step Functions interpreter alone, then imports moto.batch
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    # Then the interpreter came without EC2, Batch's models or CloudFormation, and Batch's
    # package loads whole afterwards, sharing the job statuses the interpreter holds
    assert out.stdout.split("\n")[0] == "[True, False, False, False] True True"


def test_one_connection_carries_many_requests_each_answered_whole() -> None:
    import logging

    from botocore.exceptions import ClientError

    # Given the local cloud's server and a client that opens connections as S3 clients do
    server, s3 = served_s3()
    opened: list[str] = []

    class Opened(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "new HTTP connection" in record.getMessage():
                opened.append(record.getMessage())

    pool_log = logging.getLogger("urllib3.connectionpool")
    handler, level = Opened(), pool_log.level
    pool_log.addHandler(handler)
    pool_log.setLevel(logging.DEBUG)
    try:
        s3.create_bucket(Bucket="kept")
        opened.clear()
        # When it sends, one after another: PUTs with bodies, a conditional PUT that is refused
        # (412, its body never stored), GETs, one of a missing key
        for i in range(3):
            s3.put_object(Bucket="kept", Key=f"k{i}", Body=f"body-{i}".encode() * (i + 1))
        with pytest.raises(ClientError) as refused:
            s3.put_object(Bucket="kept", Key="k0", Body=b"x" * 70_000, IfNoneMatch="*")
        answers: list[Any] = [refused.value.response["Error"]["Code"]]
        for key in ("k0", "k1", "k2"):
            answers.append(s3.get_object(Bucket="kept", Key=key)["Body"].read())
        with pytest.raises(ClientError) as missing:
            s3.get_object(Bucket="kept", Key="missing")
        answers.append(missing.value.response["Error"]["Code"])
    finally:
        pool_log.removeHandler(handler)
        pool_log.setLevel(level)
        _moto.stop_server(server)
    # Then every answer belongs to its own request, and all nine went over one connection
    assert answers == [
        "PreconditionFailed",
        b"body-0",
        b"body-1body-1",
        b"body-2body-2body-2",
        "NoSuchKey",
    ]
    assert len(opened) == 0


def test_a_client_that_asks_to_close_gets_its_connection_closed() -> None:
    import http.client

    # Given the local cloud's server
    server, _ = served_s3()
    try:
        host, port = server.get_host_and_port()
        connection = http.client.HTTPConnection(host, port)
        # When a request says `Connection: close`
        connection.request("GET", "/", headers={"Connection": "close"})
        answer = connection.getresponse()
        answer.read()
        # Then the server closes it, as asked
        assert (answer.getheader("Connection"), answer.will_close) == ("close", True)
    finally:
        _moto.stop_server(server)


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("HEAD", "/raw/transactions/a.csv", "s3:GetObject"),
        ("GET", "/raw/transactions/a.csv", "s3:GetObject"),
        ("GET", "/raw/transactions/a.csv?versionId=v1", "s3:GetObjectVersion"),
        ("GET", "/raw?list-type=2&prefix=t%2F", "s3:ListBucket"),
        ("HEAD", "/raw", "s3:ListBucket"),
        ("POST", "/trusted/t/a.parquet?uploads", "s3:PutObject"),
        ("PUT", "/trusted/t/a.parquet?partNumber=1&uploadId=u", "s3:PutObject"),
        ("POST", "/trusted/t/a.parquet?uploadId=u", "s3:PutObject"),
        ("DELETE", "/trusted/t/a.parquet?uploadId=u", "s3:AbortMultipartUpload"),
        ("DELETE", "/raw/t/a.csv?versionId=v1", "s3:DeleteObjectVersion"),
        ("GET", "/raw/t/a.csv?tagging", "s3:GetObjectTagging"),
        ("HEAD", "/raw/t/a.csv?versionId=v1", "s3:GetObjectVersion"),
    ],
)
def test_s3_requests_are_authorized_as_the_iam_actions_aws_checks(
    method: str, path: str, action: str
) -> None:
    # Given an S3 request as moto's IAM check sees it (moto 5.2.6 names the API operation,
    # `s3:HeadObject`, `s3:CreateMultipartUpload`, which no policy grants)
    # When the local cloud names its IAM action
    named = _moto_iam._s3_action(method, path, "s3:AsMotoNamedIt")
    # Then it is the action AWS authorizes the request as (moto's own table of them)
    assert named == action


@pytest.mark.parametrize(
    ("method", "path", "asked", "action"),
    [
        ("POST", "/raw?delete", "s3:DeleteObjects", "s3:DeleteObject"),
        ("GET", "/", "s3:ListAllMyBuckets", "s3:ListAllMyBuckets"),
    ],
)
def test_an_s3_request_moto_has_no_action_for_is_named_as_iam_names_it(
    method: str, path: str, asked: str, action: str
) -> None:
    # Given a request moto's table does not name (DeleteObjects: a POST to a bucket; a listing
    # of the buckets)
    # When the local cloud names its IAM action
    # Then it is the action IAM checks (DeleteObjects: s3:DeleteObject for each key)
    assert _moto_iam._s3_action(method, path, asked) == action


def test_updating_a_table_goes_through_the_version_check() -> None:
    from moto.glue.models import FakeTable
    from moto.glue.responses import GlueResponse

    # Given moto's UpdateTable, which ignores VersionId, and its tables' version numbers
    # Then it is a response method, and a table's versions are numbered by `_current_version`,
    # as GetTable reports them
    assert _moto._original_update_table.__name__ == "update_table"
    assert "self._current_version" in inspect.getsource(FakeTable.update)
    assert '"VersionId": str(version)' in inspect.getsource(FakeTable.as_dict)
    # When the local cloud's moto is set up to execute
    _moto.enable_execution()
    # Then Glue's UpdateTable is the one that honours VersionId
    assert GlueResponse.update_table is _moto._update_table


def test_glue_requests_are_authorized_where_we_name_their_resources() -> None:
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.responses import BaseResponse
    from moto.glue.responses import GlueResponse

    # Given moto's base response and Glue's
    # When the places the local cloud relies on are read
    # Then moto authorizes each request through the one method Glue's response replaces, with
    # the signature we call it with, and Glue's response names no resource of its own
    assert "self._authenticate_and_authorize_normal_action(resource)" in inspect.getsource(
        BaseResponse.call_action
    )
    params = inspect.signature(ActionAuthenticatorMixin._authenticate_and_authorize_normal_action)
    assert list(params.parameters) == ["self", "resource"]
    assert _moto_iam._authorize_normal_action is (
        ActionAuthenticatorMixin._authenticate_and_authorize_normal_action
    )
    assert "_determine_resource" not in vars(GlueResponse)


def test_a_task_token_is_found_in_its_executions_callback_pool() -> None:
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackPoolManager
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    # Given the Step Functions interpreter's backend, its executions and their callback pools
    # When the places the local cloud reads a task token's state machine from are read
    # Then the backend still finds a token in its state machines' executions' callback pools,
    # each execution keeping the worker that holds its pool
    assert "self.exec_worker" in inspect.getsource(Execution.__init__)
    assert "exec_worker.env.callback_pool_manager" in inspect.getsource(
        StepFunctionsParserBackend.send_task_success
    )
    executions = inspect.getsource(StepFunctionsParserBackend._get_executions)
    assert "for sm in self.state_machines:" in executions
    assert "sm.executions" in executions
    assert list(inspect.signature(CallbackPoolManager.get).parameters) == ["self", "callback_id"]


class GlueRequest:
    """What `_glue_resources` reads of a Glue request: its action and parameters."""

    region = "us-east-1"
    current_account = "123456789012"

    def __init__(self, action: str, **params: Any) -> None:
        self.action, self.params = action, params

    def _get_action(self) -> str:
        return self.action

    def _get_param(self, name: str) -> Any:
        return self.params.get(name)


GLUE = "arn:aws:glue:us-east-1:123456789012"


@pytest.mark.parametrize(
    ("request_", "resources"),
    [
        (
            GlueRequest("CreateDatabase", DatabaseInput={"Name": "lake"}),
            ["catalog", "database/lake"],
        ),
        (GlueRequest("GetDatabase", Name="lake"), ["catalog", "database/lake"]),
        (GlueRequest("GetDatabases"), ["catalog", "database/*"]),
        (
            GlueRequest("DeleteDatabase", Name="lake"),
            ["catalog", "database/lake", "table/lake/*", "userDefinedFunction/lake/*"],
        ),
        (
            GlueRequest("CreateTable", DatabaseName="lake", TableInput={"Name": "t"}),
            ["catalog", "database/lake", "table/lake/t"],
        ),
        (
            GlueRequest("UpdateTable", DatabaseName="lake", TableInput={"Name": "t"}),
            ["catalog", "database/lake", "table/lake/t"],
        ),
        (
            GlueRequest("GetTable", DatabaseName="lake", Name="t"),
            ["catalog", "database/lake", "table/lake/t"],
        ),
        (
            GlueRequest("DeleteTable", DatabaseName="lake", Name="t"),
            ["catalog", "database/lake", "table/lake/t"],
        ),
        (
            GlueRequest("GetTables", DatabaseName="lake"),
            ["catalog", "database/lake", "table/lake/*"],
        ),
        (
            GlueRequest("BatchDeleteTable", DatabaseName="lake", TablesToDelete=["a", "b"]),
            ["catalog", "database/lake", "table/lake/a", "table/lake/b"],
        ),
        (
            GlueRequest("GetPartitions", DatabaseName="lake", TableName="t"),
            ["catalog", "database/lake", "table/lake/t"],
        ),
    ],
)
def test_glue_requests_are_authorized_against_each_resource_glue_checks(
    request_: GlueRequest, resources: list[str]
) -> None:
    # Given a Glue request, When the local cloud names the resources it acts on
    # Then they are those Glue authorizes it against: the catalog, the database, the tables
    assert _moto_iam._glue_resources(request_) == [f"{GLUE}:{r}" for r in resources]


@pytest.mark.parametrize(
    "request_",
    [GlueRequest("GetJob", JobName="j"), GlueRequest("GetTable", DatabaseName="lake")],
)
def test_a_glue_request_we_do_not_name_is_checked_against_everything(
    request_: GlueRequest,
) -> None:
    # Given a request outside the catalog, or one missing its table's name
    # When the local cloud names its resources, Then it is `*`, as moto checked it
    assert _moto_iam._glue_resources(request_) == ["*"]

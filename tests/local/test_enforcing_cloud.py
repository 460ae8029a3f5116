"""The local cloud refuses what AWS refuses: calls a role does not grant, and functions past
their memory, timeout or `/tmp`. Each failure reaches Step Functions with the error Lambda
itself reports, is caught as the definition says, and leaves a dead letter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sluice.aws import ObjectStore, RangedReader, StreamingUpload
from sluice.environments import StageSettings
from sluice.formats import LIMIT_FORMATS
from sluice.local import LocalCloud
from sluice.local.cloud import ACCOUNT, REGION
from sluice.report import build_report, execution_history
from tests.support import assert_unknown_keys_refused, eventually

CSV = "id,name,amount,date,category\n1,A,150.50,2024-01-15,Sales\n2,B,75.25,2024-01-16,Ops\n"
# Small limits, so a test reaches them quickly; the rest as dev deploys them.
LIMITS = {
    "validate": StageSettings(memory_mb=512, timeout_seconds=6, ephemeral_storage_mb=512),
    "trusted": StageSettings(memory_mb=384, timeout_seconds=60, ephemeral_storage_mb=512),
}


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    # Sized too small on purpose: the file limits let these files in, so the functions meet
    # their memory, timeout and /tmp instead of refusing the files up front.
    with LocalCloud(stages=LIMITS, file_limits=dict.fromkeys(LIMIT_FORMATS, 10**9)) as running:
        running.runtime.add_worker_fault("tests.faults:grow_memory")
        running.runtime.add_worker_fault("tests.faults:hang")
        running.runtime.add_worker_fault("tests.faults:fill_tmp")
        yield running


def run(cloud: LocalCloud, tmp_path: Path, name: str, dataset: str) -> dict[str, Any]:
    path = tmp_path / name
    path.write_text(CSV, encoding="utf-8")
    described = cloud.wait(cloud.upload(path, dataset), timeout=120)
    report = build_report(
        described, execution_history(cloud.client("stepfunctions"), described["executionArn"])
    )
    return {"description": described, "report": report}


def letter_of(cloud: LocalCloud, execution: str, remove: bool = False) -> dict[str, Any]:
    """The failure queue's message naming `execution` (with `remove`, deleted once read)."""
    sqs = cloud.client("sqs")
    url = cloud.queue_urls["failures"]

    def received() -> dict[str, Any] | None:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        for message in got.get("Messages", []):
            body = json.loads(message["Body"])
            if body["execution_name"] == execution:
                if remove:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                return dict(body)
        return None

    letter: dict[str, Any] = eventually(received, 10, f"a dead letter for {execution}")
    return letter


def failed(outcome: dict[str, Any]) -> tuple[str, str | None, list[tuple[str, str, int]]]:
    report = outcome["report"]
    return (
        outcome["description"]["status"],
        report.failed_stage,
        [(s.name, s.status, s.attempts) for s in report.stages],
    )


def test_a_dataset_without_a_contract_succeeds_on_the_enforcing_cloud(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    # Given a dataset no contract describes, when its first file runs
    outcome = run(cloud, tmp_path, "readings.csv", "readings")
    # Then Validate may keep the contract it inferred, and every stage succeeds
    assert outcome["description"]["status"] == "SUCCEEDED"
    kept = (
        cloud.client("s3")
        .get_object(Bucket="trusted", Key="readings/_inferred_contract.yaml")["Body"]
        .read()
    )
    assert b"dataset: readings" in kept
    # and a second file of the dataset reads it back
    assert run(cloud, tmp_path, "readings_2.csv", "readings")["description"]["status"] == (
        "SUCCEEDED"
    )


def test_a_role_missing_one_grant_fails_with_access_denied_and_passes_once_restored(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    iam = cloud.client("iam")
    role = "sluice-validate-role"
    granted = cloud.role_policies()["validate"]
    staging = "arn:aws:s3:::trusted/_staging/*"
    without = {
        **granted,
        "Statement": [s for s in granted["Statement"] if s["Resource"] != staging],
    }
    assert len(without["Statement"]) == len(granted["Statement"]) - 1
    # Given Validate's role without its grant to stage Parquet
    iam.put_role_policy(RoleName=role, PolicyName="grants", PolicyDocument=json.dumps(without))
    try:
        outcome = run(cloud, tmp_path, "denied.csv", "denied")
    finally:
        iam.put_role_policy(RoleName=role, PolicyName="grants", PolicyDocument=json.dumps(granted))
    # Then the run fails at Validate with AccessDenied, as on AWS, and leaves a dead letter
    assert failed(outcome)[:2] == ("FAILED", "validate")
    # (a small staged file is one PutObject, refused exactly as in the deployed function)
    assert outcome["report"].error == "AccessDenied"
    assert "(AccessDenied) when calling the PutObject operation" in outcome["report"].cause
    letter = letter_of(cloud, outcome["description"]["name"])
    assert (letter["stage"], letter["error"]) == ("validate", "AccessDenied")
    # When the grant is back, the same file passes
    assert run(cloud, tmp_path, "denied_again.csv", "denied")["description"]["status"] == (
        "SUCCEEDED"
    )


def test_a_function_past_its_memory_fails_with_runtime_out_of_memory(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    # Given a file named so that Trusted keeps allocating memory (the cloud's fault)
    # When it runs
    outcome = run(cloud, tmp_path, "hog.csv", "hog")
    # Then Trusted failed past its memory with Runtime.OutOfMemory, its letter saying it was killed
    assert failed(outcome) == (
        "FAILED",
        "trusted",
        # (run once more after the dead letter, so a redrive would resume at the stage)
        [("validate", "SUCCEEDED", 1), ("trusted", "FAILED", 2), ("delivery", "NOT_RUN", 0)],
    )
    assert outcome["report"].error == "Runtime.OutOfMemory"
    letter = letter_of(cloud, outcome["description"]["name"])
    assert (letter["stage"], letter["error"]) == ("trusted", "Runtime.OutOfMemory")
    assert "Runtime exited with error: signal: killed" in letter["cause"]


def test_a_function_past_its_timeout_fails_with_sandbox_timedout(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    # Given a file named so that Validate never returns (the cloud's fault)
    # When it runs
    outcome = run(cloud, tmp_path, "hang.csv", "hang")
    # Then Validate failed past its timeout with Sandbox.Timedout, its letter saying after how long
    assert failed(outcome) == (
        "FAILED",
        "validate",
        [("validate", "FAILED", 2), ("trusted", "NOT_RUN", 0), ("delivery", "NOT_RUN", 0)],
    )
    assert outcome["report"].error == "Sandbox.Timedout"
    letter = letter_of(cloud, outcome["description"]["name"])
    assert (letter["stage"], letter["error"]) == ("validate", "Sandbox.Timedout")
    assert "Task timed out after 6.00 seconds" in letter["cause"]


def test_a_function_filling_its_tmp_fails_the_write(cloud: LocalCloud, tmp_path: Path) -> None:
    if cloud.runtime.isolation == "none":
        pytest.skip("this machine gives no process a mount namespace")
    # Given a file named so that Trusted writes to /tmp until it is full (the cloud's fault)
    # When it runs
    outcome = run(cloud, tmp_path, "spill.csv", "spill")
    # Then Trusted failed with the OSError of a full disk
    assert failed(outcome)[:2] == ("FAILED", "trusted")
    assert outcome["report"].error == "OSError"
    letter = letter_of(cloud, outcome["description"]["name"])
    assert (letter["stage"], letter["error"]) == ("trusted", "OSError")
    assert "[Errno 28] No space left on device" in letter["cause"]


def test_clients_without_the_administrators_keys_are_refused(cloud: LocalCloud) -> None:
    # Given a client signed with keys that are not the administrator's, When it lists RAW,
    # Then it is refused as an unknown key
    assert_unknown_keys_refused(cloud.endpoint_url)
    # while the administrator may
    assert (
        cloud.client("s3").list_objects_v2(Bucket="raw")["ResponseMetadata"]["HTTPStatusCode"]
        == 200
    )


def test_each_function_may_do_only_what_its_role_grants(cloud: LocalCloud) -> None:
    # Given the validate function's own credentials
    keys = cloud.role_credentials["validate"]
    s3 = cloud.client("s3", keys)
    lam = cloud.client("lambda", keys)
    # Then it may stage Parquet, but not write DELIVERY nor invoke another function
    s3.put_object(Bucket="trusted", Key="_staging/probe.parquet", Body=b"x")
    with pytest.raises(ClientError) as delivery:
        s3.put_object(Bucket="delivery", Key="probe", Body=b"x")
    with pytest.raises(ClientError) as invoke:
        lam.invoke(FunctionName="sluice-trusted", Payload=b"{}")
    assert delivery.value.response["Error"]["Code"] == "AccessDenied"
    assert invoke.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "<Code>AccessDenied</Code>" in str(invoke.value)
    assert "not authorized to perform: lambda:InvokeFunction" in str(invoke.value)


def test_delivery_may_stream_detail_files_in_parts_and_abort_them(cloud: LocalCloud) -> None:
    # Given the delivery function's own credentials, and a TRUSTED object
    cloud.client("s3").put_object(Bucket="trusted", Key="probe/day.parquet", Body=b"0123456789")
    store = ObjectStore(cloud.client("s3", cloud.role_credentials["delivery"]))
    body = bytes(range(256)) * (11 * 2**12)  # 11 MiB

    # When it reads a range, streams a DELIVERY object in 5 MiB parts and aborts another
    span = RangedReader(store, "trusted", "probe/day.parquet")
    span.seek(3)
    with StreamingUpload(store, "delivery", "probe/big", "x", part_bytes=5 * 2**20) as upload:
        upload.write(body)
        upload.complete()
    with (
        pytest.raises(RuntimeError),
        StreamingUpload(store, "delivery", "probe/aborted", "x", part_bytes=5 * 2**20) as failed,
    ):
        failed.write(body[: 6 * 2**20])
        raise RuntimeError("the DETAIL file could not be written")

    # Then the range and the object are there, and the aborted upload left nothing
    admin = cloud.client("s3")
    assert span.read(4) == b"3456"
    assert admin.get_object(Bucket="delivery", Key="probe/big")["Body"].read() == body
    assert admin.list_multipart_uploads(Bucket="delivery").get("Uploads", []) == []
    assert "probe/aborted" not in [
        o["Key"] for o in admin.list_objects_v2(Bucket="delivery").get("Contents", [])
    ]
    # and Trusted, which never writes DELIVERY, may not even start an upload there
    with pytest.raises(ClientError) as refused:
        ObjectStore(cloud.client("s3", cloud.role_credentials["trusted"])).start_upload(
            "delivery", "probe/x", "x"
        )
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_each_local_role_holds_exactly_the_grant_definition(cloud: LocalCloud) -> None:
    iam = cloud.client("iam")
    lam = cloud.client("lambda")
    expected = cloud.role_policies()
    # Then each role has one policy, the definition rendered with the local ARNs
    for who, document in expected.items():
        role = f"sluice-{who}-role"
        assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["grants"]
        held = iam.get_role_policy(RoleName=role, PolicyName="grants")["PolicyDocument"]
        assert held == document
    # and each function runs as its own role, the state machine as the pipeline's
    roles = {f["FunctionName"]: f["Role"] for f in lam.list_functions()["Functions"]}
    assert {name: role.rsplit("/", 1)[1] for name, role in roles.items()} == {
        f"sluice-{stage}": f"sluice-{stage}-role"
        for stage in ("starter", "validate", "trusted", "delivery")
    }
    machine = cloud.client("stepfunctions").describe_state_machine(
        stateMachineArn=cloud.state_machine_arn
    )
    assert machine["roleArn"].endswith(":role/sluice-pipeline-role")


def test_the_state_machine_sends_dead_letters_as_its_own_role(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    iam = cloud.client("iam")
    role = "sluice-pipeline-role"
    granted = cloud.role_policies()["pipeline"]
    without = {
        **granted,
        "Statement": [s for s in granted["Statement"] if s["Action"] != "sqs:SendMessage"],
    }
    assert len(without["Statement"]) == len(granted["Statement"]) - 1

    def broken(stage: str, event: dict[str, Any]) -> None:
        if stage == "validate" and "unsent" in event["source"]["key"]:
            raise RuntimeError("broken on purpose")

    # Given a stage that fails, and the state machine's role without sqs:SendMessage
    cloud.runtime.add_fault(broken)
    iam.put_role_policy(RoleName=role, PolicyName="grants", PolicyDocument=json.dumps(without))
    try:
        outcome = run(cloud, tmp_path, "unsent.csv", "unsent")
    finally:
        iam.put_role_policy(RoleName=role, PolicyName="grants", PolicyDocument=json.dumps(granted))
        cloud.runtime.clear_faults()
        cloud.runtime.add_worker_fault("tests.faults:grow_memory")
        cloud.runtime.add_worker_fault("tests.faults:hang")
        cloud.runtime.add_worker_fault("tests.faults:fill_tmp")
    # Then the dead letter is refused, as AWS would refuse it, and the execution fails there
    described = outcome["description"]
    history = cloud.client("stepfunctions").get_execution_history(
        executionArn=described["executionArn"]
    )["events"]
    refused = [e["taskFailedEventDetails"] for e in history if e["type"] == "TaskFailed"][-1]
    assert described["status"] == "FAILED"
    assert (refused["resourceType"], refused["resource"]) == ("sqs", "sendMessage")
    assert (
        "assumed-role/sluice-pipeline-role/pipeline-local is not authorized to perform: "
        "sqs:SendMessage" in refused["cause"]
    )


def test_the_cloud_counts_the_requests_each_role_makes(cloud: LocalCloud) -> None:
    # Given the counts reset
    cloud.reset_requests()
    admin = cloud.client("s3")
    validate = cloud.client("s3", cloud.role_credentials["validate"])
    # When the administrator puts two objects and gets one, and Validate heads one (contracts,
    # which start no execution: no function's requests join the count meanwhile)
    admin.put_object(Bucket=cloud.buckets["raw"], Key="_contracts/a.yaml", Body=b"a")
    admin.put_object(Bucket=cloud.buckets["raw"], Key="_contracts/b.yaml", Body=b"b")
    admin.get_object(Bucket=cloud.buckets["raw"], Key="_contracts/a.yaml")["Body"].read()
    validate.head_object(Bucket=cloud.buckets["raw"], Key="_contracts/a.yaml")
    # Then each signer's requests are counted by service and method (the pump polls meanwhile)
    counted = cloud.requests_by_role()
    assert counted["admin"] == {"s3 PUT": 2, "s3 GET": 1}
    assert counted["validate"] == {"s3 HEAD": 1}
    assert set(counted) <= {"admin", "validate", "starter"}


# -- the Glue catalog -----------------------------------------------------------------------------

GLUE = f"arn:aws:glue:{REGION}:{ACCOUNT}"


def catalog_table(cloud: LocalCloud, database: str, *tables: str) -> Any:
    """The administrator's Glue client, with `database` holding `tables`."""
    glue = cloud.client("glue")
    glue.create_database(DatabaseInput={"Name": database})
    for table in tables:
        glue.create_table(DatabaseName=database, TableInput={"Name": table})
    return glue


def granted(cloud: LocalCloud, service: str, role: str, action: Any, resource: Any) -> Any:
    """A `service` client signed as a new role allowed `action` on `resource`, nothing more."""
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    return cloud.client(service, cloud.role_granting(role, [statement]))


def refusal(call: Any) -> str:
    """What IAM said of a refused call (moto answers it in XML even for a JSON service, as it
    does Lambda's, Step Functions' and SQS's: botocore reads its code as "403")."""
    with pytest.raises(ClientError) as refused:
        call()
    error = refused.value.response["Error"]
    assert (error["Code"], refused.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "403",
        403,
    )
    assert "<Code>AccessDenied</Code>" in error["Message"]
    return str(error["Message"]).split("not authorized to perform: ", 1)[1].split("<", 1)[0]


def error_code(call: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    return str(refused.value.response["Error"]["Code"])


def test_a_table_update_from_a_stale_version_is_refused(cloud: LocalCloud) -> None:
    # Given a table and the version it is at
    glue = catalog_table(cloud, "versions", "events")
    version = glue.get_table(DatabaseName="versions", Name="events")["Table"]["VersionId"]

    def update(**version_id: str) -> Any:
        return glue.update_table(
            DatabaseName="versions", TableInput={"Name": "events", "Description": "x"}, **version_id
        )

    # When it is updated from that version, Then it is; and again from it, Then that is refused
    update(VersionId=version)
    assert error_code(lambda: update(VersionId=version)) == "ConcurrentModificationException"
    # while an update that names no version is unconditional, as on AWS
    update()
    # (the table as created and the two updates that passed: the refused one stored nothing)
    versions = glue.get_table_versions(DatabaseName="versions", TableName="events")
    assert len(versions["TableVersions"]) == 3


def race_from(writers: list[Any], database: str, version: str, round_: int) -> list[str]:
    """Each writer updates the table `events` from `version`, all at once: what each was told."""
    import threading

    start = threading.Barrier(len(writers))
    results: list[str] = []

    def commit(client: Any) -> None:
        start.wait()
        try:
            client.update_table(
                DatabaseName=database,
                TableInput={"Name": "events", "Parameters": {"round": str(round_)}},
                VersionId=version,
            )
            results.append("committed")
        except ClientError as exc:
            results.append(exc.response["Error"]["Code"])

    threads = [threading.Thread(target=commit, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(results)


def test_of_updates_racing_from_one_version_exactly_one_wins(cloud: LocalCloud) -> None:
    # Given a table, and four writers that each read its version, then update from it at once
    glue = catalog_table(cloud, "racing", "events")
    writers = [cloud.client("glue") for _ in range(4)]
    # When they race, ten times
    outcomes = [
        race_from(
            writers,
            "racing",
            glue.get_table(DatabaseName="racing", Name="events")["Table"]["VersionId"],
            round_,
        )
        for round_ in range(10)
    ]
    # Then each time exactly one committed and the others were told of the conflict
    assert outcomes == [["ConcurrentModificationException"] * 3 + ["committed"]] * 10


def test_a_role_granted_get_table_on_a_tables_arns_may_read_it_and_nothing_else(
    cloud: LocalCloud,
) -> None:
    # Given two tables, a role granted glue:GetTable on one's catalog, database and table ARNs,
    # and one granted it on the table's ARN alone (Glue also checks the catalog and database)
    catalog_table(cloud, "granted", "events", "other")
    scoped = [f"{GLUE}:catalog", f"{GLUE}:database/granted", f"{GLUE}:table/granted/events"]
    reader = granted(cloud, "glue", "glue-reader", "glue:GetTable", scoped)
    table_only = granted(cloud, "glue", "glue-table-only", "glue:GetTable", scoped[-1])
    # When each reads and updates the tables
    got = reader.get_table(DatabaseName="granted", Name="events")["Table"]["Name"]
    # Then the first may read that table only, and update none; the second may read nothing
    assert got == "events"
    assert refusal(lambda: reader.get_table(DatabaseName="granted", Name="other")) == (
        "glue:GetTable"
    )
    assert refusal(
        lambda: reader.update_table(DatabaseName="granted", TableInput={"Name": "events"})
    ) == ("glue:UpdateTable")
    assert refusal(lambda: table_only.get_table(DatabaseName="granted", Name="events")) == (
        "glue:GetTable"
    )


def test_a_role_granted_another_tables_arns_may_not_read_this_one(cloud: LocalCloud) -> None:
    # Given a role granted glue:GetTable and glue:GetTables on the ARNs of `other`
    catalog_table(cloud, "elsewhere", "events", "other")
    other = [f"{GLUE}:catalog", f"{GLUE}:database/elsewhere", f"{GLUE}:table/elsewhere/other"]
    reader = granted(cloud, "glue", "glue-other-reader", ["glue:GetTable", "glue:GetTables"], other)
    # When it reads `events`, or lists the database's tables (which needs every table's ARN)
    # Then it is refused both
    assert refusal(lambda: reader.get_table(DatabaseName="elsewhere", Name="events")) == (
        "glue:GetTable"
    )
    assert refusal(lambda: reader.get_tables(DatabaseName="elsewhere")) == "glue:GetTables"
    # while `other` it may read
    assert reader.get_table(DatabaseName="elsewhere", Name="other")["Table"]["Name"] == "other"


# -- task tokens ----------------------------------------------------------------------------------


def callback_machine(cloud: LocalCloud, name: str) -> str:
    """A state machine that sends its task token to the failure queue and waits for it."""
    definition = {
        "StartAt": "Wait",
        "States": {
            "Wait": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {
                    "QueueUrl": cloud.queue_urls["failures"],
                    "MessageBody": {
                        "execution_name.$": "$$.Execution.Name",
                        "token.$": "$$.Task.Token",
                    },
                },
                "TimeoutSeconds": 60,
                "HeartbeatSeconds": 30,
                "End": True,
            }
        },
    }
    created = cloud.client("stepfunctions").create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/sluice-pipeline-role",
    )
    return str(created["stateMachineArn"])


def waiting_task(cloud: LocalCloud, machine: str, name: str) -> tuple[str, str]:
    """(execution ARN, task token) of a new execution of `machine`, waiting on its task."""
    sfn = cloud.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=machine, name=name, input="{}")
    return str(execution["executionArn"]), str(letter_of(cloud, name, remove=True)["token"])


def test_a_role_granted_task_responses_on_a_state_machine_may_resume_its_tasks(
    cloud: LocalCloud,
) -> None:
    # Given a state machine waiting on a task token, and a role granted the task responses on
    # the state machine's ARN (what CDK's grantTaskResponse grants)
    machine = callback_machine(cloud, "callback-granted")
    responses = ["states:SendTaskSuccess", "states:SendTaskHeartbeat"]
    sender = granted(cloud, "stepfunctions", "task-responder", responses, machine)
    execution, token = waiting_task(cloud, machine, "granted-1")
    # When it sends a heartbeat and then the task's success
    sender.send_task_heartbeat(taskToken=token)
    sender.send_task_success(taskToken=token, output='{"committed": true}')
    # Then the execution resumes with that output
    sfn = cloud.client("stepfunctions")
    done = eventually(
        lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d,
        30,
        "the execution to end",
    )
    assert (done["status"], json.loads(done["output"])) == ("SUCCEEDED", {"committed": True})


def test_a_role_granted_task_responses_on_another_state_machine_may_not(
    cloud: LocalCloud,
) -> None:
    # Given a state machine waiting on a task token, and a role granted the task responses on
    # another state machine's ARN
    machine = callback_machine(cloud, "callback-waiting")
    other = callback_machine(cloud, "callback-other")
    responses = ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"]
    sender = granted(cloud, "stepfunctions", "other-responder", responses, other)
    execution, token = waiting_task(cloud, machine, "waiting-1")
    # When it answers the task, Then each answer is refused
    assert refusal(lambda: sender.send_task_heartbeat(taskToken=token)) == (
        "states:SendTaskHeartbeat"
    )
    assert refusal(lambda: sender.send_task_success(taskToken=token, output="{}")) == (
        "states:SendTaskSuccess"
    )
    assert refusal(lambda: sender.send_task_failure(taskToken=token, error="X")) == (
        "states:SendTaskFailure"
    )
    # and the execution still waits, for the administrator to end it
    sfn = cloud.client("stepfunctions")
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    sfn.send_task_failure(taskToken=token, error="Test.Refused")

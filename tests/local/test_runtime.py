"""The local Lambda service runs a function as Lambda does: its own process, its limits, its
errors (https://docs.aws.amazon.com/lambda/latest/dg/troubleshooting-invocation.html)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sluice.local.runtime import FunctionConfig, LambdaRuntime
from tests.support import eventually

# Each fault ends the invocation before the handler would call AWS.
EMPTY_BATCH: dict[str, object] = {"Records": []}
DUMMY_KEYS = {"AWS_ACCESS_KEY_ID": "none", "AWS_SECRET_ACCESS_KEY": "none"}


def runtime_with(concurrency: int = 1, **size: int) -> LambdaRuntime:
    config = FunctionConfig(
        name="sluice-starter",
        stage="starter",
        environment={"POWERTOOLS_SERVICE_NAME": "sluice-starter"},
        concurrency=concurrency,
        **size,
    )
    return LambdaRuntime(
        "123456789012", "us-east-1", "http://127.0.0.1:9", [config], lambda _: DUMMY_KEYS
    )


@pytest.fixture
def runtime() -> Iterator[LambdaRuntime]:
    running = runtime_with(memory_mb=256, timeout_seconds=2)
    yield running
    running.stop()


def tmp_counts(runtime: LambdaRuntime) -> list[str]:
    return [line for line in runtime.logs["sluice-starter"] if line.startswith("tmp files:")]


def test_a_warm_environment_keeps_its_tmp_and_a_new_one_starts_empty(
    runtime: LambdaRuntime,
) -> None:
    # Given a fault that leaves a file in /tmp and counts them
    runtime.add_worker_fault("tests.faults:count_tmp_then_grow")
    # When the function runs twice, then runs out of memory, then runs again
    for event in (EMPTY_BATCH, EMPTY_BATCH, {**EMPTY_BATCH, "grow": True}, EMPTY_BATCH):
        runtime.invoke("sluice-starter", event)
    # Then the warm environment kept its /tmp, and the one after the failure started empty
    assert tmp_counts(runtime) == ["tmp files: 1", "tmp files: 2", "tmp files: 3", "tmp files: 1"]
    assert [(i.error_type, i.cold_start) for i in runtime.invocations] == [
        ("Counted", True),
        ("Counted", False),
        ("Runtime.OutOfMemory", False),
        ("Counted", True),
    ]


def test_an_invocation_during_the_prewarm_waits_for_that_environment() -> None:
    # Given a function that may run two environments, warmed up with one
    runtime = runtime_with(concurrency=2, memory_mb=256, timeout_seconds=5)
    runtime.add_worker_fault("tests.faults:count_tmp_then_grow")
    try:
        runtime.prewarm()
        # When it is invoked while that environment is still loading its handler
        runtime.invoke("sluice-starter", EMPTY_BATCH)
        # Then the invocation ran in the warmed environment: no second one was started
        assert [(i.error_type, i.cold_start) for i in runtime.invocations] == [("Counted", False)]
        assert len(runtime.live) == 1
        assert runtime.answered == 1
        # And a wait for the next answer ends when the time is up, saying how many there were
        assert runtime.wait_for_answer(1, 0.01) == 1
    finally:
        runtime.stop()


def test_past_its_memory_an_invocation_is_ended_with_lambdas_error(
    runtime: LambdaRuntime,
) -> None:
    # Given a function that keeps growing its memory
    runtime.add_worker_fault("tests.faults:count_tmp_then_grow")
    # When it is invoked
    error, kind = runtime.invoke("sluice-starter", {**EMPTY_BATCH, "grow": True})
    # Then it is ended with Lambda's Runtime.OutOfMemory, killed by a signal
    assert kind == "Unhandled"
    assert error["errorType"] == "Runtime.OutOfMemory"
    assert error["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    (invocation,) = runtime.invocations
    assert invocation.error_type == "Runtime.OutOfMemory"
    # The environment was stopped once past its 256 MB (sampled every 10 ms), long before the
    # 8 GiB the fault would take.
    assert 256 <= invocation.max_memory_mb < 512


def test_past_its_timeout_an_invocation_is_killed_with_lambdas_error(
    runtime: LambdaRuntime,
) -> None:
    # Given a function that never returns
    runtime.add_worker_fault("tests.faults:hang_always")
    # When it is invoked
    error, kind = runtime.invoke("sluice-starter", EMPTY_BATCH)
    # Then it is killed with Lambda's Sandbox.Timedout, saying after how long
    assert (kind, error["errorType"]) == ("Unhandled", "Sandbox.Timedout")
    assert error["errorMessage"].endswith("Error: Task timed out after 2.00 seconds")


def test_a_full_tmp_fails_the_write_inside_the_function() -> None:
    # Given a runtime with 512 MB of /tmp, and a function that fills it
    runtime = runtime_with(ephemeral_storage_mb=512)
    if runtime.isolation == "none":
        runtime.stop()
        pytest.skip("this machine gives no process a mount namespace")
    try:
        # When it is invoked
        runtime.add_worker_fault("tests.faults:fill_tmp_always")
        error, kind = runtime.invoke("sluice-starter", EMPTY_BATCH)
    finally:
        runtime.stop()
    # Then the write fails inside the function, with the OSError of a full disk
    assert (kind, error["errorType"]) == ("Unhandled", "OSError")
    assert error["errorMessage"] == "[Errno 28] No space left on device"


def test_stopping_ends_busy_environments_too() -> None:
    import threading

    runtime = runtime_with(timeout_seconds=60)
    runtime.add_worker_fault("tests.faults:hang_always")
    # Given an invocation that would run for an hour
    answers: list[tuple[object, str | None]] = []
    busy = threading.Thread(
        target=lambda: answers.append(runtime.invoke("sluice-starter", EMPTY_BATCH))
    )
    busy.start()
    try:
        eventually(
            lambda: runtime.live and all(e.used for e in runtime.live), 15, "a busy environment"
        )
    finally:
        # When the runtime stops
        runtime.stop()
    busy.join(timeout=30)
    # Then the environment was ended and its invocation answered as an exit, not left running
    ((error, kind),) = answers
    assert kind == "Unhandled"
    assert isinstance(error, dict) and error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith("Runtime exited with error: signal: SIGKILL")
    assert runtime.live == set()


def test_a_function_imports_only_what_lambda_would_give_it() -> None:
    import importlib.util
    import subprocess
    import sys

    from sluice.local.runtime import function_modules

    # Given a function's process, confined to the layer's and the runtime's packages
    child = (
        "import sys\n"
        "from sluice.local.worker import LayerOnly\n"
        "sys.meta_path.insert(0, LayerOnly(frozenset(sys.argv[1].split(','))))\n"
        "import boto3, pyarrow, pyarrow.parquet, numpy, yaml, openpyxl, json, sluice.lake\n"
        "import pyarrow as pa\n"
        "pa.table({'a': [1]})\n"
        "for name in ('pandas', 'moto', 'duckdb'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ModuleNotFoundError as exc:\n"
        "        print(exc.name, 'refused' if 'layer' in str(exc) else str(exc))\n"
        "print('pandas' in sys.modules)\n"
    )
    # When it imports the layer's packages, the standard library and Sluice, and then packages
    # that only the development venv has
    out = subprocess.run(
        [sys.executable, "-c", child, ",".join(function_modules())],
        capture_output=True,
        text=True,
        check=True,
    )
    # Then the first all load (pyarrow carrying on without pandas), and each of the others is
    # refused as Lambda would refuse it (or simply missing, where this venv lacks it too)
    installed = {n: importlib.util.find_spec(n) is not None for n in ("pandas", "moto", "duckdb")}
    assert out.stdout.splitlines() == [
        f"{name} refused" if present else f"{name} No module named '{name}'"
        for name, present in installed.items()
    ] + ["False"]
    assert installed["moto"]  # the local cloud's own dependency: refused, not merely missing
    assert {"boto3", "botocore", "pyarrow", "numpy", "yaml", "openpyxl"} <= function_modules()
    assert "pandas" not in function_modules()

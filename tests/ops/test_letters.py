"""Failure letters and reruns through the CLI: a letter names its execution, stage, error,
cause and input; it stays until a rerun SUCCEEDED; `rerun` and `dlq redrive` wait for the
reruns they start and say how each ended."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.local import LocalCloud
from tests.ops.test_operations import HEADER, run_cli, wait_for

CSV = HEADER + "1,A,10,2024-01-15,Sales\n2,B,-5,2024-01-16,Sales\n"


@pytest.fixture
def cloud() -> Iterator[LocalCloud]:
    # A cloud of its own per test: `dlq redrive` acts on every letter in the DLQ.
    with LocalCloud() as running:
        yield running


def failing(stage: str, dataset: str) -> Any:
    def fault(at: str, event: dict[str, Any]) -> None:
        if at == stage and event.get("dataset") == dataset:
            raise OSError("No space left on device")

    return fault


def slow(stage: str, dataset: str, seconds: float = 2.0) -> Any:
    def fault(at: str, event: dict[str, Any]) -> None:
        if at == stage and event.get("dataset") == dataset:
            time.sleep(seconds)

    return fault


def failed_upload(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str], tmp_path: Path, dataset: str
) -> str:
    path = tmp_path / f"{dataset}_q1.csv"
    path.write_text(CSV, encoding="utf-8")
    endpoint = ["--endpoint-url", cloud.endpoint_url]
    _, (item,) = run_cli(capsys, "upload", str(path), "--dataset", dataset, "--json", *endpoint)
    assert wait_for(cloud, item["execution"]) == "FAILED"
    return str(item["execution"])


def status_now(cloud: LocalCloud, name: str) -> str:
    sfn = cloud.client("stepfunctions")
    return str(sfn.describe_execution(executionArn=cloud.execution_arn(name))["status"])


def letters(cloud: LocalCloud, capsys: pytest.CaptureFixture[str]) -> list[tuple[str, str]]:
    _, found = run_cli(
        capsys, "dlq", "list", "failures", "--json", "--endpoint-url", cloud.endpoint_url
    )
    return sorted((d["execution"], d["stage"]) for d in found)


def row(text: str, start: str) -> str:
    (line,) = [line for line in text.splitlines() if line.startswith(start)]
    return line


def test_a_letter_stays_while_its_rerun_fails_again_and_goes_once_one_succeeds(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    endpoint = ["--endpoint-url", cloud.endpoint_url]
    # Given Delivery failing for one file, whose execution has failed
    cloud.runtime.add_fault(failing("delivery", "letters"))
    name = failed_upload(cloud, capsys, tmp_path, "letters")

    # Then the failure DLQ holds one letter naming the execution, stage, error, cause and input
    _, (peeked,) = run_cli(capsys, "dlq", "list", "failures", "--peek", "--json", *endpoint)
    body = json.loads(peeked["body"])
    described = cloud.client("stepfunctions").describe_execution(
        executionArn=cloud.execution_arn(name)
    )
    cause = json.loads(body.pop("cause"))
    assert body == {
        "execution": described["executionArn"],
        "execution_name": name,
        "stage": "delivery",
        "error": "OSError",
        "input": json.loads(described["input"]),
    }
    assert (cause["errorType"], cause["errorMessage"]) == ("OSError", "No space left on device")
    assert (peeked["stage"], peeked["reason"]) == ("delivery", "OSError: No space left on device")

    # When the failure DLQ is redriven and the rerun fails again
    code, redriven = run_cli(
        capsys, "dlq", "redrive", "failures", "--json", "--wait", "60", *endpoint
    )
    # Then the command returned once the rerun had failed, and kept the letter, saying so
    assert code == 1
    assert [(r["what"], r["done"], r["error"], r["outcome"]) for r in redriven] == [
        (f"rerun {name} → {name}-r1", False, None, "FAILED")
    ]
    assert status_now(cloud, f"{name}-r1") == "FAILED"
    # and the letter is visible again, next to the one the failed rerun left
    assert letters(cloud, capsys) == [(name, "delivery"), (f"{name}-r1", "delivery")]

    # When it is redriven again, as a table, and the rerun fails again
    code, text = run_cli(capsys, "dlq", "redrive", "failures", "--wait", "60", *endpoint)
    # Then both letters of the execution share the one rerun, and both are kept
    assert code == 1
    for message in redriven:  # the first letter's row, by its message id
        assert row(text, message["id"]).endswith("kept: the rerun FAILED again")
    assert text.count("kept: the rerun FAILED again") == 2
    assert f"→ {name}-r2" in text and "(2 messages)" in text
    assert len(letters(cloud, capsys)) == 3

    # When the cause is fixed and the DLQ redriven
    cloud.runtime.clear_faults()
    code, redriven = run_cli(
        capsys, "dlq", "redrive", "failures", "--json", "--wait", "60", *endpoint
    )
    # Then one rerun SUCCEEDED, before the command returned, and every letter is gone
    assert code == 0
    assert (
        sorted((r["what"].split(" → ")[1], r["done"], r["outcome"]) for r in redriven)
        == [(f"{name}-r3", True, "SUCCEEDED")] * 3
    )
    assert status_now(cloud, f"{name}-r3") == "SUCCEEDED"
    assert letters(cloud, capsys) == []


def test_rerun_waits_for_its_reruns_and_says_how_each_ended(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    endpoint = ["--endpoint-url", cloud.endpoint_url]
    # Given Trusted failing for one file, whose execution has failed
    cloud.runtime.add_fault(failing("trusted", "again"))
    name = failed_upload(cloud, capsys, tmp_path, "again")

    # When it is rerun and the rerun fails again
    code, plans = run_cli(capsys, "rerun", name, "--json", "--wait", "60", *endpoint)
    # Then the command returned after the rerun FAILED, with exit code 1
    assert code == 1
    assert [(p["action"], p["new_execution"], p["done"], p["outcome"]) for p in plans] == [
        ("new", f"{name}-r1", True, "FAILED")
    ]
    assert status_now(cloud, f"{name}-r1") == "FAILED"
    code, text = run_cli(capsys, "rerun", name, "--wait", "60", *endpoint)
    assert code == 1
    assert f"{name}-r2  FAILED again" in row(text, name)

    # When Trusted is slow instead and the rerun outlasts --wait
    cloud.runtime.clear_faults()
    cloud.runtime.add_fault(slow("trusted", "again"))
    code, text = run_cli(capsys, "rerun", name, "--wait", "0.5", *endpoint)
    # Then it is reported as still running, with exit code 1, and it is
    assert code == 1
    assert f"{name}-r3  still running after 0.5 s" in row(text, name)
    assert status_now(cloud, f"{name}-r3") == "RUNNING"
    # and while it runs, a rerun is not started twice
    _, plan = run_cli(capsys, "rerun", name, "--dry-run", "--json", *endpoint)
    assert [(p["action"], p["reason"]) for p in plan] == [
        ("skip", f"already being rerun by {name}-r3")
    ]

    # When it has finished
    assert wait_for(cloud, f"{name}-r3") == "SUCCEEDED"
    code, plan = run_cli(capsys, "rerun", name, "--json", *endpoint)
    # Then there is nothing left to rerun
    assert code == 0
    assert [(p["action"], p["reason"], p["outcome"]) for p in plan] == [
        ("skip", f"already rerun by {name}-r3", None)
    ]


def test_a_letter_whose_rerun_outlasts_the_wait_is_kept(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    endpoint = ["--endpoint-url", cloud.endpoint_url]
    # Given a failed execution, and its stage slow when it is rerun
    cloud.runtime.add_fault(failing("validate", "tardy"))
    name = failed_upload(cloud, capsys, tmp_path, "tardy")
    cloud.runtime.clear_faults()
    cloud.runtime.add_fault(slow("validate", "tardy"))

    # When the failure DLQ is redriven with a short wait
    code, text = run_cli(capsys, "dlq", "redrive", "failures", "--wait", "0.5", *endpoint)
    # Then the letter is kept: its rerun had not finished
    assert code == 1
    (line,) = [line for line in text.splitlines() if f"rerun {name} →" in line]
    assert line.endswith(f"rerun {name} → {name}-r1  kept: the rerun is still running after 0.5 s")
    assert letters(cloud, capsys) == [(name, "validate")]

    # When the rerun has SUCCEEDED and the DLQ is redriven again
    assert wait_for(cloud, f"{name}-r1") == "SUCCEEDED"
    code, redriven = run_cli(capsys, "dlq", "redrive", "failures", "--json", *endpoint)
    # Then the letter goes, the work being done
    assert code == 0
    assert [(r["what"], r["done"], r["outcome"]) for r in redriven] == [
        (f"rerun {name} (already rerun)", True, "SUCCEEDED")
    ]
    assert letters(cloud, capsys) == []

"""A failure at Trusted, seen and rerun through the CLI, ends with a clean run's outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sluice.local import LocalCloud
from tests.ops.test_operations import HEADER, outputs_of, run_cli, wait_for

CSV = HEADER + "1,A,10,2024-01-15,Sales\n2,B,-5,2024-01-16,Sales\n3,C,7,2024-01-16,Travel\n"


def test_a_failure_at_trusted_is_shown_then_rerun_to_the_clean_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "refunds_q1.csv"
    path.write_text(CSV, encoding="utf-8")
    # Given what a clean run of the file gives (one local cloud per process at a time)
    with LocalCloud() as clean:
        source = clean.upload(path, "refunds")
        assert clean.wait(source, timeout=60)["status"] == "SUCCEEDED"
        clean_outputs = outputs_of(clean, "refunds")
    assert len(clean_outputs) == 8  # 2 trusted days, 2 detail, 2 quality, 2 summaries
    with LocalCloud() as cloud:
        _failure_then_rerun(cloud, ["--endpoint-url", cloud.endpoint_url], path, capsys)
        # Then the outputs are those of the clean run
        assert outputs_of(cloud, "refunds") == clean_outputs


def _failure_then_rerun(
    cloud: LocalCloud, endpoint: list[str], path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Trusted failing for one file (a full disk, say)
    def full_disk(stage: str, event: dict[str, Any]) -> None:
        if stage == "trusted" and "/refunds_" in event["source"]["key"]:
            raise OSError("No space left on device")

    cloud.runtime.add_fault(full_disk)
    _, (item,) = run_cli(capsys, "upload", str(path), "--dataset", "refunds", "--json", *endpoint)
    assert wait_for(cloud, item["execution"]) == "FAILED"

    # When it is shown
    code, shown = run_cli(capsys, "executions", "show", item["execution"], "--json", *endpoint)
    # Then the failed stage, its error and the per-state view are there
    assert (shown["status"], shown["failed_stage"], shown["error"]) == (
        "FAILED",
        "trusted",
        "OSError",
    )
    assert shown["cause"] == "OSError: No space left on device"
    stages = {s["name"]: s for s in shown["stages"]}
    assert (stages["validate"]["status"], stages["validate"]["metrics"]["rows_in"]) == (
        "SUCCEEDED",
        3,
    )
    # (its run, then its run once more after the dead letter)
    assert (stages["trusted"]["status"], stages["trusted"]["attempts"]) == ("FAILED", 2)
    assert stages["trusted"]["errors"] == ["OSError: No space left on device"] * 2
    assert stages["delivery"]["status"] == "NOT_RUN"
    assert shown["input"]["source"]["key"] == item["key"]
    assert shown["console_url"] is None  # the local cloud has no console
    code, text = run_cli(capsys, "executions", "show", item["execution"], *endpoint)
    assert "trusted attempt 1: OSError: No space left on device" in text
    assert "trusted attempt 2: OSError: No space left on device" in text
    # and the failure DLQ names it
    _, letters = run_cli(capsys, "dlq", "list", "failures", "--json", *endpoint)
    assert [(d["execution"], d["stage"], d["reason"]) for d in letters] == [
        (item["execution"], "trusted", "OSError: No space left on device")
    ]

    # When the cause is fixed and failed executions are rerun
    cloud.runtime.clear_faults()
    _, plan = run_cli(
        capsys, "rerun", "--failed", "--dataset", "refunds", "--dry-run", "--json", *endpoint
    )
    assert [(p["execution"], p["action"], p["new_execution"], p["done"]) for p in plan] == [
        (item["execution"], "new", item["execution"] + "-r1", False)
    ]
    code, done = run_cli(capsys, "rerun", "--failed", "--dataset", "refunds", "--json", *endpoint)
    # Then the command returns once the rerun has SUCCEEDED
    assert (code, done[0]["done"], done[0]["outcome"]) == (0, True, "SUCCEEDED")
    sfn = cloud.client("stepfunctions")
    rerun_arn = cloud.execution_arn(item["execution"] + "-r1")
    assert sfn.describe_execution(executionArn=rerun_arn)["status"] == "SUCCEEDED"
    # and a second rerun has nothing left to do
    _, again = run_cli(capsys, "rerun", "--failed", "--dataset", "refunds", "--json", *endpoint)
    assert [(p["action"], p["reason"]) for p in again] == [
        ("skip", f"already rerun by {item['execution']}-r1")
    ]
    # And redriving the failure DLQ finds the work done and clears the letter
    code, redriven = run_cli(capsys, "dlq", "redrive", "failures", "--json", *endpoint)
    assert code == 0
    assert [(r["done"], r["what"]) for r in redriven] == [
        (True, f"rerun {item['execution']} (already rerun)")
    ]
    _, letters = run_cli(capsys, "dlq", "list", "failures", "--json", *endpoint)
    assert letters == []
